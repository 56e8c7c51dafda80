// The development Cloud Controller: a small development stand-in for Cloud Foundry's Cloud
// Controller, so that one machine can push and run apps through the bridge. It is not Cloud
// Controller and implements only what the bridge, its containers and the command line need:
//
//   * the internal API the bridge calls (staging results, instance reports, bulk desired state)
//     and the staging blobstore its containers and uploader call (internal-api.ts);
//   * the bridge driven as Cloud Controller drives it (controller.ts, bridge-client.ts);
//   * a small JSON API for the command line under /dev/v1 (dev-api.ts).
//
// State is SQLite plus files under the data directory and survives restarts. At start nothing is
// desired again: the nsync bulker reads the bulk endpoints and converges.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../lib/log.js';
import type { ClientTls } from '../../lib/tls-fetch.js';
import { httpsServerOptions, type TlsMaterial } from '../../lib/tls.js';
import { createBlobstore } from './blobstore.js';
import { createBridgeClient, type Bridge } from './bridge-client.js';
import { APP_DEFAULTS, createController, systemClock, type AppDefaults, type Clock } from './controller.js';
import { DEV_API_PREFIX, devRoutes } from './dev-api.js';
import { basicAuthChecker, describeError, errorBody, RouteTable, sendJson, type Route } from './http.js';
import { internalRoutes } from './internal-api.js';
import type { SshLookup } from './ssh.js';
import { DEFAULT_STACK, DEFAULT_STAGING_LIMITS, type ConfiguredBuildpack, type StagingLimits } from './messages.js';
import { createCcStore, openCcDatabase } from './store.js';

export interface DevelopmentCloudControllerOptions {
  /** Where the SQLite database and the blobs live; everything survives a restart with the same directory. */
  dataDir: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  logger: Logger;
  /** Basic auth of the internal API and the /dev/v1 API; both empty: no authentication. */
  username?: string;
  password?: string;
  /** The bridge's gateway (Cloud Controller's routes to the stager, nsync and TPS). */
  bridgeUrl: string;
  /** The file server; buildpacks without a URL are `<fileServerUrl>/v1/static/buildpacks/<name>_buildpack.tgz`. */
  fileServerUrl: string;
  /** Apps are routed as `<name>.<appDomain>`. */
  appDomain?: string;
  /** In detection order. Default: the example buildpacks (nodejs, staticfile). */
  buildpacks?: readonly { name: string; url?: string }[];
  clock?: Clock;
  /**
   * This CC's URL as containers and the bridge reach it, in blobstore URLs and VCAP_APPLICATION.
   * Default `http://127.0.0.1:<port>`: containers reach host services through loopback port
   * mappings with the same port inside and out.
   */
  internalUrl?: string;
  /** Deadline of each call to the bridge. */
  bridgeTimeoutMs?: number;
  staging?: Partial<StagingLimits>;
  appDefaults?: Partial<AppDefaults>;
  stack?: string;
  /** How long a report's X-Ccbridge-Event-Id is remembered to drop duplicates. */
  eventIdRetentionMs?: number;
  /** How long app events are kept (Cloud Controller: 31 days). */
  eventRetentionMs?: number;
  /** Largest blob accepted (app bits, droplet, build cache). */
  maxUploadBytes?: number;
  /** The bridge port, for tests that fake it in-process; default: HTTP to bridgeUrl. */
  bridge?: Bridge;
  /**
   * The BBS, read for SSH access (each instance's SSH port, and the diego-ssh route behind
   * GET /dev/v1/apps/:app/ssh); without it the API reports neither.
   */
  bbs?: SshLookup;
  /** How this CC reaches the bridge's gateway when it has TLS or basic auth on. */
  bridgeAuth?: { tls?: ClientTls; username?: string; password?: string };
  /** Serve HTTPS (the API, the internal API and the blobstore). */
  tls?: TlsMaterial;
  /** Requests served at once; more get 503 (default 200; 0: no limit). */
  maxInFlightRequests?: number;
}

export interface DevelopmentCloudController {
  /** Where the API answers, e.g. http://127.0.0.1:9022. */
  url: string;
  port: number;
  /** Stops serving, lets requests and work in flight finish (bounded), then closes the database. */
  close(): Promise<void>;
}

export const DEFAULT_BUILDPACK_NAMES = ['nodejs', 'staticfile'] as const;

export const CC_DEFAULTS = {
  appDomain: 'localhost',
  bridgeTimeoutMs: 10_000,
  eventIdRetentionMs: 7 * 24 * 60 * 60 * 1000,
  eventRetentionMs: 31 * 24 * 60 * 60 * 1000,
  maxUploadBytes: 2 * 1024 * 1024 * 1024,
} as const;

const DESCRIPTION =
  'A small development stand-in for Cloud Foundry\'s Cloud Controller, so that one machine can push and run apps through ccbridge. ' +
  'It is not Cloud Controller and is not meant for production.';

export function buildpackUrl(fileServerUrl: string, name: string): string {
  return `${fileServerUrl.replace(/\/+$/, '')}/v1/static/buildpacks/${encodeURIComponent(name)}_buildpack.tgz`;
}

export async function startDevelopmentCloudController(options: DevelopmentCloudControllerOptions): Promise<DevelopmentCloudController> {
  const log = options.logger.child({ component: 'development-cloud-controller' });
  const clock = options.clock ?? systemClock;
  const appDomain = options.appDomain ?? CC_DEFAULTS.appDomain;
  const stack = options.stack ?? DEFAULT_STACK;
  const buildpacks: ConfiguredBuildpack[] = (options.buildpacks ?? DEFAULT_BUILDPACK_NAMES.map((name): { name: string; url?: string } => ({ name }))).map((b) => ({
    name: b.name,
    url: b.url ?? buildpackUrl(options.fileServerUrl, b.name),
  }));
  const username = options.username ?? '';
  const password = options.password ?? '';
  const authenticated = username !== '' || password !== '';
  const credentialsMatch = basicAuthChecker(username, password);

  const db = openCcDatabase(options.dataDir);
  let listeningUrl = '';
  let internalUrl = options.internalUrl?.replace(/\/+$/, '') ?? '';
  const store = createCcStore(db);
  let server: Server | undefined;
  try {
    const blobstore = createBlobstore({ root: options.dataDir, signingKey: store.signingKey(), baseUrl: () => internalUrl });
    const bridge = options.bridge ?? createBridgeClient({ url: options.bridgeUrl, timeoutMs: options.bridgeTimeoutMs ?? CC_DEFAULTS.bridgeTimeoutMs, ...options.bridgeAuth });
    const controller = createController({
      store,
      blobstore,
      bridge,
      logger: log,
      clock,
      context: () => ({ ccUrl: internalUrl, appDomain, stack }),
      buildpacks,
      staging: { ...DEFAULT_STAGING_LIMITS, ...options.staging },
      appDefaults: { ...APP_DEFAULTS, ...options.appDefaults },
      eventIdRetentionMs: options.eventIdRetentionMs ?? CC_DEFAULTS.eventIdRetentionMs,
      eventRetentionMs: options.eventRetentionMs ?? CC_DEFAULTS.eventRetentionMs,
      maxUploadBytes: options.maxUploadBytes ?? CC_DEFAULTS.maxUploadBytes,
    });

    const describe = () => ({
      name: 'ccbridge development Cloud Controller',
      development_stand_in: true,
      description: DESCRIPTION,
      api: {
        command_line: `${DEV_API_PREFIX} (apps, bits, start, stop, restart, restage, scale, environment_variables, builds, events, logs)`,
        internal: '/internal/staging/:guid/completed, /internal/apps/:guid/crashed, /internal/v4/apps/:guid/{crashed,rescheduling,readiness_changed}, /internal/bulk/apps',
        blobstore: '/staging/packages/:app_guid, /staging/droplets/:app_guid/{upload,download}, /staging/buildpack_cache/:app_guid/{upload,download}, /v2/jobs/:guid',
      },
      app_domain: appDomain,
      stack,
      buildpacks: buildpacks.map((b) => b.name),
      bridge_url: options.bridgeUrl,
    });

    const routes: Route[] = [
      { method: 'GET', path: '/', access: 'anyone', errors: 'v2', handle: ({ res }) => sendJson(res, 200, describe()) },
      ...internalRoutes(controller),
      ...devRoutes(controller, appDomain, describe, options.bbs),
    ];
    const table = new RouteTable(routes);
    const blobstoreSigned = (pathname: string, query: URLSearchParams) => blobstore.verify(pathname, query);

    const maxInFlight = options.maxInFlightRequests ?? 200;
    let inFlight = 0;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (maxInFlight > 0 && inFlight >= maxInFlight) {
        req.resume();
        res.writeHead(503, { 'Content-Length': 0, Connection: 'close' }).end();
        return;
      }
      inFlight++;
      res.once('close', () => inFlight--);
      const started = performance.now();
      const requestId = (typeof req.headers['x-vcap-request-id'] === 'string' && req.headers['x-vcap-request-id']) || randomUUID();
      const rawUrl = req.url ?? '/';
      const queryAt = rawUrl.indexOf('?');
      const pathname = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
      const query = new URLSearchParams(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1));
      res.setHeader('X-Vcap-Request-Id', requestId);
      res.on('finish', () => {
        // The path only: blobstore queries carry signatures.
        log.info({ method: req.method, path: pathname, status: res.statusCode, duration_ms: Math.round(performance.now() - started), request_id: requestId }, 'request-served');
      });

      const match = table.match(req.method ?? 'GET', pathname);
      const style = pathname.startsWith(DEV_API_PREFIX) ? 'v3' : 'v2';
      const fail = (status: number, title: string, detail: string, code: number, headers: Record<string, string> = {}) => {
        for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
        // A body nobody read stays unread: answer, then close the connection.
        if (!req.complete) {
          res.setHeader('Connection', 'close');
          req.resume();
          setTimeout(() => req.destroy(), 5_000).unref();
        }
        sendJson(res, status, errorBody(style, status, title, detail, code));
      };

      if (!('route' in match)) {
        if (match.methodMismatch) return fail(405, 'CF-MethodNotAllowed', `${req.method} is not allowed on ${pathname}`, 10000);
        return fail(404, 'CF-NotFound', 'Unknown request', 10000);
      }
      const { route, params } = match;
      if (authenticated && route.access !== 'anyone') {
        const signed = route.access === 'basic-or-signature' && blobstoreSigned(pathname, query);
        if (!signed && !credentialsMatch(req.headers.authorization)) {
          return fail(401, 'CF-NotAuthenticated', 'Authentication error', 10002, { 'WWW-Authenticate': 'Basic realm="ccbridge development cloud controller"' });
        }
      } else if (!authenticated && route.access === 'basic-or-signature' && query.has('signature') && !blobstoreSigned(pathname, query)) {
        // Without credentials configured anyone may call, but a wrong signature is still wrong.
        return fail(401, 'CF-NotAuthenticated', 'Authentication error', 10002);
      }

      Promise.resolve()
        .then(() => route.handle({ req, res, params, query, pathname, requestId }))
        .catch((error: unknown) => {
          const described = describeError(error);
          if (described.internal) log.error({ err: error, method: req.method, path: pathname, request_id: requestId }, 'request-failed');
          if (res.headersSent) {
            res.destroy();
            return;
          }
          fail(described.status, described.title, described.detail, described.code);
        });
    };
    server = options.tls ? createHttpsServer(httpsServerOptions(options.tls, false), handler) : createServer(handler);

    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        listening.off('error', reject);
        resolve();
      });
    });
    const port = (listening.address() as AddressInfo).port;
    const host = options.host ?? '127.0.0.1';
    const shownHost = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    const scheme = options.tls ? 'https' : 'http';
    listeningUrl = `${scheme}://${shownHost}:${port}`;
    if (internalUrl === '') internalUrl = `${scheme}://127.0.0.1:${port}`;
    if (!authenticated) log.warn('running-without-authentication');
    log.info({ url: listeningUrl, internal_url: internalUrl, bridge_url: options.bridgeUrl, app_domain: appDomain, buildpacks: buildpacks.map((b) => b.name) }, 'development-cloud-controller-started');

    let closing: Promise<void> | undefined;
    return {
      url: listeningUrl,
      port,
      close() {
        closing ??= (async () => {
          const closed = new Promise<void>((resolve) => listening.close(() => resolve()));
          listening.closeIdleConnections();
          // Requests in flight and desires after staging end within the bridge deadline.
          const bound = (options.bridgeTimeoutMs ?? CC_DEFAULTS.bridgeTimeoutMs) + 1_000;
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            Promise.all([closed, controller.drain()]),
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, bound);
            }),
          ]);
          clearTimeout(timer);
          listening.closeAllConnections();
          await closed;
          db.close();
          log.info('development-cloud-controller-stopped');
        })();
        return closing;
      },
    };
  } catch (error) {
    server?.close();
    db.close();
    throw error;
  }
}
