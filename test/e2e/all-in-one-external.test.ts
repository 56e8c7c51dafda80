// The all-in-one daemon with its neighbours outside it: Locket, Diego (with its cell) and the
// development Cloud Controller run as their own daemons, and `ccbridge -locketAddress=…
// -bbsAddress=… -ccBaseURL=…` runs the rest (gateway, services, bulker, watcher, file server,
// uploader, router) against them. The CC stages and runs the example app through the
// all-in-one's gateway on the external cell, the router serves it, and every daemon stops with 0.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { appProcessesUnder, descendants, devCcApi, freePorts, processesMentioning, repo, routed, startDaemon, stillAlive, stopDaemon, waitFor, type Daemon } from '../support/daemons.js';

const root = mkdtempSync(join(tmpdir(), 'ccbridge-external-'));
const appTgz = join(root, 'app.tgz');
const daemons: Daemon[] = [];
let ccUrl = '';
let routerUrl = '';
let diego: Daemon;
let allInOne: Daemon;
const { api, app } = devCcApi(() => ccUrl);

async function start(name: string, args: string[], ready: RegExp): Promise<Daemon> {
  const dataDir = join(root, name || 'all-in-one');
  mkdirSync(dataDir, { recursive: true });
  const daemon = await startDaemon(name || 'ccbridge', [...(name ? [name] : []), `-dataDir=${dataDir}`, '-logLevel=warn', ...args], ready);
  daemons.push(daemon);
  return daemon;
}

before(async () => {
  execFileSync('tar', ['-czf', appTgz, '-C', join(repo, 'examples/node-app'), '.']);
  const [locket, bbs, cc, gateway, fileServer, uploader] = (await freePorts(6)).map((port) => `127.0.0.1:${port}`);
  const port = (address: string | undefined) => address!.split(':')[1];
  const [, diegoDaemon, ccDaemon] = await Promise.all([
    start('locket', [`-locketListenAddress=${locket}`], /^locket +grpc:/m),
    start('diego', [`-listenAddress=${bbs}`, `-cellHostServicePorts=${[fileServer, uploader, cc].map(port).join(',')}`], /^ {2}cell /m),
    start('cloud-controller', [`-ccListenAddress=${cc}`, `-bridgeURL=http://${gateway}`, `-fileServerURL=http://${fileServer}`], /^cloud controller/m),
  ]);
  diego = diegoDaemon;
  ccUrl = ccDaemon.address('cloud controller');
  allInOne = await start(
    '',
    [
      `-locketAddress=${locket}`,
      `-bbsAddress=${diegoDaemon.address('diego')}`,
      `-ccBaseURL=${ccUrl}`,
      `-listenAddress=${gateway}`,
      `-fileServerListenAddress=${fileServer}`,
      `-uploaderListenAddress=${uploader}`,
      '-grpcListenAddress=127.0.0.1:0',
      '-routerListenAddress=127.0.0.1:0',
      '-lockRetryInterval=200ms',
      '-pollingInterval=2s',
    ],
    /^ {2}tps watcher/m,
  );
  routerUrl = allInOne.address('router');
});

after(async () => {
  for (const daemon of [...daemons].reverse()) if (daemon.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

test('the all-in-one runs the example app against an external Locket, Diego and Cloud Controller', { timeout: 600_000 }, async () => {
  const printed = allInOne.output();
  assert.match(printed, new RegExp(`diego \\(bbs\\) +${diego.address('diego')}`), 'the external BBS is the one printed');
  assert.doesNotMatch(printed, /^ {2}cell /m, 'no Diego or cell of its own');
  assert.match(printed, new RegExp(`^ {2}cc +${ccUrl}\\s*$`, 'm'), 'the external CC, and no development CC of its own');

  assert.equal((await api('POST', '/apps', { name: 'hello' })).status, 201);
  assert.ok((await api('PUT', '/apps/hello/bits', readFileSync(appTgz))).status < 300);
  assert.ok((await api('POST', '/apps/hello/start')).status < 300);
  await waitFor('the app staged and running on the external cell', async () => (await app('hello')).running_instances === 1, 240_000);
  await waitFor('the all-in-one router serving it', async () => (await routed(routerUrl, 'hello.localhost')).text.includes('hello from ccbridge'));
  assert.equal(appProcessesUnder(diego.child.pid!).length, 1, 'the instance runs on the diego daemon\'s cell');

  assert.ok((await api('POST', '/apps/hello/stop')).status < 300);
  await waitFor('no instance routed', async () => (await routed(routerUrl, 'hello.localhost')).status >= 400);
  await waitFor('no app process left', async () => appProcessesUnder(diego.child.pid!).length === 0);

  const sandboxes = descendants(diego.child.pid!);
  const exits: Record<string, number> = {};
  for (const daemon of [...daemons].reverse()) exits[daemon.name] = await stopDaemon(daemon);
  assert.deepEqual(exits, Object.fromEntries(daemons.map((d) => [d.name, 0])), daemons.map((d) => `${d.name}: ${d.output()}`).join('\n'));
  assert.deepEqual(stillAlive(sandboxes), []);
  assert.deepEqual(processesMentioning(root), []);
});
