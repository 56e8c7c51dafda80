// NsyncService: CC's desire / stop / kill-index requests → Diego desired LRPs (the 2015 nsync
// listener). Desire creates the LRP or updates the one that exists; a lost race is retried once,
// and a second loss is 409, as the original answered.
import { Status, type CallContext } from 'nice-grpc';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { NsyncServiceImplementation } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import type { ActualLRPKey } from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { DesiredLRP, DesiredLRPUpdate } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { BridgeError, invalidArgument, notFound, unavailable } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { Counter, type Registry } from '../../lib/metrics.js';

/** The app domain every LRP of CC's lives in. */
export const APPS_DOMAIN = 'cf-apps';

/** What a Diego write reports when it lost a race with another writer. */
export type WriteOutcome = 'ok' | 'conflict';

/** What the listener needs from Diego; adapters translate the BBS's errors into these outcomes. */
export interface NsyncDiego {
  /** The desired LRP, or undefined when it does not exist. */
  desiredLrpByProcessGuid(processGuid: string, requestId?: string): Promise<DesiredLRP | undefined>;
  /** 'conflict' when it already exists. */
  desireLrp(lrp: DesiredLRP, requestId?: string): Promise<WriteOutcome>;
  /** 'conflict' when it was changed or removed meanwhile. */
  updateDesiredLrp(processGuid: string, update: DesiredLRPUpdate, requestId?: string): Promise<WriteOutcome>;
  /** false when there was no such LRP. */
  removeDesiredLrp(processGuid: string, requestId?: string): Promise<boolean>;
  /** false when there was no such instance. */
  retireActualLrp(key: ActualLRPKey, requestId?: string): Promise<boolean>;
}

/** The recipe builders, as the listener uses them (services/nsync/recipe). */
export interface NsyncRecipes {
  /** Throws a BridgeError (INVALID_ARGUMENT) for an app that cannot be built. */
  desiredLrpFor(app: DesireAppRequestFromCC): DesiredLRP;
  /** The in-place update for an LRP that exists: instances, routes (other routers' kept), annotation. */
  updateFor(app: DesireAppRequestFromCC, existing: DesiredLRP): DesiredLRPUpdate;
}

export interface NsyncListenerDependencies {
  diego: NsyncDiego;
  recipes: NsyncRecipes;
  logger: Logger;
  metrics?: Registry;
}

const ATTEMPTS = 2;

export function createNsyncListener(deps: NsyncListenerDependencies): NsyncServiceImplementation {
  const log = deps.logger.child({ session: 'nsync-listener' });
  const desired = new Counter({
    name: 'ccbridge_nsync_lrps_desired_total',
    help: 'Desire requests that created or updated a desired LRP',
    registers: deps.metrics ? [deps.metrics] : [],
  });

  return {
    async desireApp(request, context) {
      const requestId = requestIdOf(context);
      const app = request.app;
      if (!app) throw invalidArgument('MISSING_BODY', 'missing desired app');
      if (request.processGuid === '') throw invalidArgument('MISSING_PROCESS_GUID', 'process_guid is empty');
      if (app.processGuid !== request.processGuid) {
        throw invalidArgument('PROCESS_GUID_MISMATCH', `process_guid ${app.processGuid} in the body differs from ${request.processGuid} in the path`);
      }
      const session = log.child({ process_guid: request.processGuid, request_id: requestId });
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        let existing: DesiredLRP | undefined;
        try {
          existing = await deps.diego.desiredLrpByProcessGuid(request.processGuid, requestId);
        } catch (error) {
          session.error({ err: error }, 'failed-fetching-desired-lrp');
          throw unavailable('DIEGO_UNAVAILABLE', 'failed to read the desired LRP');
        }
        let outcome: WriteOutcome;
        try {
          if (existing) {
            session.debug({ attempt }, 'updating-desired-lrp');
            outcome = await deps.diego.updateDesiredLrp(request.processGuid, deps.recipes.updateFor(app, existing), requestId);
          } else {
            session.debug({ attempt }, 'desiring-lrp');
            outcome = await deps.diego.desireLrp(deps.recipes.desiredLrpFor(app), requestId);
          }
        } catch (error) {
          if (error instanceof BridgeError) {
            session.info({ reason: error.reason, message: error.message }, 'invalid-desired-app');
            throw error;
          }
          session.error({ err: error }, 'failed-desiring-lrp');
          throw unavailable('DIEGO_UNAVAILABLE', 'failed to desire the LRP');
        }
        if (outcome === 'ok') {
          desired.inc();
          return {};
        }
        session.info({ attempt }, 'lost-a-race');
      }
      throw new BridgeError(Status.ALREADY_EXISTS, 'CONFLICT', 'the desired LRP changed while it was being desired');
    },

    async stopApp(request, context) {
      if (request.processGuid === '') throw invalidArgument('MISSING_PROCESS_GUID', 'process_guid is empty');
      let removed: boolean;
      try {
        removed = await deps.diego.removeDesiredLrp(request.processGuid, requestIdOf(context));
      } catch (error) {
        log.error({ err: error, process_guid: request.processGuid }, 'failed-removing-desired-lrp');
        throw unavailable('DIEGO_UNAVAILABLE', 'failed to remove the desired LRP');
      }
      if (!removed) throw notFound('DESIRED_LRP_NOT_FOUND', `desired LRP ${request.processGuid} not found`);
      return {};
    },

    async killIndex(request, context) {
      if (request.processGuid === '') throw invalidArgument('MISSING_PROCESS_GUID', 'process_guid is empty');
      if (!/^\d+$/.test(request.index) || Number(request.index) > 2 ** 31 - 1) {
        throw invalidArgument('INVALID_INDEX', `index ${JSON.stringify(request.index)} is not a non-negative integer`);
      }
      const key: ActualLRPKey = { processGuid: request.processGuid, index: Number(request.index), domain: APPS_DOMAIN };
      let retired: boolean;
      try {
        retired = await deps.diego.retireActualLrp(key, requestIdOf(context));
      } catch (error) {
        log.error({ err: error, process_guid: request.processGuid, index: key.index }, 'failed-retiring-actual-lrp');
        throw unavailable('DIEGO_UNAVAILABLE', 'failed to stop the instance');
      }
      if (!retired) throw notFound('INDEX_NOT_FOUND', `no instance ${key.index} of ${request.processGuid}`);
      return {};
    },
  };
}

function requestIdOf(context: CallContext): string | undefined {
  return context.metadata.get('x-vcap-request-id');
}
