// The all-in-one daemon as a user runs it (`ccbridge` with every address on port 0 and a fresh
// data directory): the development CC stages and runs the example Node.js app through the
// bridge's routes on the embedded cell, the router serves it, a killed instance is reported and
// comes back, scaling works, a restart of the daemon brings the app back, and shutdown leaves
// no process behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-e2e-'));
const appTgz = join(dataDir, 'app.tgz');

interface Daemon {
  child: ChildProcess;
  cc: string;
  router: string;
  output: () => string;
}

/** A port free now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Addresses that end up inside desired LRPs (the file server's lifecycle URL, the CC's droplet
 * URL) keep their port across a restart, as `npm start`'s fixed defaults do; the rest use port 0.
 */
let fixedPorts: string[] | undefined;

async function startDaemon(): Promise<Daemon> {
  fixedPorts ??= [`-fileServerListenAddress=127.0.0.1:${await freePort()}`, `-uploaderListenAddress=127.0.0.1:${await freePort()}`, `-ccListenAddress=127.0.0.1:${await freePort()}`];
  const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress'];
  const child = spawn(
    process.execPath,
    [join(repo, 'bin/ccbridge.js'), `-dataDir=${dataDir}`, '-logLevel=warn', '-lockRetryInterval=200ms', '-pollingInterval=2s', ...fixedPorts, ...ports.map((p) => `-${p}=127.0.0.1:0`)],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const deadline = Date.now() + 60_000;
  while (!/ {2}cell {10}/.test(output)) {
    if (child.exitCode !== null) throw new Error(`ccbridge exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`ccbridge did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const address = (name: string) => new RegExp(`  ${name} +(http://[0-9.:]+)`).exec(output)![1]!;
  return { child, cc: address('cc'), router: address('router'), output: () => output };
}

async function stopDaemon(daemon: Daemon): Promise<void> {
  daemon.child.kill('SIGTERM');
  await new Promise<void>((resolve) => (daemon.child.exitCode !== null ? resolve() : daemon.child.once('exit', () => resolve())));
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

interface App {
  state: string;
  running_instances: number;
  instances: number;
  instance_details?: { index: number; state: string }[];
}

let daemon: Daemon;
const api = async (method: string, path: string, body?: unknown): Promise<Response> =>
  fetch(`${daemon.cc}/dev/v1${path}`, {
    method,
    headers: body instanceof Buffer ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : body instanceof Buffer ? body : JSON.stringify(body),
  });
const app = async (): Promise<App> => (await (await api('GET', '/apps/hello')).json()) as App;
/** GET / through the router with the app's Host header (fetch does not let a caller set Host). */
function routed(): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(daemon.router);
    request({ host: url.hostname, port: url.port, path: '/', headers: { Host: 'hello.localhost' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    })
      .on('error', reject)
      .end();
  });
}
const viaRouter = async (): Promise<string> => (await routed()).text;

/** Processes of this test's apps, found by their data directory in /proc. */
function appProcesses(): number[] {
  const pids: number[] = [];
  for (const pid of execFileSync('ls', ['/proc'], { encoding: 'utf8' }).split('\n').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes('server.js') && !cmdline.includes('bwrap')) pids.push(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function leftovers(): string[] {
  const found: string[] = [];
  for (const pid of execFileSync('ls', ['/proc'], { encoding: 'utf8' }).split('\n').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(dataDir)) found.push(`${pid}: ${cmdline.slice(0, 120)}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

before(async () => {
  execFileSync('tar', ['-czf', appTgz, '-C', join(repo, 'examples/node-app'), '.']);
  daemon = await startDaemon();
});

after(async () => {
  if (daemon?.child.exitCode === null) await stopDaemon(daemon);
  rmSync(dataDir, { recursive: true, force: true });
});

test('push, run, crash, scale, restart and stop the example app on one machine', { timeout: 600_000 }, async () => {
  assert.equal((await api('POST', '/apps', { name: 'hello' })).status, 201);
  assert.equal((await api('PUT', '/apps/hello/bits', readFileSync(appTgz))).status < 300, true);
  assert.ok((await api('POST', '/apps/hello/start')).status < 300);
  await waitFor('the app running', async () => (await app()).running_instances === 1);
  assert.match(await viaRouter(), /hello from ccbridge/);

  // Kill the app's process: CC hears of the crash, and the instance comes back.
  const [pid] = appProcesses();
  assert.ok(pid, 'the app process is visible');
  process.kill(pid!, 'SIGKILL');
  await waitFor('the crash event', async () => {
    const events = (await (await api('GET', '/apps/hello/events')).json()) as { resources?: { type: string }[] } | { type: string }[];
    const list = Array.isArray(events) ? events : (events.resources ?? []);
    return list.some((e) => e.type === 'app.crash');
  });
  await waitFor('the instance back', async () => (await app()).running_instances === 1 && (await viaRouter()).includes('hello from ccbridge'));

  // Scale to 3: three RUNNING behind the router.
  assert.ok((await api('POST', '/apps/hello/scale', { instances: 3 })).status < 300);
  await waitFor('3 instances running', async () => (await app()).running_instances === 3);
  for (let i = 0; i < 6; i++) assert.match(await viaRouter(), /hello from ccbridge/);

  // A restart of the daemon keeps the app desired and brings its instances back.
  await stopDaemon(daemon);
  assert.deepEqual(appProcesses(), [], 'shutdown stops the app instances');
  daemon = await startDaemon();
  await waitFor('the app back after a restart', async () => (await app()).running_instances === 3 && (await viaRouter()).includes('hello from ccbridge'));

  // Stop: gone from the router.
  assert.ok((await api('POST', '/apps/hello/stop')).status < 300);
  await waitFor('no instance routed', async () => (await routed()).status >= 400);

  await stopDaemon(daemon);
  assert.deepEqual(leftovers(), [], 'nothing of the daemon is left running');
  assert.deepEqual(appProcesses(), []);
});
