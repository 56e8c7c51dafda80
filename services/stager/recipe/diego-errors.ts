// The runtime-schema diego_errors message constants (spec §2.6). CC shows the whitelisted ones
// to users verbatim, so they are part of the contract and spelled exactly.

export const DiegoErrors = {
  INSUFFICIENT_RESOURCES: 'insufficient resources',
  MISSING_APP_BITS_DOWNLOAD_URI: 'missing app bits download uri',
  MISSING_APP_ID: 'missing app id',
  MISSING_LIFECYCLE_DATA: 'missing lifecycle data',
  MISSING_TASK_ID: 'missing task id',
  NO_COMPILER_DEFINED: 'no compiler defined for requested stack',
  CELL_MISMATCH: 'found no compatible cell',
  MISSING_DOCKER_IMAGE_URL: 'missing docker image download url',
  MISSING_DOCKER_REGISTRY: 'missing docker registry',
  MISSING_DOCKER_CREDENTIALS: 'missing docker credentials',
  INVALID_DOCKER_REGISTRY_ADDRESS: 'invalid docker registry address',
} as const;

