// What CC may see of a staging failure (spec §3.5). Failure reasons come from cells and recipe
// errors and can carry internal detail (paths, addresses, registry answers), so only a few known
// messages pass through; the builder's exit codes become CC's specific error ids.
import { StagingErrorId, type StagingError, type StagingResponseForCC } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { DiegoErrors } from './diego-errors.js';

const STAGING_FAILED = 'staging failed';

// Exit codes of the buildpack builder (spec §10). The check is a plain suffix match, as in 2015,
// so "Exited with status 222" and anything else ending in those digits match.
const EXIT_CODE_SUFFIXES: ReadonlyArray<readonly [suffix: string, id: StagingErrorId]> = [
  ['222', StagingErrorId.STAGING_ERROR_ID_NO_APP_DETECTED_ERROR],
  ['223', StagingErrorId.STAGING_ERROR_ID_BUILDPACK_COMPILE_FAILED],
  ['224', StagingErrorId.STAGING_ERROR_ID_BUILDPACK_RELEASE_FAILED],
];

// Messages that are safe and useful to show the user, passed to CC unchanged.
const MESSAGES_SHOWN_TO_USERS: ReadonlyMap<string, StagingErrorId> = new Map([
  [DiegoErrors.INSUFFICIENT_RESOURCES, StagingErrorId.STAGING_ERROR_ID_INSUFFICIENT_RESOURCES],
  [DiegoErrors.CELL_MISMATCH, StagingErrorId.STAGING_ERROR_ID_NO_COMPATIBLE_CELL],
  [DiegoErrors.MISSING_DOCKER_IMAGE_URL, StagingErrorId.STAGING_ERROR_ID_STAGING_ERROR],
  [DiegoErrors.MISSING_DOCKER_REGISTRY, StagingErrorId.STAGING_ERROR_ID_STAGING_ERROR],
  [DiegoErrors.MISSING_DOCKER_CREDENTIALS, StagingErrorId.STAGING_ERROR_ID_STAGING_ERROR],
  [DiegoErrors.INVALID_DOCKER_REGISTRY_ADDRESS, StagingErrorId.STAGING_ERROR_ID_STAGING_ERROR],
]);

/** The StagingError CC is told for a failure message; the first matching rule of §3.5 wins. */
export function sanitizeStagingFailure(message: string): StagingError {
  for (const [suffix, id] of EXIT_CODE_SUFFIXES) {
    if (message.endsWith(suffix)) return { id, message: STAGING_FAILED };
  }
  const shownId = MESSAGES_SHOWN_TO_USERS.get(message);
  if (shownId !== undefined) return { id: shownId, message };
  return { id: StagingErrorId.STAGING_ERROR_ID_STAGING_ERROR, message: STAGING_FAILED };
}

/**
 * A StagingResponseForCC that reports only a failure: the Stage route's 500 body and the
 * completion of a failed task. Written with the legacy codec it reads
 * `{"execution_metadata":"","detected_start_command":null,"error":{...}}`.
 */
export function stagingErrorResponse(message: string): StagingResponseForCC {
  return { executionMetadata: '', detectedStartCommand: {}, error: sanitizeStagingFailure(message), lifecycleData: '' };
}
