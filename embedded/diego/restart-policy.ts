// When a crashed instance may run again: the BBS's restart calculator (models/restart_calculator.go).
// A crash whose count stays below immediateRestarts restarts at once (the crash itself moves the
// instance back to UNCLAIMED); later crashes wait backoffBase * 2^(count - immediateRestarts),
// the exponent capped so the wait never passes maxBackoff; from maxRestarts on, never again.
// Counts are those after the crash is recorded, exactly as the BBS compares them, so with the
// defaults the first two crashes restart at once and the third waits 30 s. Pure functions; every
// duration is configuration so tests run the whole schedule in milliseconds.

export interface RestartPolicy {
  /** Crash counts below this restart immediately (BBS: 3). */
  immediateRestarts: number;
  /** The first backoff (BBS: 30 s). */
  backoffBaseMs: number;
  /** No backoff is longer than this (BBS: 16 min). */
  maxBackoffMs: number;
  /** From this crash count on the instance stays CRASHED (BBS: 200). */
  maxRestarts: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  immediateRestarts: 3,
  backoffBaseMs: 30_000,
  maxBackoffMs: 16 * 60_000,
  maxRestarts: 200,
};

/** The largest exponent whose backoff stays within maxBackoff: floor(log2(ceil(max / base))). */
function maxBackoffExponent(policy: RestartPolicy): number {
  const steps = Math.ceil(policy.maxBackoffMs / Math.max(1, policy.backoffBaseMs));
  return steps <= 1 ? 0 : Math.floor(Math.log2(steps));
}

/** How long after the crash an instance with this crash count may restart; undefined = never. */
export function restartDelayMs(policy: RestartPolicy, crashCount: number): number | undefined {
  if (crashCount < policy.immediateRestarts) return 0;
  if (crashCount >= policy.maxRestarts) return undefined;
  const exponent = Math.min(crashCount - policy.immediateRestarts, maxBackoffExponent(policy));
  return Math.min(policy.backoffBaseMs * 2 ** exponent, policy.maxBackoffMs);
}

/** The crash itself restarts the instance (state goes straight back to UNCLAIMED). */
export function restartsImmediately(policy: RestartPolicy, crashCount: number): boolean {
  return crashCount < policy.immediateRestarts;
}

/** Convergence may restart an instance that crashed at crashedAtNs (its `since`) by nowNs. */
export function mayRestart(policy: RestartPolicy, nowNs: bigint, crashedAtNs: bigint, crashCount: number): boolean {
  const delayMs = restartDelayMs(policy, crashCount);
  if (delayMs === undefined) return false;
  return crashedAtNs + BigInt(Math.round(delayMs * 1_000_000)) <= nowNs;
}
