// The nsync recipe builders: pure functions from Cloud Controller's desired app to the Diego
// DesiredLRP that runs it (on create) or the DesiredLRPUpdate that adjusts it (when the LRP
// already exists). The lifecycle decides the recipe; docker wins whenever CC names an image.
import type { DesireAppRequestFromCC } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { DesiredLRPUpdate, type DesiredLRP, type ProtoRoutes } from '../../../gen/diego/bbs/v1/desired_lrp.js';
import { buildpackRecipeBuilder } from './buildpack.js';
import type { RecipeConfig } from './config.js';
import type { RecipeBuilder } from './desired-lrp.js';
import { dockerRecipeBuilder } from './docker.js';
import { negativeInstances } from './errors.js';
import { routesWithCfRouter } from './routes.js';

export type Lifecycle = 'buildpack' | 'docker';

export const recipeBuilders: Readonly<Record<Lifecycle, RecipeBuilder>> = {
  buildpack: buildpackRecipeBuilder,
  docker: dockerRecipeBuilder,
};

export function lifecycleOf(app: DesireAppRequestFromCC): Lifecycle {
  return app.dockerImage !== '' ? 'docker' : 'buildpack';
}

/** The DesiredLRP to create for a desired app. Throws RecipeError for unfit input. */
export function desiredLrpFromDesireAppRequest(app: DesireAppRequestFromCC, config: RecipeConfig): DesiredLRP {
  return recipeBuilders[lifecycleOf(app)].build(app, config);
}

/** The port the app listens on: 8080 for buildpack apps, the image's first tcp port for docker. */
export function exposedPortFor(app: DesireAppRequestFromCC): number {
  return recipeBuilders[lifecycleOf(app)].exposedPort(app);
}

/**
 * The update for an app whose LRP exists (ccbridge-2015 §4.2): instances, the `cf-router` route
 * (every other router's key kept byte for byte, `diego-ssh` included, so SSH keys do not
 * rotate) and the etag as annotation. Nothing else is rebuilt: everything else about an LRP is
 * immutable, and CC changes the process guid when it changes. `config` is unused today; it
 * keeps the create and update builders callable alike.
 */
export function desiredLrpUpdateFromDesireAppRequest(
  app: DesireAppRequestFromCC,
  existingRoutes: ProtoRoutes | undefined,
  config: RecipeConfig,
): DesiredLRPUpdate {
  if (app.numInstances < 0) throw negativeInstances(app.numInstances);
  return DesiredLRPUpdate.fromPartial({
    instances: app.numInstances,
    routes: routesWithCfRouter(existingRoutes, app.routes, exposedPortFor(app)),
    annotation: app.etag,
  });
}

export { buildpackRecipeBuilder } from './buildpack.js';
export { checkRecipeConfig, joinUrl, lifecycleDownloadUrl, type RecipeConfig } from './config.js';
export * from './constants.js';
export { cpuWeightFor } from './cpu-weight.js';
export { fileDescriptorLimitFor, type LifecycleRecipe, type RecipeBuilder } from './desired-lrp.js';
export { egressRuleFor } from '../../shared/cc-to-diego.js';
export { dockerExecutionMetadataOf, dockerRecipeBuilder, exposedPortOf, type DockerExecutionMetadata } from './docker.js';
export { dockerRootfsUriFor } from './docker-image.js';
export * from './errors.js';
export { checkDefinitionFor, healthCheckFor, monitorActionFor, type HealthCheck } from './health-check.js';
export { cfRouterRouteJson, routesWithCfRouter } from './routes.js';
export {
  createSshKeyPairGenerator,
  generateSshKeyPair,
  md5Fingerprint,
  sshKeyPairFromPrivateKey,
  type SshKeyPair,
  type SshKeyPairGenerator,
  type SshKeyPairGeneratorOptions,
} from './ssh.js';
