// The embedded Diego as a BBS-compatible HTTP/1.1 server: POST routes with protobuf bodies,
// always answered 200 with the route's response message (errors in-band), 404 for unknown
// paths, and event streams written the way the BBS writes them. Optional TLS, and mTLS when a
// CA is given (clients must present a certificate it signed, as a real BBS requires).
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { EventsByCellId } from '../../gen/diego/bbs/v1/events.js';
import type { Logger } from '../../lib/log.js';
import { createBbs, type Bbs, type DiegoPorts } from './bbs.js';
import { systemClock, type Clock } from './clock.js';
import { invalidRequest, unknownError } from './errors.js';
import { createEventHub, DEFAULT_SUBSCRIBER_BUFFER_SIZE } from './events/hub.js';
import { streamEvents } from './events/sse.js';
import { createRoutes, type EventStreamRoute, type Route } from './routes.js';
import { openDiegoDatabase } from './store/schema.js';
import { errorOnlyResponse } from './wire.js';

export const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;
const DEFAULT_CLOSE_GRACE_MS = 2_000;

export interface EmbeddedDiegoTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  ca?: string | Buffer;
}

export interface EmbeddedDiegoOptions {
  /** Where the SQLite database lives; state survives a restart with the same directory. */
  dataDir: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  logger: Logger;
  clock?: Clock;
  tls?: EmbeddedDiegoTls;
  /** Auctioneer, cells and completion callbacks, when the caller has them. */
  ports?: DiegoPorts;
  /** Events a stream may have waiting before it is cut off as a slow consumer (BBS: 1,024). */
  eventBufferSize?: number;
  /** Larger request bodies are refused with InvalidRequest. */
  maxRequestBytes?: number;
  /** Modification-tag epochs and instance guids (random UUIDs by default). */
  newGuid?: () => string;
}

export interface EmbeddedDiego {
  /** Base URL, e.g. http://127.0.0.1:8889; clients append the route paths. */
  url: string;
  port: number;
  /** The store and event API that cells, the auctioneer and convergence use. */
  bbs: Bbs;
  /** Ends event streams, stops serving (requests in flight get graceMs), closes the database. */
  close(graceMs?: number): Promise<void>;
}

export async function startEmbeddedDiego(options: EmbeddedDiegoOptions): Promise<EmbeddedDiego> {
  const logger = options.logger.child({ component: 'embedded-diego' });
  const clock = options.clock ?? systemClock();
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const bufferSize = options.eventBufferSize ?? DEFAULT_SUBSCRIBER_BUFFER_SIZE;

  const db = openDiegoDatabase(options.dataDir);
  const lrpEvents = createEventHub({ name: 'lrp-instances', logger, bufferSize });
  const taskEvents = createEventHub({ name: 'tasks', logger, bufferSize });
  const bbs = createBbs({ db, clock, logger, lrpEvents, taskEvents, ports: options.ports, newGuid: options.newGuid });
  const routes = createRoutes(bbs);
  /** Connections given over to event streams: the HTTP layer must leave them alone. */
  const streamSockets = new Set<Socket>();

  const accessLog = (path: string, requestId: string, status: number, startedAt: number) =>
    logger.info(
      { path, request_id: requestId, status, duration_ms: Math.round((performance.now() - startedAt) * 1000) / 1000 },
      'bbs-request',
    );

  const openEventStream = (
    req: IncomingMessage,
    res: ServerResponse,
    route: EventStreamRoute,
    body: Buffer,
    path: string,
    requestId: string,
    startedAt: number,
  ) => {
    let cellId = '';
    if (route.filtersByCell) {
      try {
        cellId = EventsByCellId.decode(body).cellId;
      } catch {
        // The BBS answers an unreadable subscription request with a bare 500.
        res.writeHead(500, { 'Content-Length': '0' }).end();
        accessLog(path, requestId, 500, startedAt);
        return;
      }
    }
    const socket = req.socket;
    streamSockets.add(socket);
    const subscription = (route.stream === 'tasks' ? taskEvents : lrpEvents).subscribe({ cellId });
    const streamLogger = logger.child({ request_id: requestId, stream: route.stream });
    streamLogger.info({ cell_id: cellId }, 'event-stream-opened');
    streamEvents({
      socket,
      subscription,
      logger: streamLogger,
      now: () => new Date(),
      onClosed(reason) {
        streamSockets.delete(socket);
        streamLogger.info({ reason }, 'event-stream-closed');
        accessLog(path, requestId, 200, startedAt);
      },
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const startedAt = performance.now();
    const requestId = headerValue(req, 'x-vcap-request-id');
    const path = (req.url ?? '').split('?', 1)[0]!;
    // Bytes sent after an event-stream request are read and dropped, never served.
    if (streamSockets.has(req.socket)) return;

    const route: Route | undefined = routes.get(path);
    if (route === undefined || req.method !== 'POST') {
      req.resume();
      res.writeHead(404, { 'Content-Length': '0' }).end();
      accessLog(path, requestId, 404, startedAt);
      return;
    }

    const body = await readBody(req, maxRequestBytes);
    if (body === 'too-large') {
      const response = errorOnlyResponse(invalidRequest('the request received is invalid').toBbsError());
      writeProtobuf(res, response, true);
      accessLog(path, requestId, 200, startedAt);
      return;
    }
    if (body === 'aborted') return;

    if (route.kind === 'events') {
      openEventStream(req, res, route, body, path, requestId, startedAt);
      return;
    }

    let response: Uint8Array;
    try {
      response = route.handle(body, { requestId, logger: logger.child({ request_id: requestId, path }) });
    } catch (err) {
      logger.error({ err, path, request_id: requestId }, 'bbs-request-failed');
      response = errorOnlyResponse(unknownError().toBbsError());
    }
    writeProtobuf(res, response, false);
    accessLog(path, requestId, 200, startedAt);
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err }, 'bbs-request-crashed');
      if (!res.headersSent) res.writeHead(500, { 'Content-Length': '0' }).end();
      else res.destroy();
    });
  };

  const server: Server = options.tls
    ? createHttpsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ca: options.tls.ca,
          requestCert: options.tls.ca !== undefined,
          rejectUnauthorized: options.tls.ca !== undefined,
          minVersion: 'TLSv1.2',
        },
        listener,
      )
    : createHttpServer(listener);

  server.on('clientError', (err: Error, socket: Socket) => {
    // An event stream's connection belongs to the stream; whatever the peer sends is ignored.
    if (streamSockets.has(socket)) return;
    logger.debug({ err }, 'bbs-client-error');
    if (socket.writable && !socket.writableEnded) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    db.close();
    throw error;
  }

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${address.port}`;
  logger.info({ url, data_dir: options.dataDir }, 'embedded-diego-started');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    bbs,
    close(graceMs = DEFAULT_CLOSE_GRACE_MS) {
      closing ??= (async () => {
        lrpEvents.close();
        taskEvents.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await closed;
        clearTimeout(timer);
        db.close();
        logger.info('embedded-diego-stopped');
      })();
      return closing;
    },
  };
}

function headerValue(req: IncomingMessage, name: string): string {
  const value = req.headers[name];
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

function writeProtobuf(res: ServerResponse, body: Uint8Array, closeConnection: boolean): void {
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-protobuf',
    'Content-Length': String(body.length),
  };
  if (closeConnection) headers['Connection'] = 'close';
  res.writeHead(200, headers).end(body);
}

/** The whole body, or 'too-large' past limit bytes, or 'aborted' when the peer went away. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: Buffer | 'too-large' | 'aborted') => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        settle('too-large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => settle(Buffer.concat(chunks, size)));
    req.on('error', () => settle('aborted'));
    req.on('close', () => settle(req.complete ? Buffer.concat(chunks, size) : 'aborted'));
  });
}
