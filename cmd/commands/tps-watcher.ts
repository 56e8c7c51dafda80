// `ccbridge tps-watcher`: reports instance crashes (and, for today's CC, rescheduling and
// readiness) to CC with at-least-once delivery, while holding the watcher lock.
import { join } from 'node:path';
import { defineCommand } from '../../lib/daemon.js';
import { createMetricsRegistry } from '../../lib/metrics.js';
import { serveMetrics } from './serve.js';
import { duration, string } from '../../lib/flags.js';
import { openOutbox } from '../../services/tps/watcher/outbox.js';
import { buildWatcher } from '../wiring/services.js';
import { commonFlags } from './common.js';
import { bbsClientFrom, bbsFlags, ccClientFrom, ccFlags, lockFlags, metricsFlags } from './flags.js';
import { runWhileLocked } from './locked.js';

export const watcherFlags = {
  ccReportMode: string('legacy: crashes to /internal/apps/:guid/crashed (2015 CC); v4: crashed, rescheduling and readiness_changed to /internal/v4/apps/:guid/* (today\'s CC)', 'legacy', {
    check: (v) => (v === 'legacy' || v === 'v4' ? undefined : 'must be legacy or v4'),
  }),
  reportRetryInterval: duration('first retry delay of a failed report (doubles up to reportRetryMaxInterval)', 500),
  reportRetryMaxInterval: duration('longest delay between retries of a report', 30_000),
  ccReportTimeout: duration('deadline of each report to CC', 5_000),
};

export default defineCommand({
  summary: 'the TPS watcher: instance events to CC, at least once (active/passive behind a Locket lock)',
  flags: { ...commonFlags, ...metricsFlags, ...bbsFlags, ...ccFlags, ...lockFlags, ...watcherFlags },
  async start(flags, log) {
    for (const name of ['bbsAddress', 'ccBaseURL', 'locketAddress'] as const) if (!flags[name]) throw new Error(`-${name} is required`);
    const bbs = bbsClientFrom(flags, flags.bbsAddress, log);
    const cc = ccClientFrom(flags, flags.ccBaseURL, flags.ccReportTimeout);
    const outbox = openOutbox(join(flags.dataDir, 'tps-watcher'));
    const metrics = createMetricsRegistry();
    const served = flags.metricsListenAddress ? await serveMetrics(flags.metricsListenAddress, metrics, log) : undefined;
    const watcher = buildWatcher({
      bbs,
      cc,
      outbox,
      logger: log,
      metrics,
      config: { mode: flags.ccReportMode as 'legacy' | 'v4', retryBaseMs: flags.reportRetryInterval, retryMaxMs: flags.reportRetryMaxInterval },
    });
    const locked = runWhileLocked({
      key: 'tps_watcher_lock',
      locketAddress: flags.locketAddress,
      tls: flags.locketCACert ? { caFile: flags.locketCACert, certFile: flags.locketClientCert, keyFile: flags.locketClientKey } : undefined,
      ttlMs: flags.lockTTL,
      retryIntervalMs: flags.lockRetryInterval,
      work: watcher,
      logger: log,
    });
    process.stdout.write(`tps-watcher  active while it holds the Locket lock tps_watcher_lock (locket ${flags.locketAddress}, bbs ${flags.bbsAddress}, cc ${flags.ccBaseURL})${served ? `   metrics ${served.url}/metrics` : ''}\n`);
    return {
      async stop(graceMs) {
        await locked.stop(graceMs);
        await served?.stop();
        outbox.close();
        bbs.close();
        cc.close();
      },
    };
  },
});
