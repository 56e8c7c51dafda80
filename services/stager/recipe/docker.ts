// The docker lifecycle (spec §3.4): a staging request becomes a task that downloads the docker
// builder and runs it against the image, optionally caching the image in the deployment's
// registry; the builder's result becomes CC's staging response.
//
// Two departures from the 2015 stager, both from its later versions (§13): the caching registry
// is configured statically (dockerRegistryAddress, and its IPs) instead of looked up in Consul,
// and registry credentials and the insecure registries reach the builder whether or not the
// image is cached, because pulling a private image needs them either way.
import { isIP } from 'node:net';
import type { DockerStagingData, StagingRequestFromCC, StagingResponseForCC } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { SecurityGroupRule } from '../../../gen/diego/bbs/v1/security_group.js';
import { TaskDefinition } from '../../../gen/diego/bbs/v1/task.js';
import { encodeLegacyJson } from '../../../lib/legacy-json.js';
import { download, emitProgress, run, serial, timeout } from './actions.js';
import { decodeBuilderResult } from './builder-result.js';
import {
  bbsEgressRules,
  bbsEnvironment,
  completionCallbackURL,
  decodeLifecycleData,
  nofileLimit,
  STAGING_LOG_SOURCE,
  STAGING_USER,
  stagingTaskAnnotation,
} from './common.js';
import { lifecycleDownloadURL, stagingTimeoutMs, type StagingRecipeConfig } from './config.js';
import { DiegoErrors } from './diego-errors.js';
import { StagingRecipeError } from './errors.js';

export const DOCKER_LIFECYCLE = 'docker';

const LIFECYCLE_DIR = '/tmp/docker_app_lifecycle';
const BUILDER_PATH = '/tmp/docker_app_lifecycle/builder';
const OUTPUT_METADATA = '/tmp/docker-result/result.json';
/** Caching pushes the image from a docker daemon inside the container, which needs root. */
const CACHING_USER = 'root';

/** The builder's environment variable holding the registry CAs of the deployment (PEM). */
export const DOCKER_REGISTRY_CA_CERTS_VARIABLE = 'CCBRIDGE_DOCKER_REGISTRY_CA_CERTS';

/** The staging environment variable with which a user asks for the image to be cached. */
const CACHE_REQUEST_VARIABLE = 'DIEGO_DOCKER_CACHE';

interface CachingRegistry {
  host: string;
  port: number;
  ips: readonly string[];
}

export function buildDockerStagingTaskDefinition(
  stagingGuid: string,
  request: StagingRequestFromCC,
  config: StagingRecipeConfig,
): TaskDefinition {
  const data = decodeLifecycleData<DockerStagingData>('cloudfoundry.ccbridge.cc.v1.DockerStagingData', request.lifecycleData);
  if (request.appId === '') throw new StagingRecipeError('MISSING_APP_ID', DiegoErrors.MISSING_APP_ID);
  if (data.dockerImage === '') throw new StagingRecipeError('MISSING_DOCKER_IMAGE_URL', DiegoErrors.MISSING_DOCKER_IMAGE_URL);
  const credentials = [data.dockerUser, data.dockerPassword, data.dockerEmail];
  const hasCredentials = credentials.some((value) => value !== '');
  if (hasCredentials && credentials.some((value) => value === '')) {
    throw new StagingRecipeError('MISSING_DOCKER_CREDENTIALS', DiegoErrors.MISSING_DOCKER_CREDENTIALS);
  }
  const builderURL = lifecycleDownloadURL(DOCKER_LIFECYCLE, config);
  const wantsCaching = request.environment.some(({ name, value }) => name === CACHE_REQUEST_VARIABLE && value === 'true');
  const registry = wantsCaching ? cachingRegistry(config) : undefined;

  const args = ['-outputMetadataJSONFilename', OUTPUT_METADATA, '-dockerRef', data.dockerImage];
  if (registry) {
    args.push(
      '-cacheDockerImage',
      '-dockerRegistryHost',
      registry.host,
      '-dockerRegistryPort',
      String(registry.port),
      '-dockerRegistryIPs',
      registry.ips.join(','),
    );
  }
  if (config.insecureDockerRegistries.length > 0) args.push('-insecureDockerRegistries', config.insecureDockerRegistries.join(','));
  if (data.dockerLoginServer !== '') args.push('-dockerLoginServer', data.dockerLoginServer);
  if (hasCredentials) args.push('-dockerUser', data.dockerUser, '-dockerPassword', data.dockerPassword, '-dockerEmail', data.dockerEmail);

  const action = timeout(
    stagingTimeoutMs(request.timeout, config),
    serial(
      emitProgress(
        { startMessage: '', successMessage: '', failureMessagePrefix: 'Failed to set up docker environment' },
        download({ from: builderURL, to: LIFECYCLE_DIR, cacheKey: 'docker-lifecycle', user: STAGING_USER }),
      ),
      // "Complete" and "Failed" are capitalised here, unlike the buildpack task: CC's users
      // have always seen these exact lines.
      emitProgress(
        { startMessage: 'Staging...', successMessage: 'Staging Complete', failureMessagePrefix: 'Staging Failed' },
        run({
          path: BUILDER_PATH,
          args,
          env: config.dockerRegistryCACerts
            ? [...bbsEnvironment(request.environment), { name: DOCKER_REGISTRY_CA_CERTS_VARIABLE, value: config.dockerRegistryCACerts }]
            : bbsEnvironment(request.environment),
          nofile: nofileLimit(request.fileDescriptors),
          user: registry ? CACHING_USER : STAGING_USER,
        }),
      ),
    ),
  );

  return TaskDefinition.fromPartial({
    rootFs: `preloaded:${config.dockerStagingStack}`,
    action,
    diskMb: request.diskMb,
    memoryMb: request.memoryMb,
    privileged: config.privileged,
    logSource: STAGING_LOG_SOURCE,
    logGuid: request.logGuid,
    resultFile: OUTPUT_METADATA,
    completionCallbackUrl: completionCallbackURL(stagingGuid, config),
    annotation: stagingTaskAnnotation(DOCKER_LIFECYCLE),
    egressRules: [...bbsEgressRules(request.egressRules), ...(registry ? registryEgressRules(registry) : [])],
  });
}

/** The docker builder's result (spec §10) as CC's staging response (spec §3.5). */
export function dockerStagingResponse(result: string): StagingResponseForCC {
  const staged = decodeBuilderResult(result, {
    execution_metadata: 'string',
    detected_start_command: 'stringMap',
    docker_image: 'string',
  });
  return {
    executionMetadata: staged.strings.execution_metadata!,
    detectedStartCommand: staged.maps.detected_start_command!,
    error: undefined,
    lifecycleData: encodeLegacyJson('cloudfoundry.ccbridge.cc.v1.DockerStagingData', { dockerImage: staged.strings.docker_image }),
  };
}

function cachingRegistry(config: StagingRecipeConfig): CachingRegistry {
  if (config.dockerRegistryAddress === '') throw new StagingRecipeError('MISSING_DOCKER_REGISTRY', DiegoErrors.MISSING_DOCKER_REGISTRY);
  const address = splitHostPort(config.dockerRegistryAddress);
  if (!address) throw new StagingRecipeError('INVALID_DOCKER_REGISTRY_ADDRESS', DiegoErrors.INVALID_DOCKER_REGISTRY_ADDRESS);
  const ips = config.dockerRegistryIPs?.length ? config.dockerRegistryIPs : isIP(address.host) ? [address.host] : [];
  if (ips.length === 0) throw new StagingRecipeError('MISSING_DOCKER_REGISTRY', DiegoErrors.MISSING_DOCKER_REGISTRY);
  return { ...address, ips };
}

/**
 * The staging container must reach every registry IP on the registry's port. (The 2015 stager
 * wrote 8080 whatever the port; the configured port is what the builder dials.)
 */
function registryEgressRules(registry: CachingRegistry): SecurityGroupRule[] {
  return registry.ips.map((ip) => ({
    protocol: 'tcp',
    destinations: [ip],
    ports: [registry.port],
    portRange: undefined,
    icmpInfo: undefined,
    log: false,
    annotations: [],
  }));
}

/** Go's net.SplitHostPort, plus a usable port and a non-empty host; undefined when invalid. */
function splitHostPort(address: string): { host: string; port: number } | undefined {
  let host: string;
  let portText: string;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0 || address[close + 1] !== ':') return undefined;
    host = address.slice(1, close);
    portText = address.slice(close + 2);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon < 0 || address.indexOf(':') !== colon) return undefined;
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
  }
  if (host === '' || !/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host, port } : undefined;
}
