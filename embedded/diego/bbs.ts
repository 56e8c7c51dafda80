// The embedded Diego's BBS: the store operations behind the routes, with the BBS's semantics —
// state transitions, the actual LRPs a desired LRP implies, the events each change emits — and
// the ports through which the rest of Diego (auctioneer, cells, the task completion callback) is
// told about work. The routes, and later the cell routes, convergence and the auctioneer, all
// go through this object, so events are emitted in one place.
//
// Writes run in one SQLite transaction; their events and port calls are published only after
// it commits, so a subscriber never hears of a change that was rolled back.
import { randomUUID } from 'node:crypto';
import {
  ActualLRP,
  ActualLRP_Presence,
  type ActualLRPInstanceKey,
  type ActualLRPKey,
} from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import {
  DesiredLRP,
  type DesiredLRPSchedulingInfo,
  type DesiredLRPUpdate,
} from '../../gen/diego/bbs/v1/desired_lrp.js';
import {
  ActualLRPCrashedEvent,
  ActualLRPInstanceChangedEvent,
  ActualLRPInstanceCreatedEvent,
  ActualLRPInstanceRemovedEvent,
  DesiredLRPChangedEvent,
  DesiredLRPCreatedEvent,
  DesiredLRPRemovedEvent,
  TaskChangedEvent,
  TaskCreatedEvent,
  TaskRemovedEvent,
  type ActualLRPInfo,
} from '../../gen/diego/bbs/v1/events.js';
import { Task, Task_State, type TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import type { Logger } from '../../lib/log.js';
import { createCellRegistry, type CellRegistry } from './cells.js';
import type { Clock } from './clock.js';
import { resourceExists, resourceNotFound, taskTransitionError } from './errors.js';
import type { EventHub, EventName } from './events/hub.js';
import { createActualLrpTable, type ActualLrpFilter } from './store/actual-lrps.js';
import {
  createDesiredLrpTable,
  schedulingInfoOf,
  type DesiredLrpFilter,
  type DesiredLrpFormat,
} from './store/desired-lrps.js';
import { createDomainTable } from './store/domains.js';
import type { DiegoDatabase } from './store/schema.js';
import { createTaskTable, type TaskFilter, type TaskFormat } from './store/tasks.js';

/** ActualLRP.state values (a string on the wire). */
export const ActualLrpState = {
  UNCLAIMED: 'UNCLAIMED',
  CLAIMED: 'CLAIMED',
  RUNNING: 'RUNNING',
  CRASHED: 'CRASHED',
} as const;

export const TASK_CANCELLED_REASON = 'task was cancelled';

/**
 * Where the BBS hands work to the rest of Diego. Every port is optional: without an auctioneer
 * new instances stay UNCLAIMED, without cells nothing is stopped on a cell.
 */
export interface DiegoPorts {
  /** New instances (indices) of a desired LRP need placing. */
  requestLrpAuctions?(schedulingInfo: DesiredLRPSchedulingInfo, indices: number[]): void;
  /** A new task needs placing. */
  requestTaskAuction?(task: Task): void;
  /** The cell holding an instance must stop it (retire, scale down, remove). */
  stopLrpInstance?(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey): void;
  /** The cell running a task must stop it (cancel). */
  cancelTaskOnCell?(cellId: string, taskGuid: string): void;
  /** A task reached Completed; its completion callback (when it has one) is due. */
  taskCompleted?(task: Task): void;
}

export interface BbsOptions {
  db: DiegoDatabase;
  clock: Clock;
  logger: Logger;
  /** desired_lrp_* and actual_lrp_* events (the lrp_instances stream). */
  lrpEvents: EventHub;
  /** task_* events (the tasks stream). */
  taskEvents: EventHub;
  ports?: DiegoPorts;
  /** Modification-tag epochs and instance guids; random UUIDs unless a test fixes them. */
  newGuid?: () => string;
}

export interface ActualLrpChange {
  before: ActualLRP;
  after: ActualLRP;
}

export interface TaskChange {
  before: Task;
  after: Task;
}

export interface Bbs {
  readonly clock: Clock;
  readonly cells: CellRegistry;
  readonly lrpEvents: EventHub;
  readonly taskEvents: EventHub;
  /** Replaces the ports (the cell and auctioneer are built after the BBS). */
  setPorts(ports: DiegoPorts): void;

  upsertDomain(domain: string, ttlSeconds: number): void;
  freshDomains(): string[];

  desireTask(definition: TaskDefinition, taskGuid: string, domain: string): Task;
  task(taskGuid: string): Task;
  taskRecord(taskGuid: string, format: TaskFormat): Buffer;
  tasks(filter: TaskFilter): Task[];
  taskRecords(filter: TaskFilter, format: TaskFormat): Buffer[];
  cancelTask(taskGuid: string): Task;
  resolvingTask(taskGuid: string): Task;
  deleteTask(taskGuid: string): void;
  /** Applies a state change a cell reports (start, complete, fail, reject); emits task_changed. */
  changeTask(taskGuid: string, change: (task: Task) => Task): TaskChange;

  desireLrp(lrp: DesiredLRP, traceId?: string): DesiredLRP;
  desiredLrp(processGuid: string): DesiredLRP;
  desiredLrpRecord(processGuid: string, format: DesiredLrpFormat): Buffer;
  desiredLrps(filter: DesiredLrpFilter): DesiredLRP[];
  desiredLrpRecords(filter: DesiredLrpFilter, format: DesiredLrpFormat): Buffer[];
  schedulingInfos(filter: DesiredLrpFilter): DesiredLRPSchedulingInfo[];
  updateDesiredLrp(processGuid: string, update: DesiredLRPUpdate, traceId?: string): { before: DesiredLRP; after: DesiredLRP };
  removeDesiredLrp(processGuid: string, traceId?: string): void;

  actualLrp(processGuid: string, index: number, presence?: ActualLRP_Presence): ActualLRP | undefined;
  actualLrps(filter: ActualLrpFilter): ActualLRP[];
  actualLrpRecords(filter: ActualLrpFilter): Buffer[];
  /** Creates the UNCLAIMED record of an index unless one exists; emits actual_lrp_instance_created. */
  createUnclaimedActualLrp(key: ActualLRPKey, traceId?: string): ActualLRP | undefined;
  /**
   * Inserts any record (an evacuating copy, a running instance a cell reports that the BBS lost);
   * ResourceExists when that key and presence exist. Emits actual_lrp_instance_created.
   */
  createActualLrp(lrp: ActualLRP, traceId?: string): ActualLRP;
  /** Applies a change (claim, start, crash, evacuate...); emits actual_lrp_instance_changed. */
  changeActualLrp(
    processGuid: string,
    index: number,
    presence: ActualLRP_Presence,
    change: (lrp: ActualLRP) => ActualLRP,
    traceId?: string,
  ): ActualLrpChange;
  /** Deletes one record; emits actual_lrp_instance_removed. */
  removeActualLrp(processGuid: string, index: number, presence: ActualLRP_Presence, traceId?: string): ActualLRP;
  /** Stops one instance for good: removed when no cell holds it, otherwise its cell is told. */
  retireActualLrp(key: ActualLRPKey, traceId?: string): void;

  cellPresences(): CellPresence[];

  /**
   * Runs several reads and writes as one SQLite transaction (the cell-side state rules,
   * evacuation, convergence); the events and port calls it queues go out after it commits.
   */
  transaction<T>(work: (tx: BbsTransaction) => T): T;
}

/** Writes an event for, unless told not to: some changes announce themselves differently. */
export interface EmitOption {
  emit?: boolean;
}

/**
 * The store inside one transaction. Writes emit the matching instance or task event by default;
 * ports (auctions, stops, completions) are called once the transaction has committed.
 */
export interface BbsTransaction {
  nowNs(): string;
  newGuid(): string;

  actualLrp(processGuid: string, index: number, presence?: ActualLRP_Presence): ActualLRP | undefined;
  /** Every record (ordinary, evacuating) of one index. */
  actualLrpsAt(processGuid: string, index: number): ActualLRP[];
  /** ResourceExists when that key and presence exist. */
  insertActualLrp(lrp: ActualLRP, traceId: string, options?: EmitOption): void;
  replaceActualLrp(before: ActualLRP, after: ActualLRP, traceId: string, options?: EmitOption): void;
  deleteActualLrp(lrp: ActualLRP, traceId: string, options?: EmitOption): void;
  emitActualLrpCreated(lrp: ActualLRP, traceId: string): void;
  emitActualLrpChanged(before: ActualLRP, after: ActualLRP, traceId: string): void;
  emitActualLrpRemoved(lrp: ActualLRP, traceId: string): void;
  emitActualLrpCrashed(before: ActualLRP, after: ActualLRP): void;
  /** Creates the UNCLAIMED record of an index unless one exists. */
  createUnclaimedActualLrp(key: ActualLRPKey, traceId: string): ActualLRP | undefined;
  /** Stops one ordinary instance for good: removed when no cell holds it, else its cell is told. */
  retireActualLrp(lrp: ActualLRP, traceId: string): void;

  desiredLrp(processGuid: string): DesiredLRP | undefined;

  task(taskGuid: string): Task | undefined;
  replaceTask(before: Task, after: Task): void;
  deleteTask(task: Task): void;

  requestLrpAuctions(schedulingInfo: DesiredLRPSchedulingInfo, indices: number[]): void;
  requestTaskAuction(task: Task): void;
  stopLrpInstance(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey): void;
  cancelTaskOnCell(cellId: string, taskGuid: string): void;
  taskCompleted(task: Task): void;
  /** Anything else to do once the transaction has committed. */
  afterCommit(action: () => void): void;
}

type Outbox = Array<() => void>;

export function createBbs(options: BbsOptions): Bbs {
  const { db, clock, lrpEvents, taskEvents } = options;
  const logger = options.logger.child({ session: 'bbs' });
  const newGuid = options.newGuid ?? randomUUID;
  let ports: DiegoPorts = options.ports ?? {};

  const domains = createDomainTable(db);
  const tasks = createTaskTable(db);
  const desiredLrps = createDesiredLrpTable(db);
  const actualLrps = createActualLrpTable(db);
  const cells = createCellRegistry(clock);

  const nowNs = () => clock.nowNs().toString();

  /** Runs work in one transaction and publishes what it queued once the transaction commits. */
  function transact<T>(work: (outbox: Outbox) => T): T {
    const outbox: Outbox = [];
    const result = db.transaction(() => work(outbox))();
    for (const publish of outbox) {
      try {
        publish();
      } catch (err) {
        logger.error({ err }, 'failed-to-publish-change');
      }
    }
    return result;
  }

  // ------------------------------------------------------------ events

  /** Encodes an event only when someone listens: bulk writes with no stream open pay nothing. */
  const publish = (hub: EventHub, name: EventName, encode: () => Uint8Array, cellId?: string) => {
    if (hub.subscriberCount > 0) hub.emit(name, encode(), cellId);
  };

  const emitTask = {
    created: (task: Task) => publish(taskEvents, 'task_created', () => TaskCreatedEvent.encode({ task }).finish()),
    changed: (before: Task, after: Task) =>
      publish(taskEvents, 'task_changed', () => TaskChangedEvent.encode({ before, after }).finish()),
    removed: (task: Task) => publish(taskEvents, 'task_removed', () => TaskRemovedEvent.encode({ task }).finish()),
  };

  const emitDesired = {
    created: (desiredLrp: DesiredLRP, traceId: string) =>
      publish(lrpEvents, 'desired_lrp_created', () => DesiredLRPCreatedEvent.encode({ desiredLrp, traceId }).finish()),
    changed: (before: DesiredLRP, after: DesiredLRP, traceId: string) =>
      publish(lrpEvents, 'desired_lrp_changed', () => DesiredLRPChangedEvent.encode({ before, after, traceId }).finish()),
    removed: (desiredLrp: DesiredLRP, traceId: string) =>
      publish(lrpEvents, 'desired_lrp_removed', () => DesiredLRPRemovedEvent.encode({ desiredLrp, traceId }).finish()),
  };

  const cellOf = (lrp: ActualLRP) => lrp.actualLrpInstanceKey?.cellId ?? '';
  const emitActual = {
    created: (actualLrp: ActualLRP, traceId: string) =>
      publish(
        lrpEvents,
        'actual_lrp_instance_created',
        () => ActualLRPInstanceCreatedEvent.encode({ actualLrp, traceId }).finish(),
        cellOf(actualLrp),
      ),
    changed: (before: ActualLRP, after: ActualLRP, traceId: string) =>
      publish(
        lrpEvents,
        'actual_lrp_instance_changed',
        () =>
          ActualLRPInstanceChangedEvent.encode({
            actualLrpKey: after.actualLrpKey,
            actualLrpInstanceKey: after.actualLrpInstanceKey,
            before: actualLrpInfo(before),
            after: actualLrpInfo(after),
            traceId,
          }).finish(),
        cellOf(after),
      ),
    removed: (actualLrp: ActualLRP, traceId: string) =>
      publish(
        lrpEvents,
        'actual_lrp_instance_removed',
        () => ActualLRPInstanceRemovedEvent.encode({ actualLrp, traceId }).finish(),
        cellOf(actualLrp),
      ),
    // The BBS's NewActualLRPCrashedEvent: the key after, the instance key that crashed (before).
    crashed: (before: ActualLRP, after: ActualLRP) =>
      publish(
        lrpEvents,
        'actual_lrp_crashed',
        () =>
          ActualLRPCrashedEvent.encode({
            actualLrpKey: after.actualLrpKey,
            actualLrpInstanceKey: before.actualLrpInstanceKey,
            crashCount: after.crashCount,
            crashReason: after.crashReason,
            since: after.since,
          }).finish(),
        cellOf(before),
      ),
  };

  /** Calls a port after commit; a failing port is logged, never fails the request. */
  const callPort = (name: string, call: () => void) => {
    try {
      call();
    } catch (err) {
      logger.error({ err, port: name }, 'diego-port-failed');
    }
  };

  // ------------------------------------------------------------ tasks

  const taskOrThrow = (taskGuid: string): Task => {
    const task = tasks.find(taskGuid);
    if (task === undefined) throw resourceNotFound();
    return task;
  };

  function changeTaskIn(outbox: Outbox, taskGuid: string, change: (task: Task) => Task): TaskChange {
    const before = taskOrThrow(taskGuid);
    const after = change(before);
    tasks.replace(after);
    outbox.push(() => emitTask.changed(before, after));
    return { before, after };
  }

  // ------------------------------------------------------------ actual LRPs

  const unclaimedActualLrp = (key: ActualLRPKey): ActualLRP => ({
    actualLrpKey: { processGuid: key.processGuid, index: key.index, domain: key.domain },
    actualLrpInstanceKey: { instanceGuid: '', cellId: '' },
    actualLrpNetInfo: { address: '', ports: [], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' },
    crashCount: 0,
    crashReason: '',
    state: ActualLrpState.UNCLAIMED,
    placementError: '',
    since: nowNs(),
    modificationTag: { epoch: newGuid(), index: 0 },
    presence: ActualLRP_Presence.PRESENCE_ORDINARY,
    actualLrpInternalRoutes: [],
    metricTags: {},
    routable: false,
    availabilityZone: '',
  });

  function createUnclaimedIn(outbox: Outbox, key: ActualLRPKey, traceId: string): ActualLRP | undefined {
    const lrp = unclaimedActualLrp(key);
    if (!actualLrps.insert(lrp)) return undefined;
    outbox.push(() => emitActual.created(lrp, traceId));
    return lrp;
  }

  function removeActualIn(outbox: Outbox, lrp: ActualLRP, traceId: string): void {
    const key = lrp.actualLrpKey!;
    if (!actualLrps.remove(key.processGuid, key.index, lrp.presence)) throw resourceNotFound();
    outbox.push(() => emitActual.removed(lrp, traceId));
  }

  /** Instances no cell holds are removed at once; the others are stopped by their cell. */
  function stopInstanceIn(outbox: Outbox, lrp: ActualLRP, traceId: string): void {
    const cellId = cellOf(lrp);
    const heldByCell = lrp.state === ActualLrpState.CLAIMED || lrp.state === ActualLrpState.RUNNING;
    const stop = ports.stopLrpInstance;
    if (!heldByCell || cellId === '' || cells.find(cellId) === undefined || stop === undefined) {
      removeActualIn(outbox, lrp, traceId);
      return;
    }
    const key = lrp.actualLrpKey!;
    const instanceKey = lrp.actualLrpInstanceKey!;
    outbox.push(() => callPort('stop-lrp-instance', () => stop(key, instanceKey)));
  }

  /** Stops every ordinary instance of processGuid from index fromIndex up (scale down, remove). */
  function stopInstancesFromIn(outbox: Outbox, processGuid: string, fromIndex: number, traceId: string): void {
    for (const lrp of actualLrps.list({ processGuid })) {
      if (lrp.presence === ActualLRP_Presence.PRESENCE_EVACUATING) continue;
      if ((lrp.actualLrpKey?.index ?? 0) < fromIndex) continue;
      stopInstanceIn(outbox, lrp, traceId);
    }
  }

  function startInstanceRangeIn(outbox: Outbox, lrp: DesiredLRP, lower: number, upper: number, traceId: string): void {
    const created: number[] = [];
    for (let index = lower; index < upper; index++) {
      const key = { processGuid: lrp.processGuid, index, domain: lrp.domain };
      if (createUnclaimedIn(outbox, key, traceId) !== undefined) created.push(index);
    }
    const auction = ports.requestLrpAuctions;
    if (created.length > 0 && auction !== undefined) {
      const schedulingInfo = schedulingInfoOf(lrp);
      outbox.push(() => callPort('request-lrp-auctions', () => auction(schedulingInfo, created)));
    }
  }

  // ------------------------------------------------------------ desired LRPs

  const desiredOrThrow = (processGuid: string): DesiredLRP => {
    const lrp = desiredLrps.find(processGuid);
    if (lrp === undefined) throw resourceNotFound();
    return lrp;
  };

  return {
    clock,
    cells,
    lrpEvents,
    taskEvents,
    setPorts(next) {
      ports = next;
    },

    upsertDomain(domain, ttlSeconds) {
      domains.upsert(domain, ttlSeconds === 0 ? undefined : clock.nowMs() + ttlSeconds * 1000);
      logger.debug({ domain, ttl_seconds: ttlSeconds }, 'domain-upserted');
    },
    freshDomains: () => domains.fresh(clock.nowMs()),

    desireTask(definition, taskGuid, domain) {
      return transact((outbox) => {
        const now = nowNs();
        const task: Task = {
          taskDefinition: definition,
          taskGuid,
          domain,
          createdAt: now,
          updatedAt: now,
          firstCompletedAt: '0',
          state: Task_State.STATE_PENDING,
          cellId: '',
          result: '',
          failed: false,
          failureReason: '',
          rejectionCount: 0,
          rejectionReason: '',
        };
        if (!tasks.insert(task)) throw resourceExists();
        outbox.push(() => emitTask.created(task));
        const auction = ports.requestTaskAuction;
        if (auction !== undefined) outbox.push(() => callPort('request-task-auction', () => auction(task)));
        logger.debug({ task_guid: taskGuid, domain }, 'task-desired');
        return task;
      });
    },
    task: taskOrThrow,
    taskRecord(taskGuid, format) {
      const record = tasks.findRecord(taskGuid, format);
      if (record === undefined) throw resourceNotFound();
      return record;
    },
    tasks: (filter) => tasks.list(filter),
    taskRecords: (filter, format) => tasks.records(filter, format),

    cancelTask(taskGuid) {
      return transact((outbox) => {
        const { before, after } = changeTaskIn(outbox, taskGuid, (task) => {
          // Pending and Running tasks can be cancelled; finished ones cannot (task_db.go).
          if (task.state !== Task_State.STATE_PENDING && task.state !== Task_State.STATE_RUNNING) {
            throw taskTransitionError(task.state, Task_State.STATE_COMPLETED);
          }
          const now = nowNs();
          return {
            ...task,
            state: Task_State.STATE_COMPLETED,
            failed: true,
            failureReason: TASK_CANCELLED_REASON,
            result: '',
            cellId: '',
            updatedAt: now,
            firstCompletedAt: now,
          };
        });
        const cancelOnCell = ports.cancelTaskOnCell;
        if (before.cellId !== '' && cancelOnCell !== undefined) {
          outbox.push(() => callPort('cancel-task-on-cell', () => cancelOnCell(before.cellId, taskGuid)));
        }
        const completed = ports.taskCompleted;
        if (completed !== undefined) outbox.push(() => callPort('task-completed', () => completed(after)));
        logger.debug({ task_guid: taskGuid, cell_id: before.cellId }, 'task-cancelled');
        return after;
      });
    },

    resolvingTask(taskGuid) {
      return transact(
        (outbox) =>
          changeTaskIn(outbox, taskGuid, (task) => {
            if (task.state !== Task_State.STATE_COMPLETED) {
              throw taskTransitionError(task.state, Task_State.STATE_RESOLVING);
            }
            return { ...task, state: Task_State.STATE_RESOLVING, updatedAt: nowNs() };
          }).after,
      );
    },

    deleteTask(taskGuid) {
      transact((outbox) => {
        const task = taskOrThrow(taskGuid);
        // Only a task someone is resolving may go (task_db.go DeleteTask).
        if (task.state !== Task_State.STATE_RESOLVING) {
          throw taskTransitionError(task.state, Task_State.STATE_RESOLVING);
        }
        tasks.remove(taskGuid);
        outbox.push(() => emitTask.removed(task));
      });
    },

    changeTask: (taskGuid, change) => transact((outbox) => changeTaskIn(outbox, taskGuid, change)),

    desireLrp(requested, traceId = '') {
      return transact((outbox) => {
        const lrp = populateMetricsGuid({ ...requested, modificationTag: { epoch: newGuid(), index: 0 } });
        if (!desiredLrps.insert(lrp)) throw resourceExists();
        outbox.push(() => emitDesired.created(lrp, traceId));
        startInstanceRangeIn(outbox, lrp, 0, lrp.instances, traceId);
        logger.debug({ process_guid: lrp.processGuid, instances: lrp.instances }, 'desired-lrp-desired');
        return lrp;
      });
    },
    desiredLrp: desiredOrThrow,
    desiredLrpRecord(processGuid, format) {
      const record = desiredLrps.findRecord(processGuid, format);
      if (record === undefined) throw resourceNotFound();
      return record;
    },
    desiredLrps: (filter) => desiredLrps.list(filter),
    desiredLrpRecords: (filter, format) => desiredLrps.records(filter, format),
    schedulingInfos: (filter) => desiredLrps.schedulingInfos(filter),

    updateDesiredLrp(processGuid, update, traceId = '') {
      return transact((outbox) => {
        const before = desiredOrThrow(processGuid);
        const after = applyDesiredLrpUpdate(before, update);
        desiredLrps.replace(after);
        outbox.push(() => emitDesired.changed(before, after, traceId));
        if (update.instances !== undefined) {
          if (after.instances > before.instances) {
            startInstanceRangeIn(outbox, after, before.instances, after.instances, traceId);
          } else if (after.instances < before.instances) {
            stopInstancesFromIn(outbox, processGuid, after.instances, traceId);
          }
        }
        logger.debug(
          { process_guid: processGuid, instances: after.instances, modification_index: after.modificationTag?.index },
          'desired-lrp-updated',
        );
        return { before, after };
      });
    },

    removeDesiredLrp(processGuid, traceId = '') {
      transact((outbox) => {
        const lrp = desiredOrThrow(processGuid);
        desiredLrps.remove(processGuid);
        outbox.push(() => emitDesired.removed(lrp, traceId));
        stopInstancesFromIn(outbox, processGuid, 0, traceId);
        logger.debug({ process_guid: processGuid }, 'desired-lrp-removed');
      });
    },

    actualLrp: (processGuid, index, presence = ActualLRP_Presence.PRESENCE_ORDINARY) =>
      actualLrps.find(processGuid, index, presence),
    actualLrps: (filter) => actualLrps.list(filter),
    actualLrpRecords: (filter) => actualLrps.records(filter),

    createUnclaimedActualLrp: (key, traceId = '') => transact((outbox) => createUnclaimedIn(outbox, key, traceId)),

    createActualLrp(lrp, traceId = '') {
      return transact((outbox) => {
        if (lrp.actualLrpKey === undefined || !actualLrps.insert(lrp)) throw resourceExists();
        outbox.push(() => emitActual.created(lrp, traceId));
        return lrp;
      });
    },

    changeActualLrp(processGuid, index, presence, change, traceId = '') {
      return transact((outbox) => {
        const before = actualLrps.find(processGuid, index, presence);
        if (before === undefined) throw resourceNotFound();
        const after = change(before);
        actualLrps.replace(after);
        outbox.push(() => emitActual.changed(before, after, traceId));
        return { before, after };
      });
    },

    removeActualLrp(processGuid, index, presence, traceId = '') {
      return transact((outbox) => {
        const lrp = actualLrps.find(processGuid, index, presence);
        if (lrp === undefined) throw resourceNotFound();
        removeActualIn(outbox, lrp, traceId);
        return lrp;
      });
    },

    retireActualLrp(key, traceId = '') {
      transact((outbox) => {
        const lrp = actualLrps.find(key.processGuid, key.index, ActualLRP_Presence.PRESENCE_ORDINARY);
        if (lrp === undefined) throw resourceNotFound();
        stopInstanceIn(outbox, lrp, traceId);
        logger.debug({ process_guid: key.processGuid, index: key.index, state: lrp.state }, 'actual-lrp-retired');
      });
    },

    cellPresences: () => cells.list(),

    transaction(work) {
      return transact((outbox) => work(transactionOver(outbox)));
    },
  };

  function transactionOver(outbox: Outbox): BbsTransaction {
    const later = (name: string, call: () => void) => outbox.push(() => callPort(name, call));
    return {
      nowNs,
      newGuid,
      actualLrp: (processGuid, index, presence = ActualLRP_Presence.PRESENCE_ORDINARY) =>
        actualLrps.find(processGuid, index, presence),
      actualLrpsAt: (processGuid, index) => actualLrps.list({ processGuid, index }),
      insertActualLrp(lrp, traceId, options = {}) {
        if (lrp.actualLrpKey === undefined || !actualLrps.insert(lrp)) throw resourceExists();
        if (options.emit !== false) outbox.push(() => emitActual.created(lrp, traceId));
      },
      replaceActualLrp(before, after, traceId, options = {}) {
        actualLrps.replace(after);
        if (options.emit !== false) outbox.push(() => emitActual.changed(before, after, traceId));
      },
      deleteActualLrp(lrp, traceId, options = {}) {
        const key = lrp.actualLrpKey!;
        if (!actualLrps.remove(key.processGuid, key.index, lrp.presence)) throw resourceNotFound();
        if (options.emit !== false) outbox.push(() => emitActual.removed(lrp, traceId));
      },
      emitActualLrpCreated: (lrp, traceId) => void outbox.push(() => emitActual.created(lrp, traceId)),
      emitActualLrpChanged: (before, after, traceId) => void outbox.push(() => emitActual.changed(before, after, traceId)),
      emitActualLrpRemoved: (lrp, traceId) => void outbox.push(() => emitActual.removed(lrp, traceId)),
      emitActualLrpCrashed: (before, after) => void outbox.push(() => emitActual.crashed(before, after)),
      createUnclaimedActualLrp: (key, traceId) => createUnclaimedIn(outbox, key, traceId),
      retireActualLrp: (lrp, traceId) => stopInstanceIn(outbox, lrp, traceId),
      desiredLrp: (processGuid) => desiredLrps.find(processGuid),
      task: (taskGuid) => tasks.find(taskGuid),
      replaceTask(before, after) {
        tasks.replace(after);
        outbox.push(() => emitTask.changed(before, after));
      },
      deleteTask(task) {
        if (!tasks.remove(task.taskGuid)) throw resourceNotFound();
        outbox.push(() => emitTask.removed(task));
      },
      requestLrpAuctions(schedulingInfo, indices) {
        const auction = ports.requestLrpAuctions;
        if (auction !== undefined && indices.length > 0) later('request-lrp-auctions', () => auction(schedulingInfo, indices));
      },
      requestTaskAuction(task) {
        const auction = ports.requestTaskAuction;
        if (auction !== undefined) later('request-task-auction', () => auction(task));
      },
      stopLrpInstance(key, instanceKey) {
        const stop = ports.stopLrpInstance;
        if (stop !== undefined) later('stop-lrp-instance', () => stop(key, instanceKey));
      },
      cancelTaskOnCell(cellId, taskGuid) {
        const cancel = ports.cancelTaskOnCell;
        if (cancel !== undefined) later('cancel-task-on-cell', () => cancel(cellId, taskGuid));
      },
      taskCompleted(task) {
        const completed = ports.taskCompleted;
        if (completed !== undefined) later('task-completed', () => completed(task));
      },
      afterCommit: (action) => void outbox.push(action),
    };
  }
}

/** The part of an ActualLRP that changes, as actual_lrp_instance_changed carries it. */
export function actualLrpInfo(lrp: ActualLRP): ActualLRPInfo {
  return {
    actualLrpNetInfo: lrp.actualLrpNetInfo,
    crashCount: lrp.crashCount,
    crashReason: lrp.crashReason,
    state: lrp.state,
    placementError: lrp.placementError,
    since: lrp.since,
    modificationTag: lrp.modificationTag,
    presence: lrp.presence,
    routable: lrp.routable,
    availabilityZone: lrp.availabilityZone,
  };
}

/**
 * metrics_guid and the source_id metric tag name the same thing; the BBS fills whichever is
 * missing from the other (DesiredLRP.PopulateMetricsGuid). Done once at write time here, so the
 * stored bytes are what every read returns.
 */
export function populateMetricsGuid(lrp: DesiredLRP): DesiredLRP {
  const sourceId = lrp.metricTags['source_id'];
  if (sourceId !== undefined && lrp.metricsGuid === '') return { ...lrp, metricsGuid: sourceId.static };
  if (sourceId === undefined && lrp.metricsGuid !== '') {
    return { ...lrp, metricTags: { ...lrp.metricTags, source_id: { static: lrp.metricsGuid, dynamic: 0 } } };
  }
  return lrp;
}

/**
 * Only instances, routes, annotation, metric tags and image credentials change in place; every
 * other field of the update request is ignored (there is none on the wire), and the modification
 * tag's index goes up by one.
 */
export function applyDesiredLrpUpdate(lrp: DesiredLRP, update: DesiredLRPUpdate): DesiredLRP {
  const tag = lrp.modificationTag ?? { epoch: '', index: 0 };
  const updated: DesiredLRP = {
    ...lrp,
    instances: update.instances ?? lrp.instances,
    routes: update.routes ?? lrp.routes,
    annotation: update.annotation ?? lrp.annotation,
    // An empty map is the same as none on the wire: it leaves the tags alone.
    metricTags: Object.keys(update.metricTags).length > 0 ? update.metricTags : lrp.metricTags,
    imageUsername: update.imageUsername ?? lrp.imageUsername,
    imagePassword: update.imagePassword ?? lrp.imagePassword,
    modificationTag: { epoch: tag.epoch, index: tag.index + 1 },
  };
  if (Object.keys(update.metricTags).length === 0) return updated;
  // New tags with a source_id rename the metrics guid; without one they inherit it.
  const renamed = update.metricTags['source_id'] !== undefined;
  return populateMetricsGuid(renamed ? { ...updated, metricsGuid: '' } : updated);
}
