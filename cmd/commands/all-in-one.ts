// The all-in-one daemon (`npm start`): every component in one process, data under one directory,
// every address printed at start.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedLocket } from '../../embedded/locket/index.js';
import { defineCommand, stopAll, type Stoppable } from '../../lib/daemon.js';
import { splitHostPort } from '../../lib/flags.js';
import { commonFlags } from './common.js';
import { locketFlags } from './locket.js';

export default defineCommand({
  summary: 'everything on one machine',
  flags: { ...commonFlags, ...locketFlags },
  async start(flags, log) {
    const started: Stoppable[] = [];
    try {
      mkdirSync(flags.dataDir, { recursive: true });
      const locketDir = join(flags.dataDir, 'locket');
      mkdirSync(locketDir, { recursive: true });
      const { host, port } = splitHostPort(flags.locketListenAddress);
      const locket = await startEmbeddedLocket({ dataDir: locketDir, host, port, logger: log });
      started.push({ stop: () => locket.close() });
      process.stdout.write(`ccbridge is running (data in ${flags.dataDir})\n`);
      process.stdout.write(`  locket   grpc://${locket.address}\n`);
      return stopAll(started);
    } catch (error) {
      await stopAll(started).stop();
      throw error;
    }
  },
});
