// The TPS watcher: crashes driven through the BBS cell routes, exactly as a cell reports them,
// reach CC — at least once, in order, through CC outages, watcher restarts and event-stream gaps.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createCcClient } from '../../clients/cc/client.js';
import { createCellClient, type CellClient } from '../../embedded/diego/index.js';
import { startEmbeddedLocket, type EmbeddedLocket } from '../../embedded/locket/index.js';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import { desiredLrpFromDesireAppRequest } from '../../services/nsync/recipe/index.js';
import { openOutbox, type Outbox } from '../../services/tps/watcher/outbox.js';
import type { Watcher } from '../../services/tps/watcher/watcher.js';
import { buildWatcher } from '../../cmd/wiring/services.js';
import { runWhileLocked } from '../../cmd/commands/locked.js';
import { startCcDouble, type CcDouble, type RecordedRequest } from '../support/cc-double.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';

async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('tps watcher', () => {
  let bridge: TestBridge;
  let cell: CellClient;
  let outboxDir: string;
  let outbox: Outbox;
  let watcher: Watcher | undefined;
  let instanceNumber = 0;

  before(async () => {
    bridge = await startTestBridge();
    cell = createCellClient({ url: bridge.diego.url });
  });
  after(async () => {
    await watcher?.stop();
    outbox?.close();
    await bridge.close();
  });
  beforeEach(async () => {
    await watcher?.stop();
    outbox?.close();
    outboxDir = mkdtempSync(join(tmpdir(), 'ccbridge-outbox-'));
    outbox = openOutbox(outboxDir);
    bridge.cc.requests.length = 0;
    bridge.cc.seenEventIds.clear();
    bridge.cc.statusFor.clear();
  });

  function startWatcher(mode: 'legacy' | 'v4', box: Outbox = outbox): Watcher {
    watcher = buildWatcher({
      bbs: bridge.bbs,
      cc: bridge.ccClient,
      outbox: box,
      logger: bridge.log,
      resubscribePauseMs: 300,
      config: { mode, retryBaseMs: 20, retryMaxMs: 100 },
    });
    watcher.start();
    return watcher;
  }

  async function desire(processGuid: string, instances: number): Promise<void> {
    const app = decodeLegacyJson<DesireAppRequestFromCC>(
      'cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC',
      JSON.stringify({ process_guid: processGuid, droplet_uri: 'http://127.0.0.1:1/d.tgz', stack: 'cflinuxfs4', num_instances: instances, log_guid: 'l', etag: 'e' }),
    );
    await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(app, bridge.nsyncRecipe));
  }

  /**
   * Calls the BBS as a cell does, once more if the connection was one the restarted BBS had
   * already closed (fetch keeps connections per origin, and the port stays the same).
   */
  async function asCell<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return call();
    }
  }

  /** Claims, starts and crashes one instance, as a cell does; returns the crashed instance guid. */
  async function crash(processGuid: string, index: number, reason = 'Exited with status 1'): Promise<string> {
    const instanceKey = { instanceGuid: `instance-${++instanceNumber}`, cellId: 'cell-1' };
    const key = { processGuid, index, domain: 'cf-apps' };
    await asCell(() => cell.claim(processGuid, index, instanceKey));
    await asCell(() => cell.start(key, instanceKey, { address: '127.0.0.1', ports: [{ containerPort: 8080, hostPort: 61000 + index, containerTlsProxyPort: 0, hostTlsProxyPort: 0 }], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' }));
    await asCell(() => cell.crash(key, instanceKey, reason));
    return instanceKey.instanceGuid;
  }

  /** Crash reports CC accepted for one process (a new watcher re-lists earlier tests' crashes too). */
  const crashReports = (processGuid: string) =>
    bridge.cc.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/crashed') && r.path.split('/').at(-2) === processGuid);
  const attemptedIds = (processGuid: string) => new Set(crashReports(processGuid).map((r) => String(r.headers['x-ccbridge-event-id'])));
  /** Ids CC answered 2xx for (the double remembers only those). */
  const acceptedIds = (processGuid: string) => new Set([...attemptedIds(processGuid)].filter((id) => bridge.cc.seenEventIds.has(id)));

  test('legacy mode: a crash reaches CC with the 2015 body and a stable event id', async () => {
    startWatcher('legacy');
    await desire('crashy', 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const instanceGuid = await crash('crashy', 0, 'out of memory');
    await waitFor('the crash report', () => crashReports('crashy').length === 1);
    const report = crashReports('crashy')[0]!;
    assert.equal(report.path, '/internal/apps/crashy/crashed');
    const body = report.json as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['instance', 'index', 'reason', 'exit_description', 'crash_count', 'crash_timestamp']);
    assert.equal(body.instance, instanceGuid);
    assert.equal(body.index, 0);
    assert.equal(body.reason, 'CRASHED');
    assert.equal(body.exit_description, 'out of memory');
    assert.equal(body.crash_count, 1);
    assert.match(report.body, /"crash_timestamp":\d{19}}$/, 'nanoseconds, written exactly');
    assert.match(String(report.headers['x-ccbridge-event-id']), /^[0-9a-f]{32}$/);
  });

  test('watching: false until the watcher has started and listed the instances, then true', async () => {
    watcher = buildWatcher({ bbs: bridge.bbs, cc: bridge.ccClient, outbox, logger: bridge.log, config: { mode: 'legacy' } });
    assert.equal(await watcher.watching(30), false, 'not started: not watching');
    const waiting = watcher.watching(10_000);
    watcher.start();
    assert.equal(await waiting, true);
    assert.equal(await watcher.watching(0), true, 'and stays so');
  });

  test('v4 mode: crashes to /internal/v4/apps/:guid/crashed with the cell id', async () => {
    startWatcher('v4');
    await desire('crashy-v4', 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await crash('crashy-v4', 0);
    await waitFor('the crash report', () => crashReports('crashy-v4').length === 1);
    const report = crashReports('crashy-v4')[0]!;
    assert.equal(report.path, '/internal/v4/apps/crashy-v4/crashed');
    const body = report.json as Record<string, unknown>;
    assert.equal(body.cell_id, 'cell-1');
    assert.equal(body.reason, 'CRASHED');
    assert.equal(body.crash_count, 1);
  });

  test('CC down while 1,000 crashes happen: every report arrives once CC is back, in order per instance', async () => {
    startWatcher('legacy');
    const apps = 50;
    const perApp = 20;
    for (let a = 0; a < apps; a++) await desire(`burst-${a}`, perApp);
    await new Promise((resolve) => setTimeout(resolve, 200));
    bridge.cc.statusFor.set('crashed', 503);
    const work: Promise<unknown>[] = [];
    for (let a = 0; a < apps; a++) work.push((async () => {
      for (let i = 0; i < perApp; i++) await crash(`burst-${a}`, i);
    })());
    await Promise.all(work);
    const guids = Array.from({ length: apps }, (_, a) => `burst-${a}`);
    const accepted = () => guids.reduce((n, g) => n + acceptedIds(g).size, 0);
    await waitFor('all 1,000 queued', () => outbox.depth() >= apps * perApp, 20_000);
    assert.equal(accepted(), 0, 'nothing accepted while CC answers 503');
    bridge.cc.statusFor.delete('crashed');
    await waitFor('the outbox drained', () => outbox.depth() === 0, 30_000);
    assert.equal(accepted(), apps * perApp, 'every crash delivered, none lost');
    const instances = new Set<string>();
    for (const guid of guids) for (const r of crashReports(guid)) instances.add(`${guid}/${(r.json as { index: number }).index}`);
    assert.equal(instances.size, apps * perApp, 'one report per crashed instance');
  });

  test('a watcher stopped with reports in its outbox delivers them after it is restarted', async () => {
    startWatcher('legacy');
    await desire('restarted', 3);
    await new Promise((resolve) => setTimeout(resolve, 200));
    bridge.cc.statusFor.set('crashed', 500);
    for (let i = 0; i < 3; i++) await crash('restarted', i);
    await waitFor('queued and refused', () => attemptedIds('restarted').size === 3);
    assert.equal(acceptedIds('restarted').size, 0);
    await watcher!.stop();
    outbox.close();
    bridge.cc.statusFor.delete('crashed');
    const reopened = openOutbox(outboxDir);
    outbox = reopened;
    startWatcher('legacy', reopened);
    await waitFor('delivered after restart', () => reopened.depth() === 0 && acceptedIds('restarted').size === 3);
  });

  test('crashes during an event-stream gap are found by the re-list after resubscribing', async () => {
    startWatcher('legacy');
    await desire('gap', 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Drop the stream: restart the BBS, then crash before the watcher has resubscribed.
    await bridge.restartDiego();
    cell = createCellClient({ url: bridge.diego.url });
    await crash('gap', 0);
    await crash('gap', 1);
    await waitFor('both missed crashes reported', () => acceptedIds('gap').size === 2);
    const indexes = crashReports('gap').map((r) => (r.json as { index: number }).index).sort();
    assert.deepEqual(indexes, [0, 1]);
  });

  test('a re-list never reports a crash twice: the same crash has the same id', async () => {
    startWatcher('legacy');
    await desire('twice', 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The first crashes restart at once; each is a new crash with its own count and since.
    for (let n = 0; n < 3; n++) await crash('twice', 0);
    await waitFor('three crashes', () => acceptedIds('twice').size === 3);
    await bridge.restartDiego();
    cell = createCellClient({ url: bridge.diego.url });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(acceptedIds('twice').size, 3, 'only the three crashes, whatever was re-listed');
  });
});

describe('tps watcher behind the lock', () => {
  let bridge: TestBridge;
  let locket: EmbeddedLocket;
  let cc: CcDouble;
  let dir: string;

  before(async () => {
    bridge = await startTestBridge();
    dir = mkdtempSync(join(tmpdir(), 'ccbridge-watchers-'));
    locket = await startEmbeddedLocket({ dataDir: join(dir, 'locket'), logger: bridge.log });
    cc = await startCcDouble();
  });
  after(async () => {
    await locket.close(100);
    await cc.stop();
    await bridge.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('two watchers: only the lock holder reports; on lock loss it stops at once and the other takes over', async () => {
    const watchers = ['one', 'two'].map((name) => {
      const outbox = openOutbox(join(dir, name));
      const watcher = buildWatcher({
        bbs: bridge.bbs,
        cc: createCcClient({ baseUrl: cc.url, username: name, timeoutMs: 1_000 }),
        outbox,
        logger: bridge.log,
        config: { mode: 'legacy', retryBaseMs: 20, retryMaxMs: 100 },
      });
      const locked = runWhileLocked({ key: 'tps_watcher_lock', locketAddress: locket.address, ttlMs: 1_000, retryIntervalMs: 100, work: watcher, logger: bridge.log });
      return { name, watcher, locked, outbox };
    });
    const reporters = (requests: RecordedRequest[]) =>
      new Set(requests.map((r) => Buffer.from(String(r.headers.authorization).replace('Basic ', ''), 'base64').toString().split(':')[0]));
    try {
      await waitFor('a holder', () => watchers.some((w) => w.watcher.running));
      const holder = watchers.find((w) => w.watcher.running)!;
      const standby = watchers.find((w) => w !== holder)!;
      assert.equal(standby.watcher.running, false);

      const cell = createCellClient({ url: bridge.diego.url });
      const desireOne = async (guid: string) => {
        const app = decodeLegacyJson<DesireAppRequestFromCC>('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', JSON.stringify({ process_guid: guid, droplet_uri: 'http://x/d', stack: 'cflinuxfs4', num_instances: 1, log_guid: 'l' }));
        await bridge.bbs.desireLrp(desiredLrpFromDesireAppRequest(app, bridge.nsyncRecipe));
      };
      const crashOne = async (guid: string, n: number) => {
        const instanceKey = { instanceGuid: `${guid}-${n}`, cellId: 'c' };
        const key = { processGuid: guid, index: 0, domain: 'cf-apps' };
        await cell.claim(guid, 0, instanceKey);
        await cell.start(key, instanceKey, { address: '127.0.0.1', ports: [], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' });
        await cell.crash(key, instanceKey, 'boom');
      };
      await desireOne('locked-app');
      await new Promise((resolve) => setTimeout(resolve, 200));
      await crashOne('locked-app', 1);
      await waitFor('the report', () => cc.received(/crashed$/).length >= 1);
      assert.deepEqual([...reporters(cc.received(/crashed$/))], [holder.name]);

      // The holder loses its lock: its work stops at once, the standby takes over and reports.
      await holder.locked.stop();
      assert.equal(holder.watcher.running, false, 'stopped at once');
      await waitFor('the standby took over', () => standby.watcher.running, 5_000);
      await crashOne('locked-app', 2);
      await waitFor('a report from the standby', () => reporters(cc.received(/crashed$/)).has(standby.name));
    } finally {
      for (const w of watchers) {
        await w.locked.stop();
        w.outbox.close();
      }
    }
  });
});
