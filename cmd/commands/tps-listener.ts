// `ccbridge tps-listener`: instance status, stats and bulk status for CC, and WatchInstances.
import { createLogCacheClient } from '../../clients/logcache/client.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { defineCommand } from '../../lib/daemon.js';
import { int, string } from '../../lib/flags.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { buildTps } from '../wiring/services.js';
import { commonFlags } from './common.js';
import { bbsClientFrom, bbsFlags, grpcListenFlag, listenerSecurityFlags, listenerSecurityFrom, restListenFlag } from './flags.js';
import { gatewayFlags, restLimitsFrom } from './gateway.js';
import { serveServices } from './serve.js';

export const tpsFlags = {
  logCacheURL: string('URL of log-cache (container metrics for the stats route); empty: the BBS address (the embedded Diego serves the same read API)'),
  maxInFlightRequests: int('requests served at once; more get 503', 200, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
  maxBulkGuids: int('most process guids in one bulk status call', 5_000, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
};

export default defineCommand({
  summary: 'the TPS listener: instance status for CC',
  flags: { ...commonFlags, ...bbsFlags, ...tpsFlags, ...restListenFlag('127.0.0.1:1518'), ...grpcListenFlag('127.0.0.1:1519'), ...listenerSecurityFlags, ...gatewayFlags },
  async start(flags, log) {
    if (!flags.bbsAddress) throw new Error('-bbsAddress is required');
    const security = listenerSecurityFrom(flags);
    const bbs = bbsClientFrom(flags, flags.bbsAddress, log);
    const tps = buildTps({
      bbs,
      logCache: createLogCacheClient({ url: flags.logCacheURL || flags.bbsAddress }),
      logger: log,
      config: { maxInFlightRequests: flags.maxInFlightRequests, maxBulkGuids: flags.maxBulkGuids },
    });
    const served = await serveServices({ services: [{ definition: TpsServiceDefinition, implementation: tps }], grpcListenAddress: flags.grpcListenAddress, listenAddress: flags.listenAddress, logger: log, metrics: createMetricsRegistry(), security, gateway: restLimitsFrom(flags) });
    process.stdout.write(`tps      rest ${served.restUrl}   grpc ${served.grpcAddress}\n`);
    return {
      async stop(graceMs) {
        await served.stop(graceMs);
        bbs.close();
      },
    };
  },
});
