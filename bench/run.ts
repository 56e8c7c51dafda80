// `npm run bench`: runs every benchmark (bench/<name>/run.ts), each in its own child process
// with a timeout, and writes BENCHMARKS.md at the repository root from their BENCH-RESULT
// lines and the header comment of each run.ts (process layout, load model, data shape).
//
//   npm run bench                       every benchmark at full size
//   npm run bench -- gateway tps        a subset, by name
//   npm run bench -- --quick            shrunken sizes (the report says which ran)
//   npm run bench -- --timeout=900      per-benchmark timeout in seconds
//   npm run bench -- --out=/tmp/B.md    write the report elsewhere
//
// Not part of CI: the figures depend on the machine and on what else runs on it.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem, release, platform } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_RESULT_PREFIX, type BenchResult, type BenchRow } from './lib/result.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const benchDir = join(root, 'bench');

/** Sizes for --quick, per benchmark: the environment variables each run.ts reads. */
const QUICK_ENV: Record<string, Record<string, string>> = {
  bbs: { BENCH_SIZES: '10000,25000' },
  nsync: { BENCH_SIZES: '10000,25000' },
  gateway: { BENCH_REQUESTS: '3000' },
  stager: { BENCH_SECONDS: '3' },
  watcher: { BENCH_DRAIN_REPORTS: '2000' },
  cell: { BENCH_INSTANCES: '5', BENCH_STARTS: '3' },
  fuzz: { FUZZ_INPUTS: '20000' },
  staging: { BENCH_STAGING_RUNS: '1' },
  failover: { BENCH_FAILOVER_ROUNDS: '1' },
};

const DEFAULT_TIMEOUT_S = 30 * 60;
const QUICK_TIMEOUT_S = 5 * 60;

interface Options {
  names: string[];
  quick: boolean;
  timeoutS: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const names: string[] = [];
  let quick = process.env.BENCH_QUICK === '1';
  let timeoutS: number | undefined;
  let out = join(root, 'BENCHMARKS.md');
  for (const arg of argv) {
    if (arg === '--quick' || arg === '-quick') quick = true;
    else if (/^--?timeout=/.test(arg)) timeoutS = Number(arg.split('=')[1]);
    else if (/^--?out=/.test(arg)) out = arg.slice(arg.indexOf('=') + 1);
    else if (arg === '--help' || arg === '-h') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
      process.exit(0);
    } else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else names.push(arg);
  }
  if (timeoutS !== undefined && !(timeoutS > 0)) throw new Error('--timeout takes a number of seconds');
  return { names, quick, timeoutS: timeoutS ?? (quick ? QUICK_TIMEOUT_S : DEFAULT_TIMEOUT_S), out };
}

/** Every bench/<name>/run.ts, by name. */
export function discoverBenchmarks(): string[] {
  return readdirSync(benchDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== 'lib' && existsSync(join(benchDir, entry.name, 'run.ts')))
    .map((entry) => entry.name)
    .sort();
}

interface Described {
  /** The first paragraph: what the benchmark measures. */
  title: string;
  layout?: string;
  load?: string;
  data?: string;
  other: string[];
}

const LABEL = /^(Process layout|Load model|Data shape|Baselines?|Goals?|Anchors?)\b[^:]*:/;

/** The header comment of a run.ts, in paragraphs by blank lines and labels (Process layout:, ...). */
export function describeBenchmark(source: string): Described {
  const paragraphs: string[] = [];
  let open = false;
  for (const raw of source.split('\n')) {
    if (!raw.startsWith('//')) break;
    const line = raw.replace(/^\/\/ ?/, '');
    if (line.trim() === '') {
      open = false;
      continue;
    }
    if (!open || LABEL.test(line)) paragraphs.push(line.trim());
    else paragraphs[paragraphs.length - 1] += ` ${line.trim()}`;
    open = true;
  }
  const [title = '', ...rest] = paragraphs.map((p) => p.replace(/\s+/g, ' '));
  const described: Described = { title, other: [] };
  for (const paragraph of rest) {
    if (paragraph.startsWith('Process layout')) described.layout = paragraph.replace(/^Process layout[^:]*:\s*/, '');
    else if (paragraph.startsWith('Load model')) described.load = paragraph.replace(/^Load model[^:]*:\s*/, '');
    else if (paragraph.startsWith('Data shape')) described.data = paragraph.replace(/^Data shape[^:]*:\s*/, '');
    else described.other.push(paragraph);
  }
  return described;
}

interface Outcome {
  name: string;
  status: 'ok' | 'failed' | 'timed out' | 'no result';
  exitCode: number | null;
  seconds: number;
  env: Record<string, string>;
  result?: BenchResult;
  tail: string[];
}

function runBenchmark(name: string, env: Record<string, string>, timeoutS: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, name, 'run.ts')], {
      cwd: root,
      env: { ...process.env, ...env, CCBRIDGE_LOG_LEVEL: process.env.CCBRIDGE_LOG_LEVEL ?? 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const lines: string[] = [];
    let partial = '';
    const collect = (chunk: Buffer, to: NodeJS.WriteStream) => {
      to.write(chunk);
      const text = partial + chunk.toString('utf8');
      const parts = text.split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
    };
    child.stdout.on('data', (chunk: Buffer) => collect(chunk, process.stdout));
    child.stderr.on('data', (chunk: Buffer) => collect(chunk, process.stderr));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The benchmark's own children too: it leads its process group.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (partial) lines.push(partial);
      const seconds = (performance.now() - started) / 1000;
      const resultLine = lines.filter((l) => l.startsWith(BENCH_RESULT_PREFIX)).at(-1);
      let result: BenchResult | undefined;
      if (resultLine) {
        const parsed = JSON.parse(resultLine.slice(BENCH_RESULT_PREFIX.length)) as BenchResult;
        if (Array.isArray(parsed.rows)) result = parsed;
      }
      const status = timedOut ? 'timed out' : code !== 0 ? 'failed' : result ? 'ok' : 'no result';
      const tail = lines.filter((l) => !l.startsWith(BENCH_RESULT_PREFIX)).slice(-25);
      resolve({ name, status, exitCode: code, seconds, env, result, tail });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The report

interface Machine {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  freeGiB: number;
  node: string;
  os: string;
  loadAtStart: number[];
}

function machine(): Machine {
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    cores: cpu.length,
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    memoryGiB: totalmem() / 2 ** 30,
    freeGiB: freemem() / 2 ** 30,
    node: process.version,
    os: `${platform()} ${release()}`,
    loadAtStart: loadavg(),
  };
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function rowsTable(rows: BenchRow[]): string[] {
  const out = ['| figure | value | baseline (same run) | ratio | goal | met? |', '|---|---:|---|---:|---|:---:|'];
  for (const row of rows) {
    const baseline = row.baseline ? `${row.baseline.name}: ${formatNumber(row.baseline.value)} ${row.baseline.unit ?? row.unit}` : '—';
    const ratio = row.ratio === undefined ? '—' : `${formatNumber(row.ratio)}×`;
    const met = row.met === undefined ? '—' : row.met ? 'yes' : '**no**';
    out.push(`| ${cell(row.figure)} | ${formatNumber(row.value)} ${cell(row.unit)} | ${cell(baseline)} | ${ratio} | ${cell(row.goal ?? '—')} | ${met} |`);
  }
  return out;
}

export function renderReport(m: Machine, outcomes: Outcome[], options: { quick: boolean; timeoutS: number; names: string[] }): string {
  const loaded = m.loadAtStart[0]! > m.cores * 0.75;
  const lines: string[] = [];
  lines.push('# Benchmarks', '');
  const subset = options.names.length > 0 ? ` ${options.names.join(' ')}` : '';
  const args = options.quick || subset ? ` --${options.quick ? ' --quick' : ''}${subset}` : '';
  lines.push(`Written by \`npm run bench${args}\` (bench/run.ts) on ${m.date.slice(0, 10)} from one run of ${subset ? `these benchmarks:${subset}` : 'every benchmark in bench/'}; not part of CI.`);
  lines.push('Every figure sits beside the baseline measured in the same run and the goal it is held to.', '');
  if (options.quick) lines.push('**Quick run:** sizes were shrunk (`--quick`), so goals stated at a full size (bbs, nsync: N = 250k) are not checked; each section lists the sizes that ran.', '');
  if (loaded) {
    lines.push(
      `**Shared, loaded machine:** the load average at the start was ${m.loadAtStart.map((l) => l.toFixed(1)).join(' / ')} on ${m.cores} cores, so other work was competing for the CPU throughout; absolute figures are pessimistic and vary between runs, ratios against the same-run baselines are the more telling.`,
      '',
    );
  }
  lines.push('## Machine', '');
  lines.push('| | |', '|---|---|');
  lines.push(`| date | ${m.date} |`);
  lines.push(`| CPU | ${cell(m.cpuModel)}, ${m.cores} cores |`);
  lines.push(`| memory | ${m.memoryGiB.toFixed(1)} GiB (${m.freeGiB.toFixed(1)} GiB free at start) |`);
  lines.push(`| Node.js | ${m.node} |`);
  lines.push(`| OS | ${m.os} |`);
  lines.push(`| load average at start (1/5/15 min) | ${m.loadAtStart.map((l) => l.toFixed(2)).join(' / ')} |`);
  lines.push(`| per-benchmark timeout | ${options.timeoutS} s |`, '');

  lines.push('## Summary', '');
  lines.push('| benchmark | outcome | time | goals met |', '|---|---|---:|---|');
  for (const o of outcomes) {
    const goals = (o.result?.rows ?? []).filter((r) => r.met !== undefined);
    const met = goals.length === 0 ? '—' : `${goals.filter((r) => r.met).length} of ${goals.length}`;
    lines.push(`| [${o.name}](#${o.name}) | ${o.status} | ${o.seconds.toFixed(0)} s | ${met} |`);
  }
  lines.push('');

  for (const o of outcomes) {
    const source = readFileSync(join(benchDir, o.name, 'run.ts'), 'utf8');
    const described = describeBenchmark(source);
    lines.push(`## ${o.name}`, '');
    lines.push(`${described.title || `bench/${o.name}`} (\`bench/${o.name}/run.ts\`)`, '');
    if (described.layout) lines.push(`- **Process layout:** ${described.layout}`);
    if (described.load) lines.push(`- **Load model:** ${described.load}`);
    if (described.data) lines.push(`- **Data shape:** ${described.data}`);
    for (const other of described.other) lines.push(`- ${other}`);
    const envText = Object.entries(o.env).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(`- **Sizes that ran:** ${o.result?.sizes ?? 'the defaults in the header'}${envText ? ` (environment: \`${envText}\`)` : ''}`);
    lines.push(`- **Outcome:** ${o.status} in ${o.seconds.toFixed(0)} s${o.exitCode !== null && o.exitCode !== 0 ? ` (exit code ${o.exitCode})` : ''}`, '');
    if (o.result && o.result.rows.length > 0) lines.push(...rowsTable(o.result.rows), '');
    for (const note of o.result?.notes ?? []) lines.push(`- note: ${cell(note)}`);
    if ((o.result?.notes ?? []).length > 0) lines.push('');
    if (o.status !== 'ok' || !o.result) {
      lines.push('Last lines of its output:', '', '```', ...o.tail.map((l) => l.slice(0, 300)), '```', '');
    }
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const available = discoverBenchmarks();
  const unknown = options.names.filter((n) => !available.includes(n));
  if (unknown.length > 0) throw new Error(`no such benchmark: ${unknown.join(', ')} (there are: ${available.join(', ')})`);
  const names = options.names.length > 0 ? options.names : available;
  const m = machine();
  console.log(`bench: ${names.join(', ')}${options.quick ? ' (quick)' : ''}; timeout ${options.timeoutS} s each; load average ${m.loadAtStart.map((l) => l.toFixed(2)).join(' ')}`);
  const outcomes: Outcome[] = [];
  for (const name of names) {
    const env = { ...(options.quick ? (QUICK_ENV[name] ?? {}) : {}) };
    // An explicit environment wins over --quick, and is reported as what ran.
    for (const [key, value] of Object.entries(process.env)) if (/^(BENCH|FUZZ)_/.test(key) && key !== 'BENCH_QUICK' && value !== undefined) env[key] = value;
    console.log(`\n=== bench/${name} ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    const outcome = await runBenchmark(name, env, options.timeoutS);
    console.log(`=== bench/${name}: ${outcome.status} in ${outcome.seconds.toFixed(0)} s`);
    outcomes.push(outcome);
  }
  writeFileSync(options.out, renderReport(m, outcomes, options));
  console.log(`\nwrote ${relative(process.cwd(), options.out) || options.out}`);
  if (outcomes.some((o) => o.status !== 'ok')) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  });
}
