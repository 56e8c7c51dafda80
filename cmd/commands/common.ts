// Flags every daemon shares.
import { string } from '../../lib/flags.js';

export const commonFlags = {
  logLevel: string('log level: debug, info, warn, error', 'info', {
    check: (v) => (['debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(v) ? undefined : `"${v}" is not a log level`),
  }),
  dataDir: string('directory for the embedded components\' data', './.ccbridge'),
};
