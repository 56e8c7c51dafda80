// Recipe configuration from flags, shared by every daemon that builds tasks or LRPs.
import { existsSync, readFileSync } from 'node:fs';
import { bool, int, string } from '../../lib/flags.js';
import { checkRecipeConfig, type RecipeConfig } from '../../services/nsync/recipe/index.js';
import { createSshKeyPool, type SshKeyPool } from '../../services/nsync/ssh-key-pool.js';
import { DEFAULT_STAGING_TIMEOUT_MS, parseLifecycles, type StagingRecipeConfig } from '../../services/stager/recipe/index.js';


export const nsyncRecipeFlags = {
  privilegedContainers: bool('run buildpack app containers privileged'),
  defaultHealthCheckTimeout: int('start timeout in seconds for apps whose CC record gives none', 60),
};

export const stagerRecipeFlags = {
  ccUploaderURL: string('URL of the uploader that forwards droplets and build caches to CC', 'http://127.0.0.1:9090'),
  stagingTaskCallbackURL: string('URL at which Diego reaches this stager\'s completion route (default: the REST listen address)'),
  dockerStagingStack: string('stack docker staging tasks run on', 'cflinuxfs4', { check: (v) => (v ? undefined : 'Invalid Docker staging stack') }),
  dockerRegistryAddress: string('host:port of a registry docker images are cached in (empty: no caching)'),
  insecureDockerRegistry: string('comma-separated registries (host:port) reached without certificate verification, or over plain http when they do not speak TLS: by the docker builder, and by the embedded cell when it pulls images (which forwards those on 127.0.0.1 into containers)'),
  dockerRegistryCACert: string(
    'CA certificate (PEM file) trusted beside the system\'s for docker registries: by the docker builder, which gets it in its staging task, and by the embedded cell when it pulls images',
    '',
    { check: (v) => (v === '' || existsSync(v) ? undefined : `no such file: ${v}`) },
  ),
  privilegedStaging: bool('run staging containers privileged'),
  maxStagingTimeout: int('upper bound of any staging timeout, in seconds', 3600),
};

/** One pool per process, made by the first daemon that builds LRPs: SSH key pairs ahead, off the event loop. */
let sshKeys: SshKeyPool | undefined;

export function nsyncRecipeFrom(flags: { lifecycle: string[]; fileServerURL: string; privilegedContainers: boolean; defaultHealthCheckTimeout: number }): RecipeConfig {
  const config: RecipeConfig = {
    lifecycles: Object.fromEntries(parseLifecycles(flags.lifecycle)),
    fileServerUrl: flags.fileServerURL,
    privilegedContainers: flags.privilegedContainers,
    defaultHealthCheckTimeoutSeconds: flags.defaultHealthCheckTimeout,
    generateSshKeyPair: (sshKeys ??= createSshKeyPool()).take,
  };
  checkRecipeConfig(config);
  return config;
}

export function stagingRecipeFrom(
  flags: {
    lifecycle: string[];
    fileServerURL: string;
    ccUploaderURL: string;
    stagingTaskCallbackURL: string;
    dockerStagingStack: string;
    dockerRegistryAddress: string;
    insecureDockerRegistry: string;
    dockerRegistryCACert?: string;
    skipCertVerify: boolean;
    privilegedStaging: boolean;
    maxStagingTimeout: number;
  },
  callbackUrl: string,
): StagingRecipeConfig {
  return {
    fileServerURL: flags.fileServerURL,
    ccUploaderURL: flags.ccUploaderURL,
    stagingTaskCallbackURL: flags.stagingTaskCallbackURL || callbackUrl,
    lifecycles: parseLifecycles(flags.lifecycle),
    dockerStagingStack: flags.dockerStagingStack,
    dockerRegistryAddress: flags.dockerRegistryAddress,
    insecureDockerRegistries: flags.insecureDockerRegistry.split(',').filter((r) => r !== ''),
    ...(flags.dockerRegistryCACert ? { dockerRegistryCACerts: readFileSync(flags.dockerRegistryCACert, 'utf8') } : {}),
    skipCertVerify: flags.skipCertVerify,
    privileged: flags.privilegedStaging,
    defaultStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
    maxStagingTimeoutMs: flags.maxStagingTimeout * 1000,
  };
}
