// Evacuation, as the BBS does it (controllers/evacuation_controller.go): a cell that is shutting
// down keeps serving each running instance as an EVACUATING copy while the ORDINARY record goes
// back to UNCLAIMED and is placed elsewhere; the replacement's start removes the copy, and the
// draining cell learns from keep_container=false that it may stop its container.
import {
  ActualLRP,
  ActualLRP_Presence,
  type ActualLRPInstanceKey,
  type ActualLRPKey,
  type ActualLRPNetInfo,
} from '../../gen/diego/bbs/v1/actual_lrp.js';
import { DesiredLRP_UpdateStrategy } from '../../gen/diego/bbs/v1/desired_lrp.js';
import type { Logger } from '../../lib/log.js';
import {
  nextModificationTag,
  requestAuctionIn,
  sameInstance,
  sameKey,
  sameNetInfo,
  unclaimIn,
  type ActualLrpLifecycle,
  type RunningInstanceDetails,
} from './actual-lrp-lifecycle.js';
import { ActualLrpState, type Bbs, type BbsTransaction } from './bbs.js';
import { resourceNotFound } from './errors.js';

export interface EvacuationOptions {
  bbs: Bbs;
  lifecycle: ActualLrpLifecycle;
  logger: Logger;
}

export interface Evacuation {
  /** Returns keep_container. */
  evacuateClaimed(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, traceId: string): boolean;
  /** Returns keep_container: true while the cell should go on serving the instance. */
  evacuateRunning(
    key: ActualLRPKey,
    instanceKey: ActualLRPInstanceKey,
    netInfo: ActualLRPNetInfo,
    details: RunningInstanceDetails,
    traceId: string,
  ): boolean;
  evacuateCrashed(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, reason: string, traceId: string): void;
  evacuateStopped(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, traceId: string): void;
  removeEvacuating(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, traceId: string): void;
}

export function createEvacuation(options: EvacuationOptions): Evacuation {
  const { bbs, lifecycle } = options;
  const logger = options.logger.child({ session: 'evacuation' });

  const recordOf = (records: ActualLRP[], instanceKey: ActualLRPInstanceKey) =>
    records.find((lrp) => sameInstance(lrp.actualLrpInstanceKey, instanceKey));
  const withPresence = (records: ActualLRP[], presence: ActualLRP_Presence) => records.find((lrp) => lrp.presence === presence);

  /**
   * The shared first step of evacuate_claimed / crashed / stopped: the record the cell names must
   * exist; an evacuating copy is simply removed. Returns the ordinary record to act on, if any.
   */
  function removeEvacuatingOrFind(tx: BbsTransaction, key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, traceId: string) {
    const target = recordOf(tx.actualLrpsAt(key.processGuid, key.index), instanceKey);
    if (target === undefined) throw resourceNotFound();
    if (target.presence === ActualLRP_Presence.PRESENCE_EVACUATING) {
      tx.deleteActualLrp(target, traceId);
      return undefined;
    }
    return target;
  }

  /** Creates (or refreshes) the EVACUATING copy of an instance; the copy always reads RUNNING. */
  function evacuatingCopyIn(
    tx: BbsTransaction,
    key: ActualLRPKey,
    instanceKey: ActualLRPInstanceKey,
    netInfo: ActualLRPNetInfo | undefined,
    details: RunningInstanceDetails,
    traceId: string,
    emit: boolean,
  ): ActualLRP {
    const existing = tx.actualLrp(key.processGuid, key.index, ActualLRP_Presence.PRESENCE_EVACUATING);
    const fields = {
      actualLrpKey: { processGuid: key.processGuid, index: key.index, domain: key.domain },
      actualLrpInstanceKey: { instanceGuid: instanceKey.instanceGuid, cellId: instanceKey.cellId },
      actualLrpNetInfo: netInfo,
      since: tx.nowNs(),
    };
    if (existing === undefined) {
      const copy = ActualLRP.fromPartial({
        ...fields,
        state: ActualLrpState.RUNNING,
        modificationTag: { epoch: tx.newGuid(), index: 0 },
        presence: ActualLRP_Presence.PRESENCE_EVACUATING,
        actualLrpInternalRoutes: details.internalRoutes,
        metricTags: details.metricTags,
        routable: details.routable ?? true,
        availabilityZone: details.availabilityZone,
      });
      tx.insertActualLrp(copy, traceId, { emit });
      return copy;
    }
    if (
      sameKey(existing.actualLrpKey, key) &&
      sameInstance(existing.actualLrpInstanceKey, instanceKey) &&
      sameNetInfo(existing.actualLrpNetInfo, netInfo)
    ) {
      return existing;
    }
    const refreshed = { ...existing, ...fields, modificationTag: nextModificationTag(existing) };
    tx.replaceActualLrp(existing, refreshed, traceId, { emit });
    return refreshed;
  }

  const removeEvacuatingCopyIn = (tx: BbsTransaction, lrp: ActualLRP | undefined, traceId: string) => {
    if (lrp !== undefined && lrp.presence === ActualLRP_Presence.PRESENCE_EVACUATING) tx.deleteActualLrp(lrp, traceId);
  };

  const answer = <T>(work: (tx: BbsTransaction) => T): T => bbs.transaction(work);

  return {
    evacuateClaimed(key, instanceKey, traceId) {
      return answer((tx) => {
        const ordinary = removeEvacuatingOrFind(tx, key, instanceKey, traceId);
        if (ordinary === undefined) return false;
        unclaimIn(tx, ordinary, traceId);
        requestAuctionIn(tx, key);
        return false;
      });
    },

    evacuateRunning(key, instanceKey, netInfo, details, traceId) {
      return answer((tx) => {
        const records = tx.actualLrpsAt(key.processGuid, key.index);
        if (records.length === 0) return false;
        const target = recordOf(records, instanceKey);
        const ordinary = withPresence(records, ActualLRP_Presence.PRESENCE_ORDINARY);
        const replacementUp =
          ordinary !== undefined &&
          ordinary !== target &&
          (ordinary.state === ActualLrpState.RUNNING || ordinary.state === ActualLrpState.CRASHED);
        // No ordinary record: the desired LRP is gone. A running (or crashed) replacement: done.
        if (ordinary === undefined || replacementUp) {
          removeEvacuatingCopyIn(tx, target, traceId);
          return false;
        }
        const desired = tx.desiredLrp(key.processGuid);
        if (desired === undefined) {
          removeEvacuatingCopyIn(tx, target, traceId);
          return false;
        }

        if (desired.updateStrategy === DesiredLRP_UpdateStrategy.UPDATE_STRATEGY_RECREATE) {
          // Recreate: no evacuating copies; one instance at a time moves, and only while every
          // instance runs (UnclaimActualLRPIfAllRunning).
          if (target === undefined) return false;
          if (target.presence === ActualLRP_Presence.PRESENCE_EVACUATING) {
            tx.deleteActualLrp(target, traceId);
            return false;
          }
          if (target.state !== ActualLrpState.RUNNING && target.state !== ActualLrpState.CLAIMED) return false;
          // Not every instance runs yet: keep this one until they do.
          if (countRunningOrdinaryInstances(tx, key.processGuid, desired.instances) < desired.instances) return true;
          unclaimIn(tx, target, traceId);
          requestAuctionIn(tx, key);
          return false;
        }

        if (target === undefined || target.presence === ActualLRP_Presence.PRESENCE_EVACUATING) {
          const evacuating = withPresence(records, ActualLRP_Presence.PRESENCE_EVACUATING);
          if (evacuating !== undefined && evacuating !== target) {
            // Another cell already evacuates this index; one copy is all there may be.
            logger.info({ process_guid: key.processGuid, index: key.index }, 'already-evacuated-by-different-cell');
            return false;
          }
          // The replacement is requested already (or convergence will request it).
          evacuatingCopyIn(tx, key, instanceKey, netInfo, details, traceId, true);
          return true;
        }

        if (target.state === ActualLrpState.RUNNING || target.state === ActualLrpState.CLAIMED) {
          // The evacuation dance: the running instance becomes the EVACUATING copy (announced as
          // a change of that instance) and a fresh UNCLAIMED ordinary record is placed elsewhere
          // (announced as created), which keeps the instance event stream simple.
          const copy = evacuatingCopyIn(
            tx,
            target.actualLrpKey!,
            target.actualLrpInstanceKey!,
            target.actualLrpNetInfo,
            {
              internalRoutes: target.actualLrpInternalRoutes,
              metricTags: target.metricTags,
              routable: target.routable,
              availabilityZone: target.availabilityZone,
            },
            traceId,
            false,
          );
          tx.emitActualLrpChanged(target, copy, traceId);
          const replacement = unclaimIn(tx, target, traceId, false);
          tx.emitActualLrpCreated(replacement, traceId);
          requestAuctionIn(tx, key);
          logger.info({ process_guid: key.processGuid, index: key.index, cell_id: instanceKey.cellId }, 'actual-lrp-evacuating');
          return true;
        }
        return false;
      });
    },

    evacuateCrashed(key, instanceKey, reason, traceId) {
      answer((tx) => {
        const ordinary = removeEvacuatingOrFind(tx, key, instanceKey, traceId);
        if (ordinary !== undefined) lifecycle.crashIn(tx, ordinary, instanceKey, reason, traceId);
      });
    },

    evacuateStopped(key, instanceKey, traceId) {
      answer((tx) => {
        const ordinary = removeEvacuatingOrFind(tx, key, instanceKey, traceId);
        if (ordinary !== undefined) tx.deleteActualLrp(ordinary, traceId);
      });
    },

    removeEvacuating(key, instanceKey, traceId) {
      answer((tx) => {
        const target = recordOf(tx.actualLrpsAt(key.processGuid, key.index), instanceKey);
        if (target === undefined || target.presence !== ActualLRP_Presence.PRESENCE_EVACUATING) throw resourceNotFound();
        tx.deleteActualLrp(target, traceId);
      });
    },
  };
}

/** RUNNING ordinary instances of a process below its desired count. */
function countRunningOrdinaryInstances(tx: BbsTransaction, processGuid: string, instances: number): number {
  let running = 0;
  // Bounded by the desired instance count: one lookup per index.
  for (let index = 0; index < instances; index++) {
    if (tx.actualLrp(processGuid, index)?.state === ActualLrpState.RUNNING) running++;
  }
  return running;
}
