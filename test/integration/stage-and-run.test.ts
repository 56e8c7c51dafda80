// The main job, end to end through the bridge as Cloud Controller drives it: the example Node.js
// app is staged with the real buildpack lifecycle in a staging task on the embedded cell (app
// bits from the CC test double's blobstore, lifecycle and buildpacks from the file server, the
// droplet back through the uploader to the CC double), CC hears the staging result, and the
// staged droplet then runs as an app instance on the cell that answers over HTTP. Everything the
// containers reach is a host service on 127.0.0.1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { ActualLrpState, type LogEnvelope } from '../../embedded/diego/index.js';
import { startEmbeddedCell, type EmbeddedCell } from '../../embedded/diego/cell/index.js';
import { silentLogger } from '../../lib/log.js';
import { packageBuildpack, packageBuildpackLifecycle } from '../../lifecycles/package.mjs';
import { startFileServer, startUploader, type FileServer, type Uploader } from '../../services/fileserver/index.js';
import { CC_PASSWORD, CC_USERNAME, startTestBridge, type TestBridge } from '../support/bridge.js';

const logger = silentLogger();
const EXAMPLE_APP = fileURLToPath(new URL('../../examples/node-app', import.meta.url));
const APP_GUID = '6d1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b';
const STAGING_GUID = `${APP_GUID}-staging`;
const DROPLET_GUID = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const PROCESS_GUID = `${APP_GUID}-v1`;

let root: string;
let bridge: TestBridge;
let fileServer: FileServer;
let uploader: Uploader;
let dropletServer: Server;
let dropletServerPort = 0;
let cell: EmbeddedCell;
/** The droplet bytes CC received, served to the app instance as CC's blobstore would. */
let droplet: Buffer | undefined;

const portOf = (url: string) => Number(new URL(url).port);

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'ccbridge-stage-and-run-'));
  bridge = await startTestBridge({ diego: { timing: { convergenceIntervalMs: 500, taskKickIntervalMs: 500, staleUnclaimedMs: 500 } } });

  // What the file server hands out: the lifecycle bundle and the example nodejs buildpack.
  const staticDirectory = join(root, 'static');
  packageBuildpackLifecycle(join(staticDirectory, 'buildpack_app_lifecycle'));
  packageBuildpack('nodejs', join(staticDirectory, 'buildpacks'));
  fileServer = await startFileServer({ staticDirectory, host: '127.0.0.1', port: 0, logger });
  uploader = await startUploader({ host: '127.0.0.1', port: 0, logger, ccJobPollingIntervalMs: 20 });
  // The bridge's recipes name fixed ports; the services here run on free ones, and the recipe
  // builders read their configuration at every call.
  bridge.stagingRecipe.fileServerURL = fileServer.url;
  bridge.stagingRecipe.ccUploaderURL = uploader.url;
  (bridge.nsyncRecipe as { fileServerUrl: string }).fileServerUrl = fileServer.url;

  dropletServer = createServer((req, res) => {
    if (req.url === `/droplets/${DROPLET_GUID}.tgz` && droplet !== undefined) return void res.writeHead(200).end(droplet);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => dropletServer.listen(0, '127.0.0.1', resolve));
  dropletServerPort = (dropletServer.address() as AddressInfo).port;

  // The app's package, as CC's blobstore holds it after a push.
  bridge.cc.packages.set(APP_GUID, execFileSync('tar', ['-czf', '-', '-C', EXAMPLE_APP, '.']));

  cell = await startEmbeddedCell({
    diego: bridge.diego,
    cellId: `cell-stage-and-run-${process.pid}`,
    dataDir: join(root, 'cell'),
    logger,
    capacity: { memoryMb: 8192, diskMb: 32_768, containers: 16 },
    hostServicePorts: [portOf(fileServer.url), portOf(uploader.url), portOf(bridge.cc.url), dropletServerPort],
    executorOptions: { stopGraceMs: 2_000, killWaitMs: 2_000, monitorStartIntervalMs: 100, checkStartIntervalMs: 100 },
    timing: { evacuationTimeoutMs: 500, evacuationPollIntervalMs: 50 },
  });
});

after(async () => {
  await cell?.close({ evacuate: false });
  await fileServer?.close();
  await uploader?.close();
  dropletServer?.closeAllConnections();
  await new Promise((resolve) => dropletServer?.close(resolve));
  await bridge?.close();
  rmSync(root, { recursive: true, force: true });
});

test('the example Node.js app is staged with the buildpack lifecycle on the cell and then runs there, answering over HTTP', async () => {
  const ccBlobstore = `http://${CC_USERNAME}:${CC_PASSWORD}@127.0.0.1:${portOf(bridge.cc.url)}`;
  const staged = await bridge.request('PUT', `/v1/staging/${STAGING_GUID}`, {
    app_id: APP_GUID,
    log_guid: APP_GUID,
    file_descriptors: 1024,
    memory_mb: 1024,
    disk_mb: 4096,
    environment: [{ name: 'VCAP_APPLICATION', value: JSON.stringify({ application_name: 'node-app', limits: { mem: 256 } }) }],
    egress_rules: [],
    timeout: 900,
    lifecycle: 'buildpack',
    lifecycle_data: {
      app_bits_download_uri: `${ccBlobstore}/staging/packages/${APP_GUID}`,
      build_artifacts_cache_download_uri: '',
      build_artifacts_cache_upload_uri: `${ccBlobstore}/staging/buildpack_cache/${APP_GUID}/upload`,
      droplet_upload_uri: `${ccBlobstore}/staging/droplets/${DROPLET_GUID}/upload`,
      buildpacks: [{ name: 'nodejs', key: 'nodejs-buildpack', url: `${fileServer.url}/v1/static/buildpacks/nodejs_buildpack.tgz`, skip_detect: false }],
      stack: 'cflinuxfs4',
    },
  });
  assert.equal(staged.status, 202, staged.text);

  const completed = await bridge.cc.waitFor((request) => request.path === `/internal/staging/${STAGING_GUID}/completed`, 60_000);
  // The 2015 staging response: the result's fields at the top level, an error instead of them on failure.
  const response = completed.json as { error?: unknown; lifecycle_data?: { detected_buildpack: string; buildpack_key: string }; execution_metadata?: string };
  assert.equal(response.error, undefined, completed.body);
  assert.deepEqual(response.lifecycle_data, { buildpack_key: 'nodejs-buildpack', detected_buildpack: 'nodejs' });
  assert.equal(response.execution_metadata, '{"start_command":"node server.js"}');

  const upload = bridge.cc.droplets.get(DROPLET_GUID);
  droplet = upload?.parts.find((part) => part.name === 'file')?.bytes;
  assert.ok(droplet !== undefined && droplet.length > 0, 'CC received the droplet');
  const entries = execFileSync('tar', ['-tzf', '-'], { input: droplet }).toString('utf8').split('\n');
  assert.ok(entries.includes('./app/server.js'), entries.join(' '));

  // The staging output reached log-cache under the app's log guid, as STG lines.
  const logs = (await (await fetch(`${bridge.diego.url}/api/v1/read/${APP_GUID}?envelope_types=LOG&limit=1000`)).json()) as { envelopes: { batch: LogEnvelope[] } };
  const staging = logs.envelopes.batch.filter((envelope) => envelope.tags.source_type === 'STG').map((envelope) => Buffer.from(envelope.log!.payload, 'base64').toString('utf8'));
  assert.ok(staging.includes('-----> Node.js Buildpack version 1.0.0'), staging.join('\n'));

  const desired = await bridge.request('PUT', `/v1/apps/${PROCESS_GUID}`, {
    process_guid: PROCESS_GUID,
    droplet_uri: `http://127.0.0.1:${dropletServerPort}/droplets/${DROPLET_GUID}.tgz`,
    stack: 'cflinuxfs4',
    start_command: '',
    execution_metadata: response.execution_metadata,
    environment: [{ name: 'VCAP_APPLICATION', value: JSON.stringify({ application_name: 'node-app', limits: { mem: 256 } }) }],
    memory_mb: 256,
    disk_mb: 1024,
    file_descriptors: 16384,
    num_instances: 1,
    routes: ['node-app.example.com'],
    log_guid: APP_GUID,
    health_check_type: 'port',
    health_check_timeout_in_seconds: 30,
    etag: '1',
  });
  assert.equal(desired.status, 202, desired.text);

  const running = await waitFor('the app instance RUNNING', async () => {
    const [lrp] = await bridge.bbs.actualLrps({ processGuid: PROCESS_GUID, index: 0 });
    return lrp?.state === ActualLrpState.RUNNING ? lrp : undefined;
  });
  assert.equal(running.actualLrpInstanceKey?.cellId, cell.cellId);
  const published = running.actualLrpNetInfo!.ports.find((port) => port.containerPort === 8080);
  assert.ok(published, 'the app port is published');
  const answer = await fetch(`http://127.0.0.1:${published.hostPort}/`);
  assert.equal(answer.status, 200);
  assert.equal(await answer.text(), 'hello from ccbridge\n');
});
