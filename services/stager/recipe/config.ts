// What the recipe builders need to know about the deployment, and the parsing of the original
// `-lifecycle name[/stack]:path` flag values into it.
import { FlagError } from '../../../lib/flags.js';
import { DiegoErrors } from './diego-errors.js';
import { StagingRecipeError } from './errors.js';
import { joinURL, urlScheme } from './urls.js';

/** CC's staging default (spec §2.4), used when a request gives no timeout or a negative one. */
export const DEFAULT_STAGING_TIMEOUT_MS = 15 * 60_000;

export interface StagingRecipeConfig {
  /** File server base URL; relative lifecycle paths are served under `<fileServerURL>/v1/static/`. */
  fileServerURL: string;
  /** cc-uploader base URL, through which droplets and build artifacts caches reach CC. */
  ccUploaderURL: string;
  /** Base URL at which Diego reaches this stager's completion route. */
  stagingTaskCallbackURL: string;
  /** Lifecycle bundle path or URL by key (`buildpack/<stack>`, `docker`), from parseLifecycles. */
  lifecycles: ReadonlyMap<string, string>;
  /** The stack (preloaded rootfs) docker staging tasks run on. */
  dockerStagingStack: string;
  /**
   * `host:port` of the registry docker images are cached in when a request asks for caching
   * (DIEGO_DOCKER_CACHE=true); empty means this deployment has no such registry.
   */
  dockerRegistryAddress: string;
  /**
   * The caching registry's IPs, which the 2015 stager asked Consul for. When absent, the host
   * of dockerRegistryAddress must itself be an IP.
   */
  dockerRegistryIPs?: readonly string[];
  /** Registries (`host:port`) the docker builder may reach without verified TLS. */
  insecureDockerRegistries: readonly string[];
  /**
   * PEM text of CAs the docker builder trusts for registries beside the stack's store; it
   * reaches the builder in its environment (DOCKER_REGISTRY_CA_CERTS_VARIABLE), since a file on
   * this host need not exist in the staging container.
   */
  dockerRegistryCACerts?: string;
  /** Passed to the buildpack builder as `-skipCertVerify`. */
  skipCertVerify: boolean;
  /** Whether staging containers are privileged. */
  privileged: boolean;
  /** Staging timeout when the request gives none (normally DEFAULT_STAGING_TIMEOUT_MS). */
  defaultStagingTimeoutMs: number;
  /** Upper bound of any staging timeout, requested or default; must be positive. */
  maxStagingTimeoutMs: number;
}

/**
 * Parses repeated `-lifecycle` flag values (`buildpack/cflinuxfs4:buildpack_app_lifecycle.tgz`,
 * `docker:docker_app_lifecycle.tgz`) into paths by lifecycle key, split on the first `:`.
 * Paths are either full http(s) URLs or relative to the file server; any other scheme is
 * refused here, at start-up, rather than on the first staging request. A repeated key keeps
 * its last value.
 */
export function parseLifecycles(values: readonly string[]): Map<string, string> {
  const lifecycles = new Map<string, string>();
  for (const value of values) {
    const colon = value.indexOf(':');
    if (colon < 0) throw new FlagError("Invalid lifecycle value: not of the form 'lifecycle-name:path'");
    const name = value.slice(0, colon);
    const path = value.slice(colon + 1);
    if (name === '') throw new FlagError('Invalid lifecycle value: empty lifecycle name');
    if (path === '') throw new FlagError('Invalid lifecycle value: empty path');
    const scheme = urlScheme(path);
    if (scheme === undefined) throw new FlagError(`Invalid lifecycle value: missing protocol scheme in '${path}'`);
    if (scheme !== '' && scheme !== 'http' && scheme !== 'https') {
      throw new FlagError(`Invalid lifecycle value: unknown scheme: '${scheme}'`);
    }
    lifecycles.set(name, path);
  }
  return lifecycles;
}

/**
 * Where a staging task downloads a lifecycle bundle from. Checked again here because a config
 * can be built without parseLifecycles.
 */
export function lifecycleDownloadURL(lifecycleKey: string, config: StagingRecipeConfig): string {
  const path = config.lifecycles.get(lifecycleKey);
  if (path === undefined || path === '') throw new StagingRecipeError('NO_COMPILER_DEFINED', DiegoErrors.NO_COMPILER_DEFINED);
  const scheme = urlScheme(path);
  if (scheme === 'http' || scheme === 'https') return path;
  if (scheme !== '') throw new StagingRecipeError('INVALID_LIFECYCLE_URL', `unknown scheme: '${scheme ?? ''}'`);
  return joinURL(config.fileServerURL, '/v1/static/', path);
}

/**
 * The staging timeout: the request's seconds when positive, else the default (CC sends 0 for
 * "no preference"), never above the configured maximum.
 */
export function stagingTimeoutMs(requestedSeconds: number, config: StagingRecipeConfig): number {
  const wanted = requestedSeconds > 0 ? requestedSeconds * 1000 : config.defaultStagingTimeoutMs;
  // Whole milliseconds: timeout_ms is an integer on the wire.
  return Math.ceil(Math.min(wanted, config.maxStagingTimeoutMs));
}
