// Downloads for Download actions, with the cell's download cache.
//
// A download with a cache_key is kept under the data directory, as Diego's cached downloader
// does. A later download of the same key is served from the cache:
//  - without a request when the action names a checksum that the cached file has (a checksum
//    names the content, so there is nothing to ask the server);
//  - otherwise after a conditional GET (If-None-Match / If-Modified-Since) answered 304.
// As in Diego, an answer without ETag, Last-Modified or a checksum to trust is not cached.
// Checksums (md5, sha1, sha256) are checked on every download that names one.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../../lib/log.js';
import type { ArchiveFormat } from './container.js';
import { bodyExcerpt, deadline, httpCall, HttpFailure } from './http.js';
import { displayUrl } from './types.js';

export const CHECKSUM_ALGORITHMS = ['md5', 'sha1', 'sha256'] as const;
type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface DownloaderOptions {
  cacheDir: string;
  /** Where downloads are written before they are checked (same file system as cacheDir). */
  tmpDir: string;
  logger: Logger;
  /** Bound on one whole download, headers and body. */
  timeoutMs: number;
  /** The cache is trimmed to this size, least recently used entries first. */
  cacheMaxBytes: number;
}

export interface DownloadRequest {
  url: string;
  cacheKey: string;
  checksumAlgorithm: string;
  checksumValue: string;
  signal: AbortSignal;
}

export interface Downloaded {
  path: string;
  size: number;
  fromCache: boolean;
  /** Lets go of the file: a file outside the cache is deleted, a cached one may be evicted again. */
  release(): Promise<void>;
}

export interface Downloader {
  fetch(request: DownloadRequest): Promise<Downloaded>;
}

export class DownloadError extends Error {
  override name = 'DownloadError';
}

interface CacheMeta {
  etag?: string;
  lastModified?: string;
  size: number;
  checksums: Record<ChecksumAlgorithm, string>;
}

const MAX_CACHE_ENTRIES_VISITED = 10_000;

export function createDownloader(options: DownloaderOptions): Downloader {
  const log = options.logger.child({ session: 'executor.download' });
  const inUse = new Map<string, number>();
  const entryDir = (cacheKey: string) => join(options.cacheDir, createHash('sha256').update(cacheKey).digest('hex'));

  const hold = (entry: string) => inUse.set(entry, (inUse.get(entry) ?? 0) + 1);
  const letGo = (entry: string) => {
    const count = (inUse.get(entry) ?? 1) - 1;
    if (count <= 0) inUse.delete(entry);
    else inUse.set(entry, count);
  };

  async function readMeta(entry: string): Promise<CacheMeta | undefined> {
    try {
      const meta = JSON.parse(await readFile(join(entry, 'meta.json'), 'utf8')) as CacheMeta;
      await stat(join(entry, 'blob'));
      return meta;
    } catch {
      return undefined;
    }
  }

  async function evict(keep: string): Promise<void> {
    const names = (await readdir(options.cacheDir).catch(() => [])).slice(0, MAX_CACHE_ENTRIES_VISITED);
    const entries: Array<{ entry: string; size: number; usedMs: number }> = [];
    for (const name of names) {
      const entry = join(options.cacheDir, name);
      const info = await stat(join(entry, 'meta.json')).catch(() => undefined);
      const meta = info ? await readMeta(entry) : undefined;
      entries.push({ entry, size: meta?.size ?? 0, usedMs: info?.mtimeMs ?? 0 });
    }
    let total = entries.reduce((sum, { size }) => sum + size, 0);
    for (const { entry, size } of entries.sort((a, b) => a.usedMs - b.usedMs)) {
      if (total <= options.cacheMaxBytes) break;
      if (entry === keep || inUse.has(entry)) continue;
      await rm(entry, { recursive: true, force: true });
      total -= size;
      log.info({ bytes: size }, 'evicted-cached-download');
    }
  }

  return {
    async fetch(request) {
      const algorithm = request.checksumAlgorithm.toLowerCase();
      const wanted = request.checksumValue.toLowerCase();
      const checksum = algorithm !== '' && wanted !== '';
      if (checksum && !CHECKSUM_ALGORITHMS.includes(algorithm as ChecksumAlgorithm)) {
        throw new DownloadError(`unsupported checksum algorithm "${request.checksumAlgorithm}" (use md5, sha1 or sha256)`);
      }
      const entry = request.cacheKey !== '' ? entryDir(request.cacheKey) : undefined;
      const cached = entry ? await readMeta(entry) : undefined;

      const fromCache = async (meta: CacheMeta): Promise<Downloaded> => {
        hold(entry!);
        const now = new Date();
        await utimes(join(entry!, 'meta.json'), now, now).catch(() => undefined);
        return { path: join(entry!, 'blob'), size: meta.size, fromCache: true, release: async () => letGo(entry!) };
      };

      if (cached && checksum && cached.checksums[algorithm as ChecksumAlgorithm] === wanted) return fromCache(cached);

      const headers: Record<string, string> = {};
      // A cached file with another checksum than the one asked for is not worth revalidating.
      if (cached && !checksum) {
        if (cached.etag) headers['if-none-match'] = cached.etag;
        if (cached.lastModified) headers['if-modified-since'] = cached.lastModified;
      }
      const limit = deadline(request.signal, options.timeoutMs);
      const tmp = join(options.tmpDir, `download-${randomUUID()}`);
      try {
        const response = await httpCall({ method: 'GET', url: request.url, headers, signal: limit.signal });
        const status = response.statusCode ?? 0;
        if (status === 304 && cached && Object.keys(headers).length > 0) {
          response.resume();
          return await fromCache(cached);
        }
        if (status < 200 || status > 299) {
          const excerpt = await bodyExcerpt(response).catch(() => '');
          throw new HttpFailure(`GET ${displayUrl(request.url)}: HTTP ${status} ${response.statusMessage ?? ''}`.trim() + (excerpt ? `: ${excerpt}` : ''), status);
        }
        await mkdir(options.tmpDir, { recursive: true });
        const hashes = Object.fromEntries(CHECKSUM_ALGORITHMS.map((name) => [name, createHash(name)])) as Record<ChecksumAlgorithm, ReturnType<typeof createHash>>;
        let size = 0;
        const hashing = new Transform({
          transform(chunk: Buffer, _encoding, done) {
            size += chunk.length;
            for (const hash of Object.values(hashes)) hash.update(chunk);
            done(null, chunk);
          },
        });
        // The file must be readable by the container uid: unzip reopens it through /dev/stdin.
        await pipeline(response, hashing, createWriteStream(tmp, { mode: 0o644 }), { signal: limit.signal });
        const checksums = Object.fromEntries(CHECKSUM_ALGORITHMS.map((name) => [name, hashes[name].digest('hex')])) as Record<ChecksumAlgorithm, string>;
        if (checksum && checksums[algorithm as ChecksumAlgorithm] !== wanted) {
          throw new DownloadError(`checksum mismatch for ${displayUrl(request.url)}: ${algorithm} is ${checksums[algorithm as ChecksumAlgorithm]}, expected ${wanted}`);
        }
        const etag = typeof response.headers.etag === 'string' ? response.headers.etag : undefined;
        const lastModified = response.headers['last-modified'];
        if (entry === undefined || (etag === undefined && lastModified === undefined && !checksum)) {
          if (entry !== undefined) log.info({ url: displayUrl(request.url) }, 'download-not-cacheable');
          return { path: tmp, size, fromCache: false, release: () => rm(tmp, { force: true }) };
        }
        const meta: CacheMeta = { etag, lastModified, size, checksums };
        await mkdir(entry, { recursive: true, mode: 0o755 });
        // Rename over the old blob: a sandbox still reading it keeps its open file.
        await rename(tmp, join(entry, 'blob'));
        await writeFile(join(entry, 'meta.json'), JSON.stringify(meta));
        hold(entry);
        await evict(entry);
        return { path: join(entry, 'blob'), size, fromCache: false, release: async () => letGo(entry) };
      } catch (error) {
        await rm(tmp, { force: true });
        if (error instanceof DownloadError || error instanceof HttpFailure) throw error;
        const reason: unknown = limit.signal.aborted ? limit.signal.reason : error;
        throw new DownloadError(`GET ${displayUrl(request.url)}: ${reason instanceof Error ? reason.message : String(reason)}`);
      } finally {
        limit.clear();
      }
    },
  };
}

/** What kind of archive a file is, from its first bytes (URLs of droplets and blobs carry no extension). */
export async function sniffArchive(path: string): Promise<ArchiveFormat | undefined> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await file.read(head, 0, 512, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tgz';
    if (bytesRead >= 4 && head.readUInt32BE(0) === 0x504b0304) return 'zip';
    if (bytesRead >= 4 && head.readUInt32BE(0) === 0x504b0506) return 'zip';
    if (bytesRead >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return undefined;
  } finally {
    await file.close();
  }
}
