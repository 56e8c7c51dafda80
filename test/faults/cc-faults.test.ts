// Cloud Controller down, slow (black-holed) or failing while the bridge talks to it: staging
// completion, bulk sync and crash reporting. A fault proxy sits between the bridge and the CC
// double; Diego is the real embedded one, driven over its cell routes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCellClient, type CellClient } from '../../embedded/diego/index.js';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import { desiredLrpFromDesireAppRequest } from '../../services/nsync/recipe/index.js';
import { openOutbox, type Outbox } from '../../services/tps/watcher/outbox.js';
import { buildBulker, buildWatcher } from '../../cmd/wiring/services.js';
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

const desireApp = (processGuid: string, etag = 'e1'): DesireAppRequestFromCC =>
  decodeLegacyJson<DesireAppRequestFromCC>(
    'cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC',
    JSON.stringify({ process_guid: processGuid, droplet_uri: 'http://127.0.0.1:1/d.tgz', stack: 'cflinuxfs4', num_instances: 1, log_guid: 'l', etag }),
  );

describe('CC faults', () => {
  let bridge: TestBridge;
  let ccProxy: FaultProxy;
  let cell: CellClient;
  let registration: { deregister(): void } | undefined;

  before(async () => {
    bridge = await startTestBridge({
      // Diego's callbacks must outlive the bridge's CC deadline, so a slow CC shows as 503.
      diego: { timing: { taskKickIntervalMs: 100, callbackTimeoutMs: 3_000 } },
      ccTimeoutMs: 500,
      ccUrlFor: async (ccUrl) => {
        ccProxy = await startFaultProxy({ port: Number(new URL(ccUrl).port) });
        return ccProxy.url;
      },
    });
    cell = createCellClient({ url: bridge.diego.url });
    // The test plays cell-1 over the cell routes; registered so that its running tasks are not
    // failed as belonging to a cell that has gone.
    registration = bridge.diego.registerCell({
      presence: CellPresence.fromPartial({
        cellId: 'cell-1',
        repAddress: 'http://cell-1.invalid',
        capacity: { memoryMb: 4096, diskMb: 16384, containers: 20 },
        rootfsProviders: [{ name: 'preloaded', properties: ['cflinuxfs4'] }],
      }),
      rep: { perform: async (work) => work, stopLrpInstance: async () => {}, cancelTask: async () => {} },
    });
  });
  after(async () => {
    registration?.deregister();
    await ccProxy.close();
    await bridge.close();
  });

  const taskGone = async (guid: string) => {
    try {
      await bridge.bbs.taskByGuid(guid);
      return false;
    } catch {
      return true;
    }
  };
  const completions = (guid: string) => bridge.cc.received(`/internal/staging/${guid}/completed`);

  async function stageAndFinish(guid: string): Promise<void> {
    assert.equal((await bridge.request('PUT', `/v1/staging/${guid}`, stagingRequest(guid))).status, 202);
    await cell.startTask(guid, 'cell-1');
    await cell.completeTask(guid, 'cell-1', true, 'insufficient resources', '');
  }

  describe('staging completion', () => {
    test('CC black-holed: the stager answers 503 (CC timed out), Diego keeps the task and the response reaches CC once it answers again', async () => {
      ccProxy.mode = 'blackhole';
      ccProxy.cut();
      try {
        await stageAndFinish('stg-blackhole');
        // Diego's callbacks keep arriving and keep timing out against CC.
        await eventually('several callbacks through the black hole', () => ccProxy.accepted >= 3);
        assert.equal(await taskGone('stg-blackhole'), false, 'the task is kept while CC does not answer');
        assert.equal(completions('stg-blackhole').length, 0);
      } finally {
        ccProxy.mode = 'pass';
        ccProxy.cut();
      }
      const got = await eventually('the staging response at CC', () => completions('stg-blackhole')[0]);
      assert.equal((got.json as { error: { id: string } }).error.id, 'InsufficientResources');
      await eventually('the task resolved once CC took it', () => taskGone('stg-blackhole'));
    });

    test('CC slow: the response is delivered (at least once: a late answer makes Diego call back again)', async () => {
      ccProxy.delayMs = 60;
      try {
        await stageAndFinish('stg-slow');
        await eventually('the task resolved', () => taskGone('stg-slow'));
      } finally {
        ccProxy.delayMs = 0;
      }
      const delivered = completions('stg-slow');
    assert.ok(delivered.length >= 1);
    assert.ok(delivered.every((r) => r.body === delivered[0]!.body), 'the same response every time');
    });

    test('CC down (connection refused): 503, then delivered when CC is back', async () => {
      await ccProxy.down();
      try {
        await stageAndFinish('stg-down');
        // The stager's answer to Diego, as Diego sees it.
        const r = await bridge.request('POST', '/v1/staging/stg-down/completed', {
          task_guid: 'stg-down',
          failed: true,
          failure_reason: 'x',
          annotation: '{"lifecycle":"buildpack"}',
          created_at: 1,
        });
        assert.equal(r.status, 503);
        assert.equal(await taskGone('stg-down'), false);
      } finally {
        await ccProxy.up();
      }
      await eventually('the staging response at CC', () => completions('stg-down').length > 0);
      await eventually('the task resolved', () => taskGone('stg-down'));
    });

    test('CC answers 503 then recovers: passed through, Diego calls back until CC takes it', async () => {
      bridge.cc.statusFor.set('staging', 503);
      try {
        await stageAndFinish('stg-503');
        await eventually('two refused callbacks', () => completions('stg-503').length >= 2);
        assert.equal(await taskGone('stg-503'), false);
      } finally {
        bridge.cc.statusFor.delete('staging');
      }
      await eventually('the task resolved once CC took it', () => taskGone('stg-503'));
    });

    test('CC answers 500: the status is passed through and Diego resolves the task (the spec: no retry on 500)', async () => {
      bridge.cc.statusFor.set('staging', 500);
      try {
        const r = await bridge.request('PUT', '/v1/staging/stg-500', stagingRequest('stg-500'));
        assert.equal(r.status, 202);
        const callback = await bridge.request('POST', '/v1/staging/stg-500/completed', {
          task_guid: 'stg-500',
          failed: true,
          failure_reason: 'x',
          annotation: '{"lifecycle":"buildpack"}',
          created_at: 1,
        });
        assert.equal(callback.status, 500);
      } finally {
        bridge.cc.statusFor.delete('staging');
      }
      await bridge.bbs.cancelTask('stg-500').catch(() => undefined);
    });
  });

  describe('bulk sync', () => {
    const bulker = () =>
      buildBulker({
        bbs: bridge.bbs,
        cc: bridge.ccClient,
        recipe: bridge.nsyncRecipe,
        logger: bridge.log,
        config: { pollingIntervalMs: 100, batchSize: 2, domainTtlSeconds: 120, concurrency: 4 },
      });
    const fresh = async () => (await bridge.bbs.domains()).includes('cf-apps');

    test('CC down, black-holed or failing: no freshness bump and nothing removed; the next pass recovers', async () => {
      // One LRP Diego has that CC does not list: a pass that trusted a broken listing would remove it.
      await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(desireApp('sync-extra'), bridge.nsyncRecipe));
      for (const app of ['sync-a', 'sync-b', 'sync-c']) bridge.cc.apps.set(app, desireApp(app));
      const b = bulker();

      await ccProxy.down();
      try {
        const down = await b.syncOnce();
        assert.equal(down.freshnessBumped, false);
        assert.ok(down.problems.length > 0);
      } finally {
        await ccProxy.up();
      }

      ccProxy.mode = 'blackhole';
      ccProxy.cut();
      try {
        const slow = await b.syncOnce();
        assert.equal(slow.freshnessBumped, false, 'a CC that does not answer is not a clean pass');
      } finally {
        ccProxy.mode = 'pass';
        ccProxy.cut();
      }

      bridge.cc.failFingerprintPage = 1;
      try {
        const partial = await b.syncOnce();
        assert.equal(partial.freshnessBumped, false, 'a failed page is not a clean pass');
        assert.equal(partial.removed, 0, 'nothing removed on a partial listing');
      } finally {
        bridge.cc.failFingerprintPage = undefined;
      }
      await bridge.bbs.desiredLrpByProcessGuid('sync-extra');
      bridge.cc.statusFor.set('bulk-apps', 500);
      try {
        const failed = await b.syncOnce();
        assert.equal(failed.freshnessBumped, false, 'apps CC failed to return are not a clean pass');
      } finally {
        bridge.cc.statusFor.delete('bulk-apps');
      }
      assert.equal(await fresh(), false, 'no pass so far was clean');

      // The loop's next pass, with CC healthy, is clean.
      b.start();
      try {
        await eventually('a clean pass bumps freshness', fresh);
      } finally {
        await b.stop();
      }
      for (const app of ['sync-a', 'sync-b', 'sync-c']) await bridge.bbs.desiredLrpByProcessGuid(app);
      await assert.rejects(bridge.bbs.desiredLrpByProcessGuid('sync-extra'), 'removed once the listing was whole');
    });
  });

  describe('crash reporting', () => {
    let outboxDir: string;
    let outbox: Outbox;
    before(() => {
      outboxDir = mkdtempSync(join(tmpdir(), 'ccbridge-fault-outbox-'));
      outbox = openOutbox(outboxDir);
    });
    after(() => {
      outbox.close();
      rmSync(outboxDir, { recursive: true, force: true });
    });

    test('CC black-holed, then down, then failing: the report stays in the outbox and is delivered once CC is back', async () => {
      const watcher = buildWatcher({
        bbs: bridge.bbs,
        cc: bridge.ccClient,
        outbox,
        logger: bridge.log,
        resubscribePauseMs: 50,
        config: { mode: 'legacy', retryBaseMs: 20, retryMaxMs: 100 },
      });
      await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(desireApp('crash-app'), bridge.nsyncRecipe));
      const attempts = () => bridge.cc.received('/internal/apps/crash-app/crashed');
      /** Reports CC accepted (it remembers the event ids it answered 2xx for). */
      const accepted = () => new Set(attempts().map((r) => String(r.headers['x-ccbridge-event-id'])).filter((id) => bridge.cc.seenEventIds.has(id)));
      try {
        ccProxy.mode = 'blackhole';
        ccProxy.cut();
        const instanceKey = { instanceGuid: 'crash-instance', cellId: 'cell-1' };
        const key = { processGuid: 'crash-app', index: 0, domain: 'cf-apps' };
        await cell.claim('crash-app', 0, instanceKey);
        await cell.start(key, instanceKey, { address: '127.0.0.1', ports: [], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' });
        await cell.crash(key, instanceKey, 'Exited with status 1');
        // The watcher finds the crash in its first listing.
        watcher.start();
        await eventually('the report queued', () => outbox.depth() === 1);
        await eventually('a delivery attempt into the black hole', () => ccProxy.accepted > 0);

        await ccProxy.down();
        bridge.cc.statusFor.set('crashed', 502);
        await new Promise((resolve) => setTimeout(resolve, 100));
        await ccProxy.up();
        ccProxy.mode = 'pass';
        await eventually('a 502 answered', () => attempts().length > 0);
        assert.equal(accepted().size, 0);
        assert.equal(outbox.depth(), 1, 'kept through every kind of CC failure');

        bridge.cc.statusFor.delete('crashed');
        await eventually('the crash delivered', () => accepted().size > 0);
        await eventually('the outbox empty', () => outbox.depth() === 0);
        assert.equal(accepted().size, 1, 'one report, delivered');
        const body = attempts().at(-1)!.json as { index: number; exit_description: string; crash_count: number };
        assert.equal(body.index, 0);
        assert.equal(body.exit_description, 'Exited with status 1');
        assert.equal(body.crash_count, 1);
      } finally {
        ccProxy.mode = 'pass';
        bridge.cc.statusFor.delete('crashed');
        await watcher.stop();
      }
    });

    test('stopped for a shutdown, the watcher gives a report in backoff one last try; stopped on a lost lock, it does not', async () => {
      await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(desireApp('drain-app'), bridge.nsyncRecipe));
      const instanceKey = { instanceGuid: 'drain-instance', cellId: 'cell-1' };
      const key = { processGuid: 'drain-app', index: 0, domain: 'cf-apps' };
      await cell.claim('drain-app', 0, instanceKey);
      await cell.start(key, instanceKey, { address: '127.0.0.1', ports: [], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' });
      await cell.crash(key, instanceKey, 'Exited with status 2');
      const attempts = () => bridge.cc.received('/internal/apps/drain-app/crashed');
      // A failed report waits an hour before its next try.
      const watcher = () =>
        buildWatcher({ bbs: bridge.bbs, cc: bridge.ccClient, outbox, logger: bridge.log, resubscribePauseMs: 50, config: { mode: 'legacy', retryBaseMs: 3_600_000, retryMaxMs: 3_600_000 } });

      bridge.cc.statusFor.set('crashed', 503);
      try {
        const lost = watcher();
        lost.start();
        await eventually('a refused delivery', () => attempts().length === 1);
        bridge.cc.statusFor.delete('crashed');
        // The lock lost: it stops at once, the report stays for whoever holds the lock next.
        await lost.stop();
        assert.equal(attempts().length, 1);
        assert.equal(outbox.depth(), 1);

        // The next holder finds the report waiting out its backoff, and is stopped for a shutdown.
        const shuttingDown = watcher();
        shuttingDown.start();
        await shuttingDown.stop(10_000);
        assert.equal(attempts().length, 2, 'one last try on the way out');
        assert.equal(outbox.depth(), 0, 'delivered');
      } finally {
        bridge.cc.statusFor.delete('crashed');
      }
    });
  });
});
