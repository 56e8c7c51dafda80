// bench/stager server: the all-in-one's request path for staging in one process — the gateway
// with the Stager in-process, the embedded Diego (no cell), and a CC client that is never
// called here. Mode "noop" puts a Stager that answers at once behind the same gateway: the bare
// gateway round trip. Prints {"url": ...}.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBbsClient } from '../../clients/bbs/index.js';
import { createCcClient } from '../../clients/cc/client.js';
import { startEmbeddedDiego } from '../../embedded/diego/index.js';
import { StagerServiceDefinition, type StagerServiceImplementation } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { inProcessDispatcher } from '../../gateway/dispatch.js';
import { startGateway } from '../../gateway/server.js';
import { silentLogger } from '../../lib/log.js';
import { buildStager } from '../../cmd/wiring/services.js';
import { DEFAULT_STAGING_TIMEOUT_MS } from '../../services/stager/recipe/index.js';

const mode = process.argv[2] ?? 'stager';
const log = silentLogger();
let stager: StagerServiceImplementation;
if (mode === 'noop') {
  stager = { stage: async () => ({}), stopStaging: async () => ({}), stagingCompleted: async () => ({}) };
} else {
  const diego = await startEmbeddedDiego({ dataDir: mkdtempSync(join(tmpdir(), 'bench-stager-')), logger: log });
  const bbs = createBbsClient({ url: diego.url, logger: log, maxSockets: 128 });
  stager = buildStager({
    bbs,
    cc: createCcClient({ baseUrl: 'http://127.0.0.1:9' }),
    logger: log,
    recipe: {
      fileServerURL: 'http://127.0.0.1:8080',
      ccUploaderURL: 'http://127.0.0.1:9090',
      stagingTaskCallbackURL: 'http://127.0.0.1:8888',
      lifecycles: new Map([['buildpack/cflinuxfs4', 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz']]),
      dockerStagingStack: 'cflinuxfs4',
      dockerRegistryAddress: '',
      insecureDockerRegistries: [],
      skipCertVerify: false,
      privileged: false,
      defaultStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
      maxStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
    },
  });
}
const gateway = await startGateway({ logger: log, services: [{ definition: StagerServiceDefinition, dispatcher: inProcessDispatcher(StagerServiceDefinition, stager as never, log) }] });
process.on('SIGINT', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ url: gateway.url })}\n`);
