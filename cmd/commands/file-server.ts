// `ccbridge file-server`: the file server alone (spec §8.1), serving -staticDirectory under
// /v1/static/ — in practice the lifecycle bundles that tasks and LRPs download.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { startFileServer } from '../../services/fileserver/static-files.js';
import { bool, checkListenAddress, duration, splitHostPort, string } from '../../lib/flags.js';
import { defineCommand } from '../../lib/daemon.js';
import { commonFlags } from './common.js';

export const fileServerFlags = {
  fileServerListenAddress: string('host:port the file server listens on', '127.0.0.1:8080', { check: checkListenAddress }),
  staticDirectory: string('directory served under /v1/static/ (required)', ''),
};

export default defineCommand({
  summary: 'the file server: lifecycle bundles and other static files under /v1/static/',
  flags: {
    ...commonFlags,
    ...fileServerFlags,
    address: string("the original daemon's spelling of -fileServerListenAddress; wins when given", '', { check: checkListenAddress }),
    skipCertVerify: bool('accepted for compatibility with the original daemon; the file server calls nothing'),
    communicationTimeout: duration('accepted for compatibility with the original daemon; the file server calls nothing', 30_000),
  },
  async start(flags, log) {
    // Checked here rather than as a flag check so that `--help` works without it; still a bad
    // invocation, so one line and exit status 2 like any other flag error.
    if (flags.staticDirectory === '') usageError('-staticDirectory is required (the directory to serve under /v1/static/)');
    const staticDirectory = resolve(flags.staticDirectory);
    let isDirectory = false;
    try {
      isDirectory = statSync(staticDirectory).isDirectory();
    } catch {
      // Reported just below.
    }
    if (!isDirectory) usageError(`-staticDirectory: ${JSON.stringify(flags.staticDirectory)} is not a directory`);

    const { host, port } = splitHostPort(flags.address || flags.fileServerListenAddress);
    const server = await startFileServer({ staticDirectory, host, port, logger: log });
    process.stdout.write(`file-server  ${server.url}/v1/static/\n`);
    return { stop: () => server.close() };
  },
});

function usageError(message: string): never {
  process.stderr.write(`ccbridge file-server: ${message}\n`);
  process.exit(2);
}
