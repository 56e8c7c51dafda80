// What the development Cloud Controller (a development stand-in, not Cloud Controller) sends the
// bridge, built as Cloud Controller builds it: the staging request (spec §2.5, §3), the desired
// app (§2.5, §4) and the environment both carry. Pure functions: no I/O, no clock; URLs come in
// already made.
import type { Buildpack, DesireAppRequestFromCC, EnvironmentVariable, StagingRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { encodeLegacyJson } from '../../lib/legacy-json.js';
import type { AppRecord, DropletRecord } from './store.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';

/** The stack everything stages and runs on, on one machine (the host root). */
export const DEFAULT_STACK = 'cflinuxfs4';

/** A buildpack the operator configured, tried in order when an app names none. */
export interface ConfiguredBuildpack {
  name: string;
  url: string;
}

/** Staging container limits; Cloud Controller's defaults (minimum_staging_*, staging.timeout_in_seconds). */
export interface StagingLimits {
  minimumMemoryMb: number;
  minimumDiskMb: number;
  fileDescriptors: number;
  timeoutSeconds: number;
}

export const DEFAULT_STAGING_LIMITS: StagingLimits = { minimumMemoryMb: 1024, minimumDiskMb: 4096, fileDescriptors: 16384, timeoutSeconds: 900 };

export interface MessageContext {
  /** This CC's URL as containers and the bridge reach it (VCAP_APPLICATION.cf_api). */
  ccUrl: string;
  appDomain: string;
  stack: string;
}

/** The blobstore URLs a buildpack staging request hands out (signed, see blobstore.ts). */
export interface StagingUrls {
  appBitsDownload: string;
  /** Absent when the app has no build cache yet. */
  buildArtifactsCacheDownload?: string;
  buildArtifactsCacheUpload: string;
  dropletUpload: string;
}

/** An app names a buildpack that is not configured (and is not a URL). */
export class UnknownBuildpackError extends Error {
  override name = 'UnknownBuildpackError';
}

/** The process guid of the app's current version: Cloud Controller's `<app guid>-<version>`. */
export function processGuidFor(app: Pick<AppRecord, 'guid' | 'version'>): string {
  return `${app.guid}-${app.version}`;
}

/** The app guid inside a process guid: Cloud Controller takes the first 36 characters. */
export function appGuidOfProcessGuid(processGuid: string): string {
  return processGuid.slice(0, 36);
}

/** The one route each app gets: its name under the app domain. */
export function routeFor(app: Pick<AppRecord, 'name'>, appDomain: string): string {
  return `${app.name.toLowerCase()}.${appDomain}`;
}

export function isBuildpackUrl(buildpack: string): boolean {
  return /^(https?|git):\/\//i.test(buildpack) || /\.git$/i.test(buildpack);
}

/**
 * The buildpacks of a staging request: the one the app names (by configured name, or `custom` for
 * a URL), detection skipped as Cloud Controller skips it for a named buildpack; else every
 * configured one in order, each detected.
 */
export function buildpacksFor(requested: string | null, configured: readonly ConfiguredBuildpack[]): Buildpack[] {
  if (requested === null || requested === '') {
    return configured.map((b) => ({ name: b.name, key: b.name, url: b.url, skipDetect: false }));
  }
  if (isBuildpackUrl(requested)) return [{ name: 'custom', key: requested, url: requested, skipDetect: true }];
  const found = configured.find((b) => b.name === requested);
  if (!found) throw new UnknownBuildpackError(`buildpack "${requested}" is not configured (configured: ${configured.map((b) => b.name).join(', ') || 'none'})`);
  return [{ name: found.name, key: found.name, url: found.url, skipDetect: true }];
}

/** VCAP_APPLICATION as Cloud Controller writes it (the launcher fills in host, port and instance). */
export function vcapApplicationFor(app: AppRecord, context: MessageContext, memoryMb = app.memoryMb, diskMb = app.diskMb): Record<string, unknown> {
  const uris = [routeFor(app, context.appDomain)];
  return {
    application_id: app.guid,
    application_name: app.name,
    application_uris: uris,
    application_version: app.version,
    cf_api: context.ccUrl,
    limits: { disk: diskMb, fds: app.fileDescriptors, mem: memoryMb },
    name: app.name,
    organization_name: 'development',
    process_id: app.guid,
    process_type: 'web',
    space_name: 'development',
    uris,
    version: app.version,
  };
}

/** The running environment, in Cloud Controller's order: VCAP_APPLICATION, VCAP_SERVICES, MEMORY_LIMIT, then the app's own. */
export function runningEnvironmentFor(app: AppRecord, context: MessageContext): EnvironmentVariable[] {
  return environment(app, context, app.memoryMb, app.diskMb);
}

function environment(app: AppRecord, context: MessageContext, memoryMb: number, diskMb: number): EnvironmentVariable[] {
  return [
    { name: 'VCAP_APPLICATION', value: JSON.stringify(vcapApplicationFor(app, context, memoryMb, diskMb)) },
    { name: 'VCAP_SERVICES', value: '{}' },
    { name: 'MEMORY_LIMIT', value: `${memoryMb}m` },
    ...Object.entries(app.environment).map(([name, value]) => ({ name, value })),
  ];
}

/** The staging container's limits: the app's, raised to the staging minimums. */
export function stagingResourcesFor(app: AppRecord, limits: StagingLimits): { memoryMb: number; diskMb: number; fileDescriptors: number } {
  return {
    memoryMb: Math.max(app.memoryMb, limits.minimumMemoryMb),
    diskMb: Math.max(app.diskMb, limits.minimumDiskMb),
    fileDescriptors: limits.fileDescriptors,
  };
}

export interface StagingRequestInput {
  app: AppRecord;
  context: MessageContext;
  limits: StagingLimits;
  /** Buildpack apps only. */
  urls?: StagingUrls;
  /** Buildpack apps only (see buildpacksFor). */
  buildpacks?: Buildpack[];
}

/** PUT /v1/staging/:staging_guid body. */
export function stagingRequestFor(input: StagingRequestInput): StagingRequestFromCC {
  const { app, context, limits } = input;
  const resources = stagingResourcesFor(app, limits);
  const env = environment(app, context, resources.memoryMb, resources.diskMb);
  let lifecycleData: string;
  if (app.lifecycle === 'docker') {
    lifecycleData = encodeLegacyJson(`${CC}.DockerStagingData`, {
      dockerImage: app.dockerImage ?? '',
      dockerLoginServer: '',
      dockerUser: app.dockerUsername ?? '',
      dockerPassword: app.dockerPassword ?? '',
      dockerEmail: '',
    });
  } else {
    if (!input.urls || !input.buildpacks) throw new Error('a buildpack staging request needs its blobstore URLs and buildpacks');
    env.push({ name: 'CF_STACK', value: context.stack });
    lifecycleData = encodeLegacyJson(`${CC}.BuildpackStagingData`, {
      appBitsDownloadUri: input.urls.appBitsDownload,
      buildArtifactsCacheDownloadUri: input.urls.buildArtifactsCacheDownload ?? '',
      buildArtifactsCacheUploadUri: input.urls.buildArtifactsCacheUpload,
      buildpacks: input.buildpacks,
      dropletUploadUri: input.urls.dropletUpload,
      stack: context.stack,
    });
  }
  return {
    appId: app.guid,
    fileDescriptors: resources.fileDescriptors,
    memoryMb: resources.memoryMb,
    diskMb: resources.diskMb,
    environment: env,
    egressRules: [],
    timeout: limits.timeoutSeconds,
    logGuid: app.guid,
    lifecycle: app.lifecycle,
    lifecycleData,
  };
}

/** Today's `process` health check is 2015's `none` on the wire. */
export function wireHealthCheckType(type: string): string {
  return type === 'process' ? 'none' : type;
}

/** PUT /v1/apps/:process_guid body, and an element of the bulk apps answer. */
export function desireAppRequestFor(app: AppRecord, droplet: DropletRecord, context: MessageContext, dropletUri: string): DesireAppRequestFromCC {
  const docker = app.lifecycle === 'docker';
  return {
    processGuid: processGuidFor(app),
    dropletUri: docker ? '' : dropletUri,
    dockerImage: docker ? droplet.dockerImage || app.dockerImage || '' : '',
    dockerLoginServer: '',
    dockerUser: docker ? (app.dockerUsername ?? '') : '',
    dockerPassword: docker ? (app.dockerPassword ?? '') : '',
    dockerEmail: '',
    stack: context.stack,
    startCommand: droplet.startCommand,
    // The docker recipe reads the metadata as JSON; Cloud Controller sends `{}` at least.
    executionMetadata: droplet.executionMetadata || (docker ? '{}' : ''),
    environment: runningEnvironmentFor(app, context),
    memoryMb: app.memoryMb,
    diskMb: app.diskMb,
    fileDescriptors: String(app.fileDescriptors),
    numInstances: app.instances,
    routes: [routeFor(app, context.appDomain)],
    allowSsh: app.allowSsh,
    logGuid: app.guid,
    healthCheckType: wireHealthCheckType(app.healthCheckType),
    healthCheckTimeoutInSeconds: app.healthCheckTimeout,
    egressRules: [],
    etag: app.etag,
    healthCheckHttpEndpoint: app.healthCheckType === 'http' ? app.healthCheckHttpEndpoint : '',
  };
}

/**
 * The next `updated_at` stamp, written as Cloud Controller's `updated_at.to_f.to_s` (seconds with
 * microseconds), and always greater than the previous one so two changes within one millisecond
 * still look different to the bulker.
 */
export function nextEtag(previous: string | null, nowMs: number): string {
  const previousMicros = previous === null ? -1 : Math.round(Number(previous) * 1e6);
  const micros = Math.max(Math.round(nowMs * 1000), Number.isFinite(previousMicros) ? previousMicros + 1 : 0);
  return (micros / 1e6).toFixed(6);
}
