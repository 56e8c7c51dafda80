// The development Cloud Controller over real HTTP on port 0: its internal API as the bridge calls
// it (through the bridge's own CC client), report dedupe by event id, bulk fingerprint pages and
// apps, the staging blobstore (uploads through the real uploader, downloads, jobs), and its
// command-line API driving a fake bridge — staging, desiring, scaling, stopping, restaging,
// environment changes, deleting — and its state surviving a restart.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import { CcStatusError, createCcClient, type CcClient } from '../../clients/cc/client.js';
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { buildBulker, buildNsyncListener, buildStager, buildTps } from '../../cmd/wiring/services.js';
import { startEmbeddedDiego, type EmbeddedDiego } from '../../embedded/diego/index.js';
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { inProcessDispatcher } from '../../gateway/dispatch.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import type { RecipeConfig } from '../../services/nsync/recipe/index.js';
import { DEFAULT_STAGING_TIMEOUT_MS, type StagingRecipeConfig } from '../../services/stager/recipe/index.js';
import { startDevelopmentCloudController, type DevelopmentCloudController } from '../../embedded/cloud-controller/index.js';
import { StagingErrorId, type StagingResponseForCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { parseFlags, FlagError } from '../../lib/flags.js';
import { silentLogger } from '../../lib/log.js';
import cloudControllerCommand from '../../cmd/commands/cloud-controller.js';
import { multipartFraming, startUploader, type Uploader } from '../../services/fileserver/index.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const USERNAME = 'internal_user';
const PASSWORD = 'internal-password';
const AUTH = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;
const FILE_SERVER = 'http://127.0.0.1:8080';

interface BridgeCall {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

/** A bridge stand-in: records what the development CC sends and answers as the gateway does. */
class FakeBridge {
  readonly calls: BridgeCall[] = [];
  /** Instances per process guid, in TPS's legacy JSON. */
  readonly instances = new Map<string, unknown[]>();
  private server: Server | undefined;
  private waiters: { predicate: (c: BridgeCall) => boolean; resolve: (c: BridgeCall) => void }[] = [];

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const call: BridgeCall = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json: body ? JSON.parse(body) : undefined };
        this.calls.push(call);
        this.waiters = this.waiters.filter((w) => (w.predicate(call) ? (w.resolve(call), false) : true));
        const stats = /^\/v1\/actual_lrps\/([^/]+)\/stats$/.exec(call.path);
        const plain = /^\/v1\/actual_lrps\/([^/?]+)$/.exec(call.path);
        const bulk = /^\/v1\/bulk_actual_lrp_status\?guids=(.*)$/.exec(call.path);
        const json = (status: number, value: unknown) => {
          res.writeHead(status, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(value));
        };
        if (stats) {
          if (!req.headers.authorization) return json(401, {});
          return json(200, this.instances.get(decodeURIComponent(stats[1]!)) ?? []);
        }
        if (plain) return json(200, (this.instances.get(decodeURIComponent(plain[1]!)) ?? []).map((i) => ({ ...(i as object), host: undefined, port: undefined, stats: undefined })));
        if (bulk) return json(200, Object.fromEntries(bulk[1]!.split(',').map((g) => [g, this.instances.get(g) ?? []])));
        res.writeHead(202);
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** Calls after the given count, matching method and path. */
  since(count: number, method?: string, path?: RegExp): BridgeCall[] {
    return this.calls.slice(count).filter((c) => (method === undefined || c.method === method) && (path === undefined || path.test(c.path)));
  }

  waitFor(predicate: (c: BridgeCall) => boolean, timeoutMs = 5_000): Promise<BridgeCall> {
    const found = this.calls.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('fake bridge: no matching call in time')), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: (c) => {
          clearTimeout(timer);
          resolve(c);
        },
      });
    });
  }
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  bytes: Buffer;
  json: any;
}

/** One request on a connection of its own (servers restart under these tests). */
function send(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method, headers, agent: false, timeout: 5_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const text = bytes.toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, bytes, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in time`)));
    req.on('error', reject);
    req.end(body);
  });
}

function call(base: string, method: string, path: string, options: { body?: unknown; raw?: Buffer; auth?: string | null; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth !== null) headers.Authorization = options.auth ?? AUTH;
  let body: Buffer | undefined;
  if (options.raw) body = options.raw;
  else if (options.body !== undefined) {
    body = Buffer.from(JSON.stringify(options.body));
    headers['Content-Type'] = 'application/json';
  }
  if (body) headers['Content-Length'] = String(body.length);
  return send(base + path, method, headers, body);
}

/** A GET as a container's download action makes it: the URL alone, no credentials. */
async function download(url: string): Promise<{ status: number; bytes: Buffer; contentType: string | undefined }> {
  const answer = await send(url, 'GET', {});
  return { status: answer.status, bytes: answer.bytes, contentType: answer.headers['content-type'] };
}

/** POSTs bytes to the uploader as a cell's upload action does. */
function postToUploader(uploader: Uploader, path: string, body: Buffer): Promise<{ status: number; text: string }> {
  const url = new URL(uploader.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'POST', headers: { 'Content-Length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const appBits = () => execFileSync('tar', ['-czf', '-', '-C', join(repoRoot, 'examples', 'node-app'), '.']);

const success = (command = 'node server.js'): StagingResponseForCC => ({
  executionMetadata: JSON.stringify({ start_command: command }),
  detectedStartCommand: { web: command },
  error: undefined,
  lifecycleData: JSON.stringify({ buildpack_key: 'nodejs', detected_buildpack: 'nodejs' }),
});

const dockerSuccess = (image: string): StagingResponseForCC => ({
  executionMetadata: '{"cmd":["/start"],"ports":[{"Port":8080,"Protocol":"tcp"}]}',
  detectedStartCommand: { web: '/start' },
  error: undefined,
  lifecycleData: JSON.stringify({ docker_image: image }),
});

const env = (list: { name: string; value: string }[] | null, name: string) => list?.find((e) => e.name === name)?.value;

describe('development Cloud Controller', () => {
  let dataDir: string;
  let bridge: FakeBridge;
  let cc: DevelopmentCloudController;
  let client: CcClient;
  let uploader: Uploader;
  let now = Date.UTC(2026, 0, 1);
  const clock = { now: () => now };

  const startCc = (port = 0) =>
    startDevelopmentCloudController({
      dataDir,
      port,
      logger: silentLogger(),
      username: USERNAME,
      password: PASSWORD,
      bridgeUrl: bridge.url,
      fileServerUrl: FILE_SERVER,
      clock,
      bridgeTimeoutMs: 2_000,
    });
  const api = (method: string, path: string, options?: Parameters<typeof call>[3]) => call(cc.url, method, path, options);
  /** Starts the CC again on its port with a new client: a kept-alive connection to the old process is gone. */
  const restartedClient = async (port: number) => {
    const restarted = await startCc(port);
    client.close();
    client = createCcClient({ baseUrl: restarted.url, username: USERNAME, password: PASSWORD, timeoutMs: 2_000 });
    return restarted;
  };

  /** Creates a docker app, starts it and completes its staging: an app that runs. */
  async function runningDockerApp(name: string, image = `registry.example/${name}:1`): Promise<{ guid: string; processGuid: string }> {
    const created = await api('POST', '/dev/v1/apps', { body: { name, docker_image: image } });
    assert.equal(created.status, 201, created.text);
    const mark = bridge.calls.length;
    assert.equal((await api('POST', `/dev/v1/apps/${name}/start`)).status, 200);
    const staging = bridge.since(mark, 'PUT', /^\/v1\/staging\//)[0]!;
    await client.stagingCompleted(staging.path.split('/')[3]!, dockerSuccess(image));
    const desired = await bridge.waitFor((c) => c.method === 'PUT' && c.path.startsWith(`/v1/apps/${created.json.guid}-`));
    return { guid: created.json.guid, processGuid: desired.json.process_guid };
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-dev-cc-'));
    bridge = await new FakeBridge().start();
    cc = await startCc();
    client = createCcClient({ baseUrl: cc.url, username: USERNAME, password: PASSWORD, timeoutMs: 2_000 });
    uploader = await startUploader({ logger: silentLogger(), ccJobPollingIntervalMs: 10 });
  });

  after(async () => {
    client.close();
    await uploader.close();
    await cc.close();
    await bridge.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('GET / says it is a development stand-in, without credentials', async () => {
    const answer = await api('GET', '/', { auth: null });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.development_stand_in, true);
    assert.match(answer.json.description, /development stand-in/);
    assert.match(answer.json.description, /not Cloud Controller/);
  });

  test('the internal and command-line APIs want the configured credentials', async () => {
    for (const auth of [null, `Basic ${Buffer.from(`${USERNAME}:wrong`).toString('base64')}`]) {
      const internal = await api('GET', '/internal/bulk/apps?batch_size=10&format=fingerprint&token={}', { auth });
      assert.equal(internal.status, 401);
      assert.equal(internal.json.error_code, 'CF-NotAuthenticated');
      const dev = await api('GET', '/dev/v1/apps', { auth });
      assert.equal(dev.status, 401);
      assert.equal(dev.json.errors[0].title, 'CF-NotAuthenticated');
    }
    const stranger = createCcClient({ baseUrl: cc.url, username: USERNAME, password: 'wrong', timeoutMs: 2_000 });
    await assert.rejects(stranger.stagingCompleted('any', success()), (e) => e instanceof CcStatusError && e.status === 401);
    stranger.close();
  });

  test('a buildpack app: create, upload bits, start → the staging request; uploads and success → the desired app; scale, stop, restage', async () => {
    const created = await api('POST', '/dev/v1/apps', { body: { name: 'node-app', memory_mb: 128, disk_mb: 512, env: { GREETING: 'hello' } } });
    assert.equal(created.status, 201, created.text);
    const guid: string = created.json.guid;
    assert.equal(created.json.state, 'STOPPED');
    assert.deepEqual(created.json.routes, ['node-app.localhost']);

    const noBits = await api('POST', '/dev/v1/apps/node-app/start');
    assert.equal(noBits.status, 422);
    assert.equal(noBits.json.errors[0].title, 'CF-AppPackageInvalid');

    const bits = appBits();
    const uploaded = await api('PUT', '/dev/v1/apps/node-app/bits', { raw: bits, headers: { 'Content-Type': 'application/gzip' } });
    assert.equal(uploaded.status, 201, uploaded.text);
    assert.equal(uploaded.json.type, 'tgz');
    assert.equal(uploaded.json.size, bits.length);

    // Start: no droplet yet, so a staging request.
    let mark = bridge.calls.length;
    const started = await api('POST', '/dev/v1/apps/node-app/start');
    assert.equal(started.status, 200, started.text);
    assert.equal(started.json.state, 'STARTED');
    assert.equal(started.json.build.state, 'STAGING');
    const [staging] = bridge.since(mark);
    assert.equal(staging?.method, 'PUT');
    assert.match(staging!.path, /^\/v1\/staging\/[0-9a-f-]{36}$/);
    const stagingGuid = staging!.path.split('/')[3]!;
    assert.equal(stagingGuid, started.json.build.guid);
    const request = staging!.json;
    assert.equal(request.app_id, guid);
    assert.equal(request.lifecycle, 'buildpack');
    assert.equal(request.log_guid, guid);
    assert.equal(request.memory_mb, 1024, 'staging memory is raised to the staging minimum');
    assert.equal(request.disk_mb, 4096);
    assert.equal(request.file_descriptors, 16384);
    assert.equal(request.timeout, 900);
    assert.equal(request.egress_rules, undefined, 'no egress rules (an empty list, omitted)');
    assert.equal(env(request.environment, 'GREETING'), 'hello');
    assert.equal(env(request.environment, 'CF_STACK'), 'cflinuxfs4');
    assert.equal(env(request.environment, 'MEMORY_LIMIT'), '1024m');
    const vcap = JSON.parse(env(request.environment, 'VCAP_APPLICATION')!);
    assert.equal(vcap.application_name, 'node-app');
    assert.deepEqual(vcap.application_uris, ['node-app.localhost']);
    const data = request.lifecycle_data;
    assert.equal(data.stack, 'cflinuxfs4');
    assert.deepEqual(data.buildpacks, [
      { name: 'nodejs', key: 'nodejs', url: `${FILE_SERVER}/v1/static/buildpacks/nodejs_buildpack.tgz`, skip_detect: false },
      { name: 'staticfile', key: 'staticfile', url: `${FILE_SERVER}/v1/static/buildpacks/staticfile_buildpack.tgz`, skip_detect: false },
    ]);
    assert.equal(data.build_artifacts_cache_download_uri, undefined, 'no cache yet');
    for (const key of ['app_bits_download_uri', 'build_artifacts_cache_upload_uri', 'droplet_upload_uri']) {
      assert.ok(data[key].startsWith(`http://127.0.0.1:${cc.port}/staging/`), `${key}: ${data[key]}`);
      assert.ok(!data[key].includes('@'), 'no credentials in URLs handed to containers');
    }
    assert.ok(data.app_bits_download_uri.startsWith(`http://127.0.0.1:${cc.port}/staging/packages/${guid}?`));
    assert.ok(data.droplet_upload_uri.startsWith(`http://127.0.0.1:${cc.port}/staging/droplets/${guid}/upload?`));
    assert.ok(data.build_artifacts_cache_upload_uri.startsWith(`http://127.0.0.1:${cc.port}/staging/buildpack_cache/${guid}/upload?`));

    // The signed URLs work without credentials; a forged signature does not.
    const fetched = await download(data.app_bits_download_uri);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.contentType, 'application/gzip');
    assert.ok(fetched.bytes.equals(bits));
    const forged = data.app_bits_download_uri.replace(/signature=[0-9a-f]{4}/, 'signature=0000');
    assert.equal((await download(forged)).status, 401);

    // The staging task uploads its droplet and build cache through the uploader.
    const droplet = randomBytes(200_000);
    const dropletUpload = await postToUploader(uploader, `/v1/droplet/${stagingGuid}?cc-droplet-upload-uri=${encodeURIComponent(data.droplet_upload_uri)}`, droplet);
    assert.equal(dropletUpload.status, 201, dropletUpload.text);
    const cache = randomBytes(50_000);
    const cacheUpload = await postToUploader(uploader, `/v1/build_artifacts/${guid}?cc-build-artifacts-upload-uri=${encodeURIComponent(data.build_artifacts_cache_upload_uri)}`, cache);
    assert.equal(cacheUpload.status, 200, cacheUpload.text);

    // Staging succeeds: CC desires the app.
    mark = bridge.calls.length;
    await client.stagingCompleted(stagingGuid, success('npm start'));
    const desire = await bridge.waitFor((c) => c.method === 'PUT' && c.path.startsWith('/v1/apps/'));
    const app = (await api('GET', '/dev/v1/apps/node-app')).json;
    assert.equal(app.build.state, 'STAGED');
    assert.equal(app.droplet.start_command, 'npm start');
    assert.equal(app.droplet.detected_buildpack, 'nodejs');
    const processGuid = `${guid}-${app.version}`;
    assert.equal(app.process_guid, processGuid);
    assert.equal(desire.path, `/v1/apps/${processGuid}`);
    const desired = desire.json;
    assert.equal(desired.process_guid, processGuid);
    assert.equal(desired.docker_image, '');
    assert.equal(desired.stack, 'cflinuxfs4');
    assert.equal(desired.start_command, 'npm start');
    assert.equal(desired.execution_metadata, '{"start_command":"npm start"}');
    assert.equal(desired.memory_mb, 128);
    assert.equal(desired.disk_mb, 512);
    assert.equal(desired.file_descriptors, 16384);
    assert.equal(desired.num_instances, 1);
    assert.deepEqual(desired.routes, ['node-app.localhost']);
    assert.equal(desired.log_guid, guid);
    assert.equal(desired.health_check_type, 'port');
    assert.equal(desired.health_check_timeout_in_seconds, 60);
    assert.equal(desired.allow_ssh, false);
    assert.equal(desired.etag, app.etag);
    assert.equal(env(desired.environment, 'GREETING'), 'hello');
    assert.equal(env(desired.environment, 'MEMORY_LIMIT'), '128m');
    assert.equal(env(desired.environment, 'CF_STACK'), undefined);
    assert.ok(desired.droplet_uri.startsWith(`http://127.0.0.1:${cc.port}/staging/droplets/${guid}/download?`));
    const dropletDownload = await download(desired.droplet_uri);
    assert.equal(dropletDownload.status, 200);
    assert.ok(dropletDownload.bytes.equals(droplet));

    // The bulk endpoints serve the same desired app.
    const page = await client.fingerprints(100, '{}');
    assert.deepEqual(page.fingerprints.find((f) => f.processGuid === processGuid), { processGuid, etag: app.etag });
    const [bulk] = await client.desiredApps([processGuid]);
    assert.equal(bulk?.dropletUri, desired.droplet_uri);
    assert.equal(bulk?.etag, app.etag);

    // Scale instances: the same process, new instances and a new etag.
    mark = bridge.calls.length;
    const scaled = await api('POST', '/dev/v1/apps/node-app/scale', { body: { instances: 3 } });
    assert.equal(scaled.status, 200, scaled.text);
    const [scalePut, ...scaleRest] = bridge.since(mark);
    assert.equal(scaleRest.length, 0);
    assert.equal(scalePut?.method, 'PUT');
    assert.equal(scalePut?.path, `/v1/apps/${processGuid}`);
    assert.equal(scalePut?.json.num_instances, 3);
    assert.notEqual(scalePut?.json.etag, desired.etag);
    assert.equal(scalePut?.json.etag, scaled.json.etag);

    // Instances as TPS reports them.
    bridge.instances.set(processGuid, [
      { process_guid: processGuid, instance_guid: 'i-0', index: 0, state: 'RUNNING', host: '127.0.0.1', port: 61001, uptime: 5, since: 1767225595, stats: { time: '2026-01-01T00:00:00Z', cpu: 0.04, mem: 1048576, disk: 2097152 } },
      { process_guid: processGuid, instance_guid: 'i-1', index: 1, state: 'STARTING', uptime: 1, since: 1767225599 },
    ]);
    mark = bridge.calls.length;
    const shown = await api('GET', '/dev/v1/apps/node-app');
    assert.equal(shown.status, 200);
    const statsCall = bridge.since(mark, 'GET', /\/stats$/)[0]!;
    assert.equal(statsCall.path, `/v1/actual_lrps/${processGuid}/stats`);
    assert.ok(statsCall.headers.authorization, 'stats are asked with an Authorization header of its own');
    assert.notEqual(statsCall.headers.authorization, AUTH, 'and not with the internal credentials');
    assert.equal(shown.json.running_instances, 1);
    assert.deepEqual(shown.json.instance_details, [
      { index: 0, state: 'RUNNING', instance_guid: 'i-0', since: '2025-12-31T23:59:55.000Z', uptime: 5, details: null, host: '127.0.0.1', port: 61001, ssh_port: null, cpu: 0.04, memory_bytes: 1048576, disk_bytes: 2097152 },
      { index: 1, state: 'STARTING', instance_guid: 'i-1', since: '2025-12-31T23:59:59.000Z', uptime: 1, details: null, host: null, port: null, ssh_port: null, cpu: null, memory_bytes: null, disk_bytes: null },
      { index: 2, state: 'DOWN', instance_guid: null, since: null, uptime: null, details: null, host: null, port: null, ssh_port: null, cpu: null, memory_bytes: null, disk_bytes: null },
    ]);
    const listed = await api('GET', '/dev/v1/apps');
    const row = listed.json.resources.find((a: { name: string }) => a.name === 'node-app');
    assert.equal(row.running_instances, 1);
    assert.equal(row.instances, 3);
    assert.equal(row.url, 'http://node-app.localhost');
    assert.ok(bridge.since(mark, 'GET', /^\/v1\/bulk_actual_lrp_status\?guids=/).length > 0);

    const logs = await api('GET', '/dev/v1/apps/node-app/logs');
    assert.equal(logs.json.log_guid, guid);
    assert.equal(logs.json.source_types.staging, 'STG');

    // Environment change on a running app: a new process replaces the old one.
    mark = bridge.calls.length;
    const envSet = await api('PATCH', '/dev/v1/apps/node-app/environment_variables', { body: { var: { GREETING: 'hi', EXTRA: '1' } } });
    assert.equal(envSet.status, 200, envSet.text);
    assert.deepEqual(envSet.json.var, { GREETING: 'hi', EXTRA: '1' });
    const [envPut, envDelete] = bridge.since(mark);
    assert.equal(envPut?.method, 'PUT');
    assert.notEqual(envPut?.json.process_guid, processGuid);
    assert.equal(env(envPut?.json.environment, 'GREETING'), 'hi');
    assert.equal(envPut?.json.num_instances, 3);
    assert.equal(envDelete?.method, 'DELETE');
    assert.equal(envDelete?.path, `/v1/apps/${processGuid}`);
    const newProcessGuid: string = envPut!.json.process_guid;
    assert.deepEqual((await api('GET', '/dev/v1/apps/node-app/environment_variables')).json, { var: { GREETING: 'hi', EXTRA: '1' } });
    const unset = await api('PATCH', '/dev/v1/apps/node-app/environment_variables', { body: { var: { EXTRA: null } } });
    assert.deepEqual(unset.json.var, { GREETING: 'hi' });
    const latestProcessGuid: string = bridge.since(mark, 'PUT').at(-1)!.json.process_guid;
    assert.notEqual(latestProcessGuid, newProcessGuid);

    // Stop: the running process is deleted.
    mark = bridge.calls.length;
    const stopped = await api('POST', '/dev/v1/apps/node-app/stop');
    assert.equal(stopped.status, 200);
    assert.equal(stopped.json.state, 'STOPPED');
    assert.deepEqual(
      bridge.since(mark).map((c) => `${c.method} ${c.path}`),
      [`DELETE /v1/apps/${latestProcessGuid}`],
    );
    assert.equal((await client.fingerprints(100, '{}')).fingerprints.some((f) => f.processGuid.startsWith(guid)), false, 'a stopped app is not in the bulk pages');

    // Restage: a new staging with the cache from the last one.
    mark = bridge.calls.length;
    const restaged = await api('POST', '/dev/v1/apps/node-app/restage');
    assert.equal(restaged.status, 200, restaged.text);
    const [restage] = bridge.since(mark);
    assert.equal(restage?.method, 'PUT');
    const restageGuid = restage!.path.split('/')[3]!;
    assert.match(restage!.path, /^\/v1\/staging\//);
    assert.notEqual(restageGuid, stagingGuid);
    const cacheUri: string = restage!.json.lifecycle_data.build_artifacts_cache_download_uri;
    assert.ok(cacheUri.startsWith(`http://127.0.0.1:${cc.port}/staging/buildpack_cache/${guid}/download?`));
    const cacheDownload = await download(cacheUri);
    assert.equal(cacheDownload.status, 200);
    assert.ok(cacheDownload.bytes.equals(cache));

    // Restaging again while that staging runs stops it first.
    mark = bridge.calls.length;
    await api('POST', '/dev/v1/apps/node-app/restage');
    const [stopStaging, again] = bridge.since(mark);
    assert.equal(`${stopStaging?.method} ${stopStaging?.path}`, `DELETE /v1/staging/${restageGuid}`);
    assert.equal(again?.method, 'PUT');
    const builds = (await api('GET', '/dev/v1/apps/node-app/builds')).json.resources;
    assert.deepEqual(
      builds.map((b: { state: string }) => b.state),
      ['STAGING', 'CANCELED', 'STAGED'],
    );
    // The stopped staging's completion changes nothing.
    await client.stagingCompleted(restageGuid, success());
    assert.equal((await api('GET', '/dev/v1/apps/node-app/builds')).json.resources[1].state, 'CANCELED');

    const events = (await api('GET', '/dev/v1/apps/node-app/events?limit=100')).json.resources.map((e: { type: string }) => e.type);
    for (const type of ['audit.app.create', 'audit.app.upload-bits', 'audit.app.start', 'audit.app.build.create', 'audit.app.droplet.create', 'audit.app.update', 'audit.app.stop', 'audit.app.restage']) {
      assert.ok(events.includes(type), `${type} in ${events.join(', ')}`);
    }
  });

  test('a named buildpack is staged alone without detection; a buildpack URL is a custom buildpack', async () => {
    const cases = [
      { name: 'static-site', buildpack: 'staticfile', want: { name: 'staticfile', key: 'staticfile', url: `${FILE_SERVER}/v1/static/buildpacks/staticfile_buildpack.tgz`, skip_detect: true } },
      { name: 'custom-site', buildpack: 'https://example.com/buildpacks/my_buildpack.zip', want: { name: 'custom', key: 'https://example.com/buildpacks/my_buildpack.zip', url: 'https://example.com/buildpacks/my_buildpack.zip', skip_detect: true } },
    ];
    for (const c of cases) {
      assert.equal((await api('POST', '/dev/v1/apps', { body: { name: c.name, buildpack: c.buildpack } })).status, 201);
      await api('PUT', `/dev/v1/apps/${c.name}/bits`, { raw: appBits() });
      const mark = bridge.calls.length;
      await api('POST', `/dev/v1/apps/${c.name}/start`);
      const [staging] = bridge.since(mark, 'PUT', /^\/v1\/staging\//);
      assert.deepEqual(staging?.json.lifecycle_data.buildpacks, [c.want], c.name);
    }
  });

  test('a staging failure is kept on the build with its error id and message, and an event', async () => {
    await api('POST', '/dev/v1/apps', { body: { name: 'undetected' } });
    await api('PUT', '/dev/v1/apps/undetected/bits', { raw: appBits() });
    const started = await api('POST', '/dev/v1/apps/undetected/start');
    const stagingGuid: string = started.json.build.guid;
    const mark = bridge.calls.length;
    await client.stagingCompleted(stagingGuid, {
      executionMetadata: '',
      detectedStartCommand: {},
      error: { id: StagingErrorId.STAGING_ERROR_ID_NO_APP_DETECTED_ERROR, message: 'staging failed' },
      lifecycleData: '',
    });
    const app = (await api('GET', '/dev/v1/apps/undetected')).json;
    assert.equal(app.build.state, 'FAILED');
    assert.deepEqual(app.build.error, { id: 'NoAppDetectedError', message: 'staging failed' });
    assert.equal(app.droplet, null);
    assert.equal(app.state, 'STARTED');
    const [event] = (await api('GET', '/dev/v1/apps/undetected/events?type=audit.app.build.failed')).json.resources;
    assert.equal(event.metadata.error_id, 'NoAppDetectedError');
    assert.equal(bridge.since(mark, 'PUT', /^\/v1\/apps\//).length, 0, 'nothing desired');

    await assert.rejects(client.stagingCompleted('no-such-staging', success()), (e) => e instanceof CcStatusError && e.status === 404);
  });

  test('a docker app: the image and its credentials go to staging and to the desired app', async () => {
    const created = await api('POST', '/dev/v1/apps', {
      body: { name: 'docker-app', docker_image: 'registry.example/team/app:2', docker_username: 'robot', docker_password: 's3cret', instances: 2, health_check_type: 'process' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.text.includes('s3cret'), false, 'the docker password is never answered');
    const mark = bridge.calls.length;
    await api('POST', '/dev/v1/apps/docker-app/start');
    const [staging] = bridge.since(mark);
    assert.equal(staging?.json.lifecycle, 'docker');
    assert.deepEqual(staging?.json.lifecycle_data, { docker_image: 'registry.example/team/app:2', docker_user: 'robot', docker_password: 's3cret' });
    await client.stagingCompleted(staging!.path.split('/')[3]!, dockerSuccess('registry.example/team/app:2'));
    const desire = await bridge.waitFor((c) => c.method === 'PUT' && c.path.startsWith(`/v1/apps/${created.json.guid}-`));
    assert.equal(desire.json.docker_image, 'registry.example/team/app:2');
    assert.equal(desire.json.docker_user, 'robot');
    assert.equal(desire.json.docker_password, 's3cret');
    assert.equal(desire.json.droplet_uri, '');
    assert.equal(desire.json.health_check_type, 'none', "today's process health check is 2015's none");
    assert.equal(desire.json.num_instances, 2);
    assert.equal(desire.json.start_command, '/start');
  });

  test('instance reports become app events; duplicates are dropped by their event id', async () => {
    const { guid, processGuid } = await runningDockerApp('crashy');
    const crash = { instance: 'i-1', index: 1, reason: 'CRASHED', exitStatus: 0, exitDescription: 'out of memory', crashCount: 2, crashTimestamp: '1767225600000000000' };
    await client.reportInstance(processGuid, { kind: 'crashed-legacy', body: crash }, { eventId: 'ev-1' });
    await client.reportInstance(processGuid, { kind: 'crashed-legacy', body: crash }, { eventId: 'ev-1' });
    await client.reportInstance(processGuid, { kind: 'crashed', body: { instance: 'i-1', index: 1, cellId: 'cell-1', reason: 'CRASHED', exitDescription: 'exit 1', crashCount: 3, crashTimestamp: '1767225601000000000' } }, { eventId: 'ev-2' });
    await client.reportInstance(processGuid, { kind: 'rescheduling', body: { instance: 'i-1', index: 1, cellId: 'cell-1', reason: 'Cell is being evacuated' } }, { eventId: 'ev-3' });
    await client.reportInstance(processGuid, { kind: 'readiness_changed', body: { instance: 'i-1', index: 1, cellId: 'cell-1', ready: true } }, { eventId: 'ev-4' });
    await client.reportInstance(processGuid, { kind: 'readiness_changed', body: { instance: 'i-1', index: 1, cellId: 'cell-1', ready: true } }, { eventId: 'ev-4' });

    const events = (await api('GET', `/dev/v1/apps/${guid}/events?type=app.crash,app.rescheduling,app.readiness_changed`)).json.resources;
    assert.deepEqual(
      events.map((e: { type: string }) => e.type),
      ['app.readiness_changed', 'app.rescheduling', 'app.crash', 'app.crash'],
    );
    const legacy = events[3];
    assert.equal(legacy.metadata.index, 1);
    assert.equal(legacy.metadata.reason, 'CRASHED');
    assert.equal(legacy.metadata.exit_description, 'out of memory');
    assert.equal(legacy.metadata.crash_count, 2);
    assert.equal(legacy.metadata.crash_timestamp, 1767225600000000000);
    assert.equal(legacy.metadata.process_guid, processGuid);
    assert.equal(events[2].metadata.cell_id, 'cell-1');
    assert.equal(events[1].metadata.reason, 'Cell is being evacuated');
    assert.equal(events[0].metadata.ready, true);

    const all = (await api('GET', '/dev/v1/events?type=app.crash')).json.resources;
    assert.ok(all.every((e: { type: string }) => e.type === 'app.crash'));
    assert.ok(all.some((e: { app_name: string }) => e.app_name === 'crashy'));

    await assert.rejects(
      client.reportInstance('00000000-0000-0000-0000-000000000000-v', { kind: 'crashed', body: { instance: 'i', index: 0, cellId: '', reason: 'CRASHED', exitDescription: '', crashCount: 1, crashTimestamp: '1' } }, { eventId: 'ev-unknown' }),
      (e) => e instanceof CcStatusError && e.status === 404,
    );
    const bad = await api('POST', `/internal/v4/apps/${processGuid}/crashed`, { body: { index: 'one' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error_code, 'CF-MessageParseError');
  });

  test('bulk fingerprints page through every started app with a droplet; bulk apps answer the current ones', async () => {
    const running = [];
    for (const name of ['bulk-a', 'bulk-b', 'bulk-c', 'bulk-d', 'bulk-e']) running.push(await runningDockerApp(name));
    await api('POST', '/dev/v1/apps/bulk-e/stop');
    const expected = new Set(running.slice(0, 4).map((r) => r.processGuid));

    const seen: string[] = [];
    let token = '{}';
    for (let pages = 0; pages < 50; pages++) {
      const page = await client.fingerprints(2, token);
      for (const fingerprint of page.fingerprints) seen.push(fingerprint.processGuid);
      assert.ok(page.fingerprints.length <= 2);
      assert.match(page.token, /^\{"id":\d+\}$/);
      if (page.fingerprints.length < 2) break;
      token = page.token;
    }
    assert.equal(new Set(seen).size, seen.length, 'no app twice');
    for (const processGuid of expected) assert.ok(seen.includes(processGuid), `${processGuid} listed`);
    assert.equal(seen.includes(running[4]!.processGuid), false, 'the stopped app is not listed');

    const raw = await api('GET', '/internal/bulk/apps?batch_size=2&format=fingerprint&token={"id":0}');
    assert.equal(raw.status, 200);
    assert.equal(raw.json.fingerprints.length, 2);
    assert.equal((await api('GET', '/internal/bulk/apps?batch_size=x&format=fingerprint&token={}')).status, 400);
    assert.equal((await api('GET', '/internal/bulk/apps?batch_size=2&format=fingerprint&token=nope')).status, 400);

    const asked = [...expected, running[4]!.processGuid, `${running[0]!.guid}-stale-version`];
    const apps = await client.desiredApps(asked);
    assert.deepEqual(apps.map((a) => a.processGuid).sort(), [...expected].sort());
    for (const app of apps) assert.equal(app.dockerImage.startsWith('registry.example/bulk-'), true);
    const fingerprints = new Map<string, string>();
    for (let page = await client.fingerprints(100, '{}'); ; ) {
      for (const f of page.fingerprints) fingerprints.set(f.processGuid, f.etag);
      break;
    }
    for (const app of apps) assert.equal(app.etag, fingerprints.get(app.processGuid));
  });

  test('blobstore: multipart droplet uploads with basic auth answer an async job; downloads; a missing cache is 404', async () => {
    await api('POST', '/dev/v1/apps', { body: { name: 'blobs' } });
    const bits = appBits();
    await api('PUT', '/dev/v1/apps/blobs/bits', { raw: bits });
    const guid: string = (await api('GET', '/dev/v1/apps/blobs')).json.guid;

    assert.equal((await api('GET', `/staging/buildpack_cache/${guid}/download`)).status, 404);
    const packageAnswer = await api('GET', `/staging/packages/${guid}`);
    assert.equal(packageAnswer.status, 200);
    assert.equal((await api('GET', `/staging/packages/${guid}`, { auth: null })).status, 401);

    // No staging in progress: nowhere for a droplet to go.
    const droplet = randomBytes(10_000);
    const framing = multipartFraming('droplet.tgz');
    const body = Buffer.concat([framing.head, droplet, framing.tail]);
    const early = await api('POST', `/staging/droplets/${guid}/upload?async=true`, { raw: body, headers: { 'Content-Type': framing.contentType } });
    assert.equal(early.status, 404);

    const started = await api('POST', '/dev/v1/apps/blobs/start');
    const stagingGuid: string = started.json.build.guid;
    const md5 = (await import('node:crypto')).createHash('md5').update(droplet).digest('base64');
    const wrongMd5 = await api('POST', `/staging/droplets/${guid}/upload?async=true`, { raw: body, headers: { 'Content-Type': framing.contentType, 'Content-MD5': 'AAAAAAAAAAAAAAAAAAAAAA==' } });
    assert.equal(wrongMd5.status, 400);
    const notMultipart = await api('POST', `/staging/droplets/${guid}/upload?async=true`, { raw: droplet, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(notMultipart.status, 400);
    const accepted = await api('POST', `/staging/droplets/${guid}/upload?async=true`, { raw: body, headers: { 'Content-Type': framing.contentType, 'Content-MD5': md5 } });
    assert.equal(accepted.status, 200, accepted.text);
    assert.match(accepted.json.metadata.url, /^\/v2\/jobs\/[0-9a-f-]{36}$/);
    assert.ok(['queued', 'running', 'finished'].includes(accepted.json.entity.status));
    const job = await api('GET', accepted.json.metadata.url, { auth: null });
    assert.equal(job.status, 200);
    assert.equal(job.json.entity.status, 'finished');
    assert.equal((await api('GET', '/v2/jobs/no-such-job', { auth: null })).status, 404);

    await client.stagingCompleted(stagingGuid, success());
    const downloaded = await api('GET', `/staging/droplets/${guid}/download`);
    assert.equal(downloaded.status, 200);
    assert.ok(downloaded.bytes.equals(droplet));

    const cacheFraming = multipartFraming('buildpack_cache.tgz');
    const cache = randomBytes(3_000);
    const cacheUp = await api('POST', `/staging/buildpack_cache/${guid}/upload`, { raw: Buffer.concat([cacheFraming.head, cache, cacheFraming.tail]), headers: { 'Content-Type': cacheFraming.contentType } });
    assert.equal(cacheUp.status, 200);
    const cacheDown = await api('GET', `/staging/buildpack_cache/${guid}/download`);
    assert.ok(cacheDown.bytes.equals(cache));

    const zip = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), randomBytes(100)]);
    const zipped = await api('PUT', '/dev/v1/apps/blobs/bits', { raw: zip });
    assert.equal(zipped.json.type, 'zip');
    assert.equal((await download(`${cc.url}/staging/packages/${guid}`)).status, 401);
    const zipDownload = await api('GET', `/staging/packages/${guid}`);
    assert.equal(zipDownload.headers['content-type'], 'application/zip');
    assert.ok(zipDownload.bytes.equals(zip));
    assert.equal((await api('PUT', '/dev/v1/apps/blobs/bits', { raw: Buffer.from('not an archive') })).status, 422);
  });

  test('delete stops what runs, removes the data, and keeps the audit trail', async () => {
    const { guid, processGuid } = await runningDockerApp('doomed');
    const mark = bridge.calls.length;
    const deleted = await api('DELETE', '/dev/v1/apps/doomed');
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(
      bridge.since(mark).map((c) => `${c.method} ${c.path}`),
      [`DELETE /v1/apps/${processGuid}`],
    );
    assert.equal((await api('GET', '/dev/v1/apps/doomed')).status, 404);
    assert.equal((await api('GET', `/dev/v1/events?app=${guid}`)).status, 404, 'events by app name or guid need the app');
    const trail = (await api('GET', '/dev/v1/events?type=audit.app.delete-request')).json.resources;
    assert.ok(trail.some((e: { app_guid: string }) => e.app_guid === guid));

    // A buildpack app deleted while staging: the staging is stopped and its blobs are gone.
    await api('POST', '/dev/v1/apps', { body: { name: 'doomed-too' } });
    await api('PUT', '/dev/v1/apps/doomed-too/bits', { raw: appBits() });
    const started = await api('POST', '/dev/v1/apps/doomed-too/start');
    const before = readdirSync(join(dataDir, 'packages')).length;
    const mark2 = bridge.calls.length;
    await api('DELETE', '/dev/v1/apps/doomed-too');
    assert.deepEqual(
      bridge.since(mark2).map((c) => `${c.method} ${c.path}`),
      [`DELETE /v1/staging/${started.json.build.guid}`],
    );
    assert.equal(readdirSync(join(dataDir, 'packages')).length, before - 1);
    assert.equal(existsSync(join(dataDir, 'packages', started.json.package.guid)), false);
  });

  test('state survives a restart, and nothing is desired again at start', async () => {
    const { guid, processGuid } = await runningDockerApp('survivor');
    const before = (await api('GET', '/dev/v1/apps/survivor')).json;
    const port = cc.port;
    await cc.close();
    const mark = bridge.calls.length;
    cc = await restartedClient(port);
    assert.equal(bridge.calls.length, mark, 'no bridge calls at start');
    const after = (await api('GET', '/dev/v1/apps/survivor')).json;
    assert.equal(after.guid, guid);
    assert.equal(after.state, 'STARTED');
    assert.equal(after.process_guid, processGuid);
    assert.equal(after.etag, before.etag);
    assert.deepEqual(after.droplet, before.droplet);
    const fingerprints = new Map<string, string>();
    let token = '{}';
    for (let pages = 0; pages < 50; pages++) {
      const page = await client.fingerprints(3, token);
      for (const f of page.fingerprints) fingerprints.set(f.processGuid, f.etag);
      if (page.fingerprints.length < 3) break;
      token = page.token;
    }
    assert.equal(fingerprints.get(processGuid), before.etag);
    const events = (await api('GET', '/dev/v1/apps/survivor/events')).json.resources;
    assert.ok(events.some((e: { type: string }) => e.type === 'audit.app.droplet.create'));
    // Event ids too: a report seen before the restart is still a duplicate.
    const crash = { instance: 'i', index: 0, cellId: '', reason: 'CRASHED', exitDescription: '', crashCount: 1, crashTimestamp: '1' };
    await client.reportInstance(processGuid, { kind: 'crashed', body: crash }, { eventId: 'persisted-id' });
    await cc.close();
    cc = await restartedClient(port);
    await client.reportInstance(processGuid, { kind: 'crashed', body: crash }, { eventId: 'persisted-id' });
    assert.equal((await api('GET', '/dev/v1/apps/survivor/events?type=app.crash')).json.resources.length, 1);

    // Scaling after the restart: the same process guid, the new instance count.
    const mark2 = bridge.calls.length;
    await api('POST', '/dev/v1/apps/survivor/scale', { body: { instances: 4 } });
    const [put] = bridge.since(mark2);
    assert.equal(put?.path, `/v1/apps/${processGuid}`);
    assert.equal(put?.json.num_instances, 4);
  });

  test('command-line API input checks', async () => {
    const cases: { name: string; body: unknown; status: number; detail: RegExp }[] = [
      { name: 'bad name', body: { name: 'no spaces please' }, status: 422, detail: /name must be/ },
      { name: 'unknown field', body: { name: 'x1', memory: 128 }, status: 422, detail: /unknown field\(s\): memory/ },
      { name: 'unknown buildpack', body: { name: 'x2', buildpack: 'cobol' }, status: 422, detail: /not configured/ },
      { name: 'reserved variable', body: { name: 'x3', env: { VCAP_SERVICES: '{}' } }, status: 422, detail: /VCAP_/ },
      { name: 'bad health check', body: { name: 'x4', health_check_type: 'ping' }, status: 422, detail: /health_check_type/ },
      { name: 'bad instances', body: { name: 'x5', instances: -1 }, status: 422, detail: /instances/ },
    ];
    for (const c of cases) {
      const answer = await api('POST', '/dev/v1/apps', { body: c.body });
      assert.equal(answer.status, c.status, c.name);
      assert.match(answer.json.errors[0].detail, c.detail, c.name);
    }
    await api('POST', '/dev/v1/apps', { body: { name: 'twice' } });
    const again = await api('POST', '/dev/v1/apps', { body: { name: 'twice' } });
    assert.equal(again.status, 422);
    assert.equal(again.json.errors[0].title, 'CF-AppNameTaken');
    const named = await api('POST', '/dev/v1/apps', { body: { name: 'custom-bp', buildpack: 'https://example.com/bp.zip' } });
    assert.equal(named.status, 201);
    assert.equal((await api('GET', '/dev/v1/apps/nobody')).status, 404);
    assert.equal((await api('POST', '/dev/v1/apps/twice/scale', { body: {} })).status, 422);
    const parse = await api('POST', '/dev/v1/apps', { raw: Buffer.from('{nope'), headers: { 'Content-Type': 'application/json' } });
    assert.equal(parse.status, 400);
    assert.equal((await api('GET', '/no/such/route')).status, 404);
  });
});

/** Every object in a JSON-like tree that has the given key. */
function findAll(tree: unknown, key: string): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  const walk = (node: unknown) => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(walk);
    const record = node as Record<string, unknown>;
    if (record[key] && typeof record[key] === 'object') found.push(record[key] as Record<string, unknown>);
    Object.values(record).forEach(walk);
  };
  walk(tree);
  return found;
}

describe('development Cloud Controller with the real bridge (gateway, stager, nsync, TPS, bulker, embedded Diego)', () => {
  let dataDir: string;
  let diego: EmbeddedDiego;
  let bbs: BbsClient;
  let gateway: RunningGateway;
  let uploader: Uploader;
  let cc: DevelopmentCloudController;
  let stagerCc: CcClient;
  let bulkerCc: CcClient;
  let nsyncRecipe: RecipeConfig;

  before(async () => {
    const log = silentLogger();
    dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-dev-cc-e2e-'));
    diego = await startEmbeddedDiego({ dataDir: join(dataDir, 'diego'), logger: log });
    bbs = createBbsClient({ url: diego.url, logger: log, timeoutMs: 2_000 });
    uploader = await startUploader({ logger: log, ccJobPollingIntervalMs: 10 });
    // The gateway's URL is needed by the CC and by the staging recipe, so it starts first with
    // late-bound services.
    const services: Record<string, Record<string, unknown>> = {};
    const lateBound = (name: string) => new Proxy({}, { get: (_t, key) => services[name]?.[key as string] });
    gateway = await startGateway({
      logger: log,
      services: [
        { definition: StagerServiceDefinition, dispatcher: inProcessDispatcher(StagerServiceDefinition, lateBound('stager'), log) },
        { definition: NsyncServiceDefinition, dispatcher: inProcessDispatcher(NsyncServiceDefinition, lateBound('nsync'), log) },
        { definition: TpsServiceDefinition, dispatcher: inProcessDispatcher(TpsServiceDefinition, lateBound('tps'), log) },
      ],
    });
    cc = await startDevelopmentCloudController({
      dataDir: join(dataDir, 'cc'),
      logger: log,
      username: USERNAME,
      password: PASSWORD,
      bridgeUrl: gateway.url,
      fileServerUrl: FILE_SERVER,
      bridgeTimeoutMs: 2_000,
    });
    stagerCc = createCcClient({ baseUrl: cc.url, username: USERNAME, password: PASSWORD, timeoutMs: 2_000 });
    bulkerCc = createCcClient({ baseUrl: cc.url, username: USERNAME, password: PASSWORD, timeoutMs: 2_000 });
    const lifecycle = 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz';
    const stagingRecipe: StagingRecipeConfig = {
      fileServerURL: FILE_SERVER,
      ccUploaderURL: uploader.url,
      stagingTaskCallbackURL: gateway.url,
      lifecycles: new Map([
        ['buildpack/cflinuxfs4', lifecycle],
        ['docker', 'docker_app_lifecycle/docker_app_lifecycle.tgz'],
      ]),
      dockerStagingStack: 'cflinuxfs4',
      dockerRegistryAddress: '',
      insecureDockerRegistries: [],
      skipCertVerify: false,
      privileged: false,
      defaultStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
      maxStagingTimeoutMs: 60 * 60_000,
    };
    nsyncRecipe = {
      lifecycles: { 'buildpack/cflinuxfs4': lifecycle, docker: 'docker_app_lifecycle/docker_app_lifecycle.tgz' },
      fileServerUrl: FILE_SERVER,
      privilegedContainers: false,
      defaultHealthCheckTimeoutSeconds: 60,
      generateSshKeyPair: () => ({ privateKeyPem: '-----BEGIN RSA PRIVATE KEY-----\nkey\n-----END RSA PRIVATE KEY-----\n', authorizedKey: 'ssh-rsa AAAA', fingerprint: 'aa:bb' }),
    };
    services.stager = buildStager({ bbs, cc: stagerCc, recipe: stagingRecipe, logger: log }) as unknown as Record<string, unknown>;
    services.nsync = buildNsyncListener({ bbs, recipe: nsyncRecipe, logger: log }) as unknown as Record<string, unknown>;
    services.tps = buildTps({ bbs, logCache: createLogCacheClient({ url: diego.url, timeoutMs: 1_000 }), logger: log, resubscribePauseMs: 20 }) as unknown as Record<string, unknown>;
  });

  after(async () => {
    stagerCc.close();
    bulkerCc.close();
    await cc.close();
    await uploader.close();
    await gateway.close(100);
    bbs.close();
    await diego.close(100);
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('push, stage, run, scale and stop an app: Diego holds what the CC wants, and the bulker finds nothing to change', async () => {
    const api = (method: string, path: string, options?: Parameters<typeof call>[3]) => call(cc.url, method, path, options);
    const created = await api('POST', '/dev/v1/apps', { body: { name: 'node-app', memory_mb: 128 } });
    const guid: string = created.json.guid;
    const bits = appBits();
    await api('PUT', '/dev/v1/apps/node-app/bits', { raw: bits });
    const started = await api('POST', '/dev/v1/apps/node-app/start');
    assert.equal(started.status, 200, started.text);
    const stagingGuid: string = started.json.build.guid;

    // The stager made a staging task of it; its downloads and uploads use the CC's URLs.
    const task = await bbs.taskByGuid(stagingGuid);
    assert.equal(task.taskDefinition!.logGuid, guid);
    const downloads = findAll(task.taskDefinition, 'downloadAction');
    const bitsDownload = downloads.find((d) => String(d.from).includes('/staging/packages/'));
    assert.ok(bitsDownload, 'the task downloads the app bits from the CC');
    assert.ok((await download(String(bitsDownload!.from))).bytes.equals(bits));
    const uploads = findAll(task.taskDefinition, 'uploadAction');
    const dropletUpload = uploads.find((u) => String(u.to).includes('/v1/droplet/'));
    assert.ok(dropletUpload, 'the task uploads the droplet through the uploader');

    // What the cell would do: upload the droplet, then Diego calls the stager back.
    const droplet = randomBytes(20_000);
    const uploadUrl = new URL(String(dropletUpload!.to));
    const uploaded = await postToUploader(uploader, uploadUrl.pathname + uploadUrl.search, droplet);
    assert.equal(uploaded.status, 201, uploaded.text);
    const callback = await send(`${gateway.url}/v1/staging/${stagingGuid}/completed`, 'POST', { 'Content-Type': 'application/json' }, Buffer.from(JSON.stringify({
      task_guid: stagingGuid,
      failed: false,
      failure_reason: '',
      result: JSON.stringify({ buildpack_key: 'nodejs', detected_buildpack: 'nodejs', execution_metadata: '{"start_command":"node server.js"}', detected_start_command: { web: 'node server.js' } }),
      annotation: task.taskDefinition!.annotation,
      created_at: 1_700_000_000_000_000_000,
    })));
    assert.equal(callback.status, 200, callback.text);

    // The CC desired the app through nsync: Diego has the LRP, annotated with the CC's etag.
    let app = (await api('GET', '/dev/v1/apps/node-app')).json;
    const processGuid: string = app.process_guid;
    assert.ok(processGuid?.startsWith(`${guid}-`));
    let lrp;
    for (let attempt = 0; attempt < 100 && !lrp; attempt++) {
      lrp = await bbs.desiredLrpByProcessGuid(processGuid).catch(() => undefined);
      if (!lrp) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(lrp, 'the desired LRP exists');
    assert.equal(lrp.annotation, app.etag);
    assert.equal(lrp.instances, 1);
    assert.equal(lrp.memoryMb, 128);
    assert.equal(lrp.logGuid, guid);
    const routes = JSON.parse(lrp.routes!.routes['cf-router']!.toString('utf8'));
    assert.deepEqual(routes, [{ hostnames: ['node-app.localhost'], port: 8080 }]);
    const dropletDownload = findAll(lrp.setup, 'downloadAction').find((d) => String(d.from).includes('/staging/droplets/'));
    assert.ok(dropletDownload, 'instances download the droplet from the CC');
    assert.ok((await download(String(dropletDownload!.from))).bytes.equals(droplet));

    // TPS answers the CC's instance questions.
    app = (await api('GET', '/dev/v1/apps/node-app')).json;
    assert.equal(app.instance_details.length, 1);
    assert.ok(['STARTING', 'DOWN'].includes(app.instance_details[0].state), app.instance_details[0].state);
    const listed = await api('GET', '/dev/v1/apps');
    assert.deepEqual(listed.json.warnings, []);

    // The bulker sees the same apps the CC runs: nothing to desire, update or remove.
    const bulker = buildBulker({ bbs, cc: bulkerCc, recipe: nsyncRecipe, logger: silentLogger(), config: { batchSize: 2 } });
    let summary = await bulker.syncOnce();
    assert.deepEqual([summary.desired, summary.updated, summary.removed, summary.failed], [0, 0, 0, 0], summary.problems.join('; '));
    assert.equal(summary.freshnessBumped, true);

    // Scale: Diego follows, and the bulker still agrees.
    await api('POST', '/dev/v1/apps/node-app/scale', { body: { instances: 2 } });
    lrp = await bbs.desiredLrpByProcessGuid(processGuid);
    assert.equal(lrp.instances, 2);
    summary = await bulker.syncOnce();
    assert.deepEqual([summary.desired, summary.updated, summary.removed], [0, 0, 0]);

    // Stop: the LRP goes.
    await api('POST', '/dev/v1/apps/node-app/stop');
    await assert.rejects(bbs.desiredLrpByProcessGuid(processGuid));
    summary = await bulker.syncOnce();
    assert.deepEqual([summary.desired, summary.updated, summary.removed], [0, 0, 0]);
  });
});

describe('ccbridge cloud-controller', () => {
  test('flags are checked at start-up', () => {
    const bad = [['-buildpack', 'bad name'], ['-buildpack', 'go=ftp://example.com/go.zip'], ['-appDomain', 'not a domain'], ['-bridgeURL', 'nope'], ['-ccListenAddress', 'nowhere']];
    for (const argv of bad) assert.throws(() => parseFlags(cloudControllerCommand.flags, argv), FlagError, argv.join(' '));
  });

  test('starts the development CC with its buildpacks, under <dataDir>/cloud-controller, and stops', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-dev-cc-cmd-'));
    const bridge = await new FakeBridge().start();
    const { values } = parseFlags(cloudControllerCommand.flags, [
      '-ccListenAddress=127.0.0.1:0',
      `-dataDir=${dataDir}`,
      '-ccUsername=u',
      '-ccPassword=p',
      `-bridgeURL=${bridge.url}`,
      '-fileServerURL=http://127.0.0.1:18080',
      '-appDomain=apps.internal',
      '-buildpack=staticfile',
      '-buildpack=go=https://example.com/go_buildpack.zip',
    ]);
    const printed: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (printed.push(String(chunk)), true)) as typeof process.stdout.write;
    let running;
    try {
      running = await cloudControllerCommand.start(values, silentLogger(), []);
    } finally {
      process.stdout.write = write;
    }
    try {
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(printed.join(''))?.[1];
      assert.ok(url, printed.join(''));
      const described = await call(url!, 'GET', '/', { auth: null });
      assert.deepEqual(described.json.buildpacks, ['staticfile', 'go']);
      assert.equal(described.json.app_domain, 'apps.internal');
      assert.ok(existsSync(join(dataDir, 'cloud-controller', 'cloud-controller.sqlite3')));
      const auth = `Basic ${Buffer.from('u:p').toString('base64')}`;
      const created = await call(url!, 'POST', '/dev/v1/apps', { auth, body: { name: 'web' } });
      assert.deepEqual(created.json.routes, ['web.apps.internal']);
      await call(url!, 'PUT', '/dev/v1/apps/web/bits', { auth, raw: appBits() });
      await call(url!, 'POST', '/dev/v1/apps/web/start', { auth });
      const staging = bridge.calls.find((c) => c.method === 'PUT' && c.path.startsWith('/v1/staging/'));
      assert.deepEqual(staging?.json.lifecycle_data.buildpacks, [
        { name: 'staticfile', key: 'staticfile', url: 'http://127.0.0.1:18080/v1/static/buildpacks/staticfile_buildpack.tgz', skip_detect: false },
        { name: 'go', key: 'go', url: 'https://example.com/go_buildpack.zip', skip_detect: false },
      ]);
    } finally {
      await running.stop();
      await bridge.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
