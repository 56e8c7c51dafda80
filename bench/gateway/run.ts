// bench/gateway: the cost of the REST gateway.
//
// Process layout: the load generator runs in this process; each server under test runs in its
// own child process (the split gateway in one child, its gRPC service in another), all on
// 127.0.0.1. The machine has 2 cores, so load generator and servers share them.
// Load model: closed loop, 50 requests in flight, 500 warm-up requests then 10,000 measured
// (override with BENCH_REQUESTS / BENCH_CONCURRENCY), HTTP/1.1 keep-alive.
// Data shape: GET /v1/actual_lrps/:guid answering 4 instances (~560 bytes of JSON; 4 messages
// over gRPC).
// Baselines in the same run: a bare node:http handler writing the same JSON, and the same
// service called directly over gRPC. Goals: co-located ≥ 0.8× bare node:http; split ≥ 0.8×
// direct gRPC.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createChannel, createClient } from 'nice-grpc';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { formatResult, runClosedLoop, type LoadResult } from '../lib/load.js';
import { printBenchResult } from '../lib/result.js';

const TOTAL = Number(process.env.BENCH_REQUESTS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const WARMUP = 500;
const children: ChildProcess[] = [];

async function startServer(mode: string, extra: string[] = []): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./servers.ts', import.meta.url)), mode, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  return (JSON.parse(line) as { port: number }).port;
}

function httpSender(port: number): () => Promise<boolean> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let n = 0;
  return () =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: `/v1/actual_lrps/process-${n++ % 100}`, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.end();
    });
}

function grpcSender(port: number): () => Promise<boolean> {
  const client = createClient(TpsServiceDefinition, createChannel(`127.0.0.1:${port}`));
  let n = 0;
  return async () => (await client.getLrpStatus({ processGuid: `process-${n++ % 100}` })).instances.length === 4;
}

async function measure(send: () => Promise<boolean>): Promise<LoadResult> {
  await runClosedLoop(send, WARMUP, CONCURRENCY);
  return runClosedLoop(send, TOTAL, CONCURRENCY);
}

try {
  const bare = await measure(httpSender(await startServer('bare')));
  const grpcPort = await startServer('grpc');
  const direct = await measure(grpcSender(grpcPort));
  const colocated = await measure(httpSender(await startServer('colocated')));
  const split = await measure(httpSender(await startServer('split', [`127.0.0.1:${grpcPort}`])));

  console.log(`bench/gateway: ${TOTAL} requests, ${CONCURRENCY} in flight, GET /v1/actual_lrps/:guid (4 instances)`);
  console.log(formatResult('bare node:http (baseline)', bare));
  console.log(formatResult('direct gRPC (baseline)', direct));
  console.log(formatResult('gateway co-located (in-process)', colocated));
  console.log(formatResult('gateway split (over gRPC)', split));
  console.log(`ratio co-located / bare node:http   ${(colocated.perSecond / bare.perSecond).toFixed(2)}  (goal ≥ 0.80)`);
  console.log(`ratio split / direct gRPC           ${(split.perSecond / direct.perSecond).toFixed(2)}  (goal ≥ 0.80)`);
  const colocatedRatio = colocated.perSecond / bare.perSecond;
  const splitRatio = split.perSecond / direct.perSecond;
  printBenchResult({
    name: 'gateway',
    sizes: `${TOTAL} requests, ${CONCURRENCY} in flight`,
    rows: [
      { figure: 'gateway co-located (in-process), throughput', value: colocated.perSecond, unit: 'req/s', baseline: { name: 'bare node:http', value: bare.perSecond }, ratio: colocatedRatio, goal: '≥ 0.80× baseline', met: colocatedRatio >= 0.8 },
      { figure: 'gateway split (over gRPC), throughput', value: split.perSecond, unit: 'req/s', baseline: { name: 'direct gRPC', value: direct.perSecond }, ratio: splitRatio, goal: '≥ 0.80× baseline', met: splitRatio >= 0.8 },
      { figure: 'gateway co-located, p99', value: colocated.p99ms, unit: 'ms', baseline: { name: 'bare node:http p99', value: bare.p99ms } },
      { figure: 'gateway split, p99', value: split.p99ms, unit: 'ms', baseline: { name: 'direct gRPC p99', value: direct.p99ms } },
    ],
    notes: [bare, direct, colocated, split].some((r) => r.errors > 0) ? ['some requests failed: see the errors column of the output'] : [],
  });
} finally {
  for (const child of children) child.kill();
}
process.exit(0);
