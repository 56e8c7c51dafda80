// `ccbridge file-server`: the file server alone (spec §8.1), serving -staticDirectory under
// /v1/static/ — in practice the lifecycle bundles that tasks and LRPs download.
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EXAMPLE_BUILDPACKS, packageBuildpack, packageBuildpackLifecycle, packageDockerLifecycle } from '../../lifecycles/package.mjs';
import { startFileServer } from '../../services/fileserver/static-files.js';
import { bool, checkListenAddress, directory, duration, splitHostPort, string } from '../../lib/flags.js';
import { defineCommand } from '../../lib/daemon.js';
import { commonFlags } from './common.js';
import { listenerTlsFlags, listenerTlsFrom } from './flags.js';

export const fileServerFlags = {
  fileServerListenAddress: string('host:port the file server listens on', '127.0.0.1:8080', { check: checkListenAddress }),
  staticDirectory: directory('directory served under /v1/static/ (required)'),
  packLifecycles: bool('pack this checkout\'s buildpack and docker lifecycles and example buildpacks into -staticDirectory at start (as the all-in-one does), creating it if need be'),
};

/**
 * The buildpack and docker lifecycle bundles and the example buildpacks, packed fresh from this
 * checkout, at the paths the default -lifecycle values name.
 */
export function packBuiltInLifecycles(staticDirectory: string): void {
  mkdirSync(staticDirectory, { recursive: true });
  packageBuildpackLifecycle(join(staticDirectory, 'buildpack_app_lifecycle'));
  packageDockerLifecycle(join(staticDirectory, 'docker_app_lifecycle'));
  for (const name of EXAMPLE_BUILDPACKS) packageBuildpack(name, join(staticDirectory, 'buildpacks'));
}

export default defineCommand({
  summary: 'the file server: lifecycle bundles and other static files under /v1/static/',
  flags: {
    ...commonFlags,
    ...fileServerFlags,
    ...listenerTlsFlags,
    address: string("the original daemon's spelling of -fileServerListenAddress; wins when given", '', { check: checkListenAddress }),
    skipCertVerify: bool('accepted for compatibility with the original daemon; the file server calls nothing'),
    communicationTimeout: duration('accepted for compatibility with the original daemon; the file server calls nothing', 30_000),
  },
  async start(flags, log) {
    // Checked here rather than as a flag check so that `--help` works without it; still a bad
    // invocation, so one line and exit status 2 like any other flag error.
    if (flags.staticDirectory === '') usageError('-staticDirectory is required (the directory to serve under /v1/static/)');
    const staticDirectory = resolve(flags.staticDirectory);
    if (flags.packLifecycles) packBuiltInLifecycles(staticDirectory);
    let isDirectory = false;
    try {
      isDirectory = statSync(staticDirectory).isDirectory();
    } catch {
      // Reported just below.
    }
    if (!isDirectory) usageError(`-staticDirectory: ${JSON.stringify(flags.staticDirectory)} is not a directory`);

    const { host, port } = splitHostPort(flags.address || flags.fileServerListenAddress);
    const server = await startFileServer({ staticDirectory, host, port, logger: log, tls: listenerTlsFrom(flags) });
    process.stdout.write(`file-server  ${server.url}/v1/static/\n`);
    return { stop: () => server.close() };
  },
});

function usageError(message: string): never {
  process.stderr.write(`ccbridge file-server: ${message}\n`);
  process.exit(2);
}
