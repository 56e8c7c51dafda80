// `ccbridge uploader`: the cc-uploader alone (spec §9), streaming droplets and build artifacts
// caches from staging tasks to CC's blobstore.
import { startUploader } from '../../services/fileserver/index.js';
import { DEFAULT_MAX_UPLOAD_BYTES } from '../../services/fileserver/uploader.js';
import { bool, checkListenAddress, duration, int, splitHostPort, string } from '../../lib/flags.js';
import { defineCommand } from '../../lib/daemon.js';
import { readFileSync } from 'node:fs';
import { commonFlags } from './common.js';
import { ccFlags, listenerTlsFlags, listenerTlsFrom } from './flags.js';

const positive = (what: string) => (ms: number) => (ms > 0 ? undefined : `${what} must be greater than zero`);

export const uploaderFlags = {
  ccUploaderListenAddress: string('host:port the cc-uploader listens on', '127.0.0.1:9090', { check: checkListenAddress }),
  ccJobPollingInterval: duration("wait between two polls of CC's droplet upload job", 1_000, { check: positive('the polling interval') }),
  communicationTimeout: duration('deadline of each job poll request to CC', 30_000, { check: positive('the timeout') }),
  skipCertVerify: bool("do not verify CC's TLS certificate"),
  maxUploadBytes: int('largest droplet or build cache accepted (413 beyond)', DEFAULT_MAX_UPLOAD_BYTES, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
  ccCACert: ccFlags.ccCACert,
  ccClientCert: ccFlags.ccClientCert,
  ccClientKey: ccFlags.ccClientKey,
};

const readPem = (path: string) => (path ? readFileSync(path) : undefined);
/** CC's CA and the client certificate the uploader presents to CC, from the flags. */
export const uploaderCcTlsFrom = (flags: { ccCACert: string; ccClientCert: string; ccClientKey: string }) =>
  flags.ccCACert || flags.ccClientCert ? { ca: readPem(flags.ccCACert), cert: readPem(flags.ccClientCert), key: readPem(flags.ccClientKey) } : undefined;

export default defineCommand({
  summary: 'the cc-uploader: droplet and build artifacts uploads to CC',
  flags: {
    ...commonFlags,
    ...uploaderFlags,
    ...listenerTlsFlags,
    address: string("the original daemon's spelling of -ccUploaderListenAddress; wins when given", '', { check: checkListenAddress }),
  },
  async start(flags, log) {
    const { host, port } = splitHostPort(flags.address || flags.ccUploaderListenAddress);
    const uploader = await startUploader({
      host,
      port,
      logger: log,
      ccJobPollingIntervalMs: flags.ccJobPollingInterval,
      communicationTimeoutMs: flags.communicationTimeout,
      skipCertVerify: flags.skipCertVerify,
      ccTls: uploaderCcTlsFrom(flags),
      maxUploadBytes: flags.maxUploadBytes,
      tls: listenerTlsFrom(flags),
    });
    process.stdout.write(`uploader     ${uploader.url}\n`);
    return { stop: () => uploader.close() };
  },
});
