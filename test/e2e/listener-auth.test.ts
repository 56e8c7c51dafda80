// The all-in-one with basic auth on its CC-facing routes and no TLS: the development CC drives the
// bridge with the credentials, the embedded Diego's completion callback carries them too (so
// staging completes), a caller without them gets 401, and the stats route, which passes the
// caller's Authorization on, takes no basic credentials at all.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { devCcApi, repo, startDaemon, stopDaemon, waitFor, type Daemon } from '../support/daemons.js';

const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-listener-auth-'));
const appTgz = join(dataDir, 'app.tgz');
let daemon: Daemon;
const { api, app } = devCcApi(() => daemon.address('cc'));
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

before(async () => {
  execFileSync('tar', ['-czf', appTgz, '-C', join(repo, 'examples/node-app'), '.']);
  const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress', 'fileServerListenAddress', 'uploaderListenAddress', 'ccListenAddress'];
  daemon = await startDaemon(
    'ccbridge',
    [`-dataDir=${dataDir}`, '-logLevel=warn', '-lockRetryInterval=200ms', '-pollingInterval=10m', ...ports.map((p) => `-${p}=127.0.0.1:0`), '-listenerUsername=bridge-user', '-listenerPassword=bridge-password'],
    / {2}cell {10}/,
  );
});

after(async () => {
  if (daemon?.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

test('basic auth on the gateway: staging completes through the authenticated callback; no credentials, 401', { timeout: 300_000 }, async () => {
  const gateway = daemon.address('gateway');
  const refused = await fetch(`${gateway}/v1/actual_lrps/anything`);
  assert.equal(refused.status, 401);
  assert.match(refused.headers.get('www-authenticate') ?? '', /^Basic /);
  assert.equal((await fetch(`${gateway}/v1/actual_lrps/anything`, { headers: { Authorization: basic('bridge-user', 'bridge-password') } })).status, 200);
  assert.equal((await fetch(`${gateway}/v1/actual_lrps/anything/stats`, { headers: { Authorization: basic('bridge-user', 'bridge-password') } })).status, 401);

  assert.equal((await api('POST', '/apps', { name: 'hello' })).status, 201);
  assert.ok((await api('PUT', '/apps/hello/bits', readFileSync(appTgz))).status < 300);
  assert.ok((await api('POST', '/apps/hello/start')).status < 300);
  await waitFor('the app staged and running', async () => (await app('hello')).running_instances === 1, 240_000);
  await stopDaemon(daemon);
});
