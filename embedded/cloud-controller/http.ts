// HTTP plumbing of the development Cloud Controller (a development stand-in): a route table,
// basic auth, bounded JSON bodies, file answers, and the two error shapes — Cloud Controller v2's
// `{code, description, error_code}` on the routes the bridge and containers call, v3's
// `{errors: [{code, title, detail}]}` on the command line's API.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { CcApiError, type BlobFile } from './controller.js';
import { UploadError } from './uploads.js';

export type ErrorStyle = 'v2' | 'v3';

/** Who may call a route: the configured credentials; those or a blobstore URL signature; anyone. */
export type Access = 'basic' | 'basic-or-signature' | 'anyone';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  pathname: string;
  requestId: string;
}

export interface Route {
  method: string;
  /** `:name` captures one path segment. */
  path: string;
  access: Access;
  errors: ErrorStyle;
  handle(context: RequestContext): Promise<void> | void;
}

interface CompiledRoute extends Route {
  pattern: RegExp;
  names: string[];
}

export class RouteTable {
  private readonly routes: CompiledRoute[];

  constructor(routes: readonly Route[]) {
    this.routes = routes.map((route) => {
      const names: string[] = [];
      const source = route.path
        .split('/')
        .map((segment) => {
          if (!segment.startsWith(':')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(segment.slice(1));
          return '([^/]+)';
        })
        .join('/');
      return { ...route, pattern: new RegExp(`^${source}$`), names };
    });
  }

  /** The route for method and path (GET routes answer HEAD too); `methodMismatch` when only the method differs. */
  match(method: string, pathname: string): { route: CompiledRoute; params: Record<string, string> } | { methodMismatch: boolean } {
    let methodMismatch = false;
    for (const route of this.routes) {
      const found = route.pattern.exec(pathname);
      if (!found) continue;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
        methodMismatch = true;
        continue;
      }
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        params[name] = safeDecode(found[i + 1]!);
      });
      return { route, params };
    }
    return { methodMismatch };
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Compares basic-auth credentials in constant time. */
export function basicAuthChecker(username: string, password: string): (header: string | undefined) => boolean {
  const expected = createHash('sha256').update(`Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`).digest();
  return (header) => header !== undefined && timingSafeEqual(createHash('sha256').update(header).digest(), expected);
}

export class BodyError extends Error {
  override name = 'BodyError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The request body as text, refused past maxBytes. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyError(413, `the body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The request body as JSON (an empty body is `undefined`). */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const text = await readBody(req, maxBytes);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new CcApiError(400, 'CF-MessageParseError', `Request invalid due to parse error: ${(error as Error).message}`, 1001);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, status, value === undefined ? '' : JSON.stringify(value), 'application/json');
}

export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  const headers: Record<string, string | number> = { 'Content-Length': Buffer.byteLength(text) };
  if (text !== '') headers['Content-Type'] = contentType;
  res.writeHead(status, headers);
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

export async function sendFile(res: ServerResponse, file: BlobFile): Promise<void> {
  res.writeHead(200, { 'Content-Type': file.contentType, 'Content-Length': file.size });
  if (res.req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(createReadStream(file.path), res);
}

/** The error body of either shape. */
export function errorBody(style: ErrorStyle, status: number, title: string, detail: string, code: number): unknown {
  if (style === 'v3') return { errors: [{ code, title, detail }] };
  return { code, description: detail, error_code: title };
}

/** Status, CC error name, message and code for anything a handler threw. */
export function describeError(error: unknown): { status: number; title: string; detail: string; code: number; internal: boolean } {
  if (error instanceof CcApiError) return { status: error.status, title: error.title, detail: error.message, code: error.code, internal: false };
  if (error instanceof UploadError || error instanceof BodyError) {
    const tooLarge = error.status === 413;
    return { status: error.status, title: tooLarge ? 'CF-RequestEntityTooLarge' : 'CF-MessageParseError', detail: error.message, code: tooLarge ? 10007 : 1001, internal: false };
  }
  return { status: 500, title: 'CF-ServerError', detail: 'An unknown error occurred.', code: 10001, internal: true };
}
