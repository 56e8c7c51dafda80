// CPU shares follow memory (ccbridge-2015 §4.5): 1 at 256 MB or less, 100 at 8 GB or more, linear
// in between with Go's truncating integer division, so the same app gets the same weight as
// under the original nsync.
const MIN_MEMORY_MB = 256;
const MAX_MEMORY_MB = 8192;
const MIN_CPU_WEIGHT = 1;
const MAX_CPU_WEIGHT = 100;

export function cpuWeightFor(memoryMb: number): number {
  if (memoryMb > MAX_MEMORY_MB) return MAX_CPU_WEIGHT;
  if (memoryMb < MIN_MEMORY_MB) return MIN_CPU_WEIGHT;
  const span = MAX_CPU_WEIGHT - MIN_CPU_WEIGHT;
  return Math.trunc((span * (memoryMb - MIN_MEMORY_MB)) / (MAX_MEMORY_MB - MIN_MEMORY_MB)) + MIN_CPU_WEIGHT;
}
