// `ccbridge push [<dir>]`: creates the app (or brings an existing one in line), uploads the
// directory as a gzipped tar, starts it, streams the staging log and waits until every instance
// runs, then prints where the router serves it.
import { basename, resolve } from 'node:path';
import { bool, list, string } from '../lib/flags.js';
import type { AppJson, CreateAppBody, ScaleBody } from './api.js';
import { packageDirectory } from './archive.js';
import type { CliCommandSpec, CliContext } from './command.js';
import { CliError, usageError } from './errors.js';
import { formatBytes, parseMegabytes } from './terminal.js';
import { watchApp, watchFlags } from './watch.js';

/** The API's rule for names, which are route host names too. */
const APP_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const HEALTH_CHECK_TYPES = ['port', 'process', 'none', 'http'];

export const scaleFlags = {
  instances: string('number of instances'),
  i: string('short for --instances'),
  memory: string('memory limit of each instance: 256, 256M, 1G'),
  m: string('short for --memory'),
  disk: string('disk limit of each instance: 1024, 1G'),
  k: string('short for --disk'),
};

/** A flag with a long and a short spelling; both given and different is a mistake. */
function either(long: string, short: string, name: string): string {
  if (long !== '' && short !== '' && long !== short) throw usageError(`--${name} given twice, as ${long} and ${short}`);
  return long || short;
}

/** The sizes and count of the scale flags, undefined where not given. */
export function scaleFrom(flags: { instances: string; i: string; memory: string; m: string; disk: string; k: string }): ScaleBody {
  const instancesText = either(flags.instances, flags.i, 'instances');
  const memoryText = either(flags.memory, flags.m, 'memory');
  const diskText = either(flags.disk, flags.k, 'disk');
  const body: ScaleBody = {};
  if (instancesText !== '') {
    if (!/^\d+$/.test(instancesText)) throw usageError(`--instances: "${instancesText}" is not a whole number`);
    body.instances = Number(instancesText);
  }
  if (memoryText !== '') {
    body.memory_mb = parseMegabytes(memoryText);
    if (body.memory_mb === undefined) throw usageError(`--memory: "${memoryText}" is not a size (e.g. 256M, 1G)`);
  }
  if (diskText !== '') {
    body.disk_mb = parseMegabytes(diskText);
    if (body.disk_mb === undefined) throw usageError(`--disk: "${diskText}" is not a size (e.g. 512M, 1G)`);
  }
  return body;
}

export function environmentFrom(pairs: readonly string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`--env: "${pair}" is not NAME=value`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

const pushFlags = {
  name: string('app name (default: the directory\'s name)'),
  ...scaleFlags,
  buildpack: string('buildpack by name or URL (default: detected among the configured ones)'),
  'docker-image': string('run this docker image instead of uploading a directory'),
  'health-check-type': string(`health check: ${HEALTH_CHECK_TYPES.join(', ')} (default port)`, '', {
    check: (v) => (v === '' || HEALTH_CHECK_TYPES.includes(v) ? undefined : `"${v}" is not one of ${HEALTH_CHECK_TYPES.join(', ')}`),
  }),
  env: list('environment variable NAME=value (repeatable)'),
  'allow-ssh': bool('allow ssh into the app\'s instances (on creation)'),
  'no-start': bool('create or update and upload, but do not start'),
  ...watchFlags,
};

type PushContext = CliContext<typeof pushFlags>;

/** Brings an existing app in line with the flags, where the API can change it. */
async function update(context: PushContext, app: AppJson, scale: ScaleBody, env: Record<string, string> | undefined): Promise<AppJson> {
  const { api, term, flags } = context;
  const docker = flags['docker-image'];
  if (docker !== '' && app.lifecycle.type !== 'docker') throw new CliError(`${app.name} exists as a buildpack app; delete it first (ccbridge delete ${app.name}) to run a docker image under that name`);
  if (docker === '' && app.lifecycle.type === 'docker') throw new CliError(`${app.name} exists as a docker app; give --docker-image, or delete it first (ccbridge delete ${app.name})`);
  const fixed = (what: string, now: string) =>
    term.warn(`${app.name} keeps its ${what} (${now}): the development Cloud Controller cannot change it; delete the app and push again to change it`);
  if (docker !== '' && docker !== app.lifecycle.docker_image) fixed('docker image', app.lifecycle.docker_image ?? 'none');
  if (flags.buildpack !== '' && flags.buildpack !== app.lifecycle.buildpack) fixed('buildpack', app.lifecycle.buildpack ?? 'detected');
  if (flags['health-check-type'] !== '' && flags['health-check-type'] !== app.health_check.type) fixed('health check', app.health_check.type);
  if (flags['allow-ssh'] && !app.allow_ssh) fixed('ssh setting', 'ssh not allowed');

  const changes: ScaleBody = {};
  if (scale.instances !== undefined && scale.instances !== app.instances) changes.instances = scale.instances;
  if (scale.memory_mb !== undefined && scale.memory_mb !== app.memory_mb) changes.memory_mb = scale.memory_mb;
  if (scale.disk_mb !== undefined && scale.disk_mb !== app.disk_mb) changes.disk_mb = scale.disk_mb;
  let current = app;
  if (Object.keys(changes).length > 0) {
    current = await api.scale(app.guid, changes);
    for (const warning of current.warnings ?? []) term.warn(warning);
  }
  if (env) {
    const answer = await api.patchEnvironment(app.guid, env);
    for (const warning of answer.warnings) term.warn(warning);
  }
  return current;
}

/** The app by that name, created from the flags, or an existing one brought in line. */
async function createOrUpdate(context: PushContext, name: string, scale: ScaleBody, env: Record<string, string> | undefined): Promise<AppJson> {
  const { api, term, flags } = context;
  const existing = await api.findApp(name);
  if (existing) {
    term.info(`Updating app ${name}...`);
    return update(context, existing, scale, env);
  }
  const body: CreateAppBody = { name, ...scale };
  if (flags.buildpack !== '') body.buildpack = flags.buildpack;
  if (flags['docker-image'] !== '') body.docker_image = flags['docker-image'];
  if (flags['health-check-type'] !== '') body.health_check_type = flags['health-check-type'];
  if (env) body.env = env;
  if (flags['allow-ssh']) body.allow_ssh = true;
  const created = await api.createApp(body);
  term.info(`Created app ${name}.`);
  return created;
}

export const push: CliCommandSpec<typeof pushFlags> = {
  usage: 'push [<dir>] [--name N] [-i N] [-m 256M] [-k 1G] [--buildpack B | --docker-image I] [--env K=V ...] [--no-start]',
  summary: 'create or update an app from a directory (default .), upload it, stage it and start it',
  flags: pushFlags,
  args: { min: 0, max: 1 },
  async run(context) {
    const { api, term, flags } = context;
    const docker = flags['docker-image'];
    if (docker !== '' && context.args.length > 0) throw usageError('a docker app has no directory to upload: give <dir> or --docker-image, not both');
    if (docker !== '' && flags.buildpack !== '') throw usageError('an app has a buildpack or a docker image, not both');
    const dir = resolve(context.args[0] ?? '.');
    let name = flags.name;
    if (name === '') {
      if (docker !== '') throw usageError('give --name for a docker image');
      name = basename(dir);
      if (!APP_NAME.test(name)) throw usageError(`the directory's name "${name}" is not an app name (letters, digits and hyphens): give --name`);
    }
    const scale = scaleFrom(flags);
    const env = environmentFrom(flags.env);

    // Packed first: a directory that cannot be sent must not leave a new, empty app behind.
    const archive = docker === '' ? await packageDirectory(dir) : undefined;
    let app: AppJson;
    try {
      app = await createOrUpdate(context, name, scale, env);
      if (archive) {
        const step = term.step(`Uploading ${archive.files} files (${formatBytes(archive.size)}) from ${dir}...`);
        try {
          await api.uploadBits(app.guid, archive.path);
        } catch (error) {
          step.clear();
          throw error;
        }
        step.done(`Uploaded ${archive.files} files (${formatBytes(archive.size)}).`);
      }
    } finally {
      archive?.remove();
    }

    if (flags['no-start']) {
      const current = await api.app(app.guid);
      if (term.json) term.printJson(current);
      else if (current.state === 'STARTED') term.result(`${name} keeps running what it ran; ccbridge restage ${name} stages what was uploaded`);
      else term.result(`${name} is not started (ccbridge start ${name})`);
      return;
    }

    const since = Date.now();
    const started = await api.action(app.guid, 'start');
    const { app: final, running } = await watchApp(context, started, since);
    if (term.json) {
      term.printJson(final);
      return;
    }
    const url = context.appUrl(final.routes[0] ?? final.name);
    if (running) term.result(`${name} is running at ${url}`);
    else term.result(`${name} is staged but has no instances to run (ccbridge scale ${name} -i 1); it will be at ${url}`);
  },
};
