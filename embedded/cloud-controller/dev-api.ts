// The command line's JSON API on the development Cloud Controller (a development stand-in, not
// Cloud Controller's v2 or v3 API), under /dev/v1. Documented in README.md beside this file.
import { CcApiError, type AppView, type Controller, type CreateAppInput, type InstanceView, type ScaleInput } from './controller.js';
import { readJson, sendJson, type RequestContext, type Route } from './http.js';
import { processGuidFor, routeFor } from './messages.js';
import { sshAccessFor, sshPortsOf, type SshLookup } from './ssh.js';
import type { BuildRecord, DropletRecord, EventRecord, PackageRecord } from './store.js';

export const DEV_API_PREFIX = '/dev/v1';

const MAX_JSON_BYTES = 1024 * 1024;
const MAX_EVENTS = 1000;
const HEALTH_CHECK_TYPES = ['port', 'process', 'none', 'http'];

const unprocessable = (message: string) => new CcApiError(422, 'CF-UnprocessableEntity', message, 10008);

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

// ---------------------------------------------------------------------------------------------
// Reading requests

type Fields = Record<string, unknown>;

function objectBody(value: unknown, allowed: readonly string[]): Fields {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw unprocessable('the body must be a JSON object');
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) throw unprocessable(`unknown field(s): ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
  return value as Fields;
}

function integer(fields: Fields, key: string, min: number, max: number): number | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw unprocessable(`${key} must be an integer from ${min} to ${max}`);
  return value;
}

function text(fields: Fields, key: string): string | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw unprocessable(`${key} must be a string`);
  return value;
}

function bool(fields: Fields, key: string): boolean | undefined {
  const value = fields[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw unprocessable(`${key} must be true or false`);
  return value;
}

/** Names that become environment variables; Cloud Controller reserves VCAP_* and PORT. */
function checkVariableName(name: string): void {
  if (name === '' || name.includes('=') || name.includes('\0')) throw unprocessable(`${JSON.stringify(name)} is not a valid environment variable name`);
  if (/^VCAP_/i.test(name)) throw unprocessable(`environment variable names may not start with VCAP_ (${name})`);
  if (name.toUpperCase() === 'PORT') throw unprocessable('PORT is set by the platform');
}

function variableValue(name: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw unprocessable(`the value of ${name} must be a string, number or boolean`);
}

function environment(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw unprocessable('env must be an object of names to values');
  const env: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    checkVariableName(name);
    env[name] = variableValue(name, item);
  }
  return env;
}

const APP_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function createInput(body: unknown): CreateAppInput {
  const fields = objectBody(body, [
    'name',
    'memory_mb',
    'disk_mb',
    'instances',
    'buildpack',
    'docker_image',
    'docker_username',
    'docker_password',
    'health_check_type',
    'health_check_timeout',
    'health_check_http_endpoint',
    'env',
    'allow_ssh',
  ]);
  const name = text(fields, 'name');
  // The name is the app's route host name too.
  if (!name || !APP_NAME.test(name)) throw unprocessable('name must be 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen');
  const healthCheckType = text(fields, 'health_check_type');
  if (healthCheckType !== undefined && !HEALTH_CHECK_TYPES.includes(healthCheckType)) throw unprocessable(`health_check_type must be one of ${HEALTH_CHECK_TYPES.join(', ')}`);
  const endpoint = text(fields, 'health_check_http_endpoint');
  if (endpoint !== undefined && !endpoint.startsWith('/')) throw unprocessable('health_check_http_endpoint must be a path starting with /');
  const dockerPassword = text(fields, 'docker_password');
  const dockerUsername = text(fields, 'docker_username');
  if (dockerPassword !== undefined && dockerUsername === undefined) throw unprocessable('docker_password needs docker_username');
  const buildpack = fields.buildpack === null ? null : text(fields, 'buildpack');
  return {
    name,
    memoryMb: integer(fields, 'memory_mb', 1, 1_048_576),
    diskMb: integer(fields, 'disk_mb', 1, 1_048_576),
    instances: integer(fields, 'instances', 0, 1000),
    buildpack: buildpack === '' ? null : buildpack,
    dockerImage: text(fields, 'docker_image'),
    dockerUsername,
    dockerPassword,
    healthCheckType,
    healthCheckTimeout: integer(fields, 'health_check_timeout', 1, 3600),
    healthCheckHttpEndpoint: endpoint,
    environment: environment(fields.env),
    allowSsh: bool(fields, 'allow_ssh'),
  };
}

function scaleInput(body: unknown): ScaleInput {
  const fields = objectBody(body, ['instances', 'memory_mb', 'disk_mb']);
  const input = { instances: integer(fields, 'instances', 0, 1000), memoryMb: integer(fields, 'memory_mb', 1, 1_048_576), diskMb: integer(fields, 'disk_mb', 1, 1_048_576) };
  if (input.instances === undefined && input.memoryMb === undefined && input.diskMb === undefined) throw unprocessable('give instances, memory_mb or disk_mb');
  return input;
}

function environmentPatch(body: unknown): Record<string, string | null> {
  const fields = objectBody(body, ['var']);
  const vars = fields.var;
  if (vars === null || typeof vars !== 'object' || Array.isArray(vars)) throw unprocessable('the body must be {"var": {"NAME": "value" or null, ...}}');
  const patch: Record<string, string | null> = {};
  for (const [name, value] of Object.entries(vars)) {
    checkVariableName(name);
    patch[name] = value === null ? null : variableValue(name, value);
  }
  return patch;
}

// ---------------------------------------------------------------------------------------------
// Presenting

function packageJson(pkg: PackageRecord | undefined): unknown {
  if (!pkg) return null;
  return { guid: pkg.guid, type: pkg.type, size: pkg.size, sha256: pkg.sha256, created_at: iso(pkg.createdAtMs) };
}

function dropletJson(droplet: DropletRecord | undefined): unknown {
  if (!droplet) return null;
  return {
    guid: droplet.guid,
    lifecycle: droplet.lifecycle,
    start_command: droplet.startCommand,
    detected_start_command: droplet.detectedStartCommand,
    execution_metadata: droplet.executionMetadata,
    buildpack_key: droplet.buildpackKey,
    detected_buildpack: droplet.detectedBuildpack,
    docker_image: droplet.dockerImage,
    size: droplet.size,
    created_at: iso(droplet.createdAtMs),
  };
}

export function buildJson(build: BuildRecord | undefined): unknown {
  if (!build) return null;
  return {
    guid: build.guid,
    state: build.state,
    lifecycle: build.lifecycle,
    package_guid: build.packageGuid,
    droplet_guid: build.state === 'STAGED' ? build.guid : null,
    error: build.errorId ? { id: build.errorId, message: build.errorMessage ?? '' } : null,
    // Staging logs are the app's logs with source type STG.
    log_guid: build.appGuid,
    created_at: iso(build.createdAtMs),
    updated_at: iso(build.updatedAtMs),
  };
}

function instanceJson(instance: InstanceView, sshPort: number | undefined): unknown {
  return {
    index: instance.index,
    state: instance.state,
    instance_guid: instance.instanceGuid || null,
    since: instance.since === null ? null : iso(instance.since * 1000),
    uptime: instance.uptime,
    details: instance.details || null,
    host: instance.host || null,
    port: instance.port || null,
    // The host port of the instance's SSH server (container port 2222), when the app allows SSH.
    ssh_port: sshPort ?? null,
    cpu: instance.cpu,
    memory_bytes: instance.memoryBytes,
    disk_bytes: instance.diskBytes,
  };
}

export function appJson(view: AppView, appDomain: string, sshPorts?: ReadonlyMap<string, number>): Record<string, unknown> {
  const { app } = view;
  const route = routeFor(app, appDomain);
  const runs = app.state === 'STARTED' && app.currentDropletGuid !== null;
  const json: Record<string, unknown> = {
    guid: app.guid,
    name: app.name,
    state: app.state,
    lifecycle: {
      type: app.lifecycle,
      buildpack: app.buildpack,
      docker_image: app.dockerImage,
      docker_username: app.dockerUsername,
    },
    memory_mb: app.memoryMb,
    disk_mb: app.diskMb,
    instances: app.instances,
    running_instances: view.runningInstances,
    file_descriptors: app.fileDescriptors,
    health_check: { type: app.healthCheckType, timeout: app.healthCheckTimeout, http_endpoint: app.healthCheckType === 'http' ? app.healthCheckHttpEndpoint : null },
    allow_ssh: app.allowSsh,
    routes: [route],
    url: `http://${route}`,
    log_guid: app.guid,
    process_guid: runs ? processGuidFor(app) : null,
    version: app.version,
    etag: app.etag,
    package: packageJson(view.latestPackage),
    droplet: dropletJson(view.currentDroplet),
    build: buildJson(view.latestBuild),
    created_at: iso(app.createdAtMs),
    updated_at: iso(app.updatedAtMs),
  };
  if (view.instances) json.instance_details = view.instances.map((instance) => instanceJson(instance, sshPorts?.get(instance.instanceGuid)));
  return json;
}

function eventJson(event: EventRecord): unknown {
  return {
    guid: event.guid,
    type: event.type,
    actor: event.actor,
    app_guid: event.appGuid,
    app_name: event.appName,
    timestamp: iso(event.timestampMs),
    metadata: event.metadata,
  };
}

function eventQuery(context: RequestContext, app: string | undefined) {
  const limitText = context.query.get('limit');
  let limit = 50;
  if (limitText !== null) {
    if (!/^\d+$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > MAX_EVENTS) throw unprocessable(`limit must be an integer from 1 to ${MAX_EVENTS}`);
    limit = Number(limitText);
  }
  const types = context.query
    .getAll('type')
    .flatMap((t) => t.split(','))
    .filter((t) => t !== '');
  return { app: app ?? context.query.get('app') ?? undefined, types, limit };
}

// ---------------------------------------------------------------------------------------------
// Routes

/** `ssh`: the BBS reads behind ssh_port and GET /apps/:app/ssh; without it neither is known. */
export function devRoutes(controller: Controller, appDomain: string, describe: () => unknown, ssh?: SshLookup): Route[] {
  const p = DEV_API_PREFIX;
  const route = (method: string, path: string, handle: Route['handle']): Route => ({ method, path: `${p}${path}`, access: 'basic', errors: 'v3', handle });
  const action = (name: 'start' | 'stop' | 'restart' | 'restage') =>
    route('POST', `/apps/:app/${name}`, async ({ res, params, requestId }) => {
      const outcome = await controller[name](params.app!, requestId);
      sendJson(res, 200, { ...appJson(outcome.value, appDomain), warnings: outcome.warnings });
    });

  return [
    route('GET', '', ({ res }) => sendJson(res, 200, describe())),
    route('GET', '/apps', async ({ res }) => {
      const outcome = await controller.apps();
      sendJson(res, 200, { resources: outcome.value.map((view) => appJson(view, appDomain)), warnings: outcome.warnings });
    }),
    route('POST', '/apps', async ({ req, res }) => {
      const view = controller.createApp(createInput(await readJson(req, MAX_JSON_BYTES)));
      sendJson(res, 201, appJson(view, appDomain));
    }),
    route('GET', '/apps/:app', async ({ res, params }) => {
      const outcome = await controller.app(params.app!);
      const view = outcome.value;
      let sshPorts: Map<string, number> | undefined;
      if (ssh && view.app.allowSsh && (view.instances ?? []).some((instance) => instance.instanceGuid !== '')) {
        try {
          sshPorts = await sshPortsOf(ssh, processGuidFor(view.app));
        } catch (error) {
          outcome.warnings.push(`no SSH ports: ${(error as Error).message}`);
        }
      }
      sendJson(res, 200, { ...appJson(view, appDomain, sshPorts), warnings: outcome.warnings });
    }),
    // A development stand-in for CF's ssh-proxy: where instance N's SSH server listens and the
    // credentials the proxy would use (the diego-ssh route's user key and host key fingerprint).
    route('GET', '/apps/:app/ssh', async ({ res, params, query }) => {
      const app = controller.resolveApp(params.app!);
      const indexText = query.get('index') ?? '0';
      if (!/^\d{1,6}$/.test(indexText)) throw unprocessable('index must be an instance index (0, 1, ...)');
      if (!app.allowSsh) throw unprocessable(`ssh is not allowed for ${app.name}`);
      if (app.state !== 'STARTED' || app.currentDropletGuid === null) throw unprocessable(`${app.name} is not started`);
      if (!ssh) throw new CcApiError(503, 'CF-ServiceUnavailable', 'this development Cloud Controller was started without a BBS address, so it cannot look up SSH access', 10015);
      const access = await sshAccessFor(ssh, app.name, processGuidFor(app), Number(indexText));
      res.setHeader('Cache-Control', 'no-store');
      sendJson(res, 200, {
        app_guid: app.guid,
        process_guid: access.processGuid,
        index: access.index,
        instance_guid: access.instanceGuid,
        host: access.host,
        port: access.port,
        user: access.user,
        host_fingerprint: access.hostFingerprint,
        private_key: access.privateKey,
      });
    }),
    route('DELETE', '/apps/:app', async ({ res, params, requestId }) => {
      const app = controller.resolveApp(params.app!);
      const outcome = await controller.delete(app.guid, requestId);
      sendJson(res, 200, { deleted: app.guid, name: app.name, warnings: outcome.warnings });
    }),
    route('PUT', '/apps/:app/bits', async ({ req, res, params }) => {
      const pkg = await controller.uploadBits(params.app!, req);
      sendJson(res, 201, packageJson(pkg));
    }),
    action('start'),
    action('stop'),
    action('restart'),
    action('restage'),
    route('POST', '/apps/:app/scale', async ({ req, res, params, requestId }) => {
      const input = scaleInput(await readJson(req, MAX_JSON_BYTES));
      const outcome = await controller.scale(params.app!, input, requestId);
      sendJson(res, 200, { ...appJson(outcome.value, appDomain), warnings: outcome.warnings });
    }),
    route('GET', '/apps/:app/environment_variables', ({ res, params }) => {
      sendJson(res, 200, { var: controller.environment(params.app!).environment });
    }),
    route('PATCH', '/apps/:app/environment_variables', async ({ req, res, params, requestId }) => {
      const patch = environmentPatch(await readJson(req, MAX_JSON_BYTES));
      const outcome = await controller.setEnvironment(params.app!, patch, requestId);
      sendJson(res, 200, { var: outcome.value, warnings: outcome.warnings });
    }),
    route('GET', '/apps/:app/builds', ({ res, params }) => {
      const { builds } = controller.builds(params.app!);
      sendJson(res, 200, { resources: builds.map(buildJson) });
    }),
    route('GET', '/apps/:app/events', (context) => {
      const events = controller.events(eventQuery(context, context.params.app!));
      sendJson(context.res, 200, { resources: events.map(eventJson) });
    }),
    route('GET', '/apps/:app/logs', ({ res, params }) => {
      const app = controller.resolveApp(params.app!);
      sendJson(res, 200, {
        // Logs live in the embedded Diego's log-cache read API under the app's log guid.
        log_guid: app.guid,
        source_id: app.guid,
        read_path: `/api/v1/read/${app.guid}`,
        source_types: { staging: 'STG', app: 'APP', health_check: 'HEALTH', cell: 'CELL' },
      });
    }),
    route('GET', '/events', (context) => {
      const events = controller.events(eventQuery(context, undefined));
      sendJson(context.res, 200, { resources: events.map(eventJson) });
    }),
  ];
}
