// The launcher's decisions (spec §4.3, §10), printed as shell for the `launcher` wrapper to
// evaluate: the wrapper then execs bash, so the app replaces the launcher instead of running
// under a Node parent that would have to relay signals and exit codes.
//
// Usage (argv after the wrapper's own path): <app dir> <start command> [<execution metadata>]
//   * the command is the start command argument, else execution_metadata's start_command (the
//     builder's JSON, which CC hands back), else staging_info.yml's start_command in the droplet;
//   * HOME is the app directory and TMPDIR / DEPS_DIR its siblings tmp/ and deps/;
//   * VCAP_APPLICATION, when it is a JSON object, gets host 0.0.0.0, instance_id (INSTANCE_GUID),
//     port (PORT) and instance_index (INSTANCE_INDEX), as the Cloud Foundry launcher rewrote it;
//   * VCAP_APP_PORT (= PORT) and VCAP_APP_HOST (0.0.0.0), the DEA-era names older apps read,
//     when the environment does not already set them;
//   * in the app directory bash sources ../profile.d/*.sh and .profile.d/*.sh (what buildpacks
//     leave), then .profile (the app's own), then execs `bash -c <command>`.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { goJson, sortedMap } from './lib/go-json.mjs';
import { isMapping, parseYaml } from './lib/yaml.mjs';

const LAUNCH_SCRIPT = `
cd "$1" || exit 1

for env_file in ../profile.d/*.sh .profile.d/*.sh; do
  if [ -f "$env_file" ]; then
    . "$env_file"
  fi
done
unset env_file

if [ -f .profile ]; then
  . ./.profile
fi

shift

exec bash -c "$@"
`;

const BASH = '/bin/bash';

/** POSIX shell single quoting: safe for any byte string in an eval. */
function shellQuote(text) {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function fail(program, message) {
  process.stderr.write(`${program}: ${message}\n`);
  process.exit(1);
}

/** staging_info.yml is JSON (which is YAML) from this builder, YAML from older ones. */
function readStagingInfo(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT') return {};
    throw error;
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = parseYaml(text);
  }
  return isMapping(parsed) ? parsed : {};
}

/** The start command CC gave, else the builder's, else the droplet's. */
function startCommandFor(program, startCommand, executionMetadata, stagingInfoPath) {
  if (startCommand !== '') return startCommand;
  if (executionMetadata !== '') {
    let metadata;
    try {
      metadata = JSON.parse(executionMetadata);
    } catch (error) {
      fail(program, `Invalid metadata - ${/** @type {Error} */ (error).message}`);
    }
    if (isMapping(metadata) && typeof metadata.start_command === 'string' && metadata.start_command !== '') return metadata.start_command;
  }
  let stagingInfo;
  try {
    stagingInfo = readStagingInfo(stagingInfoPath);
  } catch (error) {
    fail(program, `Invalid staging info - ${/** @type {Error} */ (error).message}`);
  }
  if (typeof stagingInfo.start_command === 'string' && stagingInfo.start_command !== '') return stagingInfo.start_command;
  return fail(program, 'no start command specified or detected in droplet');
}

/** VCAP_APPLICATION as the Cloud Foundry launcher rewrote it; undefined when it is no JSON object. */
function vcapApplicationFor(env) {
  let parsed;
  try {
    parsed = JSON.parse(env.VCAP_APPLICATION ?? '');
  } catch {
    return undefined;
  }
  if (!isMapping(parsed)) return undefined;
  parsed.host = '0.0.0.0';
  parsed.instance_id = env.INSTANCE_GUID ?? '';
  const port = goAtoi(env.PORT);
  if (port !== undefined) parsed.port = port;
  const index = goAtoi(env.INSTANCE_INDEX);
  if (index !== undefined) parsed.instance_index = index;
  return goJson(sortedMap(parsed));
}

/** strconv.Atoi: an optionally signed decimal integer, nothing else. */
function goAtoi(text) {
  return text !== undefined && /^[+-]?\d+$/.test(text) ? Number(text) : undefined;
}

function main(argv) {
  const [program = 'launcher', ...args] = argv;
  if (args.length < 2) {
    process.stderr.write(`${program}: received only ${args.length} arguments\n`);
    process.stderr.write(`Usage: ${program} <app-directory> <start-command> <metadata>\n`);
    process.exit(1);
  }
  const [dir, startCommandArg, executionMetadata = ''] = args;
  const appDir = resolve(dir);
  const command = startCommandFor(program, startCommandArg, executionMetadata, join(dirname(appDir), 'staging_info.yml'));

  /** @type {[string, string][]} */
  const exports = [
    ['HOME', appDir],
    ['TMPDIR', resolve(appDir, '..', 'tmp')],
    ['DEPS_DIR', resolve(appDir, '..', 'deps')],
  ];
  const vcapApplication = vcapApplicationFor(process.env);
  if (vcapApplication !== undefined) exports.push(['VCAP_APPLICATION', vcapApplication]);
  if (process.env.PORT !== undefined && process.env.VCAP_APP_PORT === undefined) exports.push(['VCAP_APP_PORT', process.env.PORT]);
  if (process.env.VCAP_APP_HOST === undefined) exports.push(['VCAP_APP_HOST', '0.0.0.0']);

  const lines = exports.map(([name, value]) => `export ${name}=${shellQuote(value)}`);
  lines.push(`exec ${BASH} -c ${shellQuote(LAUNCH_SCRIPT)} ${shellQuote(program)} ${shellQuote(appDir)} ${shellQuote(command)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main(process.argv.slice(2));
