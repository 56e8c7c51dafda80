// The Stager's pure builders: a CC staging request becomes the content of a BBS DesireTask, and
// a staging task's completion callback becomes the StagingResponseForCC posted to CC. No I/O,
// no clock, no logger; bad input is a StagingRecipeError. Each lifecycle plugs in through one
// map entry that builds its task and reads its builder's result.
//
// Deprecated BBS fields are never set: the timeout travels only in TimeoutAction.timeout_ms
// (deprecated_timeout_ns stays 0), legacy_download_user stays empty because every download
// action names its own user, and metrics_guid stays empty because staging emits no app
// metrics (spec §3.3 already sends ""). A BBS that still serves cells needing the deprecated
// forms derives them itself when it converts a task down for them, as today's BBS does.
//
// The task's action carries docker registry credentials in the builder's arguments, because
// the builder needs them; never log a task definition built here.
import type { StagingRequestFromCC, StagingResponseForCC, StagingTaskAnnotation } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { TaskDefinition } from '../../../gen/diego/bbs/v1/task.js';
import type { DesireTaskRequest, TaskCallbackResponse } from '../../../gen/diego/bbs/v1/task_requests.js';
import { decodeLegacyJson, LegacyJsonError } from '../../../lib/legacy-json.js';
import { BUILDPACK_LIFECYCLE, buildBuildpackStagingTaskDefinition, buildpackStagingResponse } from './buildpack.js';
import { STAGING_TASK_DOMAIN } from './common.js';
import type { StagingRecipeConfig } from './config.js';
import { DiegoErrors } from './diego-errors.js';
import { buildDockerStagingTaskDefinition, DOCKER_LIFECYCLE, dockerStagingResponse } from './docker.js';
import { StagingRecipeError } from './errors.js';
import { stagingErrorResponse } from './sanitize.js';

export { DEFAULT_STAGING_TIMEOUT_MS, lifecycleDownloadURL, parseLifecycles, stagingTimeoutMs, type StagingRecipeConfig } from './config.js';
export { DiegoErrors } from './diego-errors.js';
export { STAGING_RECIPE_ERROR_CODES, StagingRecipeError, type StagingRecipeErrorReason } from './errors.js';
export { sanitizeStagingFailure, stagingErrorResponse } from './sanitize.js';
export { STAGING_TASK_DOMAIN } from './common.js';

/** What the Stager desires: a DesireTaskRequest whose task definition is always set. */
export interface StagingTask extends DesireTaskRequest {
  taskDefinition: TaskDefinition;
}

interface StagingLifecycle {
  buildTaskDefinition(stagingGuid: string, request: StagingRequestFromCC, config: StagingRecipeConfig): TaskDefinition;
  /** CC's response for a successful task's `result` (the builder's result file). */
  stagingResponse(result: string): StagingResponseForCC;
}

const STAGING_LIFECYCLES: ReadonlyMap<string, StagingLifecycle> = new Map([
  [BUILDPACK_LIFECYCLE, { buildTaskDefinition: buildBuildpackStagingTaskDefinition, stagingResponse: buildpackStagingResponse }],
  [DOCKER_LIFECYCLE, { buildTaskDefinition: buildDockerStagingTaskDefinition, stagingResponse: dockerStagingResponse }],
]);

/** The lifecycles the Stager can stage with (`buildpack`, `docker`). */
export const STAGING_LIFECYCLE_NAMES: readonly string[] = [...STAGING_LIFECYCLES.keys()];

function stagingLifecycle(name: string): StagingLifecycle {
  const lifecycle = STAGING_LIFECYCLES.get(name);
  if (!lifecycle) throw new StagingRecipeError('UNKNOWN_LIFECYCLE', `unknown lifecycle '${name}'`);
  return lifecycle;
}

/**
 * The staging task for CC's request: its guid is the staging guid, its domain cf-app-staging.
 * An unknown lifecycle (including "") is UNKNOWN_LIFECYCLE; a request the lifecycle cannot
 * stage is one of the recipe reasons, whose message sanitizeStagingFailure turns into CC's body.
 */
export function buildStagingTask(stagingGuid: string, request: StagingRequestFromCC, config: StagingRecipeConfig): StagingTask {
  const lifecycle = stagingLifecycle(request.lifecycle);
  if (stagingGuid === '') throw new StagingRecipeError('MISSING_TASK_ID', DiegoErrors.MISSING_TASK_ID);
  return {
    taskGuid: stagingGuid,
    domain: STAGING_TASK_DOMAIN,
    taskDefinition: lifecycle.buildTaskDefinition(stagingGuid, request, config),
  };
}

/**
 * The lifecycle a staging task's annotation names: the completion route's first check.
 * Not JSON, or not an annotation object, is INVALID_ANNOTATION; a lifecycle the Stager does
 * not have (a missing one included) is UNKNOWN_LIFECYCLE.
 */
export function stagingLifecycleFromAnnotation(annotation: string): string {
  const { lifecycle } = decodeAnnotation(annotation);
  stagingLifecycle(lifecycle);
  return lifecycle;
}

/**
 * CC's staging response for a completed staging task (spec §3.5). The lifecycle is the one the
 * task's annotation names, or the one given (the listener has usually read it already with
 * stagingLifecycleFromAnnotation); the annotation is checked either way, first, as in 2015.
 * A failed task reports its sanitized failure reason; a successful one its builder's result,
 * whose JSON must fit the lifecycle (INVALID_STAGING_RESULT).
 */
export function stagingResponseFromTaskCallback(callback: TaskCallbackResponse, lifecycle?: string): StagingResponseForCC {
  const annotation = decodeAnnotation(callback.annotation);
  const staging = stagingLifecycle(lifecycle ?? annotation.lifecycle);
  if (callback.failed) return stagingErrorResponse(callback.failureReason);
  return staging.stagingResponse(callback.result);
}

function decodeAnnotation(annotation: string): StagingTaskAnnotation {
  try {
    return decodeLegacyJson<StagingTaskAnnotation>('cloudfoundry.ccbridge.cc.v1.StagingTaskAnnotation', annotation);
  } catch (error) {
    if (error instanceof LegacyJsonError) throw new StagingRecipeError('INVALID_ANNOTATION', 'invalid staging task annotation');
    throw error;
  }
}
