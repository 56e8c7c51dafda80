// The development Cloud Controller's blobstore (a development stand-in): app packages, droplets
// and build caches as files under the data directory, and the URLs handed to staging tasks and
// app instances.
//
// Those URLs are signed (HMAC over the path and query, like Cloud Controller's signed blobstore
// URLs) instead of carrying the basic-auth credentials in `user:password@`: containers, tasks
// and the uploader get a URL good for one blob only, no secret lands in a task definition or a
// log line, and a downloader that cannot send URL credentials still gets through. Basic auth with
// the configured credentials is accepted on the same routes as well, as Cloud Controller's
// internal API accepts it.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Query parameters left out of the signature: the signature itself, and what the uploader adds. */
const UNSIGNED_PARAMETERS = new Set(['signature', 'async']);

export interface Blobstore {
  packagePath(packageGuid: string): string;
  dropletPath(dropletGuid: string): string;
  buildpackCachePath(appGuid: string): string;
  /** A fresh path in the blobstore's scratch directory; commit() moves it into place. */
  scratchPath(): string;
  /** Moves a received file into place at once, so a download never sees half a blob. */
  commit(scratch: string, path: string): void;
  remove(path: string): void;
  /** `<base URL><path>?<params>&signature=…` */
  signedUrl(path: string, params?: Record<string, string>): string;
  /** Whether the query carries a valid signature for this path and the rest of the query. */
  verify(pathname: string, query: URLSearchParams): boolean;
}

export interface BlobstoreOptions {
  root: string;
  signingKey: Buffer;
  /** This CC's base URL as containers reach it; known once the server listens. */
  baseUrl: () => string;
}

export function createBlobstore(options: BlobstoreOptions): Blobstore {
  const dirs = {
    packages: join(options.root, 'packages'),
    droplets: join(options.root, 'droplets'),
    caches: join(options.root, 'buildpack_cache'),
    scratch: join(options.root, 'tmp'),
  };
  // Scratch files left by a process that stopped mid-upload are worthless.
  rmSync(dirs.scratch, { recursive: true, force: true });
  for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });

  const sign = (pathname: string, query: URLSearchParams) => {
    const pairs = [...query.entries()].filter(([key]) => !UNSIGNED_PARAMETERS.has(key)).sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1));
    const canonical = `${pathname}\n${pairs.map(([key, value]) => `${key}=${value}`).join('\n')}`;
    return createHmac('sha256', options.signingKey).update(canonical).digest('hex');
  };

  return {
    packagePath: (guid) => join(dirs.packages, guid),
    dropletPath: (guid) => join(dirs.droplets, `${guid}.tgz`),
    buildpackCachePath: (appGuid) => join(dirs.caches, `${appGuid}.tgz`),
    scratchPath: () => join(dirs.scratch, randomUUID()),
    commit: (scratch, path) => renameSync(scratch, path),
    remove: (path) => rmSync(path, { force: true }),
    signedUrl(path, params = {}) {
      const query = new URLSearchParams(params);
      query.set('signature', sign(path, query));
      return `${options.baseUrl()}${path}?${query.toString()}`;
    },
    verify(pathname, query) {
      const given = query.get('signature');
      if (!given || !/^[0-9a-f]{64}$/.test(given)) return false;
      return timingSafeEqual(Buffer.from(given, 'hex'), Buffer.from(sign(pathname, query), 'hex'));
    },
  };
}
