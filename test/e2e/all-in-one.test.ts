// The all-in-one daemon as a user runs it (`ccbridge` with every address on port 0 and a fresh
// data directory): the development CC stages and runs the example Node.js app through the
// bridge's routes on the embedded cell, the router serves it, a killed instance is reported and
// comes back, scaling works, a restart of the daemon brings the app back, and shutdown leaves
// no process behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  appProcessesUnder,
  descendants,
  devCcApi,
  freePorts,
  processesMentioning,
  repo,
  routed,
  startDaemon,
  stillAlive,
  stopDaemon,
  type Daemon,
  type ProcessInfo,
  waitFor,
} from '../support/daemons.js';

const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-e2e-'));
const appTgz = join(dataDir, 'app.tgz');

/**
 * Addresses that end up inside desired LRPs (the file server's lifecycle URL, the CC's droplet
 * URL) keep their port across a restart, as `npm start`'s fixed defaults do; the rest use port 0.
 */
let fixedPorts: string[] | undefined;

async function startAllInOne(): Promise<Daemon> {
  if (fixedPorts === undefined) {
    const [fileServer, uploader, cc] = await freePorts(3);
    fixedPorts = [`-fileServerListenAddress=127.0.0.1:${fileServer}`, `-uploaderListenAddress=127.0.0.1:${uploader}`, `-ccListenAddress=127.0.0.1:${cc}`];
  }
  const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress'];
  return startDaemon(
    'ccbridge',
    [`-dataDir=${dataDir}`, '-logLevel=warn', '-lockRetryInterval=200ms', '-pollingInterval=2s', ...fixedPorts, ...ports.map((p) => `-${p}=127.0.0.1:0`)],
    / {2}cell {10}/,
  );
}

let daemon: Daemon;
const { api, app, events } = devCcApi(() => daemon.address('cc'));
const viaRouter = async (): Promise<string> => (await routed(daemon.address('router'), 'hello.localhost')).text;
const appProcesses = () => appProcessesUnder(daemon.child.pid!);

before(async () => {
  execFileSync('tar', ['-czf', appTgz, '-C', join(repo, 'examples/node-app'), '.']);
  daemon = await startAllInOne();
});

after(async () => {
  if (daemon?.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

test('push, run, crash, scale, restart and stop the example app on one machine', { timeout: 600_000 }, async () => {
  assert.equal((await api('POST', '/apps', { name: 'hello' })).status, 201);
  assert.equal((await api('PUT', '/apps/hello/bits', readFileSync(appTgz))).status < 300, true);
  assert.ok((await api('POST', '/apps/hello/start')).status < 300);
  await waitFor('the app running', async () => (await app('hello')).running_instances === 1, 240_000);
  await waitFor('the router serving it', async () => (await viaRouter()).includes('hello from ccbridge'));

  // Kill the app's process: CC hears of the crash, and the instance comes back.
  const [pid] = appProcesses();
  assert.ok(pid, 'the app process runs below the daemon');
  process.kill(pid!, 'SIGKILL');
  await waitFor('the crash event', async () => (await events('hello')).some((e) => e.type === 'app.crash'));
  await waitFor('the instance back', async () => (await app('hello')).running_instances === 1 && (await viaRouter()).includes('hello from ccbridge'));

  // Scale to 3: three RUNNING behind the router.
  assert.ok((await api('POST', '/apps/hello/scale', { instances: 3 })).status < 300);
  await waitFor('3 instances running', async () => (await app('hello')).running_instances === 3);
  for (let i = 0; i < 6; i++) assert.match(await viaRouter(), /hello from ccbridge/);

  // A restart of the daemon keeps the app desired and brings its instances back.
  let sandboxes: ProcessInfo[] = descendants(daemon.child.pid!);
  assert.equal(await stopDaemon(daemon), 0, daemon.output());
  assert.deepEqual(stillAlive(sandboxes), [], 'shutdown stops the app instances, their sandboxes and pasta');
  daemon = await startAllInOne();
  await waitFor('the app back after a restart', async () => (await app('hello')).running_instances === 3 && (await viaRouter()).includes('hello from ccbridge'));

  // Stop: gone from the router.
  assert.ok((await api('POST', '/apps/hello/stop')).status < 300);
  await waitFor('no instance routed', async () => (await routed(daemon.address('router'), 'hello.localhost')).status >= 400);

  sandboxes = descendants(daemon.child.pid!);
  assert.equal(await stopDaemon(daemon), 0, daemon.output());
  assert.deepEqual(stillAlive(sandboxes), []);
  assert.deepEqual(processesMentioning(dataDir), [], 'nothing of the daemon is left running');
});
