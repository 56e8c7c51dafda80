export { LOCKET_ERRORS, LocketError, LocketSchemaError, type LocketErrorKind } from './errors.js';
export {
  createLocketService,
  DEFAULT_SWEEP_INTERVAL_MS,
  LOCK_TYPE,
  PRESENCE_TYPE,
  systemClock,
  type Clock,
  type LocketService,
  type LocketServiceOptions,
} from './service.js';
export { startEmbeddedLocket, type EmbeddedLocket, type EmbeddedLocketOptions } from './server.js';
export { LOCKET_DATABASE_FILE, LOCKET_SCHEMA_VERSION, migrateLocketSchema, openLocketDatabase, type LocketDatabase } from './store.js';
