// A Cloud Controller test double speaking CC's internal API over real HTTP: it records what the
// bridge sends and answers as CC does, with knobs for the failures tests need (a status to
// answer, a page to fail, a delay, being down). Shared by every suite that talks to CC.
//
// It also plays CC's staging blobstore: droplet and buildpack cache uploads (multipart, parsed
// as they stream in, so large uploads are not held in memory), the async job a droplet upload
// answers with, and package / buildpack cache downloads of bytes a test put there.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { encodeLegacyJson } from '../../lib/legacy-json.js';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  /** The body parsed as JSON, when it is JSON. */
  json?: unknown;
  /** Blobstore uploads: the multipart body as parsed (`body` is then empty). */
  upload?: RecordedUpload;
  /** Blobstore uploads whose body was not well-formed multipart: why. */
  uploadError?: string;
}

/** One part of a multipart body. */
export interface RecordedPart {
  /** Header names lower-cased. */
  headers: Record<string, string>;
  /** From Content-Disposition. */
  name: string | undefined;
  filename: string | undefined;
  size: number;
  /** MD5 of the part's bytes, hex. */
  md5: string;
  /** The bytes, when no larger than the double's keepUploadBytesUpTo. */
  bytes: Buffer | undefined;
}

export interface RecordedUpload {
  /** The guid from the path. */
  guid: string;
  boundary: string;
  parts: RecordedPart[];
  /** Bytes received in all, framing included (to compare with the Content-Length header). */
  bodyBytes: number;
  /** Bytes before the first boundary and after the closing one (a Go writer sends none / CRLF). */
  preamble: string;
  epilogue: string;
}

export interface CcJobState {
  guid: string;
  /** The droplet whose upload made the job. */
  dropletGuid: string;
  /** GET /v2/jobs/:guid answered so far. */
  polls: number;
}

export interface CcDoubleOptions {
  username?: string;
  password?: string;
}

export class CcDouble {
  readonly requests: RecordedRequest[] = [];
  /** Desired apps served by the bulk endpoints, in process-guid order. */
  readonly apps = new Map<string, DesireAppRequestFromCC>();
  /** Status to answer per route kind ('staging', 'crashed', 'bulk', ...); 200 when unset. */
  readonly statusFor = new Map<string, number>();
  /** Fail the fingerprint page with this 0-based number with a 500. */
  failFingerprintPage: number | undefined;
  /** Delay every answer by this many ms. */
  delayMs = 0;
  /** Event ids already seen: duplicates are answered 200 and not recorded as reports. */
  readonly seenEventIds = new Set<string>();
  /** Body to answer with a status set in statusFor, per route kind; empty when unset. */
  readonly bodyFor = new Map<string, string>();
  /** Droplet uploads accepted, by droplet guid (the last one wins). */
  readonly droplets = new Map<string, RecordedUpload>();
  /** Buildpack cache uploads accepted, by app guid (the last one wins). */
  readonly buildpackCaches = new Map<string, RecordedUpload>();
  /** Bytes served by GET /staging/packages/:guid. */
  readonly packages = new Map<string, Buffer>();
  /** Bytes served by GET /staging/buildpack_cache/:guid/download; an accepted cache upload lands here too. */
  readonly buildpackCacheBlobs = new Map<string, Buffer>();
  /** Droplet upload jobs, by job guid. */
  readonly jobs = new Map<string, CcJobState>();
  /** Polls a droplet job answers `queued`/`running` before its final status (0: final at once). */
  jobPollsUntilDone = 1;
  /** The status a droplet job ends in: `finished`, `failed`, or anything to test unknown ones. */
  jobFinalStatus = 'finished';
  /** Uploaded bytes are kept (RecordedPart.bytes) up to this size; larger parts keep only size and MD5. */
  keepUploadBytesUpTo = 4 * 1024 * 1024;
  private server: Server | undefined;
  private port = 0;
  private waiters: { predicate: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }[] = [];

  constructor(private readonly options: CcDoubleOptions = {}) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts on the given port (0: a free one; a restart reuses the old port). */
  async start(port = this.port): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Stops answering (CC down); start() brings it back on the same port. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Requests to paths matching the pattern. */
  received(pattern: RegExp | string): RecordedRequest[] {
    return this.requests.filter((r) => (typeof pattern === 'string' ? r.path === pattern : pattern.test(r.path)));
  }

  /** Resolves with the first request (recorded already or to come) that matches. */
  waitFor(predicate: (r: RecordedRequest) => boolean, timeoutMs = 5_000): Promise<RecordedRequest> {
    const found = this.requests.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('CC double: no matching request in time')), timeoutMs);
      this.waiters.push({
        predicate,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://cc.internal');
    const kind = routeKind(req.method ?? '', url.pathname);
    let recorded: RecordedRequest;
    if (kind === 'droplet-upload' || kind === 'buildpack-cache-upload') {
      recorded = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body: '' };
      try {
        recorded.upload = await readMultipartUpload(req, decodeURIComponent(url.pathname.split('/')[3] ?? ''), this.keepUploadBytesUpTo);
      } catch (error) {
        recorded.uploadError = (error as Error).message;
        // The rest of the body is not wanted; reading it keeps the connection usable.
        if (!req.readableEnded && !req.destroyed) {
          req.resume();
          await new Promise((resolve) => req.once('end', resolve).once('close', resolve));
        }
      }
    } else {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      recorded = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body };
      try {
        if (body) recorded.json = JSON.parse(body);
      } catch {
        // Not JSON: kept as text.
      }
    }
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));

    // CC's job URLs are polled without credentials (the cc-uploader sends none).
    if (this.options.username !== undefined && kind !== 'job') {
      const expected = `Basic ${Buffer.from(`${this.options.username}:${this.options.password ?? ''}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return this.answer(res, 401, '');
    }

    const eventId = req.headers['x-ccbridge-event-id'];
    if (typeof eventId === 'string') {
      if (this.seenEventIds.has(eventId)) return this.answer(res, 200, '');
    }
    const status = this.statusFor.get(kind) ?? 200;
    if (status >= 200 && status < 300 && typeof eventId === 'string') this.seenEventIds.add(eventId);
    this.requests.push(recorded);
    this.waiters = this.waiters.filter((w) => {
      if (!w.predicate(recorded)) return true;
      w.resolve(recorded);
      return false;
    });
    if (status !== 200) return this.answer(res, status, this.bodyFor.get(kind) ?? '');

    if (kind === 'fingerprints') return this.fingerprintPage(url.searchParams, res);
    if (kind === 'bulk-apps') {
      const guids = Array.isArray(recorded.json) ? (recorded.json as string[]) : [];
      const apps = guids.map((g) => this.apps.get(g)).filter((a): a is DesireAppRequestFromCC => a !== undefined);
      return this.answer(res, 200, `[${apps.map((a) => encodeLegacyJson('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', a)).join(',')}]`);
    }
    if (kind === 'droplet-upload' || kind === 'buildpack-cache-upload') return this.acceptUpload(kind, recorded, res);
    if (kind === 'job') return this.answerJob(decodeURIComponent(url.pathname.split('/')[3] ?? ''), res);
    if (kind === 'package-download') return this.answerBlob(this.packages.get(decodeURIComponent(url.pathname.split('/')[3] ?? '')), res);
    if (kind === 'buildpack-cache-download') return this.answerBlob(this.buildpackCacheBlobs.get(decodeURIComponent(url.pathname.split('/')[3] ?? '')), res);
    if (kind === 'unknown') return this.answer(res, 404, '');
    return this.answer(res, 200, '');
  }

  private acceptUpload(kind: 'droplet-upload' | 'buildpack-cache-upload', recorded: RecordedRequest, res: ServerResponse): void {
    const upload = recorded.upload;
    if (!upload) return this.answer(res, 400, JSON.stringify({ code: 1001, description: recorded.uploadError ?? 'not a multipart upload' }));
    const file = upload.parts.find((part) => part.name === 'file');
    if (!file) return this.answer(res, 400, JSON.stringify({ code: 1001, description: 'no file part named "file"' }));
    if (kind === 'buildpack-cache-upload') {
      this.buildpackCaches.set(upload.guid, upload);
      if (file.bytes) this.buildpackCacheBlobs.set(upload.guid, file.bytes);
      return this.answer(res, 200, '');
    }
    this.droplets.set(upload.guid, upload);
    const job: CcJobState = { guid: randomUUID(), dropletGuid: upload.guid, polls: 0 };
    this.jobs.set(job.guid, job);
    return this.answer(res, 200, this.jobBody(job));
  }

  private answerJob(guid: string, res: ServerResponse): void {
    const job = this.jobs.get(guid);
    if (!job) return this.answer(res, 404, JSON.stringify({ code: 10000, description: 'Unknown request', error_code: 'CF-NotFound' }));
    job.polls++;
    return this.answer(res, 200, this.jobBody(job));
  }

  private jobBody(job: CcJobState): string {
    let status: string;
    if (job.polls >= this.jobPollsUntilDone) status = this.jobFinalStatus;
    else status = job.polls === 0 ? 'queued' : 'running';
    return JSON.stringify({ metadata: { guid: job.guid, url: `/v2/jobs/${job.guid}` }, entity: { guid: job.guid, status } });
  }

  private answerBlob(bytes: Buffer | undefined, res: ServerResponse): void {
    if (!bytes) return this.answer(res, 404, '');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length });
    res.end(bytes);
  }

  private fingerprintPage(query: URLSearchParams, res: ServerResponse): void {
    const batchSize = Number(query.get('batch_size') ?? 500);
    let token: { id?: number };
    try {
      token = JSON.parse(query.get('token') ?? '{}') as { id?: number };
    } catch {
      return this.answer(res, 400, '');
    }
    const offset = token.id ?? 0;
    const page = Math.floor(offset / batchSize);
    if (this.failFingerprintPage === page) return this.answer(res, 500, '');
    const guids = [...this.apps.keys()].sort().slice(offset, offset + batchSize);
    const fingerprints = guids.map((g) => ({ process_guid: g, etag: this.apps.get(g)!.etag }));
    this.answer(res, 200, JSON.stringify({ fingerprints, token: { id: offset + guids.length } }));
  }

  private answer(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }
}

function routeKind(method: string, path: string): string {
  if (method === 'POST' && /^\/internal\/staging\/[^/]+\/completed$/.test(path)) return 'staging';
  if (method === 'POST' && /^\/internal\/(v4\/)?apps\/[^/]+\/crashed$/.test(path)) return 'crashed';
  if (method === 'POST' && /^\/internal\/v4\/apps\/[^/]+\/(rescheduling|readiness_changed)$/.test(path)) return 'instance-report';
  if (method === 'GET' && path === '/internal/bulk/apps') return 'fingerprints';
  if (method === 'POST' && path === '/internal/bulk/apps') return 'bulk-apps';
  if (method === 'POST' && /^\/staging\/droplets\/[^/]+\/upload$/.test(path)) return 'droplet-upload';
  if (method === 'POST' && /^\/staging\/buildpack_cache\/[^/]+\/upload$/.test(path)) return 'buildpack-cache-upload';
  if (method === 'GET' && /^\/v2\/jobs\/[^/]+$/.test(path)) return 'job';
  if (method === 'GET' && /^\/staging\/packages\/[^/]+$/.test(path)) return 'package-download';
  if (method === 'GET' && /^\/staging\/buildpack_cache\/[^/]+\/download$/.test(path)) return 'buildpack-cache-download';
  return 'unknown';
}

/**
 * Parses a multipart/form-data body as it arrives: each part's bytes are hashed and counted, and
 * kept only up to `keepBytesUpTo`, so a large upload costs no more memory than one chunk.
 */
async function readMultipartUpload(req: IncomingMessage, guid: string, keepBytesUpTo: number): Promise<RecordedUpload> {
  const match = /^multipart\/form-data;\s*boundary=(?:"([^"]+)"|([^\s;]+))/i.exec(req.headers['content-type'] ?? '');
  if (!match) throw new Error(`not multipart/form-data: ${req.headers['content-type'] ?? '(no Content-Type)'}`);
  const boundary = (match[1] ?? match[2])!;
  const dashBoundary = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const upload: RecordedUpload = { guid, boundary, parts: [], bodyBytes: 0, preamble: '', epilogue: '' };
  type State = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'epilogue';
  let state: State = 'preamble';
  let pending: Buffer = Buffer.alloc(0);
  let part: { record: RecordedPart; hash: ReturnType<typeof createHash>; kept: Buffer[] | undefined } | undefined;

  const feed = (data: Buffer) => {
    if (!part || data.length === 0) return;
    part.hash.update(data);
    part.record.size += data.length;
    if (part.kept && part.record.size <= keepBytesUpTo) part.kept.push(Buffer.from(data));
    else part.kept = undefined;
  };

  for await (const chunk of req) {
    upload.bodyBytes += (chunk as Buffer).length;
    pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
    for (let progress = true; progress; ) {
      progress = false;
      if (state === 'preamble') {
        const at = pending.indexOf(dashBoundary);
        if (at < 0) {
          const keep = Math.max(0, pending.length - (dashBoundary.length - 1));
          if (upload.preamble.length < 1024) upload.preamble += pending.subarray(0, keep).toString('latin1').slice(0, 1024);
          pending = pending.subarray(keep);
          break;
        }
        upload.preamble += pending.subarray(0, at).toString('latin1');
        pending = pending.subarray(at + dashBoundary.length);
        state = 'after-boundary';
        progress = true;
      } else if (state === 'after-boundary') {
        if (pending.length < 2) break;
        const next = pending.subarray(0, 2).toString('latin1');
        if (next === '--') state = 'epilogue';
        else if (next === '\r\n') state = 'headers';
        else throw new Error(`malformed multipart: ${JSON.stringify(next)} after a boundary`);
        pending = pending.subarray(2);
        progress = true;
      } else if (state === 'headers') {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) {
          if (pending.length > 16 * 1024) throw new Error('malformed multipart: part headers too long');
          break;
        }
        const headers: Record<string, string> = {};
        for (const line of pending.subarray(0, end).toString('utf8').split('\r\n')) {
          const colon = line.indexOf(':');
          if (colon < 0) throw new Error(`malformed multipart header line ${JSON.stringify(line)}`);
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const disposition = headers['content-disposition'] ?? '';
        const record: RecordedPart = {
          headers,
          name: /;\s*name="([^"]*)"/.exec(disposition)?.[1],
          filename: /;\s*filename="([^"]*)"/.exec(disposition)?.[1],
          size: 0,
          md5: '',
          bytes: undefined,
        };
        part = { record, hash: createHash('md5'), kept: [] };
        pending = pending.subarray(end + 4);
        state = 'body';
        progress = true;
      } else if (state === 'body') {
        const at = pending.indexOf(delimiter);
        if (at < 0) {
          // Keep what could be the start of a delimiter split across chunks.
          const safe = pending.length - (delimiter.length - 1);
          if (safe > 0) {
            feed(pending.subarray(0, safe));
            pending = pending.subarray(safe);
          }
          break;
        }
        feed(pending.subarray(0, at));
        part!.record.md5 = part!.hash.digest('hex');
        part!.record.bytes = part!.kept ? Buffer.concat(part!.kept) : undefined;
        upload.parts.push(part!.record);
        part = undefined;
        pending = pending.subarray(at + delimiter.length);
        state = 'after-boundary';
        progress = true;
      } else {
        upload.epilogue += pending.toString('latin1');
        pending = Buffer.alloc(0);
        break;
      }
    }
  }
  if (state !== 'epilogue') throw new Error(`malformed multipart: body ended in state ${state}`);
  return upload;
}

export async function startCcDouble(options: CcDoubleOptions = {}): Promise<CcDouble> {
  return new CcDouble(options).start(0);
}
