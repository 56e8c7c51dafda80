// Convergence: the periodic passes that bring what runs back in line with what is desired, as
// the BBS's LRP and task convergence do (controllers/lrp_convergence_controller.go,
// db/sqldb/lrp_convergence.go, db/sqldb/task_convergence.go).
//
// LRPs: cells whose presence expired are forgotten; evacuating copies on cells that are gone are
// removed; instances on missing cells are unclaimed and placed again; indices below the desired
// count with no record are created and placed; UNCLAIMED instances left unplaced for a while are
// placed again; crashed instances whose backoff has passed restart. Destructive work — stopping
// indices at or above the desired count, and instances whose desired LRP is gone — happens only
// in fresh domains, so a consumer that has not finished syncing never loses instances.
//
// Tasks: Pending tasks too old fail ("not started within time limit"), the rest are placed again
// each kick; Running tasks on missing cells fail ("cell disappeared before completion"); tasks left
// Resolving go back to Completed and their callback fires again; completed tasks expire.
import { ActualLRP_Presence, type ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { Task_State } from '../../gen/diego/bbs/v1/task.js';
import type { Logger } from '../../lib/log.js';
import { requestAuctionIn, unclaimIn } from './actual-lrp-lifecycle.js';
import { ActualLrpState, type Bbs } from './bbs.js';
import type { CellRegistry } from './cells.js';
import type { Clock } from './clock.js';
import { DiegoError } from './errors.js';
import { mayRestart, type RestartPolicy } from './restart-policy.js';
import { createConvergenceQueries } from './store/convergence.js';
import { schedulingInfoOf } from './store/desired-lrps.js';
import type { DiegoDatabase } from './store/schema.js';
import type { TaskLifecycle } from './task-lifecycle.js';

export const TASK_NOT_STARTED_REASON = 'not started within time limit';
export const CELL_DISAPPEARED_REASON = 'cell disappeared before completion';

export interface ConvergenceTiming {
  /** UNCLAIMED instances older than this are placed again (BBS: 30 s). */
  staleUnclaimedMs: number;
  /** Pending tasks are placed again, and unresolved callbacks fired again, after this (BBS: 30 s). */
  taskKickMs: number;
  /** Pending tasks older than this fail (BBS: 30 min). */
  expirePendingTaskMs: number;
  /** Completed tasks nobody resolved are deleted after this (BBS: 2 min). */
  expireCompletedTaskMs: number;
}

export interface ConvergenceOptions {
  bbs: Bbs;
  db: DiegoDatabase;
  cells: CellRegistry;
  tasks: TaskLifecycle;
  clock: Clock;
  logger: Logger;
  restartPolicy: RestartPolicy;
  timing: ConvergenceTiming;
}

/** What one LRP pass did, by reason (logged; tests read it). */
export interface LrpConvergenceReport {
  disappearedCells: string[];
  evacuatingRemoved: number;
  missingCellInstances: number;
  missingInstances: number;
  extraInstances: number;
  orphanedInstances: number;
  staleUnclaimed: number;
  restartedCrashes: number;
}

export interface TaskConvergenceReport {
  expiredPending: number;
  kickedPending: number;
  failedOnMissingCells: number;
  demotedResolving: number;
  expiredCompleted: number;
  callbacksResent: number;
}

export interface Convergence {
  convergeLrps(): LrpConvergenceReport;
  convergeTasks(): TaskConvergenceReport;
}

const msToNs = (ms: number) => BigInt(Math.round(ms * 1_000_000));

export function createConvergence(options: ConvergenceOptions): Convergence {
  const { bbs, cells, clock, timing, restartPolicy } = options;
  const logger = options.logger.child({ session: 'convergence' });
  const queries = createConvergenceQueries(options.db);

  /** One item's work in its own transaction; an item that changed meanwhile is skipped. */
  const eachSafely = <T>(items: readonly T[], what: string, work: (item: T) => boolean): number => {
    let done = 0;
    for (const item of items) {
      try {
        if (work(item)) done++;
      } catch (error) {
        if (!(error instanceof DiegoError)) throw error;
        logger.debug({ error: error.message, what }, 'convergence-item-skipped');
      }
    }
    return done;
  };

  const sameRecord = (a: ActualLRP | undefined, b: ActualLRP) =>
    a !== undefined && a.state === b.state && a.modificationTag?.index === b.modificationTag?.index;

  function convergeLrps(): LrpConvergenceReport {
    const now = clock.nowNs();
    const disappearedCells = cells.expireStale();
    for (const cellId of disappearedCells) logger.info({ cell_id: cellId }, 'cell-disappeared');
    const present = cells.list().map((cell) => cell.cellId);
    const presentSet = new Set(present);
    const fresh = bbs.freshDomains();

    const evacuatingRemoved = eachSafely(
      queries.evacuatingLrps().filter((lrp) => !presentSet.has(lrp.actualLrpInstanceKey?.cellId ?? '')),
      'evacuating-on-missing-cell',
      (lrp) =>
        bbs.transaction((tx) => {
          const key = lrp.actualLrpKey!;
          const current = tx.actualLrp(key.processGuid, key.index, ActualLRP_Presence.PRESENCE_EVACUATING);
          if (!sameRecord(current, lrp)) return false;
          tx.deleteActualLrp(current!, '');
          return true;
        }),
    );

    const missingCellInstances = eachSafely(queries.lrpsOnMissingCells(present), 'missing-cell', (lrp) =>
      bbs.transaction((tx) => {
        const key = lrp.actualLrpKey!;
        const current = tx.actualLrp(key.processGuid, key.index);
        if (!sameRecord(current, lrp)) return false;
        unclaimIn(tx, current!, '');
        requestAuctionIn(tx, key);
        logger.info({ process_guid: key.processGuid, index: key.index, cell_id: lrp.actualLrpInstanceKey?.cellId }, 'unclaiming-instance-on-missing-cell');
        return true;
      }),
    );

    let missingInstances = 0;
    let extraInstances = 0;
    for (const mismatch of queries.instanceCountMismatches()) {
      const existing = new Set(mismatch.indices);
      const missing: number[] = [];
      for (let index = 0; index < mismatch.instances; index++) if (!existing.has(index)) missing.push(index);
      if (missing.length > 0) {
        bbs.transaction((tx) => {
          const desired = tx.desiredLrp(mismatch.processGuid);
          if (desired === undefined) return;
          const created = missing.filter(
            (index) => tx.createUnclaimedActualLrp({ processGuid: desired.processGuid, index, domain: desired.domain }, '') !== undefined,
          );
          tx.requestLrpAuctions(schedulingInfoOf(desired), created);
          missingInstances += created.length;
        });
        logger.info({ process_guid: mismatch.processGuid, indices: missing }, 'creating-missing-instances');
      }
      // Stopping instances is destructive: only where the domain is fresh.
      if (!fresh.includes(mismatch.domain)) continue;
      const extras = mismatch.indices.filter((index) => index >= mismatch.instances);
      extraInstances += eachSafely(extras, 'extra-instance', (index) =>
        bbs.transaction((tx) => {
          const lrp = tx.actualLrp(mismatch.processGuid, index);
          if (lrp === undefined) return false;
          tx.retireActualLrp(lrp, '');
          return true;
        }),
      );
      if (extras.length > 0) logger.info({ process_guid: mismatch.processGuid, indices: extras }, 'retiring-extra-instances');
    }

    const orphanedInstances = eachSafely(queries.orphanedLrps(fresh), 'orphaned-instance', (lrp) =>
      bbs.transaction((tx) => {
        const key = lrp.actualLrpKey!;
        const current = tx.actualLrp(key.processGuid, key.index);
        if (current === undefined || tx.desiredLrp(key.processGuid) !== undefined) return false;
        tx.retireActualLrp(current, '');
        logger.info({ process_guid: key.processGuid, index: key.index }, 'retiring-undesired-instance');
        return true;
      }),
    );

    const staleBefore = now - msToNs(timing.staleUnclaimedMs);
    const staleUnclaimed = eachSafely(queries.staleUnclaimedLrps(staleBefore), 'stale-unclaimed', (item) =>
      bbs.transaction((tx) => {
        const current = tx.actualLrp(item.processGuid, item.index);
        if (current?.state !== ActualLrpState.UNCLAIMED) return false;
        requestAuctionIn(tx, current.actualLrpKey!);
        return true;
      }),
    );

    const restartedCrashes = eachSafely(
      queries.crashedLrps().filter((crash) => mayRestart(restartPolicy, now, crash.since, crash.crashCount)),
      'crashed-instance',
      (crash) =>
        bbs.transaction((tx) => {
          const current = tx.actualLrp(crash.processGuid, crash.index);
          if (current?.state !== ActualLrpState.CRASHED || tx.desiredLrp(crash.processGuid) === undefined) return false;
          unclaimIn(tx, current, '');
          requestAuctionIn(tx, current.actualLrpKey!);
          logger.info({ process_guid: crash.processGuid, index: crash.index, crash_count: crash.crashCount }, 'restarting-crashed-instance');
          return true;
        }),
    );

    const report = {
      disappearedCells,
      evacuatingRemoved,
      missingCellInstances,
      missingInstances,
      extraInstances,
      orphanedInstances,
      staleUnclaimed,
      restartedCrashes,
    };
    logger.debug(report, 'lrp-convergence-done');
    return report;
  }

  function convergeTasks(): TaskConvergenceReport {
    const now = clock.nowNs();
    const present = cells.list().map((cell) => cell.cellId);
    const kickBefore = now - msToNs(timing.taskKickMs);
    const pendingExpiry = now - msToNs(timing.expirePendingTaskMs);

    const failTask = (state: Task_State, reason: string) => (taskGuid: string) =>
      bbs.transaction((tx) => {
        const task = tx.task(taskGuid);
        if (task?.state !== state) return false;
        options.tasks.failIn(tx, task, reason);
        return true;
      });

    const expiredPending = eachSafely(
      queries.tasksCreatedBefore(Task_State.STATE_PENDING, pendingExpiry),
      'expired-pending-task',
      failTask(Task_State.STATE_PENDING, TASK_NOT_STARTED_REASON),
    );

    const kickedPending = eachSafely(queries.pendingTasksToKick(kickBefore, pendingExpiry), 'pending-task', (taskGuid) =>
      bbs.transaction((tx) => {
        const task = tx.task(taskGuid);
        if (task?.state !== Task_State.STATE_PENDING) return false;
        tx.requestTaskAuction(task);
        return true;
      }),
    );

    const failedOnMissingCells = eachSafely(
      queries.runningTasksOnMissingCells(present),
      'task-on-missing-cell',
      failTask(Task_State.STATE_RUNNING, CELL_DISAPPEARED_REASON),
    );

    // Demoted tasks keep their updated_at, so the resend below picks them up in this same pass.
    const demotedResolving = eachSafely(
      queries.tasksUpdatedBefore(Task_State.STATE_RESOLVING, kickBefore),
      'resolving-task',
      (taskGuid) =>
        bbs.transaction((tx) => {
          const task = tx.task(taskGuid);
          if (task?.state !== Task_State.STATE_RESOLVING) return false;
          tx.replaceTask(task, { ...task, state: Task_State.STATE_COMPLETED });
          return true;
        }),
    );

    const expiredCompleted = eachSafely(
      queries.completedTasksFirstCompletedBefore(now - msToNs(timing.expireCompletedTaskMs)),
      'expired-completed-task',
      (taskGuid) =>
        bbs.transaction((tx) => {
          const task = tx.task(taskGuid);
          if (task?.state !== Task_State.STATE_COMPLETED) return false;
          tx.deleteTask(task);
          return true;
        }),
    );

    const callbacksResent = eachSafely(queries.tasksUpdatedBefore(Task_State.STATE_COMPLETED, kickBefore), 'completed-task', (taskGuid) =>
      bbs.transaction((tx) => {
        const task = tx.task(taskGuid);
        if (task?.state !== Task_State.STATE_COMPLETED || !task.taskDefinition?.completionCallbackUrl) return false;
        tx.taskCompleted(task);
        return true;
      }),
    );

    const report = { expiredPending, kickedPending, failedOnMissingCells, demotedResolving, expiredCompleted, callbacksResent };
    logger.debug(report, 'task-convergence-done');
    return report;
  }

  return { convergeLrps, convergeTasks };
}
