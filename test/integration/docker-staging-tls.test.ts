// Docker staging through the bridge's own route, on the embedded cell, from a registry behind
// TLS (a throwaway CA the system store does not know) and htpasswd: PUT /v1/staging with the
// docker lifecycle → the Stager's task downloads the docker lifecycle from the file server and
// runs the builder in a sandbox; the Stager's -dockerRegistryCACert reaches it in the task's
// environment → CC hears execution_metadata. A wrong password fails the staging: CC hears a
// StagingError, the staging log says why, and neither carries the password.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startEmbeddedCell, type EmbeddedCell } from '../../embedded/diego/cell/index.js';
import { silentLogger } from '../../lib/log.js';
import { packageDockerLifecycle } from '../../lifecycles/package.mjs';
import { startFileServer, type FileServer } from '../../services/fileserver/index.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { EXAMPLE_IMAGE_PORT, pushExampleImage, startRegistry, type TestRegistry } from '../support/registry.js';

const logger = silentLogger();
const USER = 'stager-test';
const PASSWORD = `tls-pw-${process.pid}-right`;
const WRONG_PASSWORD = `tls-pw-${process.pid}-wrong`;

let root: string;
let bridge: TestBridge;
let fileServer: FileServer;
let registry: TestRegistry;
let cell: EmbeddedCell;
let image: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ccbridge-docker-staging-tls-'));
  registry = await startRegistry({ tls: true, auth: { username: USER, password: PASSWORD } });
  image = await pushExampleImage(registry, { repository: 'private/busybox', tag: 'v1' });
  bridge = await startTestBridge({ diego: { timing: { convergenceIntervalMs: 500, taskKickIntervalMs: 500, staleUnclaimedMs: 500 } } });

  const staticDirectory = join(root, 'static');
  packageDockerLifecycle(join(staticDirectory, 'docker_app_lifecycle'));
  fileServer = await startFileServer({ staticDirectory, host: '127.0.0.1', port: 0, logger });
  // The recipe builders read their configuration at every call.
  bridge.stagingRecipe.fileServerURL = fileServer.url;
  bridge.stagingRecipe.dockerRegistryCACerts = registry.caPem;

  cell = await startEmbeddedCell({
    diego: bridge.diego,
    cellId: `cell-docker-staging-tls-${process.pid}`,
    dataDir: join(root, 'cell'),
    logger,
    capacity: { memoryMb: 4096, diskMb: 16_384, containers: 8 },
    // The builder dials the file server and the registry from inside its sandbox.
    hostServicePorts: [Number(new URL(fileServer.url).port), registry.port],
    timing: { evacuationTimeoutMs: 500, evacuationPollIntervalMs: 50 },
  });
});

after(async () => {
  await cell?.close({ evacuate: false });
  await fileServer?.close();
  await bridge?.close();
  await registry?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function stage(name: string, password: string): Promise<{ response: Record<string, unknown>; body: string; logGuid: string }> {
  const appGuid = `${name}-${process.pid}`;
  const stagingGuid = `${appGuid}-staging`;
  const staged = await bridge.request('PUT', `/v1/staging/${stagingGuid}`, {
    app_id: appGuid,
    log_guid: appGuid,
    file_descriptors: 1024,
    memory_mb: 256,
    disk_mb: 1024,
    environment: [],
    egress_rules: [],
    timeout: 120,
    lifecycle: 'docker',
    lifecycle_data: { docker_image: image, docker_user: USER, docker_password: password, docker_email: 'stager-test@example.com' },
  });
  assert.equal(staged.status, 202, staged.text);
  const completed = await bridge.cc.waitFor((request) => request.path === `/internal/staging/${stagingGuid}/completed`, 90_000);
  return { response: completed.json as Record<string, unknown>, body: completed.body, logGuid: appGuid };
}

/** The staging log lines of an app, from the embedded Diego's log-cache read API. */
async function stagingLog(logGuid: string): Promise<string[]> {
  const response = await fetch(`${bridge.diego.url}/api/v1/read/${encodeURIComponent(logGuid)}?envelope_types=LOG&limit=1000`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as { envelopes: { batch: { log?: { payload: string } }[] } };
  return body.envelopes.batch.filter((envelope) => envelope.log).map((envelope) => Buffer.from(envelope.log!.payload, 'base64').toString('utf8'));
}

test('a private image behind TLS from a private CA stages with the CA the Stager passes to the builder', async () => {
  const { response, body, logGuid } = await stage('docker-tls', PASSWORD);
  assert.equal(response.error, undefined, body);
  const metadata = JSON.parse(String(response.execution_metadata)) as Record<string, unknown>;
  assert.deepEqual(metadata, {
    cmd: ['httpd', '-f', '-v', '-p', String(EXAMPLE_IMAGE_PORT), '-h', '/www'],
    entrypoint: ['/bin/busybox'],
    workdir: '/www',
    ports: [{ Port: EXAMPLE_IMAGE_PORT, Protocol: 'tcp' }],
    user: 'vcap',
  });
  assert.deepEqual(response.detected_start_command, { web: `/bin/busybox httpd -f -v -p ${EXAMPLE_IMAGE_PORT} -h /www` });
  assert.deepEqual(response.lifecycle_data, { docker_image: image });
  assert.equal(body.includes(PASSWORD), false);
  const log = await stagingLog(logGuid);
  assert.ok(log.some((line) => line.includes(`Fetching image metadata of ${image}`)), log.join('\n'));
  assert.equal(log.join('\n').includes(PASSWORD), false);
});

test('a wrong password fails staging: CC hears a StagingError, the log says unauthorized, no password anywhere', async () => {
  const { response, body, logGuid } = await stage('docker-tls-wrong', WRONG_PASSWORD);
  assert.deepEqual(Object.keys(response.error as object).sort(), ['id', 'message']);
  assert.equal((response.error as { id: string }).id, 'StagingError');
  assert.equal(body.includes(WRONG_PASSWORD), false);
  const log = (await stagingLog(logGuid)).join('\n');
  assert.match(log, /Staging failed: unauthorized: .*rejected the credentials of user "stager-test"/);
  assert.equal(log.includes(WRONG_PASSWORD), false);
});
