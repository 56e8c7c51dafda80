// Keeps the routing table equal to what the BBS says, the way the route-emitter does: one
// instance event stream applied as events arrive, and a full re-list (desired LRP scheduling
// infos and actual LRPs) once the stream is first up, after every resubscription (events may
// have been missed while it was down) and every resync interval (a change missed for any other
// reason is corrected within one interval).
//
// Events that arrive while a re-list is in flight are held and applied after the listed state is
// in: the list may have been read before them, and applying them to a table the list then
// overwrites would lose them. Every event carries the state after the change, so applying an
// event older than the list only moves an entry back until the next event of that entry, which
// the stream delivers too.
import type { BbsClient, LrpInstanceEvent } from '../../clients/bbs/index.js';
import { abortableSleep } from '../../clients/bbs/index.js';
import type { ProtoRoutes } from '../../gen/diego/bbs/v1/desired_lrp.js';
import type { Logger } from '../../lib/log.js';
import {
  httpRoutesOf,
  routableInstanceOf,
  routableInstanceOfLrp,
  type HttpRoute,
  type RoutableInstance,
  type RouteTable,
} from './table.js';

/** What the router needs of the BBS. */
export type RouterBbs = Pick<BbsClient, 'desiredLrpSchedulingInfos' | 'actualLrps' | 'watchInstanceEvents'>;

export interface RouteSyncOptions {
  bbs: RouterBbs;
  table: RouteTable;
  logger: Logger;
  /** Full re-list this often, whatever the stream says. */
  resyncIntervalMs: number;
  /** Attempts of one re-list before waiting for the next trigger. */
  relistAttempts: number;
  /** Wait between failed attempts of one re-list. */
  relistRetryMs: number;
  /** Deadline of each list call; the client's default when unset. */
  listTimeoutMs?: number;
  /** Events held during a re-list; past this the held events are dropped and the list runs again. */
  maxHeldEvents: number;
  /** Wait before opening a new event stream once one has given up reconnecting. */
  watchRestartMs: number;
}

export interface RouteSync {
  /** Resolves once a full list is in the table; rejects if the sync stops first. */
  readonly synced: Promise<void>;
  /** Re-lists now; resolves when done (failures are logged, never thrown). */
  relist(reason: string): Promise<void>;
  stop(): Promise<void>;
}

/** Re-lists asked for while one runs are folded into at most this many more rounds. */
const MAX_RELIST_ROUNDS = 3;

export function startRouteSync(options: RouteSyncOptions): RouteSync {
  const { bbs, table } = options;
  const log = options.logger;
  const lifetime = new AbortController();
  let stopped = false;

  let markSynced: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const synced = new Promise<void>((resolve, reject) => (markSynced = { resolve, reject }));
  // Callers that never await it must not see an unhandled rejection.
  synced.catch(() => undefined);

  /** Defined while a list is being read: events wait here. */
  let held: LrpInstanceEvent[] | undefined;
  let heldOverflow = false;
  let relistInFlight: Promise<void> | undefined;
  let relistAgain = false;

  const routesOf = (processGuid: string, routes: ProtoRoutes | undefined): HttpRoute[] => {
    try {
      return httpRoutesOf(routes);
    } catch (err) {
      // The message says what is wrong without quoting the document.
      log.warn({ process_guid: processGuid, err: (err as Error).message }, 'invalid-cf-router-routes');
      return [];
    }
  };

  function apply(item: LrpInstanceEvent): void {
    switch (item.type) {
      case 'desired_lrp_created': {
        const lrp = item.event.desiredLrp;
        if (lrp !== undefined) table.setRoutes(lrp.processGuid, routesOf(lrp.processGuid, lrp.routes));
        log.debug({ event: item.type, process_guid: lrp?.processGuid }, 'route-event');
        return;
      }
      case 'desired_lrp_changed': {
        const lrp = item.event.after;
        if (lrp !== undefined) table.setRoutes(lrp.processGuid, routesOf(lrp.processGuid, lrp.routes));
        log.debug({ event: item.type, process_guid: lrp?.processGuid }, 'route-event');
        return;
      }
      case 'desired_lrp_removed': {
        const lrp = item.event.desiredLrp;
        if (lrp !== undefined) table.removeDesired(lrp.processGuid);
        log.debug({ event: item.type, process_guid: lrp?.processGuid }, 'route-event');
        return;
      }
      case 'actual_lrp_instance_created': {
        const lrp = item.event.actualLrp;
        const key = lrp?.actualLrpKey;
        if (lrp === undefined || key === undefined) return;
        table.setInstance(key.processGuid, key.index, lrp.presence, routableInstanceOfLrp(lrp));
        log.debug({ event: item.type, process_guid: key.processGuid, index: key.index, state: lrp.state }, 'route-event');
        return;
      }
      case 'actual_lrp_instance_changed': {
        const { actualLrpKey: key, actualLrpInstanceKey: instanceKey, before, after } = item.event;
        if (key === undefined || after === undefined) return;
        // A record that changed presence left its old slot.
        if (before !== undefined && before.presence !== after.presence) table.setInstance(key.processGuid, key.index, before.presence, undefined);
        table.setInstance(key.processGuid, key.index, after.presence, routableInstanceOf(key, instanceKey, after));
        log.debug({ event: item.type, process_guid: key.processGuid, index: key.index, state: after.state, routable: after.routable }, 'route-event');
        return;
      }
      case 'actual_lrp_instance_removed': {
        const lrp = item.event.actualLrp;
        const key = lrp?.actualLrpKey;
        if (lrp === undefined || key === undefined) return;
        table.setInstance(key.processGuid, key.index, lrp.presence, undefined);
        log.debug({ event: item.type, process_guid: key.processGuid, index: key.index }, 'route-event');
        return;
      }
      case 'actual_lrp_crashed': {
        const { actualLrpKey: key, actualLrpInstanceKey: instanceKey } = item.event;
        if (key === undefined) return;
        table.removeInstanceByGuid(key.processGuid, key.index, instanceKey?.instanceGuid ?? '');
        log.debug({ event: item.type, process_guid: key.processGuid, index: key.index }, 'route-event');
        return;
      }
    }
  }

  function receive(item: LrpInstanceEvent): void {
    if (held === undefined) return apply(item);
    if (heldOverflow) return;
    if (held.length >= options.maxHeldEvents) {
      heldOverflow = true;
      held = [];
      return;
    }
    held.push(item);
  }

  /** Applies what was held and stops holding; returns whether some were dropped. */
  function releaseHeld(): boolean {
    const events = held ?? [];
    const dropped = heldOverflow;
    held = undefined;
    heldOverflow = false;
    if (!dropped) for (const item of events) apply(item);
    return dropped;
  }

  /** One re-list with its retries; returns whether the table now holds a full list. */
  async function relistOnce(reason: string): Promise<boolean> {
    for (let attempt = 1; attempt <= options.relistAttempts; attempt++) {
      if (stopped) return false;
      const started = performance.now();
      held = [];
      heldOverflow = false;
      try {
        const callOptions = { signal: lifetime.signal, ...(options.listTimeoutMs === undefined ? {} : { timeoutMs: options.listTimeoutMs }) };
        const [infos, actuals] = await Promise.all([bbs.desiredLrpSchedulingInfos({}, callOptions), bbs.actualLrps({}, callOptions)]);
        if (stopped) return false;
        const desired = new Map<string, HttpRoute[]>();
        for (const info of infos) {
          const processGuid = info.desiredLrpKey?.processGuid;
          if (processGuid === undefined || processGuid === '') continue;
          const routes = routesOf(processGuid, info.routes);
          if (routes.length > 0) desired.set(processGuid, routes);
        }
        const instances = new Map<string, RoutableInstance[]>();
        for (const lrp of actuals) {
          const instance = routableInstanceOfLrp(lrp);
          const processGuid = lrp.actualLrpKey?.processGuid;
          if (instance === undefined || processGuid === undefined) continue;
          const list = instances.get(processGuid);
          if (list === undefined) instances.set(processGuid, [instance]);
          else list.push(instance);
        }
        table.replace(desired, instances);
        const applied = held.length;
        if (releaseHeld()) {
          log.warn({ reason, max_held_events: options.maxHeldEvents }, 'route-events-dropped-during-relist');
          relistAgain = true;
        }
        log.info(
          { reason, ...table.stats, desired_lrps: infos.length, actual_lrps: actuals.length, held_events: applied, duration_ms: Math.round(performance.now() - started) },
          'route-table-relisted',
        );
        markSynced?.resolve();
        return true;
      } catch (err) {
        // Events that came meanwhile are newer than the table: keep them.
        if (releaseHeld()) relistAgain = true;
        if (stopped) return false;
        log.warn({ reason, attempt, attempts: options.relistAttempts, err }, 'route-table-relist-failed');
        if (attempt < options.relistAttempts) await abortableSleep(options.relistRetryMs, lifetime.signal);
      }
    }
    return false;
  }

  function relist(reason: string): Promise<void> {
    if (relistInFlight !== undefined) {
      relistAgain = true;
      return relistInFlight;
    }
    relistInFlight = (async () => {
      try {
        for (let round = 0; round < MAX_RELIST_ROUNDS && !stopped; round++) {
          relistAgain = false;
          await relistOnce(round === 0 ? reason : `${reason}-again`);
          if (!relistAgain) break;
        }
      } finally {
        relistInFlight = undefined;
      }
    })();
    return relistInFlight;
  }

  /** Follows the instance events until stopped; a stream that gives up is replaced after a wait. */
  async function follow(): Promise<void> {
    // One turn per event stream; each stream lives until it gives up or the sync stops.
    while (!stopped) {
      const stream = bbs.watchInstanceEvents({ signal: lifetime.signal });
      stream.subscribed.then(
        () => void relist('subscribed'),
        () => undefined,
      );
      try {
        for await (const item of stream) {
          if (stopped) break;
          if (item.type === 'resubscribed') {
            log.info('route-event-stream-resubscribed');
            void relist('resubscribed');
            continue;
          }
          receive(item);
        }
      } catch (err) {
        if (!stopped) log.error({ err, restart_ms: options.watchRestartMs }, 'route-event-stream-gave-up');
      } finally {
        stream.close();
      }
      if (!stopped) await abortableSleep(options.watchRestartMs, lifetime.signal);
    }
  }

  const following = follow().catch((err: unknown) => log.error({ err }, 'route-sync-crashed'));
  const resync = setInterval(() => void relist('resync'), options.resyncIntervalMs);

  return {
    synced,
    relist,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(resync);
      lifetime.abort();
      markSynced?.reject(new Error('the route sync stopped before its first full list'));
      await following;
      await relistInFlight;
    },
  };
}
