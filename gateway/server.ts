// The REST gateway: Cloud Controller's original routes, transcoded to the gRPC services.
// Routes come from the contracts (gateway/routes.ts), bodies go through the legacy JSON codec,
// statuses through gateway/status.ts. Nothing here knows a particular endpoint.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { Metadata, Status } from 'nice-grpc';
import { createInboundAuth, type InboundAuth } from '../lib/inbound-auth.js';
import { decodeLegacyJson, emptyLegacyMessage, encodeLegacyJson, encodeLegacyJsonField, LegacyJsonError } from '../lib/legacy-json.js';
import type { Logger } from '../lib/log.js';
import { httpsServerOptions, type TlsMaterial } from '../lib/tls.js';
import { GatewayCallError, type ServiceBinding } from './dispatch.js';
import { RouteTable, routesFor, type Route } from './routes.js';
import { errorBodyFor, httpStatusFor } from './status.js';

export const REQUEST_ID_HEADER = 'x-vcap-request-id';

export interface GatewayOptions {
  services: readonly ServiceBinding[];
  logger: Logger;
  /** Largest request body accepted; larger ones get 413. */
  maxBodyBytes?: number;
  /** Largest request head accepted (Go allowed 1 MB; a bulk-status URL with 1,000 guids needs ~40 KB). */
  maxHeaderBytes?: number;
  /** Deadline of each call to a service. */
  callTimeoutMs?: number;
  /** Request headers passed on to the services as gRPC metadata (besides the request id). */
  forwardedHeaders?: readonly string[];
  /** Served as Prometheus text on GET /metrics when given. */
  metrics?: { metrics(): Promise<string>; contentType: string };
  /** Requests served at once; more get 503 with no body (the original maxInFlight). 0: no limit. */
  maxInFlightRequests?: number;
  /** Inbound authentication (basic auth or a verified client certificate); off when absent. */
  auth?: InboundAuth;
  /**
   * RPCs (`package.Service/Method`) that pass the caller's Authorization header on to a
   * neighbour. With inbound authentication on they authenticate by client certificate only, so
   * the header that reaches them is never the bridge's own credentials.
   */
  authorizationPassthrough?: readonly string[];
}

export const GATEWAY_DEFAULTS = {
  maxBodyBytes: 4 * 1024 * 1024,
  maxHeaderBytes: 1024 * 1024,
  callTimeoutMs: 60_000,
  forwardedHeaders: ['authorization'],
  maxInFlightRequests: 0,
  /** TPS stats: the caller's Authorization goes to log-cache (the traffic controller in 2015). */
  authorizationPassthrough: ['cloudfoundry.ccbridge.tps.v1.TpsService/GetLrpStats'],
} as const;

/** A request the gateway could not turn into a call: answered with this status and no body. */
class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type GatewayHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The gateway's request handler, for mounting in any node:http server. */
export function createGatewayHandler(options: GatewayOptions): GatewayHandler {
  const log = options.logger.child({ session: 'gateway' });
  const maxBodyBytes = options.maxBodyBytes ?? GATEWAY_DEFAULTS.maxBodyBytes;
  const callTimeoutMs = options.callTimeoutMs ?? GATEWAY_DEFAULTS.callTimeoutMs;
  const forwarded = (options.forwardedHeaders ?? GATEWAY_DEFAULTS.forwardedHeaders).map((h) => h.toLowerCase());
  const dispatchers = new Map(options.services.map((s) => [s.definition.fullName, s.dispatcher]));
  const table = new RouteTable(routesFor(options.services.map((s) => s.definition)));
  const auth = options.auth ?? createInboundAuth({});
  const passthrough = new Set(options.authorizationPassthrough ?? GATEWAY_DEFAULTS.authorizationPassthrough);
  const maxInFlight = options.maxInFlightRequests ?? GATEWAY_DEFAULTS.maxInFlightRequests;
  let inFlight = 0;
  const accessLog = log.isLevelEnabled('info');

  return (req, res) => {
    const started = performance.now();
    const requestId = headerValue(req, REQUEST_ID_HEADER) || randomUUID();
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const pathname = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt < 0 ? '' : rawUrl.slice(queryAt + 1);
    res.setHeader('X-Vcap-Request-Id', requestId);
    if (accessLog) {
      res.on('finish', () => {
        log.info(
          {
            method: req.method,
            path: pathname,
            status: res.statusCode,
            duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
            request_id: requestId,
          },
          'request-served',
        );
      });
    }

    const match = table.match(req.method ?? 'GET', pathname);
    const passesAuthorizationOn = match !== undefined && 'route' in match && passthrough.has(`${match.route.serviceName}/${match.route.method.name}`);
    if (auth.check(req, passesAuthorizationOn ? 'certificate-only' : 'basic-or-certificate') === 'refused') {
      req.resume();
      return void auth.refuse(res);
    }

    if (maxInFlight > 0 && inFlight >= maxInFlight) {
      req.resume();
      return void writeEmpty(res, 503);
    }
    inFlight++;
    // One close listener per request: the slot, and for a call its deadline and cancellation.
    let call: { abort: AbortController; timer: NodeJS.Timeout } | undefined;
    res.once('close', () => {
      inFlight--;
      if (call === undefined) return;
      clearTimeout(call.timer);
      if (!res.writableFinished) call.abort.abort(new Error('client went away'));
    });

    if (options.metrics && pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const registry = options.metrics;
      return void registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(text) });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          log.error({ err: error }, 'failed-collecting-metrics');
          writeEmpty(res, 500);
        },
      );
    }

    if (!match) return void writePlain(res, 404, '404 page not found\n');
    if ('allowed' in match) {
      res.setHeader('Allow', match.allowed.join(', '));
      return void writePlain(res, 405, 'Method Not Allowed\n');
    }
    const { route, variables } = match;
    const dispatcher = dispatchers.get(route.serviceName)!;

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error('deadline exceeded')), callTimeoutMs);
    call = { abort, timer };

    // A route without a body reads none: whatever was sent is discarded, and the call need not
    // wait for the request's end.
    (route.body === '' ? discardBody(req) : readBody(req, maxBodyBytes))
      .then(async (body) => {
        const request = buildRequest(route, variables, query, body);
        const metadata = Metadata({ [REQUEST_ID_HEADER]: requestId });
        for (const name of forwarded) {
          // Credentials that authenticated to the bridge stay here.
          if (name === 'authorization' && auth.enabled && !passesAuthorizationOn) continue;
          const value = headerValue(req, name);
          if (value) metadata.set(name, value);
        }
        const response = (await dispatcher.unary(route.generated, request, metadata, abort.signal)) as object;
        writeSuccess(req, res, route, response);
      })
      .catch((error: unknown) => {
        if (res.headersSent || res.destroyed) return;
        if (error instanceof BadRequest) {
          log.debug({ request_id: requestId, reason: error.message }, 'request-rejected');
          return void writeEmpty(res, error.status);
        }
        if (error instanceof GatewayCallError) {
          const status = abort.signal.aborted && error.failure.code === Status.CANCELLED ? 504 : httpStatusFor(route.legacy, error.failure);
          const body = errorBodyFor(error.failure);
          return void (body === undefined ? writeEmpty(res, status) : writeJson(req, res, status, body));
        }
        log.error({ err: error, request_id: requestId, path: pathname }, 'request-failed');
        writeEmpty(res, 500);
      })
      .finally(() => clearTimeout(timer));
  };
}

export interface RunningGateway {
  server: Server;
  port: number;
  /** http://host:port */
  url: string;
  /** Stops accepting, lets requests in flight finish for up to graceMs, then closes the rest. */
  close(graceMs?: number): Promise<void>;
}

/** Serves the gateway on host:port (port 0 picks a free one). */
export async function startGateway(options: GatewayOptions & { host?: string; port?: number; tls?: TlsMaterial }): Promise<RunningGateway> {
  const handler = createGatewayHandler(options);
  const maxHeaderSize = options.maxHeaderBytes ?? GATEWAY_DEFAULTS.maxHeaderBytes;
  // With a client CA the handshake asks for a certificate and each request is checked by the
  // inbound authentication (a client without one may still use basic auth where it is allowed).
  const server: Server = options.tls ? createHttpsServer({ ...httpsServerOptions(options.tls, false), maxHeaderSize }, handler) : createServer({ maxHeaderSize }, handler);
  server.keepAliveTimeout = 30_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  options.logger.child({ session: 'gateway' }).info({ url }, 'gateway-listening');
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    url,
    close(graceMs = 5_000) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const NO_BODY = Promise.resolve('');

/** Drops whatever body came with a request whose route takes none. */
function discardBody(req: IncomingMessage): Promise<string> {
  req.resume();
  return NO_BODY;
}

/** Reads the whole body, refusing more than `limit` bytes (413); a limit of 0 discards it. */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (limit > 0 && declared > limit) {
      req.resume();
      return reject(new BadRequest(413, `body of ${declared} bytes is over the limit of ${limit}`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (limit === 0 || refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        chunks.length = 0;
        return reject(new BadRequest(413, `body is over the limit of ${limit} bytes`));
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', () => reject(new BadRequest(500, 'body could not be read')));
  });
}

/** The request message: the body (legacy JSON), then query parameters, then path variables. */
function buildRequest(route: Route, variables: Map<string, string>, query: string, body: string): Record<string, unknown> {
  const input = route.method.input;
  let request: Record<string, unknown>;
  try {
    if (route.body === '*') {
      request = decodeLegacyJson(input.typeName, requireBody(body));
    } else {
      request = emptyLegacyMessage(input.typeName);
      if (route.body !== '') {
        const field = fieldByName(input, route.body);
        if (field.fieldKind !== 'message') throw new Error(`body field ${route.body} of ${input.typeName} is not a message`);
        request[field.localName] = decodeLegacyJson(field.message.typeName, requireBody(body));
      }
    }
  } catch (error) {
    if (error instanceof LegacyJsonError) throw new BadRequest(400, error.message);
    throw error;
  }
  if (route.body !== '*' && query !== '') {
    for (const [name, value] of new URLSearchParams(query)) {
      const field = input.fields.find((f) => f.name === name || f.jsonName === name);
      if (field && !isPathBound(route, field.name)) setFromText(request, field, value, true);
    }
  }
  for (const [fieldPath, value] of variables) setPath(request, input, fieldPath.split('.'), value);
  return request;
}

/** Go's decoder answers an empty body with an error (EOF), which the 2015 handlers made a 400. */
function requireBody(body: string): string {
  if (body.trim() === '') throw new LegacyJsonError('empty body');
  return body;
}

function isPathBound(route: Route, fieldName: string): boolean {
  return route.segments.some((s) => 'variable' in s && s.variable[0] === fieldName);
}

function fieldByName(message: DescMessage, name: string): DescField {
  const field = message.fields.find((f) => f.name === name);
  if (!field) throw new Error(`${message.typeName} has no field ${name}`);
  return field;
}

function setPath(target: Record<string, unknown>, message: DescMessage, path: string[], text: string): void {
  const field = fieldByName(message, path[0]!);
  if (path.length === 1) return setFromText(target, field, text, false);
  if (field.fieldKind !== 'message') throw new Error(`${message.typeName}.${field.name} is not a message`);
  const child = (target[field.localName] as Record<string, unknown> | undefined) ?? emptyLegacyMessage<Record<string, unknown>>(field.message.typeName);
  target[field.localName] = child;
  setPath(child, field.message, path.slice(1), text);
}

/** Sets a scalar field from a path segment or query value, converted by the field's type. */
function setFromText(target: Record<string, unknown>, field: DescField, text: string, repeatable: boolean): void {
  if (field.fieldKind === 'list' && repeatable && field.listKind === 'scalar') {
    (target[field.localName] as unknown[]).push(scalarFromText(field.scalar, text, field.name));
    return;
  }
  if (field.fieldKind !== 'scalar') throw new BadRequest(400, `${field.name} cannot be set from the URL`);
  target[field.localName] = scalarFromText(field.scalar, text, field.name);
}

function scalarFromText(scalar: ScalarType, text: string, name: string): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return text;
    case ScalarType.BOOL:
      if (text === 'true' || text === '1') return true;
      if (text === 'false' || text === '0') return false;
      throw new BadRequest(400, `${name}: ${text} is not a boolean`);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      const number = Number(text);
      if (text.trim() === '' || !Number.isFinite(number)) throw new BadRequest(400, `${name}: ${text} is not a number`);
      return number;
    }
    case ScalarType.BYTES:
      return Buffer.from(text, 'base64');
    default: {
      if (!/^-?\d+$/.test(text)) throw new BadRequest(400, `${name}: ${text} is not an integer`);
      const is64 = [ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes(scalar);
      const value = BigInt(text);
      const unsigned = [ScalarType.UINT32, ScalarType.FIXED32, ScalarType.UINT64, ScalarType.FIXED64].includes(scalar);
      const bits = is64 ? 64n : 32n;
      const [min, max] = unsigned ? [0n, 2n ** bits - 1n] : [-(2n ** (bits - 1n)), 2n ** (bits - 1n) - 1n];
      if (value < min || value > max) throw new BadRequest(400, `${name}: ${text} is out of range`);
      return is64 ? value.toString() : Number(value);
    }
  }
}

function writeSuccess(req: IncomingMessage, res: ServerResponse, route: Route, response: object): void {
  const status = route.legacy.successStatus;
  if (route.legacy.emptyBody) return writeEmpty(res, status);
  const output = route.method.output.typeName;
  const json = route.responseBody ? encodeLegacyJsonField(output, route.responseBody, response) : encodeLegacyJson(output, response);
  writeJson(req, res, status, route.legacy.trailingNewline ? `${json}\n` : json);
}

function writeJson(req: IncomingMessage, res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function writeEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'Content-Length': 0 });
  res.end();
}

function writePlain(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
