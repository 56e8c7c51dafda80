// Adapters from the BBS client to the ports each service declares: the BBS's errors become the
// outcomes the services reason about (exists, not found, lost a race). Only the composition
// root builds these.
import {
  abortableSleep,
  BbsInvalidRequestError,
  BbsResourceConflictError,
  BbsResourceExistsError,
  BbsResourceNotFoundError,
  type BbsClient,
} from '../../clients/bbs/index.js';
import type { LrpInstanceEvent } from '../../clients/bbs/sse.js';
import type { ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { ActualLRPInfo } from '../../gen/diego/bbs/v1/events.js';
import type { BulkerDiego } from '../../services/nsync/bulker.js';
import type { NsyncDiego, WriteOutcome } from '../../services/nsync/listener.js';
import type { StagerDiego } from '../../services/stager/service.js';
import type { InstanceEvent, TpsDiego, TpsInstanceEvents } from '../../services/tps/service.js';
import type { WatcherDiego, WatcherEvent } from '../../services/tps/watcher/watcher.js';
import { invalidArgument } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';

async function orUndefinedWhenMissing<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof BbsResourceNotFoundError) return undefined;
    throw error;
  }
}

/**
 * A write that lost a race with another writer (exists already, changed, or gone) is a
 * conflict; one the BBS refuses as invalid is the desired app's fault, a 400 (as today's CC
 * treats it: counted as invalid, never a reason to hold back freshness).
 */
async function outcomeOf(call: Promise<void>, raced: (error: unknown) => boolean): Promise<WriteOutcome> {
  try {
    await call;
    return 'ok';
  } catch (error) {
    if (raced(error)) return 'conflict';
    if (error instanceof BbsInvalidRequestError) throw invalidArgument('DIEGO_REFUSED_LRP', error.message);
    throw error;
  }
}

async function falseWhenMissing(call: Promise<void>): Promise<boolean> {
  return (await orUndefinedWhenMissing(call.then(() => true))) ?? false;
}

const existsOrConflict = (e: unknown) => e instanceof BbsResourceExistsError || e instanceof BbsResourceConflictError;
const changedOrGone = (e: unknown) => e instanceof BbsResourceConflictError || e instanceof BbsResourceNotFoundError;

export function stagerDiegoPort(bbs: BbsClient): StagerDiego {
  return {
    async desireTask(task, requestId) {
      try {
        await bbs.desireTask(task.taskGuid, task.domain, task.taskDefinition, { requestId });
        return 'created';
      } catch (error) {
        if (error instanceof BbsResourceExistsError) return 'exists';
        throw error;
      }
    },
    taskByGuid: (taskGuid, requestId) => orUndefinedWhenMissing(bbs.taskByGuid(taskGuid, { requestId })),
    cancelTask: (taskGuid, requestId) => bbs.cancelTask(taskGuid, { requestId }),
  };
}

export function nsyncDiegoPort(bbs: BbsClient): NsyncDiego {
  return {
    desiredLrpByProcessGuid: (guid, requestId) => orUndefinedWhenMissing(bbs.desiredLrpByProcessGuid(guid, { requestId })),
    desireLrp: (lrp, requestId) => outcomeOf(bbs.desireLrp(lrp, { requestId }), existsOrConflict),
    updateDesiredLrp: (guid, update, requestId) => outcomeOf(bbs.updateDesiredLrp(guid, update, { requestId }), changedOrGone),
    removeDesiredLrp: (guid, requestId) => falseWhenMissing(bbs.removeDesiredLrp(guid, { requestId })),
    retireActualLrp: (key, requestId) => falseWhenMissing(bbs.retireActualLrp(key, { requestId })),
  };
}

export function bulkerDiegoPort(bbs: BbsClient, timeoutMs?: number): BulkerDiego {
  return {
    async desiredLrpFingerprints(domain, signal) {
      const infos = await bbs.desiredLrpSchedulingInfos({ domain }, { signal, timeoutMs });
      return infos.map((info) => ({
        processGuid: info.desiredLrpKey?.processGuid ?? '',
        annotation: info.annotation,
        existing: () => ({ routes: info.routes }),
      }));
    },
    desireLrp: (lrp) => outcomeOf(bbs.desireLrp(lrp, { timeoutMs }), existsOrConflict),
    updateDesiredLrp: (guid, update) => outcomeOf(bbs.updateDesiredLrp(guid, update, { timeoutMs }), changedOrGone),
    removeDesiredLrp: (guid) => falseWhenMissing(bbs.removeDesiredLrp(guid, { timeoutMs })),
    upsertDomain: (domain, ttlSeconds) => bbs.upsertDomain(domain, ttlSeconds, { timeoutMs }),
  };
}

export function tpsDiegoPort(bbs: BbsClient): TpsDiego {
  return {
    actualLrpsByProcessGuid: (processGuid, requestId) => bbs.actualLrps({ processGuid }, { requestId }),
    actualLrpsByProcessGuids: (guids, requestId) => bbs.actualLrpsByProcessGuids(guids, { requestId }),
    async logGuidOf(processGuid, requestId) {
      return (await orUndefinedWhenMissing(bbs.desiredLrpByProcessGuid(processGuid, { requestId })))?.logGuid;
    },
  };
}

/**
 * Instance events that never end while the signal is live: when the client's resubscribing
 * stream gives up, a fresh one is opened after a pause, marked as a resubscription.
 */
async function* everlastingInstanceEvents(bbs: BbsClient, signal: AbortSignal, log: Logger, pauseMs: number): AsyncGenerator<WatcherEvent> {
  let first = true;
  while (!signal.aborted) {
    const stream = bbs.watchInstanceEvents({ signal });
    if (!first) yield { type: 'resubscribed' };
    first = false;
    try {
      for await (const event of stream) yield event as WatcherEvent;
    } catch (error) {
      if (!signal.aborted) log.error({ err: error }, 'instance-event-stream-failed');
    } finally {
      stream.close();
    }
    if (!signal.aborted) await abortableSleep(pauseMs, signal);
  }
}

export function watcherDiegoPort(bbs: BbsClient, log: Logger, pauseMs = 1_000): WatcherDiego {
  return {
    subscribe: (signal) => everlastingInstanceEvents(bbs, signal, log, pauseMs),
    actualLrps: (domain, signal) => bbs.actualLrps({ domain }, { signal }),
  };
}

/** An instance-changed event carries the key, the instance key and the info after the change. */
function actualFromChange(event: Extract<LrpInstanceEvent, { type: 'actual_lrp_instance_changed' }>['event']): ActualLRP {
  const after: Partial<ActualLRPInfo> = event.after ?? {};
  return {
    actualLrpKey: event.actualLrpKey,
    actualLrpInstanceKey: event.actualLrpInstanceKey,
    actualLrpNetInfo: after.actualLrpNetInfo,
    crashCount: after.crashCount ?? 0,
    crashReason: after.crashReason ?? '',
    state: after.state ?? '',
    placementError: after.placementError ?? '',
    since: after.since ?? '0',
    modificationTag: after.modificationTag,
    presence: after.presence ?? 0,
    actualLrpInternalRoutes: [],
    metricTags: {},
    routable: after.routable,
    availabilityZone: after.availabilityZone ?? '',
  };
}

export function tpsInstanceEventsPort(bbs: BbsClient, log: Logger, pauseMs = 1_000): TpsInstanceEvents {
  return {
    async *subscribe(signal) {
      for await (const event of everlastingInstanceEvents(bbs, signal, log, pauseMs)) {
        const mapped = instanceEventOf(event);
        if (mapped) yield mapped;
      }
    },
  };
}

function instanceEventOf(event: WatcherEvent): InstanceEvent | undefined {
  switch (event.type) {
    case 'resubscribed':
      return { kind: 'resubscribed' };
    case 'actual_lrp_instance_created':
      return event.event.actualLrp ? { kind: 'created', actual: event.event.actualLrp } : undefined;
    case 'actual_lrp_instance_removed':
      return event.event.actualLrp ? { kind: 'removed', actual: event.event.actualLrp } : undefined;
    case 'actual_lrp_instance_changed':
      return { kind: 'changed', actual: actualFromChange(event.event) };
    default:
      return undefined;
  }
}
