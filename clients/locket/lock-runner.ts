// Holds a Locket lock (or presence) for an active/passive daemon: acquires it with an owner and
// a TTL, refreshes it well inside the TTL, and reports a loss the moment the lock can no longer
// be counted on, so two instances never both believe they hold it.
//
// Why "held" ends at (send time of the last successful Lock + TTL - a small margin): the server
// starts the TTL no earlier than it receives that Lock, so no other owner can be granted the key
// before then. The runner stops counting on the lock at that instant if no later refresh
// succeeded, whether the refresh failed, hung, or was never answered. The margin covers the
// millisecond granularity of the server's clock.
import { performance } from 'node:perf_hooks';
import { ClientError, Status } from 'nice-grpc';
import { TypeCode } from '../../gen/locket/locket.js';
import type { Logger } from '../../lib/log.js';
import { connectToLocket, type LocketClient, type LocketTlsFiles } from './client.js';

export interface MonotonicClock {
  /** Milliseconds from an arbitrary origin; only differences are used. */
  now(): number;
}

export const monotonicClock: MonotonicClock = { now: () => performance.now() };

export type LockLossReason =
  /** A refresh found another owner holding the key. */
  | 'lock-collision'
  /** No refresh succeeded before the TTL of the last one ran out (Locket unreachable or slow). */
  | 'ttl-elapsed';

export interface LockLoss {
  reason: LockLossReason;
  /** The error of the last failed call, when there was one. */
  error?: unknown;
}

export interface LockRunnerOptions {
  /** An existing Locket client, or the address (and mTLS files) to connect to. */
  client?: LocketClient;
  address?: string;
  tls?: LocketTlsFiles;
  key: string;
  /** Unique per process instance: two runners with one owner would share the lock. */
  owner: string;
  /** Data published with the lock, e.g. the holder's address. */
  value?: string;
  /** Whole seconds, at least 1 (the unit on the wire). */
  ttlSeconds: number;
  /** Wait between acquisition attempts, and between refresh retries after a failure. */
  retryIntervalMs: number;
  /** Wait between refreshes while held; defaults to a third of the TTL. Must be below 95% of the TTL. */
  refreshIntervalMs?: number;
  /** Deadline of each Lock / Release call; defaults to the TTL. Refreshes never outlive the hold. */
  callTimeoutMs?: number;
  /** LOCK (default) or PRESENCE. */
  typeCode?: TypeCode.LOCK | TypeCode.PRESENCE;
  logger: Logger;
  clock?: MonotonicClock;
  onAcquired?: () => void;
  onLost?: (loss: LockLoss) => void;
}

export interface LockRunner {
  /** Starts acquiring; a second call does nothing. */
  start(): void;
  /** True while the lock is held and its last confirmed TTL has not run out. */
  readonly isHeld: boolean;
  /**
   * Stops refreshing and releases the lock (onLost is not called). releaseTimeoutMs bounds the
   * Release call below its usual deadline (a daemon shutting down within a grace period).
   */
  stop(releaseTimeoutMs?: number): Promise<void>;
}

/** A configuration that cannot work (stops the daemon at start-up). */
export class LockRunnerConfigError extends Error {
  override readonly name = 'LockRunnerConfigError';
}

export function createLockRunner(options: LockRunnerOptions): LockRunner {
  const ttlMs = options.ttlSeconds * 1000;
  const holdMs = ttlMs - Math.min(ttlMs / 20, 100);
  const refreshIntervalMs = options.refreshIntervalMs ?? Math.floor(ttlMs / 3);
  const callTimeoutMs = options.callTimeoutMs ?? ttlMs;
  checkLockRunnerOptions(options, refreshIntervalMs, holdMs, callTimeoutMs);

  const typeCode = options.typeCode ?? TypeCode.LOCK;
  const clock = options.clock ?? monotonicClock;
  const connection = options.client ? undefined : connectToLocket({ address: options.address!, tls: options.tls });
  const client = options.client ?? connection!.client;
  const resource = { key: options.key, owner: options.owner, value: options.value ?? '', typeCode };
  const log = options.logger.child({
    session: 'locket-lock',
    key: options.key,
    owner: options.owner,
    type: typeCode === TypeCode.PRESENCE ? 'presence' : 'lock',
    ttl_seconds: options.ttlSeconds,
  });

  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  /** Clock time until which the lock can be counted on; undefined while not held. */
  let heldUntil: number | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  let lastError: unknown;

  function notify(callback: (() => void) | undefined, event: string): void {
    try {
      callback?.();
    } catch (error) {
      log.error({ err: error }, event);
    }
  }

  function markHeld(until: number): void {
    const acquired = heldUntil === undefined;
    heldUntil = until;
    armExpiryTimer();
    if (acquired) {
      log.info('acquired-lock');
      notify(options.onAcquired, 'on-acquired-callback-failed');
    }
  }

  function lose(loss: LockLoss): void {
    if (heldUntil === undefined) return;
    heldUntil = undefined;
    clearTimeout(expiryTimer);
    log.error({ reason: loss.reason, err: loss.error }, 'lost-lock');
    notify(() => options.onLost?.(loss), 'on-lost-callback-failed');
  }

  /** Fires at heldUntil even while a call or a wait is in progress: a loss is reported at once. */
  function armExpiryTimer(): void {
    clearTimeout(expiryTimer);
    if (heldUntil === undefined) return;
    expiryTimer = setTimeout(() => {
      if (heldUntil === undefined) return;
      if (clock.now() >= heldUntil) lose({ reason: 'ttl-elapsed', error: lastError });
      else armExpiryTimer();
    }, Math.max(0, heldUntil - clock.now()));
  }

  /** One Lock call; returns the next wait. Acquires, refreshes, or records why it could not. */
  async function attempt(): Promise<number> {
    const sentAt = clock.now();
    const deadlineMs = heldUntil === undefined ? callTimeoutMs : Math.min(callTimeoutMs, heldUntil - sentAt);
    try {
      await client.lock(
        { resource, ttlInSeconds: String(options.ttlSeconds) },
        { deadline: Math.max(1, deadlineMs), signal: stopping.signal },
      );
    } catch (error) {
      if (stopping.signal.aborted) return 0;
      lastError = error;
      if (isLockCollision(error)) {
        if (heldUntil !== undefined) lose({ reason: 'lock-collision', error });
        else log.debug('lock-held-by-another-owner');
        return options.retryIntervalMs;
      }
      if (heldUntil === undefined) {
        log.warn({ err: error }, 'failed-to-acquire-lock');
        return options.retryIntervalMs;
      }
      log.warn({ err: error }, 'failed-to-refresh-lock');
      if (clock.now() >= heldUntil) {
        lose({ reason: 'ttl-elapsed', error });
        return options.retryIntervalMs;
      }
      return Math.min(options.retryIntervalMs, heldUntil - clock.now());
    }
    if (stopping.signal.aborted) return 0;
    const until = sentAt + holdMs;
    if (clock.now() >= until) {
      // Answered too late to count on: another owner may already have been granted the key.
      log.warn('lock-answer-arrived-after-ttl');
      lose({ reason: 'ttl-elapsed' });
      return options.retryIntervalMs;
    }
    lastError = undefined;
    markHeld(until);
    return refreshIntervalMs;
  }

  async function run(): Promise<void> {
    log.info('started');
    // Bounded by stop(): every pass waits (refresh or retry interval) or stops.
    while (!stopping.signal.aborted) {
      const waitMs = await attempt();
      await sleep(waitMs, stopping.signal);
    }
  }

  async function releaseAndClose(releaseTimeoutMs: number): Promise<void> {
    stopping.abort();
    await running;
    const wasHeld = heldUntil !== undefined;
    heldUntil = undefined;
    clearTimeout(expiryTimer);
    if (running) {
      // Released even when not known to be held: an interrupted Lock may have been granted.
      try {
        await client.release({ resource }, { deadline: Math.max(1, Math.min(callTimeoutMs, releaseTimeoutMs)) });
        log.info({ was_held: wasHeld }, 'released-lock');
      } catch (error) {
        const notOurs = error instanceof ClientError && (error.code === Status.NOT_FOUND || isLockCollision(error));
        if (notOurs) log.debug({ was_held: wasHeld }, 'nothing-to-release');
        else log.warn({ err: error, was_held: wasHeld }, 'failed-to-release-lock');
      }
    }
    connection?.close();
    log.info('stopped');
  }

  return {
    start() {
      if (running || stopping.signal.aborted) return;
      running = run().catch((error: unknown) => log.error({ err: error }, 'lock-runner-crashed'));
    },
    get isHeld() {
      return heldUntil !== undefined && clock.now() < heldUntil;
    },
    stop(releaseTimeoutMs = callTimeoutMs) {
      stopped ??= releaseAndClose(releaseTimeoutMs);
      return stopped;
    },
  };
}

/** The same runner announcing presence instead of holding an exclusive lock. */
export function createPresenceRunner(options: Omit<LockRunnerOptions, 'typeCode'>): LockRunner {
  return createLockRunner({ ...options, typeCode: TypeCode.PRESENCE });
}

/** Locket answers ALREADY_EXISTS "lock-collision" when another owner holds the key. */
export function isLockCollision(error: unknown): boolean {
  return error instanceof ClientError && error.code === Status.ALREADY_EXISTS;
}

function checkLockRunnerOptions(options: LockRunnerOptions, refreshIntervalMs: number, holdMs: number, callTimeoutMs: number): void {
  const problems: string[] = [];
  if ((options.client === undefined) === (options.address === undefined)) problems.push('give exactly one of client or address');
  if (options.key === '') problems.push('key is empty');
  if (options.owner === '') problems.push('owner is empty');
  if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1) problems.push(`ttlSeconds must be a whole number >= 1, got ${options.ttlSeconds}`);
  if (!(options.retryIntervalMs > 0)) problems.push(`retryIntervalMs must be > 0, got ${options.retryIntervalMs}`);
  if (!(refreshIntervalMs > 0) || !(refreshIntervalMs < holdMs)) {
    problems.push(`refreshIntervalMs must be > 0 and well below the TTL (< ${holdMs} ms), got ${refreshIntervalMs}`);
  }
  if (!(callTimeoutMs > 0)) problems.push(`callTimeoutMs must be > 0, got ${callTimeoutMs}`);
  if (problems.length > 0) throw new LockRunnerConfigError(`lock runner for "${options.key}": ${problems.join('; ')}`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
