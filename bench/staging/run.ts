// bench/staging: how long a developer waits for an app, from "start" to an answer.
//
// Process layout: the all-in-one daemon (`bin/ccbridge.js`: gateway, Stager, Nsync, TPS, file
// server, uploader, embedded Diego with its cell, Locket, development CC, router) in one child
// process; this process drives it through the development CC's API as `ccbridge push` does. For
// the docker part, Debian's docker-registry in a second child process holding the example
// busybox image (test/support/registry.ts builds and pushes it). Everything on 127.0.0.1; 2 cores.
// Load model: one app at a time, sequential steps, each timed from the API call that starts it:
//   1. cold staging of examples/node-app (empty download cache, no build artifacts cache);
//   2. warm staging: a restage of the same app (lifecycle and buildpack cached on the cell, the
//      build artifacts cache from step 1 restored);
//   3. the docker example: start → staged (the docker builder reading the image's metadata from
//      the registry) and desire → RUNNING (layers pulled and unpacked, instance healthy), cold;
//      then the same again for a second app of the same image (layers cached by digest).
// Baseline, measured in the same run: the buildpack builder run as a plain host process on the
// same app and buildpack (no container, no bridge, no download), so the ratio is what the
// platform adds around the build itself.
// Data shape: examples/node-app (two files); the busybox-static image (one ~1 MB layer).
// Goals: a cold staging of the Node.js example within 5 s, a warm one within 3 s, and a docker
// desire → RUNNING within 3 s (cold or cached), on this 2-core machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageBuildpack } from '../../lifecycles/package.mjs';
import { printBenchResult, type BenchRow } from '../lib/result.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'bench-staging-'));
const RUNS = Number(process.env.BENCH_STAGING_RUNS ?? 1);

/** Goals: what a developer should wait on this 2-core machine. */
const GOALS = { coldStagingMs: 5_000, warmStagingMs: 3_000, dockerDesireMs: 3_000 };

interface Figures {
  [name: string]: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 300_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---- baseline: the builder as a plain process ------------------------------------------------

function baselineBuild(): number {
  const dir = join(root, 'baseline');
  const buildDir = join(dir, 'app');
  const buildpacksDir = join(dir, 'buildpacks');
  cpSync(join(repo, 'examples/node-app'), buildDir, { recursive: true });
  const archives = join(dir, 'archives');
  const archive = packageBuildpack('nodejs', archives);
  const key = 'nodejs_buildpack';
  const unpacked = join(buildpacksDir, createHash('md5').update(key).digest('hex'));
  mkdirSync(unpacked, { recursive: true });
  spawnSync('tar', ['-xzf', archive.path, '-C', unpacked], { stdio: 'inherit' });
  const started = performance.now();
  const result = spawnSync(
    join(repo, 'lifecycles/buildpack/builder'),
    [
      `-buildDir=${buildDir}`,
      `-buildpackOrder=${key}`,
      `-buildpacksDir=${buildpacksDir}`,
      `-buildArtifactsCacheDir=${join(dir, 'cache')}`,
      `-outputBuildArtifactsCache=${join(dir, 'output-cache.tgz')}`,
      `-outputDroplet=${join(dir, 'droplet.tgz')}`,
      `-outputMetadata=${join(dir, 'result.json')}`,
      '-skipDetect=false',
    ],
    { encoding: 'utf8' },
  );
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`the baseline build failed: ${result.stdout}${result.stderr}`);
  return elapsed;
}

// ---- the all-in-one --------------------------------------------------------------------------

interface Daemon {
  child: ChildProcess;
  cc: string;
}

async function startDaemon(extraFlags: string[]): Promise<Daemon> {
  const dataDir = join(root, 'data');
  const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress'];
  const fixed = [`-fileServerListenAddress=127.0.0.1:${await freePort()}`, `-uploaderListenAddress=127.0.0.1:${await freePort()}`, `-ccListenAddress=127.0.0.1:${await freePort()}`];
  const child = spawn(process.execPath, [join(repo, 'bin/ccbridge.js'), `-dataDir=${dataDir}`, '-logLevel=warn', ...fixed, ...ports.map((p) => `-${p}=127.0.0.1:0`), ...extraFlags], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await until('the all-in-one to start', async () => {
    if (child.exitCode !== null) throw new Error(`ccbridge exited: ${output}`);
    return / {2}cell {10}/.test(output);
  }, 120_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${output}`);
  });
  const cc = new RegExp('  cc +(http://[0-9.:]+)').exec(output)![1]!;
  return { child, cc };
}

interface AppView {
  guid: string;
  state: string;
  running_instances: number | null;
  build: { guid: string; state: string; error: { message: string } | null } | null;
}

function api(daemon: Daemon) {
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${daemon.cc}/dev/v1${path}`, {
      method,
      headers: body === undefined || body instanceof Uint8Array ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  };
  return {
    call,
    app: (name: string) => call('GET', `/apps/${name}`) as Promise<AppView>,
  };
}

async function timeStaging(client: ReturnType<typeof api>, name: string, action: 'start' | 'restage', previousBuild?: string): Promise<{ stagedMs: number; runningMs: number }> {
  const started = performance.now();
  await client.call('POST', `/apps/${name}/${action}`);
  await until(`${name} staged`, async () => {
    const app = await client.app(name);
    if (app.build?.state === 'FAILED') throw new Error(`staging ${name} failed: ${app.build.error?.message}`);
    return app.build !== null && app.build.guid !== previousBuild && app.build.state === 'STAGED';
  });
  const stagedMs = performance.now() - started;
  await until(`${name} running`, async () => ((await client.app(name)).running_instances ?? 0) >= 1);
  return { stagedMs, runningMs: performance.now() - started };
}

// ---- main ------------------------------------------------------------------------------------

const figures: Figures = {};
const notes: string[] = [];
let daemon: Daemon | undefined;
let registry: { stop(): Promise<void>; address: string } | undefined;
try {
  const baselines: number[] = [];
  for (let i = 0; i < Math.max(RUNS, 1); i += 1) baselines.push(baselineBuild());
  figures.baseline_build_ms = Math.min(...baselines);

  // The docker example, when the test registry helpers are present in this checkout.
  const registrySupport = join(repo, 'test/support/registry.ts');
  let dockerImage: string | undefined;
  const extraFlags: string[] = [];
  if (existsSync(registrySupport)) {
    const support = (await import(registrySupport)) as typeof import('../../test/support/registry.js');
    const started = await support.startRegistry({});
    registry = started;
    dockerImage = await support.pushExampleImage(started);
    extraFlags.push(...support.daemonFlagsFor(started));
  } else {
    notes.push('docker part skipped: test/support/registry.ts is not in this checkout');
  }

  daemon = await startDaemon(extraFlags);
  const client = api(daemon);
  const tgz = join(root, 'node-app.tgz');
  spawnSync('tar', ['-czf', tgz, '-C', join(repo, 'examples/node-app'), '.']);

  await client.call('POST', '/apps', { name: 'bench-node' });
  await client.call('PUT', '/apps/bench-node/bits', new Uint8Array(readFileSync(tgz)));
  const cold = await timeStaging(client, 'bench-node', 'start');
  figures.cold_staging_ms = cold.stagedMs;
  figures.cold_start_to_running_ms = cold.runningMs;
  const firstBuild = (await client.app('bench-node')).build?.guid;
  const warm = await timeStaging(client, 'bench-node', 'restage', firstBuild);
  figures.warm_staging_ms = warm.stagedMs;
  figures.warm_start_to_running_ms = warm.runningMs;

  if (dockerImage !== undefined) {
    for (const [label, name] of [
      ['docker_cold', 'bench-docker'],
      ['docker_warm', 'bench-docker-2'],
    ] as const) {
      await client.call('POST', '/apps', { name, docker_image: dockerImage });
      const timing = await timeStaging(client, name, 'start');
      figures[`${label}_staging_ms`] = timing.stagedMs;
      figures[`${label}_desire_to_running_ms`] = timing.runningMs - timing.stagedMs;
    }
  }
} finally {
  daemon?.child.kill('SIGTERM');
  if (daemon && daemon.child.exitCode === null) await new Promise((resolve) => daemon!.child.once('exit', resolve));
  await registry?.stop();
  rmSync(root, { recursive: true, force: true });
}

const ms = (value: number | undefined) => (value === undefined ? 'n/a' : `${Math.round(value)} ms`);
console.log('bench/staging (one app at a time through the all-in-one; see the header of bench/staging/run.ts)');
console.log(`  baseline: builder as a plain process        ${ms(figures.baseline_build_ms)}`);
console.log(`  node-app cold: start → staged               ${ms(figures.cold_staging_ms)}  (${(figures.cold_staging_ms! / figures.baseline_build_ms!).toFixed(1)}× baseline)   → RUNNING ${ms(figures.cold_start_to_running_ms)}`);
console.log(`  node-app warm: restage → staged             ${ms(figures.warm_staging_ms)}  (${(figures.warm_staging_ms! / figures.baseline_build_ms!).toFixed(1)}× baseline)   → RUNNING ${ms(figures.warm_start_to_running_ms)}`);
console.log(`  docker cold: start → staged                 ${ms(figures.docker_cold_staging_ms)}   desire → RUNNING ${ms(figures.docker_cold_desire_to_running_ms)}`);
console.log(`  docker, image cached: start → staged        ${ms(figures.docker_warm_staging_ms)}   desire → RUNNING ${ms(figures.docker_warm_desire_to_running_ms)}`);
for (const note of notes) console.log(`  note: ${note}`);

const baseline = { name: 'the builder as a plain host process', value: figures.baseline_build_ms!, unit: 'ms' };
/** A row in milliseconds; with a goal, held to it; with `vsBaseline`, beside the builder alone. */
const row = (figure: string, value: number, goalMs?: number, vsBaseline = false): BenchRow => ({
  figure,
  value,
  unit: 'ms',
  ...(vsBaseline ? { baseline, ratio: value / baseline.value } : {}),
  ...(goalMs === undefined ? {} : { goal: `≤ ${goalMs} ms`, met: value <= goalMs }),
});
const rows: BenchRow[] = [
  row('the builder alone (baseline)', baseline.value),
  row('node-app, cold: start → staged', figures.cold_staging_ms!, GOALS.coldStagingMs, true),
  row('node-app, cold: start → RUNNING', figures.cold_start_to_running_ms!),
  row('node-app, warm cache: restage → staged', figures.warm_staging_ms!, GOALS.warmStagingMs, true),
  row('node-app, warm cache: restage → RUNNING', figures.warm_start_to_running_ms!),
];
if (figures.docker_cold_staging_ms !== undefined) {
  rows.push(
    row('docker example, cold: start → staged (metadata from the registry)', figures.docker_cold_staging_ms),
    row('docker example, cold: desire → RUNNING (layers pulled and unpacked)', figures.docker_cold_desire_to_running_ms!, GOALS.dockerDesireMs),
    row('docker example, image cached: start → staged', figures.docker_warm_staging_ms!),
    row('docker example, image cached: desire → RUNNING', figures.docker_warm_desire_to_running_ms!, GOALS.dockerDesireMs),
  );
}
printBenchResult({ name: 'staging', sizes: `${Math.max(RUNS, 1)} baseline run(s); one app per step`, rows, notes });
