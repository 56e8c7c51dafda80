// The development Cloud Controller's command-line API (/dev/v1) as the command line uses it: one
// method per route, answers typed as the API writes them, and its v3-style error bodies turned
// into one line (`detail (CF-Title)`).
import { openAsBlob } from 'node:fs';
import { ApiError, CliError } from './errors.js';
import { exchange, type FetchLike } from './http.js';

export const API_PREFIX = '/dev/v1';

export interface InstanceJson {
  index: number;
  state: string;
  instance_guid: string | null;
  since: string | null;
  uptime: number | null;
  details: string | null;
  host: string | null;
  port: number | null;
  cpu: number | null;
  memory_bytes: number | null;
  disk_bytes: number | null;
  /** The host port of the instance's SSH server, when the app allows SSH and the API knows it. */
  ssh_port?: number | null;
}

/** GET /dev/v1/apps/:app/ssh?index=N: where instance N's SSH server is and how to log in. */
export interface SshAccessJson {
  app_guid: string;
  process_guid: string;
  index: number;
  instance_guid: string;
  host: string;
  port: number;
  user: string;
  /** MD5 (or SHA-1) of the host key, colon-separated hex. */
  host_fingerprint: string;
  /** The user key, a secret: kept in memory and a 0600 file only while ssh runs. */
  private_key: string;
}

export interface BuildJson {
  guid: string;
  state: 'STAGING' | 'STAGED' | 'FAILED' | 'CANCELED';
  lifecycle: string;
  package_guid: string | null;
  droplet_guid: string | null;
  error: { id: string; message: string } | null;
  log_guid: string;
  created_at: string;
  updated_at: string;
}

export interface PackageJson {
  guid: string;
  type: string;
  size: number;
  sha256: string;
  created_at: string;
}

export interface DropletJson {
  guid: string;
  start_command: string;
  detected_buildpack: string | null;
  buildpack_key: string | null;
  docker_image: string | null;
  size: number | null;
}

export interface AppJson {
  guid: string;
  name: string;
  state: string;
  lifecycle: { type: string; buildpack: string | null; docker_image: string | null; docker_username: string | null };
  memory_mb: number;
  disk_mb: number;
  instances: number;
  running_instances: number | null;
  health_check: { type: string; timeout: number; http_endpoint: string | null };
  allow_ssh: boolean;
  routes: string[];
  url: string;
  log_guid: string;
  process_guid: string | null;
  package: PackageJson | null;
  droplet: DropletJson | null;
  build: BuildJson | null;
  created_at: string;
  updated_at: string;
  instance_details?: InstanceJson[];
  warnings?: string[];
}

export interface EventJson {
  guid: string;
  type: string;
  actor: string;
  app_guid: string;
  app_name: string;
  timestamp: string;
  metadata: Record<string, unknown>;
}

export interface LogsJson {
  log_guid: string;
  source_id: string;
  read_path: string;
  source_types: Record<string, string>;
}

export interface CreateAppBody {
  name: string;
  memory_mb?: number;
  disk_mb?: number;
  instances?: number;
  buildpack?: string;
  docker_image?: string;
  health_check_type?: string;
  env?: Record<string, string>;
  allow_ssh?: boolean;
}

export interface ScaleBody {
  instances?: number;
  memory_mb?: number;
  disk_mb?: number;
}

export type AppAction = 'start' | 'stop' | 'restart' | 'restage';

export interface DevApiOptions {
  /** e.g. http://127.0.0.1:9022 */
  url: string;
  username: string;
  password: string;
  /** Deadline of each call. */
  timeoutMs: number;
  /** Deadline of an upload of app bits, which may be large. */
  uploadTimeoutMs: number;
  fetch?: FetchLike;
}

export type DevApi = ReturnType<typeof createDevApi>;

export function createDevApi(options: DevApiOptions) {
  const baseUrl = options.url.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? fetch;
  const authorization = options.username !== '' || options.password !== '' ? `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}` : undefined;

  function refusal(status: number, json: unknown, text: string): ApiError {
    const first = (json as { errors?: { title?: string; detail?: string }[] } | undefined)?.errors?.[0];
    const title = first?.title ?? `HTTP ${status}`;
    if (status === 401) {
      return new ApiError(status, title, `the API at ${baseUrl} refused the credentials (${title}): give --username and --password, or CCBRIDGE_USERNAME and CCBRIDGE_PASSWORD`);
    }
    if (status === 404 && title === 'CF-NotFound') {
      // The router's answer for a route it does not have: not a development Cloud Controller.
      return new ApiError(status, title, `${baseUrl} does not serve ${API_PREFIX}: is it the development Cloud Controller (ccbridge cloud-controller, or npm start)?`);
    }
    const detail = first?.detail ?? (text.trim().slice(0, 200) || 'no details');
    return new ApiError(status, title, `${detail} (${title})`);
  }

  async function call<T>(method: string, path: string, body?: unknown, okStatus = [200, 201]): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (authorization) headers.Authorization = authorization;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const answer = await exchange(fetchImpl, {
      server: 'the API',
      baseUrl,
      method,
      path: API_PREFIX + path,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      timeoutMs: options.timeoutMs,
    });
    if (!okStatus.includes(answer.status)) throw refusal(answer.status, answer.json, answer.text);
    if (answer.json === undefined) throw new CliError(`the API at ${baseUrl} answered ${method} ${API_PREFIX}${path} with something that is not JSON`);
    return answer.json as T;
  }

  const app = (ref: string) => `/apps/${encodeURIComponent(ref)}`;

  return {
    baseUrl,

    apps: () => call<{ resources: AppJson[]; warnings: string[] }>('GET', '/apps'),

    app: (ref: string) => call<AppJson>('GET', app(ref)),

    sshAccess: (ref: string, index: number) => call<SshAccessJson>('GET', `${app(ref)}/ssh?index=${index}`),

    /** The app, or undefined when there is none of that name. */
    async findApp(ref: string): Promise<AppJson | undefined> {
      try {
        return await call<AppJson>('GET', app(ref));
      } catch (error) {
        if (error instanceof ApiError && error.title === 'CF-AppNotFound') return undefined;
        throw error;
      }
    },

    createApp: (body: CreateAppBody) => call<AppJson>('POST', '/apps', body),

    /** Uploads a zip or gzipped tar from a file (streamed, with its length). */
    async uploadBits(ref: string, archivePath: string): Promise<PackageJson> {
      const headers: Record<string, string> = { Accept: 'application/json', 'Content-Type': 'application/gzip' };
      if (authorization) headers.Authorization = authorization;
      const answer = await exchange(fetchImpl, {
        server: 'the API',
        baseUrl,
        method: 'PUT',
        path: `${API_PREFIX}${app(ref)}/bits`,
        headers,
        body: (await openAsBlob(archivePath)) as Blob,
        timeoutMs: options.uploadTimeoutMs,
      });
      if (answer.status !== 201) throw refusal(answer.status, answer.json, answer.text);
      return answer.json as PackageJson;
    },

    action: (ref: string, action: AppAction) => call<AppJson>('POST', `${app(ref)}/${action}`),

    scale: (ref: string, body: ScaleBody) => call<AppJson>('POST', `${app(ref)}/scale`, body),

    deleteApp: (ref: string) => call<{ deleted: string; name: string; warnings: string[] }>('DELETE', app(ref)),

    environment: (ref: string) => call<{ var: Record<string, string> }>('GET', `${app(ref)}/environment_variables`),

    /** Sets variables (strings) and unsets them (null). */
    patchEnvironment: (ref: string, vars: Record<string, string | null>) =>
      call<{ var: Record<string, string>; warnings: string[] }>('PATCH', `${app(ref)}/environment_variables`, { var: vars }),

    builds: (ref: string) => call<{ resources: BuildJson[] }>('GET', `${app(ref)}/builds`),

    events(ref: string, query: { types: string[]; limit: number }) {
      const params = new URLSearchParams({ limit: String(query.limit) });
      if (query.types.length > 0) params.set('type', query.types.join(','));
      return call<{ resources: EventJson[] }>('GET', `${app(ref)}/events?${params}`);
    },

    logs: (ref: string) => call<LogsJson>('GET', `${app(ref)}/logs`),
  };
}
