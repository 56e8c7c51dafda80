// The nsync bulker against the embedded Diego and the CC test double paging fingerprints.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { buildBulker } from '../../cmd/wiring/services.js';
import type { Bulker } from '../../services/nsync/bulker.js';
import { desiredLrpFromDesireAppRequest } from '../../services/nsync/recipe/index.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';

function ccApp(processGuid: string, etag: string, overrides: Record<string, unknown> = {}): DesireAppRequestFromCC {
  return decodeLegacyJson<DesireAppRequestFromCC>(
    'cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC',
    JSON.stringify({
      process_guid: processGuid,
      droplet_uri: `http://127.0.0.1:9022/droplets/${processGuid}.tgz`,
      stack: 'cflinuxfs4',
      start_command: 'node server.js',
      num_instances: 1,
      memory_mb: 128,
      disk_mb: 256,
      log_guid: processGuid,
      routes: [`${processGuid}.example.com`],
      etag,
      ...overrides,
    }),
  );
}

describe('nsync bulker', () => {
  let bridge: TestBridge;
  let bulker: Bulker;

  before(async () => {
    bridge = await startTestBridge();
    bulker = buildBulker({ bbs: bridge.bbs, cc: bridge.ccClient, recipe: bridge.nsyncRecipe, logger: bridge.log, config: { batchSize: 3, pollingIntervalMs: 50 } });
  });
  after(async () => {
    await bulker.stop();
    await bridge.close();
  });
  beforeEach(async () => {
    bridge.cc.apps.clear();
    bridge.cc.failFingerprintPage = undefined;
    bridge.cc.statusFor.clear();
    for (const lrp of await bridge.bbs.desiredLrps({ domain: 'cf-apps' })) await bridge.bbs.removeDesiredLrp(lrp.processGuid);
  });

  async function desiredInDiego(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const lrp of await bridge.bbs.desiredLrps({ domain: 'cf-apps' })) out[lrp.processGuid] = lrp.annotation;
    return out;
  }

  test('missing apps are desired, stale ones updated, extra ones removed; then the domain is fresh', async () => {
    // Diego: a (current), b (stale), z (extra, not in CC); CC: a, b, c..g (missing).
    for (const app of [ccApp('a', 'e1'), ccApp('b', 'e1'), ccApp('z', 'e1')]) {
      await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(app, bridge.nsyncRecipe));
    }
    bridge.cc.apps.set('a', ccApp('a', 'e1'));
    bridge.cc.apps.set('b', ccApp('b', 'e2', { num_instances: 2 }));
    for (const guid of ['c', 'd', 'e', 'f', 'g']) bridge.cc.apps.set(guid, ccApp(guid, 'e1'));

    const summary = await bulker.syncOnce();
    assert.deepEqual({ desired: summary.desired, updated: summary.updated, removed: summary.removed, failed: summary.failed }, { desired: 5, updated: 1, removed: 1, failed: 0 });
    assert.equal(summary.freshnessBumped, true);
    assert.deepEqual(await desiredInDiego(), { a: 'e1', b: 'e2', c: 'e1', d: 'e1', e: 'e1', f: 'e1', g: 'e1' });
    assert.equal((await bridge.bbs.desiredLrpByProcessGuid('b')).instances, 2);
    assert.ok((await bridge.bbs.domains()).includes('cf-apps'));

    // Fingerprints were paged (batch 3 → 3 pages for 7 apps) with the raw token echoed back.
    const pages = bridge.cc.received('/internal/bulk/apps').filter((r) => r.method === 'GET');
    assert.ok(pages.length >= 3);
    assert.equal(pages[0]!.query.get('token'), '{}');
    assert.equal(pages[0]!.query.get('batch_size'), '3');
    assert.equal(pages[0]!.query.get('format'), 'fingerprint');

    const again = await bulker.syncOnce();
    assert.deepEqual({ desired: again.desired, updated: again.updated, removed: again.removed }, { desired: 0, updated: 0, removed: 0 }, 'a second pass has nothing to do');
  });

  test('a CC page failing mid-sync: nothing removed, no freshness bump', async () => {
    await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(ccApp('extra', 'e1'), bridge.nsyncRecipe));
    for (const guid of ['a', 'b', 'c', 'd', 'e']) bridge.cc.apps.set(guid, ccApp(guid, 'e1'));
    bridge.cc.failFingerprintPage = 1;
    const summary = await bulker.syncOnce();
    assert.equal(summary.freshnessBumped, false);
    assert.equal(summary.removed, 0);
    assert.ok('extra' in (await desiredInDiego()), 'the extra LRP survives an incomplete pass');
  });

  test('a failing bulk-apps fetch blocks freshness; an invalid app is counted and skipped without blocking it', async () => {
    bridge.cc.apps.set('good', ccApp('good', 'e1'));
    bridge.cc.apps.set('bad', ccApp('bad', 'e1', { droplet_uri: '' }));
    const summary = await bulker.syncOnce();
    assert.equal(summary.invalid, 1);
    assert.equal(summary.desired, 1);
    assert.equal(summary.freshnessBumped, true);

    bridge.cc.apps.set('more', ccApp('more', 'e1'));
    bridge.cc.statusFor.set('bulk-apps', 500);
    const failing = await bulker.syncOnce();
    assert.equal(failing.freshnessBumped, false);
    assert.ok(failing.failed > 0);
  });

  test('Diego unreachable: the pass is abandoned before touching CC', async () => {
    const before = bridge.cc.requests.length;
    const port = bridge.diego.port;
    await bridge.diego.close(50);
    try {
      const summary = await bulker.syncOnce();
      assert.equal(summary.freshnessBumped, false);
      assert.equal(bridge.cc.requests.length, before, 'no CC call without the Diego listing');
    } finally {
      const { startEmbeddedDiego } = await import('../../embedded/diego/index.js');
      bridge.diego = await startEmbeddedDiego({ dataDir: `${bridge.dataDir}/diego`, port, logger: bridge.log });
    }
  });

  test('the loop syncs at once and then every polling interval until stopped', async () => {
    bridge.cc.apps.set('loop', ccApp('loop', 'e1'));
    bulker.start();
    try {
      const deadline = Date.now() + 5_000;
      while (!('loop' in (await desiredInDiego())) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok('loop' in (await desiredInDiego()));
      bridge.cc.apps.set('loop', ccApp('loop', 'e2'));
      while ((await desiredInDiego()).loop !== 'e2' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await desiredInDiego()).loop, 'e2');
    } finally {
      await bulker.stop();
    }
  });
});
