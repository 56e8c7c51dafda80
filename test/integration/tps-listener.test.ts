// The TPS listener through CC's routes on the gateway, against the embedded Diego with instance
// states set as a cell sets them, and container metrics from a log-cache read API.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createChannel, createClient, type Channel } from 'nice-grpc';
import { ActualLRP_Presence, type ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { InstanceChange, TpsServiceDefinition, type WatchInstancesResponse } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { startGrpcServer, type RunningGrpcServer } from '../../lib/grpc.js';
import { desiredLrpFromDesireAppRequest } from '../../services/nsync/recipe/index.js';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { buildTps } from '../../cmd/wiring/services.js';
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';

const ORDINARY = ActualLRP_Presence.PRESENCE_ORDINARY;

/** A log-cache read API serving container metrics for whatever the test puts in `envelopes`. */
function startFakeLogCache(): Promise<{ server: Server; url: string; envelopes: unknown[]; authorizations: (string | undefined)[] }> {
  const state = { envelopes: [] as unknown[], authorizations: [] as (string | undefined)[] };
  const server = createServer((req, res) => {
    state.authorizations.push(req.headers.authorization);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ envelopes: { batch: state.envelopes } }));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ...state })),
  );
}

describe('tps listener', () => {
  let bridge: TestBridge;
  let logCache: Awaited<ReturnType<typeof startFakeLogCache>>;

  before(async () => {
    logCache = await startFakeLogCache();
    bridge = await startTestBridge({ logCacheUrl: logCache.url, tps: { maxBulkGuids: 2_000 } });
  });
  after(async () => {
    await bridge.close();
    logCache.server.close();
  });

  async function desire(processGuid: string, instances: number): Promise<void> {
    const app = decodeLegacyJson<DesireAppRequestFromCC>(
      'cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC',
      JSON.stringify({ process_guid: processGuid, droplet_uri: 'http://127.0.0.1:1/d.tgz', stack: 'cflinuxfs4', num_instances: instances, log_guid: `log-${processGuid}`, etag: 'e' }),
    );
    await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(app, bridge.nsyncRecipe));
  }

  /** Sets an instance's state as a cell would have it. */
  function setInstance(processGuid: string, index: number, change: Partial<ActualLRP>): void {
    bridge.diego.bbs.changeActualLrp(processGuid, index, ORDINARY, (lrp) => ({ ...lrp, ...change }));
  }

  const running = (hostPort: number): Partial<ActualLRP> => ({
    state: 'RUNNING',
    actualLrpInstanceKey: { instanceGuid: `guid-${hostPort}`, cellId: 'cell-1' },
    actualLrpNetInfo: { address: '127.0.0.1', ports: [{ containerPort: 8080, hostPort, containerTlsProxyPort: 0, hostTlsProxyPort: 0 }], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' },
    since: (BigInt(Date.now() - 30_000) * 1_000_000n).toString(),
  });

  test('status: one entry per instance with the mapped state, details and times', async () => {
    await desire('status-app', 3);
    setInstance('status-app', 0, running(61000));
    setInstance('status-app', 1, { state: 'UNCLAIMED', placementError: 'insufficient resources' });
    setInstance('status-app', 2, { state: 'CRASHED', crashReason: 'Exited with status 1', crashCount: 2 });
    const r = await bridge.request('GET', '/v1/actual_lrps/status-app');
    assert.equal(r.status, 200);
    assert.ok(r.text.endsWith('\n'));
    const instances = JSON.parse(r.text) as { index: number; state: string; details?: string; uptime: number; since: number; instance_guid: string }[];
    assert.deepEqual(
      instances.map((i) => [i.index, i.state, i.details]),
      [
        [0, 'RUNNING', undefined],
        [1, 'DOWN', 'insufficient resources'],
        [2, 'CRASHED', 'Exited with status 1'],
      ],
    );
    assert.equal(instances[0]!.instance_guid, 'guid-61000');
    assert.ok(instances[0]!.uptime >= 29 && instances[0]!.uptime <= 60, `uptime ${instances[0]!.uptime}`);
    assert.equal(Object.keys(instances[0]!).join(','), 'process_guid,instance_guid,index,state,uptime,since');
  });

  test('status of an unknown guid is an empty list', async () => {
    const r = await bridge.request('GET', '/v1/actual_lrps/nobody-here');
    assert.equal(r.status, 200);
    assert.equal(r.text, '[]\n');
  });

  // Found by test/fuzz (seed 7: GetLrpStatus with an empty message): an empty guid reached the
  // BBS as no filter at all and answered every instance in Diego, slowly.
  test('status of an empty guid is 400, not every instance in Diego', async () => {
    await desire('someone-else', 1);
    const r = await bridge.request('GET', '/v1/actual_lrps/');
    assert.equal(r.status, 400);
    assert.equal(r.text, '');
  });

  test('stats: host, port and stats by index; Authorization passed to log-cache; 401 without it; 404 unknown', async () => {
    await desire('stats-app', 2);
    setInstance('stats-app', 0, running(61010));
    setInstance('stats-app', 1, running(61011));
    const now = (BigInt(Date.now()) * 1_000_000n).toString();
    logCache.envelopes.length = 0;
    logCache.envelopes.push({
      timestamp: now,
      source_id: 'log-stats-app',
      instance_id: '1',
      tags: { process_id: 'stats-app' },
      gauge: { metrics: { cpu: { unit: 'percentage', value: 4 }, memory: { unit: 'bytes', value: 1024 }, disk: { unit: 'bytes', value: 2048 } } },
    });
    const r = await bridge.request('GET', '/v1/actual_lrps/stats-app/stats', undefined, { Authorization: 'bearer caller-token' });
    assert.equal(r.status, 200);
    const instances = JSON.parse(r.text) as { index: number; host: string; port: number; stats?: { cpu: number; mem: number; disk: number; time: string } }[];
    assert.equal(instances[0]!.host, '127.0.0.1');
    assert.equal(instances[0]!.port, 61010);
    assert.equal(instances[0]!.stats, undefined);
    assert.deepEqual({ ...instances[1]!.stats, time: undefined }, { cpu: 0.04, mem: 1024, disk: 2048, time: undefined });
    assert.equal(logCache.authorizations.at(-1), 'bearer caller-token');

    assert.equal((await bridge.request('GET', '/v1/actual_lrps/stats-app/stats')).status, 401);
    assert.equal((await bridge.request('GET', '/v1/actual_lrps/nobody/stats', undefined, { Authorization: 'x' })).status, 404);
  });

  test('bulk status: a map of lists in one Diego call, 1,000 guids of real length in one URL', async () => {
    await desire('bulk-a', 2);
    setInstance('bulk-a', 0, running(61020));
    const guids = ['bulk-a', ...Array.from({ length: 999 }, (_, i) => `${crypto.randomUUID()}-${crypto.randomUUID().slice(0, 8)}-${i}`)];
    const r = await bridge.request('GET', `/v1/bulk_actual_lrp_status?guids=${guids.join(',')}`);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text) as Record<string, { state: string }[]>;
    assert.equal(Object.keys(body).length, 1000);
    assert.deepEqual(body['bulk-a']!.map((i) => i.state), ['RUNNING', 'STARTING']);
    assert.deepEqual(body[guids[5]!], []);
  });

  const badBulk = [
    { name: 'no guids', query: '' },
    { name: 'empty guids', query: '?guids=' },
    { name: 'an empty element', query: '?guids=a,,b' },
    { name: 'a trailing comma', query: '?guids=a,' },
    { name: 'a bad character', query: '?guids=a%20b' },
  ];
  for (const { name, query } of badBulk) {
    test(`bulk status with ${name} → 400`, async () => {
      assert.equal((await bridge.request('GET', `/v1/bulk_actual_lrp_status${query}`)).status, 400);
    });
  }

  test('bulk status beyond the configured maximum of guids → 400', async () => {
    const guids = Array.from({ length: 2_001 }, (_, i) => `g${i}`);
    assert.equal((await bridge.request('GET', `/v1/bulk_actual_lrp_status?guids=${guids.join(',')}`)).status, 400);
  });

  test('Diego down: status is 500 and bulk 200 with the guids left out, as in 2015', async () => {
    const port = bridge.diego.port;
    await bridge.diego.close(50);
    try {
      assert.equal((await bridge.request('GET', '/v1/actual_lrps/status-app')).status, 500);
      const bulk = await bridge.request('GET', '/v1/bulk_actual_lrp_status?guids=a,b');
      assert.equal(bulk.status, 200);
      assert.equal(bulk.text, '{}\n');
    } finally {
      const { startEmbeddedDiego } = await import('../../embedded/diego/index.js');
      bridge.diego = await startEmbeddedDiego({ dataDir: `${bridge.dataDir}/diego`, port, logger: bridge.log });
    }
    assert.equal((await bridge.request('GET', '/v1/actual_lrps/status-app')).status, 200);
  });
});

describe('tps in-flight bound', () => {
  test('beyond maxInFlightRequests the routes answer 503 at once', async () => {
    const logCache = await startFakeLogCache();
    const bridge = await startTestBridge({ logCacheUrl: logCache.url, tps: { maxInFlightRequests: 1 } });
    try {
      // Hold the one slot with a stats call whose metrics source never answers quickly.
      const slow = createServer(() => {});
      await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
      const slowTps = buildTps({
        bbs: bridge.bbs,
        logCache: createLogCacheClient({ url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`, timeoutMs: 1_000 }),
        logger: bridge.log,
        config: { maxInFlightRequests: 1 },
      });
      await bridge.bbs.desireLrp(
        desiredLrpFromDesireAppRequest(
          decodeLegacyJson<DesireAppRequestFromCC>('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', '{"process_guid":"busy","droplet_uri":"http://x/d","stack":"cflinuxfs4","num_instances":1,"log_guid":"l"}'),
          bridge.nsyncRecipe,
        ),
      );
      const context = { metadata: { get: (k: string) => (k === 'authorization' ? 'x' : undefined) }, signal: new AbortController().signal } as never;
      const held = slowTps.getLrpStats({ processGuid: 'busy' }, context);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await assert.rejects(slowTps.getLrpStatus({ processGuid: 'busy' }, context), (e: { reason?: string }) => e.reason === 'TOO_MANY_REQUESTS');
      await held;
      slow.closeAllConnections();
      slow.close();
    } finally {
      await bridge.close();
      logCache.server.close();
    }
  });
});

describe('WatchInstances', () => {
  let bridge: TestBridge;
  let grpc: RunningGrpcServer;
  let channel: Channel;

  before(async () => {
    bridge = await startTestBridge();
    const tps = buildTps({ bbs: bridge.bbs, logCache: createLogCacheClient({ url: bridge.diego.url }), logger: bridge.log, resubscribePauseMs: 20 });
    grpc = await startGrpcServer({ logger: bridge.log, services: [{ definition: TpsServiceDefinition, implementation: tps }] });
    channel = createChannel(grpc.address);
  });
  after(async () => {
    channel.close();
    await grpc.close(100);
    await bridge.close();
  });

  test('a snapshot, then changes, and nothing missed across a BBS restart', async () => {
    await bridge.bbs.desireLrp(
      desiredLrpFromDesireAppRequest(
        decodeLegacyJson<DesireAppRequestFromCC>('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', '{"process_guid":"watched","droplet_uri":"http://x/d","stack":"cflinuxfs4","num_instances":2,"log_guid":"l"}'),
        bridge.nsyncRecipe,
      ),
    );
    const client = createClient(TpsServiceDefinition, channel);
    const abort = new AbortController();
    const stream = client.watchInstances({ processGuids: ['watched'] }, { signal: abort.signal })[Symbol.asyncIterator]();
    const next = async (): Promise<WatchInstancesResponse> => (await stream.next()).value as WatchInstancesResponse;

    const snapshot = [await next(), await next()];
    assert.deepEqual(snapshot.map((m) => [m.change, m.instance!.index, m.instance!.state]).sort(), [
      [InstanceChange.INSTANCE_CHANGE_SNAPSHOT, 0, 1],
      [InstanceChange.INSTANCE_CHANGE_SNAPSHOT, 1, 1],
    ]);
    assert.equal((await next()).change, InstanceChange.INSTANCE_CHANGE_SNAPSHOT_END);

    bridge.diego.bbs.changeActualLrp('watched', 0, ORDINARY, (lrp) => ({ ...lrp, state: 'RUNNING', since: (BigInt(Date.now()) * 1_000_000n).toString() }));
    const change = await next();
    assert.equal(change.change, InstanceChange.INSTANCE_CHANGE_CHANGED);
    assert.equal(change.instance!.index, 0);
    assert.equal(change.instance!.state, 2);

    // While the BBS is down, instance 1 starts running; the watch learns it by re-listing.
    const port = bridge.diego.port;
    await bridge.diego.close(50);
    const { startEmbeddedDiego } = await import('../../embedded/diego/index.js');
    bridge.diego = await startEmbeddedDiego({ dataDir: `${bridge.dataDir}/diego`, port, logger: bridge.log });
    bridge.diego.bbs.changeActualLrp('watched', 1, ORDINARY, (lrp) => ({ ...lrp, state: 'RUNNING', since: (BigInt(Date.now()) * 1_000_000n).toString() }));
    let missed: WatchInstancesResponse;
    do missed = await next();
    while (missed.instance?.index !== 1);
    assert.equal(missed.change, InstanceChange.INSTANCE_CHANGE_CHANGED);
    assert.equal(missed.instance!.state, 2);
    abort.abort();
  });
});
