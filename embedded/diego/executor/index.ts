// The embedded cell's executor: containers (bubblewrap + pasta), the Diego action tree, and the
// two things a cell does with them, tasks and app instances. createExecutor checks the host
// first: without bwrap or pasta (or not as root) it throws one line saying what to install.
//
// Data directory layout (all under options.dataDir, root-only):
//   containers/<guid>/{tmp,home}   a container's /tmp and /home/vcap, removed with the container
//   download-cache/<sha256 of cache_key>/{blob,meta.json}
//   tmp/                           downloads being checked, uploads being sent
//   images/{blobs,roots}/          image layers by digest, unpacked image roots by manifest digest
//   runtime/                       the host runtime image roots see at /tmp/ccbridge-runtime
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from '../../../lib/log.js';
import { createActionRunner, type ActionRunner } from './actions.js';
import { createContainer, createPortAllocator, type Container, type ContainerSpec, type Rootfs } from './container.js';
import { createDownloader } from './download.js';
import { createLrpRunner, type LrpInstance, type LrpInstanceRequest } from './lrp-runner.js';
import { DEFAULT_SANDBOX_TIMINGS } from './sandbox.js';
import { createTaskRunner, type TaskRunRequest, type TaskRunResult } from './task-runner.js';
import { findSandboxTools, type SandboxTools } from './tools.js';
import type { HostRuntimePrograms } from './host-runtime.js';
import { createImageStore, type ImageRegistry, type ImageStore } from './images.js';
import { createRootPreparer } from './roots.js';
import { createUploader } from './upload.js';

export { chooseAction, timeoutMsOf, type ActionContext, type ActionRunner } from './actions.js';
export { checkPorts } from './checks.js';
export { ContainerError, VCAP_UID, type Container, type ContainerSpec, type ProcessHandle, type ProcessSpec, type Rootfs } from './container.js';
export { instanceEnvironment, startTimeoutMsOf, type LrpInstance, type LrpInstanceRequest, type LrpInstanceState, type NetInfo } from './lrp-runner.js';
export { MAX_RESULT_FILE_BYTES, type TaskRunRequest, type TaskRunResult } from './task-runner.js';
export { ExecutorPrerequisiteError, findSandboxTools, type SandboxTools } from './tools.js';
export { HOST_RUNTIME_PATH } from './host-runtime.js';
export { ImagePullError, type ImageCredentials, type ImageRegistry, type ImageStore } from './images.js';
export { CANCELLED_REASON, type ActionResult, type ContainerMetricsSample, type LogLine, type LogSink, type MetricsSink, type PortMapping } from './types.js';

/** The stack whose root filesystem is the host's own on one machine. */
export const DEFAULT_STACK = 'cflinuxfs4';

export interface ExecutorOptions {
  /** This executor's alone (one per cell): what a previous run left in it is removed at creation. */
  dataDir: string;
  logger: Logger;
  /** Named in the CELL log lines of app instances. */
  cellId?: string;
  /** Host services containers may reach as 127.0.0.1:<port> (file server, uploader, blobstore, registry). */
  hostServicePorts?: number[];
  /** The container root for a root_fs that is not an image; the default knows preloaded:cflinuxfs4 (the host's root). */
  rootfsFor?: (rootFs: string) => Rootfs | Promise<Rootfs>;
  /** Where `docker://` roots are pulled from; without one the cell runs no images. */
  imageRegistry?: ImageRegistry;
  /** Unused image roots and layers beyond this many bytes are removed, least recently used first. */
  imageCacheMaxBytes?: number;
  /** Image roots unused for this long are removed. */
  imageMaxIdleMs?: number;
  /** Bound on resolving and downloading one image. */
  imagePullTimeoutMs?: number;
  /** The programs of the host runtime (tests may point elsewhere). */
  hostRuntimePrograms?: HostRuntimePrograms;
  /** Host uid and gid of every container process (vcap and root inside map to it). */
  hostUid?: number;
  hostGid?: number;
  /** SIGTERM to SIGKILL when a process is stopped (Diego's 10 s). */
  stopGraceMs?: number;
  killWaitMs?: number;
  networkReadyTimeoutMs?: number;
  networkPollMs?: number;
  /** How often a container's resident memory is compared with its limit. */
  memoryPollMs?: number;
  defaultNofile?: number;
  downloadTimeoutMs?: number;
  downloadCacheMaxBytes?: number;
  uploadTimeoutMs?: number;
  uploadAttempts?: number;
  uploadRetryDelayMs?: number;
  monitorStartIntervalMs?: number;
  monitorHealthyIntervalMs?: number;
  checkStartIntervalMs?: number;
  checkIntervalMs?: number;
  checkTimeoutMs?: number;
  metricsIntervalMs?: number;
  /** Tests pass tools found elsewhere; normally they are looked up on PATH. */
  tools?: SandboxTools;
}

export interface Executor {
  createContainer(spec: Omit<ContainerSpec, 'dataDir'> & { dataDir?: string }): Promise<Container>;
  readonly actions: ActionRunner;
  runTask(request: TaskRunRequest): Promise<TaskRunResult>;
  startLrpInstance(request: LrpInstanceRequest): LrpInstance;
  /** Containers not yet destroyed. */
  containers(): Container[];
  /** The image store, when the cell pulls images. */
  readonly images: ImageStore | undefined;
  /** Destroys every container (their processes first). */
  close(): Promise<void>;
}

export function defaultRootfsFor(rootFs: string): Rootfs {
  if (rootFs === `preloaded:${DEFAULT_STACK}` || rootFs === DEFAULT_STACK) return 'host';
  throw new Error(`rootfs ${rootFs === '' ? '(none)' : rootFs} is not available on this cell (it has preloaded:${DEFAULT_STACK})`);
}

export function createExecutor(given: ExecutorOptions): Executor {
  // Every path handed to a sandbox (binds, image roots, overlay options) must be absolute.
  const options = { ...given, dataDir: resolve(given.dataDir) };
  const tools = options.tools ?? findSandboxTools();
  const logger = options.logger;
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const tmpDir = join(options.dataDir, 'tmp');
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  // Containers of a previous run of this cell died with it (--die-with-parent); their
  // directories did not, and nothing else claims them.
  rmSync(join(options.dataDir, 'containers'), { recursive: true, force: true });
  rmSync(tmpDir, { recursive: true, force: true });
  mkdirSync(tmpDir, { recursive: true, mode: 0o700 });

  const live = new Set<Container>();
  const sandbox = {
    tools,
    logger,
    hostUid: options.hostUid ?? 2000,
    hostGid: options.hostGid ?? options.hostUid ?? 2000,
    stopGraceMs,
    killWaitMs: options.killWaitMs ?? 5000,
    networkReadyTimeoutMs: options.networkReadyTimeoutMs ?? 10_000,
    networkPollMs: options.networkPollMs ?? 10,
    memoryPollMs: options.memoryPollMs ?? 250,
    defaultNofile: options.defaultNofile ?? 16_384,
    ports: createPortAllocator(),
    portAttempts: 5,
    timings: DEFAULT_SANDBOX_TIMINGS,
  };

  const makeContainer = async (spec: Omit<ContainerSpec, 'dataDir'> & { dataDir?: string }) => {
    const container = await createContainer({ ...spec, dataDir: spec.dataDir ?? options.dataDir }, sandbox);
    live.add(container);
    const destroy = container.destroy.bind(container);
    return Object.assign(container, {
      async destroy() {
        try {
          await destroy();
        } finally {
          live.delete(container);
        }
      },
    });
  };

  const actions = createActionRunner({
    downloader: createDownloader({
      cacheDir: join(options.dataDir, 'download-cache'),
      tmpDir,
      logger,
      timeoutMs: options.downloadTimeoutMs ?? 10 * 60_000,
      cacheMaxBytes: options.downloadCacheMaxBytes ?? 10 * 1024 ** 3,
    }),
    uploader: createUploader({
      logger,
      timeoutMs: options.uploadTimeoutMs ?? 10 * 60_000,
      attempts: options.uploadAttempts ?? 3,
      retryDelayMs: options.uploadRetryDelayMs ?? 1000,
    }),
    logger,
    tmpDir,
    stopGraceMs,
  });
  const images =
    options.imageRegistry &&
    createImageStore({
      dir: join(options.dataDir, 'images'),
      registry: options.imageRegistry,
      logger,
      hostUid: sandbox.hostUid,
      hostGid: sandbox.hostGid,
      maxBytes: options.imageCacheMaxBytes ?? 10 * 1024 ** 3,
      maxIdleMs: options.imageMaxIdleMs ?? 24 * 3_600_000,
      pullTimeoutMs: options.imagePullTimeoutMs ?? 10 * 60_000,
    });
  const prepareRoot = createRootPreparer({
    rootfsFor: options.rootfsFor ?? defaultRootfsFor,
    images,
    runtimeDir: join(options.dataDir, 'runtime'),
    runtimePrograms: options.hostRuntimePrograms,
    logger,
  });
  const hostServicePorts = options.hostServicePorts ?? [];
  const tasks = createTaskRunner({ createContainer: makeContainer, actions, logger, prepareRoot, hostServicePorts });
  const lrps = createLrpRunner({
    createContainer: makeContainer,
    actions,
    logger,
    prepareRoot,
    hostServicePorts,
    cellId: options.cellId ?? 'embedded-cell',
    stopGraceMs,
    monitorStartIntervalMs: options.monitorStartIntervalMs ?? 500,
    monitorHealthyIntervalMs: options.monitorHealthyIntervalMs ?? 30_000,
    checkStartIntervalMs: options.checkStartIntervalMs ?? 500,
    checkDefaults: { intervalMs: options.checkIntervalMs ?? 1000, timeoutMs: options.checkTimeoutMs ?? 1000 },
    metricsIntervalMs: options.metricsIntervalMs ?? 15_000,
  });

  // Roots are pruned whenever a container lets one go; this catches roots that went idle since.
  const imageMaxIdleMs = options.imageMaxIdleMs ?? 24 * 3_600_000;
  const pruneTimer =
    images &&
    setInterval(
      () => void images.prune().catch((error: unknown) => logger.error({ err: { message: (error as Error).message } }, 'failed-to-prune-images')),
      Math.max(Math.min(imageMaxIdleMs, 3_600_000), 1_000),
    );
  pruneTimer?.unref();

  const runningTasks = new Set<{ cancel: AbortController; done: Promise<unknown> }>();
  const instances = new Set<LrpInstance>();
  let closed = false;

  return {
    createContainer: makeContainer,
    actions,
    runTask(request) {
      // close() cancels the task as the caller's own signal would.
      const cancel = new AbortController();
      const onAbort = () => cancel.abort(request.signal?.reason);
      if (request.signal?.aborted || closed) onAbort();
      else request.signal?.addEventListener('abort', onAbort, { once: true });
      const done = tasks.runTask({ ...request, signal: cancel.signal }).finally(() => {
        request.signal?.removeEventListener('abort', onAbort);
        runningTasks.delete(entry);
      });
      const entry = { cancel, done };
      runningTasks.add(entry);
      return done;
    },
    startLrpInstance(request) {
      const instance = lrps.startLrpInstance(request);
      instances.add(instance);
      void instance.done.then(() => instances.delete(instance));
      if (closed) void instance.stop();
      return instance;
    },
    containers: () => [...live],
    images,
    async close() {
      closed = true;
      if (pruneTimer) clearInterval(pruneTimer);
      for (const { cancel } of runningTasks) cancel.abort(new Error('executor closing'));
      await Promise.all([...[...runningTasks].map(({ done }) => done), ...[...instances].map((instance) => instance.stop())]);
      await Promise.all([...live].map((container) => container.destroy()));
    },
  };
}
