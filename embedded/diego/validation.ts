// Request validation, following the real BBS's Validate methods (models/*.go): each failure is an
// "Invalid field: <name>" entry, entries are joined with ", " into the InvalidRequest message, and
// the order (including the BBS's own repeats, such as rootfs reported twice when empty) is kept.
// Pure functions: they return the message, or undefined when the request is valid.
import type { Action } from '../../gen/diego/bbs/v1/actions.js';
import type { ActualLRPInstanceKey, ActualLRPKey, ActualLRPNetInfo } from '../../gen/diego/bbs/v1/actual_lrp.js';
import type {
  ClaimActualLRPRequest,
  RemoveActualLRPRequest,
  RetireActualLRPRequest,
} from '../../gen/diego/bbs/v1/actual_lrp_requests.js';
import type { CheckDefinition } from '../../gen/diego/bbs/v1/check_definition.js';
import {
  ImageLayer_DigestAlgorithm,
  ImageLayer_MediaType,
  ImageLayer_Type,
  MetricTagValue_DynamicValue,
  type CachedDependency,
  type EnvironmentVariable,
  type File,
  type ImageLayer,
  type MetricTagValue,
  type VolumeMount,
} from '../../gen/diego/bbs/v1/container.js';
import type { DesiredLRP, DesiredLRPUpdate, ProtoRoutes, Sidecar } from '../../gen/diego/bbs/v1/desired_lrp.js';
import type {
  DesireLRPRequest,
  DesiredLRPByProcessGuidRequest,
  RemoveDesiredLRPRequest,
  UpdateDesiredLRPRequest,
} from '../../gen/diego/bbs/v1/desired_lrp_requests.js';
import type { UpsertDomainRequest } from '../../gen/diego/bbs/v1/domain.js';
import type { SecurityGroupRule } from '../../gen/diego/bbs/v1/security_group.js';
import type { TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import type {
  CompleteTaskRequest,
  DesireTaskRequest,
  FailTaskRequest,
  RejectTaskRequest,
  StartTaskRequest,
  TaskByGuidRequest,
  TaskGuidRequest,
} from '../../gen/diego/bbs/v1/task_requests.js';

/** The BBS's limits (models/desired_lrp.go, models/task.go). */
export const MAXIMUM_ANNOTATION_BYTES = 10 * 1024;
export const MAXIMUM_ROUTES_BYTES = 4 * 1024;
/**
 * Instances of one desired LRP. The real BBS sets no bound and creates every actual LRP at
 * once, so a single request for 2^31 - 1 instances exhausts it; this one refuses such a count
 * (Cloud Controller's own per-process limit is far below).
 */
export const MAXIMUM_INSTANCES = 100_000;
export const MAXIMUM_VOLUME_MOUNTED_FILES_BYTES = 1024 * 1024;

/** process_guid and task_guid: letters, digits, '_' and '-' only. */
const GUID_PATTERN = /^[a-zA-Z0-9_-]+$/;
/** What Go's url.Parse needs to find a scheme: rootfs values are URLs such as preloaded:cflinuxfs4. */
const URL_WITH_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;
/** Nesting bound for actions, so a hostile request cannot recurse without limit. */
const MAXIMUM_ACTION_DEPTH = 64;

const invalid = (field: string) => `Invalid field: ${field}`;
const INVALID_ACTION_TYPE = 'invalid action type';

const byteLength = (value: string) => Buffer.byteLength(value, 'utf8');
const message = (errors: string[]) => (errors.length === 0 ? undefined : errors.join(', '));

// ---------------------------------------------------------------- actions

/** Errors of one action; the BBS validates the first set field in field order. */
export function actionErrors(action: Action, depth = 0): string[] {
  if (depth > MAXIMUM_ACTION_DEPTH) return [invalid('action')];
  const nested = (inner: Action | undefined): string[] =>
    inner === undefined ? [invalid('action')] : actionErrors(inner, depth + 1);
  const list = (actions: Action[]): string[] =>
    actions.length === 0 ? [invalid('actions')] : actions.flatMap((inner) => actionErrors(inner, depth + 1));

  if (action.downloadAction) {
    const a = action.downloadAction;
    return [...(a.from ? [] : [invalid('from')]), ...(a.to ? [] : [invalid('to')]), ...(a.user ? [] : [invalid('user')])];
  }
  if (action.uploadAction) {
    const a = action.uploadAction;
    return [...(a.to ? [] : [invalid('to')]), ...(a.from ? [] : [invalid('from')]), ...(a.user ? [] : [invalid('user')])];
  }
  if (action.runAction) {
    const a = action.runAction;
    return [...(a.path ? [] : [invalid('path')]), ...(a.user ? [] : [invalid('user')])];
  }
  if (action.timeoutAction) {
    const a = action.timeoutAction;
    return [...nested(a.action), ...(BigInt(a.timeoutMs || '0') > 0n ? [] : [invalid('timeout_ms')])];
  }
  if (action.emitProgressAction) return nested(action.emitProgressAction.action);
  if (action.tryAction) return nested(action.tryAction.action);
  if (action.parallelAction) return list(action.parallelAction.actions);
  if (action.serialAction) return list(action.serialAction.actions);
  if (action.codependentAction) return list(action.codependentAction.actions);
  return [invalid('inner-action')];
}

/** A required action (task action, LRP action): absent is "invalid action type". */
function requiredActionErrors(action: Action | undefined): string[] {
  if (action === undefined) return [INVALID_ACTION_TYPE];
  const errors = actionErrors(action);
  return errors.length === 0 ? [] : [invalid('action'), ...errors];
}

function optionalActionErrors(field: string, action: Action | undefined): string[] {
  if (action === undefined) return [];
  const errors = actionErrors(action);
  return errors.length === 0 ? [] : [invalid(field), ...errors];
}

// ---------------------------------------------------------------- shared parts

function rootFsErrors(rootFs: string): string[] {
  return URL_WITH_SCHEME.test(rootFs) ? [] : [invalid('rootfs')];
}

function environmentErrors(variables: EnvironmentVariable[]): string[] {
  return variables.flatMap((variable) => (variable.name ? [] : [invalid('name')]));
}

const EGRESS_PROTOCOLS = new Set(['tcp', 'udp', 'icmp', 'all']);

function egressRuleErrors(rule: SecurityGroupRule): string[] {
  const errors: string[] = [];
  if (!EGRESS_PROTOCOLS.has(rule.protocol)) errors.push(invalid('protocol'));
  if (rule.destinations.length === 0) errors.push(invalid('destination'));
  if (rule.ports.length > 0 && rule.portRange !== undefined) errors.push(invalid('ports'));
  return errors;
}

function cachedDependencyErrors(dependencies: CachedDependency[]): string[] {
  return dependencies.flatMap((dependency) => {
    const errors: string[] = [];
    if (!dependency.from) errors.push(invalid('from'));
    if (!dependency.to) errors.push(invalid('to'));
    if (Boolean(dependency.checksumAlgorithm) !== Boolean(dependency.checksumValue)) errors.push(invalid('checksum'));
    return errors.length === 0 ? [] : [invalid('cached_dependency'), ...errors];
  });
}

function imageLayerErrors(layers: ImageLayer[], legacyDownloadUser: string): string[] {
  const errors: string[] = [];
  let needsDownloadUser = false;
  for (const layer of layers) {
    const layerErrors: string[] = [];
    const digestValid =
      layer.digestAlgorithm === ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_SHA256 ||
      layer.digestAlgorithm === ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_SHA512;
    const exclusive = layer.layerType === ImageLayer_Type.TYPE_EXCLUSIVE;
    if (!layer.url) layerErrors.push(invalid('url'));
    if (!layer.destinationPath) layerErrors.push(invalid('destination_path'));
    if (layer.layerType !== ImageLayer_Type.TYPE_SHARED && !exclusive) layerErrors.push(invalid('layer_type'));
    if (
      layer.mediaType !== ImageLayer_MediaType.MEDIA_TYPE_TGZ &&
      layer.mediaType !== ImageLayer_MediaType.MEDIA_TYPE_TAR &&
      layer.mediaType !== ImageLayer_MediaType.MEDIA_TYPE_ZIP
    ) {
      layerErrors.push(invalid('media_type'));
    }
    const digestAlgorithmSet = layer.digestAlgorithm !== ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_INVALID;
    if ((layer.digestValue || exclusive) && !digestAlgorithmSet) layerErrors.push(invalid('digest_algorithm'));
    if ((digestAlgorithmSet || exclusive) && !layer.digestValue) layerErrors.push(invalid('digest_value'));
    if (layer.digestValue && !digestValid) layerErrors.push(invalid('digest_algorithm'));
    if (layerErrors.length > 0) errors.push(invalid('image_layer'), ...layerErrors);
    if (exclusive) needsDownloadUser = true;
  }
  if (needsDownloadUser && !legacyDownloadUser) errors.push(invalid('legacy_download_user'));
  return errors;
}

function imageCredentialErrors(username: string, password: string): string[] {
  if (!username && password) return [invalid('image_username')];
  if (username && !password) return [invalid('image_password')];
  return [];
}

function volumeMountErrors(mounts: VolumeMount[]): string[] {
  return mounts.flatMap((mount) => {
    const errors: string[] = [];
    if (!mount.driver) errors.push(invalid('driver'));
    if (!mount.containerDir) errors.push(invalid('container_dir'));
    if (mount.mode !== 'r' && mount.mode !== 'rw') errors.push(invalid('mode'));
    if (mount.shared === undefined || !mount.shared.volumeId) errors.push(invalid('shared'));
    return errors;
  });
}

function volumeMountedFilesErrors(files: File[]): string[] {
  let total = 0;
  for (const file of files) {
    total += byteLength(file.content);
    if (total > MAXIMUM_VOLUME_MOUNTED_FILES_BYTES) return [invalid('volumeMountedFiles')];
  }
  return [];
}

function routesErrors(routes: ProtoRoutes | undefined): string[] {
  if (routes === undefined) return [];
  let total = 0;
  for (const value of Object.values(routes.routes)) {
    total += value.length;
    if (total > MAXIMUM_ROUTES_BYTES) return [invalid('routes')];
  }
  return [];
}

function metricTagValueErrors(value: MetricTagValue): string[] {
  const dynamicValid =
    value.dynamic === MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX ||
    value.dynamic === MetricTagValue_DynamicValue.DYNAMIC_VALUE_INSTANCE_GUID;
  if (value.static !== '' && dynamicValid) return [invalid('static'), invalid('dynamic')];
  if (value.static === '' && !dynamicValid) return [invalid('static'), invalid('dynamic')];
  return [];
}

function metricTagsErrors(tags: { [key: string]: MetricTagValue }, metricsGuid: string): string[] {
  const errors = Object.values(tags).flatMap(metricTagValueErrors);
  if (Object.keys(tags).length > 0 && metricsGuid !== '' && tags['source_id']?.static !== metricsGuid) {
    errors.push(invalid('source_id should match metrics_guid'));
  }
  return errors;
}

function checkDefinitionErrors(definition: CheckDefinition): string[] {
  const errors: string[] = [];
  for (const check of [...definition.checks, ...definition.readinessChecks]) {
    if ((check.tcpCheck === undefined) === (check.httpCheck === undefined)) {
      errors.push(invalid('check'));
      continue;
    }
    const port = check.tcpCheck?.port ?? check.httpCheck?.port ?? 0;
    if (port <= 0 || port > 65535) errors.push(invalid('port'));
  }
  return errors;
}

function sidecarErrors(sidecars: Sidecar[]): string[] {
  return sidecars.flatMap((sidecar) => {
    const errors: string[] = [];
    if (sidecar.action === undefined) errors.push(invalid('action'));
    else errors.push(...optionalActionErrors('action', sidecar.action));
    if (sidecar.memoryMb < 0) errors.push(invalid('memory_mb'));
    if (sidecar.diskMb < 0) errors.push(invalid('disk_mb'));
    return errors;
  });
}

// ---------------------------------------------------------------- tasks

export function taskDefinitionErrors(definition: TaskDefinition): string[] {
  const errors: string[] = [];
  if (!definition.rootFs) errors.push(invalid('rootfs'));
  else errors.push(...rootFsErrors(definition.rootFs));
  errors.push(...requiredActionErrors(definition.action));
  if (definition.memoryMb < 0) errors.push(invalid('memory_mb'));
  if (definition.diskMb < 0) errors.push(invalid('disk_mb'));
  if (definition.logRateLimit && BigInt(definition.logRateLimit.bytesPerSecond || '0') < -1n) {
    errors.push(invalid('log_rate_limit'));
  }
  if (definition.maxPids < 0) errors.push(invalid('max_pids'));
  if (byteLength(definition.annotation) > MAXIMUM_ANNOTATION_BYTES) errors.push(invalid('annotation'));
  for (const rule of definition.egressRules) if (egressRuleErrors(rule).length > 0) errors.push(invalid('egress_rules'));
  errors.push(...imageCredentialErrors(definition.imageUsername, definition.imagePassword));
  errors.push(...cachedDependencyErrors(definition.cachedDependencies));
  errors.push(...imageLayerErrors(definition.imageLayers, definition.legacyDownloadUser));
  return errors;
}

export function validateDesireTaskRequest(request: DesireTaskRequest): string | undefined {
  const errors: string[] = [];
  if (!GUID_PATTERN.test(request.taskGuid)) errors.push(invalid('task_guid'));
  if (!request.domain) errors.push(invalid('domain'));
  if (request.taskDefinition === undefined) errors.push(invalid('task_definition'));
  else errors.push(...taskDefinitionErrors(request.taskDefinition));
  return message(errors);
}

export function validateTaskGuidRequest(request: TaskGuidRequest | TaskByGuidRequest): string | undefined {
  return GUID_PATTERN.test(request.taskGuid) ? undefined : invalid('task_guid');
}

// ---------------------------------------------------------------- domains

export function validateUpsertDomainRequest(request: UpsertDomainRequest): string | undefined {
  return request.domain ? undefined : invalid('domain');
}

// ---------------------------------------------------------------- desired LRPs

export function desiredLrpErrors(lrp: DesiredLRP): string[] {
  const errors: string[] = [];
  errors.push(...volumeMountedFilesErrors(lrp.volumeMountedFiles));
  if (!lrp.domain) errors.push(invalid('domain'));
  if (!lrp.rootFs) errors.push(invalid('rootfs'));
  errors.push(...rootFsErrors(lrp.rootFs));
  if (lrp.instances < 0 || lrp.instances > MAXIMUM_INSTANCES) errors.push(invalid('instances'));
  if (lrp.memoryMb < 0) errors.push(invalid('memory_mb'));
  if (lrp.diskMb < 0) errors.push(invalid('disk_mb'));
  if (lrp.logRateLimit && BigInt(lrp.logRateLimit.bytesPerSecond || '0') < -1n) {
    errors.push(invalid('log_rate_limit_bytes_per_second'));
  }
  if (byteLength(lrp.annotation) > MAXIMUM_ANNOTATION_BYTES) errors.push(invalid('annotation'));
  if (lrp.maxPids < 0) errors.push(invalid('max_pids'));
  errors.push(...routesErrors(lrp.routes));
  // An empty map and an absent one are the same on the wire, and the BBS rejects both.
  if (Object.keys(lrp.metricTags).length === 0) errors.push(invalid('metric_tags'));
  else {
    const tagErrors = metricTagsErrors(lrp.metricTags, lrp.metricsGuid);
    if (tagErrors.length > 0) errors.push(invalid('metric_tags'), ...tagErrors);
  }
  // The run-info half, validated again by the BBS under its own key.
  if (!lrp.domain) errors.push(invalid('domain'));
  if (!GUID_PATTERN.test(lrp.processGuid)) errors.push(invalid('process_guid'));
  errors.push(...optionalActionErrors('setup', lrp.setup));
  errors.push(...requiredActionErrors(lrp.action));
  errors.push(...optionalActionErrors('monitor', lrp.monitor));
  errors.push(...environmentErrors(lrp.environmentVariables));
  for (const rule of lrp.egressRules) {
    const ruleErrors = egressRuleErrors(rule);
    if (ruleErrors.length > 0) errors.push(invalid('egress_rules'), ...ruleErrors);
  }
  errors.push(...cachedDependencyErrors(lrp.cachedDependencies));
  errors.push(...imageLayerErrors(lrp.imageLayers, lrp.legacyDownloadUser));
  const sidecar = sidecarErrors(lrp.sidecars);
  if (sidecar.length > 0) errors.push(invalid('sidecars'), ...sidecar);
  errors.push(...volumeMountErrors(lrp.volumeMounts));
  errors.push(...imageCredentialErrors(lrp.imageUsername, lrp.imagePassword));
  if (lrp.checkDefinition) {
    const checkErrors = checkDefinitionErrors(lrp.checkDefinition);
    if (checkErrors.length > 0) errors.push(invalid('check_definition'), ...checkErrors);
  }
  return errors;
}

export function validateDesireLrpRequest(request: DesireLRPRequest): string | undefined {
  if (request.desiredLrp === undefined) return invalid('desired_lrp');
  return message(desiredLrpErrors(request.desiredLrp));
}

export function desiredLrpUpdateErrors(update: DesiredLRPUpdate): string[] {
  const errors: string[] = [];
  if (update.instances !== undefined && (update.instances < 0 || update.instances > MAXIMUM_INSTANCES)) errors.push(invalid('instances'));
  if (update.annotation !== undefined && byteLength(update.annotation) > MAXIMUM_ANNOTATION_BYTES) {
    errors.push(invalid('annotation'));
  }
  errors.push(...routesErrors(update.routes));
  const tagErrors = metricTagsErrors(update.metricTags, '');
  if (tagErrors.length > 0) errors.push(invalid('metric_tags'), ...tagErrors);
  return errors;
}

export function validateUpdateDesiredLrpRequest(request: UpdateDesiredLRPRequest): string | undefined {
  const errors: string[] = [];
  if (!request.processGuid) errors.push(invalid('process_guid'));
  if (request.update !== undefined) errors.push(...desiredLrpUpdateErrors(request.update));
  return message(errors);
}

export function validateProcessGuidRequest(
  request: RemoveDesiredLRPRequest | DesiredLRPByProcessGuidRequest,
): string | undefined {
  return request.processGuid ? undefined : invalid('process_guid');
}

// ---------------------------------------------------------------- actual LRPs

export function validateRetireActualLrpRequest(request: RetireActualLRPRequest): string | undefined {
  const key = request.actualLrpKey;
  if (key === undefined) return invalid('actual_lrp_key');
  const errors: string[] = [];
  if (!key.processGuid) errors.push(invalid('process_guid'));
  if (key.index < 0) errors.push(invalid('index'));
  if (!key.domain) errors.push(invalid('domain'));
  return message(errors);
}

// ---------------------------------------------------------------- cell-side requests
// What a rep sends (models/actual_lrp_requests.go, evacuation requests, models/task_requests.go).

interface CellLrpRequestFields {
  actualLrpKey?: ActualLRPKey | undefined;
  actualLrpInstanceKey?: ActualLRPInstanceKey | undefined;
  actualLrpNetInfo?: ActualLRPNetInfo | undefined;
  errorMessage?: string;
}

function actualLrpKeyErrors(key: ActualLRPKey | undefined): string[] {
  if (key === undefined) return [invalid('actual_lrp_key')];
  const errors: string[] = [];
  if (!key.processGuid) errors.push(invalid('process_guid'));
  if (key.index < 0) errors.push(invalid('index'));
  if (!key.domain) errors.push(invalid('domain'));
  return errors;
}

function instanceKeyErrors(key: ActualLRPInstanceKey | undefined): string[] {
  if (key === undefined) return [invalid('actual_lrp_instance_key')];
  const errors: string[] = [];
  if (!key.cellId) errors.push(invalid('cell_id'));
  if (!key.instanceGuid) errors.push(invalid('instance_guid'));
  return errors;
}

function netInfoErrors(netInfo: ActualLRPNetInfo | undefined): string[] {
  if (netInfo === undefined) return [invalid('actual_lrp_net_info')];
  return netInfo.address ? [] : [invalid('address')];
}

/** Which parts of a cell's actual LRP request must be present and valid. */
export function cellLrpRequestValidator(parts: { netInfo?: boolean; errorMessage?: boolean; instanceKey?: boolean }) {
  return (request: CellLrpRequestFields): string | undefined => {
    const errors = actualLrpKeyErrors(request.actualLrpKey);
    if (parts.instanceKey !== false) errors.push(...instanceKeyErrors(request.actualLrpInstanceKey));
    if (parts.netInfo) errors.push(...netInfoErrors(request.actualLrpNetInfo));
    if (parts.errorMessage && !request.errorMessage) errors.push(invalid('error_message'));
    return message(errors);
  };
}

export function validateClaimActualLrpRequest(request: ClaimActualLRPRequest): string | undefined {
  const errors: string[] = [];
  if (!request.processGuid) errors.push(invalid('process_guid'));
  errors.push(...instanceKeyErrors(request.actualLrpInstanceKey));
  return message(errors);
}

export function validateRemoveActualLrpRequest(request: RemoveActualLRPRequest): string | undefined {
  const errors: string[] = [];
  if (!request.processGuid) errors.push(invalid('process_guid'));
  if (request.index < 0) errors.push(invalid('index'));
  return message(errors);
}

export function validateStartTaskRequest(request: StartTaskRequest | CompleteTaskRequest): string | undefined {
  const errors: string[] = [];
  if (!GUID_PATTERN.test(request.taskGuid)) errors.push(invalid('task_guid'));
  if (!request.cellId) errors.push(invalid('cell_id'));
  return message(errors);
}

export function validateFailTaskRequest(request: FailTaskRequest): string | undefined {
  const errors: string[] = [];
  if (!GUID_PATTERN.test(request.taskGuid)) errors.push(invalid('task_guid'));
  if (!request.failureReason) errors.push(invalid('failure_reason'));
  return message(errors);
}

/** The BBS names the missing rejection reason failure_reason. */
export function validateRejectTaskRequest(request: RejectTaskRequest): string | undefined {
  const errors: string[] = [];
  if (!GUID_PATTERN.test(request.taskGuid)) errors.push(invalid('task_guid'));
  if (!request.rejectionReason) errors.push(invalid('failure_reason'));
  return message(errors);
}
