// No secret reaches a log line. The all-in-one runs with every secret it can hold planted —
// mutual TLS on its listeners (the key file's contents), a listener password, a Cloud Controller
// password, a docker registry password (a docker app, so the staging task's builder gets
// -dockerPassword), SSH on (the nsync recipe's -hostKey PEM and the diego-ssh route's private
// key) — at debug level, while the development CC stages and runs an app, an instance crashes
// and comes back, and a docker staging fails. Then everything the process wrote, every
// component's log lines on stdout and stderr, is searched for each secret: none may appear.
// (The docker work goes straight to the gateway: the development CC sends no docker e-mail, which
// the 2015 stager requires beside the user and password.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tlsFetch } from '../../lib/tls-fetch.js';
import { makeTestCerts, type TestCerts } from '../support/certs.js';
import { appProcessesUnder, devCcApi, repo, startDaemon, stopDaemon, waitFor, type Daemon } from '../support/daemons.js';

const LISTENER_PASSWORD = 'planted-listener-secret-6f1d';
const CC_PASSWORD = 'planted-cc-secret-93ab';
const DOCKER_PASSWORD = 'planted-docker-secret-0c7e';

const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-secrets-'));
const appTgz = join(dataDir, 'app.tgz');
let certs: TestCerts;
let daemon: Daemon;
const { api, app, events } = devCcApi(() => daemon.address('cc'), { username: 'cc-user', password: CC_PASSWORD });

before(async () => {
  certs = makeTestCerts();
  execFileSync('tar', ['-czf', appTgz, '-C', join(repo, 'examples/node-app'), '.']);
  const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress', 'fileServerListenAddress', 'uploaderListenAddress', 'ccListenAddress'];
  daemon = await startDaemon(
    'ccbridge',
    [
      `-dataDir=${dataDir}`,
      '-logLevel=debug',
      '-lockRetryInterval=200ms',
      // No bulk sync during the test: the docker app is known to the gateway only, not to the CC.
      '-pollingInterval=10m',
      ...ports.map((p) => `-${p}=127.0.0.1:0`),
      `-listenerCert=${certs.server.cert}`,
      `-listenerKey=${certs.server.key}`,
      `-listenerCACert=${certs.caFile}`,
      '-listenerUsername=bridge-user',
      `-listenerPassword=${LISTENER_PASSWORD}`,
      '-ccUsername=cc-user',
      `-ccPassword=${CC_PASSWORD}`,
    ],
    / {2}cell {10}/,
  );
});

after(async () => {
  if (daemon?.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  certs?.remove();
  rmSync(dataDir, { recursive: true, force: true });
});

test('staging, running, a crash and a docker app with credentials leave no secret in any log line', { timeout: 600_000 }, async () => {
  // The bridge's listeners are https (with client certificates) and ask for credentials.
  assert.match(daemon.address('gateway'), /^https:/);
  assert.match(daemon.address('diego'), /^https:/);

  // A buildpack app with SSH on: staged, run, killed, back.
  assert.equal((await api('POST', '/apps', { name: 'hello', allow_ssh: true })).status, 201);
  assert.ok((await api('PUT', '/apps/hello/bits', readFileSync(appTgz))).status < 300);
  assert.ok((await api('POST', '/apps/hello/start')).status < 300);
  await waitFor('the app running', async () => (await app('hello')).running_instances === 1, 240_000);
  const [pid] = appProcessesUnder(daemon.child.pid!);
  assert.ok(pid, 'the app process runs below the daemon');
  process.kill(pid!, 'SIGKILL');
  await waitFor('the crash event', async () => (await events('hello')).some((e) => e.type === 'app.crash'));
  await waitFor('the instance back', async () => (await app('hello')).running_instances === 1);

  // A docker staging and a docker app from a private registry that is not there, sent to the
  // gateway as Cloud Controller sends them (with a client certificate): the staging task's builder
  // gets -dockerPassword and fails; the app's image pull fails.
  const cc = tlsFetch({ ca: certs.read(certs.caFile), cert: certs.read(certs.client.cert), key: certs.read(certs.client.key) });
  const gateway = daemon.address('gateway');
  const docker = { docker_image: '127.0.0.1:9/private/image:latest', docker_user: 'docker-user', docker_password: DOCKER_PASSWORD, docker_email: 'docker@example.com' };
  const staging = await cc(`${gateway}/v1/staging/docker-secret-staging`, {
    method: 'PUT',
    body: JSON.stringify({ app_id: 'docker-secret-app', file_descriptors: 512, memory_mb: 256, disk_mb: 1024, environment: [], egress_rules: [], timeout: 120, log_guid: 'docker-secret-app', lifecycle: 'docker', lifecycle_data: docker }),
  });
  assert.equal(staging.status, 202, await staging.text());
  const desired = await cc(`${gateway}/v1/apps/docker-secret-app`, {
    method: 'PUT',
    body: JSON.stringify({ process_guid: 'docker-secret-app', ...docker, start_command: '/bin/true', execution_metadata: '{}', stack: 'cflinuxfs4', environment: [], memory_mb: 256, disk_mb: 1024, file_descriptors: 512, num_instances: 1, routes: [], log_guid: 'docker-secret-app', health_check_type: 'port', etag: '1', allow_ssh: true }),
  });
  assert.equal(desired.status, 202, await desired.text());
  await waitFor('the docker staging task to complete', async () => /docker-secret-staging[^\n]*task-callback|task-callback[^\n]*docker-secret-staging/.test(daemon.output()), 90_000).catch(() => undefined);

  // Its exit status is not the point here (other tests hold shutdown to account); what it wrote is.
  await stopDaemon(daemon);
  const output = daemon.output();
  assert.ok(output.split('\n').length > 100, 'the run logged at debug level');
  assert.match(output, /docker-secret-staging/, 'the docker staging went through the stager');
  assert.match(output, /docker-secret-app/, 'the docker app went through nsync and the cell');

  const keyBody = readFileSync(certs.server.key, 'utf8').split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
  const planted: [string, string][] = [
    ['the listener password', LISTENER_PASSWORD],
    ['the listener credentials as a basic Authorization header', Buffer.from(`bridge-user:${LISTENER_PASSWORD}`).toString('base64')],
    ['the CC password', CC_PASSWORD],
    ['the CC credentials as a basic Authorization header', Buffer.from(`cc-user:${CC_PASSWORD}`).toString('base64')],
    ['the docker password', DOCKER_PASSWORD],
    ...keyBody.map((line, i): [string, string] => [`line ${i + 1} of the TLS key`, line]),
  ];
  for (const [what, secret] of planted) {
    const hits = output.split('\n').filter((line) => line.includes(secret));
    assert.deepEqual(hits, [], `${what} appears in the logs`);
  }
  const privateKeys = output.split('\n').filter((line) => /BEGIN [A-Z ]*PRIVATE KEY/.test(line));
  assert.deepEqual(privateKeys, [], 'a private key (the SSH host key, the route\'s key, a TLS key) appears in the logs');
});
