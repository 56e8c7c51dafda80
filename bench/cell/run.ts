// bench/cell: how fast the embedded cell brings app instances up.
//
// Process layout: one process — the embedded Diego and its cell (bubblewrap sandboxes wired by
// pasta, as the all-in-one runs them), a small HTTP server handing out the app script; the
// apps run as sandboxed processes. 127.0.0.1; 2 cores.
// Load model: (1) one LRP of 20 instances desired at once; time from the desire call until all
// 20 are RUNNING (TCP health check passed), and until each one is. (2) container start overhead:
// 10 sequential starts of `node -e "…listen…"` until it accepts a TCP connection, sandboxed
// (a fresh container each time: bwrap + pasta + the process) vs a plain child process.
// Data shape: a Node.js HTTP server of a few lines, downloaded into each container (cached
// after the first download).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBbsClient } from '../../clients/bbs/index.js';
import { startEmbeddedCell } from '../../embedded/diego/cell/index.js';
import { startEmbeddedDiego } from '../../embedded/diego/index.js';
import { createExecutor } from '../../embedded/diego/executor/index.js';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import { MetricTagValue_DynamicValue } from '../../gen/diego/bbs/v1/container.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { silentLogger } from '../../lib/log.js';
import { printBenchResult } from '../lib/result.js';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 20);
const STARTS = Number(process.env.BENCH_STARTS ?? 10);
const log = silentLogger();
const root = mkdtempSync(join(tmpdir(), 'bench-cell-'));
const APP = "require('http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT || 8080), '0.0.0.0');\n";

const appDir = join(root, 'app');
mkdirSync(appDir);
writeFileSync(join(appDir, 'app.js'), APP);
execFileSync('tar', ['-czf', join(root, 'app.tgz'), '-C', appDir, '.']);
const tgz = readFileSync(join(root, 'app.tgz'));
const files = createServer((req, res) => res.writeHead(200, { 'Last-Modified': new Date(0).toUTCString() }).end(tgz));
await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
const filesPort = (files.address() as AddressInfo).port;

function tcpUp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function untilUp(port: number, deadlineMs = 30_000): Promise<void> {
  const deadline = performance.now() + deadlineMs;
  while (!(await tcpUp(port))) {
    if (performance.now() > deadline) throw new Error(`port ${port} never came up`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

try {
  // (1) desire → RUNNING for INSTANCES instances.
  const diego = await startEmbeddedDiego({ dataDir: join(root, 'diego'), logger: log, timing: { convergenceIntervalMs: 1_000 } });
  const cell = await startEmbeddedCell({ diego, dataDir: join(root, 'cell'), logger: log, hostServicePorts: [filesPort], capacity: { memoryMb: 64 * 1024, containers: 256 } });
  const bbs = createBbsClient({ url: diego.url, logger: log });
  const processGuid = 'bench-cell-app';
  const desired = DesiredLRP.fromPartial({
    processGuid,
    domain: 'bench',
    rootFs: 'preloaded:cflinuxfs4',
    instances: INSTANCES,
    memoryMb: 64,
    diskMb: 64,
    ports: [8080],
    logGuid: processGuid,
    metricsGuid: processGuid,
    metricTags: { source_id: { static: processGuid }, instance_id: { dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX } },
    setup: Action.fromPartial({ downloadAction: { from: `http://127.0.0.1:${filesPort}/app.tgz`, to: '/home/vcap/app', user: 'vcap', cacheKey: 'bench-app' } }),
    action: Action.fromPartial({ runAction: { path: 'node', args: ['/home/vcap/app/app.js'], user: 'vcap', env: [{ name: 'PORT', value: '8080' }] } }),
    startTimeoutMs: '60000',
    checkDefinition: { checks: [{ tcpCheck: { port: 8080, connectTimeoutMs: '500', intervalMs: '50' } }], logSource: 'HEALTH', readinessChecks: [] },
  });
  const t0 = performance.now();
  await bbs.desireLrp(desired);
  const runningAt: number[] = [];
  const seen = new Set<number>();
  while (seen.size < INSTANCES && performance.now() - t0 < 120_000) {
    for (const actual of await bbs.actualLrps({ processGuid })) {
      const index = actual.actualLrpKey!.index;
      if (actual.state === 'RUNNING' && !seen.has(index)) {
        seen.add(index);
        runningAt.push(performance.now() - t0);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  runningAt.sort((a, b) => a - b);
  await cell.close({ evacuate: false });
  bbs.close();
  await diego.close(100);

  // (2) start overhead: sandboxed vs plain.
  const executor = createExecutor({ dataDir: join(root, 'executor'), logger: log });
  const sandboxed: number[] = [];
  for (let n = 0; n < STARTS; n++) {
    const t = performance.now();
    const container = await executor.createContainer({ guid: `bench-${n}`, rootfs: 'host', env: [], ports: [8080], memoryMb: 64, diskMb: 64, logSink: () => {}, hostServicePorts: [] });
    const hostPort = container.portMappings.find((m) => m.containerPort === 8080)!.hostPort;
    const handle = container.run({ path: 'node', args: ['-e', APP], user: 'vcap', env: [{ name: 'PORT', value: '8080' }] });
    // pasta accepts on the host port before the app listens; a full HTTP answer proves the app.
    const deadline = performance.now() + 30_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${hostPort}/`).then((r) => r.ok, () => false);
      if (ok || performance.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    sandboxed.push(performance.now() - t);
    await handle.stop(1_000);
    await container.destroy();
  }
  await executor.close();
  const plain: number[] = [];
  for (let n = 0; n < STARTS; n++) {
    const port = 42000 + n;
    const t = performance.now();
    const child = spawn(process.execPath, ['-e', APP], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
    await untilUp(port);
    plain.push(performance.now() - t);
    child.kill('SIGKILL');
  }
  sandboxed.sort((a, b) => a - b);
  plain.sort((a, b) => a - b);

  console.log(`bench/cell: one LRP of ${INSTANCES} instances on the embedded cell (bubblewrap + pasta)`);
  console.log(`desire → all ${INSTANCES} RUNNING   ${(runningAt.at(-1)! / 1000).toFixed(2)} s   (first ${(runningAt[0]! / 1000).toFixed(2)} s, median ${(q(runningAt, 0.5) / 1000).toFixed(2)} s, ${seen.size} of ${INSTANCES} seen)`);
  console.log(`process start until it answers, ${STARTS} starts each:`);
  console.log(`  sandboxed (new container)   median ${q(sandboxed, 0.5).toFixed(0)} ms   max ${sandboxed.at(-1)!.toFixed(0)} ms`);
  console.log(`  plain child process         median ${q(plain, 0.5).toFixed(0)} ms   max ${plain.at(-1)!.toFixed(0)} ms`);
  console.log(`  overhead                    ${(q(sandboxed, 0.5) - q(plain, 0.5)).toFixed(0)} ms (${(q(sandboxed, 0.5) / q(plain, 0.5)).toFixed(1)}×)`);
  printBenchResult({
    name: 'cell',
    sizes: `${INSTANCES} instances; ${STARTS} starts each`,
    rows: [
      { figure: `desire → all ${INSTANCES} instances RUNNING`, value: (runningAt.at(-1) ?? NaN) / 1000, unit: 's' },
      { figure: 'desire → first instance RUNNING', value: (runningAt[0] ?? NaN) / 1000, unit: 's' },
      { figure: 'sandboxed process start until it answers, median', value: q(sandboxed, 0.5), unit: 'ms', baseline: { name: 'plain child process', value: q(plain, 0.5) }, ratio: q(sandboxed, 0.5) / q(plain, 0.5) },
    ],
    notes: seen.size < INSTANCES ? [`only ${seen.size} of ${INSTANCES} instances were seen RUNNING`] : [],
  });
} finally {
  files.close();
  rmSync(root, { recursive: true, force: true });
}
process.exit(0);
