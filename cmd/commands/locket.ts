// `ccbridge locket`: the embedded Locket (models.Locket gRPC on SQLite) alone.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedLocket } from '../../embedded/locket/index.js';
import { checkListenAddress, splitHostPort, string } from '../../lib/flags.js';
import { defineCommand } from '../../lib/daemon.js';
import { grpcServerCredentials } from '../../lib/tls.js';
import { commonFlags } from './common.js';
import { listenerTlsFlags, listenerTlsFrom } from './flags.js';

export const locketFlags = {
  locketListenAddress: string('host:port the embedded Locket serves gRPC on', '127.0.0.1:8891', { check: checkListenAddress }),
};

export default defineCommand({
  summary: 'the embedded Locket lock service (gRPC models.Locket on SQLite)',
  flags: { ...commonFlags, ...locketFlags, ...listenerTlsFlags },
  async start(flags, log) {
    const dataDir = join(flags.dataDir, 'locket');
    mkdirSync(dataDir, { recursive: true });
    const { host, port } = splitHostPort(flags.locketListenAddress);
    const locket = await startEmbeddedLocket({ dataDir, host, port, logger: log, credentials: grpcServerCredentials(listenerTlsFrom(flags)) });
    process.stdout.write(`locket   grpc://${locket.address}\n`);
    return { stop: () => locket.close() };
  },
});
