// bench/gateway: the cost of the REST gateway.
//
// Process layout: the load generator runs in this process; each server under test runs in its
// own child process (the split gateway in one child, its gRPC service in another), all on
// 127.0.0.1. The machine has 2 cores, so load generator and servers share them.
// Load model: closed loop, 50 requests in flight, 500 warm-up requests then 10,000 measured
// (override with BENCH_REQUESTS / BENCH_CONCURRENCY), HTTP/1.1 keep-alive; every server is
// measured once per round, in turn, for 3 rounds (BENCH_ROUNDS), and each figure is the median
// of its rounds, so a burst of other work on the shared machine does not decide a ratio.
// Besides throughput, the server-side CPU time per request (user + system time of the server
// processes from /proc, over the measured requests): the load generator shares the 2 cores,
// so this is the steadier measure of what the gateway costs.
// Data shape: GET /v1/actual_lrps/:guid answering 4 instances (~560 bytes of JSON; 4 messages
// over gRPC).
// Baselines in the same run: a bare node:http handler writing the same JSON, and the same
// service called directly over gRPC. Goals: co-located ≥ 0.8× bare node:http; split ≥ 0.8×
// direct gRPC (throughput; the CPU figures are reported beside them).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const children: ChildProcess[] = [];

/** User + system CPU time of a process so far, in microseconds (clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat: 12 and 13 after the command name.
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function startServer(mode: string, extra: string[] = []): Promise<{ port: number; pid: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./servers.ts', import.meta.url)), mode, ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  return { port: (JSON.parse(line) as { port: number }).port, pid: child.pid! };
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

interface Measured extends LoadResult {
  /** Server-side CPU time per measured request, in microseconds. */
  cpuUsPerRequest: number;
}

async function measure(send: () => Promise<boolean>, serverPids: number[]): Promise<Measured> {
  await runClosedLoop(send, WARMUP, CONCURRENCY);
  const before = serverPids.map(cpuMicros);
  const result = await runClosedLoop(send, TOTAL, CONCURRENCY);
  const used = serverPids.reduce((sum, pid, i) => sum + cpuMicros(pid) - before[i]!, 0);
  return { ...result, cpuUsPerRequest: used / TOTAL };
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

/** The median of each figure over the rounds. */
function medianOf(rounds: Measured[]): Measured {
  const of = (key: keyof Measured) => median(rounds.map((r) => r[key]));
  return {
    requests: TOTAL,
    seconds: of('seconds'),
    perSecond: of('perSecond'),
    p50ms: of('p50ms'),
    p99ms: of('p99ms'),
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    cpuUsPerRequest: of('cpuUsPerRequest'),
  };
}

try {
  const bareServer = await startServer('bare');
  const grpcServer = await startServer('grpc');
  const colocatedServer = await startServer('colocated');
  const splitServer = await startServer('split', [`127.0.0.1:${grpcServer.port}`]);
  const modes = {
    bare: { send: httpSender(bareServer.port), pids: [bareServer.pid], rounds: [] as Measured[] },
    direct: { send: grpcSender(grpcServer.port), pids: [grpcServer.pid], rounds: [] as Measured[] },
    colocated: { send: httpSender(colocatedServer.port), pids: [colocatedServer.pid], rounds: [] as Measured[] },
    split: { send: httpSender(splitServer.port), pids: [splitServer.pid, grpcServer.pid], rounds: [] as Measured[] },
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of Object.values(modes)) mode.rounds.push(await measure(mode.send, mode.pids));
  }
  const bare = medianOf(modes.bare.rounds);
  const direct = medianOf(modes.direct.rounds);
  const colocated = medianOf(modes.colocated.rounds);
  const split = medianOf(modes.split.rounds);

  const line = (name: string, r: Measured) => `${formatResult(name, r)}   server CPU ${r.cpuUsPerRequest.toFixed(1).padStart(6)} µs/request`;
  console.log(`bench/gateway: ${TOTAL} requests, ${CONCURRENCY} in flight, GET /v1/actual_lrps/:guid (4 instances), median of ${ROUNDS} rounds`);
  console.log(line('bare node:http (baseline)', bare));
  console.log(line('direct gRPC (baseline)', direct));
  console.log(line('gateway co-located (in-process)', colocated));
  console.log(line('gateway split (over gRPC)', split));
  const colocatedRatio = colocated.perSecond / bare.perSecond;
  const splitRatio = split.perSecond / direct.perSecond;
  console.log(`ratio co-located / bare node:http   ${colocatedRatio.toFixed(2)}  (goal ≥ 0.80)   CPU per request ${(colocated.cpuUsPerRequest / bare.cpuUsPerRequest).toFixed(2)}×`);
  console.log(`ratio split / direct gRPC           ${splitRatio.toFixed(2)}  (goal ≥ 0.80)   CPU per request ${(split.cpuUsPerRequest / direct.cpuUsPerRequest).toFixed(2)}×`);
  printBenchResult({
    name: 'gateway',
    sizes: `${TOTAL} requests, ${CONCURRENCY} in flight, median of ${ROUNDS} rounds`,
    rows: [
      { figure: 'gateway co-located (in-process), throughput', value: colocated.perSecond, unit: 'req/s', baseline: { name: 'bare node:http', value: bare.perSecond }, ratio: colocatedRatio, goal: '≥ 0.80× baseline', met: colocatedRatio >= 0.8 },
      { figure: 'gateway split (over gRPC), throughput', value: split.perSecond, unit: 'req/s', baseline: { name: 'direct gRPC', value: direct.perSecond }, ratio: splitRatio, goal: '≥ 0.80× baseline', met: splitRatio >= 0.8 },
      { figure: 'gateway co-located, server CPU per request', value: colocated.cpuUsPerRequest, unit: 'µs', baseline: { name: 'bare node:http', value: bare.cpuUsPerRequest }, ratio: colocated.cpuUsPerRequest / bare.cpuUsPerRequest },
      { figure: 'gateway split, server CPU per request (gateway + service)', value: split.cpuUsPerRequest, unit: 'µs', baseline: { name: 'direct gRPC (service)', value: direct.cpuUsPerRequest }, ratio: split.cpuUsPerRequest / direct.cpuUsPerRequest },
      { figure: 'gateway co-located, p99', value: colocated.p99ms, unit: 'ms', baseline: { name: 'bare node:http p99', value: bare.p99ms } },
      { figure: 'gateway split, p99', value: split.p99ms, unit: 'ms', baseline: { name: 'direct gRPC p99', value: direct.p99ms } },
    ],
    notes: [bare, direct, colocated, split].some((r) => r.errors > 0) ? ['some requests failed: see the errors column of the output'] : [],
  });
} finally {
  for (const child of children) child.kill();
}
process.exit(0);
