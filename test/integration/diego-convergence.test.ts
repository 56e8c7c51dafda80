// The embedded Diego over time, with a manual clock and convergence called directly: missing and
// extra instances (fresh and stale domains), undesired instances, the crash restart schedule,
// placement and its errors, task completion callbacks (delivered, refused, retried, timed out),
// and the expiry of unresolved and never-started tasks.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import { ActualLRP, ActualLRP_Presence, type ActualLRPInstanceKey, type ActualLRPKey } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { Task_State, TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import {
  ActualLrpState,
  createCellClient,
  DEFAULT_RESTART_POLICY,
  emptyWork,
  manualClock,
  restartDelayMs,
  startEmbeddedDiego,
  TASK_NOT_STARTED_REASON,
  type CellClient,
  type EmbeddedDiego,
  type EmbeddedDiegoOptions,
  type ManualClock,
  type RepClient,
  type Work,
} from '../../embedded/diego/index.js';
import { silentLogger } from '../../lib/log.js';

const logger = silentLogger();

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface Harness {
  diego: EmbeddedDiego;
  clock: ManualClock;
  bbs: BbsClient;
  cell: CellClient;
  close(): Promise<void>;
}

async function start(options: Partial<EmbeddedDiegoOptions> = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-diego-convergence-'));
  tempDirs.push(dataDir);
  const clock = manualClock(Date.UTC(2026, 0, 1));
  const diego = await startEmbeddedDiego({ logger, dataDir, port: 0, clock, background: false, ...options });
  const bbs = createBbsClient({ url: diego.url, logger });
  return {
    diego,
    clock,
    bbs,
    cell: createCellClient({ url: diego.url }),
    async close() {
      bbs.close();
      await diego.close();
    },
  };
}

async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > giveUpAt) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const run = (path: string): Action => Action.fromPartial({ runAction: { path, user: 'vcap' } });

function desiredLrp(processGuid: string, overrides: Partial<DesiredLRP> = {}): DesiredLRP {
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances: 1,
    memoryMb: 256,
    diskMb: 1024,
    action: run('/tmp/lifecycle/launcher'),
    metricTags: { source_id: { static: processGuid } },
    ...overrides,
  });
}

const taskDefinition = (overrides: Partial<TaskDefinition> = {}) =>
  TaskDefinition.fromPartial({ rootFs: 'preloaded:cflinuxfs4', action: run('/bin/true'), memoryMb: 256, diskMb: 256, ...overrides });

const keyOf = (processGuid: string, index = 0, domain = 'cf-apps'): ActualLRPKey => ({ processGuid, index, domain });
const instance = (instanceGuid: string, cellId: string): ActualLRPInstanceKey => ({ instanceGuid, cellId });
const netInfo = { address: '127.0.0.1', ports: [], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' };

/** A cell that records what it is given and claims it, nothing more. */
class RecordingCell implements RepClient {
  readonly placed: string[] = [];
  readonly tasks: string[] = [];
  readonly stopped: string[] = [];
  constructor(
    readonly cellId: string,
    private readonly client: CellClient,
  ) {}
  async perform(work: Work): Promise<Work> {
    for (const placement of work.lrps) {
      this.placed.push(`${placement.key.processGuid}/${placement.key.index}`);
      await this.client.claim(placement.key.processGuid, placement.key.index, placement.instanceKey);
    }
    for (const task of work.tasks) {
      this.tasks.push(task.taskGuid);
      await this.client.startTask(task.taskGuid, this.cellId);
    }
    return emptyWork();
  }
  async stopLrpInstance(key: ActualLRPKey): Promise<void> {
    this.stopped.push(`${key.processGuid}/${key.index}`);
  }
  async cancelTask(): Promise<void> {}
}

function presence(cellId: string, overrides: Partial<CellPresence> = {}): CellPresence {
  return CellPresence.fromPartial({
    cellId,
    capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 },
    rootfsProviders: [{ name: 'preloaded', properties: ['cflinuxfs4'] }],
    ...overrides,
  });
}

const indices = (diego: EmbeddedDiego, processGuid: string) =>
  diego.bbs
    .actualLrps({ processGuid })
    .filter((lrp) => lrp.presence === ActualLRP_Presence.PRESENCE_ORDINARY)
    .map((lrp) => `${lrp.actualLrpKey?.index}:${lrp.state}`);

// ================================================================== LRP convergence

describe('LRP convergence', () => {
  let h: Harness;
  before(async () => {
    h = await start({ timing: { staleUnclaimedMs: 1_000 } });
  });
  after(() => h.close());

  test('missing indices below the desired count are created (in any domain)', async () => {
    await h.bbs.desireLrp(desiredLrp('missing-1', { instances: 3 }));
    h.diego.bbs.removeActualLrp('missing-1', 1, ActualLRP_Presence.PRESENCE_ORDINARY);
    assert.deepEqual(indices(h.diego, 'missing-1'), ['0:UNCLAIMED', '2:UNCLAIMED']);
    const report = h.diego.convergeLrps();
    assert.equal(report.missingInstances, 1);
    assert.deepEqual(indices(h.diego, 'missing-1'), ['0:UNCLAIMED', '1:UNCLAIMED', '2:UNCLAIMED']);
    assert.equal(h.diego.convergeLrps().missingInstances, 0, 'nothing left to create');
  });

  test('extra indices are retired only in fresh domains', async () => {
    await h.bbs.desireLrp(desiredLrp('extra-1', { domain: 'extra-domain', instances: 1 }));
    h.diego.bbs.createUnclaimedActualLrp(keyOf('extra-1', 4, 'extra-domain'));
    assert.equal(h.diego.convergeLrps().extraInstances, 0);
    assert.deepEqual(indices(h.diego, 'extra-1'), ['0:UNCLAIMED', '4:UNCLAIMED'], 'a stale domain loses nothing');

    await h.bbs.upsertDomain('extra-domain', 10);
    assert.equal(h.diego.convergeLrps().extraInstances, 1);
    assert.deepEqual(indices(h.diego, 'extra-1'), ['0:UNCLAIMED']);

    // Freshness runs out with the TTL.
    h.diego.bbs.createUnclaimedActualLrp(keyOf('extra-1', 2, 'extra-domain'));
    h.clock.advance(10_001);
    h.diego.convergeLrps();
    assert.deepEqual(indices(h.diego, 'extra-1'), ['0:UNCLAIMED', '2:UNCLAIMED']);
  });

  test('instances whose desired LRP is gone are stopped in a fresh domain and left alone in a stale one', async () => {
    const orphan = (processGuid: string, domain: string, state: string, cellId = '') =>
      h.diego.bbs.createActualLrp(
        ActualLRP.fromPartial({
          actualLrpKey: keyOf(processGuid, 0, domain),
          actualLrpInstanceKey: instance(cellId ? `ig-${processGuid}` : '', cellId),
          state,
          since: h.clock.nowNs().toString(),
          modificationTag: { epoch: 'e', index: 0 },
        }),
      );
    const cell = new RecordingCell('orphan-cell', h.cell);
    const registration = h.diego.registerCell({ presence: presence('orphan-cell'), rep: cell, heartbeatIntervalMs: 0, ttlMs: 3_600_000 });
    try {
      await h.bbs.upsertDomain('fresh-domain', 0);
      orphan('orphan-fresh', 'fresh-domain', ActualLrpState.UNCLAIMED);
      orphan('orphan-running', 'fresh-domain', ActualLrpState.RUNNING, 'orphan-cell');
      orphan('orphan-stale', 'stale-domain', ActualLrpState.UNCLAIMED);
      const report = h.diego.convergeLrps();
      assert.equal(report.orphanedInstances, 2);
      assert.deepEqual(indices(h.diego, 'orphan-fresh'), []);
      assert.deepEqual(cell.stopped, ['orphan-running/0'], 'a running orphan is stopped by its cell');
      assert.deepEqual(indices(h.diego, 'orphan-stale'), ['0:UNCLAIMED']);
    } finally {
      registration.deregister();
    }
  });

  test('scaling down retires the instances beyond the new count', async () => {
    await h.bbs.desireLrp(desiredLrp('scale-1', { instances: 3 }));
    await h.cell.claim('scale-1', 2, instance('ig-2', 'gone-cell'));
    await h.bbs.updateDesiredLrp('scale-1', { instances: 1, metricTags: {} });
    // Index 1 had no cell: removed at once. Index 2's cell is not present: removed too.
    assert.deepEqual(indices(h.diego, 'scale-1'), ['0:UNCLAIMED']);
  });

  test('instances on a cell that is gone are unclaimed and placed again; UNCLAIMED ones left unplaced are asked for again', async () => {
    const placed: string[] = [];
    const h2 = await start({
      timing: { staleUnclaimedMs: 1_000 },
      ports: { requestLrpAuctions: (info, requested) => placed.push(`${info.desiredLrpKey?.processGuid}:${requested.join(',')}`) },
    });
    try {
      await h2.bbs.desireLrp(desiredLrp('moved-1', { instances: 2 }));
      await h2.cell.claim('moved-1', 0, instance('ig-0', 'vanished-cell'));
      await h2.cell.start(keyOf('moved-1', 0), instance('ig-0', 'vanished-cell'), netInfo);
      placed.length = 0;
      const report = h2.diego.convergeLrps();
      assert.equal(report.missingCellInstances, 1);
      assert.deepEqual(indices(h2.diego, 'moved-1'), ['0:UNCLAIMED', '1:UNCLAIMED']);
      assert.deepEqual(placed, ['moved-1:0']);

      placed.length = 0;
      h2.clock.advance(999);
      assert.equal(h2.diego.convergeLrps().staleUnclaimed, 0);
      h2.clock.advance(2);
      assert.equal(h2.diego.convergeLrps().staleUnclaimed, 2, 'both waited longer than the stale time');
      assert.deepEqual(placed, ['moved-1:0', 'moved-1:1']);
    } finally {
      await h2.close();
    }
  });
});

describe('restart policy', () => {
  test('the BBS calculator: immediate below 3, then 30 s doubling up to 16 min, never from 200', () => {
    const cases: [number, number | undefined][] = [
      [0, 0],
      [1, 0],
      [2, 0],
      [3, 30_000],
      [4, 60_000],
      [5, 120_000],
      [6, 240_000],
      [7, 480_000],
      [8, 960_000],
      [9, 960_000],
      [199, 960_000],
      [200, undefined],
    ];
    for (const [crashCount, delay] of cases) assert.equal(restartDelayMs(DEFAULT_RESTART_POLICY, crashCount), delay, `crash count ${crashCount}`);
    // A cap that is not a power of two of the base: the exponent stops below it (119 s: 30, 60, 119).
    const odd = { ...DEFAULT_RESTART_POLICY, maxBackoffMs: 119_000 };
    assert.deepEqual([3, 4, 5, 6].map((count) => restartDelayMs(odd, count)), [30_000, 60_000, 119_000, 119_000]);
  });

  test('crashes restart immediately, then after a growing backoff, then never', async () => {
    const h = await start({
      restartPolicy: { immediateRestarts: 3, backoffBaseMs: 100, maxBackoffMs: 400, maxRestarts: 7 },
    });
    try {
      await h.bbs.desireLrp(desiredLrp('crashy'));
      const state = () => h.diego.bbs.actualLrp('crashy', 0)!;
      let attempt = 0;
      const runAndCrash = async () => {
        attempt++;
        const key = instance(`ig-${attempt}`, 'cell-x');
        await h.cell.claim('crashy', 0, key);
        await h.cell.start(keyOf('crashy'), key, netInfo);
        await h.cell.crash(keyOf('crashy'), key, `crash ${attempt}`);
      };

      for (const count of [1, 2]) {
        await runAndCrash();
        assert.equal(state().crashCount, count);
        assert.equal(state().state, ActualLrpState.UNCLAIMED, `crash ${count} restarts at once`);
      }
      for (const [count, backoffMs] of [
        [3, 100],
        [4, 200],
        [5, 400],
        [6, 400],
      ] as const) {
        await runAndCrash();
        assert.equal(state().crashCount, count);
        assert.equal(state().state, ActualLrpState.CRASHED);
        h.clock.advance(backoffMs - 1);
        assert.equal(h.diego.convergeLrps().restartedCrashes, 0, `crash ${count}: too early`);
        assert.equal(state().state, ActualLrpState.CRASHED);
        // The crash's stamp is a few ns past its millisecond; one more ms is surely past the backoff.
        h.clock.advance(2);
        assert.equal(h.diego.convergeLrps().restartedCrashes, 1, `crash ${count}: after ${backoffMs} ms`);
        assert.equal(state().state, ActualLrpState.UNCLAIMED);
        assert.equal(state().crashCount, count, 'a restart keeps the count');
      }
      await runAndCrash();
      assert.equal(state().crashCount, 7);
      h.clock.advance(24 * 3_600_000);
      h.diego.convergeLrps();
      assert.equal(state().state, ActualLrpState.CRASHED, 'given up');
    } finally {
      await h.close();
    }
  });
});

describe('placement', () => {
  let h: Harness;
  let small: RecordingCell;
  let big: RecordingCell;
  before(async () => {
    h = await start();
    small = new RecordingCell('cell-small', h.cell);
    big = new RecordingCell('cell-big', h.cell);
    h.diego.registerCell({ presence: presence('cell-small', { capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 } }), rep: small, heartbeatIntervalMs: 0, ttlMs: 3_600_000 });
    h.diego.registerCell({
      presence: presence('cell-big', { capacity: { memoryMb: 4096, diskMb: 8192, containers: 10 }, optionalPlacementTags: ['gpu'] }),
      rep: big,
      heartbeatIntervalMs: 0,
      ttlMs: 3_600_000,
    });
  });
  after(() => h.close());

  const placementError = (processGuid: string) => h.diego.bbs.actualLrp(processGuid, 0)?.placementError;

  test('instances of one LRP spread across cells, least loaded first', async () => {
    await h.bbs.desireLrp(desiredLrp('spread-1', { instances: 4, memoryMb: 128 }));
    await h.diego.settled();
    assert.deepEqual(indices(h.diego, 'spread-1'), ['0:CLAIMED', '1:CLAIMED', '2:CLAIMED', '3:CLAIMED']);
    const cells = h.diego.bbs.actualLrps({ processGuid: 'spread-1' }).map((lrp) => lrp.actualLrpInstanceKey?.cellId);
    assert.equal(cells.filter((cellId) => cellId === 'cell-small').length, 2);
    assert.equal(cells.filter((cellId) => cellId === 'cell-big').length, 2);
    assert.equal(h.diego.bbs.actualLrp('spread-1', 0)?.actualLrpInstanceKey?.cellId, 'cell-big', 'the emptier cell first');
  });

  test('no room anywhere: "insufficient resources"; no provider for the rootfs or the tags: "found no compatible cell"', async () => {
    await h.bbs.desireLrp(desiredLrp('too-big', { memoryMb: 8192 }));
    await h.bbs.desireLrp(desiredLrp('docker-1', { rootFs: 'docker:///cloudfoundry/diego-docker-app' }));
    await h.bbs.desireLrp(desiredLrp('tagged', { placementTags: ['isolation-segment-9'] }));
    await h.bbs.desireLrp(desiredLrp('gpu-1', { placementTags: ['gpu'] }));
    await h.diego.settled();
    assert.equal(placementError('too-big'), 'insufficient resources: memory');
    assert.equal(h.diego.bbs.actualLrp('too-big', 0)?.state, ActualLrpState.UNCLAIMED);
    assert.equal(placementError('docker-1'), 'found no compatible cell for required rootfs');
    assert.equal(placementError('tagged'), 'found no compatible cell with placement tag "isolation-segment-9"');
    assert.equal(h.diego.bbs.actualLrp('gpu-1', 0)?.actualLrpInstanceKey?.cellId, 'cell-big', 'optional tags are offered');

    // Placed later (convergence asks again), the claim clears the error.
    await h.bbs.updateDesiredLrp('too-big', { instances: 0, metricTags: {} });
  });

  test('a task that fits nowhere fails with the placement error; one that fits starts', async () => {
    await h.bbs.desireTask('task-huge', 'cf-tasks', taskDefinition({ memoryMb: 100_000, diskMb: 100_000 }));
    await h.bbs.desireTask('task-fits', 'cf-tasks', taskDefinition());
    await h.diego.settled();
    const huge = h.diego.bbs.task('task-huge');
    assert.equal(huge.state, Task_State.STATE_COMPLETED);
    assert.equal(huge.failed, true);
    assert.equal(huge.failureReason, 'insufficient resources: disk, memory');
    assert.equal(h.diego.bbs.task('task-fits').state, Task_State.STATE_RUNNING);
  });

  test('resources held by running work count: a full cell is skipped', async () => {
    // cell-small has 1024 MB; fill what is left of it and of cell-big with one LRP each.
    await h.bbs.desireLrp(desiredLrp('filler', { instances: 2, memoryMb: 700 }));
    await h.diego.settled();
    assert.deepEqual(indices(h.diego, 'filler'), ['0:CLAIMED', '1:CLAIMED']);
    await h.bbs.desireLrp(desiredLrp('after-filler', { memoryMb: 700 }));
    await h.diego.settled();
    const placedOn = h.diego.bbs.actualLrp('after-filler', 0)?.actualLrpInstanceKey?.cellId;
    assert.equal(placedOn, 'cell-big', 'only cell-big still has 700 MB free');
  });
});

// ================================================================== tasks over time

interface Receiver {
  url: string;
  hits: { path: string; body: string }[];
  answer: (path: string, attempt: number) => number | 'hang';
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const hanging: ServerResponse[] = [];
  const receiver: Receiver = {
    url: '',
    hits: [],
    answer: () => 200,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const path = req.url ?? '';
      receiver.hits.push({ path, body });
      const answer = receiver.answer(path, receiver.hits.filter((hit) => hit.path === path).length);
      if (answer === 'hang') hanging.push(res);
      else res.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

describe('task completion callbacks and expiry', () => {
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
  });
  after(() => receiver.close());

  /** Desires a task with a callback to path, runs it on a cell and completes it. */
  async function completeWithCallback(h: Harness, taskGuid: string, path: string, failed = false): Promise<void> {
    await h.bbs.desireTask(taskGuid, 'cf-app-staging', taskDefinition({ completionCallbackUrl: `${receiver.url}${path}`, annotation: `note-${taskGuid}` }));
    await h.cell.startTask(taskGuid, 'cell-t');
    await h.cell.completeTask(taskGuid, 'cell-t', failed, failed ? 'exit 1' : '', failed ? '' : '{"ok":1}');
    await h.diego.settled();
  }
  const hitsTo = (path: string) => receiver.hits.filter((hit) => hit.path === path);
  const exists = (h: Harness, taskGuid: string) => h.diego.bbs.tasks({}).some((task) => task.taskGuid === taskGuid);

  test('a 200 answer deletes the task; the body is the BBS TaskCallbackResponse JSON', async () => {
    const h = await start();
    try {
      await completeWithCallback(h, 'cb-200', '/cb-200', true);
      assert.equal(hitsTo('/cb-200').length, 1);
      const createdAt = BigInt(Date.UTC(2026, 0, 1)) * 1_000_000n;
      const body = hitsTo('/cb-200')[0]!.body;
      assert.match(body, /^\{"task_guid":"cb-200","failed":true,"failure_reason":"exit 1","result":"","annotation":"note-cb-200","created_at":\d+\}$/);
      // created_at is the exact int64, not a float.
      assert.equal(BigInt(/"created_at":(\d+)/.exec(body)![1]!) / 1_000_000n, createdAt / 1_000_000n);
      assert.equal(exists(h, 'cb-200'), false);
    } finally {
      await h.close();
    }
  });

  test('a 500 answer deletes it too; only 503 and 504 keep a task', async () => {
    const h = await start();
    receiver.answer = (path) => (path === '/cb-500' ? 500 : path === '/cb-504' ? 504 : 200);
    try {
      await completeWithCallback(h, 'cb-500', '/cb-500');
      assert.equal(exists(h, 'cb-500'), false);
      await completeWithCallback(h, 'cb-504', '/cb-504');
      assert.equal(hitsTo('/cb-504').length, 3);
      assert.equal(h.diego.bbs.task('cb-504').state, Task_State.STATE_RESOLVING);
    } finally {
      await h.close();
    }
  });

  test('503: kept (Resolving), demoted to Completed and fired again on the next kick, deleted once answered', async () => {
    const h = await start({ timing: { taskKickIntervalMs: 1_000 } });
    let ready = false;
    receiver.answer = (path) => (path === '/cb-503' && !ready ? 503 : 200);
    try {
      await completeWithCallback(h, 'cb-503', '/cb-503');
      assert.equal(hitsTo('/cb-503').length, 3, 'three attempts');
      assert.equal(h.diego.bbs.task('cb-503').state, Task_State.STATE_RESOLVING);

      h.clock.advance(500);
      assert.equal(h.diego.convergeTasks().demotedResolving, 0, 'not yet a kick apart');
      h.clock.advance(501);
      const report = h.diego.convergeTasks();
      assert.equal(report.demotedResolving, 1);
      assert.equal(report.callbacksResent, 1);
      await h.diego.settled();
      assert.equal(hitsTo('/cb-503').length, 6, 'fired again');
      assert.equal(h.diego.bbs.task('cb-503').state, Task_State.STATE_RESOLVING);

      ready = true;
      h.clock.advance(1_001);
      h.diego.convergeTasks();
      await h.diego.settled();
      assert.equal(hitsTo('/cb-503').length, 7);
      assert.equal(exists(h, 'cb-503'), false);
    } finally {
      await h.close();
    }
  });

  test('a receiver that never answers gets three attempts, each cut at the callback timeout', async () => {
    const h = await start({ timing: { callbackTimeoutMs: 100 } });
    receiver.answer = (path) => (path === '/cb-hang' ? 'hang' : 200);
    try {
      const startedAt = Date.now();
      await completeWithCallback(h, 'cb-hang', '/cb-hang');
      assert.equal(hitsTo('/cb-hang').length, 3);
      assert.ok(Date.now() - startedAt >= 300);
      assert.equal(h.diego.bbs.task('cb-hang').state, Task_State.STATE_RESOLVING);
    } finally {
      await h.close();
    }
  });

  test('callbacks go to loopback (or a configured prefix) only', async () => {
    const h = await start();
    try {
      await h.bbs.desireTask('cb-far', 'd', taskDefinition({ completionCallbackUrl: 'http://cc.example.invalid/internal/completed' }));
      await h.cell.startTask('cb-far', 'cell-t');
      await h.cell.completeTask('cb-far', 'cell-t', false, '', '');
      await h.diego.settled();
      assert.equal(h.diego.bbs.task('cb-far').state, Task_State.STATE_RESOLVING, 'never posted, left for the kick and expiry');
    } finally {
      await h.close();
    }
  });

  test('completed tasks nobody resolves expire; pending tasks that never start fail', async () => {
    const h = await start({ timing: { expireCompletedTaskMs: 2_000, expirePendingTaskMs: 5_000, taskKickIntervalMs: 1_000 } });
    receiver.answer = () => 200;
    try {
      await h.bbs.desireTask('unresolved', 'd', taskDefinition());
      await h.cell.startTask('unresolved', 'cell-t');
      await h.cell.completeTask('unresolved', 'cell-t', false, '', '');
      await h.bbs.desireTask('never-started', 'd', taskDefinition({ completionCallbackUrl: `${receiver.url}/cb-never` }));

      h.clock.advance(1_999);
      assert.equal(h.diego.convergeTasks().expiredCompleted, 0);
      h.clock.advance(2);
      assert.equal(h.diego.convergeTasks().expiredCompleted, 1);
      assert.equal(exists(h, 'unresolved'), false);

      assert.equal(h.diego.bbs.task('never-started').state, Task_State.STATE_PENDING);
      h.clock.advance(3_000);
      const report = h.diego.convergeTasks();
      assert.equal(report.expiredPending, 1);
      await h.diego.settled();
      assert.equal(hitsTo('/cb-never').length, 1, 'its callback reports the failure');
      assert.match(hitsTo('/cb-never')[0]!.body, new RegExp(`"failed":true,"failure_reason":"${TASK_NOT_STARTED_REASON}"`));
      assert.equal(exists(h, 'never-started'), false);
    } finally {
      await h.close();
    }
  });

  test('pending tasks are placed again each kick; a rejected task is placed again', async () => {
    const h = await start({ timing: { taskKickIntervalMs: 1_000 } });
    const cell = new RecordingCell('kick-cell', h.cell);
    try {
      await h.bbs.desireTask('kicked', 'd', taskDefinition());
      await h.diego.settled();
      h.diego.registerCell({ presence: presence('kick-cell'), rep: cell, heartbeatIntervalMs: 0, ttlMs: 3_600_000 });
      await h.diego.settled();
      assert.deepEqual(cell.tasks, ['kicked'], 'placed once the cell registered');
      await h.cell.rejectTask('kicked', 'no room after all');
      assert.equal(h.diego.bbs.task('kicked').state, Task_State.STATE_PENDING);
      h.clock.advance(1_001);
      assert.equal(h.diego.convergeTasks().kickedPending, 1);
      await h.diego.settled();
      assert.deepEqual(cell.tasks, ['kicked', 'kicked']);
      assert.equal(h.diego.bbs.task('kicked').state, Task_State.STATE_RUNNING);
    } finally {
      await h.close();
    }
  });
});
