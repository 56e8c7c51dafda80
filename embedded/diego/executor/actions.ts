// The Diego action tree, performed in a container as Diego's executor performs it
// (spec/ccbridge-2015.md §2.1, spec/diego-today.md §1.5):
//
//   download     fetch (cached by cache_key, checksum checked), extract .tgz / .tar / .zip into `to`
//   upload       a file as it is, a directory as a .tgz of its contents, POSTed to `to`
//   run          a process; a status other than 0 fails with "Exited with status N"
//   timeout      fails with "exceeded <d> timeout" when its action runs longer (and stops it)
//   emit_progress  start / success messages, "<prefix>: <reason>" on failure
//   try          swallows its action's failure
//   serial       one after another, stops at the first failure
//   parallel     all at once, waits for all; the first failure wins
//   codependent  all at once; the first to exit stops the others and the step fails
//
// Cancelling (the AbortSignal in the context) stops every process of the tree (SIGTERM, SIGKILL
// after the grace period) and makes every step report CANCELLED_REASON; nothing keeps running.
// Process arguments and environments never reach a log line: they carry credentials.
import { randomUUID } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type {
  Action,
  CodependentAction,
  DownloadAction,
  EmitProgressAction,
  ParallelAction,
  RunAction,
  SerialAction,
  TimeoutAction,
  TryAction,
  UploadAction,
} from '../../../gen/diego/bbs/v1/actions.js';
import type { Logger } from '../../../lib/log.js';
import type { Container } from './container.js';
import { sniffArchive, type Downloaded, type Downloader } from './download.js';
import type { Uploader } from './upload.js';
import { CANCELLED_REASON, displayUrl, failure, goDuration, guarded, humanBytes, OK, type ActionResult, type LogSink } from './types.js';

export interface ActionRunnerOptions {
  downloader: Downloader;
  uploader: Uploader;
  logger: Logger;
  /** Where uploads are staged on the host before they are sent. */
  tmpDir: string;
  /** SIGTERM to SIGKILL when a cancelled or timed-out tree stops its processes. */
  stopGraceMs: number;
}

export interface ActionContext {
  container: Container;
  /** Aborting it cancels the tree. */
  signal: AbortSignal;
  /** The log source of actions that name none (the task's or LRP's log_source). */
  logSource: string;
  logSink: LogSink;
  /** Overrides the runner's grace period for this tree. */
  stopGraceMs?: number;
}

export interface ActionRunner {
  run(action: Action | undefined, context: ActionContext): Promise<ActionResult>;
}

/** Diego's default user when an action names none. */
const DEFAULT_USER = 'vcap';

const CANCELLED = Object.freeze(failure(CANCELLED_REASON));

type Chosen =
  | { kind: 'download'; model: DownloadAction }
  | { kind: 'upload'; model: UploadAction }
  | { kind: 'run'; model: RunAction }
  | { kind: 'timeout'; model: TimeoutAction }
  | { kind: 'emit_progress'; model: EmitProgressAction }
  | { kind: 'try'; model: TryAction }
  | { kind: 'parallel'; model: ParallelAction }
  | { kind: 'serial'; model: SerialAction }
  | { kind: 'codependent'; model: CodependentAction };

/** The action's one value; when several are set, the first in field order, as the BBS takes it. */
export function chooseAction(action: Action): Chosen | undefined {
  if (action.downloadAction) return { kind: 'download', model: action.downloadAction };
  if (action.uploadAction) return { kind: 'upload', model: action.uploadAction };
  if (action.runAction) return { kind: 'run', model: action.runAction };
  if (action.timeoutAction) return { kind: 'timeout', model: action.timeoutAction };
  if (action.emitProgressAction) return { kind: 'emit_progress', model: action.emitProgressAction };
  if (action.tryAction) return { kind: 'try', model: action.tryAction };
  if (action.parallelAction) return { kind: 'parallel', model: action.parallelAction };
  if (action.serialAction) return { kind: 'serial', model: action.serialAction };
  if (action.codependentAction) return { kind: 'codependent', model: action.codependentAction };
  return undefined;
}

/** The timeout of a timeout action in ms: timeout_ms, else the deprecated nanoseconds. */
export function timeoutMsOf(model: TimeoutAction): number {
  const ms = Number(model.timeoutMs || '0');
  if (ms > 0) return ms;
  try {
    return Number(BigInt(model.deprecatedTimeoutNs || '0') / 1_000_000n);
  } catch {
    return 0;
  }
}

/** A controller aborted with its parent, which the step may also abort on its own. */
function linkedController(parent: AbortSignal): { controller: AbortController; dispose(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(parent.reason);
  if (parent.aborted) onAbort();
  else parent.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener('abort', onAbort) };
}

export function createActionRunner(options: ActionRunnerOptions): ActionRunner {
  const log = options.logger.child({ session: 'executor.actions' });

  const emit = (context: ActionContext, message: string, stream: 'OUT' | 'ERR' = 'OUT') =>
    guarded(context.logSink, (error) => log.error({ err: { message: (error as Error).message } }, 'log-sink-failed'))({
      source: context.logSource,
      message,
      stream,
    });

  async function perform(action: Action | undefined, context: ActionContext): Promise<ActionResult> {
    if (context.signal.aborted) return CANCELLED;
    if (action === undefined) return failure('invalid action: none given');
    const chosen = chooseAction(action);
    if (chosen === undefined) return failure('invalid action: none of its fields is set');
    const inner: ActionContext = { ...context, logSource: chosen.model.logSource || context.logSource };
    switch (chosen.kind) {
      case 'download':
        return download(chosen.model, inner);
      case 'upload':
        return upload(chosen.model, inner);
      case 'run':
        return run(chosen.model, inner);
      case 'timeout':
        return timeout(chosen.model, inner);
      case 'emit_progress':
        return emitProgress(chosen.model, inner);
      case 'try':
        return attempt(chosen.model, inner);
      case 'serial':
        return serial(chosen.model.actions, inner);
      case 'parallel':
        return parallel(chosen.model.actions, inner);
      case 'codependent':
        return codependent(chosen.model.actions, inner);
    }
  }

  async function download(model: DownloadAction, context: ActionContext): Promise<ActionResult> {
    if (model.artifact) emit(context, `Downloading ${model.artifact}...`);
    let fetched: Downloaded | undefined;
    try {
      fetched = await options.downloader.fetch({
        url: model.from,
        cacheKey: model.cacheKey,
        checksumAlgorithm: model.checksumAlgorithm,
        checksumValue: model.checksumValue,
        signal: context.signal,
      });
      const format = await sniffArchive(fetched.path);
      if (format === undefined) throw new Error(`${displayUrl(model.from)} is not a .tgz, .tar or .zip archive`);
      await context.container.streamIn({ path: fetched.path, format }, streamInPath(model.to), model.user || DEFAULT_USER, context.signal);
      if (model.artifact) emit(context, `Downloaded ${model.artifact} (${humanBytes(fetched.size)})`);
      log.info({ container_guid: context.container.guid, url: displayUrl(model.from), from_cache: fetched.fromCache, bytes: fetched.size }, 'downloaded');
      return OK;
    } catch (error) {
      if (context.signal.aborted) return CANCELLED;
      const reason = (error as Error).message;
      log.info({ container_guid: context.container.guid, url: displayUrl(model.from), err: { message: reason } }, 'download-failed');
      if (model.artifact) emit(context, `Downloading ${model.artifact} failed`, 'ERR');
      return failure(`Downloading failed: ${reason}`);
    } finally {
      await fetched?.release();
    }
  }

  async function upload(model: UploadAction, context: ActionContext): Promise<ActionResult> {
    if (model.artifact) emit(context, `Uploading ${model.artifact}...`);
    const staged = join(options.tmpDir, `upload-${randomUUID()}`);
    try {
      await mkdir(options.tmpDir, { recursive: true });
      const file = await open(staged, 'w', 0o600);
      try {
        await context.container.streamOut(model.from, model.user || DEFAULT_USER, file, context.signal);
      } finally {
        await file.close();
      }
      const { size } = await options.uploader.upload({ file: staged, url: model.to, signal: context.signal });
      if (model.artifact) emit(context, `Uploaded ${model.artifact} (${humanBytes(size)})`);
      log.info({ container_guid: context.container.guid, url: displayUrl(model.to), bytes: size }, 'uploaded');
      return OK;
    } catch (error) {
      if (context.signal.aborted) return CANCELLED;
      const reason = (error as Error).message;
      log.info({ container_guid: context.container.guid, url: displayUrl(model.to), err: { message: reason } }, 'upload-failed');
      if (model.artifact) emit(context, `Uploading ${model.artifact} failed`, 'ERR');
      return failure(`Uploading failed: ${reason}`);
    } finally {
      await rm(staged, { force: true });
    }
  }

  async function run(model: RunAction, context: ActionContext): Promise<ActionResult> {
    const nofile = Number(model.resourceLimits?.nofile ?? '0');
    const handle = context.container.run({
      path: model.path,
      args: model.args,
      dir: model.dir,
      env: model.env,
      user: model.user || DEFAULT_USER,
      nofile: nofile > 0 ? nofile : undefined,
      logSource: context.logSource,
      suppressLogOutput: model.suppressLogOutput,
    });
    const onAbort = () => void handle.stop(context.stopGraceMs ?? options.stopGraceMs);
    if (context.signal.aborted) onAbort();
    else context.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { exitStatus } = await handle.exited;
      const outOfMemory = context.container.outOfMemory ? ' (out of memory)' : '';
      // Diego writes the status into the process's log as its last line.
      if (!model.suppressLogOutput) emit(context, `Exit status ${exitStatus}${outOfMemory}`);
      if (context.signal.aborted) return CANCELLED;
      if (exitStatus === 0) return OK;
      log.info({ container_guid: context.container.guid, exit_status: exitStatus, out_of_memory: outOfMemory !== '' }, 'process-failed');
      return failure(`Exited with status ${exitStatus}${outOfMemory}`);
    } finally {
      context.signal.removeEventListener('abort', onAbort);
    }
  }

  async function timeout(model: TimeoutAction, context: ActionContext): Promise<ActionResult> {
    const ms = timeoutMsOf(model);
    if (!(ms > 0)) return failure('invalid timeout action: no timeout');
    const { controller, dispose } = linkedController(context.signal);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timed out'));
    }, ms);
    try {
      const result = await perform(model.action, { ...context, signal: controller.signal });
      if (context.signal.aborted) return CANCELLED;
      // A step that finished just as the timer fired keeps its own outcome.
      if (timedOut && result.failed) return failure(`exceeded ${goDuration(ms)} timeout`);
      return result;
    } finally {
      clearTimeout(timer);
      dispose();
    }
  }

  async function emitProgress(model: EmitProgressAction, context: ActionContext): Promise<ActionResult> {
    if (model.startMessage) emit(context, model.startMessage);
    const result = await perform(model.action, context);
    if (context.signal.aborted) return result;
    if (!result.failed) {
      if (model.successMessage) emit(context, model.successMessage);
    } else if (model.failureMessagePrefix) {
      emit(context, `${model.failureMessagePrefix}: ${result.failureReason}`, 'ERR');
    }
    return result;
  }

  async function attempt(model: TryAction, context: ActionContext): Promise<ActionResult> {
    const result = await perform(model.action, context);
    if (context.signal.aborted) return CANCELLED;
    if (result.failed) log.info({ container_guid: context.container.guid, reason: result.failureReason }, 'try-swallowed-failure');
    return OK;
  }

  async function serial(actions: Action[], context: ActionContext): Promise<ActionResult> {
    for (const action of actions) {
      const result = await perform(action, context);
      if (result.failed) return result;
    }
    return context.signal.aborted ? CANCELLED : OK;
  }

  async function parallel(actions: Action[], context: ActionContext): Promise<ActionResult> {
    let first: ActionResult | undefined;
    await Promise.all(
      actions.map(async (action) => {
        const result = await perform(action, context);
        if (result.failed) first ??= result;
      }),
    );
    if (context.signal.aborted) return CANCELLED;
    return first ?? OK;
  }

  async function codependent(actions: Action[], context: ActionContext): Promise<ActionResult> {
    if (actions.length === 0) return OK;
    const { controller, dispose } = linkedController(context.signal);
    let first: ActionResult | undefined;
    try {
      await Promise.all(
        actions.map(async (action) => {
          const result = await perform(action, { ...context, signal: controller.signal });
          if (first === undefined) {
            first = result;
            controller.abort(new Error('codependent step exited'));
          }
        }),
      );
    } finally {
      dispose();
    }
    if (context.signal.aborted) return CANCELLED;
    // The first to exit ends the step, and the step always fails: an app that exits is a crash.
    return first!.failed ? first! : failure('Codependent step exited');
  }

  return {
    run: (action, context) => perform(action, context),
  };
}

/**
 * Where a download lands: Garden streams a relative path in from the user's home directory, and
 * recipes rely on it (a buildpack app's droplet is unpacked into "." = /home/vcap).
 */
function streamInPath(to: string): string {
  return posix.isAbsolute(to) ? to : posix.join('/home/vcap', to);
}
