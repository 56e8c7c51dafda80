export {
  connectToLocket,
  locketChannelCredentials,
  type LocketClient,
  type LocketConnection,
  type LocketConnectionOptions,
  type LocketTlsFiles,
} from './client.js';
export {
  createLockRunner,
  createPresenceRunner,
  isLockCollision,
  LockRunnerConfigError,
  monotonicClock,
  type LockLoss,
  type LockLossReason,
  type LockRunner,
  type LockRunnerOptions,
  type MonotonicClock,
} from './lock-runner.js';
