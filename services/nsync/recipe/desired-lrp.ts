// The part of a DesiredLRP that buildpack and docker apps share (ccbridge-2015 §4.3, §4.4): a
// lifecycle recipe supplies the rootfs, setup, user and port, and this assembles the rest from
// CC's desired app. Pure: the only outside effect is the injected SSH key generator.
//
// Deprecated BBS fields: set only when they carry something no other field does. metrics_guid
// is deprecated without a replacement and still read by metrics consumers, so it is set (= the
// log guid, as in 2015 and today's CC). deprecated_start_timeout_s, the timeout action's
// deprecated_timeout_ns, legacy_download_user and nproc have replacements (start_timeout_ms,
// timeout_ms, each action's user, nothing), which the BBS's current routes read; they stay
// unset, as today's CC leaves them, so no two fields can disagree.
import type { Action } from '../../../gen/diego/bbs/v1/actions.js';
import { MetricTagValue_DynamicValue, type EnvironmentVariable } from '../../../gen/diego/bbs/v1/container.js';
import { DesiredLRP } from '../../../gen/diego/bbs/v1/desired_lrp.js';
import type { DesireAppRequestFromCC } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { egressRuleFor } from '../../shared/cc-to-diego.js';
import { codependent, run } from './actions.js';
import type { RecipeConfig } from './config.js';
import {
  APP_LOG_SOURCE,
  APP_LRP_DOMAIN,
  CF_ROUTER_KEY,
  DEFAULT_FILE_DESCRIPTOR_LIMIT,
  DIEGO_SSH_KEY,
  LAUNCHER_PATH,
  LRP_LOG_SOURCE,
  SSH_PORT,
} from './constants.js';
import { cpuWeightFor } from './cpu-weight.js';
import { invalidFileDescriptors, negativeInstances } from './errors.js';
import { checkDefinitionFor, healthCheckFor, monitorActionFor } from './health-check.js';
import { cfRouterRouteJson, protoRoutesOf } from './routes.js';
import { sshRecipeFor } from './ssh.js';

/** Turns CC's desired app into a DesiredLRP for one lifecycle; chosen by lifecycle in index.ts. */
export interface RecipeBuilder {
  build(app: DesireAppRequestFromCC, config: RecipeConfig): DesiredLRP;
  /** The port the app listens on, which the `cf-router` route points at. */
  exposedPort(app: DesireAppRequestFromCC): number;
}

/** What a lifecycle decides; everything else about the LRP is common. */
export interface LifecycleRecipe {
  readonly rootFs: string;
  readonly privileged: boolean;
  /** Container-level environment (the app's own goes on its run action). */
  readonly environmentVariables: readonly EnvironmentVariable[];
  readonly setup: Action;
  /** The user every action runs as. */
  readonly user: string;
  /** The port the app listens on. */
  readonly port: number;
  /** Registry credentials for a private image. */
  readonly imageCredentials?: { readonly username: string; readonly password: string };
}

const UINT64_MAX = (1n << 64n) - 1n;

export function assembleDesiredLrp(app: DesireAppRequestFromCC, config: RecipeConfig, recipe: LifecycleRecipe): DesiredLRP {
  // Every check on CC's input happens before keys are generated: key generation is the only
  // costly step, and no error raised after it could then ever quote a key.
  if (app.numInstances < 0) throw negativeInstances(app.numInstances);
  const resourceLimits = { nofile: fileDescriptorLimitFor(app.fileDescriptors) };
  const { port, user } = recipe;

  const env: EnvironmentVariable[] = [
    ...app.environment.map(({ name, value }) => ({ name, value })),
    { name: 'PORT', value: String(port) },
  ];
  const appProcess = run({
    path: LAUNCHER_PATH,
    args: ['app', app.startCommand, app.executionMetadata],
    env,
    resourceLimits,
    user,
    logSource: APP_LOG_SOURCE,
  });

  const healthCheck = healthCheckFor(app);
  const processes = [appProcess];
  const ports = [port];
  const routes: Record<string, string> = { [CF_ROUTER_KEY]: cfRouterRouteJson(app.routes, port) };
  if (app.allowSsh) {
    const ssh = sshRecipeFor(config.generateSshKeyPair, { env, resourceLimits, user });
    processes.push(ssh.sshdAction);
    ports.push(SSH_PORT);
    routes[DIEGO_SSH_KEY] = ssh.routeJson;
  }

  const startTimeoutSeconds = app.healthCheckTimeoutInSeconds > 0 ? app.healthCheckTimeoutInSeconds : config.defaultHealthCheckTimeoutSeconds;
  return DesiredLRP.fromPartial({
    processGuid: app.processGuid,
    domain: APP_LRP_DOMAIN,
    rootFs: recipe.rootFs,
    instances: app.numInstances,
    environmentVariables: [...recipe.environmentVariables],
    setup: recipe.setup,
    action: codependent(...processes),
    monitor: monitorActionFor(healthCheck, port, user),
    checkDefinition: checkDefinitionFor(healthCheck, port),
    startTimeoutMs: String(startTimeoutSeconds * 1000),
    diskMb: app.diskMb,
    memoryMb: app.memoryMb,
    cpuWeight: cpuWeightFor(app.memoryMb),
    privileged: recipe.privileged,
    ports,
    routes: protoRoutesOf(routes),
    logGuid: app.logGuid,
    logSource: LRP_LOG_SOURCE,
    metricsGuid: app.logGuid,
    metricTags: metricTagsFor(app),
    annotation: app.etag,
    egressRules: app.egressRules.map(egressRuleFor),
    imageUsername: recipe.imageCredentials?.username ?? '',
    imagePassword: recipe.imageCredentials?.password ?? '',
  });
}

/**
 * The tags container metrics and logs carry, as today's CC sets them. The BBS refuses an LRP
 * without metric tags, and requires `source_id` to equal metrics_guid (the log guid, the app).
 */
export function metricTagsFor(app: DesireAppRequestFromCC): DesiredLRP['metricTags'] {
  return {
    source_id: { static: app.logGuid, dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INVALID },
    process_id: { static: app.processGuid, dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INVALID },
    process_instance_id: { static: '', dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INSTANCE_GUID },
    instance_id: { static: '', dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX },
  };
}

/** CC's file_descriptors (uint64 as a decimal string); 0 means the 2015 default of 1024. */
export function fileDescriptorLimitFor(fileDescriptors: string): string {
  if (!/^\d+$/.test(fileDescriptors)) throw invalidFileDescriptors(fileDescriptors);
  const limit = BigInt(fileDescriptors);
  if (limit > UINT64_MAX) throw invalidFileDescriptors(fileDescriptors);
  return limit === 0n ? String(DEFAULT_FILE_DESCRIPTOR_LIMIT) : limit.toString();
}

