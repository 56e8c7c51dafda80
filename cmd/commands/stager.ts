// `ccbridge stager`: the Stager alone — gRPC on --grpcListenAddress, CC's staging routes on
// -listenAddress.
import { defineCommand } from '../../lib/daemon.js';
import { StagerServiceDefinition, type StagerServiceImplementation } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { splitHostPort } from '../../lib/flags.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { buildStager } from '../wiring/services.js';
import { commonFlags } from './common.js';
import { bbsClientFrom, bbsFlags, ccClientFrom, ccFlags, grpcListenFlag, lifecycleFlags, listenerSecurityFlags, listenerSecurityFrom, restListenFlag } from './flags.js';
import { gatewayFlags, restLimitsFrom } from './gateway.js';
import { stagerRecipeFlags, stagingRecipeFrom } from './recipes.js';
import { lateBound, serveServices } from './serve.js';

export default defineCommand({
  summary: 'the Stager: CC staging requests to Diego tasks, completions back to CC',
  flags: { ...commonFlags, ...bbsFlags, ...ccFlags, ...lifecycleFlags, ...stagerRecipeFlags, ...restListenFlag('127.0.0.1:8888'), ...grpcListenFlag('127.0.0.1:8988'), ...listenerSecurityFlags, ...gatewayFlags },
  async start(flags, log) {
    for (const name of ['bbsAddress', 'ccBaseURL'] as const) if (!flags[name]) throw new Error(`-${name} is required`);
    const security = listenerSecurityFrom(flags);
    const bbs = bbsClientFrom(flags, flags.bbsAddress, log);
    const cc = ccClientFrom(flags, flags.ccBaseURL, Math.min(flags.communicationTimeout, 5_000));
    const metrics = createMetricsRegistry();
    // Diego calls the completion route on this daemon's REST listener, whose port is known once
    // it listens (-listenAddress may say port 0): the Stager is plugged in just after.
    const stager = lateBound<StagerServiceImplementation>('the Stager');
    const served = await serveServices({ services: [{ definition: StagerServiceDefinition, implementation: stager.implementation }], grpcListenAddress: flags.grpcListenAddress, listenAddress: flags.listenAddress, logger: log, metrics, security, gateway: restLimitsFrom(flags) });
    const { host } = splitHostPort(flags.listenAddress);
    const callbackUrl = `${security.tls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${new URL(served.restUrl).port}`;
    stager.set(buildStager({ bbs, cc, recipe: stagingRecipeFrom(flags, callbackUrl), logger: log, metrics }));
    process.stdout.write(`stager   rest ${served.restUrl}   grpc ${served.grpcAddress}\n`);
    log.info('Listening for staging requests!');
    return {
      async stop(graceMs) {
        await served.stop(graceMs);
        bbs.close();
        cc.close();
      },
    };
  },
});
