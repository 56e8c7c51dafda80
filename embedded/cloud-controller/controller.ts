// The development Cloud Controller's behaviour (a development stand-in, not Cloud Controller):
// apps and what happens to them, and how that drives the bridge as Cloud Controller drives it —
// staging on start when there is no current droplet, desiring the app's current process when it
// runs, a new process guid when what runs changes, stopping the old one.
//
// Every change to an app is one synchronous SQLite transaction on a freshly read row, so nothing
// written ever comes from a copy read before an await. Calls to the bridge for one app run one
// after another (a queue per app), so the bridge sees PUTs and DELETEs in the order the changes
// happened. Bridge failures never undo a change: the nsync bulker reads the same state from the
// bulk endpoints and converges on it.
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type {
  AppCrashedRequest,
  AppCrashedRequestV4,
  AppReadinessChangedRequest,
  AppReschedulingRequest,
  DesireAppRequestFromCC,
  LRPInstance,
  StagingResponseForCC,
} from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { decodeLegacyJson, encodeLegacyJson } from '../../lib/legacy-json.js';
import type { Logger } from '../../lib/log.js';
import type { Blobstore } from './blobstore.js';
import type { Bridge } from './bridge-client.js';
import {
  appGuidOfProcessGuid,
  buildpacksFor,
  desireAppRequestFor,
  isBuildpackUrl,
  nextEtag,
  processGuidFor,
  stagingRequestFor,
  UnknownBuildpackError,
  type ConfiguredBuildpack,
  type MessageContext,
  type StagingLimits,
} from './messages.js';
import type { AppRecord, BuildRecord, CcStore, DropletRecord, EventRecord, PackageRecord } from './store.js';
import { contentMd5Matches, receiveMultipartFile, receiveRawFile, UploadError } from './uploads.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A request the development CC refuses: the HTTP status, a CC error name, and what went wrong. */
export class CcApiError extends Error {
  override name = 'CcApiError';
  constructor(
    readonly status: number,
    /** CC's error name, e.g. CF-AppNotFound. */
    readonly title: string,
    message: string,
    /** CC's numeric error code, where CC has one. */
    readonly code = 10000,
  ) {
    super(message);
  }
}

const notFound = (what: string) => new CcApiError(404, 'CF-ResourceNotFound', `${what} not found`, 10010);
const unprocessable = (message: string) => new CcApiError(422, 'CF-UnprocessableEntity', message, 10008);

export interface AppDefaults {
  memoryMb: number;
  diskMb: number;
  instances: number;
  fileDescriptors: number;
  healthCheckType: string;
  healthCheckTimeout: number;
  healthCheckHttpEndpoint: string;
}

export const APP_DEFAULTS: AppDefaults = {
  memoryMb: 256,
  diskMb: 1024,
  instances: 1,
  fileDescriptors: 16384,
  healthCheckType: 'port',
  healthCheckTimeout: 60,
  healthCheckHttpEndpoint: '/',
};

export interface CreateAppInput {
  name: string;
  memoryMb?: number;
  diskMb?: number;
  instances?: number;
  buildpack?: string | null;
  dockerImage?: string;
  dockerUsername?: string;
  dockerPassword?: string;
  healthCheckType?: string;
  healthCheckTimeout?: number;
  healthCheckHttpEndpoint?: string;
  environment?: Record<string, string>;
  allowSsh?: boolean;
}

export interface ScaleInput {
  instances?: number;
  memoryMb?: number;
  diskMb?: number;
}

/** One instance as the command line shows it. */
export interface InstanceView {
  index: number;
  state: string;
  instanceGuid: string;
  since: number | null;
  uptime: number | null;
  details: string;
  host: string;
  port: number;
  cpu: number | null;
  memoryBytes: number | null;
  diskBytes: number | null;
}

export interface AppView {
  app: AppRecord;
  latestPackage: PackageRecord | undefined;
  currentDroplet: DropletRecord | undefined;
  latestBuild: BuildRecord | undefined;
  /** null when the bridge could not say. */
  runningInstances: number | null;
  /** Only for one app. */
  instances?: InstanceView[];
}

export interface Outcome<T> {
  value: T;
  /** Things that did not happen (the bridge refused or was away) and will be put right by the bulker. */
  warnings: string[];
}

export type InstanceReportKind = 'crashed-legacy' | 'crashed' | 'rescheduling' | 'readiness_changed';

export interface ReceivedJob {
  guid: string;
  status: string;
  createdAtMs: number;
}

export interface BlobFile {
  path: string;
  size: number;
  contentType: string;
}

export interface ControllerOptions {
  store: CcStore;
  blobstore: Blobstore;
  bridge: Bridge;
  logger: Logger;
  clock: Clock;
  /** Where this CC is reached and the app domain; the URL is known once the server listens. */
  context: () => MessageContext;
  buildpacks: readonly ConfiguredBuildpack[];
  staging: StagingLimits;
  appDefaults: AppDefaults;
  /** How long a report's event id is remembered to drop its duplicates. */
  eventIdRetentionMs: number;
  /** How long app events are kept. */
  eventRetentionMs: number;
  /** Largest blob accepted (app bits, droplet, build cache). */
  maxUploadBytes: number;
}

const LRP_STATE_NAMES: Record<number, string> = { 1: 'STARTING', 2: 'RUNNING', 3: 'CRASHED', 4: 'DOWN', 5: 'UNKNOWN' };

/** How many droplets an app keeps: the current one and the one before, still used while it is replaced. */
const DROPLETS_KEPT = 2;
/** Process guids per bulk status call. */
const BULK_STATUS_BATCH = 50;
/** Jobs are answered for a day after the upload. */
const JOB_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Builds kept per app, newest first. */
const BUILDS_KEPT = 50;
/** Old events are forgotten at most this often. */
const EVENT_PRUNE_INTERVAL_MS = 60 * 1000;

export type Controller = ReturnType<typeof createController>;

export function createController(options: ControllerOptions) {
  const { store, blobstore, bridge, clock } = options;
  const log = options.logger.child({ session: 'cloud-controller' });
  const queues = new Map<string, Promise<void>>();
  const background = new Set<Promise<void>>();

  /** Runs fn after every earlier bridge exchange of the same app. */
  function serialized<T>(appGuid: string, fn: () => Promise<T>): Promise<T> {
    const previous = queues.get(appGuid) ?? Promise.resolve();
    const run = previous.then(fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(appGuid, settled);
    void settled.then(() => {
      if (queues.get(appGuid) === settled) queues.delete(appGuid);
    });
    return run;
  }

  function inBackground(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => log.error({ err: error }, 'background-work-failed'));
    background.add(tracked);
    void tracked.finally(() => background.delete(tracked));
  }

  function resolveApp(ref: string): AppRecord {
    const app = store.appByGuid(ref) ?? store.appByName(ref);
    if (!app) throw new CcApiError(404, 'CF-AppNotFound', `app ${JSON.stringify(ref)} not found`, 100004);
    return app;
  }

  /** Reads the app afresh, applies the change and writes it, in one transaction. */
  function updateApp(guid: string, change: (app: AppRecord) => void): AppRecord {
    return store.transaction(() => {
      const app = store.appByGuid(guid);
      if (!app) throw new CcApiError(404, 'CF-AppNotFound', `app ${guid} not found`, 100004);
      change(app);
      app.updatedAtMs = clock.now();
      store.updateApp(app);
      return app;
    });
  }

  let eventsPrunedAt = Number.NEGATIVE_INFINITY;
  function recordEvent(app: Pick<AppRecord, 'guid' | 'name'>, type: string, actor: string, metadata: Record<string, unknown> = {}): void {
    const now = clock.now();
    // Events are kept for a while, as Cloud Controller keeps them (31 days by default).
    if (now - eventsPrunedAt >= EVENT_PRUNE_INTERVAL_MS) {
      store.pruneEvents(now - options.eventRetentionMs);
      eventsPrunedAt = now;
    }
    store.insertEvent({ guid: randomUUID(), appGuid: app.guid, appName: app.name, type, actor, metadata, timestampMs: now });
  }

  const newVersion = (app: AppRecord) => {
    app.version = randomUUID();
  };
  const touch = (app: AppRecord) => {
    app.etag = nextEtag(app.etag, clock.now());
  };

  function dropletUrl(app: AppRecord, droplet: DropletRecord): string {
    return blobstore.signedUrl(`/staging/droplets/${app.guid}/download`, { droplet: droplet.guid });
  }

  function desiredAppOf(app: AppRecord): DesireAppRequestFromCC | undefined {
    if (app.state !== 'STARTED' || !app.currentDropletGuid) return undefined;
    const droplet = store.dropletByGuid(app.currentDropletGuid);
    if (!droplet) return undefined;
    return desireAppRequestFor(app, droplet, options.context(), dropletUrl(app, droplet));
  }

  function needsStaging(app: AppRecord): boolean {
    const droplet = app.currentDropletGuid ? store.dropletByGuid(app.currentDropletGuid) : undefined;
    if (app.lifecycle === 'docker') return !droplet;
    const latest = store.latestPackage(app.guid);
    if (!latest) return false;
    if (droplet && droplet.packageGuid === latest.guid) return false;
    const staging = store.stagingBuildOf(app.guid);
    return !(staging && staging.packageGuid === latest.guid);
  }

  // -------------------------------------------------------------------------------------------
  // Bridge exchanges (always inside serialized())

  /** Desires the app's current process (if it should run) and stops the one it replaces. */
  async function desireCurrent(guid: string, requestId: string | undefined, warnings: string[]): Promise<void> {
    const app = store.appByGuid(guid);
    if (!app) return;
    const request = desiredAppOf(app);
    if (!request) return;
    const processGuid = request.processGuid;
    const plog = log.child({ app_guid: guid, process_guid: processGuid });
    plog.info({ instances: request.numInstances, etag: request.etag }, 'desiring-app');
    try {
      await bridge.desireApp(request, requestId);
    } catch (error) {
      plog.error({ err: error }, 'failed-to-desire-app');
      warnings.push(`the bridge did not take the desired app ${processGuid}: ${(error as Error).message}; the nsync bulker will retry`);
      return;
    }
    let replaced: string | null = null;
    try {
      updateApp(guid, (current) => {
        replaced = current.desiredProcessGuid;
        current.desiredProcessGuid = processGuid;
      });
    } catch (error) {
      // Deleted meanwhile: what was just desired goes too.
      if (!(error instanceof CcApiError)) throw error;
      replaced = processGuid;
    }
    if (replaced !== null && replaced !== processGuid) await stopProcess(guid, replaced, requestId, warnings);
  }

  async function stopProcess(appGuid: string, processGuid: string, requestId: string | undefined, warnings: string[]): Promise<void> {
    const plog = log.child({ app_guid: appGuid, process_guid: processGuid });
    plog.info('stopping-process');
    try {
      await bridge.stopApp(processGuid, requestId);
    } catch (error) {
      plog.error({ err: error }, 'failed-to-stop-process');
      warnings.push(`the bridge did not stop ${processGuid}: ${(error as Error).message}; the nsync bulker will remove it`);
    }
  }

  /** Stops what runs for the app at the bridge and forgets it. */
  async function stopDesired(guid: string, requestId: string | undefined, warnings: string[]): Promise<void> {
    let desired: string | null = null;
    updateApp(guid, (app) => {
      desired = app.desiredProcessGuid;
      app.desiredProcessGuid = null;
    });
    if (desired !== null) await stopProcess(guid, desired, requestId, warnings);
  }

  async function cancelStaging(build: BuildRecord, requestId: string | undefined): Promise<void> {
    // Marked first, so a completion arriving meanwhile is ignored.
    store.updateBuild({ ...build, state: 'CANCELED', updatedAtMs: clock.now() });
    blobstore.remove(blobstore.dropletPath(build.guid));
    const blog = log.child({ app_guid: build.appGuid, staging_guid: build.guid });
    blog.info('stopping-staging');
    try {
      await bridge.stopStaging(build.guid, requestId);
    } catch (error) {
      // The task runs to its end; its completion is ignored.
      blog.error({ err: error }, 'failed-to-stop-staging');
    }
  }

  function failBuild(build: BuildRecord, app: Pick<AppRecord, 'guid' | 'name'>, errorId: string, message: string, actor: string): BuildRecord {
    const failed: BuildRecord = { ...build, state: 'FAILED', errorId, errorMessage: message, updatedAtMs: clock.now() };
    store.transaction(() => {
      store.updateBuild(failed);
      recordEvent(app, 'audit.app.build.failed', actor, { build_guid: build.guid, error_id: errorId, error_message: message });
    });
    // A droplet uploaded before the failure was reported is of no use.
    blobstore.remove(blobstore.dropletPath(build.guid));
    log.info({ app_guid: app.guid, staging_guid: build.guid, error_id: errorId }, 'staging-failed');
    return failed;
  }

  /** Requests a new staging of the app's latest package (or image), stopping any staging in progress. */
  async function stage(guid: string, requestId: string | undefined): Promise<BuildRecord> {
    const inProgress = store.stagingBuildOf(guid);
    if (inProgress) await cancelStaging(inProgress, requestId);
    const app = store.appByGuid(guid);
    if (!app) throw notFound('app');
    const pkg = app.lifecycle === 'buildpack' ? store.latestPackage(guid) : undefined;
    if (app.lifecycle === 'buildpack' && !pkg) throw new CcApiError(422, 'CF-AppPackageInvalid', 'the app has no bits: upload them first', 150001);
    const now = clock.now();
    const build: BuildRecord = {
      guid: randomUUID(),
      appGuid: guid,
      packageGuid: pkg?.guid ?? null,
      lifecycle: app.lifecycle,
      state: 'STAGING',
      errorId: null,
      errorMessage: null,
      dropletSize: null,
      dropletMd5: null,
      createdAtMs: now,
      updatedAtMs: now,
    };
    store.transaction(() => {
      store.insertBuild(build);
      store.pruneBuilds(guid, BUILDS_KEPT);
      recordEvent(app, 'audit.app.build.create', 'user', { build_guid: build.guid, package_guid: build.packageGuid, lifecycle: build.lifecycle });
    });
    const blog = log.child({ app_guid: guid, staging_guid: build.guid });

    let request;
    try {
      const context = options.context();
      if (app.lifecycle === 'docker') {
        request = stagingRequestFor({ app, context, limits: options.staging });
      } else {
        const cachePath = blobstore.buildpackCachePath(guid);
        request = stagingRequestFor({
          app,
          context,
          limits: options.staging,
          buildpacks: buildpacksFor(app.buildpack, options.buildpacks),
          urls: {
            appBitsDownload: blobstore.signedUrl(`/staging/packages/${guid}`, { package: pkg!.guid }),
            buildArtifactsCacheDownload: existsSync(cachePath) ? blobstore.signedUrl(`/staging/buildpack_cache/${guid}/download`) : undefined,
            buildArtifactsCacheUpload: blobstore.signedUrl(`/staging/buildpack_cache/${guid}/upload`),
            dropletUpload: blobstore.signedUrl(`/staging/droplets/${guid}/upload`, { build: build.guid }),
          },
        });
      }
    } catch (error) {
      if (!(error instanceof UnknownBuildpackError)) throw error;
      failBuild(build, app, 'StagingError', error.message, 'cloud-controller');
      throw unprocessable(error.message);
    }

    blog.info({ lifecycle: app.lifecycle }, 'requesting-staging');
    try {
      await bridge.stage(build.guid, request, requestId);
    } catch (error) {
      blog.error({ err: error }, 'failed-to-request-staging');
      const message = `the stager refused the staging request: ${(error as Error).message}`;
      failBuild(build, app, 'StagingError', message, 'cloud-controller');
      throw new CcApiError(502, 'CF-StagerError', message, 170001);
    }
    blog.info('staging-requested');
    return build;
  }

  function removeOldDroplets(appGuid: string, keep: string | null): void {
    const droplets = store.dropletsOf(appGuid);
    const kept = new Set(droplets.slice(0, DROPLETS_KEPT).map((d) => d.guid));
    if (keep) kept.add(keep);
    for (const droplet of droplets) {
      if (kept.has(droplet.guid)) continue;
      store.deleteDroplet(droplet.guid);
      if (droplet.hasFile) blobstore.remove(blobstore.dropletPath(droplet.guid));
    }
  }

  function removeOldPackages(appGuid: string): void {
    const packages = store.packagesOf(appGuid);
    const staging = store.stagingBuildOf(appGuid);
    for (const pkg of packages.slice(1)) {
      if (staging?.packageGuid === pkg.guid) continue;
      store.deletePackage(pkg.guid);
      blobstore.remove(blobstore.packagePath(pkg.guid));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Instances as the bridge reports them

  function instanceViews(app: AppRecord, reported: readonly LRPInstance[]): InstanceView[] {
    const byIndex = new Map<number, LRPInstance>();
    for (const instance of reported) {
      if (instance.index < app.instances) byIndex.set(instance.index, instance);
    }
    const views: InstanceView[] = [];
    for (let index = 0; index < app.instances; index++) {
      const instance = byIndex.get(index);
      if (!instance) {
        // Cloud Controller fills in the instances Diego does not report.
        views.push({ index, state: 'DOWN', instanceGuid: '', since: null, uptime: null, details: '', host: '', port: 0, cpu: null, memoryBytes: null, diskBytes: null });
        continue;
      }
      views.push({
        index,
        state: LRP_STATE_NAMES[instance.state] ?? 'UNKNOWN',
        instanceGuid: instance.instanceGuid,
        since: Number(instance.since),
        uptime: Number(instance.uptime),
        details: instance.details,
        host: instance.host,
        port: instance.port,
        cpu: instance.stats ? instance.stats.cpu : null,
        memoryBytes: instance.stats ? Number(instance.stats.mem) : null,
        diskBytes: instance.stats ? Number(instance.stats.disk) : null,
      });
    }
    return views;
  }

  const countRunning = (app: AppRecord, reported: readonly LRPInstance[]) =>
    new Set(reported.filter((i) => i.state === 2 && i.index < app.instances).map((i) => i.index)).size;

  function viewOf(app: AppRecord): AppView {
    return {
      app,
      latestPackage: store.latestPackage(app.guid),
      currentDroplet: app.currentDropletGuid ? store.dropletByGuid(app.currentDropletGuid) : undefined,
      latestBuild: store.buildsOf(app.guid, 1)[0],
      runningInstances: app.state === 'STARTED' && app.currentDropletGuid ? null : 0,
    };
  }

  // -------------------------------------------------------------------------------------------
  // The operations

  return {
    /** Waits for work started after an answer was sent (desires after staging), bounded by the bridge deadline. */
    async drain(): Promise<void> {
      await Promise.all([...background]);
      await Promise.all([...queues.values()]);
    },

    createApp(input: CreateAppInput): AppView {
      const defaults = options.appDefaults;
      if (store.appByName(input.name)) throw new CcApiError(422, 'CF-AppNameTaken', `an app named ${JSON.stringify(input.name)} exists already`, 100002);
      const buildpack = input.buildpack ?? null;
      if (buildpack !== null && !isBuildpackUrl(buildpack) && !options.buildpacks.some((b) => b.name === buildpack)) {
        throw unprocessable(`buildpack ${JSON.stringify(buildpack)} is not configured (configured: ${options.buildpacks.map((b) => b.name).join(', ') || 'none'})`);
      }
      const docker = input.dockerImage !== undefined && input.dockerImage !== '';
      if (docker && buildpack !== null) throw unprocessable('an app has either a buildpack or a docker image, not both');
      const now = clock.now();
      const app = store.transaction(() => {
        const created = store.insertApp({
          guid: randomUUID(),
          name: input.name,
          state: 'STOPPED',
          lifecycle: docker ? 'docker' : 'buildpack',
          buildpack,
          dockerImage: docker ? input.dockerImage! : null,
          dockerUsername: docker ? (input.dockerUsername ?? null) : null,
          dockerPassword: docker ? (input.dockerPassword ?? null) : null,
          memoryMb: input.memoryMb ?? defaults.memoryMb,
          diskMb: input.diskMb ?? defaults.diskMb,
          instances: input.instances ?? defaults.instances,
          fileDescriptors: defaults.fileDescriptors,
          healthCheckType: input.healthCheckType ?? defaults.healthCheckType,
          healthCheckTimeout: input.healthCheckTimeout ?? defaults.healthCheckTimeout,
          healthCheckHttpEndpoint: input.healthCheckHttpEndpoint ?? defaults.healthCheckHttpEndpoint,
          allowSsh: input.allowSsh ?? false,
          environment: input.environment ?? {},
          version: randomUUID(),
          etag: nextEtag(null, now),
          currentDropletGuid: null,
          desiredProcessGuid: null,
          createdAtMs: now,
          updatedAtMs: now,
        });
        recordEvent(created, 'audit.app.create', 'user', {
          lifecycle: created.lifecycle,
          buildpack: created.buildpack,
          docker_image: created.dockerImage,
          memory_mb: created.memoryMb,
          disk_mb: created.diskMb,
          instances: created.instances,
          // Values may be secrets; names only.
          environment_variable_names: Object.keys(created.environment),
        });
        return created;
      });
      log.info({ app_guid: app.guid, app_name: app.name, lifecycle: app.lifecycle }, 'app-created');
      return viewOf(app);
    },

    /** The app's bits (a zip or a gzipped tar), as the request body. */
    async uploadBits(ref: string, body: IncomingMessage): Promise<PackageRecord> {
      const app = resolveApp(ref);
      if (app.lifecycle === 'docker') throw unprocessable('a docker app has no bits to upload');
      const scratch = blobstore.scratchPath();
      const received = await receiveRawFile(body, scratch, options.maxUploadBytes);
      const type = archiveTypeOf(received.head);
      if (!type) {
        blobstore.remove(scratch);
        throw new CcApiError(422, 'CF-AppBitsUploadInvalid', 'the bits must be a zip or a gzipped tar of the app directory', 160001);
      }
      const pkg: PackageRecord = { guid: randomUUID(), appGuid: app.guid, type, size: received.size, sha256: received.sha256.toString('hex'), createdAtMs: clock.now() };
      try {
        blobstore.commit(scratch, blobstore.packagePath(pkg.guid));
        store.transaction(() => {
          if (!store.appByGuid(app.guid)) throw new CcApiError(404, 'CF-AppNotFound', `app ${app.guid} not found`, 100004);
          store.insertPackage(pkg);
          recordEvent(app, 'audit.app.upload-bits', 'user', { package_guid: pkg.guid, type, size: pkg.size });
        });
      } catch (error) {
        blobstore.remove(scratch);
        blobstore.remove(blobstore.packagePath(pkg.guid));
        throw error;
      }
      removeOldPackages(app.guid);
      log.info({ app_guid: app.guid, package_guid: pkg.guid, type, size: pkg.size }, 'package-uploaded');
      return pkg;
    },

    start(ref: string, requestId?: string): Promise<Outcome<AppView>> {
      const { guid } = resolveApp(ref);
      return serialized(guid, async () => {
        const warnings: string[] = [];
        const before = store.appByGuid(guid);
        if (!before) throw notFound('app');
        if (before.lifecycle === 'buildpack' && !before.currentDropletGuid && !store.latestPackage(guid)) {
          throw new CcApiError(422, 'CF-AppPackageInvalid', 'the app has no bits: upload them first', 150001);
        }
        const wasStarted = before.state === 'STARTED';
        const staging = needsStaging(before);
        const app = updateApp(guid, (current) => {
          current.state = 'STARTED';
          // A new process for every start; a staging in progress makes one when it completes.
          if (!wasStarted && !staging) newVersion(current);
          if (!wasStarted) touch(current);
        });
        if (!wasStarted) recordEvent(app, 'audit.app.start', 'user');
        if (staging) await stage(guid, requestId);
        else await desireCurrent(guid, requestId, warnings);
        return { value: viewOf(store.appByGuid(guid)!), warnings };
      });
    },

    stop(ref: string, requestId?: string): Promise<Outcome<AppView>> {
      const { guid } = resolveApp(ref);
      return serialized(guid, async () => {
        const warnings: string[] = [];
        const app = updateApp(guid, (current) => {
          if (current.state !== 'STOPPED') touch(current);
          current.state = 'STOPPED';
        });
        recordEvent(app, 'audit.app.stop', 'user');
        const staging = store.stagingBuildOf(guid);
        if (staging) await cancelStaging(staging, requestId);
        await stopDesired(guid, requestId, warnings);
        return { value: viewOf(store.appByGuid(guid)!), warnings };
      });
    },

    /** Stops what runs, then starts again: a new process (and a staging first when new bits wait). */
    restart(ref: string, requestId?: string): Promise<Outcome<AppView>> {
      const { guid } = resolveApp(ref);
      return serialized(guid, async () => {
        const warnings: string[] = [];
        const before = store.appByGuid(guid);
        if (!before) throw notFound('app');
        if (before.lifecycle === 'buildpack' && !before.currentDropletGuid && !store.latestPackage(guid)) {
          throw new CcApiError(422, 'CF-AppPackageInvalid', 'the app has no bits: upload them first', 150001);
        }
        await stopDesired(guid, requestId, warnings);
        const staging = needsStaging(before);
        const app = updateApp(guid, (current) => {
          current.state = 'STARTED';
          if (!staging) newVersion(current);
          touch(current);
        });
        recordEvent(app, 'audit.app.restart', 'user');
        if (staging) await stage(guid, requestId);
        else await desireCurrent(guid, requestId, warnings);
        return { value: viewOf(store.appByGuid(guid)!), warnings };
      });
    },

    /** A new staging of the latest bits; what runs keeps running until the new droplet replaces it. */
    restage(ref: string, requestId?: string): Promise<Outcome<AppView>> {
      const { guid } = resolveApp(ref);
      return serialized(guid, async () => {
        const build = await stage(guid, requestId);
        const app = store.appByGuid(guid);
        if (!app) throw notFound('app');
        recordEvent(app, 'audit.app.restage', 'user', { build_guid: build.guid });
        return { value: viewOf(app), warnings: [] };
      });
    },

    scale(ref: string, input: ScaleInput, requestId?: string): Promise<Outcome<AppView>> {
      const { guid } = resolveApp(ref);
      return serialized(guid, async () => {
        const warnings: string[] = [];
        const changes: Record<string, number> = {};
        const app = updateApp(guid, (current) => {
          if (input.instances !== undefined && input.instances !== current.instances) changes.instances = current.instances = input.instances;
          if (input.memoryMb !== undefined && input.memoryMb !== current.memoryMb) changes.memory_mb = current.memoryMb = input.memoryMb;
          if (input.diskMb !== undefined && input.diskMb !== current.diskMb) changes.disk_mb = current.diskMb = input.diskMb;
          if (Object.keys(changes).length === 0) return;
          // Limits are part of the recipe, which an update never rebuilds: they need a new process.
          if (changes.memory_mb !== undefined || changes.disk_mb !== undefined) newVersion(current);
          touch(current);
        });
        if (Object.keys(changes).length > 0) {
          recordEvent(app, 'audit.app.update', 'user', changes);
          await desireCurrent(guid, requestId, warnings);
        }
        return { value: viewOf(store.appByGuid(guid)!), warnings };
      });
    },

    environment(ref: string): { app: AppRecord; environment: Record<string, string> } {
      const app = resolveApp(ref);
      return { app, environment: app.environment };
    },

    /** Sets (string) and unsets (null) variables; a running app gets a new process with them. */
    setEnvironment(ref: string, patch: Record<string, string | null>, requestId?: string): Promise<Outcome<Record<string, string>>> {
      const { guid } = resolveApp(ref);
      return serialized(guid, async () => {
        const warnings: string[] = [];
        const app = updateApp(guid, (current) => {
          const next = { ...current.environment };
          for (const [name, value] of Object.entries(patch)) {
            if (value === null) delete next[name];
            else next[name] = value;
          }
          current.environment = next;
          newVersion(current);
          touch(current);
        });
        recordEvent(app, 'audit.app.update', 'user', { environment_variable_names: Object.keys(patch) });
        await desireCurrent(guid, requestId, warnings);
        return { value: app.environment, warnings };
      });
    },

    delete(ref: string, requestId?: string): Promise<Outcome<void>> {
      const { guid } = resolveApp(ref);
      return serialized(guid, async () => {
        const warnings: string[] = [];
        const app = store.appByGuid(guid);
        if (!app) throw notFound('app');
        const staging = store.stagingBuildOf(guid);
        if (staging) await cancelStaging(staging, requestId);
        await stopDesired(guid, requestId, warnings);
        const packages = store.packagesOf(guid);
        const droplets = store.dropletsOf(guid);
        const builds = store.buildsOf(guid, -1);
        store.transaction(() => {
          store.deleteAppData(guid);
          store.deleteApp(guid);
          recordEvent(app, 'audit.app.delete-request', 'user');
        });
        for (const pkg of packages) blobstore.remove(blobstore.packagePath(pkg.guid));
        // Droplet files are named by build, whether or not the build completed.
        for (const guidOfDroplet of new Set([...droplets.map((d) => d.guid), ...builds.map((b) => b.guid)])) blobstore.remove(blobstore.dropletPath(guidOfDroplet));
        blobstore.remove(blobstore.buildpackCachePath(guid));
        log.info({ app_guid: guid, app_name: app.name }, 'app-deleted');
        return { value: undefined, warnings };
      });
    },

    /** One app, with its instances as TPS reports them (stats when TPS has them). */
    async app(ref: string): Promise<Outcome<AppView>> {
      const app = resolveApp(ref);
      const view = viewOf(app);
      const warnings: string[] = [];
      view.instances = [];
      if (app.state === 'STARTED' && app.currentDropletGuid) {
        const processGuid = processGuidFor(app);
        let reported: LRPInstance[] | undefined;
        try {
          reported = await bridge.instanceStats(processGuid);
        } catch (statsError) {
          // Stats need the desired LRP and log-cache; plain states need neither.
          try {
            reported = await bridge.instances(processGuid);
            warnings.push(`no instance stats: ${(statsError as Error).message}`);
          } catch (error) {
            warnings.push(`no instance states: ${(error as Error).message}`);
          }
        }
        if (reported) {
          view.instances = instanceViews(app, reported);
          view.runningInstances = countRunning(app, reported);
        }
      }
      return { value: view, warnings };
    },

    /** Every app, with running instances from TPS's bulk status. */
    async apps(): Promise<Outcome<AppView[]>> {
      const views = store.listApps().map(viewOf);
      const warnings: string[] = [];
      const running = views.filter((v) => v.app.state === 'STARTED' && v.app.currentDropletGuid);
      for (let i = 0; i < running.length; i += BULK_STATUS_BATCH) {
        const batch = running.slice(i, i + BULK_STATUS_BATCH);
        try {
          const reported = await bridge.bulkInstances(batch.map((v) => processGuidFor(v.app)));
          for (const view of batch) view.runningInstances = countRunning(view.app, reported.get(processGuidFor(view.app)) ?? []);
        } catch (error) {
          warnings.push(`no instance states: ${(error as Error).message}`);
        }
      }
      return { value: views, warnings };
    },

    builds(ref: string, limit = 50): { app: AppRecord; builds: BuildRecord[] } {
      const app = resolveApp(ref);
      return { app, builds: store.buildsOf(app.guid, limit) };
    },

    events(query: { app?: string; types?: string[]; limit: number }): EventRecord[] {
      const appGuid = query.app === undefined ? undefined : resolveApp(query.app).guid;
      return store.events({ appGuid, types: query.types, limit: query.limit });
    },

    resolveApp,

    // -------------------------------------------------------------------------------------------
    // The internal API the bridge calls

    /** POST /internal/staging/:staging_guid/completed */
    stagingCompleted(stagingGuid: string, bodyText: string, requestId?: string): void {
      let response: StagingResponseForCC;
      try {
        response = decodeLegacyJson<StagingResponseForCC>(`${CC}.StagingResponseForCC`, bodyText);
      } catch (error) {
        throw new CcApiError(400, 'CF-MessageParseError', `Request invalid due to parse error: ${(error as Error).message}`, 1001);
      }
      const build = store.buildByGuid(stagingGuid);
      if (!build) throw notFound('staging');
      const blog = log.child({ app_guid: build.appGuid, staging_guid: stagingGuid });
      if (build.state !== 'STAGING') {
        // A repeated callback, or the completion of a staging that was stopped or replaced.
        blog.info({ state: build.state }, 'staging-completion-ignored');
        return;
      }
      const app = store.appByGuid(build.appGuid);
      if (!app) throw notFound('app');

      if (response.error) {
        const errorId = encodedErrorId(response);
        failBuild(build, app, errorId || 'StagingError', response.error.message, 'bridge');
        return;
      }
      if (build.lifecycle === 'buildpack' && build.dropletSize === null) {
        failBuild(build, app, 'StagingError', 'staging reported success but no droplet was uploaded', 'bridge');
        return;
      }

      const lifecycleData = parseLifecycleData(response.lifecycleData);
      const droplet: DropletRecord = {
        guid: build.guid,
        appGuid: app.guid,
        buildGuid: build.guid,
        packageGuid: build.packageGuid,
        lifecycle: build.lifecycle,
        executionMetadata: response.executionMetadata,
        detectedStartCommand: response.detectedStartCommand,
        startCommand: response.detectedStartCommand.web ?? '',
        buildpackKey: stringOrNull(lifecycleData.buildpack_key),
        detectedBuildpack: stringOrNull(lifecycleData.detected_buildpack),
        dockerImage: build.lifecycle === 'docker' ? (stringOrNull(lifecycleData.docker_image) ?? app.dockerImage) : null,
        hasFile: build.lifecycle === 'buildpack',
        size: build.dropletSize,
        md5: build.dropletMd5,
        createdAtMs: clock.now(),
      };
      const updated = store.transaction(() => {
        store.insertDroplet(droplet);
        store.updateBuild({ ...build, state: 'STAGED', updatedAtMs: clock.now() });
        const current = updateApp(app.guid, (a) => {
          a.currentDropletGuid = droplet.guid;
          newVersion(a);
          touch(a);
        });
        recordEvent(app, 'audit.app.droplet.create', 'bridge', {
          build_guid: build.guid,
          droplet_guid: droplet.guid,
          detected_buildpack: droplet.detectedBuildpack,
          start_command: droplet.startCommand,
        });
        return current;
      });
      removeOldDroplets(app.guid, droplet.guid);
      blog.info({ detected_buildpack: droplet.detectedBuildpack }, 'staging-succeeded');
      // Answered first: the stager waits on this answer with a short deadline.
      if (updated.state === 'STARTED') {
        inBackground(
          serialized(app.guid, async () => {
            await desireCurrent(app.guid, requestId, []);
          }),
        );
      }
    },

    /** The crash, rescheduling and readiness reports; false when the event id was seen before. */
    instanceReport(kind: InstanceReportKind, processGuid: string, bodyText: string, eventId: string | undefined): boolean {
      const types: Record<InstanceReportKind, string> = {
        'crashed-legacy': `${CC}.AppCrashedRequest`,
        crashed: `${CC}.AppCrashedRequestV4`,
        rescheduling: `${CC}.AppReschedulingRequest`,
        readiness_changed: `${CC}.AppReadinessChangedRequest`,
      };
      let body: Record<string, unknown>;
      try {
        body = decodeLegacyJson<Record<string, unknown>>(types[kind], bodyText);
      } catch (error) {
        throw new CcApiError(400, 'CF-MessageParseError', `Request invalid due to parse error: ${(error as Error).message}`, 1001);
      }
      if (eventId !== undefined && store.eventIdSeen(eventId)) {
        log.debug({ process_guid: processGuid, event_id: eventId }, 'duplicate-report-dropped');
        return false;
      }
      const app = store.appByGuid(appGuidOfProcessGuid(processGuid));
      if (!app) throw notFound('app');
      const { type, metadata } = reportEvent(kind, processGuid, body);
      const now = clock.now();
      const recorded = store.transaction(() => {
        if (eventId !== undefined && !store.rememberEventId(eventId, now, now - options.eventIdRetentionMs)) return false;
        recordEvent(app, type, 'bridge', metadata);
        return true;
      });
      if (recorded) log.info({ app_guid: app.guid, process_guid: processGuid, type, index: metadata.index }, 'instance-reported');
      else log.debug({ process_guid: processGuid, event_id: eventId }, 'duplicate-report-dropped');
      return recorded;
    },

    /** GET /internal/bulk/apps?format=fingerprint: one page after the token's id. */
    fingerprints(batchSize: number, afterId: number): { fingerprints: { processGuid: string; etag: string }[]; nextId: number } {
      const apps = store.runnableApps(afterId, batchSize);
      const nextId = apps.length > 0 ? apps[apps.length - 1]!.id : afterId;
      return { fingerprints: apps.map((app) => ({ processGuid: processGuidFor(app), etag: app.etag })), nextId };
    },

    /** GET /internal/bulk/apps without format: the full apps of one page. */
    desiredAppsPage(batchSize: number, afterId: number): { apps: DesireAppRequestFromCC[]; nextId: number } {
      const apps = store.runnableApps(afterId, batchSize);
      const nextId = apps.length > 0 ? apps[apps.length - 1]!.id : afterId;
      return { apps: apps.map(desiredAppOf).filter((a): a is DesireAppRequestFromCC => a !== undefined), nextId };
    },

    /** POST /internal/bulk/apps: the desired apps of those process guids that are current. */
    desiredApps(processGuids: readonly string[]): DesireAppRequestFromCC[] {
      const found: DesireAppRequestFromCC[] = [];
      for (const processGuid of processGuids) {
        const app = store.appByGuid(appGuidOfProcessGuid(processGuid));
        if (!app || processGuidFor(app) !== processGuid) continue;
        const desired = desiredAppOf(app);
        if (desired) found.push(desired);
      }
      return found;
    },

    // -------------------------------------------------------------------------------------------
    // The blobstore

    packageFile(appGuid: string, packageGuid: string | null): BlobFile {
      const pkg = packageGuid ? store.packageByGuid(packageGuid) : store.latestPackage(appGuid);
      if (!pkg || pkg.appGuid !== appGuid) throw notFound('package');
      return { path: blobstore.packagePath(pkg.guid), size: pkg.size, contentType: pkg.type === 'zip' ? 'application/zip' : 'application/gzip' };
    },

    /** A droplet upload (multipart, `file` part) for the staging in progress. */
    async receiveDroplet(appGuid: string, buildGuid: string | null, req: IncomingMessage): Promise<ReceivedJob> {
      const app = store.appByGuid(appGuid);
      if (!app) throw notFound('app');
      const stagingBuild = () => {
        const build = buildGuid ? store.buildByGuid(buildGuid) : store.stagingBuildOf(appGuid);
        if (!build || build.appGuid !== appGuid || build.state !== 'STAGING') throw new CcApiError(404, 'CF-StagingNotFound', `no staging in progress for app ${appGuid}`, 170004);
        return build;
      };
      const build = stagingBuild();
      const scratch = blobstore.scratchPath();
      const received = await receiveMultipartFile(req, 'file', scratch, options.maxUploadBytes);
      const md5Header = req.headers['content-md5'];
      if (typeof md5Header === 'string' && md5Header !== '' && !contentMd5Matches(md5Header, received.md5)) {
        blobstore.remove(scratch);
        throw new CcApiError(400, 'CF-DropletUploadInvalid', 'the droplet does not match its Content-MD5', 380002);
      }
      const job: ReceivedJob = { guid: randomUUID(), status: 'finished', createdAtMs: clock.now() };
      try {
        store.transaction(() => {
          const current = stagingBuild();
          blobstore.commit(scratch, blobstore.dropletPath(build.guid));
          store.updateBuild({ ...current, dropletSize: received.size, dropletMd5: received.md5.toString('hex'), updatedAtMs: clock.now() });
          // The droplet is in place once received: the job has nothing left to do.
          store.insertJob(job.guid, job.status, job.createdAtMs, job.createdAtMs - JOB_RETENTION_MS);
        });
      } catch (error) {
        blobstore.remove(scratch);
        throw error;
      }
      log.info({ app_guid: appGuid, staging_guid: build.guid, size: received.size }, 'droplet-uploaded');
      return job;
    },

    dropletFile(appGuid: string, dropletGuid: string | null): BlobFile {
      const app = store.appByGuid(appGuid);
      const guid = dropletGuid ?? app?.currentDropletGuid;
      const droplet = guid ? store.dropletByGuid(guid) : undefined;
      if (!app || !droplet || droplet.appGuid !== appGuid || !droplet.hasFile) throw notFound('droplet');
      return { path: blobstore.dropletPath(droplet.guid), size: droplet.size ?? 0, contentType: 'application/octet-stream' };
    },

    async receiveBuildpackCache(appGuid: string, req: IncomingMessage): Promise<void> {
      if (!store.appByGuid(appGuid)) throw notFound('app');
      const scratch = blobstore.scratchPath();
      const received = await receiveMultipartFile(req, 'file', scratch, options.maxUploadBytes);
      if (!store.appByGuid(appGuid)) {
        blobstore.remove(scratch);
        throw notFound('app');
      }
      blobstore.commit(scratch, blobstore.buildpackCachePath(appGuid));
      log.info({ app_guid: appGuid, size: received.size }, 'build-cache-uploaded');
    },

    buildpackCacheFile(appGuid: string): BlobFile {
      const path = blobstore.buildpackCachePath(appGuid);
      if (!store.appByGuid(appGuid) || !existsSync(path)) throw notFound('buildpack cache');
      return { path, size: statSync(path).size, contentType: 'application/gzip' };
    },

    job(guid: string): ReceivedJob {
      const job = store.jobStatus(guid);
      if (!job) throw new CcApiError(404, 'CF-JobNotFound', `the job could not be found: ${guid}`, 10010);
      return { guid, ...job };
    },
  };
}

function archiveTypeOf(head: Buffer): 'zip' | 'tgz' | undefined {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 0x03 || head[2] === 0x05) && (head[3] === 0x04 || head[3] === 0x06)) return 'zip';
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tgz';
  return undefined;
}

/** The error id as CC's vocabulary names it (StagingError, NoAppDetectedError, ...). */
function encodedErrorId(response: StagingResponseForCC): string {
  const written = JSON.parse(encodeLegacyJson(`${CC}.StagingResponseForCC`, response)) as { error?: { id?: string } };
  return written.error?.id ?? '';
}

function parseLifecycleData(text: string): Record<string, unknown> {
  if (!text) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const stringOrNull = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);

type ReportBody = Partial<AppCrashedRequest & AppCrashedRequestV4 & AppReschedulingRequest & AppReadinessChangedRequest>;

function reportEvent(kind: InstanceReportKind, processGuid: string, raw: Record<string, unknown>): { type: string; metadata: Record<string, unknown> & { index?: number } } {
  const body = raw as ReportBody;
  const base = { process_guid: processGuid, version: processGuid.slice(37), instance: body.instance, index: body.index };
  switch (kind) {
    case 'crashed-legacy':
    case 'crashed':
      return {
        type: 'app.crash',
        metadata: {
          ...base,
          ...(kind === 'crashed' && body.cellId ? { cell_id: body.cellId } : {}),
          reason: body.reason,
          ...(kind === 'crashed-legacy' && body.exitStatus ? { exit_status: body.exitStatus } : {}),
          exit_description: body.exitDescription ?? '',
          crash_count: body.crashCount,
          // Nanoseconds since the epoch; a JSON number, as Cloud Controller stores it.
          crash_timestamp: Number(body.crashTimestamp ?? 0),
        },
      };
    case 'rescheduling':
      return { type: 'app.rescheduling', metadata: { ...base, ...(body.cellId ? { cell_id: body.cellId } : {}), reason: body.reason } };
    case 'readiness_changed':
      return { type: 'app.readiness_changed', metadata: { ...base, ...(body.cellId ? { cell_id: body.cellId } : {}), ready: body.ready } };
  }
}
