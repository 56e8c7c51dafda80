// The development router: gorouter and the route-emitter in one object for one machine. The
// table comes from the BBS (desired LRPs' `cf-router` routes joined with the running, routable
// instances), and HTTP/1.1 requests are proxied to those instances by Host header.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../../lib/log.js';
import { createProxy } from './proxy.js';
import { startRouteSync, type RouterBbs } from './sync.js';
import { createRouteTable, type RouteTableSnapshot } from './table.js';

export interface RouterOptions {
  bbs: RouterBbs;
  logger: Logger;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** `<app>.<defaultDomain>` reaches an app routed under another domain. */
  defaultDomain?: string;
  /** Full re-list of the BBS this often. */
  resyncIntervalMs?: number;
  /** Attempts of one re-list, and the wait between them. */
  relistAttempts?: number;
  relistRetryMs?: number;
  /** Deadline of each BBS list call (the client's own default when unset). */
  listTimeoutMs?: number;
  /** Events held while a re-list is read. */
  maxHeldEvents?: number;
  /** Wait before a new event stream once one gave up reconnecting. */
  watchRestartMs?: number;
  /** Deadline of the TCP connection to an instance. */
  connectTimeoutMs?: number;
  /** Deadline of an instance's response head. */
  responseTimeoutMs?: number;
  /** Connections (client or instance side) quiet for this long are closed. */
  idleTimeoutMs?: number;
  /** Instances tried per request when dialling fails. */
  attemptsPerRequest?: number;
  /** Request heads larger than this are answered 431. */
  maxHeaderBytes?: number;
  /** Time a client has to send its request head. */
  headersTimeoutMs?: number;
  /** Requests still in flight at close get this long before their connections are cut. */
  closeGraceMs?: number;
}

export interface Router {
  /** e.g. http://127.0.0.1:8081 */
  url: string;
  port: number;
  /** Resolves once the table holds a full list from the BBS. */
  synced: Promise<void>;
  /** Hostname → the endpoints serving it now (known routes with none up map to []). */
  routes(): RouteTableSnapshot;
  /** Re-lists the BBS now. */
  resync(): Promise<void>;
  /** Stops the sync, stops accepting, gives requests in flight closeGraceMs. The BBS client is the caller's. */
  close(): Promise<void>;
}

type RouterSettings = Required<Omit<RouterOptions, 'bbs' | 'logger' | 'listTimeoutMs'>> & Pick<RouterOptions, 'listTimeoutMs'>;

export const ROUTER_DEFAULTS: Omit<RouterSettings, 'listTimeoutMs'> = {
  host: '127.0.0.1',
  port: 0,
  defaultDomain: 'localhost',
  resyncIntervalMs: 30_000,
  relistAttempts: 3,
  relistRetryMs: 1_000,
  maxHeldEvents: 10_000,
  watchRestartMs: 5_000,
  connectTimeoutMs: 5_000,
  // gorouter's default endpoint timeout.
  responseTimeoutMs: 900_000,
  idleTimeoutMs: 900_000,
  // The first instance, then the next one once.
  attemptsPerRequest: 2,
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 60_000,
  closeGraceMs: 2_000,
};

export async function startRouter(options: RouterOptions): Promise<Router> {
  const config: RouterSettings = { ...ROUTER_DEFAULTS, listTimeoutMs: options.listTimeoutMs };
  for (const name of Object.keys(ROUTER_DEFAULTS) as Array<keyof RouterSettings>) {
    const value = options[name];
    if (value !== undefined) (config as Record<keyof RouterSettings, unknown>)[name] = value;
  }
  if (!(config.attemptsPerRequest >= 1)) throw new Error('attemptsPerRequest must be at least 1');
  if (!(config.resyncIntervalMs > 0)) throw new Error('resyncIntervalMs must be positive');
  const logger = options.logger.child({ component: 'router' });
  const table = createRouteTable(config.defaultDomain);
  const proxy = createProxy({
    table,
    logger,
    connectTimeoutMs: config.connectTimeoutMs,
    responseTimeoutMs: config.responseTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    attempts: config.attemptsPerRequest,
  });

  const server: Server = createServer(
    {
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.headersTimeoutMs,
      // Bodies are streamed and may take long; a quiet connection is what gets closed.
      requestTimeout: 0,
    },
    (req, res) => proxy.handleRequest(req, res),
  );
  server.timeout = config.idleTimeoutMs;
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => proxy.handleUpgrade(req, socket, head));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug({ err: err.message, code: err.code }, 'route-client-error');
    if (err.code === 'ECONNRESET' || !socket.writable || socket.writableEnded) return void socket.destroy();
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  const sync = startRouteSync({
    bbs: options.bbs,
    table,
    logger,
    resyncIntervalMs: config.resyncIntervalMs,
    relistAttempts: config.relistAttempts,
    relistRetryMs: config.relistRetryMs,
    listTimeoutMs: options.listTimeoutMs,
    maxHeldEvents: config.maxHeldEvents,
    watchRestartMs: config.watchRestartMs,
  });
  logger.info({ url, default_domain: config.defaultDomain, resync_interval_ms: config.resyncIntervalMs }, 'router-started');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    synced: sync.synced,
    routes: () => table.snapshot(),
    resync: () => sync.relist('requested'),
    close() {
      closing ??= (async () => {
        await sync.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        for (const tunnel of proxy.tunnels) tunnel.destroy();
        const timer = setTimeout(() => {
          server.closeAllConnections();
          // Upgrades still being dialled at close joined the tunnels since.
          for (const tunnel of proxy.tunnels) tunnel.destroy();
        }, config.closeGraceMs);
        await closed;
        clearTimeout(timer);
        logger.info('router-stopped');
      })();
      return closing;
    },
  };
}
