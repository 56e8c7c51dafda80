// The embedded Locket as a gRPC server: models.Locket on SQLite plus health and reflection.
import type { ServerCredentials } from '@grpc/grpc-js';
import { LocketDefinition } from '../../gen/locket/locket.js';
import { startGrpcServer, type RunningGrpcServer } from '../../lib/grpc.js';
import type { Logger } from '../../lib/log.js';
import { createLocketService, type Clock } from './service.js';

export interface EmbeddedLocketOptions {
  /** Where the SQLite database lives; locks survive a restart with the same directory. */
  dataDir: string;
  host?: string;
  port?: number;
  logger: Logger;
  clock?: Clock;
  sweepIntervalMs?: number;
  /** TLS / mTLS for the listener; plaintext when absent. */
  credentials?: ServerCredentials;
}

export interface EmbeddedLocket {
  address: string;
  port: number;
  /** Stops serving (calls in flight get graceMs to finish), then closes the database. */
  close(graceMs?: number): Promise<void>;
}

export async function startEmbeddedLocket(options: EmbeddedLocketOptions): Promise<EmbeddedLocket> {
  const logger = options.logger.child({ component: 'embedded-locket' });
  const { dataDir, clock, sweepIntervalMs, host, port, credentials } = options;
  const locket = createLocketService({ dataDir, clock, sweepIntervalMs, logger });
  let running: RunningGrpcServer;
  try {
    running = await startGrpcServer({
      host,
      port,
      credentials,
      services: [{ definition: LocketDefinition, implementation: locket.implementation }],
      logger,
    });
  } catch (error) {
    locket.close();
    throw error;
  }
  return {
    address: running.address,
    port: running.port,
    async close(graceMs) {
      await running.close(graceMs);
      locket.close();
    },
  };
}
