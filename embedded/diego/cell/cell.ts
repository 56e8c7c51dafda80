// The embedded cell: a rep for the embedded Diego that runs its work for real, in the executor's
// bubblewrap containers. Work arrives through the rep port (perform, stop an instance, cancel a
// task) and every change goes back through the BBS's cell-side routes over HTTP, as a real rep
// reports: claim and start for instances (start again when readiness changes routability),
// crash when one ends by itself, remove once a stopped one is gone, start and complete for tasks.
// Every line a container writes goes to the embedded Diego's log-cache under the work's log guid,
// and container metrics go there too, tagged so TPS finds them.
//
// Shutdown drains as a rep does: the cell stops taking work, evacuates its instances (the BBS
// keeps each as an EVACUATING copy until its replacement runs), lets tasks finish, and after a
// bounded wait stops what is left. On one machine there is no other cell to take over, so the
// bound is what ends the wait.
import type { ClientTls } from '../../../lib/tls-fetch.js';
import { ActualLRP_Presence, type ActualLRPInstanceKey, type ActualLRPKey, type ActualLRPNetInfo } from '../../../gen/diego/bbs/v1/actual_lrp.js';
import type { CellPresence } from '../../../gen/diego/bbs/v1/cells.js';
import type { DesiredLRP } from '../../../gen/diego/bbs/v1/desired_lrp.js';
import { Task_State, type Task } from '../../../gen/diego/bbs/v1/task.js';
import type { Logger } from '../../../lib/log.js';
import type { RunningInstanceDetails } from '../actual-lrp-lifecycle.js';
import { createCellClient, type CellClient } from '../cell-client.js';
import { evacuateCell, type HeldInstance } from '../cell-evacuation.js';
import { CELL_DISAPPEARED_REASON } from '../convergence.js';
import { DiegoError } from '../errors.js';
import {
  createExecutor as createRealExecutor,
  type ContainerMetricsSample,
  type Executor,
  type ExecutorOptions,
  type LogLine,
  type LrpInstance,
  type TaskRunResult,
} from '../executor/index.js';
import type { LogCache } from '../log-cache.js';
import { emptyWork, type LrpPlacement, type RepClient, type Work } from '../rep.js';
import type { CellRegistration, CellRegistrationOptions } from '../server.js';
import {
  actualNetInfoFor,
  cellPresenceFor,
  defaultCellId,
  DEFAULT_ROOTFS_PROVIDERS,
  instanceTags,
  machineCapacity,
  metricsSourceOf,
  taskTags,
  type CellCapacity,
} from './presence.js';

/** The parts of the embedded Diego a cell uses. */

/** Why an instance that a cell's earlier run held, and that died with it, is reported crashed. */
export const INSTANCE_LOST_REASON = 'container lost: its cell stopped without draining it';

export interface CellDiego {
  /** The BBS base URL; the cell reports over its cell-side routes. */
  url: string;
  /** For an https BBS: its CA and the client certificate the cell presents. */
  readonly clientTls?: ClientTls;
  registerCell(options: CellRegistrationOptions): CellRegistration;
  appendLog: LogCache['appendLog'];
  appendContainerMetrics: LogCache['appendContainerMetrics'];
}

/** Every interval, timeout and bound of the cell, in milliseconds. */
export interface CellTiming {
  /** Presence TTL; unset: the embedded Diego's cell TTL. */
  presenceTtlMs: number | undefined;
  /** Heartbeat interval; unset: a third of the TTL. */
  heartbeatIntervalMs: number | undefined;
  /** Deadline of one call to the BBS's cell routes. */
  bbsTimeoutMs: number;
  /** Tries at a report (start, crash, task completion) the BBS could not be reached for. */
  reportAttempts: number;
  reportRetryDelayMs: number;
  /** How long a graceful shutdown waits for replacements and running tasks (rep: evacuation_timeout). */
  evacuationTimeoutMs: number;
  /** Pause between the evacuation's rounds of asking the BBS. */
  evacuationPollIntervalMs: number;
}

export const DEFAULT_CELL_TIMING: CellTiming = {
  presenceTtlMs: undefined,
  heartbeatIntervalMs: undefined,
  bbsTimeoutMs: 10_000,
  reportAttempts: 3,
  reportRetryDelayMs: 500,
  evacuationTimeoutMs: 5_000,
  evacuationPollIntervalMs: 250,
};

export interface EmbeddedCellOptions {
  diego: CellDiego;
  /** Default cell-<hostname>. */
  cellId?: string;
  /** Containers, download cache and scratch space; the cell owns it while it runs. */
  dataDir: string;
  logger: Logger;
  /** What the cell offers; each figure defaults to the machine's (memory, free disk, 256 containers). */
  capacity?: Partial<CellCapacity>;
  /** Default ['preloaded:cflinuxfs4'] (the host's root, read-only), plus 'docker' when the executor has an image registry. */
  rootfsProviders?: readonly string[];
  zone?: string;
  placementTags?: readonly string[];
  optionalPlacementTags?: readonly string[];
  /** Host services containers reach as 127.0.0.1:<port> (file server, uploader, CC blobstore, registry). */
  hostServicePorts?: readonly number[];
  /** The executor's own settings (grace periods, check and metrics intervals, ...). */
  executorOptions?: Partial<Omit<ExecutorOptions, 'dataDir' | 'logger' | 'cellId' | 'hostServicePorts'>>;
  timing?: Partial<CellTiming>;
  /** Builds the executor (tests may wrap the real one). */
  createExecutor?: (options: ExecutorOptions) => Executor;
}

export interface CellCloseOptions {
  /** Drain first (default true): evacuate instances and let tasks finish, up to the evacuation timeout. */
  evacuate?: boolean;
}

export interface CellCloseResult {
  /** Instances whose replacement ran (or that were no longer wanted) before they were stopped. */
  handedOver: number;
  /** Instances stopped at the deadline, or at once without evacuation. */
  stopped: number;
  /** Tasks still running when the cell went; the BBS fails them as lost with the cell. */
  abandonedTasks: number;
}

export interface CellSnapshot {
  instances: { processGuid: string; index: number; instanceGuid: string; state: string }[];
  tasks: string[];
}

export interface EmbeddedCell {
  readonly cellId: string;
  readonly presence: CellPresence;
  /** The rep port the cell registered with (tests may call it directly). */
  readonly rep: RepClient;
  /** What the cell holds now. */
  snapshot(): CellSnapshot;
  close(options?: CellCloseOptions): Promise<CellCloseResult>;
}

/** One instance container the cell holds, from claim until its container is gone. */
interface HeldLrp {
  key: ActualLRPKey;
  instanceKey: ActualLRPInstanceKey;
  desired: DesiredLRP;
  tags: Record<string, string>;
  memoryMb: number;
  diskMb: number;
  instance: LrpInstance | undefined;
  /** Set once it runs; the address the BBS was (or will be) given. */
  netInfo: ActualLRPNetInfo | undefined;
  routable: boolean;
  /** The BBS asked for it to stop, or the cell is stopping it: nothing more is reported but its removal. */
  stopping: boolean;
  crashed: boolean;
  /** Reports go out one after another, so the BBS sees start before crash. */
  reports: Promise<void>;
}

interface HeldTask {
  task: Task;
  memoryMb: number;
  diskMb: number;
  abort: AbortController;
  /** The BBS cancelled it: it is already Completed there, so nothing is reported. */
  cancelled: boolean;
  /** The cell went away while it ran: the BBS fails it as lost with the cell. */
  abandoned: boolean;
  done: Promise<void>;
}

/** The machine's figures, with the ones the caller gives (unset ones are left to the machine). */
function withDefaults(machine: CellCapacity, given: Partial<CellCapacity> = {}): CellCapacity {
  const capacity = { ...machine };
  for (const name of ['memoryMb', 'diskMb', 'containers'] as const) {
    const value = given[name];
    if (value !== undefined) capacity[name] = value;
  }
  return capacity;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startEmbeddedCell(options: EmbeddedCellOptions): Promise<EmbeddedCell> {
  const cellId = options.cellId ?? defaultCellId();
  const timing: CellTiming = { ...DEFAULT_CELL_TIMING, ...options.timing };
  const logger = options.logger.child({ component: 'embedded-cell', cell_id: cellId });
  const { diego } = options;
  const zone = options.zone ?? '';

  // The executor checks the host first (bwrap, pasta, root) and throws one line if it cannot work.
  const executor = (options.createExecutor ?? createRealExecutor)({
    ...options.executorOptions,
    dataDir: options.dataDir,
    logger: options.logger.child({ component: 'embedded-cell-executor', cell_id: cellId }),
    cellId,
    hostServicePorts: [...(options.hostServicePorts ?? [])],
  });
  const capacity = withDefaults(machineCapacity(options.dataDir), options.capacity);
  const presence = cellPresenceFor({
    cellId,
    capacity,
    // A cell that pulls images takes docker work too (a provider without properties: any image).
    rootfsProviders: options.rootfsProviders ?? (options.executorOptions?.imageRegistry ? [...DEFAULT_ROOTFS_PROVIDERS, 'docker'] : DEFAULT_ROOTFS_PROVIDERS),
    zone,
    placementTags: options.placementTags ?? [],
    optionalPlacementTags: options.optionalPlacementTags ?? [],
  });
  const client: CellClient = createCellClient({ url: diego.url, timeoutMs: timing.bbsTimeoutMs, tls: diego.clientTls });

  const lrps = new Map<string, HeldLrp>();
  const tasks = new Map<string, HeldTask>();
  let accepting = true;
  let evacuating = false;

  // ---------------------------------------------------------------- room

  function used(): CellCapacity {
    const total = { memoryMb: 0, diskMb: 0, containers: 0 };
    for (const held of [...lrps.values(), ...tasks.values()]) {
      total.memoryMb += held.memoryMb;
      total.diskMb += held.diskMb;
      total.containers += 1;
    }
    return total;
  }

  const fits = (need: { memoryMb: number; diskMb: number }) => {
    const now = used();
    return (
      now.containers + 1 <= capacity.containers &&
      now.memoryMb + need.memoryMb <= capacity.memoryMb &&
      now.diskMb + need.diskMb <= capacity.diskMb
    );
  };

  // ---------------------------------------------------------------- reporting

  /** Runs a report, trying again when the BBS could not be reached; a BBS answer is final. */
  async function report<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (error instanceof DiegoError || attempt >= timing.reportAttempts) throw error;
        await sleep(timing.reportRetryDelayMs);
      }
    }
  }

  function appendLog(sourceId: string, instanceId: string, line: LogLine, tags: Record<string, string>): void {
    if (sourceId === '') return;
    try {
      diego.appendLog(sourceId, instanceId, line.message, line.stream, { ...tags, source_type: line.source });
    } catch (err) {
      // A closed log-cache must not take the container down with it.
      logger.debug({ err }, 'failed-to-append-log');
    }
  }

  // ---------------------------------------------------------------- tasks

  function runTask(task: Task): void {
    const definition = task.taskDefinition!;
    const taskGuid = task.taskGuid;
    const taskLog = logger.child({ task_guid: taskGuid });
    const tags = taskTags(definition);
    const abort = new AbortController();
    const held: HeldTask = {
      task,
      memoryMb: definition.memoryMb,
      diskMb: definition.diskMb,
      abort,
      cancelled: false,
      abandoned: false,
      done: Promise.resolve(),
    };
    tasks.set(taskGuid, held);
    taskLog.info({}, 'task-started');
    held.done = executor
      .runTask({
        taskGuid,
        definition,
        signal: abort.signal,
        // A task's lines go out as instance 0, as Diego logs staging ([STG/0]).
        logSink: (line) => appendLog(definition.logGuid, '0', line, tags),
      })
      .then((result) => completeTask(held, result, taskLog))
      .catch((err: unknown) => taskLog.error({ err }, 'task-failed-unexpectedly'))
      .finally(() => tasks.delete(taskGuid));
  }

  async function completeTask(held: HeldTask, result: TaskRunResult, taskLog: Logger): Promise<void> {
    if (held.cancelled) {
      // The BBS completed it as "task was cancelled" before it asked the cell to stop it; a
      // completion now would be refused as an invalid transition.
      taskLog.info({}, 'task-cancelled');
      return;
    }
    if (held.abandoned) {
      taskLog.info({}, 'task-abandoned');
      return;
    }
    try {
      await report(() => client.completeTask(held.task.taskGuid, cellId, result.failed, result.failureReason, result.result));
      taskLog.info({ failed: result.failed, failure_reason: result.failureReason }, 'task-completed');
    } catch (err) {
      taskLog.error({ err }, 'failed-to-complete-task');
    }
  }

  // ---------------------------------------------------------------- instances

  const details = (held: HeldLrp): Partial<RunningInstanceDetails> => ({
    routable: held.routable,
    metricTags: held.tags,
    availabilityZone: zone,
    internalRoutes: [],
  });

  /** Queues a report about one instance behind the ones before it. */
  function queueReport(held: HeldLrp, what: string, call: () => Promise<unknown>, onRefused?: (error: DiegoError) => void): void {
    held.reports = held.reports.then(async () => {
      try {
        await report(call);
      } catch (err) {
        if (err instanceof DiegoError && onRefused !== undefined) onRefused(err);
        instanceLog(held).info({ err, what }, 'instance-report-failed');
      }
    });
  }

  const instanceLog = (held: HeldLrp) =>
    logger.child({ process_guid: held.key.processGuid, index: held.key.index, instance_guid: held.instanceKey.instanceGuid });

  /** Stops one instance's container (SIGTERM, SIGKILL after the grace period); resolves once it is gone. */
  async function stopContainer(held: HeldLrp): Promise<void> {
    held.stopping = true;
    await held.instance?.stop();
  }

  function reportRunning(held: HeldLrp): void {
    if (held.stopping || held.crashed || held.netInfo === undefined) return;
    // While evacuating, the evacuation's rounds report running instances (evacuate_running).
    if (evacuating) return;
    const netInfo = held.netInfo;
    const given = details(held);
    queueReport(
      held,
      'start',
      () => client.start(held.key, held.instanceKey, netInfo, given),
      () => {
        // The BBS no longer has this instance as ours (removed or scaled down while it started):
        // nothing wants the container.
        void stopContainer(held);
      },
    );
  }

  function startInstance(placement: LrpPlacement): void {
    const { desired, key, instanceKey } = placement;
    const tags = instanceTags(desired, key.index, instanceKey.instanceGuid);
    const metricsSource = metricsSourceOf(desired, tags);
    const hasReadinessChecks = (desired.checkDefinition?.readinessChecks.length ?? 0) > 0;
    const held: HeldLrp = {
      key,
      instanceKey,
      desired,
      tags,
      memoryMb: desired.memoryMb,
      diskMb: desired.diskMb,
      instance: undefined,
      netInfo: undefined,
      // With readiness checks an instance takes no traffic until they first pass.
      routable: !hasReadinessChecks,
      stopping: false,
      crashed: false,
      reports: Promise.resolve(),
    };
    lrps.set(instanceKey.instanceGuid, held);
    const log = instanceLog(held);
    const instance = executor.startLrpInstance({
      desiredLrp: desired,
      index: key.index,
      instanceGuid: instanceKey.instanceGuid,
      logSink: (line) => appendLog(desired.logGuid, String(key.index), line, tags),
      metricsSink: (sample: ContainerMetricsSample) => {
        try {
          diego.appendContainerMetrics({
            sourceId: metricsSource,
            instanceId: String(key.index),
            cpuPercentage: sample.cpuPercentage,
            memoryBytes: sample.memoryBytes,
            diskBytes: sample.diskBytes,
            memoryQuotaBytes: sample.memoryQuotaBytes,
            diskQuotaBytes: sample.diskQuotaBytes,
            tags,
          });
        } catch (err) {
          log.debug({ err }, 'failed-to-append-container-metrics');
        }
      },
      onRunning: (net) => {
        held.netInfo = actualNetInfoFor(net);
        log.info({ ports: held.netInfo.ports.map((port) => port.hostPort) }, 'instance-running');
        reportRunning(held);
      },
      onReadinessChanged: (ready) => {
        held.routable = ready;
        log.info({ routable: ready }, 'instance-routability-changed');
        reportRunning(held);
      },
      onCrashed: (reason) => {
        held.crashed = true;
        log.info({ reason }, 'instance-crashed');
        if (held.stopping) return;
        // The BBS decides what follows (restart now, later, or give up) and places it again.
        if (evacuating) queueReport(held, 'evacuate-crashed', () => client.evacuateCrashed(held.key, held.instanceKey, reason));
        else queueReport(held, 'crash', () => client.crash(held.key, held.instanceKey, reason));
      },
    });
    held.instance = instance;
    void instance.done.then(async () => {
      // Reports in flight go first, so a crash is never sent for a container the map forgot.
      await held.reports;
      lrps.delete(instanceKey.instanceGuid);
    });
  }

  /** Stops an instance the BBS asked to stop, then removes its record, as a rep does. */
  async function stopAndRemove(held: HeldLrp): Promise<void> {
    const log = instanceLog(held);
    log.info({}, 'stopping-instance');
    await stopContainer(held);
    await held.reports;
    try {
      await report(() => client.remove(held.key.processGuid, held.key.index, held.instanceKey));
    } catch (err) {
      // Gone already (the desired LRP was deleted, or it crashed meanwhile): nothing to remove.
      log.info({ err }, 'instance-already-removed');
    }
    log.info({}, 'instance-stopped');
  }

  // ---------------------------------------------------------------- the rep port

  const rep: RepClient = {
    async perform(work: Work): Promise<Work> {
      const refused = emptyWork();
      if (!accepting) return work;
      for (const task of work.tasks) {
        const definition = task.taskDefinition;
        if (definition === undefined || !fits(definition)) {
          refused.tasks.push(task);
          continue;
        }
        let shouldStart: boolean;
        try {
          shouldStart = await client.startTask(task.taskGuid, cellId);
        } catch (err) {
          // Cancelled or placed elsewhere meanwhile: it is not this cell's to run.
          logger.info({ err, task_guid: task.taskGuid }, 'task-not-started');
          continue;
        }
        // Closing meanwhile: the BBS fails it as lost with the cell once the cell is gone.
        if (!accepting) continue;
        // false: this cell runs it already.
        if (shouldStart && !tasks.has(task.taskGuid)) runTask(task);
      }
      for (const placement of work.lrps) {
        if (!fits(placement.desired)) {
          refused.lrps.push(placement);
          continue;
        }
        try {
          await client.claim(placement.key.processGuid, placement.key.index, placement.instanceKey);
        } catch (err) {
          logger.info({ err, process_guid: placement.key.processGuid, index: placement.key.index }, 'instance-not-claimed');
          continue;
        }
        // Closing meanwhile: the BBS unclaims it once the cell is gone and places it elsewhere.
        if (!accepting || lrps.has(placement.instanceKey.instanceGuid)) continue;
        startInstance(placement);
      }
      if (refused.tasks.length + refused.lrps.length > 0) {
        logger.info({ tasks: refused.tasks.length, instances: refused.lrps.length }, 'work-refused-for-lack-of-room');
      }
      return refused;
    },

    async stopLrpInstance(key, instanceKey) {
      const held = lrps.get(instanceKey.instanceGuid);
      if (held === undefined) {
        // Nothing runs here for it; the record still goes, as the BBS expects of the cell.
        await client.remove(key.processGuid, key.index, instanceKey).catch(() => undefined);
        return;
      }
      await stopAndRemove(held);
    },

    async cancelTask(taskGuid) {
      const held = tasks.get(taskGuid);
      if (held === undefined) return;
      logger.info({ task_guid: taskGuid }, 'cancelling-task');
      held.cancelled = true;
      held.abort.abort(new Error('task cancelled'));
      await held.done;
    },
  };

  // ---------------------------------------------------------------- an earlier run's work

  /**
   * What the BBS still holds for this cell id from an earlier run that ended without draining
   * (the process killed, the machine down): none of it runs here now, its containers died with
   * that run. As a rep does for work it has no container for, each running task fails, with the
   * reason the BBS gives work of a vanished cell, so its completion callback tells CC; each
   * instance is reported crashed (its process did die), so it is placed again at once and the
   * crash reaches CC; an evacuating record is removed. Done before the cell registers, so
   * nothing new is placed on it meanwhile.
   */
  async function failWorkOfEarlierRun(): Promise<void> {
    let leftTasks: Task[];
    let leftInstances: Awaited<ReturnType<CellClient['actualLrpsOnCell']>>;
    try {
      [leftTasks, leftInstances] = await Promise.all([report(() => client.tasksOnCell(cellId)), report(() => client.actualLrpsOnCell(cellId))]);
    } catch (err) {
      logger.error({ err }, 'failed-to-list-work-of-an-earlier-run');
      return;
    }
    for (const task of leftTasks) {
      if (task.state !== Task_State.STATE_RUNNING) continue;
      try {
        await report(() => client.completeTask(task.taskGuid, cellId, true, CELL_DISAPPEARED_REASON, ''));
        logger.info({ task_guid: task.taskGuid }, 'failed-task-of-an-earlier-run');
      } catch (err) {
        logger.warn({ err, task_guid: task.taskGuid }, 'failed-to-fail-task-of-an-earlier-run');
      }
    }
    for (const lrp of leftInstances) {
      const key = lrp.actualLrpKey;
      const instanceKey = lrp.actualLrpInstanceKey;
      if (key === undefined || instanceKey === undefined) continue;
      try {
        if (lrp.presence === ActualLRP_Presence.PRESENCE_EVACUATING) await report(() => client.removeEvacuating(key, instanceKey));
        else if (lrp.state === 'CLAIMED' || lrp.state === 'RUNNING') await report(() => client.crash(key, instanceKey, INSTANCE_LOST_REASON));
        else continue;
        logger.info({ process_guid: key.processGuid, index: key.index, instance_guid: instanceKey.instanceGuid }, 'cleared-instance-of-an-earlier-run');
      } catch (err) {
        logger.warn({ err, process_guid: key.processGuid, index: key.index }, 'failed-to-clear-instance-of-an-earlier-run');
      }
    }
  }
  await failWorkOfEarlierRun();

  const registration = diego.registerCell({
    presence,
    rep,
    ttlMs: timing.presenceTtlMs,
    heartbeatIntervalMs: timing.heartbeatIntervalMs,
  });
  logger.info({ capacity, rootfs_providers: presence.rootfsProviders.map((p) => p.name) }, 'cell-started');

  // ---------------------------------------------------------------- shutdown

  async function drain(deadlineMs: number): Promise<{ handedOver: number; stopped: number }> {
    evacuating = true;
    registration.setEvacuating(true);
    const stops: Promise<void>[] = [];
    const result = await evacuateCell({
      client,
      logger,
      pollIntervalMs: timing.evacuationPollIntervalMs,
      timeoutMs: Math.max(deadlineMs - Date.now(), 0),
      instances: (): HeldInstance[] =>
        [...lrps.values()]
          .filter((held) => !held.stopping && !held.crashed)
          .map((held) => ({ key: held.key, instanceKey: held.instanceKey, netInfo: held.netInfo, details: details(held) })),
      // Containers are stopped side by side: one app slow to take SIGTERM must not hold up the
      // rest. So at the deadline the BBS hears evacuate_stopped while the app is still getting
      // its SIGTERM, which takes its route away before the app goes, as a drain should.
      stopContainer: async (instance) => {
        const held = lrps.get(instance.instanceKey.instanceGuid);
        if (held !== undefined) stops.push(stopContainer(held));
      },
    });
    await Promise.all(stops);
    return { handedOver: result.handedOver, stopped: result.abandoned };
  }

  async function waitForTasks(deadlineMs: number): Promise<void> {
    // Bounded by the deadline; each round waits for one task to end.
    while (tasks.size > 0 && Date.now() < deadlineMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.race([...tasks.values()].map((held) => held.done)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(deadlineMs - Date.now(), 0)))),
      ]);
      clearTimeout(timer);
    }
  }

  let closing: Promise<CellCloseResult> | undefined;
  return {
    cellId,
    presence,
    rep,
    snapshot: () => ({
      instances: [...lrps.values()].map((held) => ({
        processGuid: held.key.processGuid,
        index: held.key.index,
        instanceGuid: held.instanceKey.instanceGuid,
        state: held.instance?.state ?? 'starting',
      })),
      tasks: [...tasks.keys()],
    }),
    close(closeOptions = {}) {
      closing ??= (async () => {
        accepting = false;
        const evacuate = closeOptions.evacuate ?? true;
        logger.info({ evacuate, instances: lrps.size, tasks: tasks.size }, 'cell-stopping');
        let handedOver = 0;
        let stopped = 0;
        if (evacuate) {
          const deadlineMs = Date.now() + timing.evacuationTimeoutMs;
          const [drained] = await Promise.all([drain(deadlineMs), waitForTasks(deadlineMs)]);
          ({ handedOver, stopped } = drained);
        } else {
          const held = [...lrps.values()].filter((each) => !each.stopping);
          await Promise.all(held.map(stopAndRemove));
          stopped = held.length;
        }
        const abandoned = [...tasks.values()];
        for (const held of abandoned) {
          held.abandoned = true;
          held.abort.abort(new Error('cell stopping'));
        }
        await Promise.all(abandoned.map((held) => held.done));
        // Gone at once: the BBS fails the abandoned tasks and places unclaimed work elsewhere.
        registration.deregister();
        await executor.close();
        const result = { handedOver, stopped, abandonedTasks: abandoned.length };
        logger.info({ handed_over: handedOver, stopped, abandoned_tasks: abandoned.length }, 'cell-stopped');
        return result;
      })();
      return closing;
    },
  };
}
