// The TPS watcher: Diego instance events → reports to CC, at least once. Each report goes to
// the durable outbox before its event counts as handled; a delivery loop sends the outbox to CC
// in order per instance, retrying with backoff while CC is down or failing, dropping only what
// CC refuses for good (4xx). After every (re)subscription the watcher re-lists the instances and
// queues any crash it has not delivered, so a gap in the event stream loses nothing.
import { performance } from 'node:perf_hooks';
import { CcStatusError, type CcCallOptions, type InstanceReport } from '../../../clients/cc/client.js';
import type { LrpInstanceEvent } from '../../../clients/bbs/sse.js';
import type { ActualLRP } from '../../../gen/diego/bbs/v1/actual_lrp.js';
import type { Logger } from '../../../lib/log.js';
import { Counter, Gauge, Histogram, type Registry } from '../../../lib/metrics.js';
import type { Outbox, QueuedReport } from './outbox.js';
import { crashReportsForListing, reportsForEvent, WATCHED_DOMAIN, type WatcherMode } from './reports.js';

export type WatcherEvent = LrpInstanceEvent | { type: 'resubscribed' };

export interface WatcherDiego {
  /** Events until the signal aborts; reconnects by itself, saying so with `resubscribed`. */
  subscribe(signal: AbortSignal): AsyncIterable<WatcherEvent>;
  actualLrps(domain: string, signal: AbortSignal): Promise<ActualLRP[]>;
}

export interface WatcherCc {
  reportInstance(processGuid: string, report: InstanceReport, options: CcCallOptions): Promise<void>;
}

export interface WatcherConfig {
  mode: WatcherMode;
  /** First retry delay; doubles per attempt up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Reports (of different instances) in flight at once. */
  deliveryConcurrency: number;
  /** How long delivered ids are remembered (at least the newest 100,000 are kept). */
  rememberDeliveredMs: number;
}

export const WATCHER_DEFAULTS: WatcherConfig = {
  mode: 'legacy',
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  deliveryConcurrency: 64,
  rememberDeliveredMs: 24 * 3_600_000,
};

export interface Watcher {
  /** Starts watching and delivering (the daemon calls this when it takes the lock). */
  start(): void;
  /**
   * Stops handling events at once. With drainMs (a shutdown while holding the lock), every report
   * in the outbox gets one more delivery attempt (backoff or not) within drainMs, so CC hears of
   * them now rather than at the next start; without it (the lock lost: another watcher may deliver) deliveries stop at
   * once too. Whatever is not delivered stays in the outbox.
   */
  stop(drainMs?: number): Promise<void>;
  readonly running: boolean;
  /**
   * Resolves true once the watcher has started and listed the instances for the first time (its
   * event stream opens beside that listing), or false after timeoutMs.
   */
  watching(timeoutMs: number): Promise<boolean>;
}

export interface WatcherDependencies {
  diego: WatcherDiego;
  cc: WatcherCc;
  outbox: Outbox;
  logger: Logger;
  config?: Partial<WatcherConfig>;
  metrics?: Registry;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}

export function createWatcher(deps: WatcherDependencies): Watcher {
  const config = { ...WATCHER_DEFAULTS, ...deps.config };
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ session: 'tps-watcher', mode: config.mode });
  const registers = deps.metrics ? [deps.metrics] : [];
  const queued = new Counter({ name: 'ccbridge_tps_watcher_reports_queued_total', help: 'Reports written to the outbox', registers });
  const delivered = new Counter({ name: 'ccbridge_tps_watcher_reports_delivered_total', help: 'Reports CC accepted', registers });
  const retried = new Counter({ name: 'ccbridge_tps_watcher_reports_retried_total', help: 'Deliveries that failed and will be retried', registers });
  const dropped = new Counter({ name: 'ccbridge_tps_watcher_reports_dropped_total', help: 'Reports CC refused for good (4xx)', registers });
  const depth: Gauge = new Gauge({
    name: 'ccbridge_tps_watcher_outbox_depth',
    help: 'Reports waiting in the outbox',
    registers,
    collect(): void {
      depth.set(deps.outbox.depth());
    },
  });
  const latency = new Histogram({
    name: 'ccbridge_tps_watcher_delivery_latency_seconds',
    help: 'From queueing a report to CC accepting it',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30, 300],
    registers,
  });

  let controller: AbortController | undefined;
  /** Aborts the event stream alone (a draining stop), before the deliveries. */
  let eventsController: AbortController | undefined;
  /** While draining, the delivery loop ends once nothing is due. */
  let draining = false;
  let tasks: Promise<unknown>[] = [];
  let wake: (() => void) | undefined;
  let markWatching: () => void = () => undefined;
  const firstListing = new Promise<void>((resolve) => (markWatching = resolve));

  function kick(): void {
    wake?.();
  }

  function enqueue(reports: ReturnType<typeof reportsForEvent>): void {
    const added = deps.outbox.enqueue(reports, now());
    if (added > 0) {
      queued.inc(added);
      kick();
    }
  }

  async function relist(signal: AbortSignal): Promise<void> {
    try {
      const actuals = await deps.diego.actualLrps(WATCHED_DOMAIN, signal);
      const before = deps.outbox.depth();
      enqueue(crashReportsForListing(actuals, config.mode));
      log.info({ instances: actuals.length, queued: deps.outbox.depth() - before }, 'relisted-instances');
    } catch (error) {
      if (!signal.aborted) log.error({ err: error }, 'failed-relisting-instances');
    }
  }

  async function consumeEvents(signal: AbortSignal): Promise<void> {
    // List right away as well as after every reconnect: whatever happened while no watcher
    // held the lock (or this one was down) shows up in the listing.
    const listed = relist(signal).then(markWatching);
    try {
      for await (const event of deps.diego.subscribe(signal)) {
        if (signal.aborted) break;
        if (event.type === 'resubscribed') {
          await relist(signal);
          continue;
        }
        enqueue(reportsForEvent(event, config.mode));
      }
    } catch (error) {
      if (!signal.aborted) log.error({ err: error }, 'event-stream-failed');
    }
    await listed;
  }

  async function deliver(report: QueuedReport, signal: AbortSignal): Promise<void> {
    try {
      await deps.cc.reportInstance(report.processGuid, report.report, { eventId: report.id, signal });
      deps.outbox.delivered(report.seq, report.id, now());
      delivered.inc();
      latency.observe(Math.max(0, now() - report.queuedAt) / 1000);
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof CcStatusError && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429) {
        deps.outbox.dropped(report.seq);
        dropped.inc();
        log.error({ id: report.id, process_guid: report.processGuid, kind: report.report.kind, status: error.status }, 'report-refused-by-cc');
        return;
      }
      const delay = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.min(report.attempts, 20));
      deps.outbox.retryAt(report.seq, now() + delay);
      retried.inc();
      log.warn({ id: report.id, process_guid: report.processGuid, attempts: report.attempts + 1, retry_in_ms: delay, err: error }, 'report-delivery-failed');
    }
  }

  async function deliverOutbox(signal: AbortSignal): Promise<void> {
    let lastPrune = 0;
    /** While draining: reports tried once already (each queued report gets one last try, backoff or not). */
    const triedWhileDraining = new Set<number>();
    while (!signal.aborted) {
      const due = draining
        ? deps.outbox.due(Number.MAX_SAFE_INTEGER, config.deliveryConcurrency + triedWhileDraining.size).filter((r) => !triedWhileDraining.has(r.seq)).slice(0, config.deliveryConcurrency)
        : deps.outbox.due(now(), config.deliveryConcurrency);
      if (due.length > 0) {
        if (draining) for (const report of due) triedWhileDraining.add(report.seq);
        await Promise.all(due.map((report) => deliver(report, signal)));
        continue;
      }
      if (draining) return;
      if (now() - lastPrune > 60_000) {
        deps.outbox.prune(now() - config.rememberDeliveredMs, 100_000);
        lastPrune = now();
      }
      const nextAt = deps.outbox.nextDueAt();
      const waitMs = nextAt === undefined ? 60_000 : Math.max(1, nextAt - now());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          signal.removeEventListener('abort', done);
          resolve();
        }
        wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  return {
    get running() {
      return controller !== undefined;
    },
    async watching(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([firstListing.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))]);
      clearTimeout(timer);
      return result;
    },
    start() {
      if (controller) return;
      controller = new AbortController();
      eventsController = new AbortController();
      draining = false;
      const { signal } = controller;
      log.info({ outbox_depth: deps.outbox.depth() }, 'started');
      const started = performance.now();
      tasks = [consumeEvents(AbortSignal.any([signal, eventsController.signal])), deliverOutbox(signal)].map((task) =>
        task.catch((error: unknown) => log.error({ err: error, after_ms: performance.now() - started }, 'watcher-task-failed')),
      );
    },
    async stop(drainMs) {
      if (!controller) return;
      const stopping = controller;
      controller = undefined;
      if (drainMs !== undefined && drainMs > 0) {
        eventsController?.abort();
        draining = true;
        kick();
        log.info({ outbox_depth: deps.outbox.depth(), drain_ms: drainMs }, 'draining-outbox');
        let timer: NodeJS.Timeout | undefined;
        const drained = await Promise.race([
          Promise.all(tasks).then(() => true),
          new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), drainMs))),
        ]);
        clearTimeout(timer);
        if (!drained) log.warn({ outbox_depth: deps.outbox.depth() }, 'outbox-drain-cut-short');
      }
      stopping.abort();
      await Promise.all(tasks);
      tasks = [];
      draining = false;
      log.info({ outbox_depth: deps.outbox.depth() }, 'stopped');
    },
  };
}
