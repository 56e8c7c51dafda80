// The split daemons as an operator runs them on one machine: every component in its own process
// (`ccbridge locket`, `diego`, `cloud-controller`, `file-server`, `uploader`, `stager`,
// `nsync-listener`, `nsync-bulker`, `tps-listener`, `tps-watcher`, `gateway`, `router`), pointed at
// the others by flags, each with its own data directory. The development CC stages and runs the
// example Node.js app through the gateway and the remote services on the Diego daemon's cell; the
// router serves it; a killed instance is reported and comes back; scale to 3; stop; and SIGTERM
// ends every daemon with status 0, leaving no sandbox or pasta behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  waitFor,
  type Daemon,
  type ProcessInfo,
} from '../support/daemons.js';

const root = mkdtempSync(join(tmpdir(), 'ccbridge-split-'));
const appTgz = join(root, 'app.tgz');
const CC_USER = 'internal_user';
const CC_PASSWORD = 'split-daemons-password';

/** Started daemons, in start order; stopped in reverse. */
const daemons: Daemon[] = [];
let ccUrl = '';
let routerUrl = '';
let tpsUrl = '';
let diego: Daemon;
const { api, app, events } = devCcApi(() => ccUrl, { username: CC_USER, password: CC_PASSWORD });
const viaRouter = async () => (await routed(routerUrl, 'hello.localhost')).text;

async function start(name: string, args: string[], ready: RegExp): Promise<Daemon> {
  const dataDir = join(root, name);
  mkdirSync(dataDir, { recursive: true });
  const daemon = await startDaemon(name, [name, `-dataDir=${dataDir}`, '-logLevel=warn', ...args], ready);
  daemons.push(daemon);
  return daemon;
}

before(async () => {
  execFileSync('tar', ['-czf', appTgz, '-C', join(repo, 'examples/node-app'), '.']);
  // Addresses others are pointed at are chosen up front (the daemons start side by side, and the
  // file server's, the uploader's and the CC's go into the cell's port map); the REST listeners of
  // the services (the Stager's named in its own task callbacks) and the router's take port 0.
  const [locket, bbs, fileServer, uploader, cc, stagerGrpc, nsyncGrpc, tpsGrpc, gateway] = (await freePorts(9)).map((port) => `127.0.0.1:${port}`);
  const [stagerRest, nsyncRest, tpsRest, router] = ['127.0.0.1:0', '127.0.0.1:0', '127.0.0.1:0', '127.0.0.1:0'];
  const url = (address: string | undefined) => `http://${address}`;
  const cc_ = [`-ccBaseURL=${url(cc)}`, `-ccUsername=${CC_USER}`, `-ccPassword=${CC_PASSWORD}`];
  const fast = ['-lockRetryInterval=200ms', '-lockTTL=5s'];

  // Those that need nobody at start, side by side; then those that call them.
  const first = await Promise.all([
    start('locket', [`-locketListenAddress=${locket}`], /^locket +grpc:/m),
    start('diego', [`-listenAddress=${bbs}`, `-cellHostServicePorts=${[fileServer, uploader, cc].map((a) => a!.split(':')[1]).join(',')}`], /^ {2}cell /m),
    start('file-server', [`-fileServerListenAddress=${fileServer}`, `-staticDirectory=${join(root, 'file-server', 'static')}`, '-packLifecycles'], /^file-server +http/m),
    start('uploader', [`-ccUploaderListenAddress=${uploader}`], /^uploader +http/m),
    start('cloud-controller', [`-ccListenAddress=${cc}`, `-bridgeURL=${url(gateway)}`, `-fileServerURL=${url(fileServer)}`, `-ccUsername=${CC_USER}`, `-ccPassword=${CC_PASSWORD}`], /^cloud controller/m),
  ]);
  diego = first[1];
  ccUrl = first[4].address('cloud controller');
  const bbsFlag = `-bbsAddress=${first[1].address('diego')}`;
  const fileServerFlag = `-fileServerURL=${url(fileServer)}`;
  const second = await Promise.all([
    start('stager', [bbsFlag, ...cc_, fileServerFlag, `-ccUploaderURL=${url(uploader)}`, `-listenAddress=${stagerRest}`, `-grpcListenAddress=${stagerGrpc}`], /^stager +rest/m),
    start('nsync-listener', [bbsFlag, fileServerFlag, `-listenAddress=${nsyncRest}`, `-grpcListenAddress=${nsyncGrpc}`], /^nsync +rest/m),
    start('tps-listener', [bbsFlag, `-listenAddress=${tpsRest}`, `-grpcListenAddress=${tpsGrpc}`], /^tps +rest/m),
    start('gateway', [`-listenAddress=${gateway}`, `-stagerAddress=${stagerGrpc}`, `-nsyncAddress=${nsyncGrpc}`, `-tpsAddress=${tpsGrpc}`], /^gateway +rest/m),
    start('router', [bbsFlag, `-routerListenAddress=${router}`], /^router +http/m),
    start('nsync-bulker', [bbsFlag, ...cc_, fileServerFlag, `-locketAddress=${locket}`, '-pollingInterval=2s', ...fast], /^nsync-bulker /m),
    start('tps-watcher', [bbsFlag, ...cc_, `-locketAddress=${locket}`, ...fast], /^tps-watcher /m),
  ]);
  routerUrl = second[4].address('router');
  tpsUrl = second[2].address('tps +rest');
});

after(async () => {
  for (const daemon of [...daemons].reverse()) if (daemon.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

test('push, run, crash, scale and stop the example app with every component in its own process', { timeout: 600_000 }, async () => {
  assert.equal((await api('POST', '/apps', { name: 'hello' })).status, 201);
  assert.ok((await api('PUT', '/apps/hello/bits', readFileSync(appTgz))).status < 300);
  assert.ok((await api('POST', '/apps/hello/start')).status < 300);
  await waitFor('the app staged and running', async () => (await app('hello')).running_instances === 1, 240_000);
  await waitFor('the router serving it', async () => (await viaRouter()).includes('hello from ccbridge'));

  // Kill the app's process: the watcher reports the crash to the CC, and Diego brings it back.
  const [pid] = appProcessesUnder(diego.child.pid!);
  assert.ok(pid, 'the app process runs below the diego daemon');
  process.kill(pid!, 'SIGKILL');
  await waitFor('the crash event in the CC', async () => (await events('hello')).some((e) => e.type === 'app.crash'));
  await waitFor('the instance back', async () => (await app('hello')).running_instances === 1 && (await viaRouter()).includes('hello from ccbridge'));

  // Scale to 3: three RUNNING behind the router.
  assert.ok((await api('POST', '/apps/hello/scale', { instances: 3 })).status < 300);
  await waitFor('3 instances running', async () => (await app('hello')).running_instances === 3);
  await waitFor('3 app processes on the cell', async () => appProcessesUnder(diego.child.pid!).length === 3);
  for (let i = 0; i < 6; i++) assert.match(await viaRouter(), /hello from ccbridge/);
  // The TPS listener serves its own CC routes on -listenAddress too, as the original daemon did.
  const processGuid = ((await app('hello')) as { process_guid?: string }).process_guid;
  assert.ok(processGuid);
  const instances = (await (await fetch(`${tpsUrl}/v1/actual_lrps/${processGuid}`)).json()) as { state: string }[];
  assert.deepEqual(instances.map((i) => i.state), ['RUNNING', 'RUNNING', 'RUNNING']);
  const sandboxes: ProcessInfo[] = descendants(diego.child.pid!);
  assert.ok(sandboxes.some((p) => p.cmdline.includes('bwrap')) && sandboxes.some((p) => p.cmdline.includes('pasta')), 'the instances run in bwrap sandboxes networked by pasta');

  // Stop: gone from the router and from the cell.
  assert.ok((await api('POST', '/apps/hello/stop')).status < 300);
  await waitFor('no instance routed', async () => (await routed(routerUrl, 'hello.localhost')).status >= 400);
  await waitFor('no app process left', async () => appProcessesUnder(diego.child.pid!).length === 0);

  // SIGTERM to every daemon, the last started first: each exits 0 and leaves nothing running.
  const children = daemons.flatMap((d) => descendants(d.child.pid!));
  const exits: Record<string, number> = {};
  for (const daemon of [...daemons].reverse()) exits[daemon.name] = await stopDaemon(daemon);
  assert.deepEqual(
    exits,
    Object.fromEntries(daemons.map((d) => [d.name, 0])),
    `every daemon exits 0:\n${daemons.filter((d) => exits[d.name] !== 0).map((d) => `${d.name}: ${d.output()}`).join('\n')}`,
  );
  assert.deepEqual(stillAlive([...sandboxes, ...children]), [], 'no sandbox, pasta, app or other child process survives');
  assert.deepEqual(processesMentioning(root), [], 'nothing of the daemons is left running');
});
