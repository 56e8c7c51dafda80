// SSH into an app instance on the embedded cell: nsync's recipe for an app that allows SSH (the
// real builder, real RSA keys) runs the buildpack lifecycle's diego-sshd codependent with the app;
// the system ssh client logs in through the published port of container port 2222 with the
// recipe's user key, trusting only the host key the route's fingerprint names. A wrong key is
// refused; dropbear dying does not take the instance down; neither private key reaches a log.
// Every server is on 127.0.0.1; every interval is milliseconds.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import type { ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { startEmbeddedCell, type EmbeddedCell } from '../../embedded/diego/cell/index.js';
import { ActualLrpState, startEmbeddedDiego, type EmbeddedDiego, type LogEnvelope } from '../../embedded/diego/index.js';
import { processTree } from '../../embedded/diego/executor/proc.js';
import { createLogger } from '../../lib/log.js';
import { packageBuildpackLifecycle } from '../../lifecycles/package.mjs';
import { desiredLrpFromDesireAppRequest, SSH_PORT, type RecipeConfig } from '../../services/nsync/recipe/index.js';
import { createSshKeyPairGenerator, sshKeyPairFromPrivateKey } from '../../services/nsync/recipe/ssh.js';
import { ssh, sshClientArgs } from '../support/ssh.js';

const token = `sshdtest${process.pid}`;
const root = mkdtempSync(join(tmpdir(), `${token}-`));
const PROCESS_GUID = `ssh-app-${token}`;
const LOG_GUID = `log-${token}`;

// Everything the Diego and its cell log, to look for keys in.
const logged: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk, _encoding, callback) {
      logged.push(String(chunk));
      callback();
    },
  }),
});

const SERVER_JS = `
require('http').createServer((req, res) => res.end('hello')).listen(Number(process.env.PORT), () => console.log('listening'));
`;

let server: Server;
let serverPort = 0;
const served = new Map<string, Buffer>();
let diego: EmbeddedDiego;
let bbs: BbsClient;
let cell: EmbeddedCell;

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function runningInstance(): Promise<ActualLRP | undefined> {
  const [lrp] = await bbs.actualLrpsByProcessGuids([PROCESS_GUID]);
  return lrp?.state === ActualLrpState.RUNNING ? lrp : undefined;
}

const commOf = (pid: number | string): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

/** Host pids of the instance's dropbear server: dropbears whose parent is not one (that is a session). */
function dropbearServers(): number[] {
  return processTree(process.pid).filter((pid) => {
    if (commOf(pid) !== 'dropbear') return false;
    let stat = '';
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return false;
    }
    // After the command name in parentheses: state, then the parent's pid.
    const parent = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '';
    return commOf(parent) !== 'dropbear';
  });
}

before(async () => {
  const lifecycleDir = join(root, 'lifecycle');
  const { path: lifecyclePath } = packageBuildpackLifecycle(lifecycleDir);
  served.set('/lifecycle.tgz', readFileSync(lifecyclePath));
  const dropletDir = join(root, 'droplet');
  mkdirSync(join(dropletDir, 'app'), { recursive: true });
  writeFileSync(join(dropletDir, 'app', 'server.js'), SERVER_JS);
  writeFileSync(join(dropletDir, 'staging_info.yml'), JSON.stringify({ detected_buildpack: 'test', start_command: 'node server.js' }));
  served.set('/droplet.tgz', execFileSync('tar', ['-czf', '-', '-C', dropletDir, '.']));

  server = createServer((req, res) => {
    const file = served.get(req.url ?? '');
    if (file === undefined) return void res.writeHead(404).end();
    res.writeHead(200).end(file);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverPort = (server.address() as AddressInfo).port;

  diego = await startEmbeddedDiego({
    dataDir: join(root, 'diego'),
    logger,
    timing: { convergenceIntervalMs: 500, taskKickIntervalMs: 500, staleUnclaimedMs: 500, cellTtlMs: 5_000, cellCheckIntervalMs: 200 },
    logCache: { flushIntervalMs: 20 },
  });
  bbs = createBbsClient({ url: diego.url, logger, timeoutMs: 20_000 });
  cell = await startEmbeddedCell({
    diego,
    cellId: `cell-${token}`,
    dataDir: join(root, 'cell'),
    logger,
    capacity: { memoryMb: 4096, diskMb: 16_384, containers: 8 },
    hostServicePorts: [serverPort],
    executorOptions: { stopGraceMs: 2_000, killWaitMs: 2_000, checkStartIntervalMs: 100, monitorStartIntervalMs: 100 },
    timing: { evacuationTimeoutMs: 500, evacuationPollIntervalMs: 50 },
  });
});

after(async () => {
  await cell?.close({ evacuate: false });
  bbs?.close();
  await diego?.close(100);
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

test('the system ssh logs into an instance that allows SSH with the recipe key; a wrong key is refused; dropbear dying leaves the instance running; no key is logged', async () => {
  const recipe: RecipeConfig = {
    lifecycles: { 'buildpack/cflinuxfs4': `http://127.0.0.1:${serverPort}/lifecycle.tgz` },
    fileServerUrl: `http://127.0.0.1:${serverPort}`,
    privilegedContainers: false,
    defaultHealthCheckTimeoutSeconds: 0,
    generateSshKeyPair: createSshKeyPairGenerator(),
  };
  const lrp = desiredLrpFromDesireAppRequest(
    DesireAppRequestFromCC.fromPartial({
      processGuid: PROCESS_GUID,
      dropletUri: `http://127.0.0.1:${serverPort}/droplet.tgz`,
      stack: 'cflinuxfs4',
      startCommand: 'node server.js',
      environment: [{ name: 'GREETING', value: 'hello from the app environment' }],
      memoryMb: 256,
      diskMb: 512,
      fileDescriptors: '1024',
      numInstances: 1,
      routes: [],
      logGuid: LOG_GUID,
      healthCheckType: 'port',
      healthCheckTimeoutInSeconds: 60,
      allowSsh: true,
      etag: '1',
    }),
    recipe,
  );
  // What CF's ssh-proxy holds: the route's user key and host fingerprint.
  const route = JSON.parse(Buffer.from(lrp.routes!.routes['diego-ssh']!).toString('utf8')) as { container_port: number; host_fingerprint: string; private_key: string };
  assert.equal(route.container_port, SSH_PORT);
  const sshdArgs = lrp.action!.codependentAction!.actions[1]!.runAction!.args;
  const hostKeyPem = sshdArgs.find((arg) => arg.startsWith('-hostKey='))!.slice('-hostKey='.length);
  const hostKey = sshKeyPairFromPrivateKey(hostKeyPem);
  assert.equal(hostKey.fingerprint, route.host_fingerprint, 'the route names the host key sshd gets');

  await bbs.desireLrp(lrp);
  const running = await waitFor('the instance RUNNING', runningInstance, 120_000);
  const sshPort = running.actualLrpNetInfo!.ports.find((mapping) => mapping.containerPort === SSH_PORT)?.hostPort;
  assert.ok(sshPort, 'container port 2222 is published');

  const dir = mkdtempSync(join(root, 'client-'));
  const keyFile = join(dir, 'id');
  writeFileSync(keyFile, route.private_key, { mode: 0o600 });
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${sshPort} ${hostKey.authorizedKey}\n`);
  const clientArgs = (trusted: string) => sshClientArgs(trusted, sshPort);
  const common = clientArgs(knownHosts);

  // diego-sshd may still be starting when the app already answers its health check.
  const first = await waitFor('a session', async () => {
    const result = await ssh([...common, '-i', keyFile, 'vcap@127.0.0.1', 'echo $HOME; id -u; pwd; echo "$GREETING"']);
    return result.code === 0 ? result : undefined;
  });
  assert.deepEqual(first.stdout.trim().split('\n'), ['/home/vcap', '2000', '/home/vcap', 'hello from the app environment']);

  const failing = await ssh([...common, '-i', keyFile, 'vcap@127.0.0.1', 'exit 7']);
  assert.equal(failing.code, 7, 'the command\'s exit status comes back');

  const withPty = await ssh([...common, '-tt', '-i', keyFile, 'vcap@127.0.0.1', 'tty']);
  assert.equal(withPty.code, 0, withPty.stderr);
  assert.match(withPty.stdout, /^\/dev\/pts\/\d+/, 'a session with a pty');

  const wrongKey = join(dir, 'wrong');
  writeFileSync(wrongKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  const refused = await ssh([...common, '-i', wrongKey, 'vcap@127.0.0.1', 'echo in']);
  assert.equal(refused.code, 255);
  assert.match(refused.stderr, /Permission denied \(publickey\)/);
  assert.equal(refused.stdout, '');

  const otherHost = join(dir, 'other_known_hosts');
  writeFileSync(otherHost, `[127.0.0.1]:${sshPort} ${sshKeyPairFromPrivateKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey).authorizedKey}\n`);
  const impostor = await ssh([...clientArgs(otherHost), '-i', keyFile, 'vcap@127.0.0.1', 'echo in']);
  assert.equal(impostor.code, 255, 'a host key other than the route\'s is not trusted');
  assert.match(impostor.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);

  // The SSH server dies, with a session open: diego-sshd starts it again at once (the session
  // lives on), and the app instance is never touched.
  const session = spawn('ssh', [...common, '-i', keyFile, 'vcap@127.0.0.1', 'echo open; sleep 120'], { stdio: ['ignore', 'pipe', 'ignore'] });
  await waitFor('an open session', () => new Promise<boolean>((resolve) => session.stdout.once('data', () => resolve(true))));
  const [dropbear] = dropbearServers();
  assert.ok(dropbear, 'dropbear runs on the cell');
  process.kill(dropbear, 'SIGKILL');
  await waitFor('a new dropbear', () => dropbearServers().some((pid) => pid !== dropbear));
  const again = await waitFor('a session after the restart', async () => {
    const result = await ssh([...common, '-i', keyFile, 'vcap@127.0.0.1', 'echo again']);
    return result.code === 0 ? result : undefined;
  });
  assert.equal(again.stdout.trim(), 'again');
  const after = await runningInstance();
  assert.ok(after, 'the instance is still RUNNING');
  assert.equal(after.actualLrpInstanceKey?.instanceGuid, running.actualLrpInstanceKey?.instanceGuid, 'the same instance');
  assert.equal(after.crashCount, 0);
  session.kill();

  // Neither private key appears in what the Diego and cell logged, nor in the app's log stream.
  const response = await fetch(`${diego.url}/api/v1/read/${LOG_GUID}?envelope_types=LOG&limit=1000`);
  const body = (await response.json()) as { envelopes: { batch: LogEnvelope[] } };
  const appLog = body.envelopes.batch.map((envelope) => Buffer.from(envelope.log!.payload, 'base64').toString('utf8'));
  assert.ok(appLog.some((line) => line.includes('listening')), 'the app log was captured');
  const secretLines = (pem: string) => pem.split('\n').filter((line) => line.length > 40 && !line.startsWith('-----'));
  for (const line of [...secretLines(route.private_key), ...secretLines(hostKeyPem)]) {
    assert.ok(!logged.some((entry) => entry.includes(line)), 'no private key in the Diego and cell logs');
    assert.ok(!appLog.some((entry) => entry.includes(line)), 'no private key in the app logs');
  }
  rmSync(dir, { recursive: true, force: true });
  await bbs.removeDesiredLrp(PROCESS_GUID);
});
