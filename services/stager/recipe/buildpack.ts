// The buildpack lifecycle (spec §3.3): a staging request becomes a task that downloads the app
// bits, the builder and the buildpacks, runs the builder, and uploads the droplet and the build
// artifacts cache through the cc-uploader; the builder's result becomes CC's staging response.
import { createHash } from 'node:crypto';
import type { BuildpackStagingData, StagingRequestFromCC, StagingResponseForCC } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { Action } from '../../../gen/diego/bbs/v1/actions.js';
import { TaskDefinition } from '../../../gen/diego/bbs/v1/task.js';
import { encodeLegacyJson } from '../../../lib/legacy-json.js';
import { download, emitProgress, parallel, run, serial, timeout, tryAction, upload } from './actions.js';
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
import { compareBytes, escapePathSegment, goQueryString, joinURL, requestURIProblem } from './urls.js';

export const BUILDPACK_LIFECYCLE = 'buildpack';

// The buildpack builder's layout inside the staging container (spec §3.3, §10).
const LIFECYCLE_DIR = '/tmp/lifecycle';
const BUILDER_PATH = '/tmp/lifecycle/builder';
const APP_DIR = '/tmp/app';
const BUILDPACKS_DIR = '/tmp/buildpacks';
const ARTIFACTS_CACHE_DIR = '/tmp/cache';
const OUTPUT_DROPLET = '/tmp/droplet';
const OUTPUT_METADATA = '/tmp/result.json';
const OUTPUT_ARTIFACTS_CACHE = '/tmp/output-cache';

const STAGING_CPU_WEIGHT = 50;
const CONTAINER_LANG = { name: 'LANG', value: 'en_US.UTF-8' };
/** A buildpack CC names `custom` is given by URL; the builder fetches it itself. */
const CUSTOM_BUILDPACK = 'custom';

// The cc-uploader's query keys (spec §2.4, §9).
const CC_DROPLET_UPLOAD_URI_KEY = 'cc-droplet-upload-uri';
const CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY = 'cc-build-artifacts-upload-uri';
const CC_TIMEOUT_KEY = 'timeout';

export function buildBuildpackStagingTaskDefinition(
  stagingGuid: string,
  request: StagingRequestFromCC,
  config: StagingRecipeConfig,
): TaskDefinition {
  const data = decodeLifecycleData<BuildpackStagingData>('cloudfoundry.ccbridge.cc.v1.BuildpackStagingData', request.lifecycleData);
  if (request.appId === '') throw new StagingRecipeError('MISSING_APP_ID', DiegoErrors.MISSING_APP_ID);
  if (data.appBitsDownloadUri === '') throw new StagingRecipeError('MISSING_APP_BITS_DOWNLOAD_URI', DiegoErrors.MISSING_APP_BITS_DOWNLOAD_URI);
  const builderURL = lifecycleDownloadURL(`${BUILDPACK_LIFECYCLE}/${data.stack}`, config);
  const cacheDownloadURI = data.buildArtifactsCacheDownloadUri;
  if (cacheDownloadURI !== '') {
    const problem = requestURIProblem(cacheDownloadURI);
    if (problem) throw new StagingRecipeError('INVALID_BUILD_ARTIFACTS_CACHE_URI', problem);
  }

  const timeoutMs = stagingTimeoutMs(request.timeout, config);
  // The cc-uploader is told the timeout in whole seconds; rounding up keeps it from becoming 0.
  const uploadTimeoutSeconds = String(Math.ceil(timeoutMs / 1000));
  const skipDetect = data.buildpacks.length === 1 && data.buildpacks[0]!.skipDetect;

  const buildpackDownloads = data.buildpacks
    .filter((buildpack) => buildpack.name !== CUSTOM_BUILDPACK)
    .map((buildpack) =>
      download({
        artifact: buildpack.name,
        from: buildpack.url,
        to: `${BUILDPACKS_DIR}/${md5Hex(buildpack.key)}`,
        cacheKey: buildpack.key,
        user: STAGING_USER,
      }),
    );
  const cacheDownloads =
    cacheDownloadURI === ''
      ? []
      : [tryAction(download({ artifact: 'build artifacts cache', from: cacheDownloadURI, to: ARTIFACTS_CACHE_DIR, cacheKey: '', user: STAGING_USER }))];

  const builderFlags: Record<string, string> = {
    buildArtifactsCacheDir: ARTIFACTS_CACHE_DIR,
    buildDir: APP_DIR,
    buildpackOrder: data.buildpacks.map((buildpack) => buildpack.key).join(','),
    buildpacksDir: BUILDPACKS_DIR,
    outputBuildArtifactsCache: OUTPUT_ARTIFACTS_CACHE,
    outputDroplet: OUTPUT_DROPLET,
    outputMetadata: OUTPUT_METADATA,
    skipCertVerify: String(config.skipCertVerify),
    skipDetect: String(skipDetect),
  };

  const dropletUploadURL = `${joinURL(config.ccUploaderURL, 'v1', 'droplet', escapePathSegment(request.appId))}?${goQueryString({
    [CC_DROPLET_UPLOAD_URI_KEY]: data.dropletUploadUri,
    [CC_TIMEOUT_KEY]: uploadTimeoutSeconds,
  })}`;
  const cacheUploadURL = `${joinURL(config.ccUploaderURL, 'v1', 'build_artifacts', escapePathSegment(request.appId))}?${goQueryString({
    [CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY]: data.buildArtifactsCacheUploadUri,
    [CC_TIMEOUT_KEY]: uploadTimeoutSeconds,
  })}`;

  const action: Action = timeout(
    timeoutMs,
    serial(
      download({ artifact: 'app package', from: data.appBitsDownloadUri, to: APP_DIR, cacheKey: '', user: STAGING_USER }),
      emitProgress(
        {
          startMessage: downloadMessage(data, skipDetect),
          successMessage: 'Downloaded buildpacks',
          failureMessagePrefix: 'Downloading buildpacks failed',
        },
        parallel(
          emitProgress(
            { startMessage: '', successMessage: '', failureMessagePrefix: 'Failed to set up staging environment' },
            download({ from: builderURL, to: LIFECYCLE_DIR, cacheKey: `buildpack-${data.stack}-lifecycle`, user: STAGING_USER }),
          ),
          ...buildpackDownloads,
          ...cacheDownloads,
        ),
      ),
      emitProgress(
        { startMessage: 'Staging...', successMessage: 'Staging complete', failureMessagePrefix: 'Staging failed' },
        run({
          path: BUILDER_PATH,
          args: builderArgs(builderFlags),
          env: bbsEnvironment(request.environment),
          nofile: nofileLimit(request.fileDescriptors),
          user: STAGING_USER,
        }),
      ),
      emitProgress(
        {
          startMessage: 'Uploading droplet, build artifacts cache...',
          successMessage: 'Uploading complete',
          failureMessagePrefix: 'Uploading failed',
        },
        parallel(
          upload({ artifact: 'droplet', from: OUTPUT_DROPLET, to: dropletUploadURL, user: STAGING_USER }),
          tryAction(upload({ artifact: 'build artifacts cache', from: OUTPUT_ARTIFACTS_CACHE, to: cacheUploadURL, user: STAGING_USER })),
        ),
      ),
    ),
  );

  return TaskDefinition.fromPartial({
    rootFs: `preloaded:${data.stack}`,
    environmentVariables: [CONTAINER_LANG],
    action,
    diskMb: request.diskMb,
    memoryMb: request.memoryMb,
    cpuWeight: STAGING_CPU_WEIGHT,
    privileged: config.privileged,
    logSource: STAGING_LOG_SOURCE,
    logGuid: request.logGuid,
    resultFile: OUTPUT_METADATA,
    completionCallbackUrl: completionCallbackURL(stagingGuid, config),
    annotation: stagingTaskAnnotation(BUILDPACK_LIFECYCLE),
    egressRules: bbsEgressRules(request.egressRules),
  });
}

/** The buildpack builder's result (spec §10) as CC's staging response (spec §3.5). */
export function buildpackStagingResponse(result: string): StagingResponseForCC {
  const staged = decodeBuilderResult(result, {
    buildpack_key: 'string',
    detected_buildpack: 'string',
    execution_metadata: 'string',
    detected_start_command: 'stringMap',
  });
  return {
    executionMetadata: staged.strings.execution_metadata!,
    detectedStartCommand: staged.maps.detected_start_command!,
    error: undefined,
    lifecycleData: encodeLegacyJson('cloudfoundry.ccbridge.cc.v1.BuildpackStagingResponse', {
      buildpackKey: staged.strings.buildpack_key,
      detectedBuildpack: staged.strings.detected_buildpack,
    }),
  };
}

/** Builder flags as `-name=value`, sorted by name in byte order, as the Go builder config wrote them. */
function builderArgs(flags: Readonly<Record<string, string>>): string[] {
  return Object.keys(flags)
    .sort(compareBytes)
    .map((name) => `-${name}=${flags[name]}`);
}

/** Each buildpack gets its own directory, named by the md5 of its key. */
function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/**
 * The line users see while downloads run: buildpack names (a custom buildpack shows its URL)
 * and the cache when there is one, after a notice that detection will run unless skipped.
 */
function downloadMessage(data: BuildpackStagingData, skipDetect: boolean): string {
  const detectNotice = skipDetect ? '' : 'No buildpack specified; fetching standard buildpacks to detect and build your application.\n';
  const buildpackNames = data.buildpacks.map((buildpack) => (buildpack.name === CUSTOM_BUILDPACK ? buildpack.url : buildpack.name));
  const downloads = [`buildpacks (${buildpackNames.join(', ')})`];
  if (data.buildArtifactsCacheDownloadUri !== '') downloads.push('build artifacts cache');
  return `${detectNotice}Downloading ${downloads.join(', ')}...`;
}
