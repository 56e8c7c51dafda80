// The Stager recipe's errors: one closed set of reasons, each with the gRPC status it travels as.
// Messages are the runtime-schema diego_errors constants where one exists, because CC shows the
// whitelisted ones to users (see sanitizeStagingFailure) and matches on them.
import { Status } from 'nice-grpc';
import { StagingResponseForCC } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { BridgeError, pack } from '../../../lib/errors.js';
import { stagingErrorResponse } from './sanitize.js';

/**
 * Every reason a recipe builder or the completion mapper refuses its input, and how the
 * listener answers it:
 * - a request naming a lifecycle with no backend is NOT_FOUND (the 2015 404, no body);
 * - an unusable completion callback (annotation, builder result) is INVALID_ARGUMENT (400);
 * - a staging request the recipe cannot be built from is INTERNAL (500) with the sanitized
 *   StagingResponseForCC body CC expects.
 */
export const STAGING_RECIPE_ERROR_CODES = {
  UNKNOWN_LIFECYCLE: Status.NOT_FOUND,
  INVALID_ANNOTATION: Status.INVALID_ARGUMENT,
  INVALID_STAGING_RESULT: Status.INVALID_ARGUMENT,
  MISSING_TASK_ID: Status.INTERNAL,
  MISSING_LIFECYCLE_DATA: Status.INTERNAL,
  INVALID_LIFECYCLE_DATA: Status.INTERNAL,
  MISSING_APP_ID: Status.INTERNAL,
  MISSING_APP_BITS_DOWNLOAD_URI: Status.INTERNAL,
  NO_COMPILER_DEFINED: Status.INTERNAL,
  INVALID_LIFECYCLE_URL: Status.INTERNAL,
  INVALID_BUILD_ARTIFACTS_CACHE_URI: Status.INTERNAL,
  MISSING_DOCKER_IMAGE_URL: Status.INTERNAL,
  MISSING_DOCKER_CREDENTIALS: Status.INTERNAL,
  MISSING_DOCKER_REGISTRY: Status.INTERNAL,
  INVALID_DOCKER_REGISTRY_ADDRESS: Status.INTERNAL,
} as const satisfies Record<string, Status>;

export type StagingRecipeErrorReason = keyof typeof STAGING_RECIPE_ERROR_CODES;

/**
 * A staging request or completion the Stager refuses. It is a BridgeError, so the service can
 * throw it as is: the error middleware and the gateway turn it into the legacy status and body.
 * Messages never carry request secrets (docker passwords).
 */
export class StagingRecipeError extends BridgeError {
  override name = 'StagingRecipeError';
  declare readonly reason: StagingRecipeErrorReason;

  constructor(reason: StagingRecipeErrorReason, message: string) {
    const code = STAGING_RECIPE_ERROR_CODES[reason];
    super(
      code,
      reason,
      message,
      code === Status.INTERNAL
        ? { body: pack('cloudfoundry.ccbridge.cc.v1.StagingResponseForCC', StagingResponseForCC, stagingErrorResponse(message)) }
        : {},
    );
  }
}
