// A whole bridge for integration tests, wired as the daemons wire it: the embedded Diego (a
// real BBS server on port 0), the BBS and CC clients, the services, and the gateway in front —
// plus the CC test double. Each test file starts its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import { createCcClient, type CcClient } from '../../clients/cc/client.js';
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { startEmbeddedDiego, type EmbeddedDiego, type EmbeddedDiegoOptions } from '../../embedded/diego/index.js';
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { inProcessDispatcher } from '../../gateway/dispatch.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { createMetricsRegistry, type Registry } from '../../lib/metrics.js';
import type { RecipeConfig } from '../../services/nsync/recipe/index.js';
import { DEFAULT_STAGING_TIMEOUT_MS, type StagingRecipeConfig } from '../../services/stager/recipe/index.js';
import type { TpsConfig } from '../../services/tps/service.js';
import { buildNsyncListener, buildStager, buildTps } from '../../cmd/wiring/services.js';
import { CcDouble, startCcDouble } from './cc-double.js';

export const CC_USERNAME = 'internal_user';
export const CC_PASSWORD = 'internal-password';

export interface TestBridge {
  diego: EmbeddedDiego;
  bbs: BbsClient;
  cc: CcDouble;
  ccClient: CcClient;
  gateway: RunningGateway;
  metrics: Registry;
  stagingRecipe: StagingRecipeConfig;
  nsyncRecipe: RecipeConfig;
  dataDir: string;
  log: Logger;
  /** The service implementations the gateway dispatches to, for serving them over gRPC too. */
  services: { stager: object; nsync: object; tps: object };
  /** Stops the embedded Diego and starts it again on the same port and data (a BBS restart). */
  restartDiego(): Promise<void>;
  /** fetch against the gateway. */
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; text: string; headers: Headers }>;
  close(): Promise<void>;
}

export interface TestBridgeOptions {
  /** Options of the embedded Diego (timing, restart policy...). */
  diego?: Partial<EmbeddedDiegoOptions>;
  tps?: Partial<TpsConfig>;
  logCacheUrl?: string;
  logger?: Logger;
  /** Deadline of each BBS call (10 s by default). */
  bbsTimeoutMs?: number;
  /** Deadline of each CC call (1 s by default). */
  ccTimeoutMs?: number;
  /** The URL the bridge uses for the BBS, given the embedded Diego's (e.g. a fault proxy in front). */
  bbsUrlFor?: (diegoUrl: string) => string | Promise<string>;
  /** The URL the bridge uses for CC, given the CC double's (e.g. a fault proxy in front). */
  ccUrlFor?: (ccUrl: string) => string | Promise<string>;
}

export async function startTestBridge(options: TestBridgeOptions = {}): Promise<TestBridge> {
  const log = options.logger ?? silentLogger();
  const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-test-'));
  const diego = await startEmbeddedDiego({ ...options.diego, dataDir: join(dataDir, 'diego'), logger: log });
  const bbsUrl = options.bbsUrlFor ? await options.bbsUrlFor(diego.url) : diego.url;
  const bbs = createBbsClient({ url: bbsUrl, logger: log, timeoutMs: options.bbsTimeoutMs ?? 10_000, retry: { attempts: 2, delayMs: 10 } });
  const cc = await startCcDouble({ username: CC_USERNAME, password: CC_PASSWORD });
  const ccUrl = options.ccUrlFor ? await options.ccUrlFor(cc.url) : cc.url;
  const ccClient = createCcClient({ baseUrl: ccUrl, username: CC_USERNAME, password: CC_PASSWORD, timeoutMs: options.ccTimeoutMs ?? 1_000 });
  const metrics = createMetricsRegistry({ processMetrics: false });

  // The gateway's URL is needed by the staging recipe (completion callbacks), so the gateway
  // starts first with a late-bound stager.
  const services: Record<string, Record<string, unknown>> = {};
  const lateBound = (name: string) => new Proxy({}, { get: (_t, key) => services[name]?.[key as string] });
  const gateway = await startGateway({
    logger: log,
    services: [
      { definition: StagerServiceDefinition, dispatcher: inProcessDispatcher(StagerServiceDefinition, lateBound('stager'), log) },
      { definition: NsyncServiceDefinition, dispatcher: inProcessDispatcher(NsyncServiceDefinition, lateBound('nsync'), log) },
      { definition: TpsServiceDefinition, dispatcher: inProcessDispatcher(TpsServiceDefinition, lateBound('tps'), log) },
    ],
  });

  const stagingRecipe: StagingRecipeConfig = {
    fileServerURL: 'http://127.0.0.1:8080',
    ccUploaderURL: 'http://127.0.0.1:9090',
    stagingTaskCallbackURL: gateway.url,
    lifecycles: new Map([
      ['buildpack/cflinuxfs4', 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz'],
      ['docker', 'docker_app_lifecycle/docker_app_lifecycle.tgz'],
    ]),
    dockerStagingStack: 'cflinuxfs4',
    dockerRegistryAddress: '',
    insecureDockerRegistries: [],
    skipCertVerify: false,
    privileged: false,
    defaultStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
    maxStagingTimeoutMs: 60 * 60_000,
  };
  let keyNumber = 0;
  const nsyncRecipe: RecipeConfig = {
    lifecycles: { 'buildpack/cflinuxfs4': 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz', docker: 'docker_app_lifecycle/docker_app_lifecycle.tgz' },
    fileServerUrl: 'http://127.0.0.1:8080',
    privilegedContainers: false,
    defaultHealthCheckTimeoutSeconds: 60,
    // Fixed keys keep the tests fast and their output stable.
    generateSshKeyPair: () => ({ privateKeyPem: `-----BEGIN RSA PRIVATE KEY-----\nkey-${++keyNumber}\n-----END RSA PRIVATE KEY-----\n`, authorizedKey: `ssh-rsa AAAA${keyNumber}`, fingerprint: 'aa:bb' }),
  };

  services.stager = buildStager({ bbs, cc: ccClient, recipe: stagingRecipe, logger: log, metrics }) as unknown as Record<string, unknown>;
  services.nsync = buildNsyncListener({ bbs, recipe: nsyncRecipe, logger: log, metrics }) as unknown as Record<string, unknown>;
  services.tps = buildTps({
    bbs,
    logCache: createLogCacheClient({ url: options.logCacheUrl ?? diego.url, timeoutMs: 1_000 }),
    logger: log,
    config: options.tps,
    resubscribePauseMs: 20,
  }) as unknown as Record<string, unknown>;

  const bridge: TestBridge = {
    diego,
    bbs,
    cc,
    ccClient,
    gateway,
    metrics,
    stagingRecipe,
    nsyncRecipe,
    dataDir,
    log,
    services: { stager: services.stager, nsync: services.nsync, tps: services.tps },
    async restartDiego() {
      const port = bridge.diego.port;
      await bridge.diego.close(50);
      bridge.diego = await startEmbeddedDiego({ ...options.diego, dataDir: join(dataDir, 'diego'), port, logger: log });
    },
    async request(method, path, body, headers = {}) {
      const response = await fetch(gateway.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: response.status, text: await response.text(), headers: response.headers };
    },
    async close() {
      await gateway.close(100);
      bbs.close();
      ccClient.close();
      await cc.stop();
      // A test may have restarted Diego: close the one running now.
      await bridge.diego.close(100);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return bridge;
}
