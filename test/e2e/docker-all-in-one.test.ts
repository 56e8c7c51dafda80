// A docker app on the all-in-one daemon as a user runs it: the example busybox image is pushed to
// Debian's docker-registry on 127.0.0.1, the daemon is started with that registry named by
// -insecureDockerRegistry (the stager's builder and the cell both read it; the cell forwards its
// port into the staging container), and the development CC stages and runs the app from its
// docker_image: the builder task reads the image's metadata, the cell pulls and unpacks the image
// and runs it with the docker launcher, and the router serves it. The app allows SSH: `ccbridge
// ssh` runs a command in the image through the diego-sshd the docker lifecycle runs there.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { devCcApi, descendants, processesMentioning, repo, routed, startDaemon, stillAlive, stopDaemon, waitFor, type Daemon } from '../support/daemons.js';
import { EXAMPLE_IMAGE_PAGE, pushExampleImage, startRegistry, type TestRegistry } from '../support/registry.js';

const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-e2e-docker-'));

let registry: TestRegistry;
let daemon: Daemon;
const { api, app } = devCcApi(() => daemon.address('cc'));

before(async () => {
  registry = await startRegistry();
  const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress', 'fileServerListenAddress', 'uploaderListenAddress', 'ccListenAddress'];
  daemon = await startDaemon(
    'ccbridge',
    // A relative -dataDir, as `npm start`'s default is: image roots and overlays need absolute paths.
    [`-dataDir=${relative(repo, dataDir)}`, '-logLevel=warn', `-insecureDockerRegistry=${registry.address}`, ...ports.map((p) => `-${p}=127.0.0.1:0`)],
    / {2}cell {10}/,
  );
});

after(async () => {
  if (daemon?.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  await registry?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a docker app is staged from its registry, pulled and run by the cell, and served by the router', { timeout: 600_000 }, async () => {
  const image = await pushExampleImage(registry);
  assert.equal((await api('POST', '/apps', { name: 'boxed', docker_image: image, allow_ssh: true })).status, 201);
  assert.ok((await api('POST', '/apps/boxed/start')).status < 300);
  await waitFor('the docker app running', async () => (await app('boxed')).running_instances === 1, 240_000);
  await waitFor('the router serving it', async () => (await routed(daemon.address('router'), 'boxed.localhost')).text === EXAMPLE_IMAGE_PAGE);

  // diego-sshd starts beside the app and may be a moment behind its health check.
  const ssh = await waitFor('a command run over ccbridge ssh', async () => {
    const run = spawnSync(process.execPath, [`${repo}/bin/ccbridge.js`, 'ssh', 'boxed', '--', 'sh', '-c', '"id -un; cat /www/index.html"'], {
      cwd: repo,
      env: { ...process.env, CCBRIDGE_API: daemon.address('cc') },
      encoding: 'utf8',
    });
    return run.status === 0 ? run : undefined;
  }, 60_000);
  assert.equal(ssh.stdout, `vcap\n${EXAMPLE_IMAGE_PAGE}`, 'a shell in the image, as the image\'s user');

  assert.ok((await api('POST', '/apps/boxed/stop')).status < 300);
  await waitFor('no instance routed', async () => (await routed(daemon.address('router'), 'boxed.localhost')).status >= 400);
  const sandboxes = descendants(daemon.child.pid!);
  assert.equal(await stopDaemon(daemon), 0, daemon.output());
  assert.deepEqual(stillAlive(sandboxes), []);
  assert.deepEqual(processesMentioning(dataDir), [], 'nothing of the daemon is left running');
});
