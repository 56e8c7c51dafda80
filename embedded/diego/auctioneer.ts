// A small in-process auctioneer. Start requests for instances and tasks queue up and are placed in
// batches, one batch at a time (the real auctioneer batches too): each item goes to a present,
// non-evacuating cell with a compatible rootfs provider, matching placement tags and room for it,
// spreading the instances of one LRP across cells and preferring the least loaded cell. Work that
// fits nowhere records the auctioneer's placement error on the instance (it stays UNCLAIMED) or
// fails the task, as Diego does. With no cell registered at all nothing is failed: a one-machine
// Diego starts before its cell, and convergence asks again.
//
// A cell's load is what the BBS shows on it (CLAIMED and RUNNING instances, Running tasks) plus
// work handed to it that it has not claimed or started yet (a reservation, dropped once the BBS
// shows the work, or after reservationTtlMs).
import type { ActualLRPKey } from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { Provider } from '../../gen/diego/bbs/v1/cells.js';
import type { DesiredLRP, DesiredLRPSchedulingInfo } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { Task_State, type Task } from '../../gen/diego/bbs/v1/task.js';
import type { Logger } from '../../lib/log.js';
import type { ActualLrpLifecycle } from './actual-lrp-lifecycle.js';
import { ActualLrpState, type Bbs } from './bbs.js';
import type { CellRegistry, RegisteredCell } from './cells.js';
import type { Clock } from './clock.js';
import { DiegoError } from './errors.js';
import type { RepClient, Work } from './rep.js';
import type { TaskLifecycle } from './task-lifecycle.js';

export interface AuctioneerOptions {
  bbs: Bbs;
  cells: CellRegistry;
  lifecycle: ActualLrpLifecycle;
  tasks: TaskLifecycle;
  clock: Clock;
  logger: Logger;
  newGuid: () => string;
  /** How long work handed to a cell counts against it before the BBS shows it claimed or started. */
  reservationTtlMs: number;
  /** How long a cell may take to answer perform. */
  performTimeoutMs: number;
}

export interface Auctioneer {
  requestLrpAuctions(schedulingInfo: DesiredLRPSchedulingInfo, indices: number[]): void;
  requestTaskAuction(task: Task): void;
  /** Resolves once every queued request has been auctioned (tests; shutdown). */
  settled(): Promise<void>;
  /** Stops taking requests and waits for the batch in flight. */
  close(): Promise<void>;
}

/** What one placement needs from a cell. */
interface Need {
  rootFs: string;
  memoryMb: number;
  diskMb: number;
  placementTags: string[];
  processGuid?: string;
}

interface CellLoad {
  cell: RegisteredCell & { rep: RepClient };
  freeMemoryMb: number;
  freeDiskMb: number;
  freeContainers: number;
  /** Instances per process guid already on the cell (for spreading). */
  instances: Map<string, number>;
  work: Work;
}

interface Reservation {
  cellId: string;
  memoryMb: number;
  diskMb: number;
  processGuid?: string;
  instanceGuid?: string;
  atMs: number;
}

/** Most auctions a batch takes, so a flood is spread over turns of the event loop. */
const MAX_BATCH_ITEMS = 1_000;

export function createAuctioneer(options: AuctioneerOptions): Auctioneer {
  const { bbs, cells, clock, lifecycle, tasks } = options;
  const logger = options.logger.child({ session: 'auctioneer' });
  /** Queued instance auctions, by "process guid/index". */
  const lrpQueue = new Map<string, { processGuid: string; index: number }>();
  const taskQueue = new Set<string>();
  /** Work handed to cells and not yet visible in the BBS, by "lrp:guid/index" or "task:guid". */
  const reservations = new Map<string, Reservation>();
  let scheduled: NodeJS.Immediate | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  const schedule = () => {
    if (closed || scheduled !== undefined || running !== undefined) return;
    scheduled = setImmediate(() => {
      scheduled = undefined;
      running = runBatch()
        .catch((err: unknown) => logger.error({ err }, 'auction-batch-failed'))
        .finally(() => {
          running = undefined;
          if (lrpQueue.size > 0 || taskQueue.size > 0) schedule();
        });
    });
  };

  // ---------------------------------------------------------------- matching

  function rootFsMatches(providers: Provider[], rootFs: string): boolean {
    const colon = rootFs.indexOf(':');
    if (colon <= 0) return false;
    const scheme = rootFs.slice(0, colon);
    const rest = rootFs.slice(colon + 1);
    const provider = providers.find((candidate) => candidate.name === scheme);
    if (provider === undefined) return false;
    // A provider without properties takes any image (docker); otherwise the stack must be listed.
    if (provider.properties.length === 0) return true;
    const opaque = rest.startsWith('/') ? '' : rest.split(/[?#]/, 1)[0]!;
    return provider.properties.includes(opaque);
  }

  /** rep's MatchPlacementTags: the cell's required tags all asked for, every asked tag offered. */
  function placementTagsMatch(cell: RegisteredCell, wanted: string[]): boolean {
    const required = cell.presence.placementTags;
    const offered = new Set([...required, ...cell.presence.optionalPlacementTags]);
    return required.every((tag) => wanted.includes(tag)) && wanted.every((tag) => offered.has(tag));
  }

  function placementTagError(tags: string[]): string {
    if (tags.length === 0) return 'found no compatible cell with no placement tags';
    const quoted = tags.map((tag) => `"${tag}"`);
    if (quoted.length === 1) return `found no compatible cell with placement tag ${quoted[0]}`;
    return `found no compatible cell with placement tags ${quoted.slice(0, -1).join(', ')} and ${quoted.at(-1)}`;
  }

  function resourceProblems(load: CellLoad, need: Need): string[] {
    const problems: string[] = [];
    if (load.freeContainers < 1) problems.push('containers');
    if (load.freeDiskMb < need.diskMb) problems.push('disk');
    if (load.freeMemoryMb < need.memoryMb) problems.push('memory');
    return problems;
  }

  /** The best cell for a need, or the placement error that explains why there is none. */
  function choose(loads: CellLoad[], need: Need): CellLoad | string {
    const compatible = loads.filter((load) => rootFsMatches(load.cell.presence.rootfsProviders, need.rootFs));
    if (compatible.length === 0) return 'found no compatible cell for required rootfs';
    const tagged = compatible.filter((load) => placementTagsMatch(load.cell, need.placementTags));
    if (tagged.length === 0) return placementTagError(need.placementTags);
    const problems = new Set<string>();
    const fitting = tagged.filter((load) => {
      const missing = resourceProblems(load, need);
      for (const problem of missing) problems.add(problem);
      return missing.length === 0;
    });
    if (fitting.length === 0) return `insufficient resources: ${[...problems].sort().join(', ')}`;
    const usedFraction = (load: CellLoad) => {
      const total = load.cell.presence.capacity?.memoryMb ?? 0;
      return total <= 0 ? 1 : 1 - load.freeMemoryMb / total;
    };
    const sameProcess = (load: CellLoad) => (need.processGuid === undefined ? 0 : (load.instances.get(need.processGuid) ?? 0));
    fitting.sort(
      (a, b) =>
        sameProcess(a) - sameProcess(b) ||
        usedFraction(a) - usedFraction(b) ||
        a.cell.presence.cellId.localeCompare(b.cell.presence.cellId),
    );
    return fitting[0]!;
  }

  function take(load: CellLoad, need: Need): void {
    load.freeMemoryMb -= need.memoryMb;
    load.freeDiskMb -= need.diskMb;
    load.freeContainers -= 1;
    if (need.processGuid !== undefined) load.instances.set(need.processGuid, (load.instances.get(need.processGuid) ?? 0) + 1);
  }

  // ---------------------------------------------------------------- loads

  function dropVisibleReservations(): void {
    const now = clock.nowMs();
    for (const [item, reservation] of reservations) {
      if (now - reservation.atMs > options.reservationTtlMs) {
        reservations.delete(item);
        continue;
      }
      if (item.startsWith('lrp:')) {
        const [processGuid, index] = splitLrpItem(item.slice(4));
        const record = bbs.actualLrp(processGuid, index);
        // Still UNCLAIMED: the cell has not claimed it yet. Anything else is visible (or moot).
        if (record?.state !== ActualLrpState.UNCLAIMED) reservations.delete(item);
      } else {
        const task = findTask(item.slice(5));
        if (task?.state !== Task_State.STATE_PENDING) reservations.delete(item);
      }
    }
  }

  function findTask(taskGuid: string): Task | undefined {
    try {
      return bbs.task(taskGuid);
    } catch (error) {
      if (error instanceof DiegoError) return undefined;
      throw error;
    }
  }

  function findDesired(processGuid: string, cache: Map<string, DesiredLRP | undefined>): DesiredLRP | undefined {
    if (!cache.has(processGuid)) {
      let desired: DesiredLRP | undefined;
      try {
        desired = bbs.desiredLrp(processGuid);
      } catch (error) {
        if (!(error instanceof DiegoError)) throw error;
      }
      cache.set(processGuid, desired);
    }
    return cache.get(processGuid);
  }

  function loadOf(cell: RegisteredCell & { rep: RepClient }, desiredCache: Map<string, DesiredLRP | undefined>): CellLoad {
    const capacity = cell.presence.capacity;
    const load: CellLoad = {
      cell,
      freeMemoryMb: capacity?.memoryMb ?? 0,
      freeDiskMb: capacity?.diskMb ?? 0,
      freeContainers: capacity?.containers ?? 0,
      instances: new Map(),
      work: { lrps: [], tasks: [] },
    };
    const cellId = cell.presence.cellId;
    for (const lrp of bbs.actualLrps({ cellId })) {
      if (lrp.state !== ActualLrpState.CLAIMED && lrp.state !== ActualLrpState.RUNNING) continue;
      const processGuid = lrp.actualLrpKey?.processGuid ?? '';
      const desired = findDesired(processGuid, desiredCache);
      take(load, { rootFs: '', memoryMb: desired?.memoryMb ?? 0, diskMb: desired?.diskMb ?? 0, placementTags: [], processGuid });
    }
    for (const task of bbs.tasks({ cellId })) {
      if (task.state !== Task_State.STATE_RUNNING) continue;
      take(load, { rootFs: '', memoryMb: task.taskDefinition?.memoryMb ?? 0, diskMb: task.taskDefinition?.diskMb ?? 0, placementTags: [] });
    }
    for (const reservation of reservations.values()) {
      if (reservation.cellId !== cellId) continue;
      take(load, { rootFs: '', placementTags: [], ...reservation });
    }
    return load;
  }

  // ---------------------------------------------------------------- a batch

  async function runBatch(): Promise<void> {
    const placeable = cells.placeable();
    if (placeable.length === 0) {
      // Nothing to place on: leave the work as it is; convergence asks again.
      logger.debug({ instances: lrpQueue.size, tasks: taskQueue.size }, 'no-cells-to-place-on');
      lrpQueue.clear();
      taskQueue.clear();
      return;
    }
    const lrpItems = takeFrom(lrpQueue);
    const taskItems = takeFrom(taskQueue);
    dropVisibleReservations();
    const desiredCache = new Map<string, DesiredLRP | undefined>();
    const loads = placeable.map((cell) => loadOf(cell, desiredCache));

    // Lower indices first, so index 0 of every LRP is placed before index 1 of any (as the
    // auctioneer sorts its LRP auctions).
    lrpItems.sort((a, b) => a.index - b.index || a.processGuid.localeCompare(b.processGuid));
    for (const { processGuid, index } of lrpItems) {
      const record = bbs.actualLrp(processGuid, index);
      if (record?.state !== ActualLrpState.UNCLAIMED) continue;
      const desired = findDesired(processGuid, desiredCache);
      if (desired === undefined) continue;
      const need: Need = {
        rootFs: desired.rootFs,
        memoryMb: desired.memoryMb,
        diskMb: desired.diskMb,
        placementTags: desired.placementTags,
        processGuid,
      };
      const chosen = choose(loads, need);
      const key: ActualLRPKey = { processGuid, index, domain: desired.domain };
      if (typeof chosen === 'string') {
        failLrp(key, chosen);
        continue;
      }
      take(chosen, need);
      const instanceKey = { instanceGuid: options.newGuid(), cellId: chosen.cell.presence.cellId };
      chosen.work.lrps.push({ desired, key, instanceKey });
      reservations.set(`lrp:${processGuid}/${index}`, {
        cellId: instanceKey.cellId,
        memoryMb: need.memoryMb,
        diskMb: need.diskMb,
        processGuid,
        instanceGuid: instanceKey.instanceGuid,
        atMs: clock.nowMs(),
      });
    }

    for (const taskGuid of taskItems) {
      const task = findTask(taskGuid);
      if (task?.state !== Task_State.STATE_PENDING || task.taskDefinition === undefined) continue;
      const definition = task.taskDefinition;
      const need: Need = {
        rootFs: definition.rootFs,
        memoryMb: definition.memoryMb,
        diskMb: definition.diskMb,
        placementTags: definition.placementTags,
      };
      const chosen = choose(loads, need);
      if (typeof chosen === 'string') {
        failTask(taskGuid, chosen);
        continue;
      }
      take(chosen, need);
      chosen.work.tasks.push(task);
      reservations.set(`task:${taskGuid}`, {
        cellId: chosen.cell.presence.cellId,
        memoryMb: need.memoryMb,
        diskMb: need.diskMb,
        atMs: clock.nowMs(),
      });
    }

    await Promise.all(loads.filter((load) => load.work.lrps.length + load.work.tasks.length > 0).map(perform));
  }

  async function perform(load: CellLoad): Promise<void> {
    const cellId = load.cell.presence.cellId;
    let timer: NodeJS.Timeout | undefined;
    let refused: Work;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`cell ${cellId} did not answer perform in time`)), options.performTimeoutMs);
      });
      refused = await Promise.race([load.cell.rep.perform(load.work), timeout]);
    } catch (err) {
      logger.error({ err, cell_id: cellId }, 'failed-to-perform-work');
      refused = load.work;
    } finally {
      clearTimeout(timer);
    }
    // What the cell refused stays UNCLAIMED / Pending and is asked for again by convergence.
    for (const placement of refused.lrps) reservations.delete(`lrp:${placement.key.processGuid}/${placement.key.index}`);
    for (const task of refused.tasks) reservations.delete(`task:${task.taskGuid}`);
    logger.info(
      {
        cell_id: cellId,
        instances: load.work.lrps.length - refused.lrps.length,
        tasks: load.work.tasks.length - refused.tasks.length,
        refused: refused.lrps.length + refused.tasks.length,
      },
      'work-placed',
    );
  }

  function failLrp(key: ActualLRPKey, placementError: string): void {
    try {
      lifecycle.fail(key, placementError, '');
    } catch (error) {
      // Claimed meanwhile, or gone: nothing to record.
      if (!(error instanceof DiegoError)) throw error;
    }
    logger.info({ process_guid: key.processGuid, index: key.index, placement_error: placementError }, 'lrp-auction-failed');
  }

  function failTask(taskGuid: string, reason: string): void {
    try {
      tasks.fail(taskGuid, reason);
    } catch (error) {
      if (!(error instanceof DiegoError)) throw error;
    }
    logger.info({ task_guid: taskGuid, failure_reason: reason }, 'task-auction-failed');
  }

  return {
    requestLrpAuctions(schedulingInfo, indices) {
      if (closed) return;
      const processGuid = schedulingInfo.desiredLrpKey?.processGuid ?? '';
      for (const index of indices) lrpQueue.set(`${processGuid}/${index}`, { processGuid, index });
      schedule();
    },
    requestTaskAuction(task) {
      if (closed) return;
      taskQueue.add(task.taskGuid);
      schedule();
    },
    async settled() {
      // Bounded: each round runs at least one batch, and batches only shrink the queues.
      for (let round = 0; round < 1_000; round++) {
        if (scheduled === undefined && running === undefined) return;
        await (running ?? new Promise((resolve) => setImmediate(resolve)));
      }
    },
    async close() {
      closed = true;
      if (scheduled !== undefined) clearImmediate(scheduled);
      scheduled = undefined;
      lrpQueue.clear();
      taskQueue.clear();
      await running;
    },
  };
}

/** Up to MAX_BATCH_ITEMS entries, removed from the queue. */
function takeFrom<T>(queue: Map<string, T> | Set<T>): T[] {
  const taken: T[] = [];
  if (queue instanceof Map) {
    for (const [key, value] of queue) {
      if (taken.length >= MAX_BATCH_ITEMS) break;
      taken.push(value);
      queue.delete(key);
    }
  } else {
    for (const value of queue) {
      if (taken.length >= MAX_BATCH_ITEMS) break;
      taken.push(value);
      queue.delete(value);
    }
  }
  return taken;
}

function splitLrpItem(item: string): [string, number] {
  const slash = item.lastIndexOf('/');
  return [item.slice(0, slash), Number(item.slice(slash + 1))];
}
