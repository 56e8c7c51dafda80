// What the recipe builders need from their daemon: the lifecycle bundles (the -lifecycle flags),
// the file server that serves relative bundle paths, and the few policies that became flags
// after 2015. Everything is passed in, so the builders stay pure.
import { RecipeConfigError } from './errors.js';
import type { SshKeyPairGenerator } from './ssh.js';

export interface RecipeConfig {
  /**
   * Lifecycle bundle per key, as the -lifecycle flags give them: `buildpack/<stack>` and
   * `docker`. A value is a full http(s) URL, used as it is, or a path served by the file server.
   */
  readonly lifecycles: Readonly<Record<string, string>>;
  /** Base URL of the file server, e.g. `http://127.0.0.1:8080`. */
  readonly fileServerUrl: string;
  /**
   * Whether buildpack containers run privileged (the later -privilegedContainers flag; 2015
   * nsync always did). Docker containers never do.
   */
  readonly privilegedContainers: boolean;
  /**
   * Start timeout for an app whose CC record gives none (health_check_timeout_in_seconds 0).
   * 0 keeps the 2015 behaviour: no start timeout at all.
   */
  readonly defaultHealthCheckTimeoutSeconds: number;
  /** Makes one SSH key pair per call; injected so tests are deterministic. */
  readonly generateSshKeyPair: SshKeyPairGenerator;
}

const STATIC_PATH = '/v1/static/';
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Where a container downloads a lifecycle bundle from (ccbridge-2015 §1.4): a full http(s) URL
 * as it is, a relative path from the file server's static route. Any other scheme is a
 * configuration error.
 */
export function lifecycleDownloadUrl(lifecyclePath: string, fileServerUrl: string): string {
  if (SCHEME.test(lifecyclePath)) {
    let url: URL;
    try {
      url = new URL(lifecyclePath);
    } catch {
      throw new RecipeConfigError(`invalid lifecycle URL ${JSON.stringify(lifecyclePath)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RecipeConfigError(`lifecycle ${JSON.stringify(lifecyclePath)} has scheme ${url.protocol.slice(0, -1)}; only http and https URLs or relative paths are allowed`);
    }
    return lifecyclePath;
  }
  return joinUrl(fileServerUrl, STATIC_PATH, lifecyclePath);
}

/**
 * Joins URL parts keeping exactly one `/` between them and skipping empty parts, as gunk's
 * urljoiner.Join does (ccbridge-2015 §1.5).
 */
export function joinUrl(base: string, ...parts: string[]): string {
  let joined = base;
  for (const part of parts) {
    if (part === '') continue;
    joined = `${joined.replace(/\/+$/, '')}/${part.replace(/^\/+/, '')}`;
  }
  return joined;
}

/**
 * Checks a configuration once, at start-up, so a bad -lifecycle or -fileServerURL flag stops the
 * daemon with one line instead of failing requests later.
 */
export function checkRecipeConfig(config: RecipeConfig): void {
  let fileServer: URL;
  try {
    fileServer = new URL(config.fileServerUrl);
  } catch {
    throw new RecipeConfigError(`invalid file server URL ${JSON.stringify(config.fileServerUrl)}`);
  }
  if (fileServer.protocol !== 'http:' && fileServer.protocol !== 'https:') {
    throw new RecipeConfigError(`file server URL ${JSON.stringify(config.fileServerUrl)} must be http or https`);
  }
  for (const [key, path] of Object.entries(config.lifecycles)) {
    if (path === '') throw new RecipeConfigError(`lifecycle ${JSON.stringify(key)} has an empty path`);
    lifecycleDownloadUrl(path, config.fileServerUrl);
  }
  if (!Number.isInteger(config.defaultHealthCheckTimeoutSeconds) || config.defaultHealthCheckTimeoutSeconds < 0) {
    throw new RecipeConfigError(`invalid default health check timeout ${config.defaultHealthCheckTimeoutSeconds}: must be whole seconds, 0 or more`);
  }
}

/** The configured bundle path of a lifecycle key, if any (own keys only: never `constructor`). */
export function lifecyclePathFor(config: RecipeConfig, key: string): string | undefined {
  return Object.hasOwn(config.lifecycles, key) ? config.lifecycles[key] : undefined;
}
