// The embedded Diego: a BBS-compatible server on SQLite for one machine.
export {
  ActualLrpState,
  actualLrpInfo,
  applyDesiredLrpUpdate,
  createBbs,
  populateMetricsGuid,
  TASK_CANCELLED_REASON,
  type ActualLrpChange,
  type Bbs,
  type BbsOptions,
  type DiegoPorts,
  type TaskChange,
} from './bbs.js';
export { createCellRegistry, type CellRegistry } from './cells.js';
export { manualClock, systemClock, type Clock, type ManualClock } from './clock.js';
export { desiredLrpToR2, taskDefinitionToR2, taskToR2 } from './downgrade.js';
export { DiegoError } from './errors.js';
export {
  createEventHub,
  DEFAULT_SUBSCRIBER_BUFFER_SIZE,
  type EventHub,
  type EventName,
  type EventSubscription,
  type HubEvent,
  type SubscribeOptions,
} from './events/hub.js';
export { eventChunk, eventStreamHead, FINAL_CHUNK } from './events/sse.js';
export { createRoutes, type Route } from './routes.js';
export {
  DEFAULT_MAX_REQUEST_BYTES,
  startEmbeddedDiego,
  type EmbeddedDiego,
  type EmbeddedDiegoOptions,
  type EmbeddedDiegoTls,
} from './server.js';
export type { ActualLrpFilter } from './store/actual-lrps.js';
export type { DesiredLrpFilter, DesiredLrpFormat } from './store/desired-lrps.js';
export {
  DIEGO_DATABASE_FILE,
  DIEGO_SCHEMA_VERSION,
  diegoSchemaVersion,
  migrateDiegoSchema,
  openDiegoDatabase,
  type DiegoDatabase,
} from './store/schema.js';
export type { TaskFilter, TaskFormat } from './store/tasks.js';
