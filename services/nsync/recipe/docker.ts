// Docker apps (ccbridge-2015 §4.4): the image itself is the rootfs, only the docker lifecycle is
// downloaded, and the image's metadata (as the docker stager recorded it in
// execution_metadata) decides the user and the port. Never privileged: the image's root must
// not be the host's.
import { download, serial } from './actions.js';
import { lifecycleDownloadUrl, lifecyclePathFor } from './config.js';
import { DEFAULT_APP_PORT, DEFAULT_DOCKER_USER, LIFECYCLE_DIR } from './constants.js';
import { assembleDesiredLrp, type RecipeBuilder } from './desired-lrp.js';
import { dockerRootfsUriFor } from './docker-image.js';
import {
  dockerImageMissing,
  invalidExecutionMetadata,
  invalidExposedPort,
  multipleAppSources,
  noLifecycleDefined,
  noTcpPorts,
} from './errors.js';

const MAX_PORT = 65535;

export const dockerRecipeBuilder: RecipeBuilder = {
  build(app, config) {
    if (app.dockerImage === '') throw dockerImageMissing();
    if (app.dropletUri !== '') throw multipleAppSources();
    const lifecyclePath = lifecyclePathFor(config, 'docker');
    if (lifecyclePath === undefined) throw noLifecycleDefined();
    const rootFs = dockerRootfsUriFor(app.dockerImage);
    const metadata = dockerExecutionMetadataOf(app.executionMetadata);
    const user = metadata.user === '' ? DEFAULT_DOCKER_USER : metadata.user;
    const port = exposedPortOf(metadata);

    return assembleDesiredLrp(app, config, {
      rootFs,
      privileged: false,
      environmentVariables: [],
      setup: serial(
        download({
          from: lifecycleDownloadUrl(lifecyclePath, config.fileServerUrl),
          to: LIFECYCLE_DIR,
          cacheKey: 'docker-lifecycle',
          user,
        }),
      ),
      user,
      port,
      // Not in 2015: lets today's cells pull a private image. The BBS wants both or neither.
      imageCredentials:
        app.dockerUser !== '' && app.dockerPassword !== '' ? { username: app.dockerUser, password: app.dockerPassword } : undefined,
    });
  },

  exposedPort: (app) => exposedPortOf(dockerExecutionMetadataOf(app.executionMetadata)),
};

/** The parts of the docker stager's execution metadata that shape the LRP. */
export interface DockerExecutionMetadata {
  /** The image's USER, '' when it has none. */
  readonly user: string;
  /** The image's EXPOSEd ports in the stager's order. */
  readonly ports: readonly { readonly port: number; readonly protocol: string }[];
}

/**
 * Reads execution_metadata as Go's decoder read it into the 2015 struct: keys matched
 * case-insensitively (the stager writes `Port` and `Protocol` capitalised), `null` as absent,
 * unknown keys ignored, a wrong type an error. An empty string is not JSON: CC sends `{}` at
 * least.
 */
export function dockerExecutionMetadataOf(executionMetadata: string): DockerExecutionMetadata {
  let parsed: unknown;
  try {
    parsed = JSON.parse(executionMetadata);
  } catch {
    throw invalidExecutionMetadata('not valid JSON');
  }
  if (parsed === null) return { user: '', ports: [] };
  if (!isObject(parsed)) throw invalidExecutionMetadata('must be a JSON object');

  for (const key of ['cmd', 'entrypoint']) {
    const list = field(parsed, key);
    if (list !== null && !(Array.isArray(list) && list.every((item) => item === null || typeof item === 'string'))) {
      throw invalidExecutionMetadata(`"${key}" must be a list of strings`);
    }
  }
  const workdir = field(parsed, 'workdir');
  if (workdir !== null && typeof workdir !== 'string') throw invalidExecutionMetadata('"workdir" must be a string');
  const user = field(parsed, 'user');
  if (user !== null && typeof user !== 'string') throw invalidExecutionMetadata('"user" must be a string');
  const ports = field(parsed, 'ports');
  if (ports !== null && !Array.isArray(ports)) throw invalidExecutionMetadata('"ports" must be a list');
  return { user: user ?? '', ports: (ports ?? []).map(exposedPortEntryOf) };
}

function exposedPortEntryOf(entry: unknown): { port: number; protocol: string } {
  if (entry === null) return { port: 0, protocol: '' };
  if (!isObject(entry)) throw invalidExecutionMetadata('each of "ports" must be an object with Port and Protocol');
  const port = field(entry, 'port') ?? 0;
  const protocol = field(entry, 'protocol') ?? '';
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > MAX_PORT) {
    throw invalidExecutionMetadata(`"Port" must be an integer from 0 to ${MAX_PORT}, not ${JSON.stringify(port)}`);
  }
  if (typeof protocol !== 'string') throw invalidExecutionMetadata('"Protocol" must be a string');
  return { port, protocol };
}

/**
 * The port the app listens on: the image's first tcp port, 8080 when it exposes none. Ports
 * exposed but none tcp is an error rather than a guess.
 */
export function exposedPortOf(metadata: DockerExecutionMetadata): number {
  if (metadata.ports.length === 0) return DEFAULT_APP_PORT;
  const tcp = metadata.ports.find((entry) => entry.protocol === 'tcp');
  if (tcp === undefined) throw noTcpPorts();
  // Port 0 passes Go's decoder but is no port a router or health check can reach.
  if (tcp.port < 1) throw invalidExposedPort(tcp.port);
  return tcp.port;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A key matched as Go matches struct fields: case-insensitively, the last match winning. */
function field(object: Record<string, unknown>, name: string): unknown {
  let found: unknown = null;
  for (const [key, value] of Object.entries(object)) {
    if (key.toLowerCase() === name) found = value;
  }
  return found;
}
