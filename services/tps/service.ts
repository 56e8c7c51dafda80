// TpsService: instance status, stats and bulk status for CC (the 2015 TPS listener), and
// WatchInstances, a live stream of instance changes.
import { Status, type CallContext } from 'nice-grpc';
import type { LRPInstance } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { InstanceChange, type TpsServiceImplementation, type WatchInstancesResponse } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import type { ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { BridgeError, invalidArgument, notFound, unavailable } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { BULK_GUIDS_PATTERN, lrpInstanceFor, lrpInstancesFor, lrpInstancesWithStats, onePerIndex, type InstanceMetrics } from './instances.js';

/** What TPS needs from Diego. */
export interface TpsDiego {
  actualLrpsByProcessGuid(processGuid: string, requestId?: string): Promise<ActualLRP[]>;
  /** One call for many processes. */
  actualLrpsByProcessGuids(processGuids: readonly string[], requestId?: string): Promise<ActualLRP[]>;
  /** The LRP's log guid (its metrics source id), or undefined when no such LRP is desired. */
  logGuidOf(processGuid: string, requestId?: string): Promise<string | undefined>;
}

/** Instance events as TPS consumes them; `resubscribed` means events may have been missed. */
export type InstanceEvent =
  | { kind: 'created' | 'changed' | 'removed'; actual: ActualLRP }
  | { kind: 'resubscribed' };

export interface TpsInstanceEvents {
  /** Events until the signal aborts; reconnects by itself and says so with `resubscribed`. */
  subscribe(signal: AbortSignal): AsyncIterable<InstanceEvent>;
}

export interface TpsMetrics {
  containerMetrics(sourceId: string, processGuid: string, options: { authorization: string; signal?: AbortSignal }): Promise<InstanceMetrics[]>;
}

export interface TpsConfig {
  /** Requests served at once by the three CC routes; more get 503 (the original maxInFlight). */
  maxInFlightRequests: number;
  /** Most guids accepted by one bulk status call. */
  maxBulkGuids: number;
}

export const TPS_DEFAULTS: TpsConfig = { maxInFlightRequests: 200, maxBulkGuids: 5_000 };

export interface TpsDependencies {
  diego: TpsDiego;
  metrics: TpsMetrics;
  events: TpsInstanceEvents;
  logger: Logger;
  config?: Partial<TpsConfig>;
  /** Nanoseconds since the epoch; injectable for tests. */
  nowNs?: () => bigint;
}

const systemNowNs = () => BigInt(Date.now()) * 1_000_000n;

export function createTpsService(deps: TpsDependencies): TpsServiceImplementation {
  const config = { ...TPS_DEFAULTS, ...deps.config };
  const nowNs = deps.nowNs ?? systemNowNs;
  const log = deps.logger.child({ session: 'tps' });
  let inFlight = 0;

  /** The shared in-flight bound of the three CC routes: full → 503 at once. */
  async function bounded<T>(work: () => Promise<T>): Promise<T> {
    if (inFlight >= config.maxInFlightRequests) throw new BridgeError(Status.RESOURCE_EXHAUSTED, 'TOO_MANY_REQUESTS', 'too many requests in flight');
    inFlight++;
    try {
      return await work();
    } finally {
      inFlight--;
    }
  }

  function diegoUnavailable(error: unknown, processGuid: string, event: string): BridgeError {
    log.error({ err: error, process_guid: processGuid }, event);
    return unavailable('DIEGO_UNAVAILABLE', 'failed to read instances from Diego', { cause: error });
  }

  return {
    async getLrpStatus(request, context) {
      return bounded(async () => {
        const requestId = requestIdOf(context);
        // An empty guid filters nothing at the BBS: it would list every instance in Diego.
        if (request.processGuid === '') throw invalidArgument('MISSING_PROCESS_GUID', 'process guid missing');
        let actuals: ActualLRP[];
        try {
          actuals = await deps.diego.actualLrpsByProcessGuid(request.processGuid, requestId);
        } catch (error) {
          throw diegoUnavailable(error, request.processGuid, 'failed-fetching-actual-lrps');
        }
        return { instances: lrpInstancesFor(actuals, nowNs()) };
      });
    },

    async getLrpStats(request, context) {
      return bounded(async () => {
        const authorization = context.metadata.get('authorization');
        if (!authorization) throw new BridgeError(Status.UNAUTHENTICATED, 'MISSING_AUTHORIZATION', 'missing authorization');
        if (request.processGuid === '') throw invalidArgument('MISSING_PROCESS_GUID', 'process guid missing');
        const requestId = requestIdOf(context);
        let logGuid: string | undefined;
        try {
          logGuid = await deps.diego.logGuidOf(request.processGuid, requestId);
        } catch (error) {
          throw diegoUnavailable(error, request.processGuid, 'failed-fetching-desired-lrp');
        }
        if (logGuid === undefined) throw notFound('DESIRED_LRP_NOT_FOUND', `desired LRP ${request.processGuid} not found`);
        let actuals: ActualLRP[];
        try {
          actuals = await deps.diego.actualLrpsByProcessGuid(request.processGuid, requestId);
        } catch (error) {
          throw diegoUnavailable(error, request.processGuid, 'failed-fetching-actual-lrps');
        }
        let metrics: InstanceMetrics[] = [];
        try {
          metrics = await deps.metrics.containerMetrics(logGuid, request.processGuid, { authorization, signal: context.signal });
        } catch (error) {
          // As in 2015: without metrics the instances are still reported, only their stats are left out.
          log.error({ err: error, process_guid: request.processGuid }, 'failed-fetching-container-metrics');
        }
        const now = nowNs();
        return { instances: lrpInstancesWithStats(actuals, metrics, now, new Date(Number(now / 1_000_000n))) };
      });
    },

    async bulkLrpStatus(request, context) {
      return bounded(async () => {
        if (!BULK_GUIDS_PATTERN.test(request.guids)) throw invalidArgument('INVALID_GUIDS', 'guids must be a comma-separated list of process guids');
        const guids = [...new Set(request.guids.split(','))];
        if (guids.length > config.maxBulkGuids) throw invalidArgument('TOO_MANY_GUIDS', `at most ${config.maxBulkGuids} guids per call`);
        let actuals: ActualLRP[];
        try {
          actuals = await deps.diego.actualLrpsByProcessGuids(guids, requestIdOf(context));
        } catch (error) {
          // As in 2015, a guid whose instances could not be read is left out and the answer is
          // still 200; here one Diego call serves them all, so all are left out.
          log.error({ err: error, process_guids: guids.length }, 'failed-fetching-actual-lrps');
          return { statuses: {} };
        }
        const byGuid = new Map<string, ActualLRP[]>(guids.map((g) => [g, []]));
        for (const actual of actuals) byGuid.get(actual.actualLrpKey?.processGuid ?? '')?.push(actual);
        const now = nowNs();
        const statuses: Record<string, { instances: LRPInstance[] }> = {};
        for (const [guid, list] of byGuid) statuses[guid] = { instances: lrpInstancesFor(list, now) };
        return { statuses };
      });
    },

    async *watchInstances(request, context) {
      const guids = new Set(request.processGuids);
      if (guids.size === 0) throw invalidArgument('MISSING_PROCESS_GUIDS', 'process_guids is empty');
      for (const guid of guids) if (!BULK_GUIDS_PATTERN.test(guid)) throw invalidArgument('INVALID_GUIDS', `invalid process guid ${guid}`);
      const watch = new InstanceWatch(guids, nowNs);
      // Subscribe before listing, so that nothing that happens between the two is missed.
      const events = deps.events.subscribe(context.signal)[Symbol.asyncIterator]();
      const pending = events.next();
      const snapshot = await deps.diego.actualLrpsByProcessGuids([...guids]).catch((error: unknown) => {
        throw diegoUnavailable(error, [...guids][0] ?? '', 'failed-fetching-actual-lrps');
      });
      yield* watch.snapshot(snapshot);
      yield { change: InstanceChange.INSTANCE_CHANGE_SNAPSHOT_END, instance: undefined };
      let next = pending;
      while (!context.signal.aborted) {
        const step = await next;
        if (step.done) return;
        const event = step.value;
        if (event.kind === 'resubscribed') {
          // Events may have been missed while disconnected: re-list and report the differences.
          let relisted: ActualLRP[];
          try {
            relisted = await deps.diego.actualLrpsByProcessGuids([...guids]);
          } catch (error) {
            log.error({ err: error }, 'failed-relisting-after-resubscribe');
            next = events.next();
            continue;
          }
          yield* watch.reconcile(relisted);
        } else {
          yield* watch.apply(event.kind, event.actual);
        }
        next = events.next();
      }
    },
  };
}

function requestIdOf(context: CallContext): string | undefined {
  return context.metadata.get('x-vcap-request-id');
}

/** The instances a watcher last reported, keyed by process guid and index. */
class InstanceWatch {
  private readonly known = new Map<string, LRPInstance>();

  constructor(
    private readonly guids: ReadonlySet<string>,
    private readonly nowNs: () => bigint,
  ) {}

  *snapshot(actuals: readonly ActualLRP[]): Generator<WatchInstancesResponse> {
    for (const instance of this.current(actuals).values()) {
      this.known.set(keyOf(instance), instance);
      yield { change: InstanceChange.INSTANCE_CHANGE_SNAPSHOT, instance };
    }
  }

  *apply(kind: 'created' | 'changed' | 'removed', actual: ActualLRP): Generator<WatchInstancesResponse> {
    if (!this.guids.has(actual.actualLrpKey?.processGuid ?? '')) return;
    const instance = lrpInstanceFor(actual, this.nowNs());
    const key = keyOf(instance);
    if (kind === 'removed') {
      // An evacuating copy going away does not remove the index if another record holds it.
      const held = this.known.get(key);
      if (held && held.instanceGuid !== instance.instanceGuid) return;
      this.known.delete(key);
      yield { change: InstanceChange.INSTANCE_CHANGE_REMOVED, instance };
      return;
    }
    const existed = this.known.has(key);
    this.known.set(key, instance);
    yield { change: existed ? InstanceChange.INSTANCE_CHANGE_CHANGED : InstanceChange.INSTANCE_CHANGE_CREATED, instance };
  }

  *reconcile(actuals: readonly ActualLRP[]): Generator<WatchInstancesResponse> {
    const now = this.current(actuals);
    for (const [key, instance] of this.known) {
      if (!now.has(key)) {
        this.known.delete(key);
        yield { change: InstanceChange.INSTANCE_CHANGE_REMOVED, instance };
      }
    }
    for (const [key, instance] of now) {
      const held = this.known.get(key);
      this.known.set(key, instance);
      if (!held) yield { change: InstanceChange.INSTANCE_CHANGE_CREATED, instance };
      else if (held.state !== instance.state || held.instanceGuid !== instance.instanceGuid || held.since !== instance.since || held.details !== instance.details) {
        yield { change: InstanceChange.INSTANCE_CHANGE_CHANGED, instance };
      }
    }
  }

  private current(actuals: readonly ActualLRP[]): Map<string, LRPInstance> {
    const byGuid = new Map<string, ActualLRP[]>();
    for (const actual of actuals) {
      const guid = actual.actualLrpKey?.processGuid ?? '';
      if (!this.guids.has(guid)) continue;
      byGuid.set(guid, [...(byGuid.get(guid) ?? []), actual]);
    }
    const now = this.nowNs();
    const out = new Map<string, LRPInstance>();
    for (const list of byGuid.values()) {
      for (const actual of onePerIndex(list)) {
        const instance = lrpInstanceFor(actual, now);
        out.set(keyOf(instance), instance);
      }
    }
    return out;
  }
}

function keyOf(instance: LRPInstance): string {
  return `${instance.processGuid}/${instance.index}`;
}
