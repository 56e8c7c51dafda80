// The nsync bulker: every polling interval, make Diego's cf-apps domain equal to CC's desired
// apps — desire the missing, update the stale, remove the extra — and bump the domain's
// freshness only after a clean pass, so Diego never stops instances on the word of a sync that
// did not see everything. Runs only while its daemon holds the bulker lock.
import { performance } from 'node:perf_hooks';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { DesiredLRP, DesiredLRPUpdate } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { BridgeError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { Counter, Histogram, type Registry } from '../../lib/metrics.js';
import { APPS_DOMAIN, type WriteOutcome } from './listener.js';

/** A desired LRP as the bulker sees it in the list: just what the diff needs. */
export interface DesiredLrpFingerprint {
  processGuid: string;
  /** CC's etag of the version Diego runs. */
  annotation: string;
  /** The whole LRP's routes etc., decoded only for the stale ones. */
  existing(): Pick<DesiredLRP, 'routes'>;
}

export interface BulkerDiego {
  desiredLrpFingerprints(domain: string, signal: AbortSignal): Promise<DesiredLrpFingerprint[]>;
  desireLrp(lrp: DesiredLRP): Promise<WriteOutcome>;
  updateDesiredLrp(processGuid: string, update: DesiredLRPUpdate): Promise<WriteOutcome>;
  /** false when it was already gone. */
  removeDesiredLrp(processGuid: string): Promise<boolean>;
  upsertDomain(domain: string, ttlSeconds: number): Promise<void>;
}

export interface BulkerCc {
  fingerprints(batchSize: number, token: string, options: { signal: AbortSignal }): Promise<{ fingerprints: { processGuid: string; etag: string }[]; token: string }>;
  desiredApps(processGuids: readonly string[], options: { signal: AbortSignal }): Promise<DesireAppRequestFromCC[]>;
}

export interface BulkerRecipes {
  /** Throws a BridgeError (INVALID_ARGUMENT) for an app that cannot be built. */
  desiredLrpFor(app: DesireAppRequestFromCC): DesiredLRP;
  updateFor(app: DesireAppRequestFromCC, existing: Pick<DesiredLRP, 'routes'>): DesiredLRPUpdate;
}

export interface BulkerConfig {
  pollingIntervalMs: number;
  batchSize: number;
  domainTtlSeconds: number;
  /** Diego writes in flight at once. */
  concurrency: number;
}

export const BULKER_DEFAULTS: BulkerConfig = { pollingIntervalMs: 30_000, batchSize: 500, domainTtlSeconds: 120, concurrency: 50 };

export interface SyncSummary {
  desired: number;
  updated: number;
  removed: number;
  invalid: number;
  failed: number;
  /** Races with other writers, ignored (already exists, changed or gone meanwhile). */
  raced: number;
  freshnessBumped: boolean;
  durationMs: number;
  /** Why the pass was not clean, when it was not. */
  problems: string[];
}

export interface Bulker {
  /** One pass; resolves with its summary. */
  syncOnce(signal?: AbortSignal): Promise<SyncSummary>;
  /** Syncs now and then every polling interval until stop(). */
  start(): void;
  /** Stops the loop and cancels a pass in flight. */
  stop(): Promise<void>;
}

export interface BulkerDependencies {
  diego: BulkerDiego;
  cc: BulkerCc;
  recipes: BulkerRecipes;
  logger: Logger;
  config?: Partial<BulkerConfig>;
  metrics?: Registry;
}

export function createBulker(deps: BulkerDependencies): Bulker {
  const config = { ...BULKER_DEFAULTS, ...deps.config };
  const log = deps.logger.child({ session: 'nsync-bulker' });
  const registers = deps.metrics ? [deps.metrics] : [];
  const outcomes = new Counter({ name: 'ccbridge_nsync_bulker_lrps_total', help: 'Desired LRPs handled by the bulker, by outcome', labelNames: ['outcome'], registers });
  const syncs = new Histogram({
    name: 'ccbridge_nsync_bulker_sync_duration_seconds',
    help: 'Duration of one bulker pass',
    labelNames: ['clean'],
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers,
  });

  async function syncOnce(signal: AbortSignal = new AbortController().signal): Promise<SyncSummary> {
    const started = performance.now();
    const summary: SyncSummary = { desired: 0, updated: 0, removed: 0, invalid: 0, failed: 0, raced: 0, freshnessBumped: false, durationMs: 0, problems: [] };
    const finish = (): SyncSummary => {
      summary.durationMs = Math.round(performance.now() - started);
      for (const outcome of ['desired', 'updated', 'removed', 'invalid', 'failed', 'raced'] as const) outcomes.inc({ outcome }, summary[outcome]);
      syncs.observe({ clean: String(summary.freshnessBumped) }, summary.durationMs / 1000);
      const line = { ...summary, problems: summary.problems.slice(0, 10) };
      if (summary.freshnessBumped) log.info(line, 'sync-complete');
      else log.warn(line, 'sync-incomplete');
      return summary;
    };

    let existing: Map<string, DesiredLrpFingerprint>;
    try {
      existing = new Map((await deps.diego.desiredLrpFingerprints(APPS_DOMAIN, signal)).map((f) => [f.processGuid, f]));
    } catch (error) {
      summary.problems.push(`listing desired LRPs failed: ${(error as Error).message}`);
      log.error({ err: error }, 'failed-listing-desired-lrps');
      return finish();
    }

    const fail = (problem: string, error?: unknown) => {
      summary.failed++;
      summary.problems.push(problem);
      log.error({ err: error, problem }, 'sync-step-failed');
    };

    let token = '{}';
    let pagesComplete = false;
    for (let page = 0; !signal.aborted; page++) {
      let answer: Awaited<ReturnType<BulkerCc['fingerprints']>>;
      try {
        answer = await deps.cc.fingerprints(config.batchSize, token, { signal });
      } catch (error) {
        summary.problems.push(`fingerprint page ${page} failed: ${(error as Error).message}`);
        log.error({ err: error, page }, 'failed-fetching-fingerprints');
        break;
      }
      const missing: string[] = [];
      const stale: DesiredLrpFingerprint[] = [];
      for (const { processGuid, etag } of answer.fingerprints) {
        const known = existing.get(processGuid);
        if (!known) missing.push(processGuid);
        else {
          existing.delete(processGuid);
          if (known.annotation !== etag) stale.push(known);
        }
      }
      await desireMissing(missing);
      await updateStale(stale);
      if (answer.fingerprints.length < config.batchSize) {
        pagesComplete = true;
        break;
      }
      token = answer.token;
    }

    async function fetchApps(guids: string[]): Promise<DesireAppRequestFromCC[]> {
      if (guids.length === 0) return [];
      try {
        return await deps.cc.desiredApps(guids, { signal });
      } catch (error) {
        fail(`fetching ${guids.length} desired apps failed: ${(error as Error).message}`, error);
        return [];
      }
    }

    async function desireMissing(guids: string[]): Promise<void> {
      const apps = await fetchApps(guids);
      await eachBounded(apps, config.concurrency, async (app) => {
        let lrp: DesiredLRP;
        try {
          lrp = deps.recipes.desiredLrpFor(app);
        } catch (error) {
          return invalid(app, error);
        }
        try {
          const outcome = await deps.diego.desireLrp(lrp);
          if (outcome === 'ok') summary.desired++;
          else summary.raced++;
        } catch (error) {
          fail(`desiring ${app.processGuid} failed: ${(error as Error).message}`, error);
        }
      });
    }

    async function updateStale(stale: DesiredLrpFingerprint[]): Promise<void> {
      const apps = await fetchApps(stale.map((f) => f.processGuid));
      const fingerprints = new Map(stale.map((f) => [f.processGuid, f]));
      await eachBounded(apps, config.concurrency, async (app) => {
        const known = fingerprints.get(app.processGuid);
        if (!known) return;
        let update: DesiredLRPUpdate;
        try {
          update = deps.recipes.updateFor(app, known.existing());
        } catch (error) {
          return invalid(app, error);
        }
        try {
          const outcome = await deps.diego.updateDesiredLrp(app.processGuid, update);
          if (outcome === 'ok') summary.updated++;
          else summary.raced++;
        } catch (error) {
          fail(`updating ${app.processGuid} failed: ${(error as Error).message}`, error);
        }
      });
    }

    function invalid(app: DesireAppRequestFromCC, error: unknown): void {
      if (!(error instanceof BridgeError)) return fail(`building ${app.processGuid} failed: ${(error as Error).message}`, error);
      // An app CC describes in a way Diego cannot run is counted and skipped; it does not hold
      // back freshness for every other app (as today's CC counts invalid LRPs).
      summary.invalid++;
      log.info({ process_guid: app.processGuid, reason: error.reason, message: error.message }, 'skipping-invalid-desired-app');
    }

    if (!pagesComplete) {
      // Without every page, an LRP not seen may still be desired: nothing is removed.
      if (!signal.aborted) log.warn({ unseen: existing.size }, 'not-removing-extras-after-incomplete-pages');
      else summary.problems.push('cancelled');
      return finish();
    }

    await eachBounded([...existing.keys()], config.concurrency, async (processGuid) => {
      try {
        if (await deps.diego.removeDesiredLrp(processGuid)) summary.removed++;
        else summary.raced++;
      } catch (error) {
        fail(`removing ${processGuid} failed: ${(error as Error).message}`, error);
      }
    });

    if (summary.failed === 0 && !signal.aborted) {
      try {
        await deps.diego.upsertDomain(APPS_DOMAIN, config.domainTtlSeconds);
        summary.freshnessBumped = true;
      } catch (error) {
        summary.problems.push(`bumping freshness failed: ${(error as Error).message}`);
        log.error({ err: error }, 'failed-bumping-freshness');
      }
    }
    return finish();
  }

  let timer: NodeJS.Timeout | undefined;
  let running: { controller: AbortController; done: Promise<unknown> } | undefined;
  let stopped = true;

  function schedule(delayMs: number): void {
    timer = setTimeout(() => {
      const controller = new AbortController();
      const done = syncOnce(controller.signal)
        .catch((error: unknown) => log.error({ err: error }, 'sync-crashed'))
        .finally(() => {
          running = undefined;
          if (!stopped) schedule(config.pollingIntervalMs);
        });
      running = { controller, done };
    }, delayMs);
  }

  return {
    syncOnce,
    start() {
      if (!stopped) return;
      stopped = false;
      log.info({ polling_interval_ms: config.pollingIntervalMs }, 'started');
      schedule(0);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      if (running) {
        running.controller.abort();
        await running.done;
      }
      log.info('stopped');
    },
  };
}

/** Runs fn over items with at most `limit` in flight. */
export async function eachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
