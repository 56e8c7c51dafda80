// The proxy half of the router (gorouter's job): a request is matched by its Host header to a
// route, sent to one of the route's instances in turn, and both bodies are streamed through as
// they come. The connection to an instance is made before a single byte of the request body is
// read, so an instance that refuses or does not answer the dial can be swapped for the next one
// without replaying anything; once the request is on its way, a failure is the client's 502.
//
// Errors are gorouter's: the same statuses, bodies and X-Cf-Routererror values, so clients and
// tests written against a real foundation read them the same way.
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream';
import type { Logger } from '../../lib/log.js';
import { hostFromHeader, isLoopbackAddress, type RouteEndpoint, type RouteTable } from './table.js';

export interface ProxyOptions {
  table: RouteTable;
  logger: Logger;
  /** Deadline for the TCP connection to an instance. */
  connectTimeoutMs: number;
  /** Deadline for an instance's response head once the request is sent (gorouter's endpoint timeout). */
  responseTimeoutMs: number;
  /** An instance connection with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Instances tried per request when dialling fails (the first included). */
  attempts: number;
  /** Milliseconds since the epoch, for X-Request-Start. */
  now?: () => number;
}

export interface Proxy {
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  /** Connections handed over to an upgraded protocol, for shutdown. */
  readonly tunnels: ReadonlySet<Socket>;
}

/** gorouter's X-Cf-Routererror values. */
type RouterError = 'unknown_route' | 'no_endpoints' | 'endpoint_failure' | 'empty_host';

interface Refusal {
  status: number;
  error: RouterError;
  body: string;
}

const refusals = {
  emptyHost: (): Refusal => ({ status: 400, error: 'empty_host', body: '400 Bad Request: Request had empty Host header\n' }),
  unknownRoute: (host: string): Refusal => ({ status: 404, error: 'unknown_route', body: `404 Not Found: Requested route ('${host}') does not exist.\n` }),
  noEndpoints: (host: string): Refusal => ({ status: 503, error: 'no_endpoints', body: `503 Service Unavailable: Requested route ('${host}') has no available endpoints.\n` }),
  badGateway: (): Refusal => ({ status: 502, error: 'endpoint_failure', body: '502 Bad Gateway: Registered endpoint failed to handle the request.\n' }),
  timeout: (): Refusal => ({ status: 504, error: 'endpoint_failure', body: '504 Gateway Timeout: The registered endpoint did not respond in time.\n' }),
};

/** Headers that belong to one connection and are never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding']);
/** Headers the router sets itself on the way in. */
const REPLACED_ON_REQUEST = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-vcap-request-id', 'expect']);

/** The client closed before the answer was complete (nginx's and gorouter's log status). */
const CLIENT_CLOSED = 499;

/** Header names listed in Connection: they are hop-by-hop too. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) tokens.add(token.trim().toLowerCase());
  }
  return tokens;
}

/** Raw header pairs without the hop-by-hop ones (and those named in `drop`). */
function endToEnd(rawHeaders: readonly string[], drop: ReadonlySet<string>, keep: ReadonlySet<string> = new Set()): string[] {
  const listed = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!keep.has(name) && (HOP_BY_HOP.has(name) || listed.has(name) || drop.has(name))) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The request's headers as the instance sees them, with the router's own added. */
function forwardedHeaders(req: IncomingMessage, requestId: string, nowMs: number, upgrade: boolean): string[] {
  // An upgrade keeps Connection and Upgrade: they are the request. A chunked request body keeps
  // its Transfer-Encoding, which makes node:http frame what is piped into it the same way.
  const keep = new Set<string>(upgrade ? ['connection', 'upgrade'] : []);
  if (!upgrade && /^\s*chunked\s*$/i.test(headerOf(req, 'transfer-encoding') ?? '')) keep.add('transfer-encoding');
  const headers = endToEnd(req.rawHeaders, REPLACED_ON_REQUEST, keep);
  const client = req.socket.remoteAddress ?? '';
  const forwardedFor = headerOf(req, 'x-forwarded-for');
  headers.push('X-Forwarded-For', forwardedFor ? `${forwardedFor}, ${client}` : client);
  headers.push('X-Forwarded-Proto', headerOf(req, 'x-forwarded-proto')?.split(',', 1)[0]?.trim() || 'http');
  if (headerOf(req, 'x-request-start') === undefined) headers.push('X-Request-Start', String(nowMs));
  headers.push('X-Vcap-Request-Id', requestId);
  return headers;
}

/** Milliseconds since `started`, to the microsecond. */
const elapsedMs = (started: number) => Math.round((performance.now() - started) * 1000) / 1000;

class DialError extends Error {
  override name = 'DialError';
}

/** A TCP connection to an instance, or a DialError after connectTimeoutMs. */
function dial(address: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port });
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new DialError(`no connection to ${address}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

export function createProxy(options: ProxyOptions): Proxy {
  const { table, logger } = options;
  const now = options.now ?? Date.now;
  const tunnels = new Set<Socket>();

  /**
   * Picks instances in turn and dials them, up to `attempts` of them. Instances whose address is
   * not loopback are refused without dialling: the router never reaches off the machine.
   */
  async function connectToInstance(host: string, endpoints: RouteEndpoint[], log: Logger, gone: () => boolean): Promise<{ socket: Socket; endpoint: RouteEndpoint; tries: number } | undefined> {
    const first = table.nextTurn(host);
    const tries = Math.min(options.attempts, endpoints.length);
    for (let n = 0; n < tries; n++) {
      const endpoint = endpoints[(first + n) % endpoints.length]!;
      const where = { address: endpoint.address, port: endpoint.port, process_guid: endpoint.processGuid, index: endpoint.index };
      if (!isLoopbackAddress(endpoint.address)) {
        log.warn(where, 'refused-non-loopback-instance');
        continue;
      }
      try {
        const socket = await dial(endpoint.address, endpoint.port, options.connectTimeoutMs);
        if (gone()) {
          socket.destroy();
          return undefined;
        }
        return { socket, endpoint, tries: n + 1 };
      } catch (err) {
        log.warn({ ...where, attempt: n + 1, err: (err as Error).message }, 'instance-dial-failed');
      }
    }
    return undefined;
  }

  /** The route's instances, or the refusal to answer with. */
  function resolveRoute(host: string): { host: string; endpoints?: RouteEndpoint[]; refusal?: Refusal } {
    if (host === '') return { host, refusal: refusals.emptyHost() };
    const endpoints = table.lookup(host);
    if (endpoints === undefined) return { host, refusal: refusals.unknownRoute(host) };
    if (endpoints.length === 0) return { host, refusal: refusals.noEndpoints(host) };
    return { host, endpoints };
  }

  function refuse(res: ServerResponse, refusal: Refusal): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(refusal.status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(refusal.body),
      'X-Cf-Routererror': refusal.error,
    });
    res.end(refusal.body);
  }

  async function proxyRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const requestId = randomUUID();
    const startMs = now();
    const path = (req.url ?? '').split('?', 1)[0];
    const log = logger.child({ request_id: requestId });
    const host = hostFromHeader(req.headers.host);
    let where: Record<string, unknown> = {};
    let attempts = 0;
    let clientGone = false;
    /** The instance broke off its answer: the client's cut answer is the router's 502, not a client abort. */
    let answerCut = false;
    req.on('error', () => undefined);
    res.on('close', () => {
      if (!res.writableFinished && !answerCut) clientGone = true;
      const status = res.writableFinished ? res.statusCode : answerCut ? 502 : CLIENT_CLOSED;
      const routerError = res.getHeader('x-cf-routererror');
      log.info(
        { host, method: req.method, path, status, attempts, ...where, ...(routerError === undefined ? {} : { router_error: routerError }), duration_ms: elapsedMs(started) },
        'route-request',
      );
    });

    const route = resolveRoute(host);
    if (route.refusal !== undefined) {
      // The body is not wanted; reading it lets the connection be reused.
      req.resume();
      refuse(res, route.refusal);
      return;
    }
    const connected = await connectToInstance(route.host, route.endpoints!, log, () => clientGone || res.destroyed);
    if (connected === undefined) {
      attempts = Math.min(options.attempts, route.endpoints!.length);
      if (res.destroyed) return;
      req.resume();
      refuse(res, refusals.badGateway());
      return;
    }
    const { socket, endpoint } = connected;
    attempts = connected.tries;
    where = { process_guid: endpoint.processGuid, index: endpoint.index, address: `${endpoint.address}:${endpoint.port}` };
    socket.setTimeout(options.idleTimeoutMs, () => socket.destroy(new Error(`no traffic with the instance for ${options.idleTimeoutMs} ms`)));

    let upstream: ClientRequest;
    try {
      upstream = httpRequest({
        method: req.method,
        path: req.url,
        headers: forwardedHeaders(req, requestId, startMs, false),
        setHost: false,
        createConnection: () => socket,
      });
    } catch (err) {
      // node:http refuses some targets the parser let through; nothing was sent.
      socket.destroy();
      log.warn({ ...where, err: (err as Error).message }, 'unforwardable-request');
      req.resume();
      refuse(res, { status: 400, error: 'endpoint_failure', body: '400 Bad Request: the request cannot be forwarded.\n' });
      return;
    }
    /** Set once the outcome is decided, so a late error cannot answer a second time. */
    let settled = false;
    const giveUp = (refusal: Refusal) => {
      if (settled) return;
      settled = true;
      clearTimeout(responseTimer);
      req.unpipe(upstream);
      upstream.destroy();
      socket.destroy();
      if (clientGone) return;
      req.resume();
      refuse(res, refusal);
    };
    const responseTimer = setTimeout(() => {
      log.warn({ ...where, timeout_ms: options.responseTimeoutMs }, 'instance-response-timed-out');
      giveUp(refusals.timeout());
    }, options.responseTimeoutMs);

    upstream.on('response', (answer: IncomingMessage) => {
      if (settled) return answer.destroy();
      settled = true;
      clearTimeout(responseTimer);
      if (res.destroyed) {
        answer.destroy();
        socket.destroy();
        return;
      }
      answer.on('close', () => {
        if (!answer.complete && !clientGone) answerCut = true;
      });
      answer.on('error', () => {
        if (!clientGone) answerCut = true;
      });
      const headers = endToEnd(answer.rawHeaders, new Set());
      // The instance's Date is passed through; node:http must not add a second one.
      res.sendDate = answer.headers.date === undefined;
      try {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      } catch (err) {
        // A head node:http parsed but will not write again (an odd status line or header byte).
        log.warn({ ...where, err: (err as Error).message }, 'instance-response-unforwardable');
        answer.destroy();
        socket.destroy();
        refuse(res, refusals.badGateway());
        return;
      }
      // A failure on either side ends both: a cut answer must reach the client as a cut answer.
      pipeline(answer, res, (err) => {
        if (err && answerCut) log.warn({ ...where, err: err.message }, 'instance-response-failed');
        socket.destroy();
      });
    });
    upstream.on('error', (err) => {
      if (settled) return;
      log.warn({ ...where, err: err.message }, 'instance-request-failed');
      giveUp(refusals.badGateway());
    });
    res.on('close', () => {
      if (res.writableFinished) return;
      settled = true;
      clearTimeout(responseTimer);
      req.unpipe(upstream);
      upstream.destroy();
      socket.destroy();
    });
    // pipe, not pipeline: an instance that answers before reading the whole body must not take
    // the client's connection down with its own.
    req.pipe(upstream);
  }

  function writeRawRefusal(socket: Socket, refusal: Refusal): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(
      `HTTP/1.1 ${refusal.status} ${refusal.body.slice(4, refusal.body.indexOf(':'))}\r\n` +
        `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(refusal.body)}\r\n` +
        `X-Cf-Routererror: ${refusal.error}\r\nConnection: close\r\n\r\n${refusal.body}`,
    );
  }

  /** Upgrades (WebSocket and friends): the request head is sent on, then bytes flow both ways untouched. */
  async function proxyUpgrade(req: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
    const started = performance.now();
    const requestId = randomUUID();
    const startMs = now();
    const log = logger.child({ request_id: requestId });
    const path = (req.url ?? '').split('?', 1)[0];
    let status = 0;
    let where: Record<string, unknown> = {};
    client.on('error', () => undefined);
    const host = hostFromHeader(req.headers.host);
    const accessLog = (finalStatus: number) =>
      log.info({ host, method: req.method, path, status: finalStatus, upgrade: req.headers.upgrade ?? '', ...where, duration_ms: elapsedMs(started) }, 'route-request');

    const route = resolveRoute(host);
    if (route.refusal !== undefined) {
      writeRawRefusal(client, route.refusal);
      accessLog(route.refusal.status);
      return;
    }
    let clientGone = false;
    client.once('close', () => (clientGone = true));
    const connected = await connectToInstance(route.host, route.endpoints!, log, () => clientGone || client.destroyed);
    if (connected === undefined) {
      writeRawRefusal(client, refusals.badGateway());
      accessLog(clientGone ? CLIENT_CLOSED : 502);
      return;
    }
    const { socket, endpoint } = connected;
    where = { process_guid: endpoint.processGuid, index: endpoint.index, address: `${endpoint.address}:${endpoint.port}`, attempts: connected.tries };
    tunnels.add(client);
    socket.on('error', () => undefined);
    // Upgraded connections are long-lived by design; idleness is the endpoints' business.
    client.setTimeout(0);
    const headers = forwardedHeaders(req, requestId, startMs, true);
    let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i + 1 < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    socket.write(`${text}\r\n`);
    if (head.length > 0) socket.write(head);
    socket.once('data', (chunk: Buffer) => {
      status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(chunk.subarray(0, 16).toString('latin1'))?.[1] ?? 0);
    });
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      tunnels.delete(client);
      socket.destroy();
      client.destroy();
      accessLog(status === 0 ? 502 : status);
    };
    // Either side closing or ending ends the tunnel: what it sent is flushed to the other side,
    // then both go. Half-open tunnels would otherwise linger until the idle timeout.
    const endFrom = (to: Socket) => () => void to.end(close);
    socket.on('close', close);
    client.on('close', close);
    socket.on('end', endFrom(client));
    client.on('end', endFrom(socket));
    socket.pipe(client, { end: false });
    client.pipe(socket, { end: false });
  }

  return {
    tunnels,
    handleRequest(req, res) {
      proxyRequest(req, res).catch((err: unknown) => {
        logger.error({ err }, 'route-request-crashed');
        if (!res.headersSent) refuse(res, refusals.badGateway());
        else res.destroy();
      });
    },
    handleUpgrade(req, socket, head) {
      proxyUpgrade(req, socket, head).catch((err: unknown) => {
        logger.error({ err }, 'route-upgrade-crashed');
        socket.destroy();
      });
    },
  };
}
