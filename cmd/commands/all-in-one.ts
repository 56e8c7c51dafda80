// The all-in-one daemon (`npm start`): every component in one process, data under one directory,
// every address printed at start. Each neighbour is embedded unless its flag points at a real
// one (-bbsAddress, -locketAddress, -ccBaseURL).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { startEmbeddedLocket } from '../../embedded/locket/index.js';
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition, type StagerServiceImplementation } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { buildpackUrl, startDevelopmentCloudController } from '../../embedded/cloud-controller/index.js';
import { startRouter } from '../../embedded/router/index.js';
import { defineCommand, stopAll, type Stoppable } from '../../lib/daemon.js';
import { checkListenAddress, splitHostPort, string } from '../../lib/flags.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { startFileServer, startUploader } from '../../services/fileserver/index.js';
import { openOutbox } from '../../services/tps/watcher/outbox.js';
import { buildBulker, buildNsyncListener, buildStager, buildTps, buildWatcher } from '../wiring/services.js';
import { commonFlags } from './common.js';
import { diegoFlags, localServicePorts, startDiegoFromFlags, type StartedDiego } from './diego.js';
import { bbsClientFrom, bbsFlags, ccClientFrom, ccFlags, lifecycleFlags, listenerSecurityFlags, listenerSecurityFrom, lockFlags } from './flags.js';
import { packBuiltInLifecycles } from './file-server.js';
import { gatewayFlags, restLimitsFrom } from './gateway.js';
import { grpcServerCredentials } from '../../lib/tls.js';
import type { ClientTls } from '../../lib/tls-fetch.js';
import { runWhileLocked } from './locked.js';
import { locketFlags } from './locket.js';
import { bulkerFlags } from './nsync-bulker.js';
import { nsyncRecipeFlags, nsyncRecipeFrom, stagerRecipeFlags, stagingRecipeFrom } from './recipes.js';
import { lateBound, serveServices } from './serve.js';
import { cloudControllerFlags, parseBuildpack } from './cloud-controller.js';
import { routerFlags } from './router.js';
import { tpsFlags } from './tps-listener.js';
import { watcherFlags } from './tps-watcher.js';

const address = (description: string, value: string) => string(description, value, { check: checkListenAddress });

// In the all-in-one the development CC drives this process's own gateway.
const { bridgeURL: _bridgeUrlOfSplitCc, ...developmentCcFlags } = cloudControllerFlags;

export const allInOneFlags = {
  ...commonFlags,
  listenAddress: address('host:port of the REST gateway (every CC route)', '127.0.0.1:8888'),
  grpcListenAddress: address('host:port of the Stager, Nsync and TPS gRPC services', '127.0.0.1:8988'),
  bbsListenAddress: address('host:port of the embedded Diego (BBS API and log-cache read API)', '127.0.0.1:8889'),
  ...locketFlags,
  fileServerListenAddress: address('host:port of the file server (lifecycle bundles)', '127.0.0.1:8080'),
  uploaderListenAddress: address('host:port of the uploader (droplets and build caches to CC)', '127.0.0.1:9090'),
  ...diegoFlags,
  ...developmentCcFlags,
  ...routerFlags,
  ...bbsFlags,
  ...ccFlags,
  ...lockFlags,
  ...lifecycleFlags,
  ...nsyncRecipeFlags,
  ...stagerRecipeFlags,
  ...bulkerFlags,
  ...tpsFlags,
  ...watcherFlags,
  ...gatewayFlags,
  ...listenerSecurityFlags,
};

export default defineCommand({
  summary: 'everything on one machine: the bridge, Diego with its cell, Locket, a development Cloud Controller, the file server, the uploader and a router',
  flags: allInOneFlags,
  async start(flags, log) {
    const started: Stoppable[] = [];
    const lines: string[] = [];
    /** Set when this process runs a TPS watcher: whether it is watching, waiting at most timeoutMs. */
    let watcherWatching: ((timeoutMs: number) => Promise<boolean>) | undefined;
    const metrics = createMetricsRegistry();
    const dir = (name: string) => {
      const path = join(flags.dataDir, name);
      mkdirSync(path, { recursive: true });
      return path;
    };
    // One certificate for the gateway, the gRPC services and the embedded BBS and Locket, and one
    // CA that signed it and signs the clients' certificates; this process's own clients of those
    // listeners (cell, callbacks, development CC, lock runners) present the same certificate.
    const security = listenerSecurityFrom(flags);
    if (security.tls && !security.tls.ca) throw new Error('-listenerCert needs -listenerCACert in the all-in-one (the CA that signed it, which also signs the client certificates)');
    const ownClientTls: ClientTls | undefined = security.tls ? { ca: security.tls.ca, cert: security.tls.cert, key: security.tls.key } : undefined;
    const listenerBasicAuth = flags.listenerUsername ? `Basic ${Buffer.from(`${flags.listenerUsername}:${flags.listenerPassword}`).toString('base64')}` : undefined;
    let gatewayUrl = '';
    try {
      // Locket: embedded unless -locketAddress names one.
      let locketAddress = flags.locketAddress;
      if (!locketAddress) {
        const { host, port } = splitHostPort(flags.locketListenAddress);
        const locket = await startEmbeddedLocket({ dataDir: dir('locket'), host, port, logger: log, credentials: grpcServerCredentials(security.tls) });
        started.push({ stop: () => locket.close() });
        locketAddress = locket.address;
      }
      lines.push(`  locket        grpc://${locketAddress}`);

      // Diego: embedded unless -bbsAddress names one.
      let bbsUrl = flags.bbsAddress;
      let embeddedDiego: StartedDiego | undefined;
      if (!bbsUrl) {
        embeddedDiego = await startDiegoFromFlags(flags, flags.bbsListenAddress, log, security.tls, {
          clientTls: ownClientTls,
          // Completion callbacks to this process's gateway carry its basic auth (a real BBS presents its client certificate instead).
          callbackAuthorizationFor: (url) => (listenerBasicAuth !== undefined && gatewayUrl !== '' && url.startsWith(`${gatewayUrl}/`) ? listenerBasicAuth : undefined),
        });
        started.push(embeddedDiego);
        bbsUrl = embeddedDiego.url;
      }
      lines.push(`  diego (bbs)   ${bbsUrl}`);
      const bbs = bbsClientFrom(
        embeddedDiego && security.tls ? { ...flags, bbsCACert: flags.listenerCACert, bbsClientCert: flags.listenerCert, bbsClientKey: flags.listenerKey } : flags,
        bbsUrl,
        log,
      );
      started.push({ stop: async () => bbs.close() });

      // The lifecycle bundle and the example buildpacks, packed fresh from this checkout at
      // every start, are what the file server serves.
      const staticDirectory = dir('lifecycles');
      packBuiltInLifecycles(staticDirectory);
      const fileServerAt = splitHostPort(flags.fileServerListenAddress);
      const fileServer = await startFileServer({ staticDirectory, host: fileServerAt.host, port: fileServerAt.port, logger: log });
      started.push({ stop: () => fileServer.close() });
      lines.push(`  file server   ${fileServer.url}/v1/static/`);
      const uploaderAt = splitHostPort(flags.uploaderListenAddress);
      const uploader = await startUploader({ host: uploaderAt.host, port: uploaderAt.port, logger: log, skipCertVerify: flags.skipCertVerify });
      started.push({ stop: () => uploader.close() });
      lines.push(`  uploader      ${uploader.url}`);

      const router = await startRouter({
        bbs,
        logger: log,
        ...splitHostPort(flags.routerListenAddress),
        defaultDomain: flags.appDomain,
        resyncIntervalMs: flags.routerResyncInterval,
        connectTimeoutMs: flags.routerConnectTimeout,
      });
      started.push({ stop: () => router.close() });
      lines.push(`  router        ${router.url}   (http://<app>.${flags.appDomain}:${router.port}/)`);

      const { host: restHost, port: restPort } = splitHostPort(flags.listenAddress);
      const callbackHost = restHost === '0.0.0.0' ? '127.0.0.1' : restHost;
      const lifecycleFlagValues = { ...flags, fileServerURL: flags.fileServerURL === lifecycleFlags.fileServerURL.default ? fileServer.url : flags.fileServerURL };
      const nsyncRecipe = nsyncRecipeFrom(lifecycleFlagValues);
      const tps = buildTps({
        bbs,
        logCache: createLogCacheClient({ url: flags.logCacheURL || bbsUrl, tls: flags.logCacheURL === '' && embeddedDiego ? ownClientTls : undefined }),
        logger: log,
        config: { maxInFlightRequests: flags.maxInFlightRequests, maxBulkGuids: flags.maxBulkGuids },
      });
      // The Stager needs the CC's address and the development CC needs the gateway's: the
      // gateway starts first and the Stager is plugged in once the CC is up.
      const stager = lateBound<StagerServiceImplementation>('the Stager');
      const served = await serveServices({
        services: [
          { definition: StagerServiceDefinition, implementation: stager.implementation },
          { definition: NsyncServiceDefinition, implementation: buildNsyncListener({ bbs, recipe: nsyncRecipe, logger: log, metrics }) },
          { definition: TpsServiceDefinition, implementation: tps },
        ],
        grpcListenAddress: flags.grpcListenAddress,
        listenAddress: flags.listenAddress,
        logger: log,
        metrics,
        gateway: restLimitsFrom(flags),
        security,
      });
      started.push(served);
      gatewayUrl = served.restUrl;
      lines.push(`  gateway       ${served.restUrl}   (every CC route)`);
      lines.push(`  grpc          ${served.grpcAddress}`);
      lines.push(`  metrics       ${served.restUrl}/metrics`);

      // Cloud Controller: the development CC unless -ccBaseURL names a real one.
      let ccUrl = flags.ccBaseURL;
      if (!ccUrl) {
        const ccAt = splitHostPort(flags.ccListenAddress);
        const cc = await startDevelopmentCloudController({
          dataDir: dir('cloud-controller'),
          host: ccAt.host,
          port: ccAt.port,
          logger: log,
          username: flags.ccUsername,
          password: flags.ccPassword,
          bridgeUrl: served.restUrl,
          bridgeAuth: { tls: ownClientTls, username: flags.listenerUsername, password: flags.listenerPassword },
          fileServerUrl: lifecycleFlagValues.fileServerURL,
          appDomain: flags.appDomain,
          buildpacks: flags.buildpack.map(parseBuildpack).map((b) => ({ name: b.name, url: b.url ?? buildpackUrl(lifecycleFlagValues.fileServerURL, b.name) })),
          // Each instance's SSH port and the diego-ssh route, for `ccbridge ssh`.
          bbs,
        });
        started.push({ stop: () => cc.close() });
        ccUrl = cc.url;
        lines.push(`  cc            ${ccUrl}   (development Cloud Controller; its API for the command line is under /dev/v1)`);
      } else {
        lines.push(`  cc            ${ccUrl}`);
      }
      const ccClient = ccClientFrom(flags, ccUrl, Math.min(flags.communicationTimeout, 5_000));
      const bulkCc = ccClientFrom(flags, ccUrl, flags.communicationTimeout);
      started.push({ stop: async () => ccClient.close() }, { stop: async () => bulkCc.close() });
      const stagingRecipe = stagingRecipeFrom(
        { ...lifecycleFlagValues, ccUploaderURL: flags.ccUploaderURL === stagerRecipeFlags.ccUploaderURL.default ? uploader.url : flags.ccUploaderURL },
        `${security.tls ? 'https' : 'http'}://${callbackHost}:${restPort === 0 ? new URL(served.restUrl).port : restPort}`,
      );
      stager.set(buildStager({ bbs, cc: ccClient, recipe: stagingRecipe, logger: log, metrics }));

      {
        const lockTls = flags.locketCACert
          ? { caFile: flags.locketCACert, certFile: flags.locketClientCert, keyFile: flags.locketClientKey }
          : !flags.locketAddress && security.tls
            ? { caFile: flags.listenerCACert, certFile: flags.listenerCert, keyFile: flags.listenerKey }
            : undefined;
        const bulker = buildBulker({
          bbs,
          cc: bulkCc,
          recipe: nsyncRecipe,
          logger: log,
          metrics,
          config: { pollingIntervalMs: flags.pollingInterval, batchSize: flags.bulkBatchSize, domainTtlSeconds: Math.round(flags.domainTTL / 1000), concurrency: flags.bulkerConcurrency },
        });
        started.push(runWhileLocked({ key: 'nsync_bulker_lock', locketAddress, tls: lockTls, ttlMs: flags.lockTTL, retryIntervalMs: flags.lockRetryInterval, work: bulker, logger: log }));
        const outbox = openOutbox(dir('tps-watcher'));
        started.push({ stop: async () => outbox.close() });
        const watcher = buildWatcher({
          bbs,
          cc: ccClient,
          outbox,
          logger: log,
          metrics,
          config: { mode: flags.ccReportMode as 'legacy' | 'v4', retryBaseMs: flags.reportRetryInterval, retryMaxMs: flags.reportRetryMaxInterval },
        });
        started.push(runWhileLocked({ key: 'tps_watcher_lock', locketAddress, tls: lockTls, ttlMs: flags.lockTTL, retryIntervalMs: flags.lockRetryInterval, work: watcher, logger: log }));
        watcherWatching = (timeoutMs) => watcher.watching(timeoutMs);
        lines.push('  nsync bulker  running behind the Locket lock');
        lines.push('  tps watcher   running behind the Locket lock');
      }

      // The cell starts last, once the host services its containers reach are up (it is stopped
      // first, draining its instances): the file server, the uploader and the development CC's
      // blobstore, each reachable inside a container as 127.0.0.1:<the same port>.
      if (embeddedDiego !== undefined) {
        // A cell starting on the data of a run that ended without draining (killed, or the machine
        // lost) reports that run's instances crashed: the watcher must be watching by then, or CC
        // never hears of them. After a clean stop it is at once (the lock was released); after a
        // kill, once the dead run's lock has expired in Locket. Bounded, in case another watcher
        // elsewhere holds the lock: it then reports them.
        const watcherWaitMs = flags.lockTTL + 2 * flags.lockRetryInterval + 1_000;
        if (watcherWatching !== undefined && !(await watcherWatching(watcherWaitMs))) {
          log.warn({ waited_ms: watcherWaitMs }, 'cell-started-before-this-tps-watcher-was-watching');
        }
        const cell = await embeddedDiego.startCell(localServicePorts([fileServer.url, uploader.url, ccUrl]));
        started.push(cell);
        lines.push(`  cell          ${cell.description}`);
      }

      process.stdout.write(`ccbridge is running (data in ${flags.dataDir})\n${lines.join('\n')}\n`);
      // Shutdown: the gateway and gRPC listeners stop accepting first and the requests in flight
      // finish (they still reach the BBS and CC); then the rest in the reverse order of their
      // start: the cell drains, the watcher flushes its outbox, both locks are released.
      const rest = stopAll(started);
      return {
        async stop(graceMs) {
          const deadline = Date.now() + (graceMs ?? 0);
          await served.stop(graceMs);
          await rest.stop(graceMs === undefined ? undefined : Math.max(0, deadline - Date.now()));
        },
      };
    } catch (error) {
      await stopAll(started).stop();
      throw error;
    }
  },
});
