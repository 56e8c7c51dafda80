// What the buildpack and docker staging tasks share: constants of spec §2.4, the callback URL,
// the mapping of CC's shapes to the BBS's, and reading lifecycle_data with Go's rules.
import { egressRuleFor } from '../../shared/cc-to-diego.js';
import type { EnvironmentVariable as CcEnvironmentVariable, SecurityGroupRule as CcSecurityGroupRule } from '../../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { EnvironmentVariable } from '../../../gen/diego/bbs/v1/container.js';
import type { SecurityGroupRule } from '../../../gen/diego/bbs/v1/security_group.js';
import { encodeLegacyJson, fromLegacyValue, LegacyJsonError } from '../../../lib/legacy-json.js';
import type { StagingRecipeConfig } from './config.js';
import { DiegoErrors } from './diego-errors.js';
import { StagingRecipeError } from './errors.js';
import { escapePathSegment, joinURL } from './urls.js';

export const STAGING_TASK_DOMAIN = 'cf-app-staging';
export const STAGING_LOG_SOURCE = 'STG';
export const STAGING_USER = 'vcap';

/** The stager's own completion route for a staging task, which Diego calls when it ends. */
export function completionCallbackURL(stagingGuid: string, config: StagingRecipeConfig): string {
  return joinURL(config.stagingTaskCallbackURL, 'v1', 'staging', escapePathSegment(stagingGuid), 'completed');
}

/** The task annotation that routes the completion back to its lifecycle: `{"lifecycle":"…"}`. */
export function stagingTaskAnnotation(lifecycle: string): string {
  return encodeLegacyJson('cloudfoundry.ccbridge.cc.v1.StagingTaskAnnotation', { lifecycle });
}

export function bbsEnvironment(environment: readonly CcEnvironmentVariable[]): EnvironmentVariable[] {
  return environment.map(({ name, value }) => ({ name, value }));
}

/** CC's egress rules pass to Diego unchanged (spec §2.2). */
export function bbsEgressRules(rules: readonly CcSecurityGroupRule[]): SecurityGroupRule[] {
  return rules.map(egressRuleFor);
}

/**
 * The nofile limit as Go's uint64(request.FileDescriptors) wrote it: set even when 0, and a
 * negative count wraps around, exactly as the 2015 stager sent it.
 */
export function nofileLimit(fileDescriptors: number): string {
  return BigInt.asUintN(64, BigInt(Math.trunc(fileDescriptors))).toString();
}

/**
 * Reads a request's lifecycle_data (JSON text) as the given cc.v1 message with Go's decoding
 * rules. Absent data is the spec's "missing lifecycle data". The JSON text itself never reaches
 * an error message (the codec's type errors name the key, not the value), since it may hold
 * registry credentials.
 */
export function decodeLifecycleData<T>(typeName: string, lifecycleData: string): T {
  if (lifecycleData === '') throw new StagingRecipeError('MISSING_LIFECYCLE_DATA', DiegoErrors.MISSING_LIFECYCLE_DATA);
  let parsed: unknown;
  try {
    parsed = JSON.parse(lifecycleData);
  } catch {
    throw new StagingRecipeError('INVALID_LIFECYCLE_DATA', 'invalid lifecycle data: not JSON');
  }
  // `"lifecycle_data": null` is absent data to Go (a nil *json.RawMessage).
  if (parsed === null) throw new StagingRecipeError('MISSING_LIFECYCLE_DATA', DiegoErrors.MISSING_LIFECYCLE_DATA);
  try {
    return fromLegacyValue<T>(typeName, parsed);
  } catch (error) {
    if (error instanceof LegacyJsonError) throw new StagingRecipeError('INVALID_LIFECYCLE_DATA', `invalid lifecycle data: ${error.message}`);
    throw error;
  }
}
