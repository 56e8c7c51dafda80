// bench/tps: instance status for many apps — one bulk call vs one call per process.
//
// Process layout: the server (embedded Diego seeded directly in its store, plus the gateway and
// the TPS service in-process) runs in a child process; the load generator in this process; all
// on 127.0.0.1, sharing the machine's 2 cores.
// Data shape: 1,000 processes × 4 RUNNING instances with net info; process guids of real length
// (45 characters).
// Load model: (a) bulk: GET /v1/bulk_actual_lrp_status?guids=<all 1,000>, sequentially, 30
// calls after 3 warm-up; (b) per-guid: GET /v1/actual_lrps/:guid for each of the 1,000
// processes with 50 in flight, the way CC's per-process fan-out asks (5 rounds after 1 warm-up).
// Goals: bulk p99 under 100 ms; bulk at least 20× faster than fetching every process one by one.
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { startChild, stopChildren } from '../lib/child.js';
import { runClosedLoop } from '../lib/load.js';
import { printBenchResult } from '../lib/result.js';

const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 1000);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`))));
    })
      .on('error', reject)
      .end();
  });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

try {
  const { info } = await startChild<{ url: string; guids: string[] }>(fileURLToPath(new URL('./server.ts', import.meta.url)), [String(PROCESSES)]);
  const bulkUrl = `${info.url}/v1/bulk_actual_lrp_status?guids=${info.guids.join(',')}`;

  const bulkTimes: number[] = [];
  let bulkBytes = 0;
  for (let i = 0; i < 33; i++) {
    const t = performance.now();
    bulkBytes = await get(bulkUrl);
    if (i >= 3) bulkTimes.push(performance.now() - t);
  }
  bulkTimes.sort((a, b) => a - b);

  const rounds: number[] = [];
  for (let round = 0; round < 6; round++) {
    let n = 0;
    const result = await runClosedLoop(async () => (await get(`${info.url}/v1/actual_lrps/${info.guids[n++ % info.guids.length]}`)) > 0, info.guids.length, 50);
    if (round > 0) rounds.push(result.seconds * 1000);
  }
  rounds.sort((a, b) => a - b);
  const perGuidMedian = quantile(rounds, 0.5);
  const bulkMedian = quantile(bulkTimes, 0.5);

  console.log(`bench/tps: ${PROCESSES} processes × 4 instances (URL ${bulkUrl.length} bytes, answer ${bulkBytes} bytes)`);
  console.log(`bulk status, one call        p50 ${bulkMedian.toFixed(1)} ms   p99 ${quantile(bulkTimes, 0.99).toFixed(1)} ms   ${(1000 / bulkMedian).toFixed(1)} calls/s   (goal p99 < 100 ms)`);
  console.log(`one call per process         all ${PROCESSES}: median ${perGuidMedian.toFixed(0)} ms over ${rounds.length} rounds, 50 in flight`);
  console.log(`ratio per-process / bulk     ${(perGuidMedian / bulkMedian).toFixed(1)}×  (goal ≥ 20×)`);
  const bulkP99 = quantile(bulkTimes, 0.99);
  printBenchResult({
    name: 'tps',
    sizes: `${PROCESSES} processes × 4 instances`,
    rows: [
      { figure: 'bulk status of every process, one call, p99', value: bulkP99, unit: 'ms', goal: '< 100 ms', met: bulkP99 < 100 },
      { figure: 'bulk status, one call, p50', value: bulkMedian, unit: 'ms', baseline: { name: 'one call per process, all of them (50 in flight)', value: perGuidMedian, unit: 'ms' }, ratio: perGuidMedian / bulkMedian, goal: 'baseline / figure ≥ 20×', met: perGuidMedian / bulkMedian >= 20 },
    ],
  });
} finally {
  stopChildren();
}
process.exit(0);
