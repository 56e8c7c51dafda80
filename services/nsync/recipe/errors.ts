// The ways a desired app from Cloud Controller can be unfit for a recipe. Every RecipeError is
// the caller's fault, so the listener answers 400 for all of them and the bulker logs and skips
// the app. The 2015 listener answered 503 for the docker image, execution metadata and port
// errors because they were untyped; they are CC's input errors all the same, so here they are
// typed like the rest.
//
// Messages may quote CC's input (an image reference, a port) but never a key: no RecipeError
// is raised after SSH keys exist.

export type RecipeErrorReason =
  | 'APP_SOURCE_MISSING'
  | 'DOCKER_IMAGE_MISSING'
  | 'MULTIPLE_APP_SOURCES'
  | 'NO_LIFECYCLE_DEFINED'
  | 'INVALID_DOCKER_IMAGE'
  | 'INVALID_EXECUTION_METADATA'
  | 'INVALID_EXPOSED_PORT'
  | 'INVALID_INSTANCES'
  | 'INVALID_FILE_DESCRIPTORS';

/** A desired app that cannot become a DesiredLRP; `message` is safe to show to CC. */
export class RecipeError extends Error {
  override name = 'RecipeError';
  constructor(
    readonly reason: RecipeErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export function isRecipeError(error: unknown): error is RecipeError {
  return error instanceof RecipeError;
}

// The first four messages are the 2015 nsync texts (recipebuilder errors), kept verbatim.
export const appSourceMissing = () => new RecipeError('APP_SOURCE_MISSING', 'desired app missing droplet_uri');
export const dockerImageMissing = () => new RecipeError('DOCKER_IMAGE_MISSING', 'desired app missing docker_image');
export const multipleAppSources = () =>
  new RecipeError('MULTIPLE_APP_SOURCES', 'desired app contains both droplet_uri and docker_image; exactly one is required.');
export const noLifecycleDefined = () => new RecipeError('NO_LIFECYCLE_DEFINED', 'no lifecycle binary bundle defined for stack');

export const dockerImageWithScheme = (image: string) =>
  new RecipeError('INVALID_DOCKER_IMAGE', `docker URI [${image}] should not contain scheme`);
export const invalidDockerImage = (image: string, why: string) =>
  new RecipeError('INVALID_DOCKER_IMAGE', `docker image [${image}] is not a valid image reference: ${why}`);

export const invalidExecutionMetadata = (why: string) =>
  new RecipeError('INVALID_EXECUTION_METADATA', `invalid execution_metadata: ${why}`);

export const noTcpPorts = () => new RecipeError('INVALID_EXPOSED_PORT', 'No tcp ports found in image metadata');
export const invalidExposedPort = (port: unknown) =>
  new RecipeError('INVALID_EXPOSED_PORT', `invalid port ${JSON.stringify(port)} in image metadata: must be 1 to 65535`);

export const negativeInstances = (instances: number) =>
  new RecipeError('INVALID_INSTANCES', `invalid num_instances ${instances}: must be 0 or more`);

export const invalidFileDescriptors = (value: string) =>
  new RecipeError('INVALID_FILE_DESCRIPTORS', `invalid file_descriptors ${JSON.stringify(value)}: must be a non-negative integer`);

/**
 * The recipe configuration is wrong (a lifecycle path with an unknown scheme, a bad file server
 * URL). Not a RecipeError: it is the operator's fault, not CC's, so it must not become a 400.
 * checkRecipeConfig raises it at start-up so a running listener never meets it.
 */
export class RecipeConfigError extends Error {
  override name = 'RecipeConfigError';
}

/**
 * The injected key generator failed. Not a RecipeError either: the request was fine, the server
 * was not (the 2015 listener answered 503). The message is fixed so that nothing the generator
 * put in its own error text reaches a response.
 */
export class SshKeyGenerationError extends Error {
  override name = 'SshKeyGenerationError';
  constructor(cause: unknown) {
    super('failed to generate ssh key pair', { cause });
  }
}
