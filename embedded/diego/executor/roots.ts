// What a container's root_fs becomes on this cell: the host's root for the preloaded stack, an
// unpacked image for `docker://` (pulled with the work's image credentials), and for every root
// that is not the host's, the host runtime bound read-only at HOST_RUNTIME_PATH so lifecycle
// programs can run there.
import type { EnvironmentVariable } from '../../../gen/diego/bbs/v1/container.js';
import type { Logger } from '../../../lib/log.js';
import type { Rootfs } from './container.js';
import { assembleHostRuntime, HOST_RUNTIME_PATH, type HostRuntimePrograms } from './host-runtime.js';
import { displayImage, ImagePullError, type ImageCredentials, type ImageStore } from './images.js';

export interface PreparedRoot {
  rootfs: Rootfs;
  readOnlyBinds: Array<{ hostPath: string; containerPath: string }>;
  /** The image's own environment, which the work's environment then extends and overrides (as Garden does). */
  env: EnvironmentVariable[];
  /** The container that used it is gone. */
  release(): void;
}

export type PrepareRoot = (rootFs: string, credentials: ImageCredentials | undefined, signal: AbortSignal) => Promise<PreparedRoot>;

/** The image credentials a DesiredLRP or TaskDefinition carries; the BBS accepts both or neither. */
export function imageCredentialsOf(work: { imageUsername: string; imagePassword: string }): ImageCredentials | undefined {
  return work.imageUsername !== '' || work.imagePassword !== '' ? { username: work.imageUsername, password: work.imagePassword } : undefined;
}

/** The failure reason of work whose root could not be prepared. */
export function rootFailureReason(error: unknown): string {
  const message = (error as Error).message;
  return error instanceof ImagePullError ? message : `failed to create container: ${message}`;
}

export function isImageRootfs(rootFs: string): boolean {
  return rootFs.startsWith('docker:');
}

export interface RootPreparerOptions {
  /** Roots other than images: the host for the preloaded stack, or a directory (tests). */
  rootfsFor(rootFs: string): Rootfs | Promise<Rootfs>;
  images: ImageStore | undefined;
  /** Where the host runtime is assembled (once, at first need). */
  runtimeDir: string;
  runtimePrograms?: HostRuntimePrograms;
  logger: Logger;
}

export function createRootPreparer(options: RootPreparerOptions): PrepareRoot {
  const log = options.logger.child({ session: 'executor.roots' });
  let runtime: Promise<string> | undefined;
  const hostRuntime = () => {
    runtime ??= assembleHostRuntime(options.runtimeDir, options.runtimePrograms).then(
      (path) => {
        log.info({ path, container_path: HOST_RUNTIME_PATH }, 'host-runtime-assembled');
        return path;
      },
      (error: unknown) => {
        // The next container tries again (a package may have been installed since).
        runtime = undefined;
        throw error;
      },
    );
    return runtime;
  };
  const runtimeBinds = async () => [{ hostPath: await hostRuntime(), containerPath: HOST_RUNTIME_PATH }];

  return async (rootFs, credentials, signal) => {
    if (isImageRootfs(rootFs)) {
      if (options.images === undefined) throw new Error(`rootfs ${displayImage(rootFs)} is not available on this cell (it pulls no images)`);
      const readOnlyBinds = await runtimeBinds();
      const image = await options.images.acquire(rootFs, credentials, signal);
      return { rootfs: image.path, readOnlyBinds, env: image.env.flatMap(imageVariable), release: image.release };
    }
    const rootfs = await options.rootfsFor(rootFs);
    if (rootfs === 'host') return { rootfs, readOnlyBinds: [], env: [], release: () => undefined };
    return { rootfs, readOnlyBinds: await runtimeBinds(), env: [], release: () => undefined };
  };
}

/** `NAME=value` from an image config; an entry without `=` names nothing and is dropped. */
function imageVariable(entry: string): EnvironmentVariable[] {
  const equals = entry.indexOf('=');
  return equals > 0 ? [{ name: entry.slice(0, equals), value: entry.slice(equals + 1) }] : [];
}

export { ImagePullError };
