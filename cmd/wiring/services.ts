// Builds the bridge's services from their neighbours' clients. Every daemon — the all-in-one
// and each split one — assembles its services here, so they are wired the same way everywhere.
import { CcStatusError, type CcClient } from '../../clients/cc/client.js';
import type { BbsClient } from '../../clients/bbs/index.js';
import type { LogCacheClient } from '../../clients/logcache/client.js';
import { invalidArgument, unavailable } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { Registry } from '../../lib/metrics.js';
import { createBulker, type Bulker, type BulkerConfig, type BulkerRecipes } from '../../services/nsync/bulker.js';
import { createNsyncListener, type NsyncRecipes } from '../../services/nsync/listener.js';
import {
  desiredLrpFromDesireAppRequest,
  desiredLrpUpdateFromDesireAppRequest,
  isRecipeError,
  SshKeyGenerationError,
  type RecipeConfig,
} from '../../services/nsync/recipe/index.js';
import { createStagerService } from '../../services/stager/service.js';
import type { StagingRecipeConfig } from '../../services/stager/recipe/index.js';
import { createTpsService, type TpsConfig } from '../../services/tps/service.js';
import type { Outbox } from '../../services/tps/watcher/outbox.js';
import { createWatcher, type Watcher, type WatcherConfig } from '../../services/tps/watcher/watcher.js';
import { bulkerDiegoPort, nsyncDiegoPort, stagerDiegoPort, tpsDiegoPort, tpsInstanceEventsPort, watcherDiegoPort } from './diego-ports.js';

export function buildStager(deps: { bbs: BbsClient; cc: CcClient; recipe: StagingRecipeConfig; logger: Logger; metrics?: Registry }) {
  return createStagerService({
    diego: stagerDiegoPort(deps.bbs),
    cc: deps.cc,
    ccErrors: { statusOf: (error) => (error instanceof CcStatusError ? error.status : undefined) },
    recipe: deps.recipe,
    logger: deps.logger,
    metrics: deps.metrics,
  });
}

/** The nsync recipe builders behind the port the listener and bulker use: unfit apps are 400s. */
export function nsyncRecipes(config: RecipeConfig): NsyncRecipes & BulkerRecipes {
  const translate = <T>(build: () => T): T => {
    try {
      return build();
    } catch (error) {
      if (isRecipeError(error)) throw invalidArgument(error.reason, error.message);
      if (error instanceof SshKeyGenerationError) throw unavailable('SSH_KEY_GENERATION_FAILED', error.message);
      throw error;
    }
  };
  return {
    desiredLrpFor: (app) => translate(() => desiredLrpFromDesireAppRequest(app, config)),
    updateFor: (app, existing) => translate(() => desiredLrpUpdateFromDesireAppRequest(app, existing.routes, config)),
  };
}

export function buildNsyncListener(deps: { bbs: BbsClient; recipe: RecipeConfig; logger: Logger; metrics?: Registry }) {
  return createNsyncListener({ diego: nsyncDiegoPort(deps.bbs), recipes: nsyncRecipes(deps.recipe), logger: deps.logger, metrics: deps.metrics });
}

export function buildBulker(deps: {
  bbs: BbsClient;
  cc: CcClient;
  recipe: RecipeConfig;
  logger: Logger;
  config?: Partial<BulkerConfig>;
  bbsTimeoutMs?: number;
  metrics?: Registry;
}): Bulker {
  return createBulker({
    diego: bulkerDiegoPort(deps.bbs, deps.bbsTimeoutMs),
    cc: deps.cc,
    recipes: nsyncRecipes(deps.recipe),
    logger: deps.logger,
    config: deps.config,
    metrics: deps.metrics,
  });
}

export function buildTps(deps: { bbs: BbsClient; logCache: LogCacheClient; logger: Logger; config?: Partial<TpsConfig>; resubscribePauseMs?: number }) {
  return createTpsService({
    diego: tpsDiegoPort(deps.bbs),
    metrics: deps.logCache,
    events: tpsInstanceEventsPort(deps.bbs, deps.logger, deps.resubscribePauseMs),
    logger: deps.logger,
    config: deps.config,
  });
}

export function buildWatcher(deps: {
  bbs: BbsClient;
  cc: CcClient;
  outbox: Outbox;
  logger: Logger;
  config?: Partial<WatcherConfig>;
  resubscribePauseMs?: number;
  metrics?: Registry;
}): Watcher {
  return createWatcher({
    diego: watcherDiegoPort(deps.bbs, deps.logger, deps.resubscribePauseMs),
    cc: deps.cc,
    outbox: deps.outbox,
    logger: deps.logger,
    config: deps.config,
    metrics: deps.metrics,
  });
}
