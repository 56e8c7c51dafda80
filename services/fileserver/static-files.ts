// The file server (spec §8.1): `GET`/`HEAD /v1/static/<path>` serves the static directory with
// the semantics of Go's `http.StripPrefix("/v1/static/", http.FileServer(http.Dir(dir)))` behind
// rata/pat routing. Lifecycle bundles are large, so files are streamed, never read whole.
//
// One deliberate difference from Go: nothing outside the directory is ever served. Go cleans
// `..` away lexically and follows symlinks wherever they point; here a `..` segment (however it
// was escaped) and a symlink resolving outside the directory are both "not found".
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { open, readdir, realpath, stat, type FileHandle } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { basename, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../lib/log.js';
import { httpsServerOptions, type TlsMaterial } from '../../lib/tls.js';
import { evaluatePreconditions, contentRange, lastModifiedHeader, notModifiedSince, parseRange, type ByteRange } from './conditional.js';
import { loadContentTypes, sniffContentType, SNIFF_LENGTH, type ContentTypes } from './content-type.js';
import { decodeRequestPath, listen, plainTextError, splitRequestTarget, type Listening } from './http.js';

export const STATIC_ROUTE_PREFIX = '/v1/static/';

export interface FileServerOptions {
  /** The directory served under /v1/static/. */
  staticDirectory: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  logger: Logger;
  /** mime.types files consulted after Go's built-in table; [] makes types host-independent. */
  mimeTypesFiles?: readonly string[];
  /** Size of each read from disk while streaming. */
  readChunkBytes?: number;
  /** How long close() lets downloads in flight finish before cutting them. */
  shutdownGraceMs?: number;
  /** Serve HTTPS; with a CA, clients must present a certificate it signed (mutual TLS). */
  tls?: TlsMaterial;
}

export type FileServer = Listening;

export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const handler = createStaticFileHandler(options);
  const server = options.tls ? createHttpsServer(httpsServerOptions(options.tls, true), (req, res) => handler(req, res)) : createServer((req, res) => handler(req, res));
  const listening = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0, options.tls ? 'https' : 'http', options.shutdownGraceMs ?? 5_000);
  options.logger.info({ url: listening.url, static_directory: options.staticDirectory }, 'file-server-ready');
  return listening;
}

/** Bytes sent in a response body, for the request's log line. */
interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  sent: number;
}

export function createStaticFileHandler(options: FileServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  // Resolved once: every served path must resolve inside this real directory.
  const root = realpathSync(options.staticDirectory);
  const contentTypes = loadContentTypes(options.mimeTypesFiles);
  const chunkBytes = options.readChunkBytes ?? 64 * 1024;
  const log = options.logger.child({ session: 'file-server' });

  return (req, res) => {
    const exchange: Exchange = { req, res, sent: 0 };
    const { rawPath } = splitRequestTarget(req);
    res.once('close', () => {
      log.info(
        // A HEAD answer carries no body whatever was passed to end().
        { status: res.statusCode, size: req.method === 'HEAD' ? 0 : exchange.sent, method: req.method, path: rawPath, completed: res.writableFinished },
        'static-file-response',
      );
    });
    route(exchange, root, contentTypes, chunkBytes).catch((error: unknown) => {
      log.error({ err: error, path: rawPath }, 'static-file-failed');
      if (!res.headersSent) exchange.sent += plainTextError(res, 500, '500 Internal Server Error');
      else res.destroy();
    });
  };
}

async function route(exchange: Exchange, root: string, contentTypes: ContentTypes, chunkBytes: number): Promise<void> {
  const { req, res } = exchange;
  const { rawPath, rawQuery } = splitRequestTarget(req);
  const path = decodeRequestPath(rawPath);
  if (path === undefined) {
    exchange.sent += plainTextError(res, 400, '400 Bad Request');
    return;
  }
  const isRead = req.method === 'GET' || req.method === 'HEAD';
  const routePrefix = STATIC_ROUTE_PREFIX.slice(0, -1);
  if (path !== routePrefix && !path.startsWith(STATIC_ROUTE_PREFIX)) {
    exchange.sent += plainTextError(res, 404, '404 page not found');
    return;
  }
  if (!isRead) {
    exchange.sent += plainTextError(res, 405, 'Method Not Allowed', { Allow: 'GET, HEAD' });
    return;
  }
  if (path === routePrefix) {
    // pat answers a prefix route's slash-less form with a redirect to the slash form.
    redirect(exchange, STATIC_ROUTE_PREFIX, 'absolute');
    return;
  }
  await serveStatic(exchange, root, path.slice(STATIC_ROUTE_PREFIX.length), rawQuery, contentTypes, chunkBytes);
}

async function serveStatic(exchange: Exchange, root: string, relative: string, rawQuery: string, contentTypes: ContentTypes, chunkBytes: number): Promise<void> {
  const { res } = exchange;
  const urlPath = `/${relative}`;
  const segments = urlPath.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..') || urlPath.includes('\0')) {
    notFound(exchange);
    return;
  }
  if (urlPath.endsWith('/index.html')) {
    redirect(exchange, withQuery('./', rawQuery), 'relative');
    return;
  }

  const resolved = await resolveInside(root, join(root, ...segments));
  if (resolved.kind === 'error') {
    if (resolved.status === 403) exchange.sent += plainTextError(res, 403, '403 Forbidden');
    else notFound(exchange);
    return;
  }
  let target = resolved.path;
  let info = await stat(target);
  if (!info.isDirectory() && !info.isFile()) {
    // Pipes, sockets and devices are not files to hand out (a FIFO would hang the reader).
    notFound(exchange);
    return;
  }
  // Canonical forms: a directory ends with a slash, a file does not.
  if (info.isDirectory() && !urlPath.endsWith('/')) {
    redirect(exchange, withQuery(`${basename(urlPath)}/`, rawQuery), 'relative');
    return;
  }
  if (info.isFile() && urlPath.endsWith('/')) {
    redirect(exchange, withQuery(`../${basename(urlPath)}`, rawQuery), 'relative');
    return;
  }
  if (info.isDirectory()) {
    const index = await resolveInside(root, join(target, 'index.html'));
    const indexInfo = index.kind === 'ok' ? await stat(index.path).catch(() => undefined) : undefined;
    if (index.kind === 'ok' && indexInfo?.isFile()) {
      target = index.path;
      info = indexInfo;
    } else {
      await listDirectory(exchange, target, info.mtime);
      return;
    }
  }

  let handle: FileHandle;
  try {
    handle = await open(target, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EACCES') exchange.sent += plainTextError(res, 403, '403 Forbidden');
    else notFound(exchange);
    return;
  }
  try {
    // Size and time from the open file, so a file replaced meanwhile is described consistently.
    const opened = await handle.stat();
    await serveContent(exchange, handle, basename(target), opened.size, opened.mtime, contentTypes, chunkBytes);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

type Resolution = { kind: 'ok'; path: string } | { kind: 'error'; status: 403 | 404 };

/** The real path of a candidate, refused when it leaves the root (through a symlink). */
async function resolveInside(root: string, candidate: string): Promise<Resolution> {
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (error) {
    return { kind: 'error', status: (error as NodeJS.ErrnoException).code === 'EACCES' ? 403 : 404 };
  }
  if (real !== root && !real.startsWith(root.endsWith(sep) ? root : root + sep)) return { kind: 'error', status: 404 };
  return { kind: 'ok', path: real };
}

async function serveContent(
  exchange: Exchange,
  handle: FileHandle,
  name: string,
  size: number,
  modified: Date,
  contentTypes: ContentTypes,
  chunkBytes: number,
): Promise<void> {
  const { req, res } = exchange;
  const lastModified = lastModifiedHeader(modified);
  if (lastModified) res.setHeader('Last-Modified', lastModified);

  const precondition = evaluatePreconditions(req.method ?? 'GET', req.headers, modified);
  if (precondition.outcome === 'not-modified') {
    res.writeHead(304);
    res.end();
    return;
  }
  if (precondition.outcome === 'precondition-failed') {
    res.writeHead(412);
    res.end();
    return;
  }

  let contentType = contentTypes.byExtension(name);
  if (contentType === undefined) {
    const head = Buffer.alloc(Math.min(SNIFF_LENGTH, size));
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    contentType = sniffContentType(head.subarray(0, bytesRead));
  }
  res.setHeader('Content-Type', contentType);

  const requested = parseRange(precondition.range, size);
  if (requested.kind === 'invalid' || requested.kind === 'no-overlap') {
    res.removeHeader('Content-Type');
    exchange.sent += plainTextError(
      res,
      416,
      requested.kind === 'invalid' ? 'invalid range' : 'invalid range: failed to overlap',
      requested.kind === 'no-overlap' ? { 'Content-Range': `bytes */${size}` } : {},
    );
    return;
  }
  res.setHeader('Accept-Ranges', 'bytes');
  const isHead = req.method === 'HEAD';

  if (requested.kind === 'none') {
    res.writeHead(200, { 'Content-Length': size });
    if (isHead) res.end();
    else await stream(exchange, readRanges(handle, [{ start: 0, length: size }], [], chunkBytes));
    return;
  }
  if (requested.ranges.length === 1) {
    const range = requested.ranges[0]!;
    res.writeHead(206, { 'Content-Length': range.length, 'Content-Range': contentRange(range, size) });
    if (isHead) res.end();
    else await stream(exchange, readRanges(handle, [range], [], chunkBytes));
    return;
  }
  // Several ranges: multipart/byteranges, laid out as Go's multipart writer does.
  const boundary = randomBytes(30).toString('hex');
  const partHeads = requested.ranges.map(
    (range, i) => `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Range: ${contentRange(range, size)}\r\nContent-Type: ${contentType}\r\n\r\n`,
  );
  const closing = `\r\n--${boundary}--\r\n`;
  const length =
    partHeads.reduce((sum, head) => sum + Buffer.byteLength(head), 0) + requested.ranges.reduce((sum, r) => sum + r.length, 0) + Buffer.byteLength(closing);
  res.writeHead(206, { 'Content-Type': `multipart/byteranges; boundary=${boundary}`, 'Content-Length': length });
  if (isHead) res.end();
  else await stream(exchange, readRanges(handle, requested.ranges, [...partHeads, closing], chunkBytes));
}

/**
 * The bytes of each range in turn, each preceded by its separator (when given) and followed by
 * the last separator. A file that shrinks while being read ends the stream with an error, so the
 * client sees a cut connection rather than a short body under a longer Content-Length.
 */
async function* readRanges(handle: FileHandle, ranges: readonly ByteRange[], separators: readonly string[], chunkBytes: number): AsyncGenerator<Buffer> {
  for (const [i, range] of ranges.entries()) {
    if (separators[i] !== undefined) yield Buffer.from(separators[i]!);
    let position = range.start;
    let left = range.length;
    while (left > 0) {
      const buffer = Buffer.allocUnsafe(Math.min(chunkBytes, left));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new Error('file shrank while being served');
      yield buffer.subarray(0, bytesRead);
      position += bytesRead;
      left -= bytesRead;
    }
  }
  if (separators.length > ranges.length) yield Buffer.from(separators[separators.length - 1]!);
}

async function stream(exchange: Exchange, chunks: AsyncGenerator<Buffer>): Promise<void> {
  const counted = Readable.from(chunks, { objectMode: false });
  counted.on('data', (chunk: Buffer) => {
    exchange.sent += chunk.length;
  });
  try {
    await pipeline(counted, exchange.res);
  } catch (error) {
    // A client that goes away mid-download is not a server error; pipeline has closed both ends.
    if (exchange.res.destroyed && !(error instanceof Error && error.message === 'file shrank while being served')) return;
    throw error;
  }
}

/** Go's dirList: names sorted, directories with a trailing slash, HTML-escaped, URL-escaped links. */
async function listDirectory(exchange: Exchange, directory: string, modified: Date): Promise<void> {
  const { req, res } = exchange;
  if (notModifiedSince(req.method ?? 'GET', req.headers['if-modified-since'], modified)) {
    const lastModified = lastModifiedHeader(modified);
    res.writeHead(304, lastModified ? { 'Last-Modified': lastModified } : {});
    res.end();
    return;
  }
  const entries = await readdir(directory, { withFileTypes: true });
  // Sorted by name before directories get their slash, as Go sorts them.
  const names = entries.sort((a, b) => compareBytes(a.name, b.name)).map((entry) => (entry.isDirectory() ? `${entry.name}/` : entry.name));
  // The link is URL-escaped only, as Go writes it: path escaping leaves nothing but `&` that
  // HTML would read differently, and an `&` in an attribute is read literally.
  const lines = names.map((name) => `<a href="${escapeLink(name)}">${escapeHtml(name)}</a>\n`);
  const body = `<pre>\n${lines.join('')}</pre>\n`;
  const headers: Record<string, string | number> = { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body) };
  const lastModified = lastModifiedHeader(modified);
  if (lastModified) headers['Last-Modified'] = lastModified;
  res.writeHead(200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  exchange.sent += Buffer.byteLength(body);
  res.end(body);
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Go's url.URL{Path: name}.String(): path escaping, and `./` before a first segment with a colon. */
export function escapeLink(name: string): string {
  const escaped = [...Buffer.from(name, 'utf8')]
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9\-_.~$&+,/:;=@]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  const firstSegment = escaped.split('/')[0]!;
  return firstSegment.includes(':') ? `./${escaped}` : escaped;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[char]!);
}

function withQuery(location: string, rawQuery: string): string {
  return rawQuery === '' ? location : `${location}?${rawQuery}`;
}

/**
 * A 301. Go's FileServer answers with a relative Location and no body; pat's slash redirect goes
 * through http.Redirect, which adds a short HTML body for reads.
 */
function redirect(exchange: Exchange, location: string, kind: 'relative' | 'absolute'): void {
  const { res } = exchange;
  if (kind === 'relative') {
    res.writeHead(301, { Location: location, 'Content-Length': 0 });
    res.end();
    return;
  }
  const body = `<a href="${escapeHtml(location)}">Moved Permanently</a>.\n\n`;
  res.writeHead(301, { Location: location, 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  if (exchange.req.method === 'HEAD') {
    res.end();
    return;
  }
  exchange.sent += Buffer.byteLength(body);
  res.end(body);
}

function notFound(exchange: Exchange): void {
  exchange.sent += plainTextError(exchange.res, 404, '404 page not found');
}
