// Desired LRPs shaped like the ones Cloud Controller's AppRecipeBuilder desires for a buildpack
// app with SSH enabled: routes for cf-router plus a diego-ssh entry carrying the container's
// PEM host key (~1.7 KB), ~10 environment variables, a setup of two downloads, a codependent
// action running the app through the launcher next to diego-sshd, the legacy monitor action and
// a check definition, egress rules from three security groups, metric tags and instance
// identity OUs. Sizes are what matter here; values only need to look like CC's.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { MetricTagValue_DynamicValue } from '../../gen/diego/bbs/v1/container.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';

export interface SshKey {
  privateKey: string;
  authorizedKey: string;
  fingerprint: string;
}

/** A few real 2048-bit RSA keys (PKCS#1 PEM, ~1.7 KB each), reused round-robin: one per app would take minutes to generate. */
export function sshKeys(count: number): SshKey[] {
  return Array.from({ length: count }, () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'der' },
    });
    const fingerprint = [...publicKey.subarray(0, 16)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    return { privateKey, authorizedKey: `ssh-rsa ${publicKey.toString('base64')}`, fingerprint };
  });
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** The n-th app of the benchmark. */
export function ccShapedLrp(n: number, key: SshKey): DesiredLRP {
  const appGuid = randomUUID();
  const processGuid = `${appGuid}-${randomUUID()}`;
  const spaceGuid = randomUUID();
  const orgGuid = randomUUID();
  const appName = `app-${n}`;
  const host = `${appName}.apps.example.com`;
  const vcapApplication = {
    cf_api: 'https://api.example.com',
    limits: { fds: 16384, mem: 1024, disk: 1024 },
    application_name: appName,
    application_uris: [host],
    name: appName,
    space_name: 'production',
    space_id: spaceGuid,
    organization_id: orgGuid,
    organization_name: 'acme',
    uris: [host],
    process_id: appGuid,
    process_type: 'web',
    application_id: appGuid,
    version: randomUUID(),
    application_version: randomUUID(),
  };
  const launcher = (args: string[], env: Array<{ name: string; value: string }>) => ({
    path: '/tmp/lifecycle/launcher',
    args,
    env,
    resourceLimits: { nofile: '16384' },
    user: 'vcap',
    logSource: 'APP/PROC/WEB',
  });
  const environmentVariables = [
    { name: 'VCAP_APPLICATION', value: JSON.stringify(vcapApplication) },
    { name: 'VCAP_SERVICES', value: '{}' },
    { name: 'MEMORY_LIMIT', value: '1024m' },
    { name: 'LANG', value: 'en_US.UTF-8' },
    { name: 'CF_STACK', value: 'cflinuxfs4' },
    { name: 'VCAP_APP_HOST', value: '0.0.0.0' },
    { name: 'VCAP_APP_PORT', value: '8080' },
    { name: 'PORT', value: '8080' },
    { name: 'DATABASE_URL', value: `postgres://user-${n}:password@db.example.com:5432/app_${n}` },
    { name: 'JAVA_OPTS', value: '-Xss512k -XX:ReservedCodeCacheSize=240m' },
  ];
  const healthCheck = (port: number) => ({
    runAction: { path: '/tmp/lifecycle/healthcheck', args: [`-port=${port}`, '-timeout=1000ms'], user: 'vcap', logSource: 'HEALTH', suppressLogOutput: true, env: [] },
  });
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances: 1 + (n % 3),
    environmentVariables,
    setup: {
      serialAction: {
        actions: [
          {
            downloadAction: {
              artifact: 'droplet',
              from: `https://cc-uploader.service.cf.internal:9091/v1/static/droplets/${appGuid}/${randomUUID()}/droplet.tgz`,
              to: '.',
              cacheKey: `droplets-${processGuid}`,
              user: 'vcap',
              checksumAlgorithm: 'sha256',
              checksumValue: 'c'.repeat(64),
            },
          },
          {
            downloadAction: {
              artifact: 'buildpack lifecycle',
              from: 'http://file-server.service.cf.internal:8080/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz',
              to: '/tmp/lifecycle',
              cacheKey: 'buildpack-cflinuxfs4-lifecycle',
              user: 'vcap',
            },
          },
        ],
      },
    },
    action: {
      codependentAction: {
        actions: [
          { runAction: launcher(['app', 'bundle exec rackup config.ru -p $PORT', '{"start_command":"bundle exec rackup config.ru -p $PORT"}'], environmentVariables.slice(0, 4)) },
          {
            runAction: launcher(
              [
                '/tmp/lifecycle/diego-sshd',
                '-address=0.0.0.0:2222',
                `-hostKey=${key.privateKey}`,
                `-authorizedKey=${key.authorizedKey}`,
                '-inheritDaemonEnv',
                '-logLevel=fatal',
              ],
              [],
            ),
          },
        ],
      },
    },
    monitor: { timeoutAction: { action: { parallelAction: { actions: [healthCheck(8080)] } }, timeoutMs: '600000' } },
    checkDefinition: { checks: [{ tcpCheck: { port: 8080, connectTimeoutMs: '1000', intervalMs: '0' } }], logSource: 'HEALTH', readinessChecks: [] },
    startTimeoutMs: '60000',
    diskMb: 1024,
    memoryMb: 1024,
    cpuWeight: 10,
    ports: [8080, 2222],
    routes: {
      routes: {
        'cf-router': json([{ hostnames: [host], port: 8080, route_service_url: null, isolation_segment: null, protocol: 'http1', options: {} }]),
        'tcp-router': json([]),
        'internal-router': json([]),
        'diego-ssh': json({ container_port: 2222, private_key: key.privateKey, host_fingerprint: key.fingerprint }),
      },
    },
    logSource: 'CELL',
    logGuid: appGuid,
    annotation: `${1_700_000_000 + n}.${String(n % 1000).padStart(6, '0')}`,
    egressRules: [
      { protocol: 'all', destinations: ['0.0.0.0-9.255.255.255'], ports: [], log: false, annotations: [] },
      { protocol: 'all', destinations: ['11.0.0.0-169.253.255.255'], ports: [], log: false, annotations: [] },
      { protocol: 'tcp', destinations: ['10.0.16.0/20'], ports: [5432, 3306], log: false, annotations: ['security_group_id:' + randomUUID()] },
    ],
    trustedSystemCertificatesPath: '/etc/cf-system-certificates',
    network: { properties: { policy_group_id: appGuid, app_id: appGuid, space_id: spaceGuid, org_id: orgGuid, ports: '8080' } },
    certificateProperties: { organizationalUnit: [`organization:${orgGuid}`, `space:${spaceGuid}`, `app:${appGuid}`] },
    metricTags: {
      source_id: { static: appGuid },
      process_id: { static: appGuid },
      process_type: { static: 'web' },
      process_instance_id: { dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INSTANCE_GUID },
      instance_id: { dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX },
      organization_id: { static: orgGuid },
      organization_name: { static: 'acme' },
      space_id: { static: spaceGuid },
      space_name: { static: 'production' },
      app_id: { static: appGuid },
      app_name: { static: appName },
    },
    logRateLimit: { bytesPerSecond: '-1' },
    modificationTag: { epoch: randomUUID(), index: 0 },
  });
}
