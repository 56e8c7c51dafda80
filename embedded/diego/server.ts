// The embedded Diego as a BBS-compatible HTTP/1.1 server: POST routes with protobuf bodies,
// always answered 200 with the route's response message (errors in-band), 404 for unknown
// paths, and event streams written the way the BBS writes them. Optional TLS, and mTLS when a
// CA is given (clients must present a certificate it signed, as a real BBS requires).
//
// Around the store run the parts that make it behave like Diego over time: the cell routes,
// the in-process auctioneer placing work on registered cells through their rep port, task
// completion callbacks, LRP and task convergence on timers, and the log-cache read API on the
// same port (GET /api/v1/read/<source_id>).
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { EventsByCellId } from '../../gen/diego/bbs/v1/events.js';
import type { Logger } from '../../lib/log.js';
import type { ClientTls } from '../../lib/tls-fetch.js';
import { randomUUID } from 'node:crypto';
import type { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import { createActualLrpLifecycle } from './actual-lrp-lifecycle.js';
import { createAuctioneer } from './auctioneer.js';
import { createBbs, type Bbs, type DiegoPorts } from './bbs.js';
import { createCellRoutes } from './cell-routes.js';
import { systemClock, type Clock } from './clock.js';
import { createConvergence, type LrpConvergenceReport, type TaskConvergenceReport } from './convergence.js';
import { invalidRequest, unknownError } from './errors.js';
import { createEvacuation } from './evacuation.js';
import { createEventHub, DEFAULT_SUBSCRIBER_BUFFER_SIZE } from './events/hub.js';
import { streamEvents } from './events/sse.js';
import { createLogCache, type LogCache } from './log-cache.js';
import type { RepClient } from './rep.js';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './restart-policy.js';
import { createRoutes, type EventStreamRoute, type Route } from './routes.js';
import { createConvergenceQueries } from './store/convergence.js';
import { schedulingInfoOf } from './store/desired-lrps.js';
import { openDiegoDatabase } from './store/schema.js';
import { createTaskCallbacks } from './task-callbacks.js';
import { createTaskLifecycle } from './task-lifecycle.js';
import { errorOnlyResponse } from './wire.js';

export const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_EVENT_SUBSCRIBERS = 1_000;
const DEFAULT_CLOSE_GRACE_MS = 2_000;

export interface EmbeddedDiegoTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  ca?: string | Buffer;
}

/** Every interval, TTL, timeout and backoff of the embedded Diego, in milliseconds. */
export interface DiegoTiming {
  /** How often LRP convergence runs (BBS: 30 s). */
  convergenceIntervalMs: number;
  /** How often tasks are kicked, and how old a task must be to be kicked (BBS: 30 s). */
  taskKickIntervalMs: number;
  /** Completed tasks nobody resolved are deleted after this (BBS: 2 min). */
  expireCompletedTaskMs: number;
  /** Pending tasks fail after this (BBS: 30 min). */
  expirePendingTaskMs: number;
  /** UNCLAIMED instances older than this are placed again (BBS: 30 s). */
  staleUnclaimedMs: number;
  /** An instance RUNNING this long before it crashes counts crashes from 1 again (BBS: 5 min). */
  crashResetMs: number;
  /** A registered cell that does not heartbeat for this long is gone. */
  cellTtlMs: number;
  /** How often cells are checked for an expired presence (a gone cell triggers convergence). */
  cellCheckIntervalMs: number;
  /** One completion callback attempt's deadline. */
  callbackTimeoutMs: number;
  /** How long a cell may take to answer perform. */
  performTimeoutMs: number;
  /** Placed work counts against its cell this long before the cell claims or starts it. */
  reservationTtlMs: number;
}

export const DEFAULT_DIEGO_TIMING: DiegoTiming = {
  convergenceIntervalMs: 30_000,
  taskKickIntervalMs: 30_000,
  expireCompletedTaskMs: 120_000,
  expirePendingTaskMs: 30 * 60_000,
  staleUnclaimedMs: 30_000,
  crashResetMs: 5 * 60_000,
  cellTtlMs: 15_000,
  cellCheckIntervalMs: 1_000,
  callbackTimeoutMs: 30_000,
  performTimeoutMs: 10_000,
  reservationTtlMs: 30_000,
};

export interface LogCacheSettings {
  /** Newest envelopes kept in memory per source id (default 10,000). */
  maxEnvelopesPerSource: number;
  /** Source ids kept at once (default 1,000). */
  maxSources: number;
  /** Keep log lines on disk across restarts (default true). */
  persistLogs: boolean;
  /** Log lines kept on disk per source id (default 10,000). */
  maxPersistedLogsPerSource: number;
  /** Longest wait before appended log lines are written (default 200 ms). */
  flushIntervalMs: number;
}

export interface CellRegistrationOptions {
  /** The cell's presence: id, capacity, rootfs providers, placement tags ... */
  presence: CellPresence;
  /** How work reaches the cell. */
  rep: RepClient;
  /** Defaults to timing.cellTtlMs. */
  ttlMs?: number;
  /** How often the registration heartbeats by itself (default: a third of the TTL); 0 = never. */
  heartbeatIntervalMs?: number;
}

/** A registered cell's handle on its presence. */
export interface CellRegistration {
  readonly cellId: string;
  /** Refreshes the presence (optionally with new capacity or tags). */
  heartbeat(presence?: CellPresence): void;
  /** Stops the automatic heartbeat; the presence expires after its TTL (a cell that hung). */
  stopHeartbeat(): void;
  /** Evacuating cells keep their presence but get no new work (graceful shutdown). */
  setEvacuating(evacuating: boolean): void;
  /** Gone at once, as a rep releasing its presence; its work is taken back. */
  deregister(): void;
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
  /** Diego's durations, each overridable (tests use milliseconds). */
  timing?: Partial<DiegoTiming>;
  restartPolicy?: Partial<RestartPolicy>;
  /** Rejections a task survives before it fails (BBS: 3). */
  maxTaskRetries?: number;
  /** Non-loopback URL prefixes completion callbacks may go to; loopback is always allowed. */
  callbackUrlPrefixes?: string[];
  /** Completion callbacks in flight at once (default 20). */
  callbackWorkers?: number;
  /**
   * TLS this Diego's own clients use: its completion callbacks to https URLs and its in-process
   * cells reporting to its cell routes (the CA that signed the servers, and a client certificate).
   */
  clientTls?: ClientTls;
  /** The Authorization header sent with a completion callback to this URL, if any (an in-process bridge's basic auth). */
  callbackAuthorizationFor?: (url: string) => string | undefined;
  /** Event streams open at once; one more is answered 503 (default 1,000). */
  maxEventSubscribers?: number;
  logCache?: Partial<LogCacheSettings>;
  /**
   * Run convergence, task kicks and cell checks on their timers (default true). Tests that drive
   * time with a manual clock turn this off and call converge() themselves.
   */
  background?: boolean;
}

export interface EmbeddedDiego {
  /** Base URL, e.g. http://127.0.0.1:8889; clients append the route paths. */
  url: string;
  port: number;
  /** TLS for this Diego's in-process clients (its cells), as configured. */
  readonly clientTls: ClientTls | undefined;
  /** The store and event API that cells, the auctioneer and convergence use. */
  bbs: Bbs;
  readonly timing: DiegoTiming;
  /** Registers an in-process cell with its rep port and starts its heartbeat. */
  registerCell(options: CellRegistrationOptions): CellRegistration;
  /** One LRP convergence pass, now. */
  convergeLrps(): LrpConvergenceReport;
  /** One task convergence pass (a task kick), now. */
  convergeTasks(): TaskConvergenceReport;
  /** Both passes. */
  converge(): { lrps: LrpConvergenceReport; tasks: TaskConvergenceReport };
  /** Resolves once queued auctions and completion callbacks are done. */
  settled(): Promise<void>;
  /** The log-cache store behind GET /api/v1/read. */
  logCache: LogCache;
  appendEnvelope: LogCache['appendEnvelope'];
  appendLog: LogCache['appendLog'];
  appendContainerMetrics: LogCache['appendContainerMetrics'];
  /**
   * Stops the timers, the auctioneer and callbacks, then ends event streams, stops serving
   * (requests in flight get graceMs) and closes the database.
   */
  close(graceMs?: number): Promise<void>;
}

export async function startEmbeddedDiego(options: EmbeddedDiegoOptions): Promise<EmbeddedDiego> {
  const logger = options.logger.child({ component: 'embedded-diego' });
  const clock = options.clock ?? systemClock();
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const bufferSize = options.eventBufferSize ?? DEFAULT_SUBSCRIBER_BUFFER_SIZE;

  const timing: DiegoTiming = { ...DEFAULT_DIEGO_TIMING, ...options.timing };
  const restartPolicy: RestartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy };
  const newGuid = options.newGuid ?? randomUUID;

  const db = openDiegoDatabase(options.dataDir);
  const lrpEvents = createEventHub({ name: 'lrp-instances', logger, bufferSize });
  const taskEvents = createEventHub({ name: 'tasks', logger, bufferSize });
  const bbs = createBbs({ db, clock, logger, lrpEvents, taskEvents, newGuid });
  const cells = bbs.cells;
  const lifecycle = createActualLrpLifecycle({ bbs, restartPolicy, crashResetMs: timing.crashResetMs, logger });
  const evacuation = createEvacuation({ bbs, lifecycle, logger });
  const taskLifecycle = createTaskLifecycle({ bbs, maxTaskRetries: options.maxTaskRetries ?? 3, logger });
  const auctioneer = createAuctioneer({
    bbs,
    cells,
    lifecycle,
    tasks: taskLifecycle,
    clock,
    logger,
    newGuid,
    reservationTtlMs: timing.reservationTtlMs,
    performTimeoutMs: timing.performTimeoutMs,
  });
  const callbacks = createTaskCallbacks({
    bbs,
    logger,
    timeoutMs: timing.callbackTimeoutMs,
    maxWorkers: options.callbackWorkers ?? 20,
    allowedUrlPrefixes: options.callbackUrlPrefixes ?? [],
    tls: options.clientTls,
    authorizationFor: options.callbackAuthorizationFor,
  });
  const maxEventSubscribers = options.maxEventSubscribers ?? DEFAULT_MAX_EVENT_SUBSCRIBERS;
  const convergence = createConvergence({
    bbs,
    db,
    cells,
    tasks: taskLifecycle,
    clock,
    logger,
    restartPolicy,
    timing: {
      staleUnclaimedMs: timing.staleUnclaimedMs,
      taskKickMs: timing.taskKickIntervalMs,
      expirePendingTaskMs: timing.expirePendingTaskMs,
      expireCompletedTaskMs: timing.expireCompletedTaskMs,
    },
  });
  const waiting = createConvergenceQueries(db);
  const logCacheSettings: LogCacheSettings = {
    maxEnvelopesPerSource: 10_000,
    maxSources: 1_000,
    persistLogs: true,
    maxPersistedLogsPerSource: 10_000,
    flushIntervalMs: 200,
    ...options.logCache,
  };
  const logCache = createLogCache({
    clock,
    logger,
    ...logCacheSettings,
    dataDir: logCacheSettings.persistLogs ? options.dataDir : undefined,
  });

  /** Calls a cell's rep without waiting; a failure is the cell's to converge on later. */
  const toCell = (cellId: string, what: string, call: (rep: RepClient) => Promise<void>) => {
    const rep = cells.repFor(cellId);
    if (rep === undefined) {
      logger.info({ cell_id: cellId, what }, 'cell-has-no-rep');
      return;
    }
    call(rep).catch((err: unknown) => logger.error({ err, cell_id: cellId, what }, 'rep-call-failed'));
  };
  const builtInPorts: DiegoPorts = {
    requestLrpAuctions: (schedulingInfo, indices) => auctioneer.requestLrpAuctions(schedulingInfo, indices),
    requestTaskAuction: (task) => auctioneer.requestTaskAuction(task),
    stopLrpInstance: (key, instanceKey) =>
      toCell(instanceKey.cellId, 'stop-lrp-instance', (rep) => rep.stopLrpInstance(key, instanceKey)),
    cancelTaskOnCell: (cellId, taskGuid) => toCell(cellId, 'cancel-task', (rep) => rep.cancelTask(taskGuid)),
    taskCompleted: (task) => callbacks.taskCompleted(task),
  };
  // Ports the caller passes take the place of the built-in ones (tests observe them that way).
  bbs.setPorts({ ...builtInPorts, ...options.ports });

  const routes = new Map<string, Route>([
    ...createRoutes(bbs),
    ...createCellRoutes({ lifecycle, evacuation, tasks: taskLifecycle }),
  ]);
  let closingDown = false;

  const guarded = <T>(what: string, pass: () => T): T | undefined => {
    if (closingDown) return undefined;
    try {
      return pass();
    } catch (err) {
      logger.error({ err, what }, 'convergence-failed');
      return undefined;
    }
  };

  /** Work that waited for a cell: every UNCLAIMED instance and Pending task, placed now. */
  const placeWaitingWork = () =>
    guarded('place-waiting-work', () => {
      const farFuture = clock.nowNs() + 1n;
      for (const { processGuid, index } of waiting.staleUnclaimedLrps(farFuture)) {
        bbs.transaction((tx) => {
          const desired = tx.desiredLrp(processGuid);
          if (desired !== undefined) auctioneer.requestLrpAuctions(schedulingInfoOf(desired), [index]);
        });
      }
      for (const taskGuid of waiting.pendingTasksToKick(farFuture, 0n)) {
        const task = bbs.transaction((tx) => tx.task(taskGuid));
        if (task !== undefined) auctioneer.requestTaskAuction(task);
      }
    });

  const timers: NodeJS.Timeout[] = [];
  const every = (intervalMs: number, run: () => void) => {
    const timer = setInterval(run, intervalMs);
    timer.unref();
    timers.push(timer);
  };
  if (options.background !== false) {
    every(timing.convergenceIntervalMs, () => guarded('lrps', convergence.convergeLrps));
    every(timing.taskKickIntervalMs, () => guarded('tasks', convergence.convergeTasks));
    // A cell that disappeared is acted on at once, not at the next convergence (as the BBS's
    // cell-presence watch triggers convergence).
    every(timing.cellCheckIntervalMs, () => {
      if (!cells.hasStale()) return;
      guarded('lrps', convergence.convergeLrps);
      guarded('tasks', convergence.convergeTasks);
    });
  }

  const registrations = new Set<{ stop(): void }>();
  function registerCell(registration: CellRegistrationOptions): CellRegistration {
    const ttlMs = registration.ttlMs ?? timing.cellTtlMs;
    const intervalMs = registration.heartbeatIntervalMs ?? Math.max(1, Math.floor(ttlMs / 3));
    let presence = registration.presence;
    const cellId = presence.cellId;
    const isNew = cells.find(cellId) === undefined;
    cells.heartbeat(presence, ttlMs, registration.rep);
    let timer: NodeJS.Timeout | undefined;
    const handle = {
      stop() {
        clearInterval(timer);
        timer = undefined;
      },
    };
    if (intervalMs > 0) {
      timer = setInterval(() => cells.heartbeat(presence, ttlMs), intervalMs);
      timer.unref();
    }
    registrations.add(handle);
    logger.info({ cell_id: cellId, ttl_ms: ttlMs }, 'cell-registered');
    // A new cell is room for the work that found none.
    if (isNew) placeWaitingWork();
    return {
      cellId,
      heartbeat(next) {
        if (next !== undefined) presence = next;
        cells.heartbeat(presence, ttlMs);
      },
      stopHeartbeat: () => handle.stop(),
      setEvacuating(evacuating) {
        cells.setEvacuating(cellId, evacuating);
        logger.info({ cell_id: cellId, evacuating }, 'cell-evacuating');
      },
      deregister() {
        handle.stop();
        registrations.delete(handle);
        cells.remove(cellId);
        logger.info({ cell_id: cellId }, 'cell-deregistered');
        guarded('lrps', convergence.convergeLrps);
        guarded('tasks', convergence.convergeTasks);
      },
    };
  }
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
    if (streamSockets.size >= maxEventSubscribers) {
      logger.info({ request_id: requestId, subscribers: streamSockets.size }, 'event-stream-refused-too-many-subscribers');
      res.writeHead(503, { 'Content-Length': '0' }).end();
      accessLog(path, requestId, 503, startedAt);
      return;
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

    if (path.startsWith('/api/v1/') && logCache.handle(req, res)) {
      accessLog(path, requestId, res.statusCode, startedAt);
      return;
    }

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

  /** Timers first, then the parts that call out (auctions, callbacks), then the log file. */
  async function stopMachinery(): Promise<void> {
    closingDown = true;
    for (const timer of timers.splice(0)) clearInterval(timer);
    for (const registration of registrations) registration.stop();
    registrations.clear();
    await auctioneer.close();
    await callbacks.close();
    logCache.close();
  }

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
    await stopMachinery();
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
    clientTls: options.clientTls,
    bbs,
    timing,
    registerCell,
    convergeLrps: convergence.convergeLrps,
    convergeTasks: convergence.convergeTasks,
    converge: () => ({ lrps: convergence.convergeLrps(), tasks: convergence.convergeTasks() }),
    async settled() {
      // Auctions lead to placements, and callbacks to nothing new; two rounds cover both orders.
      for (let round = 0; round < 2; round++) {
        await auctioneer.settled();
        await callbacks.settled();
      }
    },
    logCache,
    appendEnvelope: logCache.appendEnvelope,
    appendLog: logCache.appendLog,
    appendContainerMetrics: logCache.appendContainerMetrics,
    close(graceMs = DEFAULT_CLOSE_GRACE_MS) {
      closing ??= (async () => {
        await stopMachinery();
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
