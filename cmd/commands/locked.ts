// Active/passive: a component that works only while its daemon holds a Locket lock. It starts
// when the lock is taken and stops at once when it is lost; a standby keeps trying. On shutdown
// the work stops first (given the grace period to finish what it has in hand), then the lock is
// released, so a standby takes over at its next try instead of after the TTL.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { createLockRunner } from '../../clients/locket/index.js';
import type { Stoppable } from '../../lib/daemon.js';
import type { Logger } from '../../lib/log.js';

export interface LockedWork {
  start(): void;
  /** graceMs: a shutdown's grace period (absent when the lock is lost: stop at once). */
  stop(graceMs?: number): Promise<void>;
}

export function runWhileLocked(options: {
  key: string;
  locketAddress: string;
  tls?: { caFile: string; certFile: string; keyFile: string };
  ttlMs: number;
  retryIntervalMs: number;
  work: LockedWork;
  logger: Logger;
}): Stoppable & { readonly owner: string } {
  const owner = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = options.logger.child({ lock: options.key, owner });
  const runner = createLockRunner({
    address: options.locketAddress,
    tls: options.tls,
    key: options.key,
    owner,
    ttlSeconds: Math.max(1, Math.round(options.ttlMs / 1000)),
    retryIntervalMs: options.retryIntervalMs,
    logger: log,
    onAcquired: () => {
      log.info('lock-acquired');
      options.work.start();
    },
    onLost: (loss) => {
      log.error({ reason: loss.reason }, 'lock-lost');
      void options.work.stop();
    },
  });
  runner.start();
  return {
    owner,
    async stop(graceMs?: number) {
      const deadline = Date.now() + (graceMs ?? 0);
      await options.work.stop(graceMs);
      // The release gets what is left of the grace period, and at least a second: without it a
      // standby waits out the TTL.
      await runner.stop(graceMs === undefined ? undefined : Math.max(deadline - Date.now(), 1_000));
    },
  };
}
