// Receiving blobs for the development Cloud Controller (a development stand-in): a raw body (app
// bits from the command line) or the `file` part of a multipart/form-data body (droplets and
// build caches, as the uploader sends them), streamed to a file with their size and digests, so a
// large upload costs no more memory than a chunk.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';

/** An upload refused: 400 (malformed), 413 (too large). */
export class UploadError extends Error {
  override name = 'UploadError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ReceivedFile {
  size: number;
  md5: Buffer;
  sha256: Buffer;
  /** The first bytes, to tell a zip from a gzip. */
  head: Buffer;
  /** From the part's Content-Disposition (multipart only). */
  filename?: string;
}

/** A file being written: digests, size bound, and backpressure. */
class FileSink {
  private readonly out: WriteStream;
  private readonly md5: Hash = createHash('md5');
  private readonly sha256: Hash = createHash('sha256');
  private size = 0;
  private head = Buffer.alloc(0);
  private failed: Error | undefined;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
  ) {
    this.out = createWriteStream(path, { flags: 'wx' });
    this.out.on('error', (error) => (this.failed = error));
  }

  async write(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    if (this.failed) throw this.failed;
    this.size += data.length;
    if (this.size > this.maxBytes) throw new UploadError(413, `the upload is larger than ${this.maxBytes} bytes`);
    if (this.head.length < 8) this.head = Buffer.concat([this.head, data.subarray(0, 8 - this.head.length)]);
    this.md5.update(data);
    this.sha256.update(data);
    if (!this.out.write(data)) await Promise.race([once(this.out, 'drain'), once(this.out, 'error')]);
    if (this.failed) throw this.failed;
  }

  async finish(): Promise<ReceivedFile> {
    if (this.failed) throw this.failed;
    this.out.end();
    await once(this.out, 'close');
    if (this.failed) throw this.failed;
    return { size: this.size, md5: this.md5.digest(), sha256: this.sha256.digest(), head: this.head };
  }

  abort(): void {
    this.out.destroy();
    rmSync(this.path, { force: true });
  }
}

// The body is iterated without destroying the request when reading stops early (a refused
// upload): the server still answers, then closes the connection (see server.ts).
const chunksOf = (req: IncomingMessage) => req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;

/** The request body, as is, into `destination`. */
export async function receiveRawFile(req: IncomingMessage, destination: string, maxBytes: number): Promise<ReceivedFile> {
  const sink = new FileSink(destination, maxBytes);
  try {
    for await (const chunk of chunksOf(req)) await sink.write(chunk);
    return await sink.finish();
  } catch (error) {
    sink.abort();
    throw error;
  }
}

/**
 * The part named `field` of a multipart/form-data body into `destination`. Other parts are read
 * and dropped; their bytes count towards `maxBytes` as well.
 */
export async function receiveMultipartFile(req: IncomingMessage, field: string, destination: string, maxBytes: number): Promise<ReceivedFile> {
  const match = /^multipart\/form-data;.*?\bboundary=(?:"([^"]+)"|([^\s;]+))/i.exec(req.headers['content-type'] ?? '');
  if (!match) {
    throw new UploadError(400, `expected a multipart/form-data body, got ${req.headers['content-type'] ?? 'no Content-Type'}`);
  }
  const boundary = (match[1] ?? match[2])!;
  const dashBoundary = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  type State = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'epilogue';
  let state: State = 'preamble';
  let pending: Buffer = Buffer.alloc(0);
  let total = 0;
  let sink: FileSink | undefined;
  let inFilePart = false;
  let filename: string | undefined;
  let received: ReceivedFile | undefined;

  const emit = async (data: Buffer) => {
    if (inFilePart && sink) await sink.write(data);
  };

  try {
    for await (const chunk of chunksOf(req)) {
      total += chunk.length;
      // Framing and any other parts are small; the bound covers them with the file.
      if (total > maxBytes + 64 * 1024) throw new UploadError(413, `the upload is larger than ${maxBytes} bytes`);
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (let progress = true; progress; ) {
        progress = false;
        if (state === 'preamble') {
          const at = pending.indexOf(dashBoundary);
          if (at < 0) {
            pending = pending.subarray(Math.max(0, pending.length - (dashBoundary.length - 1)));
            break;
          }
          pending = pending.subarray(at + dashBoundary.length);
          state = 'after-boundary';
          progress = true;
        } else if (state === 'after-boundary') {
          if (pending.length < 2) break;
          const next = pending.subarray(0, 2).toString('latin1');
          if (next === '--') state = 'epilogue';
          else if (next === '\r\n') state = 'headers';
          else throw new UploadError(400, 'malformed multipart body: unexpected bytes after a boundary');
          pending = pending.subarray(2);
          progress = true;
        } else if (state === 'headers') {
          const end = pending.indexOf('\r\n\r\n');
          if (end < 0) {
            if (pending.length > 16 * 1024) throw new UploadError(400, 'malformed multipart body: part headers too long');
            break;
          }
          const disposition =
            pending
              .subarray(0, end)
              .toString('utf8')
              .split('\r\n')
              .find((line) => /^content-disposition:/i.test(line)) ?? '';
          const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
          inFilePart = name === field && received === undefined && sink === undefined;
          if (inFilePart) {
            filename = /;\s*filename="([^"]*)"/i.exec(disposition)?.[1];
            sink = new FileSink(destination, maxBytes);
          }
          pending = pending.subarray(end + 4);
          state = 'body';
          progress = true;
        } else if (state === 'body') {
          const at = pending.indexOf(delimiter);
          if (at < 0) {
            // Keep what could be the start of a delimiter split across chunks.
            const safe = pending.length - (delimiter.length - 1);
            if (safe > 0) {
              await emit(pending.subarray(0, safe));
              pending = pending.subarray(safe);
            }
            break;
          }
          await emit(pending.subarray(0, at));
          if (inFilePart && sink) {
            received = { ...(await sink.finish()), filename };
            inFilePart = false;
          }
          pending = pending.subarray(at + delimiter.length);
          state = 'after-boundary';
          progress = true;
        } else {
          pending = Buffer.alloc(0);
          break;
        }
      }
    }
    if (state !== 'epilogue') throw new UploadError(400, 'malformed multipart body: it ends before its closing boundary');
    if (!received) throw new UploadError(400, `no file part named "${field}"`);
    return received;
  } catch (error) {
    sink?.abort();
    throw error;
  }
}

/** A Content-MD5 header (base64, as Go sends it, or hex) against the bytes' MD5. */
export function contentMd5Matches(header: string, md5: Buffer): boolean {
  const value = header.trim();
  if (/^[0-9a-f]{32}$/i.test(value)) return value.toLowerCase() === md5.toString('hex');
  return Buffer.from(value, 'base64').equals(md5);
}
