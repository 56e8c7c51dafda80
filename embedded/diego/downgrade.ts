// The .r2 read routes predate image layers: the BBS rewrites them into what an r2 reader
// understands (models/image_layer.go, desired_lrp.go downgradeDesiredLRPV3ToV2, task.go
// downgradeTaskDefinitionV3ToV2):
//   - SHARED layers become cached dependencies, placed before the existing ones; the checksum
//     algorithm is the lower-case enum name ("sha256"), and the cache key is
//     "<algorithm>:<digest>", or the URL when the layer has no digest;
//   - EXCLUSIVE layers become download actions (user = legacy_download_user, cache key
//     "<algorithm>:<digest>") run in parallel before the LRP's setup (or the task's action):
//     serial(parallel(downloads), existing), or just parallel(downloads) when there was none;
//   - image_layers is cleared.
import type { Action, DownloadAction } from '../../gen/diego/bbs/v1/actions.js';
import {
  ImageLayer_DigestAlgorithm,
  ImageLayer_Type,
  type CachedDependency,
  type ImageLayer,
} from '../../gen/diego/bbs/v1/container.js';
import type { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import type { Task, TaskDefinition } from '../../gen/diego/bbs/v1/task.js';

function digestAlgorithmName(algorithm: ImageLayer_DigestAlgorithm): string {
  switch (algorithm) {
    case ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_SHA256:
      return 'sha256';
    case ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_SHA512:
      return 'sha512';
    default:
      return '';
  }
}

export function imageLayersToCachedDependencies(layers: readonly ImageLayer[]): CachedDependency[] {
  return layers
    .filter((layer) => layer.layerType === ImageLayer_Type.TYPE_SHARED)
    .map((layer) => {
      const checksumAlgorithm = digestAlgorithmName(layer.digestAlgorithm);
      return {
        name: layer.name,
        from: layer.url,
        to: layer.destinationPath,
        cacheKey: layer.digestValue === '' ? layer.url : `${checksumAlgorithm}:${layer.digestValue}`,
        logSource: '',
        checksumAlgorithm,
        checksumValue: layer.digestValue,
      };
    });
}

function emptyAction(): Action {
  return {
    downloadAction: undefined,
    uploadAction: undefined,
    runAction: undefined,
    timeoutAction: undefined,
    emitProgressAction: undefined,
    tryAction: undefined,
    parallelAction: undefined,
    serialAction: undefined,
    codependentAction: undefined,
  };
}

/** The action an r2 reader runs: exclusive-layer downloads first, then the existing action. */
export function imageLayersToDownloadActions(
  layers: readonly ImageLayer[],
  legacyDownloadUser: string,
  existing: Action | undefined,
): Action | undefined {
  const downloads: Action[] = layers
    .filter((layer) => layer.layerType === ImageLayer_Type.TYPE_EXCLUSIVE)
    .map((layer) => {
      const algorithm = digestAlgorithmName(layer.digestAlgorithm);
      const download: DownloadAction = {
        artifact: layer.name,
        from: layer.url,
        to: layer.destinationPath,
        cacheKey: `${algorithm}:${layer.digestValue}`,
        logSource: '',
        user: legacyDownloadUser,
        checksumAlgorithm: algorithm,
        checksumValue: layer.digestValue,
      };
      return { ...emptyAction(), downloadAction: download };
    });
  if (downloads.length === 0) return existing;
  const parallel: Action = { ...emptyAction(), parallelAction: { actions: downloads, logSource: '' } };
  if (existing === undefined) return parallel;
  return { ...emptyAction(), serialAction: { actions: [parallel, existing], logSource: '' } };
}

/** True when the r2 form differs from the stored (r3) form, i.e. there are image layers. */
export const needsDowngrade = (imageLayers: readonly ImageLayer[]): boolean => imageLayers.length > 0;

export function desiredLrpToR2(lrp: DesiredLRP): DesiredLRP {
  return {
    ...lrp,
    cachedDependencies: [...imageLayersToCachedDependencies(lrp.imageLayers), ...lrp.cachedDependencies],
    setup: imageLayersToDownloadActions(lrp.imageLayers, lrp.legacyDownloadUser, lrp.setup),
    imageLayers: [],
  };
}

export function taskDefinitionToR2(definition: TaskDefinition): TaskDefinition {
  return {
    ...definition,
    cachedDependencies: [
      ...imageLayersToCachedDependencies(definition.imageLayers),
      ...definition.cachedDependencies,
    ],
    action: imageLayersToDownloadActions(definition.imageLayers, definition.legacyDownloadUser, definition.action),
    imageLayers: [],
  };
}

export function taskToR2(task: Task): Task {
  return task.taskDefinition === undefined ? task : { ...task, taskDefinition: taskDefinitionToR2(task.taskDefinition) };
}
