// The Stager's pure builders against spec §3.3–3.5: CC staging requests (read from their JSON
// bodies, as the gateway reads them) become BBS staging tasks, and task callbacks become the
// StagingResponseForCC bytes CC receives.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Status } from 'nice-grpc';
import { StagingResponseForCC, type StagingRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import { TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import type { TaskCallbackResponse } from '../../gen/diego/bbs/v1/task_requests.js';
import { FlagError } from '../../lib/flags.js';
import { decodeLegacyJson, encodeLegacyJson } from '../../lib/legacy-json.js';
import {
  buildStagingTask,
  DEFAULT_STAGING_TIMEOUT_MS,
  parseLifecycles,
  sanitizeStagingFailure,
  stagingErrorResponse,
  stagingLifecycleFromAnnotation,
  StagingRecipeError,
  stagingResponseFromTaskCallback,
  type StagingRecipeConfig,
  type StagingTask,
} from '../../services/stager/recipe/index.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';
const SECRET_PASSWORD = 'the-secret-password';

// The configuration of the spec's worked example (§3.3), plus a docker lifecycle.
const config: StagingRecipeConfig = {
  fileServerURL: 'http://file-server.com',
  ccUploaderURL: 'http://cc-uploader.com',
  stagingTaskCallbackURL: 'http://the-stager.example.com',
  lifecycles: parseLifecycles([
    'buildpack/rabbit_hole:rabbit-hole-compiler',
    'buildpack/full_url:http://the-full-compiler-url',
    'buildpack/full_https_url:https://the-full-compiler-url/compiler.tgz',
    'buildpack/absolute_path:/bundles/compiler.tgz',
    'docker:docker_lifecycle/docker_app_lifecycle.tgz',
  ]),
  dockerStagingStack: 'cflinuxfs4',
  dockerRegistryAddress: '',
  insecureDockerRegistries: [],
  skipCertVerify: false,
  privileged: true,
  defaultStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
  maxStagingTimeoutMs: 2 * 60 * 60_000,
};

const workedExampleBody = {
  app_id: 'bunny',
  log_guid: 'bunny',
  file_descriptors: 512,
  memory_mb: 2048,
  disk_mb: 3072,
  environment: [
    { name: 'VCAP_APPLICATION', value: 'foo' },
    { name: 'VCAP_SERVICES', value: 'bar' },
  ],
  egress_rules: [{ protocol: 'TCP', destinations: ['0.0.0.0/0'], port_range: { start: 80, end: 443 } }],
  timeout: 900,
  lifecycle: 'buildpack',
  lifecycle_data: {
    app_bits_download_uri: 'http://example-uri.com/bunny',
    build_artifacts_cache_download_uri: 'http://example-uri.com/bunny-droppings',
    build_artifacts_cache_upload_uri: 'http://example-uri.com/bunny-uppings',
    buildpacks: [
      { name: 'zfirst', key: 'zfirst-buildpack', url: 'first-buildpack-url' },
      { name: 'asecond', key: 'asecond-buildpack', url: 'second-buildpack-url' },
    ],
    droplet_upload_uri: 'http://example-uri.com/droplet-upload',
    stack: 'rabbit_hole',
  },
};

// The resulting TaskCreateRequest exactly as spec §3.3 prints it (Receptor JSON).
const workedExampleTaskJson = String.raw`{"action":{"timeout":{"action":{"serial":{"actions":[
   {"download":{"artifact":"app package","from":"http://example-uri.com/bunny","to":"/tmp/app","cache_key":"","user":"vcap"}},
   {"emit_progress":{"action":{"parallel":{"actions":[
      {"emit_progress":{"action":{"download":{"from":"http://file-server.com/v1/static/rabbit-hole-compiler","to":"/tmp/lifecycle","cache_key":"buildpack-rabbit_hole-lifecycle","user":"vcap"}},
                        "start_message":"","success_message":"","failure_message_prefix":"Failed to set up staging environment"}},
      {"download":{"artifact":"zfirst","from":"first-buildpack-url","to":"/tmp/buildpacks/0fe7d5fc3f73b0ab8682a664da513fbd","cache_key":"zfirst-buildpack","user":"vcap"}},
      {"download":{"artifact":"asecond","from":"second-buildpack-url","to":"/tmp/buildpacks/58015c32d26f0ad3418f87dd9bf47797","cache_key":"asecond-buildpack","user":"vcap"}},
      {"try":{"action":{"download":{"artifact":"build artifacts cache","from":"http://example-uri.com/bunny-droppings","to":"/tmp/cache","cache_key":"","user":"vcap"}}}}]}},
     "start_message":"No buildpack specified; fetching standard buildpacks to detect and build your application.\nDownloading buildpacks (zfirst, asecond), build artifacts cache...",
     "success_message":"Downloaded buildpacks","failure_message_prefix":"Downloading buildpacks failed"}},
   {"emit_progress":{"action":{"run":{"path":"/tmp/lifecycle/builder",
       "args":["-buildArtifactsCacheDir=/tmp/cache","-buildDir=/tmp/app","-buildpackOrder=zfirst-buildpack,asecond-buildpack",
               "-buildpacksDir=/tmp/buildpacks","-outputBuildArtifactsCache=/tmp/output-cache","-outputDroplet=/tmp/droplet",
               "-outputMetadata=/tmp/result.json","-skipCertVerify=false","-skipDetect=false"],
       "env":[{"name":"VCAP_APPLICATION","value":"foo"},{"name":"VCAP_SERVICES","value":"bar"}],
       "resource_limits":{"nofile":512},"user":"vcap"}},
     "start_message":"Staging...","success_message":"Staging complete","failure_message_prefix":"Staging failed"}},
   {"emit_progress":{"action":{"parallel":{"actions":[
      {"upload":{"artifact":"droplet","from":"/tmp/droplet","to":"http://cc-uploader.com/v1/droplet/bunny?cc-droplet-upload-uri=http%3A%2F%2Fexample-uri.com%2Fdroplet-upload&timeout=900","user":"vcap"}},
      {"try":{"action":{"upload":{"artifact":"build artifacts cache","from":"/tmp/output-cache","to":"http://cc-uploader.com/v1/build_artifacts/bunny?cc-build-artifacts-upload-uri=http%3A%2F%2Fexample-uri.com%2Fbunny-uppings&timeout=900","user":"vcap"}}}}]}},
     "start_message":"Uploading droplet, build artifacts cache...","success_message":"Uploading complete","failure_message_prefix":"Uploading failed"}}
  ]}},"timeout":900000000000}},
 "annotation":"{\"lifecycle\":\"buildpack\"}",
 "completion_callback_url":"http://the-stager.example.com/v1/staging/a-staging-guid/completed",
 "cpu_weight":50,"disk_mb":3072,"domain":"cf-app-staging","log_guid":"bunny","log_source":"STG","metrics_guid":"",
 "memory_mb":2048,"result_file":"/tmp/result.json","task_guid":"a-staging-guid","rootfs":"preloaded:rabbit_hole","privileged":true,
 "env":[{"name":"LANG","value":"en_US.UTF-8"}],
 "egress_rules":[{"protocol":"TCP","destinations":["0.0.0.0/0"],"port_range":{"start":80,"end":443},"log":false}]}`;

// ---------------------------------------------------------------------------------------------
// Receptor JSON (the spec's examples) → BBS models: one action key per object, snake_case
// fields, TimeoutAction in nanoseconds (→ timeout_ms), nofile as a number.

type Json = Record<string, any>;

const BBS_ACTION_FIELD: Record<string, keyof Action> = {
  download: 'downloadAction',
  upload: 'uploadAction',
  run: 'runAction',
  timeout: 'timeoutAction',
  emit_progress: 'emitProgressAction',
  try: 'tryAction',
  parallel: 'parallelAction',
  serial: 'serialAction',
  codependent: 'codependentAction',
};

const camelCase = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function actionFromReceptor(json: Json): Action {
  const entries = Object.entries(json);
  assert.equal(entries.length, 1, 'a Receptor action has exactly one key');
  const [type, body] = entries[0]!;
  const fields: Json = {};
  for (const [key, value] of Object.entries(body as Json)) {
    if (key === 'action') fields.action = actionFromReceptor(value);
    else if (key === 'actions') fields.actions = (value as Json[]).map(actionFromReceptor);
    else if (type === 'timeout' && key === 'timeout') fields.timeoutMs = String(value / 1e6);
    else if (key === 'resource_limits') fields.resourceLimits = { nofile: String(value.nofile) };
    else fields[camelCase(key)] = value;
  }
  return Action.fromPartial({ [BBS_ACTION_FIELD[type]!]: fields });
}

function egressRuleFromReceptor(rule: Json): Json {
  return { protocol: rule.protocol, destinations: rule.destinations, ports: rule.ports, portRange: rule.port_range, icmpInfo: rule.icmp_info, log: rule.log };
}

function stagingTaskFromReceptor(json: Json): StagingTask {
  return {
    taskGuid: json.task_guid,
    domain: json.domain,
    taskDefinition: TaskDefinition.fromPartial({
      rootFs: json.rootfs,
      environmentVariables: json.env ?? [],
      action: actionFromReceptor(json.action),
      diskMb: json.disk_mb,
      memoryMb: json.memory_mb,
      cpuWeight: json.cpu_weight,
      privileged: json.privileged,
      logSource: json.log_source,
      logGuid: json.log_guid,
      metricsGuid: json.metrics_guid,
      resultFile: json.result_file,
      completionCallbackUrl: json.completion_callback_url,
      annotation: json.annotation,
      egressRules: (json.egress_rules ?? []).map(egressRuleFromReceptor),
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Requests as CC sends them, read with the legacy codec.

function stagingRequestFromBody(body: Json): StagingRequestFromCC {
  return decodeLegacyJson<StagingRequestFromCC>(`${CC}.StagingRequestFromCC`, JSON.stringify(body));
}

/** The worked example with request fields and lifecycle_data fields replaced (undefined removes). */
function buildpackRequest(changes: { request?: Json; data?: Json } = {}): StagingRequestFromCC {
  return stagingRequestFromBody({
    ...workedExampleBody,
    ...changes.request,
    lifecycle_data: { ...workedExampleBody.lifecycle_data, ...changes.data },
  });
}

const dockerExampleBody = {
  app_id: 'bunny',
  log_guid: 'bunny',
  file_descriptors: 512,
  memory_mb: 2048,
  disk_mb: 3072,
  environment: [
    { name: 'VCAP_APPLICATION', value: 'foo' },
    { name: 'VCAP_SERVICES', value: 'bar' },
  ],
  egress_rules: [{ protocol: 'TCP', destinations: ['0.0.0.0/0'], port_range: { start: 80, end: 443 } }],
  timeout: 900,
  lifecycle: 'docker',
  lifecycle_data: { docker_image: 'busybox' },
};

function dockerRequest(changes: { request?: Json; data?: Json } = {}): StagingRequestFromCC {
  return stagingRequestFromBody({
    ...dockerExampleBody,
    ...changes.request,
    lifecycle_data: { ...dockerExampleBody.lifecycle_data, ...changes.data },
  });
}

const withCacheRequested = [...dockerExampleBody.environment, { name: 'DIEGO_DOCKER_CACHE', value: 'true' }];

// ---------------------------------------------------------------------------------------------
// Reading a built task.

function definitionOf(task: StagingTask): TaskDefinition {
  return task.taskDefinition;
}

/** The serial steps under the timeout. */
function stepsOf(task: StagingTask): Action[] {
  return task.taskDefinition.action!.timeoutAction!.action!.serialAction!.actions;
}

/** What varies between buildpack requests, read off the task. */
function buildpackSummary(task: StagingTask) {
  const [appDownload, downloads, staging, uploads] = stepsOf(task);
  const parallelDownloads = downloads!.emitProgressAction!.action!.parallelAction!.actions;
  const [droplet, cache] = uploads!.emitProgressAction!.action!.parallelAction!.actions;
  return {
    timeoutMs: task.taskDefinition.action!.timeoutAction!.timeoutMs,
    appBitsFrom: appDownload!.downloadAction!.from,
    downloadMessage: downloads!.emitProgressAction!.startMessage,
    builderFrom: parallelDownloads[0]!.emitProgressAction!.action!.downloadAction!.from,
    buildpackDownloads: parallelDownloads
      .slice(1)
      .filter((action) => action.downloadAction)
      .map(({ downloadAction }) => [downloadAction!.artifact, downloadAction!.from, downloadAction!.to, downloadAction!.cacheKey]),
    cacheDownloadFrom: parallelDownloads.find((action) => action.tryAction)?.tryAction!.action!.downloadAction!.from,
    builderArgs: staging!.emitProgressAction!.action!.runAction!.args,
    nofile: staging!.emitProgressAction!.action!.runAction!.resourceLimits!.nofile,
    dropletUploadTo: droplet!.uploadAction!.to,
    cacheUploadTo: cache!.tryAction!.action!.uploadAction!.to,
    completionCallbackUrl: task.taskDefinition.completionCallbackUrl,
    privileged: task.taskDefinition.privileged,
  };
}

type BuildpackSummary = ReturnType<typeof buildpackSummary>;

function dockerRun(task: StagingTask) {
  return stepsOf(task)[1]!.emitProgressAction!.action!.runAction!;
}

function recipeErrorOf(run: () => unknown): StagingRecipeError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof StagingRecipeError, `expected a StagingRecipeError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a StagingRecipeError');
}

function withConfig(changes: Partial<StagingRecipeConfig>): StagingRecipeConfig {
  return { ...config, ...changes };
}

// =============================================================================================

describe('buildStagingTask: the worked example of §3.3', () => {
  const task = buildStagingTask('a-staging-guid', buildpackRequest(), config);

  test('is the spec\'s TaskCreateRequest, mapped to BBS fields, in full', () => {
    assert.deepEqual(task, stagingTaskFromReceptor(JSON.parse(workedExampleTaskJson)));
  });

  const steps = stepsOf(task);
  const parallelDownloads = steps[1]!.emitProgressAction!.action!.parallelAction!.actions;
  const uploads = steps[3]!.emitProgressAction!.action!.parallelAction!.actions;
  const cases = [
    { name: 'task guid is the staging guid', input: task.taskGuid, want: 'a-staging-guid' },
    { name: 'domain', input: task.domain, want: 'cf-app-staging' },
    { name: 'rootfs is the preloaded stack', input: definitionOf(task).rootFs, want: 'preloaded:rabbit_hole' },
    { name: 'result file', input: definitionOf(task).resultFile, want: '/tmp/result.json' },
    { name: 'cpu weight', input: definitionOf(task).cpuWeight, want: 50 },
    { name: 'memory', input: definitionOf(task).memoryMb, want: 2048 },
    { name: 'disk', input: definitionOf(task).diskMb, want: 3072 },
    { name: 'privileged', input: definitionOf(task).privileged, want: true },
    { name: 'log guid', input: definitionOf(task).logGuid, want: 'bunny' },
    { name: 'log source', input: definitionOf(task).logSource, want: 'STG' },
    { name: 'container env is LANG only', input: definitionOf(task).environmentVariables, want: [{ name: 'LANG', value: 'en_US.UTF-8' }] },
    { name: 'annotation', input: definitionOf(task).annotation, want: '{"lifecycle":"buildpack"}' },
    {
      name: 'completion callback is this stager\'s completed route',
      input: definitionOf(task).completionCallbackUrl,
      want: 'http://the-stager.example.com/v1/staging/a-staging-guid/completed',
    },
    {
      name: 'egress rules pass through',
      input: definitionOf(task).egressRules,
      want: [{ protocol: 'TCP', destinations: ['0.0.0.0/0'], ports: [], portRange: { start: 80, end: 443 }, icmpInfo: undefined, log: false, annotations: [] }],
    },
    { name: 'deprecated metrics_guid stays empty', input: definitionOf(task).metricsGuid, want: '' },
    { name: 'deprecated legacy_download_user stays empty', input: definitionOf(task).legacyDownloadUser, want: '' },
    { name: 'timeout in timeout_ms', input: definitionOf(task).action!.timeoutAction!.timeoutMs, want: '900000' },
    { name: 'deprecated timeout ns stays 0', input: definitionOf(task).action!.timeoutAction!.deprecatedTimeoutNs, want: '0' },
    { name: 'four serial steps', input: steps.length, want: 4 },
    {
      name: 'step 1: app bits download, uncached',
      input: steps[0]!.downloadAction,
      want: { artifact: 'app package', from: 'http://example-uri.com/bunny', to: '/tmp/app', cacheKey: '', logSource: '', user: 'vcap', checksumAlgorithm: '', checksumValue: '' },
    },
    {
      name: 'step 2: download progress messages',
      input: [steps[1]!.emitProgressAction!.startMessage, steps[1]!.emitProgressAction!.successMessage, steps[1]!.emitProgressAction!.failureMessagePrefix],
      want: [
        'No buildpack specified; fetching standard buildpacks to detect and build your application.\nDownloading buildpacks (zfirst, asecond), build artifacts cache...',
        'Downloaded buildpacks',
        'Downloading buildpacks failed',
      ],
    },
    { name: 'step 2: four parallel downloads', input: parallelDownloads.length, want: 4 },
    {
      name: 'step 2: builder lifecycle from the file server, cached by stack, in its own progress',
      input: parallelDownloads[0]!.emitProgressAction,
      want: {
        action: Action.fromPartial({
          downloadAction: { from: 'http://file-server.com/v1/static/rabbit-hole-compiler', to: '/tmp/lifecycle', cacheKey: 'buildpack-rabbit_hole-lifecycle', user: 'vcap' },
        }),
        startMessage: '',
        successMessage: '',
        failureMessagePrefix: 'Failed to set up staging environment',
        logSource: '',
      },
    },
    {
      name: 'step 2: buildpacks to their md5 directories, cached by key',
      input: parallelDownloads.slice(1, 3).map(({ downloadAction }) => downloadAction),
      want: [
        { artifact: 'zfirst', from: 'first-buildpack-url', to: '/tmp/buildpacks/0fe7d5fc3f73b0ab8682a664da513fbd', cacheKey: 'zfirst-buildpack', logSource: '', user: 'vcap', checksumAlgorithm: '', checksumValue: '' },
        { artifact: 'asecond', from: 'second-buildpack-url', to: '/tmp/buildpacks/58015c32d26f0ad3418f87dd9bf47797', cacheKey: 'asecond-buildpack', logSource: '', user: 'vcap', checksumAlgorithm: '', checksumValue: '' },
      ],
    },
    {
      name: 'step 2: artifacts cache download may fail (Try)',
      input: parallelDownloads[3]!.tryAction!.action!.downloadAction,
      want: { artifact: 'build artifacts cache', from: 'http://example-uri.com/bunny-droppings', to: '/tmp/cache', cacheKey: '', logSource: '', user: 'vcap', checksumAlgorithm: '', checksumValue: '' },
    },
    {
      name: 'step 3: staging progress messages',
      input: [steps[2]!.emitProgressAction!.startMessage, steps[2]!.emitProgressAction!.successMessage, steps[2]!.emitProgressAction!.failureMessagePrefix],
      want: ['Staging...', 'Staging complete', 'Staging failed'],
    },
    {
      name: 'step 3: builder run with sorted args, request env, nofile, vcap',
      input: steps[2]!.emitProgressAction!.action!.runAction,
      want: {
        path: '/tmp/lifecycle/builder',
        args: [
          '-buildArtifactsCacheDir=/tmp/cache',
          '-buildDir=/tmp/app',
          '-buildpackOrder=zfirst-buildpack,asecond-buildpack',
          '-buildpacksDir=/tmp/buildpacks',
          '-outputBuildArtifactsCache=/tmp/output-cache',
          '-outputDroplet=/tmp/droplet',
          '-outputMetadata=/tmp/result.json',
          '-skipCertVerify=false',
          '-skipDetect=false',
        ],
        dir: '',
        env: [
          { name: 'VCAP_APPLICATION', value: 'foo' },
          { name: 'VCAP_SERVICES', value: 'bar' },
        ],
        resourceLimits: { nofile: '512', nproc: undefined },
        user: 'vcap',
        logSource: '',
        suppressLogOutput: false,
        volumeMountedFiles: [],
      },
    },
    {
      name: 'step 4: upload progress messages',
      input: [steps[3]!.emitProgressAction!.startMessage, steps[3]!.emitProgressAction!.successMessage, steps[3]!.emitProgressAction!.failureMessagePrefix],
      want: ['Uploading droplet, build artifacts cache...', 'Uploading complete', 'Uploading failed'],
    },
    {
      name: 'step 4: droplet upload through the cc-uploader with the CC query keys',
      input: uploads[0]!.uploadAction,
      want: {
        artifact: 'droplet',
        from: '/tmp/droplet',
        to: 'http://cc-uploader.com/v1/droplet/bunny?cc-droplet-upload-uri=http%3A%2F%2Fexample-uri.com%2Fdroplet-upload&timeout=900',
        logSource: '',
        user: 'vcap',
      },
    },
    {
      name: 'step 4: cache upload may fail (Try)',
      input: uploads[1]!.tryAction!.action!.uploadAction,
      want: {
        artifact: 'build artifacts cache',
        from: '/tmp/output-cache',
        to: 'http://cc-uploader.com/v1/build_artifacts/bunny?cc-build-artifacts-upload-uri=http%3A%2F%2Fexample-uri.com%2Fbunny-uppings&timeout=900',
        logSource: '',
        user: 'vcap',
      },
    },
  ];
  for (const { name, input, want } of cases) test(name, () => assert.deepEqual(input, want));
});

describe('buildStagingTask: buildpack branches', () => {
  const cases: Array<{ name: string; input: { request?: Json; data?: Json; config?: Partial<StagingRecipeConfig> }; want: Partial<BuildpackSummary> }> = [
    {
      name: 'no artifacts cache: no cache download, no mention of it',
      input: { data: { build_artifacts_cache_download_uri: undefined } },
      want: {
        downloadMessage: 'No buildpack specified; fetching standard buildpacks to detect and build your application.\nDownloading buildpacks (zfirst, asecond)...',
        cacheDownloadFrom: undefined,
        // The cache is still uploaded, so the next staging can use it.
        cacheUploadTo: 'http://cc-uploader.com/v1/build_artifacts/bunny?cc-build-artifacts-upload-uri=http%3A%2F%2Fexample-uri.com%2Fbunny-uppings&timeout=900',
      },
    },
    {
      name: 'a single custom buildpack with skip_detect: not downloaded, shown by URL, detection skipped',
      input: { data: { buildpacks: [{ name: 'custom', key: 'https://example.com/a/custom-buildpack.git', url: 'https://example.com/a/custom-buildpack.git', skip_detect: true }] } },
      want: {
        downloadMessage: 'Downloading buildpacks (https://example.com/a/custom-buildpack.git), build artifacts cache...',
        buildpackDownloads: [],
        builderArgs: [
          '-buildArtifactsCacheDir=/tmp/cache',
          '-buildDir=/tmp/app',
          '-buildpackOrder=https://example.com/a/custom-buildpack.git',
          '-buildpacksDir=/tmp/buildpacks',
          '-outputBuildArtifactsCache=/tmp/output-cache',
          '-outputDroplet=/tmp/droplet',
          '-outputMetadata=/tmp/result.json',
          '-skipCertVerify=false',
          '-skipDetect=true',
        ],
      },
    },
    {
      name: 'a custom buildpack among others: only the others are downloaded',
      input: {
        data: {
          buildpacks: [
            { name: 'zfirst', key: 'zfirst-buildpack', url: 'first-buildpack-url' },
            { name: 'custom', key: 'https://example.com/custom.git', url: 'https://example.com/custom.git' },
          ],
        },
      },
      want: {
        downloadMessage: 'No buildpack specified; fetching standard buildpacks to detect and build your application.\nDownloading buildpacks (zfirst, https://example.com/custom.git), build artifacts cache...',
        buildpackDownloads: [['zfirst', 'first-buildpack-url', '/tmp/buildpacks/0fe7d5fc3f73b0ab8682a664da513fbd', 'zfirst-buildpack']],
      },
    },
    {
      name: 'skip_detect on one of two buildpacks does not skip detection',
      input: {
        data: {
          buildpacks: [
            { name: 'zfirst', key: 'zfirst-buildpack', url: 'first-buildpack-url', skip_detect: true },
            { name: 'asecond', key: 'asecond-buildpack', url: 'second-buildpack-url' },
          ],
        },
      },
      want: {
        downloadMessage: 'No buildpack specified; fetching standard buildpacks to detect and build your application.\nDownloading buildpacks (zfirst, asecond), build artifacts cache...',
      },
    },
    {
      name: 'a single buildpack without skip_detect still detects',
      input: { data: { buildpacks: [{ name: 'zfirst', key: 'zfirst-buildpack', url: 'first-buildpack-url' }], build_artifacts_cache_download_uri: undefined } },
      want: {
        downloadMessage: 'No buildpack specified; fetching standard buildpacks to detect and build your application.\nDownloading buildpacks (zfirst)...',
        buildpackDownloads: [['zfirst', 'first-buildpack-url', '/tmp/buildpacks/0fe7d5fc3f73b0ab8682a664da513fbd', 'zfirst-buildpack']],
      },
    },
    {
      name: 'no buildpacks: empty list and order',
      input: { data: { buildpacks: [], build_artifacts_cache_download_uri: undefined } },
      want: {
        downloadMessage: 'No buildpack specified; fetching standard buildpacks to detect and build your application.\nDownloading buildpacks ()...',
        buildpackDownloads: [],
        builderArgs: [
          '-buildArtifactsCacheDir=/tmp/cache',
          '-buildDir=/tmp/app',
          '-buildpackOrder=',
          '-buildpacksDir=/tmp/buildpacks',
          '-outputBuildArtifactsCache=/tmp/output-cache',
          '-outputDroplet=/tmp/droplet',
          '-outputMetadata=/tmp/result.json',
          '-skipCertVerify=false',
          '-skipDetect=false',
        ],
      },
    },
    {
      name: 'skipCertVerify reaches the builder',
      input: { config: { skipCertVerify: true } },
      want: {
        builderArgs: [
          '-buildArtifactsCacheDir=/tmp/cache',
          '-buildDir=/tmp/app',
          '-buildpackOrder=zfirst-buildpack,asecond-buildpack',
          '-buildpacksDir=/tmp/buildpacks',
          '-outputBuildArtifactsCache=/tmp/output-cache',
          '-outputDroplet=/tmp/droplet',
          '-outputMetadata=/tmp/result.json',
          '-skipCertVerify=true',
          '-skipDetect=false',
        ],
      },
    },
    { name: 'unprivileged staging when configured', input: { config: { privileged: false } }, want: { privileged: false } },
    { name: 'an absolute path in an artifacts cache URI is a valid request URI', input: { data: { build_artifacts_cache_download_uri: '/cache/bunny' } }, want: { cacheDownloadFrom: '/cache/bunny' } },
    { name: 'file descriptors 0 is still sent', input: { request: { file_descriptors: 0 } }, want: { nofile: '0' } },

    // Lifecycle URL forms (§1.4).
    { name: 'lifecycle as a full http URL is used as-is', input: { data: { stack: 'full_url' } }, want: { builderFrom: 'http://the-full-compiler-url' } },
    { name: 'lifecycle as a full https URL is used as-is', input: { data: { stack: 'full_https_url' } }, want: { builderFrom: 'https://the-full-compiler-url/compiler.tgz' } },
    { name: 'lifecycle path with a leading slash joins with one slash', input: { data: { stack: 'absolute_path' } }, want: { builderFrom: 'http://file-server.com/v1/static/bundles/compiler.tgz' } },
    {
      name: 'file server URL with a trailing slash joins with one slash',
      input: { config: { fileServerURL: 'http://file-server.com/' } },
      want: { builderFrom: 'http://file-server.com/v1/static/rabbit-hole-compiler' },
    },
    {
      name: 'callback and uploader base URLs with trailing slashes join with one slash',
      input: { config: { stagingTaskCallbackURL: 'http://the-stager.example.com/', ccUploaderURL: 'http://cc-uploader.com/' } },
      want: {
        completionCallbackUrl: 'http://the-stager.example.com/v1/staging/a-staging-guid/completed',
        dropletUploadTo: 'http://cc-uploader.com/v1/droplet/bunny?cc-droplet-upload-uri=http%3A%2F%2Fexample-uri.com%2Fdroplet-upload&timeout=900',
      },
    },
    {
      name: 'CC upload URIs are query-escaped as Go does (space +, reserved characters upper-case hex)',
      input: { data: { droplet_upload_uri: "http://user:p@ss@cc/droplets/x?a=b&c=d e~!*'()" } },
      want: {
        dropletUploadTo: 'http://cc-uploader.com/v1/droplet/bunny?cc-droplet-upload-uri=http%3A%2F%2Fuser%3Ap%40ss%40cc%2Fdroplets%2Fx%3Fa%3Db%26c%3Dd+e~%21%2A%27%28%29&timeout=900',
      },
    },

    // Timeouts: the request's seconds, the default for 0 or less, never above the maximum.
    {
      name: 'timeout 0 uses the 15-minute default',
      input: { request: { timeout: 0 } },
      want: { timeoutMs: '900000', dropletUploadTo: 'http://cc-uploader.com/v1/droplet/bunny?cc-droplet-upload-uri=http%3A%2F%2Fexample-uri.com%2Fdroplet-upload&timeout=900' },
    },
    { name: 'negative timeout uses the default', input: { request: { timeout: -5 } }, want: { timeoutMs: '900000' } },
    { name: 'absent timeout uses the default', input: { request: { timeout: undefined } }, want: { timeoutMs: '900000' } },
    {
      name: 'a requested timeout is used, and told to the cc-uploader in seconds',
      input: { request: { timeout: 60 } },
      want: {
        timeoutMs: '60000',
        cacheUploadTo: 'http://cc-uploader.com/v1/build_artifacts/bunny?cc-build-artifacts-upload-uri=http%3A%2F%2Fexample-uri.com%2Fbunny-uppings&timeout=60',
      },
    },
    {
      name: 'a requested timeout above the maximum is bounded',
      input: { request: { timeout: 7200 }, config: { maxStagingTimeoutMs: 3_600_000 } },
      want: { timeoutMs: '3600000', dropletUploadTo: 'http://cc-uploader.com/v1/droplet/bunny?cc-droplet-upload-uri=http%3A%2F%2Fexample-uri.com%2Fdroplet-upload&timeout=3600' },
    },
    { name: 'the default is bounded by the maximum too', input: { request: { timeout: 0 }, config: { maxStagingTimeoutMs: 600_000 } }, want: { timeoutMs: '600000' } },
    { name: 'a configured default replaces 15 minutes', input: { request: { timeout: 0 }, config: { defaultStagingTimeoutMs: 1_500 } }, want: { timeoutMs: '1500' } },
    {
      name: 'a sub-second timeout reaches the cc-uploader as at least one second',
      input: { request: { timeout: 0 }, config: { defaultStagingTimeoutMs: 250 } },
      want: { timeoutMs: '250', dropletUploadTo: 'http://cc-uploader.com/v1/droplet/bunny?cc-droplet-upload-uri=http%3A%2F%2Fexample-uri.com%2Fdroplet-upload&timeout=1' },
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      const task = buildStagingTask('a-staging-guid', buildpackRequest(input), withConfig(input.config ?? {}));
      const summary = buildpackSummary(task);
      for (const key of Object.keys(want) as Array<keyof BuildpackSummary>) assert.deepEqual(summary[key], want[key], key);
    });
  }
});

describe('buildStagingTask: docker (§3.4)', () => {
  test('the spec example without caching, in full', () => {
    const task = buildStagingTask('a-staging-guid', dockerRequest(), config);
    const want = stagingTaskFromReceptor({
      task_guid: 'a-staging-guid',
      domain: 'cf-app-staging',
      rootfs: 'preloaded:cflinuxfs4',
      result_file: '/tmp/docker-result/result.json',
      memory_mb: 2048,
      disk_mb: 3072,
      cpu_weight: 0,
      log_guid: 'bunny',
      log_source: 'STG',
      metrics_guid: '',
      privileged: true,
      completion_callback_url: 'http://the-stager.example.com/v1/staging/a-staging-guid/completed',
      annotation: '{"lifecycle":"docker"}',
      egress_rules: [{ protocol: 'TCP', destinations: ['0.0.0.0/0'], port_range: { start: 80, end: 443 }, log: false }],
      action: {
        timeout: {
          timeout: 900_000_000_000,
          action: {
            serial: {
              actions: [
                {
                  emit_progress: {
                    start_message: '',
                    success_message: '',
                    failure_message_prefix: 'Failed to set up docker environment',
                    action: {
                      download: {
                        from: 'http://file-server.com/v1/static/docker_lifecycle/docker_app_lifecycle.tgz',
                        to: '/tmp/docker_app_lifecycle',
                        cache_key: 'docker-lifecycle',
                        user: 'vcap',
                      },
                    },
                  },
                },
                {
                  emit_progress: {
                    start_message: 'Staging...',
                    success_message: 'Staging Complete',
                    failure_message_prefix: 'Staging Failed',
                    action: {
                      run: {
                        path: '/tmp/docker_app_lifecycle/builder',
                        args: ['-outputMetadataJSONFilename', '/tmp/docker-result/result.json', '-dockerRef', 'busybox'],
                        env: [
                          { name: 'VCAP_APPLICATION', value: 'foo' },
                          { name: 'VCAP_SERVICES', value: 'bar' },
                        ],
                        resource_limits: { nofile: 512 },
                        user: 'vcap',
                      },
                    },
                  },
                },
              ],
            },
          },
        },
      },
    });
    assert.deepEqual(task, want);
    assert.deepEqual(task.taskDefinition.environmentVariables, [], 'no container env for docker staging');
  });

  const base = ['-outputMetadataJSONFilename', '/tmp/docker-result/result.json', '-dockerRef', 'busybox'];
  const requestEgress = { protocol: 'TCP', destinations: ['0.0.0.0/0'], ports: [], portRange: { start: 80, end: 443 }, icmpInfo: undefined, log: false, annotations: [] };
  const registryEgress = (ip: string, port: number) => ({ protocol: 'tcp', destinations: [ip], ports: [port], portRange: undefined, icmpInfo: undefined, log: false, annotations: [] });
  const cases: Array<{
    name: string;
    input: { request?: Json; data?: Json; config?: Partial<StagingRecipeConfig> };
    want: { args: string[]; user?: string; egressRules?: Json[]; timeoutMs?: string };
  }> = [
    {
      name: 'private registry credentials and login server reach the builder',
      input: { data: { docker_login_server: 'https://registry.example.com/v1/', docker_user: 'user', docker_password: SECRET_PASSWORD, docker_email: 'user@example.com' } },
      want: {
        args: [...base, '-dockerLoginServer', 'https://registry.example.com/v1/', '-dockerUser', 'user', '-dockerPassword', SECRET_PASSWORD, '-dockerEmail', 'user@example.com'],
        user: 'vcap',
      },
    },
    {
      name: 'credentials without a login server (Docker Hub)',
      input: { data: { docker_user: 'user', docker_password: SECRET_PASSWORD, docker_email: 'user@example.com' } },
      want: { args: [...base, '-dockerUser', 'user', '-dockerPassword', SECRET_PASSWORD, '-dockerEmail', 'user@example.com'] },
    },
    {
      name: 'insecure registries, comma-joined',
      input: { config: { insecureDockerRegistries: ['10.0.0.1:5000', 'registry.local:443'] } },
      want: { args: [...base, '-insecureDockerRegistries', '10.0.0.1:5000,registry.local:443'], user: 'vcap' },
    },
    {
      name: 'caching is off unless DIEGO_DOCKER_CACHE is exactly "true"',
      input: { request: { environment: [{ name: 'DIEGO_DOCKER_CACHE', value: 'TRUE' }] }, config: { dockerRegistryAddress: '127.0.0.1:5000' } },
      want: { args: base, user: 'vcap', egressRules: [requestEgress] },
    },
    {
      name: 'caching in a registry at an IP: caching args, root, egress to the registry',
      input: { request: { environment: withCacheRequested }, config: { dockerRegistryAddress: '127.0.0.1:5000' } },
      want: {
        args: [...base, '-cacheDockerImage', '-dockerRegistryHost', '127.0.0.1', '-dockerRegistryPort', '5000', '-dockerRegistryIPs', '127.0.0.1'],
        user: 'root',
        egressRules: [requestEgress, registryEgress('127.0.0.1', 5000)],
      },
    },
    {
      name: 'caching in a named registry with its IPs configured (the spec example)',
      input: {
        request: { environment: withCacheRequested },
        config: { dockerRegistryAddress: 'docker-registry.service.cf.internal:8080', dockerRegistryIPs: ['10.244.2.6', '10.244.2.7'] },
      },
      want: {
        args: [...base, '-cacheDockerImage', '-dockerRegistryHost', 'docker-registry.service.cf.internal', '-dockerRegistryPort', '8080', '-dockerRegistryIPs', '10.244.2.6,10.244.2.7'],
        user: 'root',
        egressRules: [requestEgress, registryEgress('10.244.2.6', 8080), registryEgress('10.244.2.7', 8080)],
      },
    },
    {
      name: 'caching with everything: caching, insecure registries, login server, credentials, in that order',
      input: {
        request: { environment: withCacheRequested },
        data: { docker_login_server: 'https://registry.example.com/v1/', docker_user: 'user', docker_password: SECRET_PASSWORD, docker_email: 'user@example.com' },
        config: { dockerRegistryAddress: '[::1]:5000', insecureDockerRegistries: ['[::1]:5000'] },
      },
      want: {
        args: [
          ...base,
          '-cacheDockerImage',
          '-dockerRegistryHost',
          '::1',
          '-dockerRegistryPort',
          '5000',
          '-dockerRegistryIPs',
          '::1',
          '-insecureDockerRegistries',
          '[::1]:5000',
          '-dockerLoginServer',
          'https://registry.example.com/v1/',
          '-dockerUser',
          'user',
          '-dockerPassword',
          SECRET_PASSWORD,
          '-dockerEmail',
          'user@example.com',
        ],
        user: 'root',
      },
    },
    { name: 'timeout 0 uses the default', input: { request: { timeout: 0 } }, want: { args: base, timeoutMs: '900000' } },
    { name: 'timeout bounded by the maximum', input: { request: { timeout: 99_999 }, config: { maxStagingTimeoutMs: 1_800_000 } }, want: { args: base, timeoutMs: '1800000' } },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      const task = buildStagingTask('a-staging-guid', dockerRequest(input), withConfig(input.config ?? {}));
      const runAction = dockerRun(task);
      assert.deepEqual(runAction.args, want.args);
      if (want.user) assert.equal(runAction.user, want.user);
      if (want.egressRules) assert.deepEqual(task.taskDefinition.egressRules, want.egressRules);
      if (want.timeoutMs) assert.equal(task.taskDefinition.action!.timeoutAction!.timeoutMs, want.timeoutMs);
    });
  }
});

describe('buildStagingTask: refusals', () => {
  const cases: Array<{
    name: string;
    input: { stagingGuid?: string; request: StagingRequestFromCC; config?: Partial<StagingRecipeConfig> };
    want: { reason: string; message: string | RegExp; code: Status };
  }> = [
    { name: 'unknown lifecycle', input: { request: buildpackRequest({ request: { lifecycle: 'rkt' } }) }, want: { reason: 'UNKNOWN_LIFECYCLE', message: "unknown lifecycle 'rkt'", code: Status.NOT_FOUND } },
    { name: 'empty lifecycle', input: { request: buildpackRequest({ request: { lifecycle: '' } }) }, want: { reason: 'UNKNOWN_LIFECYCLE', message: "unknown lifecycle ''", code: Status.NOT_FOUND } },
    {
      name: 'a lifecycle named like an object property is still unknown',
      input: { request: buildpackRequest({ request: { lifecycle: 'constructor' } }) },
      want: { reason: 'UNKNOWN_LIFECYCLE', message: "unknown lifecycle 'constructor'", code: Status.NOT_FOUND },
    },
    { name: 'empty staging guid', input: { stagingGuid: '', request: buildpackRequest() }, want: { reason: 'MISSING_TASK_ID', message: 'missing task id', code: Status.INTERNAL } },
    {
      name: 'buildpack without lifecycle data',
      input: { request: stagingRequestFromBody({ ...workedExampleBody, lifecycle_data: undefined }) },
      want: { reason: 'MISSING_LIFECYCLE_DATA', message: 'missing lifecycle data', code: Status.INTERNAL },
    },
    {
      name: 'buildpack with null lifecycle data',
      input: { request: stagingRequestFromBody({ ...workedExampleBody, lifecycle_data: null }) },
      want: { reason: 'MISSING_LIFECYCLE_DATA', message: 'missing lifecycle data', code: Status.INTERNAL },
    },
    {
      name: 'buildpack lifecycle data of the wrong shape',
      input: { request: buildpackRequest({ data: { buildpacks: 'zfirst' } }) },
      want: { reason: 'INVALID_LIFECYCLE_DATA', message: 'invalid lifecycle data: buildpacks: expected an array', code: Status.INTERNAL },
    },
    { name: 'missing app id', input: { request: buildpackRequest({ request: { app_id: '' } }) }, want: { reason: 'MISSING_APP_ID', message: 'missing app id', code: Status.INTERNAL } },
    {
      name: 'missing app bits download uri',
      input: { request: buildpackRequest({ data: { app_bits_download_uri: undefined } }) },
      want: { reason: 'MISSING_APP_BITS_DOWNLOAD_URI', message: 'missing app bits download uri', code: Status.INTERNAL },
    },
    {
      name: 'unknown stack',
      input: { request: buildpackRequest({ data: { stack: 'no_such_stack' } }) },
      want: { reason: 'NO_COMPILER_DEFINED', message: 'no compiler defined for requested stack', code: Status.INTERNAL },
    },
    {
      name: 'lifecycle with another scheme (config built without parseLifecycles)',
      input: { request: buildpackRequest(), config: { lifecycles: new Map([['buildpack/rabbit_hole', 'ftp://the-bad-compiler-url']]) } },
      want: { reason: 'INVALID_LIFECYCLE_URL', message: "unknown scheme: 'ftp'", code: Status.INTERNAL },
    },
    {
      name: 'artifacts cache download uri that is not a request URI',
      input: { request: buildpackRequest({ data: { build_artifacts_cache_download_uri: 'not-a-uri' } }) },
      want: { reason: 'INVALID_BUILD_ARTIFACTS_CACHE_URI', message: /invalid URI/, code: Status.INTERNAL },
    },
    {
      name: 'docker without lifecycle data is a staging error, not a crash',
      input: { request: stagingRequestFromBody({ ...dockerExampleBody, lifecycle_data: undefined }) },
      want: { reason: 'MISSING_LIFECYCLE_DATA', message: 'missing lifecycle data', code: Status.INTERNAL },
    },
    { name: 'docker missing app id', input: { request: dockerRequest({ request: { app_id: '' } }) }, want: { reason: 'MISSING_APP_ID', message: 'missing app id', code: Status.INTERNAL } },
    {
      name: 'docker missing image',
      input: { request: dockerRequest({ data: { docker_image: '' } }) },
      want: { reason: 'MISSING_DOCKER_IMAGE_URL', message: 'missing docker image download url', code: Status.INTERNAL },
    },
    {
      name: 'docker password without user and email',
      input: { request: dockerRequest({ data: { docker_password: SECRET_PASSWORD } }) },
      want: { reason: 'MISSING_DOCKER_CREDENTIALS', message: 'missing docker credentials', code: Status.INTERNAL },
    },
    {
      name: 'docker user and password without email',
      input: { request: dockerRequest({ data: { docker_user: 'user', docker_password: SECRET_PASSWORD } }) },
      want: { reason: 'MISSING_DOCKER_CREDENTIALS', message: 'missing docker credentials', code: Status.INTERNAL },
    },
    {
      name: 'docker user and email without password',
      input: { request: dockerRequest({ data: { docker_user: 'user', docker_email: 'user@example.com' } }) },
      want: { reason: 'MISSING_DOCKER_CREDENTIALS', message: 'missing docker credentials', code: Status.INTERNAL },
    },
    {
      name: 'docker lifecycle data of the wrong shape',
      input: { request: dockerRequest({ data: { docker_user: 7, docker_password: SECRET_PASSWORD } }) },
      want: { reason: 'INVALID_LIFECYCLE_DATA', message: 'invalid lifecycle data: docker_user: expected a string', code: Status.INTERNAL },
    },
    {
      name: 'docker lifecycle not configured',
      input: { request: dockerRequest({ data: { docker_user: 'user', docker_password: SECRET_PASSWORD, docker_email: 'e' } }), config: { lifecycles: new Map() } },
      want: { reason: 'NO_COMPILER_DEFINED', message: 'no compiler defined for requested stack', code: Status.INTERNAL },
    },
    {
      name: 'docker lifecycle with an empty path',
      input: { request: dockerRequest(), config: { lifecycles: new Map([['docker', '']]) } },
      want: { reason: 'NO_COMPILER_DEFINED', message: 'no compiler defined for requested stack', code: Status.INTERNAL },
    },
    {
      name: 'docker lifecycle with another scheme',
      input: { request: dockerRequest(), config: { lifecycles: new Map([['docker', 'ftp://the-bad-compiler-url']]) } },
      want: { reason: 'INVALID_LIFECYCLE_URL', message: "unknown scheme: 'ftp'", code: Status.INTERNAL },
    },
    {
      name: 'caching requested with no registry configured',
      input: { request: dockerRequest({ request: { environment: withCacheRequested } }) },
      want: { reason: 'MISSING_DOCKER_REGISTRY', message: 'missing docker registry', code: Status.INTERNAL },
    },
    {
      name: 'caching with an unparseable registry address',
      input: { request: dockerRequest({ request: { environment: withCacheRequested } }), config: { dockerRegistryAddress: '://host:' } },
      want: { reason: 'INVALID_DOCKER_REGISTRY_ADDRESS', message: 'invalid docker registry address', code: Status.INTERNAL },
    },
    {
      name: 'caching with a registry address without a port',
      input: { request: dockerRequest({ request: { environment: withCacheRequested } }), config: { dockerRegistryAddress: '10.0.0.1' } },
      want: { reason: 'INVALID_DOCKER_REGISTRY_ADDRESS', message: 'invalid docker registry address', code: Status.INTERNAL },
    },
    {
      name: 'caching in a named registry whose IPs are unknown',
      input: { request: dockerRequest({ request: { environment: withCacheRequested } }), config: { dockerRegistryAddress: 'docker-registry.service.cf.internal:8080' } },
      want: { reason: 'MISSING_DOCKER_REGISTRY', message: 'missing docker registry', code: Status.INTERNAL },
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      const error = recipeErrorOf(() => buildStagingTask(input.stagingGuid ?? 'a-staging-guid', input.request, withConfig(input.config ?? {})));
      assert.equal(error.reason, want.reason);
      if (typeof want.message === 'string') assert.equal(error.message, want.message);
      else assert.match(error.message, want.message);
      assert.equal(error.code, want.code);
      assert.ok(!error.message.includes(SECRET_PASSWORD), 'the password never appears in an error');
      assert.ok(!String(error.stack).includes(SECRET_PASSWORD), 'nor in its stack');
    });
  }

  test('a recipe refusal carries the sanitized body CC gets with the 500', () => {
    const cases = [
      { name: 'missing app id', input: buildpackRequest({ request: { app_id: '' } }), want: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}' },
      {
        name: 'missing docker credentials is shown to users',
        input: dockerRequest({ data: { docker_user: 'user' } }),
        want: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"missing docker credentials"}}',
      },
    ];
    for (const { name, input, want } of cases) {
      const error = recipeErrorOf(() => buildStagingTask('a-staging-guid', input, config));
      const body = error.options.body;
      assert.ok(body, name);
      assert.equal(body.typeName, `${CC}.StagingResponseForCC`, name);
      assert.equal(encodeLegacyJson(body.typeName, StagingResponseForCC.decode(body.value)), want, name);
    }
  });

  test('an unknown lifecycle carries no body (404 without one, as in 2015)', () => {
    const error = recipeErrorOf(() => buildStagingTask('a-staging-guid', buildpackRequest({ request: { lifecycle: 'rkt' } }), config));
    assert.equal(error.options.body, undefined);
  });
});

describe('parseLifecycles (§1.4)', () => {
  const cases = [
    {
      name: 'buildpack stacks and docker',
      input: ['buildpack/cflinuxfs4:buildpack_app_lifecycle/buildpack_app_lifecycle.tgz', 'docker:docker_app_lifecycle/docker_app_lifecycle.tgz'],
      want: [
        ['buildpack/cflinuxfs4', 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz'],
        ['docker', 'docker_app_lifecycle/docker_app_lifecycle.tgz'],
      ],
    },
    { name: 'split on the first colon, so a URL keeps its port', input: ['docker:http://127.0.0.1:8080/docker.tgz'], want: [['docker', 'http://127.0.0.1:8080/docker.tgz']] },
    { name: 'https URL', input: ['buildpack/cflinuxfs4:HTTPS://files.example.com/b.tgz'], want: [['buildpack/cflinuxfs4', 'HTTPS://files.example.com/b.tgz']] },
    { name: 'a repeated key keeps the last value', input: ['docker:a.tgz', 'docker:b.tgz'], want: [['docker', 'b.tgz']] },
    { name: 'no values', input: [], want: [] },
  ];
  for (const { name, input, want } of cases) test(name, () => assert.deepEqual([...parseLifecycles(input)], want));

  const refusals = [
    { name: 'no colon', input: 'docker', want: "Invalid lifecycle value: not of the form 'lifecycle-name:path'" },
    { name: 'empty name', input: ':docker.tgz', want: 'Invalid lifecycle value: empty lifecycle name' },
    { name: 'empty path', input: 'docker:', want: 'Invalid lifecycle value: empty path' },
    { name: 'another scheme', input: 'docker:ftp://files.example.com/docker.tgz', want: "Invalid lifecycle value: unknown scheme: 'ftp'" },
    { name: 'a colon before any scheme', input: 'docker::docker.tgz', want: "Invalid lifecycle value: missing protocol scheme in ':docker.tgz'" },
  ];
  for (const { name, input, want } of refusals) {
    test(`refuses: ${name}`, () => assert.throws(() => parseLifecycles([input]), (error: unknown) => error instanceof FlagError && error.message === want));
  }
});

describe('sanitizeStagingFailure (§3.5), row by row', () => {
  const cases = [
    { name: 'builder exit 222', input: 'Exited with status 222', want: '{"id":"NoAppDetectedError","message":"staging failed"}' },
    { name: 'builder exit 223', input: 'Exited with status 223', want: '{"id":"BuildpackCompileFailed","message":"staging failed"}' },
    { name: 'builder exit 224', input: 'Exited with status 224', want: '{"id":"BuildpackReleaseFailed","message":"staging failed"}' },
    { name: 'a plain suffix match', input: 'something 1222', want: '{"id":"NoAppDetectedError","message":"staging failed"}' },
    { name: 'out of memory after 222 is not a suffix', input: 'Exited with status 222 (out of memory)', want: '{"id":"StagingError","message":"staging failed"}' },
    { name: 'insufficient resources', input: 'insufficient resources', want: '{"id":"InsufficientResources","message":"insufficient resources"}' },
    { name: 'found no compatible cell', input: 'found no compatible cell', want: '{"id":"NoCompatibleCell","message":"found no compatible cell"}' },
    { name: 'missing docker image download url', input: 'missing docker image download url', want: '{"id":"StagingError","message":"missing docker image download url"}' },
    { name: 'missing docker registry', input: 'missing docker registry', want: '{"id":"StagingError","message":"missing docker registry"}' },
    { name: 'missing docker credentials', input: 'missing docker credentials', want: '{"id":"StagingError","message":"missing docker credentials"}' },
    { name: 'invalid docker registry address', input: 'invalid docker registry address', want: '{"id":"StagingError","message":"invalid docker registry address"}' },
    { name: 'any other exit', input: 'Exited with status 1', want: '{"id":"StagingError","message":"staging failed"}' },
    { name: 'a recipe error not on the list', input: 'missing app id', want: '{"id":"StagingError","message":"staging failed"}' },
    { name: 'whitelisted messages match exactly (case)', input: 'Insufficient resources', want: '{"id":"StagingError","message":"staging failed"}' },
    { name: 'whitelisted messages match exactly (whitespace)', input: 'insufficient resources ', want: '{"id":"StagingError","message":"staging failed"}' },
    { name: 'empty', input: '', want: '{"id":"StagingError","message":"staging failed"}' },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.equal(encodeLegacyJson(`${CC}.StagingError`, sanitizeStagingFailure(input)), want));
  }

  test('stagingErrorResponse is the Stage route\'s 500 body', () => {
    const cases = [
      { name: 'anything', input: 'boom', want: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}' },
      { name: 'whitelisted', input: 'found no compatible cell', want: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"NoCompatibleCell","message":"found no compatible cell"}}' },
    ];
    for (const { name, input, want } of cases) assert.equal(encodeLegacyJson(`${CC}.StagingResponseForCC`, stagingErrorResponse(input)), want, name);
  });
});

describe('stagingResponseFromTaskCallback (§3.5)', () => {
  const buildpackResult = JSON.stringify({
    buildpack_key: 'buildpack-key',
    detected_buildpack: 'Some Buildpack',
    execution_metadata: '{"start_command":"./some-start-command"}',
    detected_start_command: { web: './some-start-command' },
  });
  const dockerResult = JSON.stringify({
    execution_metadata: '{"cmd":["/bin/sh"],"ports":[{"Port":8080,"Protocol":"tcp"}]}',
    detected_start_command: { web: '/bin/sh' },
    docker_image: 'cloudfoundry/diego-docker-app:latest',
  });
  const callback = (changes: Partial<TaskCallbackResponse>): TaskCallbackResponse => ({
    taskGuid: 'a-staging-guid',
    failed: false,
    failureReason: '',
    result: '',
    annotation: '{"lifecycle":"buildpack"}',
    createdAt: '1439000000000000000',
    ...changes,
  });

  const cases = [
    {
      name: 'buildpack success: the spec\'s payload to CC',
      input: { callback: callback({ result: buildpackResult }) },
      want: '{"execution_metadata":"{\\"start_command\\":\\"./some-start-command\\"}","detected_start_command":{"web":"./some-start-command"},"lifecycle_data":{"buildpack_key":"buildpack-key","detected_buildpack":"Some Buildpack"}}',
    },
    {
      name: 'buildpack success without a buildpack key (both keys always written)',
      input: { callback: callback({ result: '{"detected_buildpack":"Ruby","execution_metadata":"","detected_start_command":{"web":"rackup"}}\n' }) },
      want: '{"execution_metadata":"","detected_start_command":{"web":"rackup"},"lifecycle_data":{"buildpack_key":"","detected_buildpack":"Ruby"}}',
    },
    {
      name: 'buildpack result keys match case-insensitively and unknown keys are ignored',
      input: { callback: callback({ result: '{"Detected_Buildpack":"Go","EXECUTION_METADATA":"m","detected_start_command":null,"process_types":{"web":"x"}}' }) },
      want: '{"execution_metadata":"m","detected_start_command":null,"lifecycle_data":{"buildpack_key":"","detected_buildpack":"Go"}}',
    },
    {
      name: 'docker success: lifecycle data carries only the image',
      input: { callback: callback({ annotation: '{"lifecycle":"docker"}', result: dockerResult }) },
      want: '{"execution_metadata":"{\\"cmd\\":[\\"/bin/sh\\"],\\"ports\\":[{\\"Port\\":8080,\\"Protocol\\":\\"tcp\\"}]}","detected_start_command":{"web":"/bin/sh"},"lifecycle_data":{"docker_image":"cloudfoundry/diego-docker-app:latest"}}',
    },
    {
      name: 'buildpack failure: the builder\'s exit code becomes the error id',
      input: { callback: callback({ failed: true, failureReason: 'Exited with status 223', result: buildpackResult }) },
      want: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"BuildpackCompileFailed","message":"staging failed"}}',
    },
    {
      name: 'docker failure with a whitelisted reason',
      input: { callback: callback({ annotation: '{"lifecycle":"docker"}', failed: true, failureReason: 'insufficient resources' }) },
      want: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"InsufficientResources","message":"insufficient resources"}}',
    },
    {
      name: 'a failure never reads the result',
      input: { callback: callback({ failed: true, failureReason: 'cell disappeared before completion', result: 'not json' }) },
      want: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}',
    },
    {
      name: 'the lifecycle given by the listener is used',
      input: { callback: callback({ annotation: '{"lifecycle":"buildpack","completion_callback":"ignored"}', result: dockerResult }), lifecycle: 'docker' },
      want: '{"execution_metadata":"{\\"cmd\\":[\\"/bin/sh\\"],\\"ports\\":[{\\"Port\\":8080,\\"Protocol\\":\\"tcp\\"}]}","detected_start_command":{"web":"/bin/sh"},"lifecycle_data":{"docker_image":"cloudfoundry/diego-docker-app:latest"}}',
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.equal(encodeLegacyJson(`${CC}.StagingResponseForCC`, stagingResponseFromTaskCallback(input.callback, input.lifecycle)), want));
  }

  const refusals: Array<{ name: string; input: { callback: TaskCallbackResponse; lifecycle?: string }; want: { reason: string; code: Status } }> = [
    { name: 'empty annotation', input: { callback: callback({ annotation: '', result: buildpackResult }) }, want: { reason: 'INVALID_ANNOTATION', code: Status.INVALID_ARGUMENT } },
    { name: 'annotation not JSON', input: { callback: callback({ annotation: 'lifecycle=buildpack' }) }, want: { reason: 'INVALID_ANNOTATION', code: Status.INVALID_ARGUMENT } },
    { name: 'annotation not an object', input: { callback: callback({ annotation: '["buildpack"]' }) }, want: { reason: 'INVALID_ANNOTATION', code: Status.INVALID_ARGUMENT } },
    { name: 'annotation lifecycle not a string', input: { callback: callback({ annotation: '{"lifecycle":5}' }) }, want: { reason: 'INVALID_ANNOTATION', code: Status.INVALID_ARGUMENT } },
    {
      name: 'a bad annotation is refused before an unknown lifecycle',
      input: { callback: callback({ annotation: 'nope', failed: true }), lifecycle: 'rkt' },
      want: { reason: 'INVALID_ANNOTATION', code: Status.INVALID_ARGUMENT },
    },
    { name: 'annotation without a lifecycle', input: { callback: callback({ annotation: '{}' }) }, want: { reason: 'UNKNOWN_LIFECYCLE', code: Status.NOT_FOUND } },
    { name: 'annotation with an unknown lifecycle', input: { callback: callback({ annotation: '{"lifecycle":"rkt"}', failed: true }) }, want: { reason: 'UNKNOWN_LIFECYCLE', code: Status.NOT_FOUND } },
    { name: 'result not JSON', input: { callback: callback({ result: 'bad-json' }) }, want: { reason: 'INVALID_STAGING_RESULT', code: Status.INVALID_ARGUMENT } },
    { name: 'empty result', input: { callback: callback({ result: '' }) }, want: { reason: 'INVALID_STAGING_RESULT', code: Status.INVALID_ARGUMENT } },
    { name: 'result not an object', input: { callback: callback({ result: '["x"]' }) }, want: { reason: 'INVALID_STAGING_RESULT', code: Status.INVALID_ARGUMENT } },
    {
      name: 'result with a start command of the wrong type',
      input: { callback: callback({ result: '{"detected_start_command":"./run"}' }) },
      want: { reason: 'INVALID_STAGING_RESULT', code: Status.INVALID_ARGUMENT },
    },
    {
      name: 'docker result with an image of the wrong type',
      input: { callback: callback({ annotation: '{"lifecycle":"docker"}', result: '{"docker_image":["busybox"]}' }) },
      want: { reason: 'INVALID_STAGING_RESULT', code: Status.INVALID_ARGUMENT },
    },
  ];
  for (const { name, input, want } of refusals) {
    test(`refuses: ${name}`, () => {
      const error = recipeErrorOf(() => stagingResponseFromTaskCallback(input.callback, input.lifecycle));
      assert.equal(error.reason, want.reason);
      assert.equal(error.code, want.code);
      assert.equal(error.options.body, undefined, 'the completion route answers without a body');
    });
  }

  test('stagingLifecycleFromAnnotation: the completion route\'s first check', () => {
    const cases = [
      { name: 'buildpack', input: '{"lifecycle":"buildpack"}', want: 'buildpack' },
      { name: 'docker, keys matched case-insensitively', input: '{"Lifecycle":"docker"}', want: 'docker' },
      { name: 'not JSON', input: '', want: 'INVALID_ANNOTATION' },
      { name: 'missing lifecycle', input: '{}', want: 'UNKNOWN_LIFECYCLE' },
      { name: 'null', input: 'null', want: 'UNKNOWN_LIFECYCLE' },
    ];
    for (const { name, input, want } of cases) {
      let got: string;
      try {
        got = stagingLifecycleFromAnnotation(input);
      } catch (error) {
        assert.ok(error instanceof StagingRecipeError, name);
        got = error.reason;
      }
      assert.equal(got, want, name);
    }
  });
});
