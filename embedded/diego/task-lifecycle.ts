// The cell-side life of a task, with the BBS's rules (controllers/task_controller.go,
// db/sqldb/task_db.go): Pending -> Running on the cell that starts it -> Completed (failed or not,
// with its result), a rejection sending it back to Pending until the retry limit fails it. Every
// completion goes to the task-completed port, which fires the completion callback.
import { Task_State, type Task } from '../../gen/diego/bbs/v1/task.js';
import type { Logger } from '../../lib/log.js';
import { truncateReason } from './actual-lrp-lifecycle.js';
import type { Bbs, BbsTransaction } from './bbs.js';
import { badRequest, resourceNotFound, runningOnDifferentCell, taskTransitionError } from './errors.js';

export interface TaskLifecycleOptions {
  bbs: Bbs;
  /** Rejections a task survives before it fails (BBS max_task_retries: 3). */
  maxTaskRetries: number;
  logger: Logger;
}

export interface TaskLifecycle {
  /** Pending -> Running on cellId; false when that cell already runs it (do not start twice). */
  start(taskGuid: string, cellId: string): boolean;
  complete(taskGuid: string, cellId: string, failed: boolean, failureReason: string, result: string): void;
  fail(taskGuid: string, failureReason: string): void;
  reject(taskGuid: string, rejectionReason: string): void;
  /** Completes a task as failed inside a caller's transaction (convergence). */
  failIn(tx: BbsTransaction, task: Task, failureReason: string): void;
}

/** The BBS's Task.ValidateTransitionTo. */
function validateTransition(task: Task, to: Task_State): void {
  const from = task.state;
  const valid =
    (to === Task_State.STATE_RUNNING && from === Task_State.STATE_PENDING) ||
    (to === Task_State.STATE_COMPLETED && from === Task_State.STATE_RUNNING) ||
    (to === Task_State.STATE_RESOLVING && from === Task_State.STATE_COMPLETED);
  if (!valid) throw taskTransitionError(from, to);
}

export function createTaskLifecycle(options: TaskLifecycleOptions): TaskLifecycle {
  const { bbs, maxTaskRetries } = options;
  const logger = options.logger.child({ session: 'task-lifecycle' });

  const taskOrThrow = (tx: BbsTransaction, taskGuid: string) => {
    const task = tx.task(taskGuid);
    if (task === undefined) throw resourceNotFound();
    return task;
  };

  function completeIn(tx: BbsTransaction, before: Task, failed: boolean, failureReason: string, result: string): void {
    const now = tx.nowNs();
    const after: Task = {
      ...before,
      state: Task_State.STATE_COMPLETED,
      updatedAt: now,
      firstCompletedAt: now,
      failed,
      failureReason: truncateReason(failureReason),
      result,
      cellId: '',
    };
    tx.replaceTask(before, after);
    tx.taskCompleted(after);
    logger.info({ task_guid: before.taskGuid, failed, cell_id: before.cellId }, 'task-completed');
  }

  function failIn(tx: BbsTransaction, task: Task, failureReason: string): void {
    // Pending tasks may fail too (never placed); otherwise only a running one completes.
    if (task.state !== Task_State.STATE_PENDING) validateTransition(task, Task_State.STATE_COMPLETED);
    completeIn(tx, task, true, failureReason, '');
  }

  return {
    start(taskGuid, cellId) {
      return bbs.transaction((tx) => {
        const before = taskOrThrow(tx, taskGuid);
        if (before.state === Task_State.STATE_RUNNING && before.cellId === cellId) return false;
        validateTransition(before, Task_State.STATE_RUNNING);
        tx.replaceTask(before, { ...before, state: Task_State.STATE_RUNNING, updatedAt: tx.nowNs(), cellId });
        return true;
      });
    },

    complete(taskGuid, cellId, failed, failureReason, result) {
      bbs.transaction((tx) => {
        const before = taskOrThrow(tx, taskGuid);
        if (before.state === Task_State.STATE_RUNNING && before.cellId !== cellId) {
          throw runningOnDifferentCell(cellId, before.cellId);
        }
        validateTransition(before, Task_State.STATE_COMPLETED);
        completeIn(tx, before, failed, failureReason, result);
      });
    },

    fail(taskGuid, failureReason) {
      bbs.transaction((tx) => failIn(tx, taskOrThrow(tx, taskGuid), failureReason));
    },

    reject(taskGuid, rejectionReason) {
      bbs.transaction((tx) => {
        const before = taskOrThrow(tx, taskGuid);
        if (before.rejectionCount >= maxTaskRetries) {
          failIn(tx, before, rejectionReason);
          return;
        }
        if (before.state !== Task_State.STATE_PENDING && before.state !== Task_State.STATE_RUNNING) throw badRequest();
        // Back to Pending, on no cell; the next task kick places it again.
        tx.replaceTask(before, {
          ...before,
          state: Task_State.STATE_PENDING,
          cellId: '',
          rejectionCount: before.rejectionCount + 1,
          rejectionReason: truncateReason(rejectionReason),
          updatedAt: tx.nowNs(),
        });
        logger.info({ task_guid: taskGuid, rejection_count: before.rejectionCount + 1 }, 'task-rejected');
      });
    },

    failIn,
  };
}
