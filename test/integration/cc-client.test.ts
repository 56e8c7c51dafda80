// The CC client against the CC test double over real HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CcStatusError, CcUnreachableError, createCcClient, type CcClient } from '../../clients/cc/client.js';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { CcDouble, startCcDouble } from '../support/cc-double.js';

function app(guid: string, etag = 'e1'): DesireAppRequestFromCC {
  return decodeLegacyJson<DesireAppRequestFromCC>('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', JSON.stringify({ process_guid: guid, etag, num_instances: 1 }));
}

describe('CC client', () => {
  let cc: CcDouble;
  let client: CcClient;

  before(async () => {
    cc = await startCcDouble({ username: 'internal', password: 's3cret' });
    client = createCcClient({ baseUrl: cc.url, username: 'internal', password: 's3cret', timeoutMs: 500 });
  });
  after(async () => {
    client.close();
    await cc.stop();
  });

  test('staging completed: the legacy body with basic auth and JSON content type', async () => {
    await client.stagingCompleted('s-1', { executionMetadata: '', detectedStartCommand: { web: 'npm start' }, error: undefined, lifecycleData: '{"buildpack_key":"k","detected_buildpack":"node"}' }, { requestId: 'r-1' });
    const got = cc.received('/internal/staging/s-1/completed')[0]!;
    assert.equal(got.body, '{"execution_metadata":"","detected_start_command":{"web":"npm start"},"lifecycle_data":{"buildpack_key":"k","detected_buildpack":"node"}}');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['x-vcap-request-id'], 'r-1');
  });

  test("a non-200 from CC surfaces with CC's status", async () => {
    cc.statusFor.set('staging', 504);
    await assert.rejects(client.stagingCompleted('s-2', { executionMetadata: '', detectedStartCommand: {}, error: undefined, lifecycleData: '' }), (e) => e instanceof CcStatusError && e.status === 504);
    cc.statusFor.delete('staging');
  });

  test('wrong credentials are 401', async () => {
    const stranger = createCcClient({ baseUrl: cc.url, username: 'internal', password: 'wrong' });
    await assert.rejects(stranger.reportInstance('p', { kind: 'crashed-legacy', body: { instance: 'i', index: 0, reason: 'CRASHED', exitStatus: 0, exitDescription: '', crashCount: 1, crashTimestamp: '1' } }), (e) => e instanceof CcStatusError && e.status === 401);
    stranger.close();
  });

  test('crash reports go to the legacy and v4 routes with an event id', async () => {
    await client.reportInstance('p-1', { kind: 'crashed-legacy', body: { instance: 'i', index: 1, reason: 'CRASHED', exitStatus: 0, exitDescription: 'out of memory', crashCount: 1, crashTimestamp: '1700000000123456789' } }, { eventId: 'ev-1' });
    const legacy = cc.received('/internal/apps/p-1/crashed')[0]!;
    assert.equal(legacy.body, '{"instance":"i","index":1,"reason":"CRASHED","exit_description":"out of memory","crash_count":1,"crash_timestamp":1700000000123456789}');
    assert.equal(legacy.headers['x-ccbridge-event-id'], 'ev-1');
    await client.reportInstance('p-1', { kind: 'readiness_changed', body: { instance: 'i', index: 1, cellId: 'cell-1', ready: true } });
    assert.equal(cc.received('/internal/v4/apps/p-1/readiness_changed')[0]!.body, '{"instance":"i","index":1,"cell_id":"cell-1","ready":true}');
  });

  test('fingerprint pages and bulk apps', async () => {
    for (const guid of ['a', 'b', 'c']) cc.apps.set(guid, app(guid, `etag-${guid}`));
    const first = await client.fingerprints(2, '{}');
    assert.deepEqual(first.fingerprints, [{ processGuid: 'a', etag: 'etag-a' }, { processGuid: 'b', etag: 'etag-b' }]);
    assert.equal(first.token, '{"id":2}');
    const second = await client.fingerprints(2, first.token);
    assert.deepEqual(second.fingerprints.map((f) => f.processGuid), ['c']);
    const apps = await client.desiredApps(['c', 'a']);
    assert.deepEqual(apps.map((a) => [a.processGuid, a.etag]), [['c', 'etag-c'], ['a', 'etag-a']]);
    assert.deepEqual(await client.desiredApps([]), []);
  });

  test('CC down or too slow is CcUnreachableError', async () => {
    cc.delayMs = 2_000;
    await assert.rejects(client.fingerprints(2, '{}'), CcUnreachableError);
    cc.delayMs = 0;
    const down = createCcClient({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 500 });
    await assert.rejects(down.fingerprints(2, '{}'), CcUnreachableError);
    down.close();
  });
});
