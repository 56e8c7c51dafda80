// The docker builder: what a docker staging task runs as /tmp/docker_app_lifecycle/builder
// (spec §3.4, §10). It reads the image's metadata from its registry over the registry HTTP API
// v2 (no docker daemon) and writes the staging result:
//
//   {"execution_metadata":"{\"cmd\":[…],\"entrypoint\":[…],\"workdir\":\"…\",\"ports\":[{\"Port\":8080,\"Protocol\":\"tcp\"}],\"user\":\"…\"}",
//    "detected_start_command":{"web":"<entrypoint and cmd joined by spaces>"},
//    "docker_image":"<image as given, tag made explicit>",
//    "lifecycle_type":"docker","lifecycle_metadata":{"docker_image":"…"},"process_types":{"web":"…"}}
//
// The first three keys are the 2015 builder's; the last three are the later builder's, for
// today's Cloud Controller. Flags are the 2015 builder's, plus -dockerRegistryCACert for a
// registry whose certificate node's default CA store does not know; the stager passes its
// deployment's registry CAs as PEM text in CCBRIDGE_DOCKER_REGISTRY_CA_CERTS, and
// NODE_EXTRA_CA_CERTS works too.
//
// -cacheDockerImage copies the image into the deployment's registry
// (-dockerRegistryHost:-dockerRegistryPort, plain http as the 2015 caching registry was) under a
// fresh name, and the result names that copy.
//
// Output is the staging log; the password is never printed. Any failure prints one line saying
// what went wrong and exits 1.
import { randomUUID } from 'node:crypto';
import { mkdirSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlagError, flagUsage, parseGoFlags } from './lib/flags.mjs';
import { createRegistryClient, parseDockerRootfsUri, parseImageReference, RegistryError } from './lib/registry.mjs';

const FLAGS = {
  outputMetadataJSONFilename: { type: 'string', default: '/tmp/result/result.json', usage: 'filename in which to write the app metadata' },
  dockerRef: { type: 'string', default: '', usage: 'docker image reference in standard docker string format' },
  dockerImageURL: { type: 'string', default: '', usage: 'docker image URL (docker://<index>/<repository>#<tag>)' },
  insecureDockerRegistries: { type: 'string', default: '', usage: 'insecure docker registry addresses (host:port), comma-separated; may be repeated' },
  dockerRegistryCACert: { type: 'string', default: '', usage: 'PEM file of CAs to trust for docker registries, beside the default CA store of node' },
  dockerDaemonExecutablePath: { type: 'string', default: '/tmp/docker_app_lifecycle/docker', usage: 'accepted for compatibility; no docker daemon is used' },
  cacheDockerImage: { type: 'bool', default: false, usage: 'copy the image into the private docker registry' },
  dockerRegistryIPs: { type: 'string', default: '', usage: 'private docker registry IPs, comma-separated' },
  dockerRegistryHost: { type: 'string', default: '', usage: 'private docker registry host' },
  dockerRegistryPort: { type: 'string', default: '8080', usage: 'private docker registry port' },
  dockerLoginServer: { type: 'string', default: '', usage: 'registry the credentials are for (default: the image\'s registry)' },
  dockerUser: { type: 'string', default: '', usage: 'user name for the registry' },
  dockerPassword: { type: 'string', default: '', usage: 'password for the registry' },
  dockerEmail: { type: 'string', default: '', usage: 'email of the registry user (accepted for compatibility)' },
  registryTimeout: { type: 'duration', default: 60_000, usage: 'timeout of each registry request' },
};

const REPEATABLE = new Set(['insecureDockerRegistries']);

/** PEM text of registry CAs the stager may pass (its -dockerRegistryCACert), beside -dockerRegistryCACert here. */
const CA_CERTS_VARIABLE = 'CCBRIDGE_DOCKER_REGISTRY_CA_CERTS';

export class BuilderFailure extends Error {}

/**
 * Go's flag.Var flags may be given more than once; parseGoFlags keeps the last, so repeated
 * ones are gathered here first and their values joined with commas.
 */
function gatherRepeated(argv) {
  const gathered = new Map();
  const kept = [];
  let index = 0;
  for (; index < argv.length; index += 1) {
    const arg = argv[index];
    if (arg === '--' || !arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const equals = body.indexOf('=');
    const name = equals < 0 ? body : body.slice(0, equals);
    if (!REPEATABLE.has(name)) {
      kept.push(arg);
      const definition = Object.hasOwn(FLAGS, name) ? FLAGS[/** @type {keyof typeof FLAGS} */ (name)] : undefined;
      if (equals < 0 && definition && definition.type !== 'bool' && index + 1 < argv.length) kept.push(argv[++index]);
      continue;
    }
    let value;
    if (equals >= 0) value = body.slice(equals + 1);
    else if (index + 1 < argv.length) value = argv[++index];
    else throw new FlagError(`flag needs an argument: -${name}`);
    gathered.set(name, [...(gathered.get(name) ?? []), value]);
  }
  kept.push(...argv.slice(index));
  for (const [name, values] of gathered) kept.unshift(`-${name}=${values.join(',')}`);
  return kept;
}

export function readConfig(argv) {
  const { values, rest } = parseGoFlags(gatherRepeated(argv), FLAGS);
  if (rest.length > 0) throw new FlagError(`unexpected argument: ${rest[0]}`);
  const config = /** @type {Record<keyof typeof FLAGS, any>} */ (values);
  if (config.dockerRef === '' && config.dockerImageURL === '') throw new FlagError('missing flag: dockerRef or dockerImageURL required');
  if (config.dockerRef !== '' && config.dockerImageURL !== '') throw new FlagError('dockerRef and dockerImageURL cannot both be given');
  if ((config.dockerUser !== '') !== (config.dockerPassword !== '')) throw new FlagError('dockerUser and dockerPassword go together');
  if (config.cacheDockerImage) {
    if (config.dockerRegistryHost === '') throw new FlagError('missing flag: dockerRegistryHost required with cacheDockerImage');
    const port = Number(config.dockerRegistryPort);
    if (!/^\d{1,5}$/.test(config.dockerRegistryPort) || port < 1 || port > 65535) {
      throw new FlagError(`invalid dockerRegistryPort ${JSON.stringify(config.dockerRegistryPort)}`);
    }
  }
  return {
    outputMetadata: String(config.outputMetadataJSONFilename),
    image: config.dockerRef !== '' ? parseImageReference(config.dockerRef) : parseDockerRootfsUri(config.dockerImageURL),
    insecureRegistries: String(config.insecureDockerRegistries).split(',').map((entry) => entry.trim()).filter((entry) => entry !== ''),
    caFile: config.dockerRegistryCACert || undefined,
    cache: config.cacheDockerImage ? { host: String(config.dockerRegistryHost), port: Number(config.dockerRegistryPort) } : undefined,
    loginServer: config.dockerLoginServer || undefined,
    username: String(config.dockerUser),
    password: String(config.dockerPassword),
    timeoutMs: Number(config.registryTimeout),
  };
}

/**
 * The execution metadata as the 2015 builder marshalled it: its struct's field order, empty
 * fields omitted, ports with Go's capitalised field names.
 * @param {import('./lib/registry.mjs').ImageMetadata} metadata
 */
export function executionMetadataOf(metadata) {
  const value = {};
  if (metadata.cmd.length > 0) value.cmd = metadata.cmd;
  if (metadata.entrypoint.length > 0) value.entrypoint = metadata.entrypoint;
  if (metadata.workdir !== '') value.workdir = metadata.workdir;
  if (metadata.exposedPorts.length > 0) value.ports = metadata.exposedPorts.map(({ port, protocol }) => ({ Port: port, Protocol: protocol }));
  if (metadata.user !== '') value.user = metadata.user;
  return goJson(value);
}

/** The start command the 2015 builder detected: entrypoint then cmd, joined by spaces. */
export function startCommandOf(metadata) {
  return [...metadata.entrypoint, ...metadata.cmd].join(' ');
}

export function stagingResultOf(metadata, dockerImage) {
  const web = startCommandOf(metadata);
  return {
    execution_metadata: executionMetadataOf(metadata),
    detected_start_command: { web },
    docker_image: dockerImage,
    lifecycle_type: 'docker',
    lifecycle_metadata: { docker_image: dockerImage },
    process_types: { web },
  };
}

/** JSON as Go writes it (`<`, `>`, `&` escaped), since CC stores these bytes. */
function goJson(value) {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * @param {string[]} argv
 * @param {{ out?: (line: string) => void }} [io]
 */
export async function build(argv, io = {}) {
  const say = io.out ?? ((line) => process.stdout.write(`${line}\n`));
  const config = readConfig(argv);
  // The deployment's registry CAs, which the stager puts in the task's environment.
  const caFromEnvironment = process.env[CA_CERTS_VARIABLE] || undefined;
  const client = createRegistryClient({
    caFile: config.caFile,
    ca: caFromEnvironment,
    insecureRegistries: config.insecureRegistries,
    username: config.username,
    password: config.password,
    loginServer: config.loginServer,
    timeoutMs: config.timeoutMs,
  });
  try {
    const who = config.username !== '' ? ` as ${config.username}` : '';
    say(`Fetching image metadata of ${config.image.familiar} from ${config.image.registry}${who}...`);
    const image = await client.resolveImage(config.image);
    say(`Image ${config.image.familiar}: manifest ${image.manifestDigest}${image.indexDigest ? ` (linux/amd64 of ${image.indexDigest})` : ''}, ${image.layers.length} layer${image.layers.length === 1 ? '' : 's'}`);
    const { metadata } = image;
    const command = startCommandOf(metadata);
    say(`  start command: ${command === '' ? '(none; the app must give one)' : command}`);
    if (metadata.exposedPorts.length > 0) say(`  exposed ports: ${metadata.exposedPorts.map(({ port, protocol }) => `${port}/${protocol}`).join(', ')}`);
    say(`  user: ${metadata.user === '' ? '(image default: root)' : metadata.user}${metadata.workdir !== '' ? `, working directory: ${metadata.workdir}` : ''}`);

    let dockerImage = config.image.familiar;
    if (config.cache) {
      dockerImage = await cacheImage(client, image, config, say);
    }
    const result = stagingResultOf(metadata, dockerImage);
    mkdirSync(dirname(config.outputMetadata), { recursive: true });
    const partial = `${config.outputMetadata}.partial`;
    writeFileSync(partial, `${goJson(result)}\n`);
    renameSync(partial, config.outputMetadata);
    return result;
  } finally {
    client.close();
  }
}

/**
 * Copies the image into the caching registry under a fresh name (blobs first, then the
 * manifest), as the 2015 builder's docker push did; returns the reference to the copy.
 */
async function cacheImage(client, image, config, say) {
  const registry = `${config.cache.host}:${config.cache.port}`;
  const repository = randomUUID();
  say(`Caching the image in ${registry} as ${repository}...`);
  const cacheClient = createRegistryClient({ caFile: config.caFile, ca: process.env[CA_CERTS_VARIABLE] || undefined, insecureRegistries: [registry, ...config.insecureRegistries], timeoutMs: config.timeoutMs });
  try {
    const target = parseImageReference(`${registry}/${repository}:latest`);
    await cacheClient.copyImage(client, image, target);
  } finally {
    cacheClient.close();
  }
  say(`Cached as ${registry}/${repository}`);
  return `${registry}/${repository}`;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('-h') || argv.includes('-help') || argv.includes('--help')) {
    process.stderr.write(flagUsage('builder', FLAGS));
    return 0;
  }
  try {
    await build(argv);
    return 0;
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`builder: ${err.message}\n${flagUsage('builder', FLAGS)}`);
      return 1;
    }
    const message = err instanceof RegistryError || err instanceof BuilderFailure ? err.message : `unexpected error: ${/** @type {Error} */ (err)?.stack ?? err}`;
    process.stderr.write(`Staging failed: ${scrub(message, argv)}\n`);
    return 1;
  }
}

/** The password never reaches the log, even inside an unexpected error's text. */
function scrub(text, argv) {
  let password = '';
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index].replace(/^--?/, '');
    if (arg === 'dockerPassword') password = argv[index + 1] ?? '';
    else if (arg.startsWith('dockerPassword=')) password = arg.slice('dockerPassword='.length);
  }
  return password === '' ? text : text.split(password).join('***');
}

// Run as a program (not when a test imports the functions above).
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then((code) => {
    process.exitCode = code;
  });
}
