// Flags every daemon shares.
import { directory, duration, string } from '../../lib/flags.js';

export const commonFlags = {
  logLevel: string('log level: debug, info, warn, error', 'info', {
    check: (v) => (['debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(v) ? undefined : `"${v}" is not a log level`),
  }),
  dataDir: directory('directory for the embedded components\' data', './.ccbridge'),
  shutdownGracePeriod: duration('on SIGINT/SIGTERM: how long work in flight (requests, outbox deliveries) may take to finish after the daemon stops accepting new work', 10_000),
};
