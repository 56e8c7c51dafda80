// Docker apps end to end through the bridge's own routes, as Cloud Controller drives them: the
// example busybox image, pushed to Debian's docker-registry on 127.0.0.1, is staged through the
// Stager (PUT /v1/staging with the docker lifecycle → a builder task on the embedded cell reads
// the image's metadata from the registry → the CC test double hears execution_metadata), then
// desired through Nsync (PUT /v1/apps with docker_image and that execution_metadata) → the cell
// pulls the image, runs it with the docker launcher → RUNNING, answering over HTTP. Once from an
// open registry, once from one behind htpasswd with the app's credentials.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startEmbeddedCell, type EmbeddedCell } from '../../embedded/diego/cell/index.js';
import { createImageRegistry } from '../../embedded/diego/executor/registry.js';
import { ActualLrpState } from '../../embedded/diego/index.js';
import { silentLogger } from '../../lib/log.js';
import { packageDockerLifecycle } from '../../lifecycles/package.mjs';
import { startFileServer, type FileServer } from '../../services/fileserver/index.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { EXAMPLE_IMAGE_PAGE, pushExampleImage, startRegistry, type TestRegistry } from '../support/registry.js';

const logger = silentLogger();
const PASSWORD = `hunter2-${process.pid}`;

let root: string;
let bridge: TestBridge;
let fileServer: FileServer;
let open: TestRegistry;
let guarded: TestRegistry;
let cell: EmbeddedCell;

const portOf = (url: string) => Number(new URL(url).port);

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ccbridge-docker-stage-and-run-'));
  [open, guarded] = await Promise.all([startRegistry(), startRegistry({ auth: { username: 'puller', password: PASSWORD } })]);
  bridge = await startTestBridge({ diego: { timing: { convergenceIntervalMs: 500, taskKickIntervalMs: 500, staleUnclaimedMs: 500 } } });

  const staticDirectory = join(root, 'static');
  packageDockerLifecycle(join(staticDirectory, 'docker_app_lifecycle'));
  fileServer = await startFileServer({ staticDirectory, host: '127.0.0.1', port: 0, logger });
  // The bridge's recipes name fixed ports; the services here run on free ones, and the recipe
  // builders read their configuration at every call.
  bridge.stagingRecipe.fileServerURL = fileServer.url;
  bridge.stagingRecipe.insecureDockerRegistries = [open.address, guarded.address];
  (bridge.nsyncRecipe as { fileServerUrl: string }).fileServerUrl = fileServer.url;

  cell = await startEmbeddedCell({
    diego: bridge.diego,
    cellId: `cell-docker-stage-and-run-${process.pid}`,
    dataDir: join(root, 'cell'),
    logger,
    capacity: { memoryMb: 8192, diskMb: 32_768, containers: 16 },
    // The builder reads the registries from inside its staging container.
    hostServicePorts: [portOf(fileServer.url), open.port, guarded.port],
    executorOptions: {
      imageRegistry: createImageRegistry({ insecureRegistries: [open.address, guarded.address] }),
      stopGraceMs: 2_000,
      killWaitMs: 2_000,
      monitorStartIntervalMs: 100,
      checkStartIntervalMs: 100,
    },
    timing: { evacuationTimeoutMs: 500, evacuationPollIntervalMs: 50 },
  });
});

after(async () => {
  await cell?.close({ evacuate: false });
  await fileServer?.close();
  await bridge?.close();
  await Promise.all([open?.stop(), guarded?.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

async function stageAndRun(name: string, registry: TestRegistry, credentials?: { docker_user: string; docker_password: string; docker_email: string }): Promise<void> {
  const appGuid = `${name}-${process.pid}`;
  const stagingGuid = `${appGuid}-staging`;
  const processGuid = `${appGuid}-v1`;
  const image = await pushExampleImage(registry, { repository: `ccbridge/${name}` });

  const staged = await bridge.request('PUT', `/v1/staging/${stagingGuid}`, {
    app_id: appGuid,
    log_guid: appGuid,
    file_descriptors: 1024,
    memory_mb: 256,
    disk_mb: 1024,
    environment: [],
    egress_rules: [],
    timeout: 300,
    lifecycle: 'docker',
    lifecycle_data: { docker_image: image, ...credentials },
  });
  assert.equal(staged.status, 202, staged.text);

  const completed = await bridge.cc.waitFor((request) => request.path === `/internal/staging/${stagingGuid}/completed`, 60_000);
  const response = completed.json as { error?: unknown; execution_metadata?: string; detected_start_command?: Record<string, string>; lifecycle_data?: { docker_image: string } };
  assert.equal(response.error, undefined, completed.body);
  const metadata = JSON.parse(response.execution_metadata ?? '{}') as { entrypoint?: string[]; cmd?: string[]; workdir?: string; ports?: { Port: number; Protocol: string }[]; user?: string };
  assert.deepEqual(metadata.entrypoint, ['/bin/busybox']);
  assert.deepEqual(metadata.cmd, ['httpd', '-f', '-v', '-p', '8080', '-h', '/www']);
  assert.equal(metadata.workdir, '/www');
  assert.equal(metadata.user, 'vcap');
  assert.deepEqual(metadata.ports, [{ Port: 8080, Protocol: 'tcp' }]);
  assert.equal(JSON.stringify(completed.json).includes(PASSWORD), false, 'the staging response carries no password');

  const desired = await bridge.request('PUT', `/v1/apps/${processGuid}`, {
    process_guid: processGuid,
    docker_image: response.lifecycle_data?.docker_image ?? image,
    ...(credentials ? { docker_user: credentials.docker_user, docker_password: credentials.docker_password } : {}),
    stack: 'cflinuxfs4',
    start_command: '',
    execution_metadata: response.execution_metadata,
    environment: [],
    memory_mb: 256,
    disk_mb: 1024,
    file_descriptors: 1024,
    num_instances: 1,
    routes: [`${name}.example.com`],
    log_guid: appGuid,
    health_check_type: 'port',
    health_check_timeout_in_seconds: 30,
    etag: '1',
  });
  assert.equal(desired.status, 202, desired.text);

  const running = await waitFor(`${name} RUNNING`, async () => {
    const [lrp] = await bridge.bbs.actualLrps({ processGuid, index: 0 });
    if (lrp?.state === ActualLrpState.CRASHED) throw new Error(`crashed: ${lrp.crashReason}`);
    return lrp?.state === ActualLrpState.RUNNING ? lrp : undefined;
  });
  assert.equal(running.actualLrpInstanceKey?.cellId, cell.cellId);
  const published = running.actualLrpNetInfo!.ports.find((port) => port.containerPort === 8080);
  assert.ok(published, 'the app port is published');
  const answer = await fetch(`http://127.0.0.1:${published.hostPort}/`);
  assert.equal(answer.status, 200);
  assert.equal(await answer.text(), EXAMPLE_IMAGE_PAGE);

  const stopped = await bridge.request('DELETE', `/v1/apps/${processGuid}`);
  assert.equal(stopped.status, 202, stopped.text);
  await waitFor(`${name} gone`, async () => (await bridge.bbs.actualLrps({ processGuid })).length === 0);
}

test('the example image from an open registry is staged through the Stager, desired through Nsync, and answers over HTTP', async () => {
  await stageAndRun('docker-open', open);
});

test('the example image behind registry credentials is staged and runs with them', async () => {
  await stageAndRun('docker-private', guarded, { docker_user: 'puller', docker_password: PASSWORD, docker_email: 'puller@example.com' });
});
