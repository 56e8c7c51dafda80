// The nsync recipe builders against ccbridge-2015 §4.2–§4.6: the spec's full worked example field
// by field, then one table per branch (lifecycle dispatch, buildpack and docker fields, CPU
// weight, health checks, SSH, docker image references, exposed ports, updates, errors, config),
// and the default SSH key generator against vectors checked with ssh-keygen.
import assert from 'node:assert/strict';
import { createHash, createPrivateKey } from 'node:crypto';
import { describe, test } from 'node:test';
import { DesireAppRequestFromCC, type DeepPartial as CcDeepPartial } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { Action, type DeepPartial } from '../../gen/diego/bbs/v1/actions.js';
import { CheckDefinition } from '../../gen/diego/bbs/v1/check_definition.js';
import { DesiredLRP, DesiredLRPUpdate, ProtoRoutes } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import {
  buildpackRecipeBuilder,
  checkRecipeConfig,
  cpuWeightFor,
  createSshKeyPairGenerator,
  desiredLrpFromDesireAppRequest,
  desiredLrpUpdateFromDesireAppRequest,
  dockerRecipeBuilder,
  dockerRootfsUriFor,
  exposedPortFor,
  generateSshKeyPair,
  lifecycleDownloadUrl,
  lifecycleOf,
  md5Fingerprint,
  RecipeConfigError,
  RecipeError,
  SshKeyGenerationError,
  sshKeyPairFromPrivateKey,
  type RecipeConfig,
  type RecipeErrorReason,
  type SshKeyPair,
  type SshKeyPairGenerator,
} from '../../services/nsync/recipe/index.js';
import { metricTagsFor } from '../../services/nsync/recipe/desired-lrp.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

const HOST_KEY: SshKeyPair = {
  privateKeyPem: 'host-private-key-pem',
  authorizedKey: 'ssh-rsa host-public-key',
  fingerprint: 'aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa',
};
const USER_KEY: SshKeyPair = {
  privateKeyPem: 'user-private-key-pem',
  authorizedKey: 'ssh-rsa user-public-key',
  fingerprint: 'bb:bb:bb:bb:bb:bb:bb:bb:bb:bb:bb:bb:bb:bb:bb:bb',
};

/** Hands out the host key, then the user key, and counts the calls. */
function fakeKeys(): { generate: SshKeyPairGenerator; calls: () => number } {
  let calls = 0;
  return {
    generate: () => {
      calls += 1;
      if (calls > 2) throw new Error('more than two key pairs requested');
      return calls === 1 ? HOST_KEY : USER_KEY;
    },
    calls: () => calls,
  };
}

const noKeysExpected: SshKeyPairGenerator = () => {
  throw new Error('no SSH keys should be generated here');
};

function recipeConfig(overrides: Partial<RecipeConfig> = {}): RecipeConfig {
  return {
    lifecycles: {
      'buildpack/some-stack': 'some-lifecycle.tgz',
      docker: 'docker_app_lifecycle/docker_app_lifecycle.tgz',
    },
    fileServerUrl: 'http://file-server.com',
    privilegedContainers: true,
    defaultHealthCheckTimeoutSeconds: 0,
    generateSshKeyPair: noKeysExpected,
    ...overrides,
  };
}

function buildpackApp(overrides: CcDeepPartial<DesireAppRequestFromCC> = {}): DesireAppRequestFromCC {
  return DesireAppRequestFromCC.fromPartial({
    processGuid: 'the-app-guid-the-app-version',
    dropletUri: 'http://the-droplet.uri.com',
    stack: 'some-stack',
    startCommand: 'the-start-command with-arguments',
    executionMetadata: 'the-execution-metadata',
    environment: [{ name: 'foo', value: 'bar' }],
    memoryMb: 128,
    diskMb: 512,
    fileDescriptors: '32',
    numInstances: 23,
    routes: ['route1', 'route2'],
    logGuid: 'the-log-id',
    healthCheckType: 'port',
    healthCheckTimeoutInSeconds: 123456,
    etag: 'etag-updated-at',
    ...overrides,
  });
}

const DOCKER_METADATA = '{"cmd":["the-cmd"],"user":"some-user","ports":[{"Port":7070,"Protocol":"udp"},{"Port":8081,"Protocol":"tcp"}]}';

function dockerApp(overrides: CcDeepPartial<DesireAppRequestFromCC> = {}): DesireAppRequestFromCC {
  return buildpackApp({ dropletUri: '', dockerImage: 'user/repo:tag', executionMetadata: DOCKER_METADATA, ...overrides });
}

function routesText(routes: ProtoRoutes | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(routes?.routes ?? {}).map(([key, bytes]) => [key, Buffer.from(bytes).toString('utf8')]));
}

function recipeErrorOf(build: () => unknown): { reason: RecipeErrorReason; message: string } {
  try {
    build();
  } catch (error) {
    assert.ok(error instanceof RecipeError, `expected a RecipeError, got ${String(error)}`);
    return { reason: error.reason, message: error.message };
  }
  assert.fail('expected a RecipeError, got a result');
}

/** The receptor JSON of a 2015 action (§2.1) as the BBS action it became. */
function bbsActionOf(json: Record<string, any>): Action {
  const [[type, body]] = Object.entries(json) as [[string, any]];
  const partial: DeepPartial<Action> = {};
  switch (type) {
    case 'download':
      partial.downloadAction = { artifact: body.artifact, from: body.from, to: body.to, cacheKey: body.cache_key, logSource: body.log_source, user: body.user };
      break;
    case 'run':
      partial.runAction = {
        path: body.path,
        args: body.args,
        dir: body.dir,
        env: body.env,
        resourceLimits: body.resource_limits && { nofile: String(body.resource_limits.nofile) },
        user: body.user,
        logSource: body.log_source,
      };
      break;
    case 'timeout':
      partial.timeoutAction = { action: bbsActionOf(body.action), timeoutMs: String(body.timeout / 1_000_000), logSource: body.log_source };
      break;
    case 'serial':
      partial.serialAction = { actions: body.actions.map(bbsActionOf), logSource: body.log_source };
      break;
    case 'codependent':
      partial.codependentAction = { actions: body.actions.map(bbsActionOf), logSource: body.log_source };
      break;
    default:
      throw new Error(`no mapping for ${type}`);
  }
  return Action.fromPartial(partial);
}

// ---------------------------------------------------------------------------------------------
// §4.3 Full example

const FULL_EXAMPLE_REQUEST =
  '{"process_guid":"the-app-guid-the-app-version","droplet_uri":"http://the-droplet.uri.com","stack":"some-stack","start_command":"the-start-command with-arguments","execution_metadata":"the-execution-metadata","environment":[{"name":"foo","value":"bar"}],"memory_mb":128,"disk_mb":512,"file_descriptors":32,"num_instances":23,"routes":["route1","route2"],"log_guid":"the-log-id","health_check_type":"port","health_check_timeout_in_seconds":123456,"etag":"etag-updated-at"}';

const FULL_EXAMPLE_LRP = {
  process_guid: 'the-app-guid-the-app-version',
  domain: 'cf-apps',
  rootfs: 'preloaded:some-stack',
  instances: 23,
  env: [{ name: 'LANG', value: 'en_US.UTF-8' }],
  setup: {
    serial: {
      actions: [
        { download: { from: 'http://file-server.com/v1/static/some-lifecycle.tgz', to: '/tmp/lifecycle', cache_key: 'buildpack-some-stack-lifecycle', user: 'vcap' } },
        { download: { from: 'http://the-droplet.uri.com', to: '.', cache_key: 'droplets-the-app-guid-the-app-version', user: 'vcap' } },
      ],
    },
  },
  action: {
    codependent: {
      actions: [
        {
          run: {
            path: '/tmp/lifecycle/launcher',
            args: ['app', 'the-start-command with-arguments', 'the-execution-metadata'],
            env: [
              { name: 'foo', value: 'bar' },
              { name: 'PORT', value: '8080' },
            ],
            resource_limits: { nofile: 32 },
            user: 'vcap',
            log_source: 'APP',
          },
        },
      ],
    },
  },
  monitor: {
    timeout: {
      action: { run: { path: '/tmp/lifecycle/healthcheck', args: ['-port=8080'], resource_limits: { nofile: 1024 }, user: 'vcap', log_source: 'HEALTH' } },
      timeout: 30000000000,
    },
  },
  start_timeout: 123456,
  disk_mb: 512,
  memory_mb: 128,
  cpu_weight: 1,
  privileged: true,
  ports: [8080],
  routes: { 'cf-router': [{ hostnames: ['route1', 'route2'], port: 8080 }] },
  log_guid: 'the-log-id',
  log_source: 'CELL',
  metrics_guid: 'the-log-id',
  annotation: 'etag-updated-at',
};

describe('§4.3 full example: the spec request through the legacy codec, field by field', () => {
  const app = decodeLegacyJson<DesireAppRequestFromCC>('cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC', FULL_EXAMPLE_REQUEST);
  const lrp = desiredLrpFromDesireAppRequest(app, recipeConfig());
  const example = FULL_EXAMPLE_LRP;

  const cases: { name: string; input: unknown; want: unknown }[] = [
    { name: 'process_guid → processGuid', input: lrp.processGuid, want: example.process_guid },
    { name: 'domain → domain', input: lrp.domain, want: example.domain },
    { name: 'rootfs → rootFs', input: lrp.rootFs, want: example.rootfs },
    { name: 'instances → instances', input: lrp.instances, want: example.instances },
    { name: 'env → environmentVariables', input: lrp.environmentVariables, want: example.env },
    { name: 'setup → setup', input: lrp.setup, want: bbsActionOf(example.setup) },
    { name: 'action → action', input: lrp.action, want: bbsActionOf(example.action) },
    { name: 'monitor → monitor (30 s in ms)', input: lrp.monitor, want: bbsActionOf(example.monitor) },
    { name: 'start_timeout (s) → startTimeoutMs', input: lrp.startTimeoutMs, want: String(example.start_timeout * 1000) },
    { name: 'disk_mb → diskMb', input: lrp.diskMb, want: example.disk_mb },
    { name: 'memory_mb → memoryMb', input: lrp.memoryMb, want: example.memory_mb },
    { name: 'cpu_weight → cpuWeight', input: lrp.cpuWeight, want: example.cpu_weight },
    { name: 'privileged → privileged', input: lrp.privileged, want: example.privileged },
    { name: 'ports → ports', input: lrp.ports, want: example.ports },
    { name: 'routes → routes (keys)', input: Object.keys(routesText(lrp.routes)), want: Object.keys(example.routes) },
    { name: 'routes cf-router → JSON bytes', input: routesText(lrp.routes)['cf-router'], want: JSON.stringify(example.routes['cf-router']) },
    { name: 'log_guid → logGuid', input: lrp.logGuid, want: example.log_guid },
    { name: 'log_source → logSource', input: lrp.logSource, want: example.log_source },
    { name: 'metrics_guid → metricsGuid', input: lrp.metricsGuid, want: example.metrics_guid },
    { name: 'annotation → annotation', input: lrp.annotation, want: example.annotation },
    { name: 'egress_rules absent → []', input: lrp.egressRules, want: [] },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.deepStrictEqual(input, want));
  }

  test('today\'s check_definition is added: tcp 8080 as liveness and readiness, log source HEALTH', () => {
    assert.deepStrictEqual(
      lrp.checkDefinition,
      CheckDefinition.fromPartial({ checks: [{ tcpCheck: { port: 8080 } }], readinessChecks: [{ tcpCheck: { port: 8080 } }], logSource: 'HEALTH' }),
    );
  });

  test('deprecated fields with a replacement stay unset', () => {
    assert.equal(lrp.deprecatedStartTimeoutS, 0);
    assert.equal(lrp.monitor?.timeoutAction?.deprecatedTimeoutNs, '0');
    assert.equal(lrp.legacyDownloadUser, '');
    assert.equal(lrp.action?.codependentAction?.actions[0]?.runAction?.resourceLimits?.nproc, undefined);
  });

  test('metric tags as today\'s CC sets them, source_id matching metrics_guid', () => {
    assert.deepStrictEqual(lrp.metricTags, {
      source_id: { static: 'the-log-id', dynamic: 0 },
      process_id: { static: 'the-app-guid-the-app-version', dynamic: 0 },
      process_instance_id: { static: '', dynamic: 2 },
      instance_id: { static: '', dynamic: 1 },
    });
  });

  test('nothing else is set', () => {
    const want = DesiredLRP.fromPartial({
      processGuid: example.process_guid,
      domain: example.domain,
      rootFs: example.rootfs,
      instances: example.instances,
      environmentVariables: example.env,
      setup: bbsActionOf(example.setup),
      action: bbsActionOf(example.action),
      monitor: bbsActionOf(example.monitor),
      startTimeoutMs: '123456000',
      diskMb: example.disk_mb,
      memoryMb: example.memory_mb,
      cpuWeight: example.cpu_weight,
      privileged: example.privileged,
      ports: example.ports,
      routes: { routes: { 'cf-router': Buffer.from(JSON.stringify(example.routes['cf-router'])) } },
      logGuid: example.log_guid,
      logSource: example.log_source,
      metricsGuid: example.metrics_guid,
      metricTags: metricTagsFor(app),
      annotation: example.annotation,
      checkDefinition: lrp.checkDefinition,
    });
    assert.deepStrictEqual(lrp, want);
  });

  test('the LRP survives the BBS wire format unchanged', () => {
    assert.deepStrictEqual(DesiredLRP.decode(DesiredLRP.encode(lrp).finish()), lrp);
  });
});

// ---------------------------------------------------------------------------------------------
// Dispatch

describe('the recipe is chosen by lifecycle: docker whenever docker_image is set', () => {
  const cases = [
    { name: 'droplet only → buildpack', input: buildpackApp(), want: 'buildpack' },
    { name: 'image only → docker', input: dockerApp(), want: 'docker' },
    { name: 'both → docker (which then rejects it)', input: dockerApp({ dropletUri: 'http://the-droplet.uri.com' }), want: 'docker' },
    { name: 'neither → buildpack (which then rejects it)', input: buildpackApp({ dropletUri: '' }), want: 'buildpack' },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.equal(lifecycleOf(input), want));
  }

  test('a docker app gets the docker rootfs, a buildpack app the preloaded one', () => {
    assert.equal(desiredLrpFromDesireAppRequest(dockerApp(), recipeConfig()).rootFs, 'docker:///user/repo#tag');
    assert.equal(desiredLrpFromDesireAppRequest(buildpackApp(), recipeConfig()).rootFs, 'preloaded:some-stack');
  });
});

// ---------------------------------------------------------------------------------------------
// §4.3 Buildpack fields

function launcherOf(lrp: DesiredLRP) {
  return lrp.action?.codependentAction?.actions[0]?.runAction;
}

describe('§4.3 buildpack recipe fields', () => {
  const cases: { name: string; input: { app: DesireAppRequestFromCC; config?: Partial<RecipeConfig> }; want: (lrp: DesiredLRP) => void }[] = [
    {
      name: 'file_descriptors 0 → nofile 1024',
      input: { app: buildpackApp({ fileDescriptors: '0' }) },
      want: (lrp) => assert.deepStrictEqual(launcherOf(lrp)?.resourceLimits, { nofile: '1024', nproc: undefined }),
    },
    {
      name: 'file_descriptors beyond 2^53 → passed exactly',
      input: { app: buildpackApp({ fileDescriptors: '18446744073709551615' }) },
      want: (lrp) => assert.equal(launcherOf(lrp)?.resourceLimits?.nofile, '18446744073709551615'),
    },
    {
      name: 'no routes → cf-router hostnames []',
      input: { app: buildpackApp({ routes: [] }) },
      want: (lrp) => assert.deepStrictEqual(routesText(lrp.routes), { 'cf-router': '[{"hostnames":[],"port":8080}]' }),
    },
    {
      name: 'hostnames escaped as Go escapes them',
      input: { app: buildpackApp({ routes: ['a&b<c>'] }) },
      want: (lrp) => assert.equal(routesText(lrp.routes)['cf-router'], '[{"hostnames":["a\\u0026b\\u003cc\\u003e"],"port":8080}]'),
    },
    {
      name: 'privilegedContainers false → unprivileged',
      input: { app: buildpackApp(), config: { privilegedContainers: false } },
      want: (lrp) => assert.equal(lrp.privileged, false),
    },
    {
      name: 'lifecycle given as an http URL → used as it is',
      input: { app: buildpackApp(), config: { lifecycles: { 'buildpack/some-stack': 'http://elsewhere.com/lifecycle.tgz' } } },
      want: (lrp) => assert.equal(lrp.setup?.serialAction?.actions[0]?.downloadAction?.from, 'http://elsewhere.com/lifecycle.tgz'),
    },
    {
      name: 'lifecycle given as an https URL → used as it is',
      input: { app: buildpackApp(), config: { lifecycles: { 'buildpack/some-stack': 'https://elsewhere.com/lifecycle.tgz' } } },
      want: (lrp) => assert.equal(lrp.setup?.serialAction?.actions[0]?.downloadAction?.from, 'https://elsewhere.com/lifecycle.tgz'),
    },
    {
      name: 'file server URL and lifecycle path joined with one slash',
      input: { app: buildpackApp(), config: { fileServerUrl: 'http://file-server.com/', lifecycles: { 'buildpack/some-stack': '/dir/lifecycle.tgz' } } },
      want: (lrp) => assert.equal(lrp.setup?.serialAction?.actions[0]?.downloadAction?.from, 'http://file-server.com/v1/static/dir/lifecycle.tgz'),
    },
    {
      name: 'the stack picks the lifecycle and names its cache key',
      input: {
        app: buildpackApp({ stack: 'cflinuxfs4' }),
        config: { lifecycles: { 'buildpack/some-stack': 'wrong.tgz', 'buildpack/cflinuxfs4': 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz' } },
      },
      want: (lrp) => {
        assert.equal(lrp.rootFs, 'preloaded:cflinuxfs4');
        assert.deepStrictEqual(
          lrp.setup?.serialAction?.actions[0],
          Action.fromPartial({
            downloadAction: {
              from: 'http://file-server.com/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz',
              to: '/tmp/lifecycle',
              cacheKey: 'buildpack-cflinuxfs4-lifecycle',
              user: 'vcap',
            },
          }),
        );
      },
    },
    {
      name: 'health_check_timeout_in_seconds 0 → the configured default',
      input: { app: buildpackApp({ healthCheckTimeoutInSeconds: 0 }), config: { defaultHealthCheckTimeoutSeconds: 60 } },
      want: (lrp) => assert.equal(lrp.startTimeoutMs, '60000'),
    },
    {
      name: 'health_check_timeout_in_seconds 0 and no default → no start timeout, as in 2015',
      input: { app: buildpackApp({ healthCheckTimeoutInSeconds: 0 }) },
      want: (lrp) => assert.equal(lrp.startTimeoutMs, '0'),
    },
    {
      name: 'health_check_timeout_in_seconds wins over the default',
      input: { app: buildpackApp({ healthCheckTimeoutInSeconds: 180 }), config: { defaultHealthCheckTimeoutSeconds: 60 } },
      want: (lrp) => assert.equal(lrp.startTimeoutMs, '180000'),
    },
    {
      name: 'num_instances 0 is legal',
      input: { app: buildpackApp({ numInstances: 0 }) },
      want: (lrp) => assert.equal(lrp.instances, 0),
    },
    {
      name: 'no environment → the run action env is PORT alone',
      input: { app: buildpackApp({ environment: [] }) },
      want: (lrp) => assert.deepStrictEqual(launcherOf(lrp)?.env, [{ name: 'PORT', value: '8080' }]),
    },
    {
      name: 'VCAP_APPLICATION and a PORT from CC pass through; PORT 8080 is still appended last',
      input: {
        app: buildpackApp({
          environment: [
            { name: 'VCAP_APPLICATION', value: '{"application_name":"app"}' },
            { name: 'PORT', value: '1234' },
          ],
        }),
      },
      want: (lrp) =>
        assert.deepStrictEqual(launcherOf(lrp)?.env, [
          { name: 'VCAP_APPLICATION', value: '{"application_name":"app"}' },
          { name: 'PORT', value: '1234' },
          { name: 'PORT', value: '8080' },
        ]),
    },
    {
      name: 'an empty start command is passed as an empty argument (the launcher then uses the staged one)',
      input: { app: buildpackApp({ startCommand: '' }) },
      want: (lrp) => assert.deepStrictEqual(launcherOf(lrp)?.args, ['app', '', 'the-execution-metadata']),
    },
    {
      name: 'egress rules copied field by field',
      input: {
        app: buildpackApp({
          egressRules: [
            { protocol: 'tcp', destinations: ['10.0.0.0-10.0.0.255'], ports: [80, 443], log: true },
            { protocol: 'udp', destinations: ['0.0.0.0/0'], portRange: { start: 53, end: 54 } },
            { protocol: 'icmp', destinations: ['1.2.3.4'], icmpInfo: { type: 0, code: 1 } },
            { protocol: 'all', destinations: ['5.6.7.8'] },
          ],
        }),
      },
      want: (lrp) =>
        assert.deepStrictEqual(
          lrp.egressRules,
          [
            { protocol: 'tcp', destinations: ['10.0.0.0-10.0.0.255'], ports: [80, 443], log: true },
            { protocol: 'udp', destinations: ['0.0.0.0/0'], portRange: { start: 53, end: 54 } },
            { protocol: 'icmp', destinations: ['1.2.3.4'], icmpInfo: { type: 0, code: 1 } },
            { protocol: 'all', destinations: ['5.6.7.8'] },
          ].map((rule) => DesiredLRP.fromPartial({ egressRules: [rule] }).egressRules[0]),
        ),
    },
    {
      name: 'docker credentials are ignored for a buildpack app',
      input: { app: buildpackApp({ dockerUser: 'someone', dockerPassword: 'secret' }) },
      want: (lrp) => assert.deepStrictEqual([lrp.imageUsername, lrp.imagePassword], ['', '']),
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => want(desiredLrpFromDesireAppRequest(input.app, recipeConfig(input.config))));
  }
});

// ---------------------------------------------------------------------------------------------
// §4.5 CPU weight

describe('§4.5 CPU weight from memory', () => {
  const cases = [
    { name: '0 MB', input: 0, want: 1 },
    { name: '128 MB', input: 128, want: 1 },
    { name: '255 MB', input: 255, want: 1 },
    { name: '256 MB', input: 256, want: 1 },
    { name: '1024 MB', input: 1024, want: 10 },
    { name: '2048 MB', input: 2048, want: 23 },
    { name: '4224 MB', input: 4224, want: 50 },
    { name: '8191 MB (truncated, not rounded)', input: 8191, want: 99 },
    { name: '8192 MB', input: 8192, want: 100 },
    { name: '8193 MB', input: 8193, want: 100 },
    { name: '65536 MB', input: 65536, want: 100 },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      assert.equal(cpuWeightFor(input), want);
      assert.equal(desiredLrpFromDesireAppRequest(buildpackApp({ memoryMb: input }), recipeConfig()).cpuWeight, want);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Health checks

function monitorFor(port: number, user: string, extraArgs: string[] = []): Action {
  return Action.fromPartial({
    timeoutAction: {
      action: {
        runAction: {
          path: '/tmp/lifecycle/healthcheck',
          args: [`-port=${port}`, ...extraArgs],
          resourceLimits: { nofile: '1024' },
          user,
          logSource: 'HEALTH',
        },
      },
      timeoutMs: '30000',
    },
  });
}

function checksFor(check: DeepPartial<CheckDefinition>['checks']): CheckDefinition {
  return CheckDefinition.fromPartial({ checks: check, readinessChecks: check, logSource: 'HEALTH' });
}

describe('health check types → monitor action and check_definition', () => {
  const cases: { name: string; input: DesireAppRequestFromCC; want: { monitor: Action | undefined; checkDefinition: CheckDefinition | undefined } }[] = [
    {
      name: '"" (unspecified) → port check',
      input: buildpackApp({ healthCheckType: '' }),
      want: { monitor: monitorFor(8080, 'vcap'), checkDefinition: checksFor([{ tcpCheck: { port: 8080 } }]) },
    },
    {
      name: 'port → port check',
      input: buildpackApp({ healthCheckType: 'port' }),
      want: { monitor: monitorFor(8080, 'vcap'), checkDefinition: checksFor([{ tcpCheck: { port: 8080 } }]) },
    },
    {
      name: 'http → healthcheck -uri and an http check on the endpoint',
      input: buildpackApp({ healthCheckType: 'http', healthCheckHttpEndpoint: '/health' }),
      want: {
        monitor: monitorFor(8080, 'vcap', ['-uri=/health']),
        checkDefinition: checksFor([{ httpCheck: { port: 8080, path: '/health' } }]),
      },
    },
    {
      name: 'http without an endpoint → /',
      input: buildpackApp({ healthCheckType: 'http' }),
      want: { monitor: monitorFor(8080, 'vcap', ['-uri=/']), checkDefinition: checksFor([{ httpCheck: { port: 8080, path: '/' } }]) },
    },
    {
      name: 'none → neither',
      input: buildpackApp({ healthCheckType: 'none' }),
      want: { monitor: undefined, checkDefinition: undefined },
    },
    {
      name: 'an unknown type (today\'s process) → neither',
      input: buildpackApp({ healthCheckType: 'process' }),
      want: { monitor: undefined, checkDefinition: undefined },
    },
    {
      name: 'docker port → the image\'s port and user',
      input: dockerApp({ healthCheckType: 'port' }),
      want: { monitor: monitorFor(8081, 'some-user'), checkDefinition: checksFor([{ tcpCheck: { port: 8081 } }]) },
    },
    {
      name: 'docker http → the image\'s port and user',
      input: dockerApp({ healthCheckType: 'http', healthCheckHttpEndpoint: '/ready' }),
      want: {
        monitor: monitorFor(8081, 'some-user', ['-uri=/ready']),
        checkDefinition: checksFor([{ httpCheck: { port: 8081, path: '/ready' } }]),
      },
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      const lrp = desiredLrpFromDesireAppRequest(input, recipeConfig());
      assert.deepStrictEqual({ monitor: lrp.monitor, checkDefinition: lrp.checkDefinition }, want);
    });
  }

  test('none still downloads the lifecycle (the launcher lives there)', () => {
    const lrp = desiredLrpFromDesireAppRequest(buildpackApp({ healthCheckType: 'none' }), recipeConfig());
    assert.equal(lrp.setup?.serialAction?.actions[0]?.downloadAction?.to, '/tmp/lifecycle');
  });
});

// ---------------------------------------------------------------------------------------------
// SSH

describe('SSH: diego-sshd beside the app and a diego-ssh route', () => {
  const sshdFor = (port: number, user: string, nofile: string, env: { name: string; value: string }[]) =>
    Action.fromPartial({
      runAction: {
        path: '/tmp/lifecycle/diego-sshd',
        args: ['-address=0.0.0.0:2222', '-hostKey=host-private-key-pem', '-authorizedKey=ssh-rsa user-public-key', '-inheritDaemonEnv', '-logLevel=fatal'],
        env: [...env, { name: 'PORT', value: String(port) }],
        resourceLimits: { nofile },
        user,
      },
    });
  const sshRoute =
    '{"container_port":2222,"host_fingerprint":"aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa:aa","private_key":"user-private-key-pem"}';

  const cases: {
    name: string;
    input: DesireAppRequestFromCC;
    want: { ports: number[]; actions: number; sshd?: Action; routes: Record<string, string>; keyPairs: number };
  }[] = [
    {
      name: 'buildpack, ssh off → app alone, no keys',
      input: buildpackApp({ allowSsh: false }),
      want: { ports: [8080], actions: 1, routes: { 'cf-router': '[{"hostnames":["route1","route2"],"port":8080}]' }, keyPairs: 0 },
    },
    {
      name: 'buildpack, ssh on → sshd with the host key and the user public key; route with host fingerprint and user private key',
      input: buildpackApp({ allowSsh: true }),
      want: {
        ports: [8080, 2222],
        actions: 2,
        sshd: sshdFor(8080, 'vcap', '32', [{ name: 'foo', value: 'bar' }]),
        routes: { 'cf-router': '[{"hostnames":["route1","route2"],"port":8080}]', 'diego-ssh': sshRoute },
        keyPairs: 2,
      },
    },
    {
      name: 'buildpack, ssh on, file_descriptors 0 → sshd nofile 1024 like the app',
      input: buildpackApp({ allowSsh: true, fileDescriptors: '0', environment: [] }),
      want: {
        ports: [8080, 2222],
        actions: 2,
        sshd: sshdFor(8080, 'vcap', '1024', []),
        routes: { 'cf-router': '[{"hostnames":["route1","route2"],"port":8080}]', 'diego-ssh': sshRoute },
        keyPairs: 2,
      },
    },
    {
      name: 'docker, ssh on → sshd as the image user, ports [exposed, 2222]',
      input: dockerApp({ allowSsh: true }),
      want: {
        ports: [8081, 2222],
        actions: 2,
        sshd: sshdFor(8081, 'some-user', '32', [{ name: 'foo', value: 'bar' }]),
        routes: { 'cf-router': '[{"hostnames":["route1","route2"],"port":8081}]', 'diego-ssh': sshRoute },
        keyPairs: 2,
      },
    },
    {
      name: 'docker, ssh off → app alone',
      input: dockerApp({ allowSsh: false }),
      want: { ports: [8081], actions: 1, routes: { 'cf-router': '[{"hostnames":["route1","route2"],"port":8081}]' }, keyPairs: 0 },
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      const keys = fakeKeys();
      const lrp = desiredLrpFromDesireAppRequest(input, recipeConfig({ generateSshKeyPair: keys.generate }));
      const actions = lrp.action?.codependentAction?.actions ?? [];
      assert.deepStrictEqual(lrp.ports, want.ports);
      assert.equal(actions.length, want.actions);
      if (want.sshd) assert.deepStrictEqual(actions[1], want.sshd);
      assert.deepStrictEqual(routesText(lrp.routes), want.routes);
      assert.equal(keys.calls(), want.keyPairs);
    });
  }

  test('an empty fingerprint from the generator is omitted from the route, as Go omitted it', () => {
    let calls = 0;
    const generate = () => (++calls === 1 ? { ...HOST_KEY, fingerprint: '' } : USER_KEY);
    const lrp = desiredLrpFromDesireAppRequest(buildpackApp({ allowSsh: true }), recipeConfig({ generateSshKeyPair: generate }));
    assert.equal(routesText(lrp.routes)['diego-ssh'], '{"container_port":2222,"private_key":"user-private-key-pem"}');
  });

  test('a failing generator is a server fault: SshKeyGenerationError with a fixed message, not a RecipeError', () => {
    const generate = () => {
      throw new Error('entropy exhausted');
    };
    assert.throws(
      () => desiredLrpFromDesireAppRequest(buildpackApp({ allowSsh: true }), recipeConfig({ generateSshKeyPair: generate })),
      (error: unknown) => error instanceof SshKeyGenerationError && !(error instanceof RecipeError) && error.message === 'failed to generate ssh key pair',
    );
  });

  test('input errors are raised before any key exists, so no error can carry one', () => {
    const keys = fakeKeys();
    const config = recipeConfig({ generateSshKeyPair: keys.generate });
    for (const app of [
      buildpackApp({ allowSsh: true, numInstances: -1 }),
      buildpackApp({ allowSsh: true, fileDescriptors: 'x' }),
      buildpackApp({ allowSsh: true, stack: 'unknown' }),
      dockerApp({ allowSsh: true, executionMetadata: '' }),
      dockerApp({ allowSsh: true, dockerImage: 'https://docker.io/repo' }),
    ]) {
      assert.throws(() => desiredLrpFromDesireAppRequest(app, config), RecipeError);
    }
    assert.equal(keys.calls(), 0);
  });
});

// ---------------------------------------------------------------------------------------------
// §4.4 Docker recipe

describe('§4.4 docker recipe fields', () => {
  test('the whole docker LRP', () => {
    const lrp = desiredLrpFromDesireAppRequest(dockerApp({ dockerImage: 'cloudfoundry/diego-docker-app:latest' }), recipeConfig());
    const user = 'some-user';
    assert.deepStrictEqual(
      lrp,
      DesiredLRP.fromPartial({
        processGuid: 'the-app-guid-the-app-version',
        domain: 'cf-apps',
        rootFs: 'docker:///cloudfoundry/diego-docker-app#latest',
        instances: 23,
        environmentVariables: [],
        setup: {
          serialAction: {
            actions: [
              {
                downloadAction: {
                  from: 'http://file-server.com/v1/static/docker_app_lifecycle/docker_app_lifecycle.tgz',
                  to: '/tmp/lifecycle',
                  cacheKey: 'docker-lifecycle',
                  user,
                },
              },
            ],
          },
        },
        action: {
          codependentAction: {
            actions: [
              {
                runAction: {
                  path: '/tmp/lifecycle/launcher',
                  args: ['app', 'the-start-command with-arguments', DOCKER_METADATA],
                  env: [
                    { name: 'foo', value: 'bar' },
                    { name: 'PORT', value: '8081' },
                  ],
                  resourceLimits: { nofile: '32' },
                  user,
                  logSource: 'APP',
                },
              },
            ],
          },
        },
        monitor: monitorFor(8081, user),
        checkDefinition: checksFor([{ tcpCheck: { port: 8081 } }]),
        startTimeoutMs: '123456000',
        diskMb: 512,
        memoryMb: 128,
        cpuWeight: 1,
        privileged: false,
        ports: [8081],
        routes: { routes: { 'cf-router': Buffer.from('[{"hostnames":["route1","route2"],"port":8081}]') } },
        logGuid: 'the-log-id',
        logSource: 'CELL',
        metricsGuid: 'the-log-id',
        metricTags: metricTagsFor(dockerApp({ dockerImage: 'cloudfoundry/diego-docker-app:latest' })),
        annotation: 'etag-updated-at',
      }),
    );
  });

  const cases: { name: string; input: { app: DesireAppRequestFromCC; config?: Partial<RecipeConfig> }; want: (lrp: DesiredLRP) => void }[] = [
    {
      name: 'never privileged, even when buildpack containers are',
      input: { app: dockerApp(), config: { privilegedContainers: true } },
      want: (lrp) => assert.equal(lrp.privileged, false),
    },
    {
      name: 'no user in the metadata → root everywhere',
      input: { app: dockerApp({ executionMetadata: '{}', allowSsh: false }) },
      want: (lrp) => {
        assert.equal(lrp.setup?.serialAction?.actions[0]?.downloadAction?.user, 'root');
        assert.equal(launcherOf(lrp)?.user, 'root');
        assert.equal(lrp.monitor?.timeoutAction?.action?.runAction?.user, 'root');
      },
    },
    {
      name: 'an empty user → root',
      input: { app: dockerApp({ executionMetadata: '{"user":""}' }) },
      want: (lrp) => assert.equal(launcherOf(lrp)?.user, 'root'),
    },
    {
      name: 'no ports in the metadata → 8080',
      input: { app: dockerApp({ executionMetadata: '{"user":"u"}' }) },
      want: (lrp) => {
        assert.deepStrictEqual(lrp.ports, [8080]);
        assert.deepStrictEqual(launcherOf(lrp)?.env?.at(-1), { name: 'PORT', value: '8080' });
      },
    },
    {
      name: 'keys matched case-insensitively, as Go decodes them',
      input: { app: dockerApp({ executionMetadata: '{"USER":"upper","Ports":[{"port":9090,"protocol":"tcp"}]}' }) },
      want: (lrp) => {
        assert.equal(launcherOf(lrp)?.user, 'upper');
        assert.deepStrictEqual(lrp.ports, [9090]);
      },
    },
    {
      name: 'unknown metadata keys are ignored',
      input: { app: dockerApp({ executionMetadata: '{"something_new":{"x":1},"workdir":"/app","entrypoint":null}' }) },
      want: (lrp) => assert.deepStrictEqual(lrp.ports, [8080]),
    },
    {
      name: 'metadata null → defaults',
      input: { app: dockerApp({ executionMetadata: 'null' }) },
      want: (lrp) => assert.deepStrictEqual([lrp.ports, launcherOf(lrp)?.user], [[8080], 'root']),
    },
    {
      name: 'registry credentials → image credentials',
      input: { app: dockerApp({ dockerUser: 'someone', dockerPassword: 'secret', dockerLoginServer: 'registry.example.com' }) },
      want: (lrp) => assert.deepStrictEqual([lrp.imageUsername, lrp.imagePassword], ['someone', 'secret']),
    },
    {
      name: 'a user without a password → no image credentials (the BBS wants both or neither)',
      input: { app: dockerApp({ dockerUser: 'someone' }) },
      want: (lrp) => assert.deepStrictEqual([lrp.imageUsername, lrp.imagePassword], ['', '']),
    },
    {
      name: 'the docker lifecycle as an https URL',
      input: { app: dockerApp(), config: { lifecycles: { docker: 'https://elsewhere.com/docker.tgz' } } },
      want: (lrp) => assert.equal(lrp.setup?.serialAction?.actions[0]?.downloadAction?.from, 'https://elsewhere.com/docker.tgz'),
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => want(desiredLrpFromDesireAppRequest(input.app, recipeConfig(input.config))));
  }
});

// ---------------------------------------------------------------------------------------------
// §4.6 Docker image reference → rootfs URI

describe('§4.6 docker image reference → rootfs URI', () => {
  const cases = [
    // Every row of the spec's table.
    { name: 'image', input: 'image', want: 'docker:///library/image' },
    { name: 'user/image', input: 'user/image', want: 'docker:///user/image' },
    { name: 'image:tag', input: 'image:tag', want: 'docker:///library/image#tag' },
    { name: 'user/image:tag', input: 'user/image:tag', want: 'docker:///user/image#tag' },
    { name: 'user/repo:tag', input: 'user/repo:tag', want: 'docker:///user/repo#tag' },
    { name: 'registry with port', input: '10.244.2.6:8080/image', want: 'docker://10.244.2.6:8080/image' },
    { name: 'registry with port, user and tag', input: '10.244.2.6:8080/user/image:tag', want: 'docker://10.244.2.6:8080/user/image#tag' },
    { name: 'docker.io/image', input: 'docker.io/image', want: 'docker://docker.io/library/image' },
    { name: 'docker.io/user/image:tag', input: 'docker.io/user/image:tag', want: 'docker://docker.io/user/image#tag' },
    // The rules behind the rows.
    { name: 'a first segment without . or : is a Docker Hub namespace', input: 'some-user/some-image', want: 'docker:///some-user/some-image' },
    { name: 'a dotted host is a registry (no library/ prefix)', input: 'registry.example.com/image', want: 'docker://registry.example.com/image' },
    { name: 'localhost is a registry', input: 'localhost/image:1.0', want: 'docker://localhost/image#1.0' },
    { name: 'localhost with port', input: 'localhost:5000/user/image', want: 'docker://localhost:5000/user/image' },
    { name: 'docker.io/library/image keeps one library/', input: 'docker.io/library/image', want: 'docker://docker.io/library/image' },
    { name: 'a nested repository', input: 'registry.example.com/a/b/c:v2', want: 'docker://registry.example.com/a/b/c#v2' },
    { name: 'no tag → no fragment (latest is the cell\'s default)', input: 'user/image', want: 'docker:///user/image' },
    { name: 'an empty tag → no fragment', input: 'image:', want: 'docker:///library/image' },
    // Digests.
    {
      name: 'a digest travels in the fragment',
      input: 'user/image@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      want: 'docker:///user/image#sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    },
    {
      name: 'an official image by digest',
      input: 'image@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      want: 'docker:///library/image#sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    },
    {
      name: 'a tag beside a digest is dropped',
      input: '10.244.2.6:8080/user/image:tag@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      want: 'docker://10.244.2.6:8080/user/image#sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    },
  ];
  for (const { name, input, want } of cases) {
    test(`${name}: ${input}`, () => assert.equal(dockerRootfsUriFor(input), want));
  }

  const errors: { name: string; input: string; want: { reason: RecipeErrorReason; message: string } }[] = [
    {
      name: 'a scheme (spec row)',
      input: 'https://docker.io/repo',
      want: { reason: 'INVALID_DOCKER_IMAGE', message: 'docker URI [https://docker.io/repo] should not contain scheme' },
    },
    {
      name: 'a malformed digest',
      input: 'user/image@sha256',
      want: { reason: 'INVALID_DOCKER_IMAGE', message: 'docker image [user/image@sha256] is not a valid image reference: malformed digest' },
    },
    {
      name: 'whitespace',
      input: 'user/my image',
      want: { reason: 'INVALID_DOCKER_IMAGE', message: 'docker image [user/my image] is not a valid image reference: contains whitespace, control characters or #' },
    },
    {
      name: 'a registry without a repository',
      input: 'registry.example.com/',
      want: { reason: 'INVALID_DOCKER_IMAGE', message: 'docker image [registry.example.com/] is not a valid image reference: missing repository name' },
    },
    { name: 'empty', input: '', want: { reason: 'DOCKER_IMAGE_MISSING', message: 'desired app missing docker_image' } },
  ];
  for (const { name, input, want } of errors) {
    test(`rejects ${name}`, () => assert.deepStrictEqual(recipeErrorOf(() => dockerRootfsUriFor(input)), want));
  }
});

// ---------------------------------------------------------------------------------------------
// Exposed port

describe('exposedPortFor: 8080 for buildpack apps, the image\'s first tcp port for docker', () => {
  const cases = [
    { name: 'buildpack → 8080', input: buildpackApp(), want: 8080 },
    { name: 'buildpack ignores execution metadata ports', input: buildpackApp({ executionMetadata: '{"ports":[{"Port":9000,"Protocol":"tcp"}]}' }), want: 8080 },
    { name: 'docker, first tcp after a udp', input: dockerApp(), want: 8081 },
    { name: 'docker, several tcp → the first', input: dockerApp({ executionMetadata: '{"ports":[{"Port":3000,"Protocol":"tcp"},{"Port":4000,"Protocol":"tcp"}]}' }), want: 3000 },
    { name: 'docker, no ports key → 8080', input: dockerApp({ executionMetadata: '{}' }), want: 8080 },
    { name: 'docker, empty ports → 8080', input: dockerApp({ executionMetadata: '{"ports":[]}' }), want: 8080 },
    { name: 'docker, ports null → 8080', input: dockerApp({ executionMetadata: '{"ports":null}' }), want: 8080 },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.equal(exposedPortFor(input), want));
  }
});

// ---------------------------------------------------------------------------------------------
// Update

describe('§4.2 update of an existing LRP: instances, cf-router, annotation', () => {
  const sshRouteBytes = Buffer.from('{"container_port":2222,"host_fingerprint":"aa:aa","private_key":"kept"}');
  const tcpRouteBytes = Buffer.from('[{"router_group_guid":"rg","external_port":61000,"container_port":8080}]');
  const oldCfRouter = Buffer.from('[{"hostnames":["old-route"],"port":8080}]');

  const cases: { name: string; input: { app: DesireAppRequestFromCC; existing: ProtoRoutes | undefined }; want: DesiredLRPUpdate }[] = [
    {
      name: 'cf-router replaced; diego-ssh and tcp-router kept byte for byte',
      input: {
        app: buildpackApp({ numInstances: 5, routes: ['new-route'], etag: 'etag-2' }),
        existing: ProtoRoutes.fromPartial({ routes: { 'cf-router': oldCfRouter, 'diego-ssh': sshRouteBytes, 'tcp-router': tcpRouteBytes } }),
      },
      want: DesiredLRPUpdate.fromPartial({
        instances: 5,
        annotation: 'etag-2',
        routes: {
          routes: {
            'cf-router': Buffer.from('[{"hostnames":["new-route"],"port":8080}]'),
            'diego-ssh': sshRouteBytes,
            'tcp-router': tcpRouteBytes,
          },
        },
      }),
    },
    {
      name: 'an LRP without routes is treated as {}',
      input: { app: buildpackApp({ routes: ['route1'] }), existing: undefined },
      want: DesiredLRPUpdate.fromPartial({
        instances: 23,
        annotation: 'etag-updated-at',
        routes: { routes: { 'cf-router': Buffer.from('[{"hostnames":["route1"],"port":8080}]') } },
      }),
    },
    {
      name: 'an LRP with an empty routes map gains cf-router',
      input: { app: buildpackApp({ routes: [] }), existing: ProtoRoutes.fromPartial({}) },
      want: DesiredLRPUpdate.fromPartial({
        instances: 23,
        annotation: 'etag-updated-at',
        routes: { routes: { 'cf-router': Buffer.from('[{"hostnames":[],"port":8080}]') } },
      }),
    },
    {
      name: 'docker → the image\'s port',
      input: { app: dockerApp({ routes: ['d'] }), existing: ProtoRoutes.fromPartial({ routes: { 'cf-router': oldCfRouter } }) },
      want: DesiredLRPUpdate.fromPartial({
        instances: 23,
        annotation: 'etag-updated-at',
        routes: { routes: { 'cf-router': Buffer.from('[{"hostnames":["d"],"port":8081}]') } },
      }),
    },
    {
      name: 'zero instances and an empty etag are sent, not left out',
      input: { app: buildpackApp({ numInstances: 0, etag: '', routes: [] }), existing: undefined },
      want: DesiredLRPUpdate.fromPartial({
        instances: 0,
        annotation: '',
        routes: { routes: { 'cf-router': Buffer.from('[{"hostnames":[],"port":8080}]') } },
      }),
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => {
      const update = desiredLrpUpdateFromDesireAppRequest(input.app, input.existing, recipeConfig());
      assert.deepStrictEqual(update, want);
      // Presence survives the wire: 0 and '' are encoded, so the BBS sets them.
      assert.deepStrictEqual(DesiredLRPUpdate.decode(DesiredLRPUpdate.encode(update).finish()), want);
    });
  }

  test('the update shares no bytes with the existing routes', () => {
    const existing = ProtoRoutes.fromPartial({ routes: { 'diego-ssh': Buffer.from(sshRouteBytes) } });
    const update = desiredLrpUpdateFromDesireAppRequest(buildpackApp(), existing, recipeConfig());
    existing.routes['diego-ssh']!.fill(0);
    assert.deepStrictEqual(update.routes?.routes['diego-ssh'], sshRouteBytes);
  });

  test('no keys are generated and the recipe is not rebuilt (a missing droplet does not matter)', () => {
    const keys = fakeKeys();
    const update = desiredLrpUpdateFromDesireAppRequest(buildpackApp({ allowSsh: true, dropletUri: '' }), undefined, recipeConfig({ generateSshKeyPair: keys.generate }));
    assert.equal(update.instances, 23);
    assert.equal(keys.calls(), 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

describe('errors: typed, with the spec\'s messages', () => {
  const cases: { name: string; input: () => unknown; want: { reason: RecipeErrorReason; message: string } }[] = [
    {
      name: 'buildpack without droplet_uri',
      input: () => desiredLrpFromDesireAppRequest(buildpackApp({ dropletUri: '' }), recipeConfig()),
      want: { reason: 'APP_SOURCE_MISSING', message: 'desired app missing droplet_uri' },
    },
    {
      name: 'both droplet_uri and docker_image',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ dropletUri: 'http://the-droplet.uri.com' }), recipeConfig()),
      want: { reason: 'MULTIPLE_APP_SOURCES', message: 'desired app contains both droplet_uri and docker_image; exactly one is required.' },
    },
    {
      name: 'both sources given to the buildpack builder directly',
      input: () => buildpackRecipeBuilder.build(dockerApp({ dropletUri: 'http://the-droplet.uri.com' }), recipeConfig()),
      want: { reason: 'MULTIPLE_APP_SOURCES', message: 'desired app contains both droplet_uri and docker_image; exactly one is required.' },
    },
    {
      name: 'docker builder without docker_image',
      input: () => dockerRecipeBuilder.build(dockerApp({ dockerImage: '' }), recipeConfig()),
      want: { reason: 'DOCKER_IMAGE_MISSING', message: 'desired app missing docker_image' },
    },
    {
      name: 'no buildpack lifecycle for the stack',
      input: () => desiredLrpFromDesireAppRequest(buildpackApp({ stack: 'other-stack' }), recipeConfig()),
      want: { reason: 'NO_LIFECYCLE_DEFINED', message: 'no lifecycle binary bundle defined for stack' },
    },
    {
      name: 'a stack named like an Object property is still unknown',
      input: () => desiredLrpFromDesireAppRequest(buildpackApp({ stack: 'constructor' }), recipeConfig({ lifecycles: {} })),
      want: { reason: 'NO_LIFECYCLE_DEFINED', message: 'no lifecycle binary bundle defined for stack' },
    },
    {
      name: 'no docker lifecycle',
      input: () => desiredLrpFromDesireAppRequest(dockerApp(), recipeConfig({ lifecycles: { 'buildpack/some-stack': 'x.tgz' } })),
      want: { reason: 'NO_LIFECYCLE_DEFINED', message: 'no lifecycle binary bundle defined for stack' },
    },
    {
      name: 'docker image with a scheme',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ dockerImage: 'https://docker.io/repo' }), recipeConfig()),
      want: { reason: 'INVALID_DOCKER_IMAGE', message: 'docker URI [https://docker.io/repo] should not contain scheme' },
    },
    {
      name: 'docker execution_metadata empty (not JSON)',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: not valid JSON' },
    },
    {
      name: 'docker execution_metadata not JSON',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: 'the-execution-metadata' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: not valid JSON' },
    },
    {
      name: 'docker execution_metadata a list',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '[]' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: must be a JSON object' },
    },
    {
      name: 'docker ports not a list',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '{"ports":"8080"}' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: "ports" must be a list' },
    },
    {
      name: 'docker Port a string',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '{"ports":[{"Port":"8080","Protocol":"tcp"}]}' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: "Port" must be an integer from 0 to 65535, not "8080"' },
    },
    {
      name: 'docker Port beyond uint16',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '{"ports":[{"Port":70000,"Protocol":"tcp"}]}' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: "Port" must be an integer from 0 to 65535, not 70000' },
    },
    {
      name: 'docker user not a string',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '{"user":0}' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: "user" must be a string' },
    },
    {
      name: 'docker cmd not a list of strings',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '{"cmd":"run"}' }), recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: "cmd" must be a list of strings' },
    },
    {
      name: 'docker ports exposed but none tcp',
      input: () => desiredLrpFromDesireAppRequest(dockerApp({ executionMetadata: '{"ports":[{"Port":53,"Protocol":"udp"}]}' }), recipeConfig()),
      want: { reason: 'INVALID_EXPOSED_PORT', message: 'No tcp ports found in image metadata' },
    },
    {
      name: 'docker tcp port 0',
      input: () => exposedPortFor(dockerApp({ executionMetadata: '{"ports":[{"Port":0,"Protocol":"tcp"}]}' })),
      want: { reason: 'INVALID_EXPOSED_PORT', message: 'invalid port 0 in image metadata: must be 1 to 65535' },
    },
    {
      name: 'negative num_instances on create',
      input: () => desiredLrpFromDesireAppRequest(buildpackApp({ numInstances: -1 }), recipeConfig()),
      want: { reason: 'INVALID_INSTANCES', message: 'invalid num_instances -1: must be 0 or more' },
    },
    {
      name: 'negative num_instances on update',
      input: () => desiredLrpUpdateFromDesireAppRequest(buildpackApp({ numInstances: -3 }), undefined, recipeConfig()),
      want: { reason: 'INVALID_INSTANCES', message: 'invalid num_instances -3: must be 0 or more' },
    },
    {
      name: 'file_descriptors not a number',
      input: () => desiredLrpFromDesireAppRequest(buildpackApp({ fileDescriptors: 'lots' }), recipeConfig()),
      want: { reason: 'INVALID_FILE_DESCRIPTORS', message: 'invalid file_descriptors "lots": must be a non-negative integer' },
    },
    {
      name: 'file_descriptors beyond uint64',
      input: () => desiredLrpFromDesireAppRequest(buildpackApp({ fileDescriptors: '18446744073709551616' }), recipeConfig()),
      want: { reason: 'INVALID_FILE_DESCRIPTORS', message: 'invalid file_descriptors "18446744073709551616": must be a non-negative integer' },
    },
    {
      name: 'update of a docker app with unreadable metadata',
      input: () => desiredLrpUpdateFromDesireAppRequest(dockerApp({ executionMetadata: '' }), undefined, recipeConfig()),
      want: { reason: 'INVALID_EXECUTION_METADATA', message: 'invalid execution_metadata: not valid JSON' },
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.deepStrictEqual(recipeErrorOf(input), want));
  }
});

// ---------------------------------------------------------------------------------------------
// Config

describe('§1.4/§1.5 lifecycle URLs and the configuration check', () => {
  const urls = [
    { name: 'relative path', input: ['some-lifecycle.tgz', 'http://file-server.com'], want: 'http://file-server.com/v1/static/some-lifecycle.tgz' },
    { name: 'nested relative path', input: ['buildpack_app_lifecycle/buildpack_app_lifecycle.tgz', 'http://127.0.0.1:8080'], want: 'http://127.0.0.1:8080/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz' },
    { name: 'slashes on both sides collapse to one', input: ['/some-lifecycle.tgz', 'http://file-server.com/'], want: 'http://file-server.com/v1/static/some-lifecycle.tgz' },
    { name: 'http URL as it is', input: ['http://a.com/l.tgz', 'http://file-server.com'], want: 'http://a.com/l.tgz' },
    { name: 'https URL as it is', input: ['https://a.com/l.tgz', 'http://file-server.com'], want: 'https://a.com/l.tgz' },
  ];
  for (const { name, input, want } of urls) {
    test(name, () => assert.equal(lifecycleDownloadUrl(input[0]!, input[1]!), want));
  }

  test('another scheme is a configuration error, not a RecipeError', () => {
    assert.throws(() => lifecycleDownloadUrl('ftp://a.com/l.tgz', 'http://file-server.com'), (error: unknown) => error instanceof RecipeConfigError && !(error instanceof RecipeError));
    assert.throws(
      () => desiredLrpFromDesireAppRequest(buildpackApp(), recipeConfig({ lifecycles: { 'buildpack/some-stack': 'ftp://a.com/l.tgz' } })),
      RecipeConfigError,
    );
  });

  const configs: { name: string; input: Partial<RecipeConfig>; want: RegExp | undefined }[] = [
    { name: 'the test configuration is valid', input: {}, want: undefined },
    { name: 'a file server URL that is not a URL', input: { fileServerUrl: 'file-server' }, want: /invalid file server URL/ },
    { name: 'a file server URL that is not http', input: { fileServerUrl: 'ftp://file-server' }, want: /must be http or https/ },
    { name: 'a lifecycle with an unknown scheme', input: { lifecycles: { docker: 's3://bucket/docker.tgz' } }, want: /has scheme s3/ },
    { name: 'a lifecycle with an empty path', input: { lifecycles: { docker: '' } }, want: /empty path/ },
    { name: 'a negative default health check timeout', input: { defaultHealthCheckTimeoutSeconds: -1 }, want: /default health check timeout/ },
  ];
  for (const { name, input, want } of configs) {
    test(`checkRecipeConfig: ${name}`, () => {
      if (want === undefined) checkRecipeConfig(recipeConfig(input));
      else assert.throws(() => checkRecipeConfig(recipeConfig(input)), (error: unknown) => error instanceof RecipeConfigError && want.test(error.message));
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Purity

describe('purity', () => {
  test('same input, same generator → same LRP; the input is not modified', () => {
    const app = dockerApp({ allowSsh: true, egressRules: [{ protocol: 'tcp', destinations: ['1.1.1.1'], ports: [80] }] });
    const before = structuredClone(app);
    const first = desiredLrpFromDesireAppRequest(app, recipeConfig({ generateSshKeyPair: fakeKeys().generate }));
    const second = desiredLrpFromDesireAppRequest(app, recipeConfig({ generateSshKeyPair: fakeKeys().generate }));
    assert.deepStrictEqual(first, second);
    assert.deepStrictEqual(app, before);
    first.egressRules[0]!.destinations.push('changed');
    first.action!.codependentAction!.actions[0]!.runAction!.env.push({ name: 'X', value: 'y' });
    assert.deepStrictEqual(app, before);
  });
});

// ---------------------------------------------------------------------------------------------
// The default SSH key generator

// Throwaway keys made for this test; their authorized_keys lines and MD5 fingerprints were
// checked with `ssh-keygen -l -E md5`. Stored as DER so they read as data, not as key files.
const RSA_TEST_KEY_PKCS1_DER =
  'MIICXAIBAAKBgQC9r2kv3BPi0iB+Pz06Kbt4H2rtvix2kRcXQk8GsiGQo0Z1i9c/96PLyR/RBR/fzsQaEBq6cncoumQcRt/MfRgP8XIG7OIaStkfDAZZRebR9v9H3Fl7wbgtAhSsn1PgmPyLRXTknx7K4lqPJHsM2k0whzlOL++jHKyBGSHa9fwvkwIDAQABAoGBAIpI8SRlC1JW4j1nmRloBzXhobDE7eFakTzxqG83OeUaQ2m6kygdP5p3e+yEEeK1+J0PlIzMmjZk/ErpGIsZv4nOL775EICBQsGRFcTpu6lMxH1IzZ1Nn2Z4YRWq4uTjl8rXWHlBFnVaE9h6dvwxl8Yjdl4mgkd054nrrl4GGg5RAkEA6NNrhV+JSdtJs4wtJj4Fv4AcHtuac0vRS4mEwDijhCTlsUuwNPlcjIeLD22gt3cH9iYR2u8S/RRySCh0ING/vwJBANCQu+m8iGZnNlxI+WKOxe9Neru6vKvwpkyYN/Tr8DjVo/nXGAIdVn/eTBJ7wNAITRd5shPH6sw84TkR9ENRRS0CQFC7huwPjaZ7kJnewIUjOpEF1jppAax7HM7pl4uj2CdpN/B7g1VLJmlgUrr9053qe2tCFizpe5cgMOSOin4a3TcCQApDZQvefDPV1mX6LVN9RR4+iNCeItSvNe/E+dPynFKfqL8Np5/LA8utC79JGbbjAbArC+lPSC2evVKKoKODZ00CQGAfeYBcuxvqXGz9L91A4b0wAg1iXBfzoU7ImJunhJwYdiNS4DfS1TQI/uoSNmhcHFpXAJ6Glb2HUIWcQwRpekw=';
const ED25519_TEST_KEY_PKCS8_DER = 'MC4CAQAwBQYDK2VwBCIEIO7u+3nDJBVzJmjH6awmVcrvWLd3ZKTCy3umV55OvL0T';

describe('SSH key pairs', () => {
  const vectors = [
    {
      name: 'RSA',
      input: createPrivateKey({ key: Buffer.from(RSA_TEST_KEY_PKCS1_DER, 'base64'), format: 'der', type: 'pkcs1' }),
      want: {
        authorizedKey:
          'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC9r2kv3BPi0iB+Pz06Kbt4H2rtvix2kRcXQk8GsiGQo0Z1i9c/96PLyR/RBR/fzsQaEBq6cncoumQcRt/MfRgP8XIG7OIaStkfDAZZRebR9v9H3Fl7wbgtAhSsn1PgmPyLRXTknx7K4lqPJHsM2k0whzlOL++jHKyBGSHa9fwvkw==',
        fingerprint: 'b2:a2:44:f7:a0:c1:a7:f1:31:fd:4d:77:d2:1c:e5:c9',
        pemHeader: '-----BEGIN RSA PRIVATE KEY-----\n',
      },
    },
    {
      name: 'ed25519',
      input: createPrivateKey({ key: Buffer.from(ED25519_TEST_KEY_PKCS8_DER, 'base64'), format: 'der', type: 'pkcs8' }),
      want: {
        authorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXrEGTFiqTjnpLSmo3Cbnbq44iwktUoWvO+QUNPcgOq',
        fingerprint: 'f8:1d:cf:06:97:c7:8e:4c:84:37:de:7f:7b:88:5e:4e',
        pemHeader: '-----BEGIN PRIVATE KEY-----\n',
      },
    },
  ];
  for (const { name, input, want } of vectors) {
    test(`${name}: authorized key and MD5 fingerprint as ssh-keygen computes them`, () => {
      const pair = sshKeyPairFromPrivateKey(input);
      assert.equal(pair.authorizedKey, want.authorizedKey);
      assert.equal(pair.fingerprint, want.fingerprint);
      assert.ok(pair.privateKeyPem.startsWith(want.pemHeader));
      assert.deepStrictEqual(sshKeyPairFromPrivateKey(pair.privateKeyPem), pair, 'the PEM reads back to the same pair');
    });
  }

  const generators = [
    { name: 'default (RSA 2048)', input: generateSshKeyPair, want: { type: 'ssh-rsa', pemHeader: '-----BEGIN RSA PRIVATE KEY-----\n', bits: 2048 } },
    { name: 'ed25519', input: createSshKeyPairGenerator({ algorithm: 'ed25519' }), want: { type: 'ssh-ed25519', pemHeader: '-----BEGIN PRIVATE KEY-----\n', bits: undefined } },
  ];
  for (const { name, input, want } of generators) {
    test(`${name} generator makes fresh, consistent pairs`, () => {
      const first = input();
      const second = input();
      assert.notEqual(first.privateKeyPem, second.privateKeyPem);
      const [type, blob] = first.authorizedKey.split(' ');
      assert.equal(type, want.type);
      assert.match(first.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
      assert.equal(first.fingerprint, md5Fingerprint(Buffer.from(blob!, 'base64')));
      assert.equal(
        createHash('md5').update(Buffer.from(blob!, 'base64')).digest('hex'),
        first.fingerprint.replaceAll(':', ''),
      );
      assert.ok(first.privateKeyPem.startsWith(want.pemHeader));
      assert.equal(createPrivateKey(first.privateKeyPem).asymmetricKeyDetails?.modulusLength, want.bits);
      assert.deepStrictEqual(sshKeyPairFromPrivateKey(first.privateKeyPem), first);
    });
  }

  test('a generated pair works end to end in a recipe', () => {
    const lrp = desiredLrpFromDesireAppRequest(buildpackApp({ allowSsh: true }), recipeConfig({ generateSshKeyPair: createSshKeyPairGenerator({ algorithm: 'ed25519' }) }));
    const route = JSON.parse(routesText(lrp.routes)['diego-ssh']!);
    const sshdArgs = lrp.action!.codependentAction!.actions[1]!.runAction!.args;
    const hostKey = sshKeyPairFromPrivateKey(sshdArgs[1]!.slice('-hostKey='.length));
    const userKey = sshKeyPairFromPrivateKey(route.private_key);
    assert.equal(route.host_fingerprint, hostKey.fingerprint);
    assert.equal(sshdArgs[2], `-authorizedKey=${userKey.authorizedKey}`);
    assert.notEqual(hostKey.privateKeyPem, userKey.privateKeyPem);
  });
});
