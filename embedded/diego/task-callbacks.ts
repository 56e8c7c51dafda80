// Task completion callbacks, as the BBS's task completion work pool does them
// (taskworkpool/taskcallback.go): a completed task with a completion_callback_url is first marked
// Resolving, then its TaskCallbackResponse is POSTed as JSON. Up to three attempts; only a client
// timeout or a closed connection, or a 503 / 504 answer, leads to another attempt. Any other
// answer deletes the task. A task left Resolving (503 / 504 every time, or the receiver refused
// the connection) is demoted to Completed by the next task kick and its callback fires again,
// until the completed task expires.
//
// Callbacks only go to loopback addresses or to the URL prefixes the operator configured: the
// embedded Diego reaches no other network.
import type { Task } from '../../gen/diego/bbs/v1/task.js';
import type { Logger } from '../../lib/log.js';
import { tlsFetch, type ClientTls } from '../../lib/tls-fetch.js';
import type { Bbs } from './bbs.js';
import { DiegoError } from './errors.js';

/** The BBS's MAX_CB_RETRIES. */
export const CALLBACK_ATTEMPTS = 3;
/** Callbacks waiting for a worker; beyond this they are dropped (the next task kick resends them). */
const MAX_QUEUED_CALLBACKS = 10_000;

export interface TaskCallbacksOptions {
  bbs: Bbs;
  logger: Logger;
  /** One attempt's deadline. */
  timeoutMs: number;
  /** Callbacks in flight at once. */
  maxWorkers: number;
  /** Non-loopback URLs callbacks may go to (prefix match, e.g. "https://cc.internal:9023/"). */
  allowedUrlPrefixes: readonly string[];
  /** For https callback URLs: the receiver's CA and this BBS's client certificate. */
  tls?: ClientTls;
  /** The Authorization header for a callback URL, if any (an in-process receiver's basic auth). */
  authorizationFor?: (url: string) => string | undefined;
}

export interface TaskCallbacks {
  /** A task reached Completed; its callback runs when a worker is free. */
  taskCompleted(task: Task): void;
  /** Resolves when no callback is queued or in flight (tests). */
  settled(): Promise<void>;
  /** Aborts callbacks in flight and drops the queue. */
  close(): Promise<void>;
}

/** The JSON the BBS posts (Go's encoding of TaskCallbackResponse): created_at is a bare int64. */
export function taskCallbackJson(task: Task): string {
  const fields = [
    `"task_guid":${JSON.stringify(task.taskGuid)}`,
    `"failed":${task.failed}`,
    `"failure_reason":${JSON.stringify(task.failureReason)}`,
    `"result":${JSON.stringify(task.result)}`,
  ];
  const annotation = task.taskDefinition?.annotation ?? '';
  // The annotation's JSON tag is omitempty.
  if (annotation !== '') fields.push(`"annotation":${JSON.stringify(annotation)}`);
  fields.push(`"created_at":${BigInt(task.createdAt || '0').toString()}`);
  return `{${fields.join(',')}}`;
}

/** Loopback only, unless the operator allowed a prefix. */
export function callbackUrlAllowed(url: string, allowedUrlPrefixes: readonly string[]): boolean {
  if (allowedUrlPrefixes.some((prefix) => url.startsWith(prefix))) return true;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return false;
  const host = parsed.hostname;
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Go retries on "Client.Timeout" and "use of closed network connection"; these are Node's forms. */
function closedConnection(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? '';
  return ['UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNRESET', 'EPIPE'].includes(code) || /other side closed/.test(cause?.message ?? '');
}

export function createTaskCallbacks(options: TaskCallbacksOptions): TaskCallbacks {
  const { bbs } = options;
  const logger = options.logger.child({ session: 'task-callbacks' });
  const queue: Task[] = [];
  const fetch = tlsFetch(options.tls);
  const closing = new AbortController();
  const idleWaiters: (() => void)[] = [];
  let active = 0;

  const wakeIdle = () => {
    if (active === 0 && queue.length === 0) for (const resolve of idleWaiters.splice(0)) resolve();
  };

  const pump = () => {
    while (!closing.signal.aborted && active < options.maxWorkers && queue.length > 0) {
      const task = queue.shift()!;
      active++;
      handle(task)
        .catch((err: unknown) => logger.error({ err, task_guid: task.taskGuid }, 'task-callback-crashed'))
        .finally(() => {
          active--;
          pump();
          wakeIdle();
        });
    }
    wakeIdle();
  };

  function settled(): Promise<void> {
    if (active === 0 && queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => idleWaiters.push(resolve));
  }

  async function handle(task: Task): Promise<void> {
    const url = task.taskDefinition?.completionCallbackUrl ?? '';
    const taskLogger = logger.child({ task_guid: task.taskGuid });
    try {
      bbs.resolvingTask(task.taskGuid);
    } catch (error) {
      if (!(error instanceof DiegoError)) throw error;
      taskLogger.info({ error: error.message }, 'marking-task-as-resolving-failed');
      return;
    }
    if (!callbackUrlAllowed(url, options.allowedUrlPrefixes)) {
      // Left Resolving: the kick demotes it and the completed task expires in the end.
      taskLogger.error('task-callback-url-not-allowed');
      return;
    }
    const body = taskCallbackJson(task);
    const authorization = options.authorizationFor?.(url);
    let status = 0;
    for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS; attempt++) {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          body,
          headers: authorization === undefined ? { 'Content-Type': 'application/json' } : { 'Content-Type': 'application/json', Authorization: authorization },
          redirect: 'manual',
          signal: AbortSignal.any([timeout, closing.signal]),
        });
      } catch (error) {
        if (closing.signal.aborted) return;
        if (timeout.aborted || closedConnection(error)) {
          taskLogger.info({ attempt }, 'task-callback-attempt-failed');
          continue;
        }
        taskLogger.info({ err: error }, 'task-callback-request-failed');
        return;
      }
      status = response.status;
      await response.arrayBuffer().catch(() => undefined);
      if (status !== 503 && status !== 504) {
        try {
          bbs.deleteTask(task.taskGuid);
        } catch (error) {
          if (!(error instanceof DiegoError)) throw error;
          taskLogger.info({ error: error.message }, 'delete-task-failed');
        }
        taskLogger.info({ status }, 'task-callback-delivered');
        return;
      }
    }
    taskLogger.info({ status }, 'task-callback-failed');
  }

  return {
    taskCompleted(task) {
      if (closing.signal.aborted || !task.taskDefinition?.completionCallbackUrl) return;
      if (queue.length >= MAX_QUEUED_CALLBACKS) {
        logger.error({ task_guid: task.taskGuid }, 'task-callback-queue-full');
        return;
      }
      queue.push(task);
      pump();
    },
    settled,
    async close() {
      queue.length = 0;
      closing.abort();
      await settled();
    },
  };
}
