// The embedded Diego as cells see it: every cell-side route's state rules over HTTP (valid and
// refused transitions, validation), and cells registered over the rep port living through the
// whole cycle — placement, claim, start, crash and restart, tasks, a cell that stops
// heartbeating, and a graceful shutdown that evacuates to another cell.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import {
  ActualLRP_Presence,
  type ActualLRPInstanceKey,
  type ActualLRPKey,
  type ActualLRPNetInfo,
} from '../../gen/diego/bbs/v1/actual_lrp.js';
import {
  ActualLRPLifecycleResponse,
  ClaimActualLRPRequest,
  CrashActualLRPRequest,
  FailActualLRPRequest,
  RemoveActualLRPRequest,
  StartActualLRPRequest,
} from '../../gen/diego/bbs/v1/actual_lrp_requests.js';
import { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { Error_Type } from '../../gen/diego/bbs/v1/error.js';
import {
  EvacuateCrashedActualLRPRequest,
  EvacuateRunningActualLRPRequest,
  EvacuationResponse,
  RemoveEvacuatingActualLRPRequest,
} from '../../gen/diego/bbs/v1/evacuation.js';
import { Task_State, TaskDefinition, type Task } from '../../gen/diego/bbs/v1/task.js';
import {
  CompleteTaskRequest,
  FailTaskRequest,
  RejectTaskRequest,
  StartTaskRequest,
  StartTaskResponse,
  TaskLifecycleResponse,
} from '../../gen/diego/bbs/v1/task_requests.js';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import {
  ActualLrpState,
  CELL_DISAPPEARED_REASON,
  createCellClient,
  DiegoError,
  emptyWork,
  evacuateCell,
  manualClock,
  startEmbeddedDiego,
  type CellClient,
  type CellRegistration,
  type EmbeddedDiego,
  type EmbeddedDiegoOptions,
  type HeldInstance,
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

async function startDiego(options: Partial<EmbeddedDiegoOptions> = {}): Promise<EmbeddedDiego> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-diego-behaviour-'));
  tempDirs.push(dataDir);
  return startEmbeddedDiego({ logger, dataDir, port: 0, background: false, ...options });
}

async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > giveUpAt) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ------------------------------------------------------------------ fixtures

const run = (path: string): Action => Action.fromPartial({ runAction: { path, user: 'vcap' } });

function desiredLrp(processGuid: string, overrides: Partial<DesiredLRP> = {}): DesiredLRP {
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances: 1,
    memoryMb: 256,
    diskMb: 1024,
    logGuid: `log-${processGuid}`,
    action: run('/tmp/lifecycle/launcher'),
    ports: [8080],
    metricTags: { source_id: { static: `app-${processGuid}` } },
    ...overrides,
  });
}

function taskDefinition(overrides: Partial<TaskDefinition> = {}): TaskDefinition {
  return TaskDefinition.fromPartial({
    rootFs: 'preloaded:cflinuxfs4',
    action: run('/tmp/lifecycle/builder'),
    memoryMb: 512,
    diskMb: 1024,
    logGuid: 'app-guid',
    ...overrides,
  });
}

const netInfo = (hostPort = 61001): ActualLRPNetInfo => ({
  address: '127.0.0.1',
  ports: [{ containerPort: 8080, hostPort, containerTlsProxyPort: 0, hostTlsProxyPort: 0 }],
  instanceAddress: '10.255.0.2',
  preferredAddress: 0,
  instanceIpv6Address: '',
});

const keyOf = (processGuid: string, index = 0, domain = 'cf-apps'): ActualLRPKey => ({ processGuid, index, domain });
const instance = (instanceGuid: string, cellId: string): ActualLRPInstanceKey => ({ instanceGuid, cellId });

function cellPresence(cellId: string, overrides: Partial<CellPresence> = {}): CellPresence {
  return CellPresence.fromPartial({
    cellId,
    repAddress: `http://${cellId}.invalid`,
    zone: 'z1',
    capacity: { memoryMb: 4096, diskMb: 16384, containers: 20 },
    rootfsProviders: [
      { name: 'preloaded', properties: ['cflinuxfs4'] },
      { name: 'docker', properties: [] },
    ],
    ...overrides,
  });
}

/** Expects a BBS error of this type (and message) from a cell call. */
async function refused(call: Promise<unknown>, type: Error_Type, message?: string | RegExp): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof DiegoError, `expected a BBS error, got ${String(error)}`);
    assert.equal(Error_Type[error.type], Error_Type[type], error.message);
    if (typeof message === 'string') assert.equal(error.message, message);
    else if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

/** A raw protobuf POST, as any cell would send it; returns the decoded in-band error. */
async function rawError(url: string, path: string, body: Uint8Array): Promise<{ type: string; message: string } | undefined> {
  const response = await fetch(`${url}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/x-protobuf' } });
  assert.equal(response.status, 200);
  const error = TaskLifecycleResponse.decode(new Uint8Array(await response.arrayBuffer())).error;
  return error === undefined ? undefined : { type: Error_Type[error.type], message: error.message };
}

// ------------------------------------------------------------------ a test cell

interface TestCellOptions {
  /** Claim placed instances inside perform (default true). */
  claim?: boolean;
  /** Start each claimed instance right away (default false: the test starts it). */
  runOnClaim?: boolean;
  /** Start placed tasks inside perform (default true). */
  startTasks?: boolean;
}

/**
 * A cell over the rep port: it claims what it is given and reports every change through the
 * BBS cell routes, as a real rep does; the test decides when instances run, crash or stop.
 */
class TestCell implements RepClient {
  readonly performed: Work[] = [];
  readonly stopped: string[] = [];
  readonly cancelled: string[] = [];
  readonly held = new Map<string, HeldInstance>();
  readonly runningTasks = new Set<string>();
  registration: CellRegistration | undefined;
  private hostPort = 62000;

  constructor(
    readonly cellId: string,
    readonly client: CellClient,
    private readonly options: TestCellOptions = {},
  ) {}

  register(diego: EmbeddedDiego, overrides: Partial<CellPresence> = {}, ttlMs?: number): this {
    this.registration = diego.registerCell({ presence: cellPresence(this.cellId, overrides), rep: this, ttlMs });
    return this;
  }

  async perform(work: Work): Promise<Work> {
    this.performed.push(work);
    const refusedWork = emptyWork();
    for (const placement of work.lrps) {
      if (this.options.claim === false) continue;
      try {
        await this.client.claim(placement.key.processGuid, placement.key.index, placement.instanceKey);
      } catch {
        refusedWork.lrps.push(placement);
        continue;
      }
      const held: HeldInstance = { key: placement.key, instanceKey: placement.instanceKey };
      this.held.set(`${placement.key.processGuid}/${placement.key.index}`, held);
      if (this.options.runOnClaim) await this.run(placement.key.processGuid, placement.key.index);
    }
    for (const task of work.tasks) {
      if (this.options.startTasks === false) continue;
      if (await this.client.startTask(task.taskGuid, this.cellId)) this.runningTasks.add(task.taskGuid);
    }
    return refusedWork;
  }

  async stopLrpInstance(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey): Promise<void> {
    this.stopped.push(`${key.processGuid}/${key.index}`);
    this.held.delete(`${key.processGuid}/${key.index}`);
    await this.client.remove(key.processGuid, key.index, instanceKey).catch(() => undefined);
  }

  async cancelTask(taskGuid: string): Promise<void> {
    this.cancelled.push(taskGuid);
    this.runningTasks.delete(taskGuid);
  }

  heldInstance(processGuid: string, index = 0): HeldInstance {
    const held = this.held.get(`${processGuid}/${index}`);
    assert.ok(held, `${this.cellId} holds no ${processGuid}/${index}`);
    return held;
  }

  async run(processGuid: string, index = 0): Promise<void> {
    const held = this.heldInstance(processGuid, index);
    held.netInfo = netInfo(this.hostPort++);
    await this.client.start(held.key, held.instanceKey, held.netInfo);
  }

  async crash(processGuid: string, index = 0, reason = 'APP/PROC/WEB: Exited with status 1'): Promise<void> {
    const held = this.heldInstance(processGuid, index);
    this.held.delete(`${processGuid}/${index}`);
    await this.client.crash(held.key, held.instanceKey, reason);
  }

  async completeTask(taskGuid: string, failed = false, failureReason = '', result = ''): Promise<void> {
    this.runningTasks.delete(taskGuid);
    await this.client.completeTask(taskGuid, this.cellId, failed, failureReason, result);
  }
}

// ================================================================== state rules

describe('cell routes: actual LRP state rules', () => {
  let diego: EmbeddedDiego;
  let cell: CellClient;
  let bbs: BbsClient;
  let clock: ManualClock;
  before(async () => {
    clock = manualClock(Date.UTC(2026, 0, 1));
    diego = await startDiego({ clock, timing: { crashResetMs: 60_000 } });
    cell = createCellClient({ url: diego.url });
    bbs = createBbsClient({ url: diego.url, logger });
  });
  after(async () => {
    bbs.close();
    await diego.close();
  });

  const ordinary = (processGuid: string, index = 0) => diego.bbs.actualLrp(processGuid, index)!;

  test('claim: UNCLAIMED -> CLAIMED by the cell; again by the same cell changes nothing; another cell is refused', async () => {
    await bbs.desireLrp(desiredLrp('claim-1', { instances: 2 }));
    const unplaced = ordinary('claim-1');
    diego.bbs.transaction((tx) => tx.replaceActualLrp(unplaced, { ...unplaced, placementError: 'insufficient resources: memory' }, ''));

    await cell.claim('claim-1', 0, instance('ig-a', 'cell-a'));
    const claimed = ordinary('claim-1');
    assert.equal(claimed.state, ActualLrpState.CLAIMED);
    assert.deepEqual(claimed.actualLrpInstanceKey, instance('ig-a', 'cell-a'));
    assert.equal(claimed.placementError, '', 'a claim clears the placement error');
    assert.equal(claimed.modificationTag?.index, 1);

    await cell.claim('claim-1', 0, instance('ig-a', 'cell-a'));
    assert.equal(ordinary('claim-1').modificationTag?.index, 1, 'claiming again is a no-op');

    await refused(cell.claim('claim-1', 0, instance('ig-b', 'cell-b')), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_CLAIMED, 'cannot claim actual LRP');
    await refused(cell.claim('claim-1', 7, instance('ig-b', 'cell-b')), Error_Type.TYPE_RESOURCE_NOT_FOUND);
    await refused(cell.claim('nobody', 0, instance('ig-b', 'cell-b')), Error_Type.TYPE_RESOURCE_NOT_FOUND);

    // A running instance may be claimed again by the cell that runs it, by no other.
    await cell.start(keyOf('claim-1'), instance('ig-a', 'cell-a'), netInfo());
    await refused(cell.claim('claim-1', 0, instance('ig-b', 'cell-b')), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_CLAIMED);
    await cell.claim('claim-1', 0, instance('ig-a', 'cell-a'));
    assert.equal(ordinary('claim-1').state, ActualLrpState.CLAIMED);
    assert.equal(ordinary('claim-1').actualLrpNetInfo?.address, '', 'claimed instances have no address');
  });

  test('start: the claimer (or, as the BBS allows, any cell) starts a CLAIMED instance; UNCLAIMED starts directly; a RUNNING one only by its cell', async () => {
    await bbs.desireLrp(desiredLrp('start-1', { instances: 3 }));
    await cell.claim('start-1', 0, instance('ig-0', 'cell-a'));
    await cell.start(keyOf('start-1', 0), instance('ig-0', 'cell-a'), netInfo(61000), { metricTags: { app_id: 'a1' }, availabilityZone: 'z1' });
    const running = ordinary('start-1', 0);
    assert.equal(running.state, ActualLrpState.RUNNING);
    assert.equal(running.actualLrpNetInfo?.ports[0]?.hostPort, 61000);
    assert.deepEqual(running.metricTags, { app_id: 'a1' });
    assert.equal(running.availabilityZone, 'z1');
    assert.equal(running.routable, true, 'a start without routable counts as routable');

    // Starting again with the same address changes nothing.
    const tag = running.modificationTag?.index;
    await cell.start(keyOf('start-1', 0), instance('ig-0', 'cell-a'), netInfo(61000), { metricTags: { app_id: 'a1' } });
    assert.equal(ordinary('start-1', 0).modificationTag?.index, tag);

    await refused(cell.start(keyOf('start-1', 0), instance('ig-x', 'cell-b'), netInfo()), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_STARTED, 'cannot start actual LRP');
    await refused(cell.start(keyOf('start-1', 0, 'other-domain'), instance('ig-0', 'cell-a'), netInfo()), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_STARTED);

    await cell.start(keyOf('start-1', 1), instance('ig-1', 'cell-a'), netInfo(61001));
    assert.equal(ordinary('start-1', 1).state, ActualLrpState.RUNNING, 'UNCLAIMED -> RUNNING');

    await cell.claim('start-1', 2, instance('ig-2', 'cell-a'));
    await cell.start(keyOf('start-1', 2), instance('ig-2b', 'cell-b'), netInfo(61002));
    assert.deepEqual(ordinary('start-1', 2).actualLrpInstanceKey, instance('ig-2b', 'cell-b'), 'CLAIMED -> RUNNING takes any instance key');

    // A cell reporting an instance the BBS has no record of gets it recorded.
    await cell.start(keyOf('start-1', 9), instance('ig-9', 'cell-a'), netInfo(61009));
    assert.equal(ordinary('start-1', 9).state, ActualLrpState.RUNNING);
  });

  test('crash: clears the instance key and address, counts, records the reason, restarts at once below the limit', async () => {
    await bbs.desireLrp(desiredLrp('crash-1'));
    const events = await bbs.subscribeToInstanceEvents();
    try {
      await cell.claim('crash-1', 0, instance('ig-1', 'cell-a'));
      await cell.start(keyOf('crash-1'), instance('ig-1', 'cell-a'), netInfo());
      await refused(cell.crash(keyOf('crash-1'), instance('ig-other', 'cell-b'), 'boom'), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_CRASHED, 'cannot crash actual LRP');
      await cell.crash(keyOf('crash-1'), instance('ig-1', 'cell-a'), 'APP/PROC/WEB: Exited with status 2');
      const crashed = ordinary('crash-1');
      assert.equal(crashed.state, ActualLrpState.UNCLAIMED, 'first crash restarts at once');
      assert.equal(crashed.crashCount, 1);
      assert.equal(crashed.crashReason, 'APP/PROC/WEB: Exited with status 2');
      assert.deepEqual(crashed.actualLrpInstanceKey, instance('', ''));
      assert.equal(crashed.actualLrpNetInfo?.address, '');
      assert.equal(crashed.actualLrpNetInfo?.ports.length, 0);

      const seen: string[] = [];
      for await (const event of events) {
        seen.push(event.type);
        if (event.type === 'actual_lrp_crashed') {
          assert.equal(event.event.crashCount, 1);
          assert.equal(event.event.crashReason, 'APP/PROC/WEB: Exited with status 2');
          assert.deepEqual(event.event.actualLrpInstanceKey, instance('ig-1', 'cell-a'), 'the instance that crashed');
          break;
        }
      }
      assert.deepEqual(seen.slice(-2), ['actual_lrp_instance_changed', 'actual_lrp_crashed']);
    } finally {
      events.close();
    }

    // Nothing holds an UNCLAIMED instance: it cannot crash.
    await refused(cell.crash(keyOf('crash-1'), instance('ig-1', 'cell-a'), 'again'), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_CRASHED);
    for (const [count, state] of [
      [2, ActualLrpState.UNCLAIMED],
      [3, ActualLrpState.CRASHED],
    ] as const) {
      await cell.claim('crash-1', 0, instance(`ig-${count}`, 'cell-a'));
      await cell.crash(keyOf('crash-1'), instance(`ig-${count}`, 'cell-a'), 'boom');
      assert.equal(ordinary('crash-1').crashCount, count);
      assert.equal(ordinary('crash-1').state, state);
    }
    // A CRASHED instance waits for convergence to unclaim it; no cell may claim it meanwhile.
    await refused(cell.claim('crash-1', 0, instance('ig-4', 'cell-a')), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_CLAIMED);
    await refused(cell.crash(keyOf('crash-1'), instance('', ''), 'x'), Error_Type.TYPE_INVALID_REQUEST);
    const reason = 'é'.repeat(600);
    await bbs.desireLrp(desiredLrp('crash-long'));
    await cell.claim('crash-long', 0, instance('ig-l', 'cell-a'));
    await cell.crash(keyOf('crash-long'), instance('ig-l', 'cell-a'), reason);
    assert.equal(Buffer.byteLength(ordinary('crash-long').crashReason), 1024, 'the reason is cut at 1024 bytes');
  });

  test('the crash count starts again at 1 when the instance ran longer than the reset time', async () => {
    await bbs.desireLrp(desiredLrp('reset-1'));
    await cell.claim('reset-1', 0, instance('ig-1', 'cell-a'));
    await cell.crash(keyOf('reset-1'), instance('ig-1', 'cell-a'), 'one');
    await cell.claim('reset-1', 0, instance('ig-2', 'cell-a'));
    await cell.start(keyOf('reset-1'), instance('ig-2', 'cell-a'), netInfo());
    clock.advance(59_000);
    await cell.crash(keyOf('reset-1'), instance('ig-2', 'cell-a'), 'two');
    assert.equal(ordinary('reset-1').crashCount, 2, 'ran shorter than the reset time');
    await cell.claim('reset-1', 0, instance('ig-3', 'cell-a'));
    await cell.start(keyOf('reset-1'), instance('ig-3', 'cell-a'), netInfo());
    clock.advance(60_001);
    await cell.crash(keyOf('reset-1'), instance('ig-3', 'cell-a'), 'three');
    assert.equal(ordinary('reset-1').crashCount, 1);
    assert.equal(ordinary('reset-1').state, ActualLrpState.UNCLAIMED);
  });

  test('fail records a placement error on an UNCLAIMED instance only; remove deletes the instance its cell names', async () => {
    await bbs.desireLrp(desiredLrp('fail-1', { instances: 2 }));
    await cell.fail(keyOf('fail-1'), 'found no compatible cell for required rootfs');
    assert.equal(ordinary('fail-1').placementError, 'found no compatible cell for required rootfs');
    assert.equal(ordinary('fail-1').state, ActualLrpState.UNCLAIMED);
    await cell.claim('fail-1', 1, instance('ig-1', 'cell-a'));
    await refused(cell.fail(keyOf('fail-1', 1), 'x'), Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_FAILED, 'cannot fail actual LRP');
    await refused(cell.fail(keyOf('fail-1', 5), 'x'), Error_Type.TYPE_RESOURCE_NOT_FOUND);

    const events = await bbs.subscribeToInstanceEvents();
    try {
      await refused(cell.remove('fail-1', 1, instance('ig-other', 'cell-a')), Error_Type.TYPE_RESOURCE_NOT_FOUND);
      await cell.remove('fail-1', 1, instance('ig-1', 'cell-a'));
      assert.equal(diego.bbs.actualLrp('fail-1', 1), undefined);
      const { value } = await events.next();
      assert.equal(value?.type, 'actual_lrp_instance_removed');
    } finally {
      events.close();
    }
    await cell.remove('fail-1', 0);
    assert.equal(diego.bbs.actualLrp('fail-1', 0), undefined, 'without an instance key the index goes');
  });

  test('validation follows the BBS request checks, in its order', async () => {
    const cases: [string, Uint8Array, string][] = [
      ['/v1/actual_lrps/claim', ClaimActualLRPRequest.encode({ processGuid: '', index: 0 }).finish(), 'Invalid field: process_guid, Invalid field: actual_lrp_instance_key'],
      [
        '/v1/actual_lrps/claim',
        ClaimActualLRPRequest.encode({ processGuid: 'p', index: 0, actualLrpInstanceKey: instance('', '') }).finish(),
        'Invalid field: cell_id, Invalid field: instance_guid',
      ],
      [
        '/v1/actual_lrps/start.r1',
        StartActualLRPRequest.encode({ actualLrpInternalRoutes: [], metricTags: {}, availabilityZone: '' }).finish(),
        'Invalid field: actual_lrp_key, Invalid field: actual_lrp_instance_key, Invalid field: actual_lrp_net_info',
      ],
      [
        '/v1/actual_lrps/start',
        StartActualLRPRequest.encode({
          actualLrpKey: keyOf('', -1, ''),
          actualLrpInstanceKey: instance('ig', 'c'),
          actualLrpNetInfo: { ...netInfo(), address: '' },
          actualLrpInternalRoutes: [],
          metricTags: {},
          availabilityZone: '',
        }).finish(),
        'Invalid field: process_guid, Invalid field: index, Invalid field: domain, Invalid field: address',
      ],
      ['/v1/actual_lrps/crash', CrashActualLRPRequest.encode({ actualLrpKey: keyOf('p'), errorMessage: 'x' }).finish(), 'Invalid field: actual_lrp_instance_key'],
      ['/v1/actual_lrps/fail', FailActualLRPRequest.encode({ actualLrpKey: keyOf('p'), errorMessage: '' }).finish(), 'Invalid field: error_message'],
      ['/v1/actual_lrps/remove', RemoveActualLRPRequest.encode({ processGuid: '', index: -1 }).finish(), 'Invalid field: process_guid, Invalid field: index'],
      [
        '/v1/actual_lrps/evacuate_crashed',
        EvacuateCrashedActualLRPRequest.encode({ actualLrpKey: keyOf('p'), actualLrpInstanceKey: instance('i', 'c'), errorMessage: '' }).finish(),
        'Invalid field: error_message',
      ],
      [
        '/v1/actual_lrps/evacuate_running.r1',
        EvacuateRunningActualLRPRequest.encode({
          actualLrpKey: keyOf('p'),
          actualLrpInstanceKey: instance('i', 'c'),
          actualLrpInternalRoutes: [],
          metricTags: {},
          availabilityZone: '',
        }).finish(),
        'Invalid field: actual_lrp_net_info',
      ],
      ['/v1/actual_lrps/remove_evacuating', RemoveEvacuatingActualLRPRequest.encode({ actualLrpKey: keyOf('p') }).finish(), 'Invalid field: actual_lrp_instance_key'],
      ['/v1/tasks/start', StartTaskRequest.encode({ taskGuid: 'bad guid', cellId: '' }).finish(), 'Invalid field: task_guid, Invalid field: cell_id'],
      ['/v1/tasks/complete', CompleteTaskRequest.encode({ taskGuid: 't', cellId: '', failed: false, failureReason: '', result: '' }).finish(), 'Invalid field: cell_id'],
      ['/v1/tasks/fail', FailTaskRequest.encode({ taskGuid: 't', failureReason: '' }).finish(), 'Invalid field: failure_reason'],
      ['/v1/tasks/reject', RejectTaskRequest.encode({ taskGuid: '', rejectionReason: '' }).finish(), 'Invalid field: task_guid, Invalid field: failure_reason'],
    ];
    for (const [path, body, message] of cases) {
      assert.deepEqual(await rawError(diego.url, path, body), { type: 'TYPE_INVALID_REQUEST', message }, path);
    }
    // Undecodable bodies are InvalidRequest too, and the answers keep their message types.
    assert.deepEqual(await rawError(diego.url, '/v1/actual_lrps/claim', Uint8Array.from([0x0a, 0x7f, 0x01])), {
      type: 'TYPE_INVALID_REQUEST',
      message: 'the request received is invalid',
    });
    const lifecycle = await fetch(`${diego.url}/v1/actual_lrps/claim`, { method: 'POST', body: new Uint8Array(0) });
    assert.ok(ActualLRPLifecycleResponse.decode(new Uint8Array(await lifecycle.arrayBuffer())).error);
  });
});

describe('cell routes: evacuation state rules', () => {
  let diego: EmbeddedDiego;
  let cell: CellClient;
  let bbs: BbsClient;
  before(async () => {
    diego = await startDiego();
    cell = createCellClient({ url: diego.url });
    bbs = createBbsClient({ url: diego.url, logger });
  });
  after(async () => {
    bbs.close();
    await diego.close();
  });

  const records = (processGuid: string, index = 0) =>
    diego.bbs
      .actualLrps({ processGuid, index })
      .map((lrp) => `${lrp.presence === ActualLRP_Presence.PRESENCE_EVACUATING ? 'EVACUATING' : 'ORDINARY'}:${lrp.state}:${lrp.actualLrpInstanceKey?.cellId ?? ''}`);

  test('evacuate_claimed: the claim goes back to UNCLAIMED and the container may go', async () => {
    await bbs.desireLrp(desiredLrp('ev-claimed'));
    await cell.claim('ev-claimed', 0, instance('ig-1', 'cell-a'));
    assert.equal(await cell.evacuateClaimed(keyOf('ev-claimed'), instance('ig-1', 'cell-a')), false);
    assert.deepEqual(records('ev-claimed'), ['ORDINARY:UNCLAIMED:']);
    await refused(cell.evacuateClaimed(keyOf('ev-claimed'), instance('ig-1', 'cell-a')), Error_Type.TYPE_RESOURCE_NOT_FOUND);
  });

  test('evacuate_running: an EVACUATING copy keeps serving, the ORDINARY record is placed again; the replacement running removes the copy', async () => {
    await bbs.desireLrp(desiredLrp('ev-running'));
    await cell.claim('ev-running', 0, instance('ig-old', 'cell-a'));
    await cell.start(keyOf('ev-running'), instance('ig-old', 'cell-a'), netInfo(61000));
    const events = await bbs.subscribeToInstanceEvents();
    try {
      assert.equal(await cell.evacuateRunning(keyOf('ev-running'), instance('ig-old', 'cell-a'), netInfo(61000)), true);
      assert.deepEqual(records('ev-running'), ['ORDINARY:UNCLAIMED:', 'EVACUATING:RUNNING:cell-a']);
      const copy = diego.bbs.actualLrp('ev-running', 0, ActualLRP_Presence.PRESENCE_EVACUATING)!;
      assert.equal(copy.actualLrpNetInfo?.ports[0]?.hostPort, 61000, 'the copy keeps serving where it was');

      // The dance reads as one change of the instance (to EVACUATING) and one new instance.
      const first = await events.next();
      const second = await events.next();
      assert.equal(first.value?.type, 'actual_lrp_instance_changed');
      if (first.value?.type === 'actual_lrp_instance_changed') {
        assert.equal(first.value.event.after?.presence, ActualLRP_Presence.PRESENCE_EVACUATING);
        assert.deepEqual(first.value.event.actualLrpInstanceKey, instance('ig-old', 'cell-a'));
      }
      assert.equal(second.value?.type, 'actual_lrp_instance_created');

      // Asking again while the replacement is not running: keep serving.
      assert.equal(await cell.evacuateRunning(keyOf('ev-running'), instance('ig-old', 'cell-a'), netInfo(61000)), true);

      await cell.claim('ev-running', 0, instance('ig-new', 'cell-b'));
      assert.equal(await cell.evacuateRunning(keyOf('ev-running'), instance('ig-old', 'cell-a'), netInfo(61000)), true);
      await cell.start(keyOf('ev-running'), instance('ig-new', 'cell-b'), netInfo(61005));
      assert.deepEqual(records('ev-running'), ['ORDINARY:RUNNING:cell-b']);
      const removed = await (async () => {
        for await (const event of events) if (event.type === 'actual_lrp_instance_removed') return event.event.actualLrp;
        return undefined;
      })();
      assert.equal(removed?.presence, ActualLRP_Presence.PRESENCE_EVACUATING);
      assert.deepEqual(removed?.actualLrpInstanceKey, instance('ig-old', 'cell-a'));
    } finally {
      events.close();
    }
    assert.equal(await cell.evacuateRunning(keyOf('ev-running'), instance('ig-old', 'cell-a'), netInfo(61000)), false, 'replacement runs: stop');
  });

  test('remove_evacuating, evacuate_stopped and evacuate_crashed', async () => {
    await bbs.desireLrp(desiredLrp('ev-misc', { instances: 2 }));
    await cell.claim('ev-misc', 0, instance('ig-0', 'cell-a'));
    await cell.start(keyOf('ev-misc', 0), instance('ig-0', 'cell-a'), netInfo());
    assert.equal(await cell.evacuateRunning(keyOf('ev-misc', 0), instance('ig-0', 'cell-a'), netInfo()), true);
    await refused(cell.removeEvacuating(keyOf('ev-misc', 0), instance('ig-zz', 'cell-a')), Error_Type.TYPE_RESOURCE_NOT_FOUND);
    await cell.removeEvacuating(keyOf('ev-misc', 0), instance('ig-0', 'cell-a'));
    assert.deepEqual(records('ev-misc', 0), ['ORDINARY:UNCLAIMED:']);
    await cell.claim('ev-misc', 0, instance('ig-0b', 'cell-b'));
    // The record that instance key names is the ordinary one: there is no evacuating copy to remove.
    await refused(cell.removeEvacuating(keyOf('ev-misc', 0), instance('ig-0b', 'cell-b')), Error_Type.TYPE_RESOURCE_NOT_FOUND);

    // Stopped: an ordinary instance on the evacuating cell is removed (convergence replaces it).
    await cell.claim('ev-misc', 1, instance('ig-1', 'cell-a'));
    await cell.start(keyOf('ev-misc', 1), instance('ig-1', 'cell-a'), netInfo());
    assert.equal(await cell.evacuateStopped(keyOf('ev-misc', 1), instance('ig-1', 'cell-a')), false);
    assert.deepEqual(records('ev-misc', 1), []);

    // Crashed: the ordinary instance crashes by the usual rules.
    await cell.start(keyOf('ev-misc', 0), instance('ig-0b', 'cell-b'), netInfo());
    assert.equal(await cell.evacuateCrashed(keyOf('ev-misc', 0), instance('ig-0b', 'cell-b'), 'died while draining'), false);
    const crashed = diego.bbs.actualLrp('ev-misc', 0)!;
    assert.equal(crashed.crashCount, 1);
    assert.equal(crashed.crashReason, 'died while draining');
    await refused(cell.evacuateStopped(keyOf('ev-misc', 0), instance('ig-0b', 'cell-b')), Error_Type.TYPE_RESOURCE_NOT_FOUND);

    // The answer carries keep_container even with an error.
    const response = await fetch(`${diego.url}/v1/actual_lrps/evacuate_claimed`, {
      method: 'POST',
      body: EvacuateRunningActualLRPRequest.encode({
        actualLrpKey: keyOf('nobody'),
        actualLrpInstanceKey: instance('i', 'c'),
        actualLrpInternalRoutes: [],
        metricTags: {},
        availabilityZone: '',
      }).finish(),
    });
    const answer = EvacuationResponse.decode(new Uint8Array(await response.arrayBuffer()));
    assert.equal(answer.keepContainer, false);
    assert.equal(answer.error?.type, Error_Type.TYPE_RESOURCE_NOT_FOUND);
  });

  test('evacuate_running of an instance whose desired LRP is gone: nothing to keep', async () => {
    await bbs.desireLrp(desiredLrp('ev-gone'));
    await cell.claim('ev-gone', 0, instance('ig-1', 'cell-a'));
    await cell.start(keyOf('ev-gone'), instance('ig-1', 'cell-a'), netInfo());
    assert.equal(await cell.evacuateRunning(keyOf('ev-gone'), instance('ig-1', 'cell-a'), netInfo()), true);
    await bbs.removeDesiredLrp('ev-gone');
    assert.deepEqual(records('ev-gone'), ['EVACUATING:RUNNING:cell-a'], 'removal leaves the copy to its cell');
    assert.equal(await cell.evacuateRunning(keyOf('ev-gone'), instance('ig-1', 'cell-a'), netInfo()), false);
    assert.deepEqual(records('ev-gone'), []);
  });
});

describe('cell routes: task state rules', () => {
  let diego: EmbeddedDiego;
  let cell: CellClient;
  let bbs: BbsClient;
  const completed: Task[] = [];
  before(async () => {
    diego = await startDiego({ maxTaskRetries: 2, ports: { taskCompleted: (task) => completed.push(task) } });
    cell = createCellClient({ url: diego.url });
    bbs = createBbsClient({ url: diego.url, logger });
  });
  after(async () => {
    bbs.close();
    await diego.close();
  });

  const taskOf = (taskGuid: string) => diego.bbs.task(taskGuid);

  test('start: Pending -> Running on the cell; again on the same cell says do not start; another cell is refused', async () => {
    await bbs.desireTask('t-start', 'cf-tasks', taskDefinition());
    assert.equal(await cell.startTask('t-start', 'cell-a'), true);
    assert.equal(taskOf('t-start').state, Task_State.STATE_RUNNING);
    assert.equal(taskOf('t-start').cellId, 'cell-a');
    assert.equal(await cell.startTask('t-start', 'cell-a'), false);
    await refused(cell.startTask('t-start', 'cell-b'), Error_Type.TYPE_INVALID_STATE_TRANSITION, 'Cannot transition from Running to Running');
    await refused(cell.startTask('t-none', 'cell-a'), Error_Type.TYPE_RESOURCE_NOT_FOUND);
  });

  test('complete: only the cell running it; Completed with failed, reason and result; the completion port hears of it', async () => {
    await bbs.desireTask('t-complete', 'cf-tasks', taskDefinition());
    await refused(cell.completeTask('t-complete', 'cell-a', false, '', ''), Error_Type.TYPE_INVALID_STATE_TRANSITION, 'Cannot transition from Pending to Completed');
    await cell.startTask('t-complete', 'cell-a');
    await refused(cell.completeTask('t-complete', 'cell-b', false, '', ''), Error_Type.TYPE_RUNNING_ON_DIFFERENT_CELL, 'Running on cell cell-a not cell-b');
    await cell.completeTask('t-complete', 'cell-a', true, 'exit status 3', '{"droplet":"x"}');
    const task = taskOf('t-complete');
    assert.equal(task.state, Task_State.STATE_COMPLETED);
    assert.equal(task.failed, true);
    assert.equal(task.failureReason, 'exit status 3');
    assert.equal(task.result, '{"droplet":"x"}');
    assert.equal(task.cellId, '');
    assert.notEqual(task.firstCompletedAt, '0');
    assert.equal(completed.at(-1)?.taskGuid, 't-complete');
    await refused(cell.completeTask('t-complete', 'cell-a', false, '', ''), Error_Type.TYPE_INVALID_STATE_TRANSITION, 'Cannot transition from Completed to Completed');
  });

  test('fail: Pending and Running tasks complete as failed; a completed one is refused', async () => {
    await bbs.desireTask('t-fail-pending', 'cf-tasks', taskDefinition());
    await cell.failTask('t-fail-pending', 'no cell would take it');
    assert.equal(taskOf('t-fail-pending').failed, true);
    assert.equal(taskOf('t-fail-pending').failureReason, 'no cell would take it');
    await bbs.desireTask('t-fail-running', 'cf-tasks', taskDefinition());
    await cell.startTask('t-fail-running', 'cell-a');
    await cell.failTask('t-fail-running', 'container died');
    assert.equal(taskOf('t-fail-running').state, Task_State.STATE_COMPLETED);
    await refused(cell.failTask('t-fail-running', 'again'), Error_Type.TYPE_INVALID_STATE_TRANSITION);
  });

  test('reject: back to Pending with a rejection count until the limit, then failed with the reason', async () => {
    await bbs.desireTask('t-reject', 'cf-tasks', taskDefinition());
    await cell.startTask('t-reject', 'cell-a');
    await cell.rejectTask('t-reject', 'out of disk');
    assert.equal(taskOf('t-reject').state, Task_State.STATE_PENDING);
    assert.equal(taskOf('t-reject').rejectionCount, 1);
    assert.equal(taskOf('t-reject').rejectionReason, 'out of disk');
    assert.equal(taskOf('t-reject').cellId, '');
    await cell.rejectTask('t-reject', 'out of disk again');
    assert.equal(taskOf('t-reject').rejectionCount, 2);
    await cell.rejectTask('t-reject', 'third time');
    assert.equal(taskOf('t-reject').state, Task_State.STATE_COMPLETED);
    assert.equal(taskOf('t-reject').failed, true);
    assert.equal(taskOf('t-reject').failureReason, 'third time');

    await bbs.desireTask('t-reject-done', 'cf-tasks', taskDefinition());
    await cell.startTask('t-reject-done', 'cell-a');
    await cell.completeTask('t-reject-done', 'cell-a', false, '', '');
    await refused(cell.rejectTask('t-reject-done', 'late'), Error_Type.TYPE_INVALID_REQUEST, 'the request received is invalid');
  });
});

// ================================================================== cells over the rep port

describe('cells over the rep port', () => {
  let diego: EmbeddedDiego;
  let bbs: BbsClient;
  let client: CellClient;
  let receiver: Server;
  let receiverUrl = '';
  const callbacks: string[] = [];
  before(async () => {
    diego = await startDiego({
      background: true,
      timing: { convergenceIntervalMs: 60_000, taskKickIntervalMs: 60_000, cellTtlMs: 200, cellCheckIntervalMs: 20 },
    });
    bbs = createBbsClient({ url: diego.url, logger });
    client = createCellClient({ url: diego.url });
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        callbacks.push(body);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/completed`;
  });
  after(async () => {
    bbs.close();
    await diego.close();
    receiver.closeAllConnections();
    await new Promise((resolve) => receiver.close(resolve));
  });

  const stateOf = (processGuid: string, index = 0) => diego.bbs.actualLrp(processGuid, index);
  /** Removes a test's LRPs while its cells are still there to stop them. */
  const forget = async (processGuids: string[]) => {
    for (const processGuid of processGuids) await bbs.removeDesiredLrp(processGuid).catch(() => undefined);
    await waitFor('instances stopped', () => processGuids.every((processGuid) => diego.bbs.actualLrps({ processGuid }).length === 0));
  };

  test('cells/list.r1 shows registered cells with capacity, rootfs providers and placement tags', async () => {
    const cell = new TestCell('cell-list', client).register(diego, { placementTags: ['isolated'] });
    const listed = (await bbs.cells()).find((presence) => presence.cellId === 'cell-list');
    assert.deepEqual(listed?.capacity, { memoryMb: 4096, diskMb: 16384, containers: 20 });
    assert.deepEqual(listed?.rootfsProviders.map((provider) => provider.name), ['preloaded', 'docker']);
    assert.deepEqual(listed?.placementTags, ['isolated']);
    cell.registration?.deregister();
    assert.equal((await bbs.cells()).some((presence) => presence.cellId === 'cell-list'), false);
  });

  test('a test cell runs the whole cycle: placed, claimed, started, crashed, restarted; a task placed, started, completed, its callback delivered', async () => {
    const cell = new TestCell('cell-1', client).register(diego);
    try {
      await bbs.desireLrp(desiredLrp('cycle-1', { instances: 2 }));
      await waitFor('both instances claimed', () => cell.held.size === 2);
      assert.equal(stateOf('cycle-1', 0)?.state, ActualLrpState.CLAIMED);
      assert.equal(stateOf('cycle-1', 0)?.actualLrpInstanceKey?.cellId, 'cell-1');
      const placed = cell.performed.flatMap((work) => work.lrps);
      assert.equal(placed[0]?.desired.processGuid, 'cycle-1', 'the cell gets the whole desired LRP');
      assert.equal(placed[0]?.instanceKey.cellId, 'cell-1');

      await cell.run('cycle-1', 0);
      await cell.run('cycle-1', 1);
      assert.equal(stateOf('cycle-1', 1)?.state, ActualLrpState.RUNNING);

      await cell.crash('cycle-1', 0);
      await waitFor('the crashed instance claimed again', () => cell.held.has('cycle-1/0'));
      assert.equal(stateOf('cycle-1', 0)?.state, ActualLrpState.CLAIMED);
      assert.equal(stateOf('cycle-1', 0)?.crashCount, 1);
      await cell.run('cycle-1', 0);

      await bbs.desireTask('cycle-task', 'cf-tasks', taskDefinition({ completionCallbackUrl: receiverUrl, annotation: 'staging' }));
      await waitFor('the task started on the cell', () => cell.runningTasks.has('cycle-task'));
      assert.equal(diego.bbs.task('cycle-task').state, Task_State.STATE_RUNNING);
      assert.equal(diego.bbs.task('cycle-task').cellId, 'cell-1');
      await cell.completeTask('cycle-task', false, '', '{"result":true}');
      await waitFor('the callback delivered', () => callbacks.length === 1);
      const body = JSON.parse(callbacks[0]!) as Record<string, unknown>;
      assert.equal(body.task_guid, 'cycle-task');
      assert.equal(body.result, '{"result":true}');
      assert.equal(body.annotation, 'staging');
      await waitFor('the task deleted', () => diego.bbs.tasks({}).every((task) => task.taskGuid !== 'cycle-task'));

      // Scale down: the cell is asked to stop the instance it runs.
      await bbs.updateDesiredLrp('cycle-1', { instances: 1, metricTags: {} });
      await waitFor('index 1 stopped', () => cell.stopped.includes('cycle-1/1'));
      await waitFor('index 1 removed', () => stateOf('cycle-1', 1) === undefined);

      // Cancel of a running task reaches the cell running it.
      await bbs.desireTask('cycle-cancel', 'cf-tasks', taskDefinition());
      await waitFor('the task started', () => cell.runningTasks.has('cycle-cancel'));
      await bbs.cancelTask('cycle-cancel');
      await waitFor('the cell told', () => cell.cancelled.includes('cycle-cancel'));
    } finally {
      await forget(['cycle-1']);
      cell.registration?.deregister();
    }
  });

  test('a cell that stops heartbeating is gone: its task fails with "cell disappeared before completion", its instances go to another cell', async () => {
    const doomed = new TestCell('cell-doomed', client, { runOnClaim: true }).register(diego, {}, 200);
    try {
      await bbs.desireLrp(desiredLrp('hb-1', { instances: 2 }));
      await bbs.desireTask('hb-task', 'cf-tasks', taskDefinition());
      await waitFor('work on the doomed cell', () => doomed.held.size === 2 && doomed.runningTasks.has('hb-task'));
      await waitFor('both running', () => stateOf('hb-1', 1)?.state === ActualLrpState.RUNNING);

      const survivor = new TestCell('cell-survivor', client, { runOnClaim: true }).register(diego);
      try {
        doomed.registration?.stopHeartbeat();
        await waitFor('the doomed cell gone from cells/list.r1', async () => (await bbs.cells()).every((c) => c.cellId !== 'cell-doomed'), 2_000);
        await waitFor('the task failed', () => diego.bbs.task('hb-task').state === Task_State.STATE_COMPLETED);
        assert.equal(diego.bbs.task('hb-task').failed, true);
        assert.equal(diego.bbs.task('hb-task').failureReason, CELL_DISAPPEARED_REASON);
        await waitFor('instances running on the survivor', () =>
          [0, 1].every((index) => stateOf('hb-1', index)?.state === ActualLrpState.RUNNING && stateOf('hb-1', index)?.actualLrpInstanceKey?.cellId === 'cell-survivor'),
        );
      } finally {
        await forget(['hb-1']);
        survivor.registration?.deregister();
      }
    } finally {
      doomed.registration?.deregister();
    }
  });

  test('a graceful shutdown evacuates: the replacement starts on another cell, the EVACUATING copy is removed and the draining cell stops its container', async () => {
    const draining = new TestCell('cell-draining', client, { runOnClaim: true }).register(diego);
    const events = await bbs.subscribeToInstanceEvents();
    let other: TestCell | undefined;
    try {
      await bbs.desireLrp(desiredLrp('evac-1'));
      await waitFor('running on the draining cell', () => stateOf('evac-1')?.state === ActualLrpState.RUNNING);
      other = new TestCell('cell-other', client, { runOnClaim: true }).register(diego);

      draining.registration?.setEvacuating(true);
      const stoppedContainers: string[] = [];
      const result = await evacuateCell({
        client,
        instances: () => [...draining.held.values()],
        async stopContainer(held) {
          stoppedContainers.push(`${held.key.processGuid}/${held.key.index}`);
          draining.held.delete(`${held.key.processGuid}/${held.key.index}`);
        },
        pollIntervalMs: 10,
        timeoutMs: 5_000,
        logger,
      });
      assert.deepEqual(result, { handedOver: 1, abandoned: 0 });
      assert.deepEqual(stoppedContainers, ['evac-1/0']);
      const ordinaryNow = stateOf('evac-1')!;
      assert.equal(ordinaryNow.state, ActualLrpState.RUNNING);
      assert.equal(ordinaryNow.actualLrpInstanceKey?.cellId, 'cell-other');
      assert.equal(diego.bbs.actualLrp('evac-1', 0, ActualLRP_Presence.PRESENCE_EVACUATING), undefined);

      const removedEvacuating = await (async () => {
        for await (const event of events) {
          if (event.type === 'actual_lrp_instance_removed' && event.event.actualLrp?.actualLrpKey?.processGuid === 'evac-1') {
            return event.event.actualLrp;
          }
        }
        return undefined;
      })();
      assert.equal(removedEvacuating?.presence, ActualLRP_Presence.PRESENCE_EVACUATING);
      assert.equal(removedEvacuating?.actualLrpInstanceKey?.cellId, 'cell-draining');

      // An evacuating cell takes no new work.
      await bbs.desireLrp(desiredLrp('evac-2'));
      await waitFor('evac-2 placed', () => stateOf('evac-2')?.state === ActualLrpState.RUNNING);
      assert.equal(stateOf('evac-2')?.actualLrpInstanceKey?.cellId, 'cell-other');
    } finally {
      events.close();
      await forget(['evac-1', 'evac-2']);
      draining.registration?.deregister();
      other?.registration?.deregister();
    }
  });

  test('work that waited for a cell is placed when one registers', async () => {
    await bbs.desireLrp(desiredLrp('late-1'));
    await bbs.desireTask('late-task', 'cf-tasks', taskDefinition());
    await diego.settled();
    assert.equal(stateOf('late-1')?.state, ActualLrpState.UNCLAIMED);
    assert.equal(stateOf('late-1')?.placementError, '', 'no cell at all is not a placement failure');
    assert.equal(diego.bbs.task('late-task').state, Task_State.STATE_PENDING);
    const cell = new TestCell('cell-late', client).register(diego);
    try {
      await waitFor('placed on the new cell', () => cell.held.has('late-1/0') && cell.runningTasks.has('late-task'));
    } finally {
      cell.registration?.deregister();
    }
  });
});
