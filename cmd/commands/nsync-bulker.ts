// `ccbridge nsync-bulker`: keeps CC's desired apps and Diego's cf-apps domain in sync, while
// holding the bulker lock (active/passive).
import { defineCommand } from '../../lib/daemon.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { serveMetrics } from './serve.js';
import { duration, int } from '../../lib/flags.js';
import { buildBulker } from '../wiring/services.js';
import { bbsClientFrom, bbsFlags, ccClientFrom, ccFlags, lifecycleFlags, lockFlags, metricsFlags } from './flags.js';
import { commonFlags } from './common.js';
import { runWhileLocked } from './locked.js';
import { nsyncRecipeFlags, nsyncRecipeFrom } from './recipes.js';

export const bulkerFlags = {
  pollingInterval: duration('time between syncs', 30_000),
  domainTTL: duration('how long a clean sync keeps the cf-apps domain fresh', 120_000),
  bulkBatchSize: int('fingerprints per CC page and apps per fetch', 500, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
  bulkerConcurrency: int('Diego writes in flight during a sync', 50, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
};

export default defineCommand({
  summary: 'the nsync bulker: syncs CC\'s desired apps into Diego (active/passive behind a Locket lock)',
  flags: { ...commonFlags, ...metricsFlags, ...bbsFlags, ...ccFlags, ...lockFlags, ...lifecycleFlags, ...nsyncRecipeFlags, ...bulkerFlags },
  async start(flags, log) {
    for (const name of ['bbsAddress', 'ccBaseURL', 'locketAddress'] as const) if (!flags[name]) throw new Error(`-${name} is required`);
    const bbs = bbsClientFrom(flags, flags.bbsAddress, log);
    const cc = ccClientFrom(flags, flags.ccBaseURL, flags.communicationTimeout);
    const metrics = createMetricsRegistry();
    const served = flags.metricsListenAddress ? await serveMetrics(flags.metricsListenAddress, metrics, log) : undefined;
    const bulker = buildBulker({
      bbs,
      cc,
      recipe: nsyncRecipeFrom(flags),
      logger: log,
      metrics,
      config: {
        pollingIntervalMs: flags.pollingInterval,
        batchSize: flags.bulkBatchSize,
        domainTtlSeconds: Math.round(flags.domainTTL / 1000),
        concurrency: flags.bulkerConcurrency,
      },
    });
    const locked = runWhileLocked({
      key: 'nsync_bulker_lock',
      locketAddress: flags.locketAddress,
      tls: flags.locketCACert ? { caFile: flags.locketCACert, certFile: flags.locketClientCert, keyFile: flags.locketClientKey } : undefined,
      ttlMs: flags.lockTTL,
      retryIntervalMs: flags.lockRetryInterval,
      work: bulker,
      logger: log,
    });
    process.stdout.write(`nsync-bulker  active while it holds the Locket lock nsync_bulker_lock (locket ${flags.locketAddress}, bbs ${flags.bbsAddress}, cc ${flags.ccBaseURL})${served ? `   metrics ${served.url}/metrics` : ''}\n`);
    return {
      async stop(graceMs) {
        await locked.stop(graceMs);
        await served?.stop();
        bbs.close();
        cc.close();
      },
    };
  },
});
