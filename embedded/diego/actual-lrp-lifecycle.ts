// The cell-side life of an instance, with the BBS's rules (controllers/actual_lrp_lifecycle_controller.go,
// db/sqldb/actual_lrp_db.go, models/actual_lrp.go): claim, start, crash, fail, remove, and the
// unclaim that evacuation and convergence use. Each operation is one transaction; its events and
// auction requests go out after commit.
import {
  ActualLRP,
  ActualLRP_Presence,
  ActualLRPNetInfo,
  type ActualLRPInstanceKey,
  type ActualLRPInternalRoute,
  type ActualLRPKey,
} from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { Logger } from '../../lib/log.js';
import { ActualLrpState, type Bbs, type BbsTransaction } from './bbs.js';
import {
  actualLrpCannotBeClaimed,
  actualLrpCannotBeCrashed,
  actualLrpCannotBeFailed,
  actualLrpCannotBeStarted,
  actualLrpCannotBeUnclaimed,
  resourceNotFound,
} from './errors.js';
import { restartsImmediately, type RestartPolicy } from './restart-policy.js';
import { schedulingInfoOf } from './store/desired-lrps.js';

/** The BBS stores at most this many bytes of a crash reason or placement error. */
const MAXIMUM_REASON_BYTES = 1024;

/** What a running instance reports besides its address (StartActualLRPRequest fields 4-7). */
export interface RunningInstanceDetails {
  internalRoutes: ActualLRPInternalRoute[];
  metricTags: { [key: string]: string };
  /** Unset (an older rep) counts as routable, as in the BBS. */
  routable?: boolean;
  availabilityZone: string;
}

export interface ActualLrpLifecycleOptions {
  bbs: Bbs;
  restartPolicy: RestartPolicy;
  /** An instance RUNNING longer than this before it crashes starts counting crashes again at 1. */
  crashResetMs: number;
  logger: Logger;
}

export interface ActualLrpLifecycle {
  claim(processGuid: string, index: number, instanceKey: ActualLRPInstanceKey, traceId: string): void;
  start(
    key: ActualLRPKey,
    instanceKey: ActualLRPInstanceKey,
    netInfo: ActualLRPNetInfo,
    details: RunningInstanceDetails,
    traceId: string,
  ): void;
  crash(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, reason: string, traceId: string): void;
  fail(key: ActualLRPKey, placementError: string, traceId: string): void;
  remove(processGuid: string, index: number, instanceKey: ActualLRPInstanceKey | undefined, traceId: string): void;
  /** Crash rules inside a caller's transaction (evacuate_crashed). */
  crashIn(tx: BbsTransaction, before: ActualLRP, instanceKey: ActualLRPInstanceKey, reason: string, traceId: string): void;
}

// ------------------------------------------------------------------ shared helpers

export const emptyInstanceKey = (): ActualLRPInstanceKey => ({ instanceGuid: '', cellId: '' });

export const emptyNetInfo = (): ActualLRPNetInfo => ActualLRPNetInfo.fromPartial({});

export function sameKey(a: ActualLRPKey | undefined, b: ActualLRPKey | undefined): boolean {
  return (
    (a?.processGuid ?? '') === (b?.processGuid ?? '') && (a?.index ?? 0) === (b?.index ?? 0) && (a?.domain ?? '') === (b?.domain ?? '')
  );
}

export function sameInstance(a: ActualLRPInstanceKey | undefined, b: ActualLRPInstanceKey | undefined): boolean {
  return (a?.instanceGuid ?? '') === (b?.instanceGuid ?? '') && (a?.cellId ?? '') === (b?.cellId ?? '');
}

const isEmptyInstance = (key: ActualLRPInstanceKey | undefined) => sameInstance(key, emptyInstanceKey());

export function sameNetInfo(a: ActualLRPNetInfo | undefined, b: ActualLRPNetInfo | undefined): boolean {
  return Buffer.from(ActualLRPNetInfo.encode(a ?? emptyNetInfo()).finish()).equals(
    Buffer.from(ActualLRPNetInfo.encode(b ?? emptyNetInfo()).finish()),
  );
}

export function nextModificationTag(lrp: ActualLRP): ActualLRP['modificationTag'] {
  const tag = lrp.modificationTag ?? { epoch: '', index: 0 };
  return { epoch: tag.epoch, index: tag.index + 1 };
}

export function truncateReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  return bytes.length <= MAXIMUM_REASON_BYTES ? reason : bytes.subarray(0, MAXIMUM_REASON_BYTES).toString('utf8');
}

/**
 * The BBS's transition table (ActualLRP.AllowsTransitionTo): which state an instance may move to,
 * and which of those moves need the instance key it holds.
 */
export function allowsTransitionTo(
  before: ActualLRP,
  key: ActualLRPKey | undefined,
  instanceKey: ActualLRPInstanceKey,
  to: string,
): boolean {
  if (!sameKey(before.actualLrpKey, key)) return false;
  const same = sameInstance(before.actualLrpInstanceKey, instanceKey);
  const unclaiming = to === ActualLrpState.UNCLAIMED && isEmptyInstance(instanceKey);
  switch (before.state) {
    case ActualLrpState.UNCLAIMED:
      return to === ActualLrpState.UNCLAIMED || to === ActualLrpState.CLAIMED || to === ActualLrpState.RUNNING;
    case ActualLrpState.CLAIMED:
      return unclaiming || (to === ActualLrpState.CLAIMED && same) || to === ActualLrpState.RUNNING || (to === ActualLrpState.CRASHED && same);
    case ActualLrpState.RUNNING:
      return (
        unclaiming ||
        (to === ActualLrpState.CLAIMED && same) ||
        (to === ActualLrpState.RUNNING && same) ||
        (to === ActualLrpState.CRASHED && same)
      );
    case ActualLrpState.CRASHED:
      return unclaiming || (to === ActualLrpState.CLAIMED && same) || (to === ActualLrpState.RUNNING && same);
    default:
      return false;
  }
}

/** Back to UNCLAIMED, no cell, no address; crash count and reason stay (UnclaimActualLRP). */
export function unclaimIn(tx: BbsTransaction, lrp: ActualLRP, traceId: string, emit = true): ActualLRP {
  if (lrp.state === ActualLrpState.UNCLAIMED) throw actualLrpCannotBeUnclaimed();
  const after: ActualLRP = {
    ...lrp,
    state: ActualLrpState.UNCLAIMED,
    actualLrpInstanceKey: emptyInstanceKey(),
    actualLrpNetInfo: emptyNetInfo(),
    routable: false,
    since: tx.nowNs(),
    modificationTag: nextModificationTag(lrp),
  };
  tx.replaceActualLrp(lrp, after, traceId, { emit });
  return after;
}

/** Asks for a placement of one index, when its desired LRP still exists. */
export function requestAuctionIn(tx: BbsTransaction, key: ActualLRPKey): void {
  const desired = tx.desiredLrp(key.processGuid);
  if (desired !== undefined) tx.requestLrpAuctions(schedulingInfoOf(desired), [key.index]);
}

// ------------------------------------------------------------------ the lifecycle

export function createActualLrpLifecycle(options: ActualLrpLifecycleOptions): ActualLrpLifecycle {
  const { bbs, restartPolicy } = options;
  const logger = options.logger.child({ session: 'actual-lrp-lifecycle' });
  const crashResetNs = BigInt(Math.round(options.crashResetMs * 1_000_000));

  const ordinaryOrThrow = (tx: BbsTransaction, processGuid: string, index: number) => {
    const lrp = tx.actualLrp(processGuid, index);
    if (lrp === undefined) throw resourceNotFound();
    return lrp;
  };

  function crashIn(tx: BbsTransaction, before: ActualLRP, instanceKey: ActualLRPInstanceKey, reason: string, traceId: string) {
    const now = tx.nowNs();
    // A crash after a long healthy run is a first crash again (models.CrashResetTimeout).
    const ranLong = before.state === ActualLrpState.RUNNING && BigInt(now) - BigInt(before.since || '0') > crashResetNs;
    const crashCount = ranLong ? 1 : before.crashCount + 1;
    if (!allowsTransitionTo(before, before.actualLrpKey, instanceKey, ActualLrpState.CRASHED)) {
      throw actualLrpCannotBeCrashed();
    }
    const restartNow = restartsImmediately(restartPolicy, crashCount);
    const after: ActualLRP = {
      ...before,
      state: restartNow ? ActualLrpState.UNCLAIMED : ActualLrpState.CRASHED,
      actualLrpInstanceKey: emptyInstanceKey(),
      actualLrpNetInfo: emptyNetInfo(),
      routable: false,
      crashCount,
      crashReason: truncateReason(reason),
      since: now,
      modificationTag: nextModificationTag(before),
    };
    tx.replaceActualLrp(before, after, traceId);
    tx.emitActualLrpCrashed(before, after);
    if (restartNow) requestAuctionIn(tx, after.actualLrpKey!);
    logger.info(
      {
        process_guid: after.actualLrpKey?.processGuid,
        index: after.actualLrpKey?.index,
        crash_count: crashCount,
        restarting: restartNow,
      },
      'actual-lrp-crashed',
    );
  }

  return {
    claim(processGuid, index, instanceKey, traceId) {
      bbs.transaction((tx) => {
        const before = ordinaryOrThrow(tx, processGuid, index);
        if (!allowsTransitionTo(before, before.actualLrpKey, instanceKey, ActualLrpState.CLAIMED)) {
          throw actualLrpCannotBeClaimed();
        }
        // Claiming again what one already holds changes nothing and says nothing.
        if (before.state === ActualLrpState.CLAIMED && sameInstance(before.actualLrpInstanceKey, instanceKey)) return;
        tx.replaceActualLrp(
          before,
          {
            ...before,
            state: ActualLrpState.CLAIMED,
            actualLrpInstanceKey: { instanceGuid: instanceKey.instanceGuid, cellId: instanceKey.cellId },
            actualLrpNetInfo: emptyNetInfo(),
            placementError: '',
            routable: false,
            since: tx.nowNs(),
            modificationTag: nextModificationTag(before),
          },
          traceId,
        );
      });
    },

    start(key, instanceKey, netInfo, details, traceId) {
      bbs.transaction((tx) => {
        const records = tx.actualLrpsAt(key.processGuid, key.index);
        const ordinary = records.find((lrp) => lrp.presence === ActualLRP_Presence.PRESENCE_ORDINARY);
        const evacuating = records.find((lrp) => lrp.presence === ActualLRP_Presence.PRESENCE_EVACUATING);
        const running = {
          actualLrpInstanceKey: { instanceGuid: instanceKey.instanceGuid, cellId: instanceKey.cellId },
          actualLrpNetInfo: netInfo,
          actualLrpInternalRoutes: details.internalRoutes,
          metricTags: details.metricTags,
          routable: details.routable ?? true,
          availabilityZone: details.availabilityZone,
          state: ActualLrpState.RUNNING,
          placementError: '',
          since: tx.nowNs(),
        };
        if (ordinary === undefined) {
          // A cell reports an instance the BBS does not know (lost or never recorded): record it.
          tx.insertActualLrp(
            ActualLRP.fromPartial({
              ...running,
              actualLrpKey: { processGuid: key.processGuid, index: key.index, domain: key.domain },
              modificationTag: { epoch: tx.newGuid(), index: 0 },
              presence: ActualLRP_Presence.PRESENCE_ORDINARY,
            }),
            traceId,
          );
        } else {
          const unchanged =
            ordinary.state === ActualLrpState.RUNNING &&
            sameKey(ordinary.actualLrpKey, key) &&
            sameInstance(ordinary.actualLrpInstanceKey, instanceKey) &&
            sameNetInfo(ordinary.actualLrpNetInfo, netInfo) &&
            ordinary.routable === running.routable;
          if (!unchanged) {
            if (!allowsTransitionTo(ordinary, key, instanceKey, ActualLrpState.RUNNING)) throw actualLrpCannotBeStarted();
            tx.replaceActualLrp(ordinary, { ...ordinary, ...running, modificationTag: nextModificationTag(ordinary) }, traceId);
          }
        }
        // The replacement runs: the evacuating copy it replaces is no longer needed.
        if (evacuating !== undefined) tx.deleteActualLrp(evacuating, traceId);
      });
    },

    crash(key, instanceKey, reason, traceId) {
      bbs.transaction((tx) => crashIn(tx, ordinaryOrThrow(tx, key.processGuid, key.index), instanceKey, reason, traceId));
    },

    fail(key, placementError, traceId) {
      bbs.transaction((tx) => {
        const before = ordinaryOrThrow(tx, key.processGuid, key.index);
        if (before.state !== ActualLrpState.UNCLAIMED) throw actualLrpCannotBeFailed();
        tx.replaceActualLrp(
          before,
          {
            ...before,
            placementError: truncateReason(placementError),
            since: tx.nowNs(),
            modificationTag: nextModificationTag(before),
          },
          traceId,
        );
      });
    },

    remove(processGuid, index, instanceKey, traceId) {
      bbs.transaction((tx) => {
        const lrp = tx.actualLrp(processGuid, index);
        if (lrp === undefined || (instanceKey !== undefined && !sameInstance(lrp.actualLrpInstanceKey, instanceKey))) {
          throw resourceNotFound();
        }
        tx.deleteActualLrp(lrp, traceId);
      });
    },

    crashIn,
  };
}
