// Diego's BBS down, black-holed or slow while CC calls the bridge: every route answers the
// status the 2015 spec gives it for a BBS failure, and the bridge recovers by itself once the
// BBS is back (no restart). A fault proxy sits between the bridge and the embedded Diego; the
// last test stops the real embedded Diego and starts it again on the same port.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEmbeddedDiego } from '../../embedded/diego/index.js';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import { buildBulker } from '../../cmd/wiring/services.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { eventually, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';

const stagingRequest = (appId: string) => ({
  app_id: appId,
  file_descriptors: 512,
  memory_mb: 256,
  disk_mb: 1024,
  environment: [],
  timeout: 900,
  log_guid: appId,
  lifecycle: 'buildpack',
  lifecycle_data: {
    app_bits_download_uri: `http://127.0.0.1:9022/staging/packages/${appId}`,
    buildpacks: [],
    droplet_upload_uri: `http://127.0.0.1:9022/staging/droplets/${appId}/upload`,
    stack: 'cflinuxfs4',
  },
});

const desireRequest = (processGuid: string, instances = 1) => ({
  process_guid: processGuid,
  droplet_uri: 'http://127.0.0.1:1/droplet.tgz',
  stack: 'cflinuxfs4',
  start_command: 'node server.js',
  num_instances: instances,
  memory_mb: 128,
  disk_mb: 256,
  log_guid: processGuid,
  etag: 'etag-1',
  routes: [`${processGuid}.example.com`],
});

/** The body the 2015 stager answers a failed staging request with (message sanitized). */
const STAGING_FAILED = '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}';

describe('BBS faults', () => {
  let bridge: TestBridge;
  let bbsProxy: FaultProxy;

  before(async () => {
    bridge = await startTestBridge({
      bbsTimeoutMs: 500,
      bbsUrlFor: async (diegoUrl) => {
        bbsProxy = await startFaultProxy({ port: Number(new URL(diegoUrl).port) });
        return bbsProxy.url;
      },
    });
    // CC's desired apps, for the bulker's passes (anything else in cf-apps is removed by a clean one).
    for (const guid of ['synced-app', 'app-before']) {
      bridge.cc.apps.set(guid, decodeLegacyJson<DesireAppRequestFromCC>('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', JSON.stringify(desireRequest(guid))));
    }
  });
  after(async () => {
    await bbsProxy.close();
    await bridge.close();
  });

  const bulker = () =>
    buildBulker({
      bbs: bridge.bbs,
      cc: bridge.ccClient,
      recipe: bridge.nsyncRecipe,
      logger: bridge.log,
      config: { pollingIntervalMs: 100, batchSize: 10, domainTtlSeconds: 120, concurrency: 4 },
    });

  /** Every CC-facing route with the BBS failing, and what the spec says it answers then. */
  async function assertSpecStatusesWhileBbsFails(tag: string): Promise<void> {
    const stage = await bridge.request('PUT', `/v1/staging/stg-${tag}`, stagingRequest(`stg-${tag}`));
    assert.equal(stage.status, 500, 'stage: a BBS error is a 500 with the staging error body');
    assert.equal(stage.text, STAGING_FAILED);
    assert.equal((await bridge.request('DELETE', `/v1/staging/stg-${tag}`)).status, 500, 'stop staging: 500');

    const desire = await bridge.request('PUT', `/v1/apps/app-${tag}`, desireRequest(`app-${tag}`));
    assert.equal(desire.status, 503, 'desire: 503');
    assert.equal(desire.text, '');
    assert.equal((await bridge.request('DELETE', `/v1/apps/app-${tag}`)).status, 503, 'stop app: 503');
    assert.equal((await bridge.request('DELETE', `/v1/apps/app-${tag}/index/0`)).status, 503, 'kill index: 503');

    assert.equal((await bridge.request('GET', `/v1/actual_lrps/app-${tag}`)).status, 500, 'status: 500');
    assert.equal((await bridge.request('GET', `/v1/actual_lrps/app-${tag}/stats`, undefined, { Authorization: 'bearer x' })).status, 500, 'stats: 500');
    const bulk = await bridge.request('GET', `/v1/bulk_actual_lrp_status?guids=app-${tag}`);
    assert.equal(bulk.status, 200, 'bulk status: 200, the guids it could not read left out');
    assert.deepEqual(JSON.parse(bulk.text), {});

    const sync = await bulker().syncOnce();
    assert.equal(sync.freshnessBumped, false, 'sync: no freshness bump');
  }

  /** The same routes once the BBS answers again: the bridge works without a restart. */
  async function assertRecovered(tag: string): Promise<void> {
    // The first calls may meet a connection the BBS dropped; the routes settle within a few tries.
    await eventually('desire accepted', async () => (await bridge.request('PUT', `/v1/apps/app-${tag}`, desireRequest(`app-${tag}`))).status === 202);
    assert.equal((await bridge.request('PUT', `/v1/staging/stg-${tag}`, stagingRequest(`stg-${tag}`))).status, 202);
    assert.equal((await bridge.request('DELETE', `/v1/staging/stg-${tag}`)).status, 202);
    const status = await bridge.request('GET', `/v1/actual_lrps/app-${tag}`);
    assert.equal(status.status, 200);
    assert.equal((JSON.parse(status.text) as unknown[]).length, 1);
    const bulk = await bridge.request('GET', `/v1/bulk_actual_lrp_status?guids=app-${tag}`);
    assert.deepEqual(Object.keys(JSON.parse(bulk.text) as object), [`app-${tag}`]);
    assert.equal((await bridge.request('DELETE', `/v1/apps/app-${tag}`)).status, 202);
    const sync = await bulker().syncOnce();
    assert.equal(sync.freshnessBumped, true, `a clean pass once the BBS is back: ${sync.problems.join('; ')}`);
  }

  test('BBS down (connection refused): the spec\'s statuses, then recovery when it is back', async () => {
    await bbsProxy.down();
    try {
      await assertSpecStatusesWhileBbsFails('down');
    } finally {
      await bbsProxy.up();
    }
    await assertRecovered('down');
  });

  test('BBS black-holed (accepts, never answers): the calls time out into the same statuses, then recovery', async () => {
    bbsProxy.mode = 'blackhole';
    bbsProxy.cut();
    try {
      await assertSpecStatusesWhileBbsFails('blackhole');
    } finally {
      bbsProxy.mode = 'pass';
    }
    await assertRecovered('blackhole');
  });

  test('BBS slow but within the deadline: every route works', async () => {
    bbsProxy.delayMs = 30;
    bbsProxy.cut();
    try {
      await assertRecovered('slow');
    } finally {
      bbsProxy.delayMs = 0;
    }
  });

  test('connections cut mid-call: the call fails cleanly, the next ones work', async () => {
    bbsProxy.delayMs = 200;
    try {
      const pending = bridge.request('PUT', '/v1/apps/app-cut', desireRequest('app-cut'));
      await eventually('a call in flight', () => bbsProxy.accepted > 0);
      bbsProxy.cut();
      const answered = await pending;
      assert.ok([202, 503].includes(answered.status), `desire answered ${answered.status}`);
    } finally {
      bbsProxy.delayMs = 0;
    }
    await assertRecovered('cut');
  });

  test('the embedded Diego stopped and started again on the same port and data: 503s meanwhile, then the bridge carries on', async () => {
    assert.equal((await bridge.request('PUT', '/v1/apps/app-before', desireRequest('app-before'))).status, 202);
    const port = bridge.diego.port;
    await bridge.diego.close(50);
    try {
      await assertSpecStatusesWhileBbsFails('stopped');
    } finally {
      bridge.diego = await startEmbeddedDiego({ dataDir: join(bridge.dataDir, 'diego'), port, logger: bridge.log });
    }
    await assertRecovered('restarted');
    const before = await bridge.request('GET', '/v1/actual_lrps/app-before');
    assert.equal((JSON.parse(before.text) as unknown[]).length, 1, 'what was desired before the stop is still there');
  });
});
