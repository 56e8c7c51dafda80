// bench/bbs: the bulk-sync read, /v1/desired_lrp_scheduling_infos/list for domain cf-apps, which
// Cloud Controller's sync makes every 30 s and which took the real BBS 15.1 s at 200k LRPs in
// 2016 (diego-notes; spec/diego-today.md §5.1).
//
// Process layout: the embedded Diego (server) runs in a child process, started fresh for every N
// on the same data directory; seeding runs in another, short-lived child before it. The BBS
// client (createBbsClient) runs in this process. All on 127.0.0.1, sharing the machine's cores.
// Load model: one request at a time. Per N: one warm-up request, then 3 measured raw requests
// (server answer: bytes counted and dropped, nothing decoded) and 3 measured client calls
// (receive and decode every DesiredLRPSchedulingInfo); medians are printed. Peak RSS is the
// kernel's high-water mark (VmHWM): the server's over its whole life (it only starts and answers),
// the client's reset (/proc/self/clear_refs) after a GC before the measured calls.
// Data shape: N desired LRPs like Cloud Controller's (bench/bbs/lrp-shape.ts): routes with a
// cf-router entry and a diego-ssh entry holding a ~1.7 KB PEM key, ~10 env vars, two setup
// downloads, codependent launcher + diego-sshd runs, monitor and check definition, three egress
// rules; inserted straight into the store, no convergence. Each scheduling info is ~2.2 KB.
// N = 10k, 25k, 100k, 250k (BENCH_SIZES=comma,separated overrides).
// Goals: time(250k) / time(25k) ≤ 12 (close to linear) and time(250k) < 5 s, client side.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createBbsClient } from '../../clients/bbs/index.js';
import { DesiredLRPsRequest } from '../../gen/diego/bbs/v1/desired_lrp_requests.js';
import { silentLogger } from '../../lib/log.js';
import { printBenchResult, type BenchRow } from '../lib/result.js';

const SIZES = (process.env.BENCH_SIZES ?? '10000,25000,100000,250000')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n) && n > 0)
  .sort((a, b) => a - b);
const RUNS = 3;
const SERVER_SCRIPT = fileURLToPath(new URL('./server.ts', import.meta.url));
const children = new Set<ChildProcess>();

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function child(args: string[]): { process: ChildProcess; firstLine: Promise<Record<string, number | string>> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', SERVER_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const firstLine = new Promise<Record<string, number | string>>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve(JSON.parse(line) as Record<string, number | string>));
    proc.once('exit', (code) => reject(new Error(`${args[0]} child exited with ${code}`)));
  });
  return { process: proc, firstLine };
}

/** VmHWM (peak RSS) or VmRSS of a process, in MiB. */
function memoryMiB(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return kib / 1024;
}

function resetPeak(): void {
  // Linux: writing 5 resets VmHWM to the current RSS.
  writeFileSync('/proc/self/clear_refs', '5');
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** One raw POST: the server's answer time (to the head, and to the last byte), bytes counted and dropped. */
function rawList(port: number, body: Uint8Array): Promise<{ seconds: number; firstByteSeconds: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/v1/desired_lrp_scheduling_infos/list', headers: { 'Content-Type': 'application/x-protobuf', 'Content-Length': body.length } },
      (res) => {
        const firstByteSeconds = (performance.now() - started) / 1000;
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve({ seconds: (performance.now() - started) / 1000, firstByteSeconds, bytes }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface Row {
  n: number;
  seedSeconds: number;
  answerMiB: number;
  serverSeconds: number;
  serverFirstByteSeconds: number;
  serverPeakMiB: number;
  serverIdleMiB: number;
  clientSeconds: number;
  clientPeakMiB: number;
  clientBaseMiB: number;
}

async function measure(dataDir: string, n: number, seedSeconds: number): Promise<Row> {
  const server = child(['serve', dataDir]);
  const { port } = (await server.firstLine) as { port: number };
  const pid = server.process.pid!;
  const serverIdleMiB = memoryMiB(pid, 'VmRSS');
  const bbs = createBbsClient({ url: `http://127.0.0.1:${port}`, logger: silentLogger(), timeoutMs: 300_000, maxSockets: 1 });
  try {
    const body = DesiredLRPsRequest.encode({ domain: 'cf-apps', processGuids: [], appGuids: [] }).finish();
    // Warm-up: JIT on both sides, SQLite page cache on the server.
    const warmed = (await bbs.desiredLrpSchedulingInfos({ domain: 'cf-apps' })).length;
    if (warmed !== n) throw new Error(`expected ${n} scheduling infos, got ${warmed}`);

    const raw: number[] = [];
    const firstByte: number[] = [];
    let answerBytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const answer = await rawList(port, body);
      raw.push(answer.seconds);
      firstByte.push(answer.firstByteSeconds);
      answerBytes = answer.bytes;
    }

    gc();
    const clientBaseMiB = memoryMiB('self', 'VmRSS');
    resetPeak();
    const client: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const started = performance.now();
      let infos: unknown[] | undefined = await bbs.desiredLrpSchedulingInfos({ domain: 'cf-apps' });
      client.push((performance.now() - started) / 1000);
      if (infos.length !== n) throw new Error(`expected ${n} scheduling infos, got ${infos.length}`);
      infos = undefined;
      gc();
    }
    return {
      n,
      seedSeconds,
      answerMiB: answerBytes / 1024 / 1024,
      serverSeconds: median(raw),
      serverFirstByteSeconds: median(firstByte),
      serverPeakMiB: memoryMiB(pid, 'VmHWM'),
      serverIdleMiB,
      clientSeconds: median(client),
      clientPeakMiB: memoryMiB('self', 'VmHWM'),
      clientBaseMiB,
    };
  } finally {
    bbs.close();
    server.process.kill('SIGTERM');
    await new Promise((resolve) => server.process.once('exit', resolve));
  }
}

function print(rows: Row[]): void {
  const f = (value: number, digits = 2) => value.toFixed(digits);
  const cols = (...values: Array<[string, number]>) => values.map(([text, width]) => text.padStart(width)).join('  ');
  console.log('');
  console.log('                         server (child process)                 client (this process)');
  console.log(cols(['N', 7], ['answer', 8], ['first byte', 10], ['last byte', 9], ['peak RSS', 9], ['(idle)', 6], ['end to end', 10], ['after 1st byte', 14], ['peak RSS', 9], ['(before)', 8]));
  for (const r of rows) {
    console.log(
      cols(
        [String(r.n), 7],
        [`${f(r.answerMiB, 0)} MiB`, 8],
        [`${f(r.serverFirstByteSeconds)} s`, 10],
        [`${f(r.serverSeconds)} s`, 9],
        [`${f(r.serverPeakMiB, 0)} MiB`, 9],
        [f(r.serverIdleMiB, 0), 6],
        [`${f(r.clientSeconds)} s`, 10],
        [`${f(r.clientSeconds - r.serverFirstByteSeconds)} s`, 14],
        [`${f(r.clientPeakMiB, 0)} MiB`, 9],
        [f(r.clientBaseMiB, 0), 8],
      ),
    );
  }
  console.log('(medians of 3; "after 1st byte" = client end to end minus the server\'s time to its first byte;');
  console.log(' client peak RSS is the bench process\'s high-water mark during the calls: memory freed by');
  console.log(' earlier, smaller N stays mapped and is reused, so "(before)" grows with N)');
  const at = (n: number) => rows.find((r) => r.n === n);
  const small = at(25_000);
  const large = at(250_000);
  console.log('');
  if (small && large) {
    const ratio = large.clientSeconds / small.clientSeconds;
    console.log(`time(250k) / time(25k), client end to end: ${f(ratio)}  (goal ≤ 12: ${ratio <= 12 ? 'met' : 'missed'})`);
    console.log(`time(250k), client end to end: ${f(large.clientSeconds)} s  (goal < 5 s: ${large.clientSeconds < 5 ? 'met' : 'missed'}; real BBS 2016: 15.1 s for 200k)`);
    console.log(`time(250k) / time(25k), server answer only: ${f(large.serverSeconds / small.serverSeconds)}`);
  } else if (rows.length >= 2) {
    const first = rows[0]!;
    const last = rows[rows.length - 1]!;
    console.log(`time(${last.n}) / time(${first.n}), client end to end: ${f(last.clientSeconds / first.clientSeconds)} for ${f(last.n / first.n, 1)}x the LRPs`);
  }
  const resultRows: BenchRow[] = [];
  for (const r of rows) {
    const goal = r.n === 250_000 ? { goal: '< 5 s', met: r.clientSeconds < 5 } : {};
    resultRows.push({ figure: `list scheduling infos, client end to end, N=${r.n}`, value: r.clientSeconds, unit: 's', baseline: { name: 'server answer alone (raw, to the last byte)', value: r.serverSeconds, unit: 's' }, ratio: r.clientSeconds / r.serverSeconds, ...goal });
    resultRows.push({ figure: `client peak RSS, N=${r.n}`, value: r.clientPeakMiB, unit: 'MiB' });
  }
  const notes = ['real BBS 2016: 15.1 s for 200k desired LRPs'];
  if (small && large) {
    const ratio = large.clientSeconds / small.clientSeconds;
    resultRows.push({ figure: 'time(250k) / time(25k), client end to end', value: ratio, unit: '×', baseline: { name: 'linear scaling', value: 10, unit: '×' }, goal: '≤ 12', met: ratio <= 12 });
  } else {
    notes.push('the goals are stated at N = 25k and 250k, which this run did not both include');
    if (rows.length >= 2) {
      const first = rows[0]!;
      const last = rows[rows.length - 1]!;
      resultRows.push({ figure: `time(${last.n}) / time(${first.n}), client end to end`, value: last.clientSeconds / first.clientSeconds, unit: '×', baseline: { name: 'linear scaling', value: last.n / first.n, unit: '×' } });
    }
  }
  printBenchResult({ name: 'bbs', sizes: `N = ${SIZES.join(', ')}`, rows: resultRows, notes });
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-bench-bbs-'));
  console.log(`bench/bbs: desired_lrp_scheduling_infos/list (domain cf-apps) at N = ${SIZES.join(', ')}; data in ${dataDir}`);
  const rows: Row[] = [];
  try {
    let seeded = 0;
    for (const n of SIZES) {
      const seed = child(['seed', dataDir, String(seeded), String(n)]);
      const { seconds } = (await seed.firstLine) as { seconds: number };
      seeded = n;
      const row = await measure(dataDir, n, seconds);
      rows.push(row);
      console.log(`  N=${n}: server ${row.serverSeconds.toFixed(2)} s, client ${row.clientSeconds.toFixed(2)} s`);
    }
  } finally {
    for (const proc of children) proc.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
  print(rows);
}

main().catch((error: unknown) => {
  console.error(error);
  for (const proc of children) proc.kill('SIGKILL');
  process.exit(1);
});
