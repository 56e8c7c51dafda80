// A Diego task on this cell: a fresh container with the task's rootfs, environment and limits,
// its action tree, then the first 10 KB of its result file; the container is destroyed whatever
// happened. Memory over the limit is caught by the container's watchdog, which kills the
// processes, and the run step then fails with "Exited with status 137 (out of memory)".
import type { TaskDefinition } from '../../../gen/diego/bbs/v1/task.js';
import type { Logger } from '../../../lib/log.js';
import type { ActionRunner } from './actions.js';
import type { Container, ContainerSpec } from './container.js';
import type { PrepareRoot } from './roots.js';
import { imageCredentialsOf, rootFailureReason } from './roots.js';
import { CANCELLED_REASON, failure, type LogSink } from './types.js';

/** Diego hands at most this much of a task's result file to the BBS. */
export const MAX_RESULT_FILE_BYTES = 10 * 1024;

export interface TaskRunnerOptions {
  createContainer(spec: Omit<ContainerSpec, 'dataDir'>): Promise<Container>;
  actions: ActionRunner;
  logger: Logger;
  /** The container root for a task's root_fs (an image is pulled); throws for a rootfs this cell cannot provide. */
  prepareRoot: PrepareRoot;
  hostServicePorts: number[];
  resultFileMaxBytes?: number;
}

export interface TaskRunRequest {
  taskGuid: string;
  definition: TaskDefinition;
  logSink: LogSink;
  /** Aborting it cancels the task: its processes are stopped and its container destroyed. */
  signal?: AbortSignal;
}

export interface TaskRunResult {
  failed: boolean;
  failureReason: string;
  result: string;
}

export interface TaskRunner {
  runTask(request: TaskRunRequest): Promise<TaskRunResult>;
}

/** The user that reads the result file: root inside the container, like Diego's executor. */
const RESULT_FILE_USER = 'root';

export function createTaskRunner(options: TaskRunnerOptions): TaskRunner {
  const log = options.logger.child({ session: 'executor.task' });
  const maxResult = options.resultFileMaxBytes ?? MAX_RESULT_FILE_BYTES;
  return {
    async runTask({ taskGuid, definition, logSink, signal = new AbortController().signal }) {
      const taskLog = log.child({ task_guid: taskGuid });
      let root: Awaited<ReturnType<PrepareRoot>>;
      try {
        root = await options.prepareRoot(definition.rootFs, imageCredentialsOf(definition), signal);
      } catch (error) {
        if (signal.aborted) return { ...failure(CANCELLED_REASON), result: '' };
        taskLog.error({ err: { message: (error as Error).message } }, 'failed-to-prepare-task-root');
        return { ...failure(rootFailureReason(error)), result: '' };
      }
      let container: Container;
      try {
        container = await options.createContainer({
          guid: taskGuid,
          rootfs: root.rootfs,
          readOnlyBinds: root.readOnlyBinds,
          env: [...root.env, ...definition.environmentVariables],
          ports: [],
          memoryMb: definition.memoryMb,
          diskMb: definition.diskMb,
          logSink,
          logSource: definition.logSource,
          hostServicePorts: options.hostServicePorts,
        });
      } catch (error) {
        root.release();
        taskLog.error({ err: { message: (error as Error).message } }, 'failed-to-create-task-container');
        return { ...failure(`failed to create container: ${(error as Error).message}`), result: '' };
      }
      try {
        taskLog.info({}, 'running-task');
        const outcome = await options.actions.run(definition.action, { container, signal, logSource: definition.logSource, logSink });
        if (signal.aborted) return { ...failure(CANCELLED_REASON), result: '' };
        if (outcome.failed) {
          taskLog.info({ failure_reason: outcome.failureReason }, 'task-failed');
          return { ...outcome, result: '' };
        }
        let result = '';
        if (definition.resultFile !== '') {
          try {
            result = (await container.readFile(definition.resultFile, maxResult, RESULT_FILE_USER, signal)).toString('utf8');
          } catch (error) {
            if (signal.aborted) return { ...failure(CANCELLED_REASON), result: '' };
            return { ...failure(`failed to read the result file: ${(error as Error).message}`), result: '' };
          }
        }
        taskLog.info({}, 'task-succeeded');
        return { failed: false, failureReason: '', result };
      } finally {
        await container.destroy();
        root.release();
      }
    },
  };
}
