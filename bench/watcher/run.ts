// bench/watcher: crash-report latency and outbox drain.
//
// Process layout: the embedded Diego runs in a child process; the watcher (with its SQLite
// outbox), the CC receiver and the load generator (acting as the cell, over the BBS cell
// routes) run in this process, so crash and arrival times share one clock. 127.0.0.1; 2 cores.
// Load model: (1) latency: 2,500 RUNNING instances (50 LRPs × 50) each crashed once, open loop
// at 500 crashes/s; latency = from sending the crash call to CC receiving the report.
// (2) drain: 10,000 reports written to the outbox while CC is down (seeded, as after an
// outage), then CC comes back; time until the outbox is empty.
// Goal: p99 under 50 ms, zero loss.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBbsClient } from '../../clients/bbs/index.js';
import { createCcClient } from '../../clients/cc/client.js';
import { createCellClient } from '../../embedded/diego/index.js';
import { silentLogger } from '../../lib/log.js';
import { openOutbox } from '../../services/tps/watcher/outbox.js';
import { buildWatcher } from '../../cmd/wiring/services.js';
import { benchDesiredLrp } from '../tps/shape.js';
import { startChild, stopChildren } from '../lib/child.js';
import { printBenchResult } from '../lib/result.js';

const APPS = 50;
const PER_APP = 50;
const RATE = Number(process.env.BENCH_CRASH_RATE ?? 500);
const DRAIN = Number(process.env.BENCH_DRAIN_REPORTS ?? 10_000);
const log = silentLogger();

// CC: records when each report arrives; can be down (503).
let ccDown = false;
const arrivals = new Map<string, number>();
const cc = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (ccDown) return void res.writeHead(503).end();
    const id = String(req.headers['x-ccbridge-event-id'] ?? '');
    if (!arrivals.has(id)) {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { index: number; crash_count: number };
      const guid = (req.url ?? '').split('/')[3];
      arrivals.set(id, performance.now());
      arrivals.set(`${guid}/${body.index}/${body.crash_count}`, performance.now());
    }
    res.writeHead(200).end();
  });
});
await new Promise<void>((resolve) => cc.listen(0, '127.0.0.1', resolve));
const ccUrl = `http://127.0.0.1:${(cc.address() as AddressInfo).port}`;
const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

try {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-watcher-'));
  const { info } = await startChild<{ url: string }>(fileURLToPath(new URL('../bbs/server.ts', import.meta.url)), ['serve', dataDir]);
  const bbs = createBbsClient({ url: info.url, logger: log, maxSockets: 64 });
  const cell = createCellClient({ url: info.url });
  const outbox = openOutbox(join(dataDir, 'outbox'));
  const watcher = buildWatcher({ bbs, cc: createCcClient({ baseUrl: ccUrl, timeoutMs: 5_000 }), outbox, logger: log, config: { mode: 'legacy', retryBaseMs: 50, retryMaxMs: 1_000 } });

  const guids = Array.from({ length: APPS }, (_, a) => `${String(a).padStart(8, '0')}-4c2e-4a7b-9d3f-b0e9c1a45d3f-bench`);
  for (const guid of guids) await bbs.desireLrp(benchDesiredLrp(guid, PER_APP));
  const instances = guids.flatMap((guid) => Array.from({ length: PER_APP }, (_, index) => ({ guid, index, instanceKey: { instanceGuid: `${guid.slice(0, 8)}-${index}`, cellId: 'bench-cell' } })));
  const net = { address: '127.0.0.1', ports: [], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' };
  for (let i = 0; i < instances.length; i += 50) {
    await Promise.all(
      instances.slice(i, i + 50).map(async ({ guid, index, instanceKey }) => {
        await cell.claim(guid, index, instanceKey);
        await cell.start({ processGuid: guid, index, domain: 'cf-apps' }, instanceKey, net);
      }),
    );
  }
  watcher.start();
  await new Promise((resolve) => setTimeout(resolve, 1_000));

  // (1) Latency at RATE crashes/s, open loop.
  const sentAt = new Map<string, number>();
  const interval = 1000 / RATE;
  const started = performance.now();
  const calls: Promise<void>[] = [];
  const callTimes: number[] = [];
  for (let n = 0; n < instances.length; n++) {
    const due = started + n * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const { guid, index, instanceKey } = instances[n]!;
    const sent = performance.now();
    sentAt.set(`${guid}/${index}/1`, sent);
    calls.push(cell.crash({ processGuid: guid, index, domain: 'cf-apps' }, instanceKey, 'bench crash').then(() => void callTimes.push(performance.now() - sent)));
  }
  await Promise.all(calls);
  const achievedRate = instances.length / ((performance.now() - started) / 1000);
  const deadline = performance.now() + 60_000;
  while ([...sentAt.keys()].some((k) => !arrivals.has(k)) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const latencies = [...sentAt.entries()].filter(([k]) => arrivals.has(k)).map(([k, t]) => arrivals.get(k)! - t).sort((a, b) => a - b);
  const lost = sentAt.size - latencies.length;
  await watcher.stop();

  // (2) Drain: seed the outbox as an outage leaves it, then bring CC back.
  ccDown = true;
  outbox.enqueue(
    Array.from({ length: DRAIN }, (_, n) => ({
      id: `drain-${n}`,
      processGuid: `drain-${n % 500}`,
      instanceKey: `drain-${n % 500}/${n % 7}`,
      report: { kind: 'crashed-legacy' as const, body: { instance: 'i', index: n % 7, reason: 'CRASHED', exitStatus: 0, exitDescription: 'bench', crashCount: n, crashTimestamp: '1' } },
    })),
    Date.now(),
  );
  ccDown = false;
  const drainStarted = performance.now();
  watcher.start();
  while (outbox.depth() > 0 && performance.now() - drainStarted < 300_000) await new Promise((resolve) => setTimeout(resolve, 10));
  const drainSeconds = (performance.now() - drainStarted) / 1000;
  const drained = [...arrivals.keys()].filter((k) => k.startsWith('drain-')).length;
  await watcher.stop();

  console.log(`bench/watcher: ${instances.length} crashes at ${achievedRate.toFixed(0)}/s (target ${RATE}/s), legacy reports to CC`);
  console.log(`crash → CC latency   p50 ${q(latencies, 0.5).toFixed(1)} ms   p99 ${q(latencies, 0.99).toFixed(1)} ms   max ${latencies.at(-1)?.toFixed(1)} ms   lost ${lost}   (goal p99 < 50 ms, zero loss)`);
  callTimes.sort((a, b) => a - b);
  console.log(`  of which the crash call itself (cell → BBS answer)   p50 ${q(callTimes, 0.5).toFixed(1)} ms   p99 ${q(callTimes, 0.99).toFixed(1)} ms`);
  console.log(`outbox drain         ${DRAIN} reports in ${drainSeconds.toFixed(2)} s (${(DRAIN / drainSeconds).toFixed(0)} reports/s), delivered ${drained}, left ${outbox.depth()}`);
  const p99 = q(latencies, 0.99);
  printBenchResult({
    name: 'watcher',
    sizes: `${instances.length} crashes at ${RATE}/s; ${DRAIN} reports drained`,
    rows: [
      { figure: 'crash → CC report latency, p99', value: p99, unit: 'ms', baseline: { name: 'the crash call itself (cell → BBS), p99', value: q(callTimes, 0.99) }, goal: '< 50 ms', met: p99 < 50 },
      { figure: 'crash → CC report latency, p50', value: q(latencies, 0.5), unit: 'ms', baseline: { name: 'the crash call itself, p50', value: q(callTimes, 0.5) } },
      { figure: 'reports lost', value: lost, unit: 'reports', goal: '0', met: lost === 0 },
      { figure: 'outbox drain rate', value: DRAIN / drainSeconds, unit: 'reports/s' },
      { figure: 'reports left in the outbox after the drain', value: outbox.depth(), unit: 'reports', goal: '0', met: outbox.depth() === 0 },
    ],
    notes: [`crashes sent at ${achievedRate.toFixed(0)}/s (target ${RATE}/s)`],
  });
  outbox.close();
  bbs.close();
} finally {
  stopChildren();
  cc.close();
}
process.exit(0);
