// StagerService: CC's staging requests become Diego staging tasks; the tasks' completion
// callbacks become staging results posted to CC (the 2015 stager's three routes).
import { Status, type CallContext } from 'nice-grpc';
import type { StagerServiceImplementation } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import type { StagingResponseForCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { StagingResponseForCC as StagingResponseForCCFns } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { Task } from '../../gen/diego/bbs/v1/task.js';
import { BridgeError, invalidArgument, notFound, pack, unavailable } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { Counter, Histogram, type Registry } from '../../lib/metrics.js';
import {
  buildStagingTask,
  stagingErrorResponse,
  stagingLifecycleFromAnnotation,
  stagingResponseFromTaskCallback,
  StagingRecipeError,
  type StagingRecipeConfig,
  type StagingTask,
} from './recipe/index.js';

/** What the Stager needs from Diego; adapters translate the BBS's errors into these results. */
export interface StagerDiego {
  /** 'exists' when a task with this guid is already desired (a repeated stage). */
  desireTask(task: StagingTask, requestId?: string): Promise<'created' | 'exists'>;
  /** The task, or undefined when there is none. */
  taskByGuid(taskGuid: string, requestId?: string): Promise<Task | undefined>;
  cancelTask(taskGuid: string, requestId?: string): Promise<void>;
}

/** CC's side: POST /internal/staging/:guid/completed. */
export interface StagerCc {
  /** Resolves on CC's 200; rejects with the status CC gave, or as unreachable. */
  stagingCompleted(stagingGuid: string, response: StagingResponseForCC, options: { requestId?: string }): Promise<void>;
}

/** How a CC failure is told apart: a status to pass on, or CC not reached at all. */
export interface StagerCcErrors {
  statusOf(error: unknown): number | undefined;
}

export interface StagerDependencies {
  diego: StagerDiego;
  cc: StagerCc;
  ccErrors: StagerCcErrors;
  recipe: StagingRecipeConfig;
  logger: Logger;
  metrics?: Registry;
  /** Nanoseconds since the epoch; injectable for tests. */
  nowNs?: () => bigint;
}

const CC_TYPE = 'cloudfoundry.ccbridge.cc.v1.StagingResponseForCC';

export function createStagerService(deps: StagerDependencies): StagerServiceImplementation {
  const log = deps.logger.child({ session: 'stager' });
  const nowNs = deps.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n);
  const registers = deps.metrics ? [deps.metrics] : [];
  const received = new Counter({ name: 'ccbridge_staging_requests_received_total', help: 'Staging requests received', labelNames: ['lifecycle'], registers });
  const stopReceived = new Counter({ name: 'ccbridge_staging_stop_requests_received_total', help: 'Stop-staging requests received', registers });
  const outcomes = new Counter({ name: 'ccbridge_staging_requests_completed_total', help: 'Staging tasks completed, by outcome', labelNames: ['outcome'], registers });
  const durations = new Histogram({
    name: 'ccbridge_staging_duration_seconds',
    help: 'From the staging task being desired to its completion, by outcome',
    labelNames: ['outcome'],
    buckets: [5, 15, 30, 60, 120, 300, 600, 900, 1800],
    registers,
  });

  /** The Stage route's 500: CC's staging error body with the sanitized message. */
  function stagingFailed(reason: string, message: string, cause?: unknown): BridgeError {
    return new BridgeError(Status.INTERNAL, reason, 'staging failed', {
      body: pack(CC_TYPE, StagingResponseForCCFns, stagingErrorResponse(message)),
      cause,
    });
  }

  return {
    async stage(request, context) {
      const requestId = requestIdOf(context);
      const body = request.request;
      if (!body) throw invalidArgument('MISSING_BODY', 'missing staging request');
      const session = log.child({ staging_guid: request.stagingGuid, request_id: requestId, lifecycle: body.lifecycle });
      let task: StagingTask;
      try {
        task = buildStagingTask(request.stagingGuid, body, deps.recipe);
      } catch (error) {
        if (error instanceof StagingRecipeError && error.reason === 'UNKNOWN_LIFECYCLE') throw error;
        received.inc({ lifecycle: body.lifecycle });
        if (error instanceof BridgeError) {
          session.info({ reason: error.reason }, 'invalid-staging-request');
          throw error;
        }
        session.error({ err: error }, 'failed-building-staging-task');
        throw stagingFailed('RECIPE_ERROR', '', error);
      }
      received.inc({ lifecycle: body.lifecycle });
      try {
        const outcome = await deps.diego.desireTask(task, requestId);
        session.info({ outcome }, 'desired-staging-task');
      } catch (error) {
        session.error({ err: error }, 'failed-desiring-staging-task');
        throw stagingFailed('DIEGO_UNAVAILABLE', (error as Error).message, error);
      }
      return {};
    },

    async stopStaging(request, context) {
      const requestId = requestIdOf(context);
      const session = log.child({ staging_guid: request.stagingGuid, request_id: requestId });
      let task: Task | undefined;
      try {
        task = await deps.diego.taskByGuid(request.stagingGuid, requestId);
      } catch (error) {
        session.error({ err: error }, 'failed-fetching-staging-task');
        throw unavailable('DIEGO_UNAVAILABLE', 'failed to read the staging task');
      }
      if (!task) throw notFound('TASK_NOT_FOUND', `staging task ${request.stagingGuid} not found`);
      try {
        JSON.parse(task.taskDefinition?.annotation ?? '');
      } catch {
        throw new BridgeError(Status.INTERNAL, 'INVALID_ANNOTATION', 'the task is not a staging task');
      }
      stopReceived.inc();
      // As the original: the answer does not wait for the cancel, whose failure is only logged.
      deps.diego.cancelTask(request.stagingGuid, requestId).then(
        () => session.info('cancelled-staging-task'),
        (error: unknown) => session.error({ err: error }, 'failed-cancelling-staging-task'),
      );
      return {};
    },

    async stagingCompleted(request, context) {
      const requestId = requestIdOf(context);
      const callback = request.task;
      if (!callback) throw invalidArgument('MISSING_BODY', 'missing task');
      if (callback.taskGuid !== request.stagingGuid) {
        throw invalidArgument('TASK_GUID_MISMATCH', `task guid ${callback.taskGuid} differs from staging guid ${request.stagingGuid}`);
      }
      const session = log.child({ staging_guid: request.stagingGuid, request_id: requestId, failed: callback.failed });
      const lifecycle = stagingLifecycleFromAnnotation(callback.annotation);
      const response = stagingResponseFromTaskCallback(callback, lifecycle);
      try {
        await deps.cc.stagingCompleted(request.stagingGuid, response, { requestId });
      } catch (error) {
        const status = deps.ccErrors.statusOf(error);
        if (status === undefined) {
          session.error({ err: error }, 'cc-unreachable');
          throw unavailable('CC_UNREACHABLE', 'Cloud Controller could not be reached');
        }
        session.error({ status }, 'cc-refused-staging-response');
        // CC's status goes back to Diego as it was: 503/504 make Diego keep the task and call again.
        throw new BridgeError(status === 503 || status === 504 ? Status.UNAVAILABLE : Status.FAILED_PRECONDITION, 'CC_STATUS', `Cloud Controller answered ${status}`, {
          httpStatus: status,
        });
      }
      const outcome = callback.failed ? 'failed' : 'succeeded';
      outcomes.inc({ outcome });
      const createdAt = BigInt(callback.createdAt || '0');
      if (createdAt > 0n) durations.observe({ outcome }, Math.max(0, Number(nowNs() - createdAt) / 1e9));
      session.info({ outcome }, 'staging-completed');
      return {};
    },
  };
}

function requestIdOf(context: CallContext): string | undefined {
  return context.metadata.get('x-vcap-request-id');
}
