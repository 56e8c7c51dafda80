// `ccbridge nsync-listener`: CC's desire/stop/kill-index routes to Diego desired LRPs.
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { defineCommand } from '../../lib/daemon.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { buildNsyncListener } from '../wiring/services.js';
import { commonFlags } from './common.js';
import { bbsClientFrom, bbsFlags, grpcListenFlag, lifecycleFlags, listenerSecurityFlags, listenerSecurityFrom, restListenFlag } from './flags.js';
import { gatewayFlags, restLimitsFrom } from './gateway.js';
import { nsyncRecipeFlags, nsyncRecipeFrom } from './recipes.js';
import { serveServices } from './serve.js';

export default defineCommand({
  summary: 'the Nsync listener: CC desired apps to Diego desired LRPs',
  flags: { ...commonFlags, ...bbsFlags, ...lifecycleFlags, ...nsyncRecipeFlags, ...restListenFlag('127.0.0.1:8787'), ...grpcListenFlag('127.0.0.1:8987'), ...listenerSecurityFlags, ...gatewayFlags },
  async start(flags, log) {
    if (!flags.bbsAddress) throw new Error('-bbsAddress is required');
    const security = listenerSecurityFrom(flags);
    const bbs = bbsClientFrom(flags, flags.bbsAddress, log);
    const metrics = createMetricsRegistry();
    const listener = buildNsyncListener({ bbs, recipe: nsyncRecipeFrom(flags), logger: log, metrics });
    const served = await serveServices({ services: [{ definition: NsyncServiceDefinition, implementation: listener }], grpcListenAddress: flags.grpcListenAddress, listenAddress: flags.listenAddress, logger: log, metrics, security, gateway: restLimitsFrom(flags) });
    process.stdout.write(`nsync    rest ${served.restUrl}   grpc ${served.grpcAddress}\n`);
    return {
      async stop(graceMs) {
        await served.stop(graceMs);
        bbs.close();
      },
    };
  },
});
