// The embedded Diego: a BBS-compatible server on SQLite for one machine.
export {
  allowsTransitionTo,
  createActualLrpLifecycle,
  type ActualLrpLifecycle,
  type RunningInstanceDetails,
} from './actual-lrp-lifecycle.js';
export { createAuctioneer, type Auctioneer, type AuctioneerOptions } from './auctioneer.js';
export { createCellClient, type CellClient, type CellClientOptions } from './cell-client.js';
export {
  evacuateCell,
  type CellEvacuationOptions,
  type CellEvacuationResult,
  type HeldInstance,
} from './cell-evacuation.js';
export { createCellRoutes } from './cell-routes.js';
export {
  CELL_DISAPPEARED_REASON,
  TASK_NOT_STARTED_REASON,
  type LrpConvergenceReport,
  type TaskConvergenceReport,
} from './convergence.js';
export { createEvacuation, type Evacuation } from './evacuation.js';
export {
  createLogCache,
  DEFAULT_READ_LIMIT,
  LOG_CACHE_DATABASE_FILE,
  MAX_READ_LIMIT,
  parseReadQuery,
  type ContainerMetrics,
  type EnvelopeType,
  type LogCache,
  type LogEnvelope,
  type ReadQuery,
} from './log-cache.js';
export { resolveMetricTags } from './metric-tags.js';
export { emptyWork, type LrpPlacement, type RepClient, type Work } from './rep.js';
export {
  DEFAULT_RESTART_POLICY,
  mayRestart,
  restartDelayMs,
  restartsImmediately,
  type RestartPolicy,
} from './restart-policy.js';
export { callbackUrlAllowed, CALLBACK_ATTEMPTS, taskCallbackJson } from './task-callbacks.js';
export { createTaskLifecycle, type TaskLifecycle } from './task-lifecycle.js';
export {
  ActualLrpState,
  actualLrpInfo,
  applyDesiredLrpUpdate,
  createBbs,
  populateMetricsGuid,
  TASK_CANCELLED_REASON,
  type ActualLrpChange,
  type Bbs,
  type BbsTransaction,
  type BbsOptions,
  type DiegoPorts,
  type TaskChange,
} from './bbs.js';
export { createCellRegistry, type CellRegistry, type RegisteredCell } from './cells.js';
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
  DEFAULT_DIEGO_TIMING,
  DEFAULT_MAX_REQUEST_BYTES,
  startEmbeddedDiego,
  type CellRegistration,
  type CellRegistrationOptions,
  type DiegoTiming,
  type EmbeddedDiego,
  type EmbeddedDiegoOptions,
  type EmbeddedDiegoTls,
  type LogCacheSettings,
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
