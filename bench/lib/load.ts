// Closed-loop load: `concurrency` workers each send their next request as soon as the previous
// one answers, until `total` requests are done. Latencies are recorded per request.
import { performance } from 'node:perf_hooks';

export interface LoadResult {
  requests: number;
  seconds: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

export async function runClosedLoop(send: () => Promise<boolean>, total: number, concurrency: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let started = 0;
  let errors = 0;
  const t0 = performance.now();
  async function worker(): Promise<void> {
    while (started < total) {
      started++;
      const t = performance.now();
      const ok = await send().catch(() => false);
      latencies.push(performance.now() - t);
      if (!ok) errors++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { requests: total, seconds, perSecond: total / seconds, p50ms: pick(0.5), p99ms: pick(0.99), errors };
}

export function formatResult(name: string, r: LoadResult): string {
  return `${name.padEnd(34)} ${r.perSecond.toFixed(0).padStart(7)} req/s   p50 ${r.p50ms.toFixed(2).padStart(6)} ms   p99 ${r.p99ms.toFixed(2).padStart(6)} ms   errors ${r.errors}`;
}
