// Time for the embedded Diego. The BBS stamps records in nanoseconds since the Unix epoch
// (created_at, updated_at, since), beyond 2^53, so they are bigints here and decimal strings on
// the generated models. Freshness and TTLs use milliseconds. Tests inject a manual clock.

export interface Clock {
  /** Nanoseconds since the Unix epoch. */
  nowNs(): bigint;
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
}

export interface ManualClock extends Clock {
  /** Moves time forward (or back, with a negative value) by ms milliseconds. */
  advance(ms: number): void;
  set(ms: number): void;
}

/**
 * Wall-clock time with nanosecond resolution: the monotonic high-resolution timer offset from
 * Date.now() once, so successive stamps never go backwards within a process and still read as
 * epoch time.
 */
export function systemClock(): Clock {
  const offsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return {
    nowNs: () => offsetNs + process.hrtime.bigint(),
    nowMs: () => Date.now(),
  };
}

/** A clock that only moves when told to; stamps within one instant still increase by 1 ns. */
export function manualClock(startMs: number = Date.UTC(2026, 0, 1)): ManualClock {
  let currentMs = startMs;
  // Distinct nanosecond stamps per call keep "since" and "updated_at" strictly ordered.
  let tick = 0n;
  return {
    nowNs: () => BigInt(currentMs) * 1_000_000n + tick++,
    nowMs: () => currentMs,
    advance(ms) {
      currentMs += ms;
      tick = 0n;
    },
    set(ms) {
      currentMs = ms;
      tick = 0n;
    },
  };
}
