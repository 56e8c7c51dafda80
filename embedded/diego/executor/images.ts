// Image roots: what a `docker://` root_fs becomes on this cell. The manifest is resolved over the
// registry HTTP API v2 (with the LRP's or task's image credentials), each layer is downloaded
// once into a blob cache keyed by its digest, and the layers are unpacked in order into a root
// keyed by the manifest's digest, which every container of that image then shares read-only.
//
//   <dir>/blobs/<algorithm>-<hex>          a layer as the registry sent it (digest checked)
//   <dir>/roots/<algorithm>-<hex>/         an unpacked root; .tmp-* while it is being built
//
// The manifest is asked for at every use, even when its root is here already: that is what
// checks the credentials (a wrong password must not run a cached private image), and a moved tag
// gets its new root. Concurrent uses of one image (with the same credentials) share one pull.
//
// Unpacking runs as the cell's container user (unpack-layers.mjs, started in the root directory
// with the layers on inherited descriptors, drops to that user before reading them), so a
// hostile layer can do no more than that user could. Roots no container uses are removed oldest first once they exceed a size bound or have
// been unused for longer than a bound; blobs are bounded the same way.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chown, lstat, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Logger } from '../../../lib/log.js';

export interface ImageCredentials {
  username: string;
  password: string;
}

export interface ImageLayer {
  digest: string;
  size: number;
}

export interface ResolvedImage {
  /** The digest of the image manifest (for a manifest list, of the chosen platform's manifest). */
  digest: string;
  layers: ImageLayer[];
  /** The image config's Env (`NAME=value`), which every process in the image starts with. */
  env?: string[];
}

/** The registry as the image store needs it; the docker lifecycle's registry client provides it. */
export interface ImageRegistry {
  resolve(rootFs: string, credentials: ImageCredentials | undefined, signal: AbortSignal): Promise<ResolvedImage>;
  /** Writes the blob to `destination` (a new file), having checked its digest. */
  fetchBlob(rootFs: string, credentials: ImageCredentials | undefined, digest: string, destination: string, signal: AbortSignal): Promise<void>;
}

export interface ImageStoreOptions {
  dir: string;
  registry: ImageRegistry;
  logger: Logger;
  /** The cell's container user, who owns the unpacked files. */
  hostUid: number;
  hostGid: number;
  /** Unused roots (and blobs) beyond this many bytes are removed, oldest first. */
  maxBytes: number;
  /** Roots unused for longer than this are removed. */
  maxIdleMs: number;
  /** Bound on resolving and downloading one image. */
  pullTimeoutMs: number;
}

export interface ImageRoot {
  /** The unpacked root directory. */
  path: string;
  digest: string;
  /** The image's own environment (`NAME=value`), beneath the work's. */
  env: string[];
  /** The container no longer needs it; it may be removed once unused for long enough. */
  release(): void;
}

export interface ImageStore {
  acquire(rootFs: string, credentials: ImageCredentials | undefined, signal?: AbortSignal): Promise<ImageRoot>;
  /** Removes unused roots and blobs beyond the bounds; runs after every release and pull. */
  prune(): Promise<void>;
  /** What the store holds (for tests and metrics). */
  stats(): { rootsInUse: number; blobsFetched: number; pulls: number };
}

export class ImagePullError extends Error {
  override name = 'ImagePullError';
}

const UNPACKER = fileURLToPath(new URL('./unpack-layers.mjs', import.meta.url));
const DIGEST = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** A digest as a file name: `sha256:abc` → `sha256-abc`; anything else is refused. */
export function digestFileName(digest: string): string {
  const match = DIGEST.exec(digest);
  if (!match) throw new ImagePullError(`invalid digest ${JSON.stringify(digest)}`);
  return `${match[1]}-${match[2]}`;
}

/** The image as it may appear in a message: the rootfs URI never carries credentials, but a URL-like one could. */
export function displayImage(rootFs: string): string {
  return rootFs.replace(/\/\/[^/@]*@/, '//');
}

export function createImageStore(options: ImageStoreOptions): ImageStore {
  const log = options.logger.child({ session: 'executor.images' });
  const blobsDir = join(options.dir, 'blobs');
  const rootsDir = join(options.dir, 'roots');
  /** Pulls in flight, by image and credentials. */
  const pulls = new Map<string, Promise<ResolvedImage>>();
  /** Unpacks in flight, by manifest digest. */
  const unpacks = new Map<string, Promise<string>>();
  const blobFetches = new Map<string, Promise<void>>();
  /** Containers using each root, by manifest digest. */
  const users = new Map<string, number>();
  /** Sizes of unpacked roots, which never change once built. */
  const rootBytes = new Map<string, number>();
  let blobsFetched = 0;
  let pullCount = 0;
  let ready: Promise<void> | undefined;

  const prepareDirs = () =>
    (ready ??= (async () => {
      await mkdir(blobsDir, { recursive: true, mode: 0o700 });
      await mkdir(rootsDir, { recursive: true, mode: 0o700 });
      // Roots half-built by a previous run are of no use.
      for (const name of await readdir(rootsDir)) if (name.startsWith('.tmp-')) await rm(join(rootsDir, name), { recursive: true, force: true });
      for (const name of await readdir(blobsDir)) if (name.startsWith('.tmp-')) await rm(join(blobsDir, name), { force: true });
    })());

  async function fetchBlob(rootFs: string, credentials: ImageCredentials | undefined, layer: ImageLayer, signal: AbortSignal): Promise<void> {
    const path = join(blobsDir, digestFileName(layer.digest));
    if (await exists(path)) {
      const now = new Date();
      await utimes(path, now, now).catch(() => undefined);
      return;
    }
    let fetching = blobFetches.get(layer.digest);
    if (fetching === undefined) {
      fetching = (async () => {
        const partial = join(blobsDir, `.tmp-${randomBytes(6).toString('hex')}`);
        try {
          await options.registry.fetchBlob(rootFs, credentials, layer.digest, partial, signal);
          blobsFetched += 1;
          await rename(partial, path);
        } finally {
          await rm(partial, { force: true });
        }
      })().finally(() => blobFetches.delete(layer.digest));
      blobFetches.set(layer.digest, fetching);
    }
    await fetching;
  }

  async function unpack(image: ResolvedImage): Promise<string> {
    const path = join(rootsDir, digestFileName(image.digest));
    if (await exists(path)) return path;
    const building = join(rootsDir, `.tmp-${randomBytes(6).toString('hex')}`);
    await mkdir(building, { mode: 0o755 });
    await chown(building, options.hostUid, options.hostGid);
    const files = await Promise.all(image.layers.map((layer) => open(join(blobsDir, digestFileName(layer.digest)), 'r')));
    try {
      // The unpacker starts as root (so node and this checkout may be anywhere, /root included)
      // and becomes the container user before it reads a layer.
      const child = spawn(process.execPath, [UNPACKER], {
          cwd: building,
          env: {
            CCBRIDGE_UNPACK_LAYERS: '1',
            CCBRIDGE_LAYER_COUNT: String(files.length),
            CCBRIDGE_UNPACK_UID: String(options.hostUid),
            CCBRIDGE_UNPACK_GID: String(options.hostGid),
            PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
          },
          stdio: ['ignore', 'ignore', 'pipe', ...files.map((file) => file.fd)],
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
      const status = await new Promise<number>((resolve) => {
        child.once('error', (error) => {
          stderr = error.message;
          resolve(127);
        });
        child.once('close', (code) => resolve(code ?? 1));
      });
      if (status !== 0) throw new ImagePullError(`could not unpack the image's layers: ${stderr.trim().split('\n').pop() || `exit status ${status}`}`);
      await rename(building, path);
      return path;
    } catch (error) {
      await rm(building, { recursive: true, force: true });
      throw error;
    } finally {
      await Promise.all(files.map((file) => file.close()));
    }
  }

  async function pull(rootFs: string, credentials: ImageCredentials | undefined, signal: AbortSignal): Promise<ResolvedImage> {
    await prepareDirs();
    const image = await options.registry.resolve(rootFs, credentials, signal);
    digestFileName(image.digest);
    if (!(await exists(join(rootsDir, digestFileName(image.digest))))) {
      pullCount += 1;
      log.info({ image: displayImage(rootFs), digest: image.digest, layers: image.layers.length }, 'pulling-image');
      for (const layer of image.layers) await fetchBlob(rootFs, credentials, layer, signal);
    }
    let unpacking = unpacks.get(image.digest);
    if (unpacking === undefined) {
      unpacking = unpack(image).finally(() => unpacks.delete(image.digest));
      unpacks.set(image.digest, unpacking);
    }
    const root = await unpacking;
    const now = new Date();
    await utimes(root, now, now).catch(() => undefined);
    return image;
  }

  const store: ImageStore = {
    async acquire(rootFs, credentials, signal) {
      // One pull per image and credentials: a wrong password must not ride on a right one's pull.
      const key = `${rootFs}\0${credentials?.username ?? ''}\0${credentials ? createHash('sha256').update(credentials.password).digest('hex') : ''}`;
      let pulling = pulls.get(key);
      if (pulling === undefined) {
        const timeout = AbortSignal.timeout(options.pullTimeoutMs);
        // The registry client bounds each request; this bounds the whole pull.
        pulling = raceAbort(pull(rootFs, credentials, timeout), timeout)
          .catch((error: unknown) => {
            const message = timeout.aborted ? `timed out after ${options.pullTimeoutMs}ms` : (error as Error).message;
            throw new ImagePullError(`failed to pull image ${displayImage(rootFs)}: ${redact(message, credentials)}`);
          })
          .finally(() => pulls.delete(key));
        pulls.set(key, pulling);
        // Every caller may have gone (its LRP removed mid-pull) before the pull fails: the failure is
        // theirs to see, never an unhandled rejection of the process.
        pulling.catch(() => undefined);
      }
      const image = signal ? await raceAbort(pulling, signal) : await pulling;
      users.set(image.digest, (users.get(image.digest) ?? 0) + 1);
      let released = false;
      return {
        path: join(rootsDir, digestFileName(image.digest)),
        digest: image.digest,
        env: image.env ?? [],
        release() {
          if (released) return;
          released = true;
          const left = (users.get(image.digest) ?? 1) - 1;
          if (left > 0) users.set(image.digest, left);
          else users.delete(image.digest);
          void store.prune().catch((error: unknown) => log.error({ err: { message: (error as Error).message } }, 'failed-to-prune-images'));
        },
      };
    },

    async prune() {
      await prepareDirs();
      const now = Date.now();
      const roots = await entriesByAge(rootsDir, rootBytes);
      let total = roots.reduce((sum, root) => sum + root.bytes, 0);
      for (const root of roots) {
        const digest = root.name.replace('-', ':');
        if (root.name.startsWith('.tmp-') || users.has(digest) || unpacks.has(digest)) continue;
        if (total <= options.maxBytes && now - root.usedAtMs <= options.maxIdleMs) continue;
        // A pull in flight may have just found this root and be about to use it.
        if (pulls.size > 0) return;
        log.info({ digest, bytes: root.bytes }, 'removing-image-root');
        await rm(join(rootsDir, root.name), { recursive: true, force: true });
        rootBytes.delete(root.name);
        total -= root.bytes;
      }
      // A pull in flight may be about to unpack the blobs it fetched.
      if (pulls.size > 0 || unpacks.size > 0) return;
      const blobs = await entriesByAge(blobsDir);
      let blobTotal = blobs.reduce((sum, blob) => sum + blob.bytes, 0);
      for (const blob of blobs) {
        if (blobTotal <= options.maxBytes) break;
        if (blob.name.startsWith('.tmp-')) continue;
        await rm(join(blobsDir, blob.name), { force: true });
        blobTotal -= blob.bytes;
      }
    },

    stats: () => ({ rootsInUse: users.size, blobsFetched, pulls: pullCount }),
  };
  return store;
}

/** The password never appears in a message, whatever a registry or library put in it. */
function redact(message: string, credentials: ImageCredentials | undefined): string {
  if (!credentials || credentials.password === '') return message;
  return message.split(credentials.password).join('*****');
}

async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Entries of a directory, least recently used first, with their sizes on disk. */
async function entriesByAge(dir: string, knownBytes?: Map<string, number>): Promise<Array<{ name: string; usedAtMs: number; bytes: number }>> {
  const names = await readdir(dir).catch(() => []);
  const entries = await Promise.all(
    names.map(async (name) => {
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (info === undefined) return undefined;
      if (!info.isDirectory()) return { name, usedAtMs: info.mtimeMs, bytes: info.blocks * 512 };
      let bytes = knownBytes?.get(name);
      if (bytes === undefined) {
        bytes = await treeBytes(join(dir, name));
        if (!name.startsWith('.tmp-')) knownBytes?.set(name, bytes);
      }
      return { name, usedAtMs: info.mtimeMs, bytes };
    }),
  );
  return entries.filter((entry) => entry !== undefined).sort((a, b) => a.usedAtMs - b.usedAtMs);
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const current = pending.pop()!;
    for (const entry of await readdir(current, { withFileTypes: true }).catch(() => [])) {
      const path = join(current, entry.name);
      const info = await lstat(path).catch(() => undefined);
      if (info === undefined) continue;
      total += info.blocks * 512;
      if (entry.isDirectory()) pending.push(path);
    }
  }
  return total;
}
