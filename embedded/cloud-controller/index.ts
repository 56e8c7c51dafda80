// The development Cloud Controller: a small development stand-in for Cloud Controller (see
// server.ts and README.md).
export {
  buildpackUrl,
  CC_DEFAULTS,
  DEFAULT_BUILDPACK_NAMES,
  startDevelopmentCloudController,
  type DevelopmentCloudController,
  type DevelopmentCloudControllerOptions,
} from './server.js';
export { APP_DEFAULTS, systemClock, type AppDefaults, type Clock } from './controller.js';
export { createBridgeClient, BridgeCallError, DEFAULT_STATS_AUTHORIZATION, type Bridge, type BridgeClientOptions } from './bridge-client.js';
export { DEFAULT_STACK, DEFAULT_STAGING_LIMITS, processGuidFor, type ConfiguredBuildpack, type StagingLimits } from './messages.js';
export { DEV_API_PREFIX } from './dev-api.js';
export { EVENT_ID_HEADER } from './internal-api.js';
export { CC_DATABASE_FILE, CC_SCHEMA_VERSION, CcSchemaError, migrateCcSchema, openCcDatabase } from './store.js';
