// A Cloud Controller test double speaking CC's internal API over real HTTP: it records what the
// bridge sends and answers as CC does, with knobs for the failures tests need (a status to
// answer, a page to fail, a delay, being down). Shared by every suite that talks to CC.
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
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://cc.internal');
    const body = Buffer.concat(chunks).toString('utf8');
    const recorded: RecordedRequest = { method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers, body };
    try {
      if (body) recorded.json = JSON.parse(body);
    } catch {
      // Not JSON: kept as text.
    }
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));

    if (this.options.username !== undefined) {
      const expected = `Basic ${Buffer.from(`${this.options.username}:${this.options.password ?? ''}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return this.answer(res, 401, '');
    }

    const eventId = req.headers['x-ccbridge-event-id'];
    if (typeof eventId === 'string') {
      if (this.seenEventIds.has(eventId)) return this.answer(res, 200, '');
    }
    const kind = routeKind(req.method ?? '', url.pathname);
    const status = this.statusFor.get(kind) ?? 200;
    if (status >= 200 && status < 300 && typeof eventId === 'string') this.seenEventIds.add(eventId);
    this.requests.push(recorded);
    this.waiters = this.waiters.filter((w) => {
      if (!w.predicate(recorded)) return true;
      w.resolve(recorded);
      return false;
    });
    if (status !== 200) return this.answer(res, status, '');

    if (kind === 'fingerprints') return this.fingerprintPage(url.searchParams, res);
    if (kind === 'bulk-apps') {
      const guids = Array.isArray(recorded.json) ? (recorded.json as string[]) : [];
      const apps = guids.map((g) => this.apps.get(g)).filter((a): a is DesireAppRequestFromCC => a !== undefined);
      return this.answer(res, 200, `[${apps.map((a) => encodeLegacyJson('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', a)).join(',')}]`);
    }
    if (kind === 'unknown') return this.answer(res, 404, '');
    return this.answer(res, 200, '');
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
  return 'unknown';
}

export async function startCcDouble(options: CcDoubleOptions = {}): Promise<CcDouble> {
  return new CcDouble(options).start(0);
}
