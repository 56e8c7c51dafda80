// The all-in-one SIGKILLed mid-work and started again on the same data directory and ports:
// the app desired before is still desired and runs again, a report left in the watcher's outbox
// reaches CC, and the staging task that was running on the killed cell fails with a clear
// reason that reaches the development CC as a failed build.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { INSTANCE_LOST_REASON } from '../../embedded/diego/cell/cell.js';
import { ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { openOutbox } from '../../services/tps/watcher/outbox.js';
import { crashReportsForListing } from '../../services/tps/watcher/reports.js';
import {
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
  waitFor,
} from '../support/daemons.js';

const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-kill-'));
let daemon: Daemon | undefined;
let ports: string[] | undefined;

/** Every address fixed, so the restarted daemon is where the killed one was. */
async function startAllInOne(): Promise<Daemon> {
  if (ports === undefined) {
    const names = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress', 'fileServerListenAddress', 'uploaderListenAddress', 'ccListenAddress'];
    const free = await freePorts(names.length);
    ports = names.map((name, i) => `-${name}=127.0.0.1:${free[i]}`);
  }
  return startDaemon(
    'ccbridge',
    [
      `-dataDir=${dataDir}`,
      '-logLevel=warn',
      // The killed daemon's locks are in the embedded Locket's database: the new one waits them out.
      '-lockTTL=2s',
      '-lockRetryInterval=200ms',
      '-pollingInterval=2s',
      '-reportRetryInterval=200ms',
      ...ports,
    ],
    / {2}cell {10}/,
  );
}

const cc = () => daemon!.address('cc');
const { api, app, events } = devCcApi(cc);

after(async () => {
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

test('SIGKILL mid-work, restart on the same data and ports: apps back, outbox delivered, the interrupted staging failed and CC told', { timeout: 600_000 }, async () => {
  const helloTgz = join(dataDir, 'hello.tgz');
  execFileSync('tar', ['-czf', helloTgz, '-C', join(repo, 'examples/node-app'), '.']);
  // An app whose staging does not end by itself: npm runs its preinstall script, which sleeps.
  const hangDir = join(dataDir, 'hang-app');
  mkdirSync(join(hangDir, 'dep'), { recursive: true });
  writeFileSync(join(hangDir, 'dep', 'package.json'), JSON.stringify({ name: 'dep', version: '1.0.0' }));
  writeFileSync(join(hangDir, 'package.json'), JSON.stringify({ name: 'hang', version: '1.0.0', scripts: { preinstall: 'sleep 3600' }, dependencies: { dep: 'file:dep' } }));
  writeFileSync(join(hangDir, 'server.js'), 'require("http").createServer((q, s) => s.end("hang")).listen(process.env.PORT);\n');
  const hangTgz = join(dataDir, 'hang.tgz');
  execFileSync('tar', ['-czf', hangTgz, '-C', hangDir, '.']);

  daemon = await startAllInOne();
  assert.equal((await api('POST', '/apps', { name: 'hello' })).status, 201);
  assert.ok((await api('PUT', '/apps/hello/bits', readFileSync(helloTgz))).status < 300);
  assert.ok((await api('POST', '/apps/hello/start')).status < 300);
  await waitFor('hello running', async () => (await app('hello')).running_instances === 1, 240_000);
  const helloGuid = (await app('hello')).guid!;

  assert.equal((await api('POST', '/apps', { name: 'hang' })).status, 201);
  assert.ok((await api('PUT', '/apps/hang/bits', readFileSync(hangTgz))).status < 300);
  assert.ok((await api('POST', '/apps/hang/start')).status < 300);
  await waitFor('the staging task sleeping on the cell', async () => descendants(daemon!.child.pid!).some((p) => p.cmdline.includes('sleep 3600')), 240_000);

  // Killed mid-work: no drain, no release, no flush. Its sandboxes die with it.
  const sandboxes = descendants(daemon.child.pid!);
  assert.equal(await stopDaemon(daemon, 'SIGKILL'), 137);
  await waitFor('the sandboxes gone with the daemon', async () => stillAlive(sandboxes).length === 0, 30_000);

  // A crash report the killed watcher had queued but not delivered.
  const outbox = openOutbox(join(dataDir, 'tps-watcher'));
  const planted = crashReportsForListing(
    [
      ActualLRP.fromPartial({
        actualLrpKey: { processGuid: `${helloGuid}-planted`, index: 0, domain: 'cf-apps' },
        actualLrpInstanceKey: { instanceGuid: 'planted-instance', cellId: 'cell-planted' },
        state: 'CRASHED',
        crashCount: 1,
        crashReason: 'queued before the kill',
        since: String(Date.now() * 1_000_000),
      }),
    ],
    'legacy',
  );
  try {
    assert.equal(outbox.enqueue(planted, Date.now()), 1);
  } finally {
    outbox.close();
  }

  daemon = await startAllInOne();

  // The staging task interrupted by the kill fails with a reason that says so, and CC hears of it.
  const build = await waitFor(
    'the interrupted build failed',
    async () => {
      const { resources } = (await (await api('GET', '/apps/hang/builds')).json()) as { resources: { state: string; error: { id: string; message: string } | null }[] };
      return resources.find((b) => b.state === 'FAILED');
    },
    120_000,
  );
  // CC shows the whitelisted Diego messages only: this one is the generic staging error.
  assert.deepEqual(build.error, { id: 'StagingError', message: 'staging failed' });

  // The app desired before the kill runs again.
  await waitFor('hello running again', async () => (await app('hello')).running_instances === 1 && (await routed(daemon!.address('router'), 'hello.localhost')).text.includes('hello from ccbridge'), 240_000);

  // The report left in the outbox reached CC.
  await waitFor('the outbox empty', async () => {
    const box = openOutbox(join(dataDir, 'tps-watcher'));
    try {
      return box.depth() === 0;
    } finally {
      box.close();
    }
  }, 60_000);
  await waitFor('the planted report at CC', async () =>
    (await events('hello')).some((e) => e.type === 'app.crash' && (e as { metadata?: { exit_description?: string } }).metadata?.exit_description === 'queued before the kill'),
  );
  // The instance killed with the daemon is reported as a crash.
  await waitFor(
    'the crash of the killed instance reported',
    async () => (await events('hello')).some((e) => e.type === 'app.crash' && (e as { metadata?: { exit_description?: string } }).metadata?.exit_description === INSTANCE_LOST_REASON),
    120_000,
  );

  assert.equal(await stopDaemon(daemon), 0, daemon.output());
  assert.deepEqual(processesMentioning(dataDir), [], 'nothing of the daemon is left running');
});
