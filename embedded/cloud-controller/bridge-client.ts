// The development Cloud Controller's calls to the bridge (it is a development stand-in, not Cloud
// Controller), made as Cloud Controller makes them: staging (spec §3.2), desired apps (§4.2) and
// instance state (§6.2). Bodies go through the legacy JSON codec; every call has a deadline.
import type { DesireAppRequestFromCC, LRPInstance, StagingRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { encodeLegacyJson, fromLegacyValue } from '../../lib/legacy-json.js';
import { tlsFetch, type ClientTls } from '../../lib/tls-fetch.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';

/** What the development CC needs from the bridge (the port; tests fake it with an HTTP server). */
export interface Bridge {
  /** PUT /v1/staging/:staging_guid. */
  stage(stagingGuid: string, request: StagingRequestFromCC, requestId?: string): Promise<void>;
  /** DELETE /v1/staging/:staging_guid; a staging the bridge no longer knows is no error. */
  stopStaging(stagingGuid: string, requestId?: string): Promise<void>;
  /** PUT /v1/apps/:process_guid. */
  desireApp(request: DesireAppRequestFromCC, requestId?: string): Promise<void>;
  /** DELETE /v1/apps/:process_guid; an app the bridge no longer knows is no error. */
  stopApp(processGuid: string, requestId?: string): Promise<void>;
  /** GET /v1/actual_lrps/:process_guid. */
  instances(processGuid: string): Promise<LRPInstance[]>;
  /** GET /v1/actual_lrps/:process_guid/stats (host, port and resource use). */
  instanceStats(processGuid: string): Promise<LRPInstance[]>;
  /** GET /v1/bulk_actual_lrp_status?guids=… */
  bulkInstances(processGuids: readonly string[]): Promise<Map<string, LRPInstance[]>>;
}

/** The bridge answered with an unexpected status, or could not be reached (status 0). */
export class BridgeCallError extends Error {
  override name = 'BridgeCallError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface BridgeClientOptions {
  /** The gateway, e.g. http://127.0.0.1:8888. */
  url: string;
  /** Deadline of each call. */
  timeoutMs: number;
  /**
   * Sent on stats calls, which TPS refuses without one and passes on to log-cache. Cloud
   * Controller sends the user's token there; this stand-in has no users, so it sends a fixed
   * token that names itself and is no secret.
   */
  statsAuthorization?: string;
  /** For an https gateway: its CA and this CC's client certificate. */
  tls?: ClientTls;
  /** Basic auth of the gateway's routes (its -listenerUsername / -listenerPassword); never sent on stats calls. */
  username?: string;
  password?: string;
}

function decodeInstances(what: string, list: unknown[]): LRPInstance[] {
  try {
    return list.map((item) => fromLegacyValue<LRPInstance>(`${CC}.LRPInstance`, item));
  } catch (error) {
    throw new BridgeCallError(200, `${what}: an instance in the bridge's answer does not fit: ${(error as Error).message}`);
  }
}

export const DEFAULT_STATS_AUTHORIZATION = 'bearer ccbridge-development-cloud-controller';

export function createBridgeClient(options: BridgeClientOptions): Bridge {
  const base = options.url.replace(/\/+$/, '');
  const statsAuthorization = options.statsAuthorization ?? DEFAULT_STATS_AUTHORIZATION;
  const fetch = tlsFetch(options.tls);
  const basic = options.username || options.password ? `Basic ${Buffer.from(`${options.username ?? ''}:${options.password ?? ''}`).toString('base64')}` : undefined;

  async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    const sent: Record<string, string> = { ...headers };
    if (basic !== undefined && sent.Authorization === undefined) sent.Authorization = basic;
    if (body !== undefined) sent['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(base + path, { method, headers: sent, body, signal: AbortSignal.timeout(options.timeoutMs) });
    } catch (error) {
      const cause = (error as Error).name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : ((error as { cause?: Error }).cause?.message ?? (error as Error).message);
      throw new BridgeCallError(0, `${method} ${path}: the bridge could not be reached: ${cause}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new BridgeCallError(0, `${method} ${path}: reading the bridge's answer failed: ${(error as Error).message}`);
    }
    return { status: response.status, text };
  }

  const expect = (method: string, path: string, got: { status: number; text: string }, ok: (status: number) => boolean) => {
    if (!ok(got.status)) throw new BridgeCallError(got.status, `${method} ${path}: the bridge answered ${got.status}${got.text ? `: ${got.text.slice(0, 500)}` : ''}`);
  };
  const success = (status: number) => status >= 200 && status < 300;
  const successOrGone = (status: number) => success(status) || status === 404;
  const requestIdHeader = (requestId?: string): Record<string, string> => (requestId ? { 'X-Vcap-Request-Id': requestId } : {});

  const instanceList = (path: string, text: string): LRPInstance[] => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new BridgeCallError(200, `GET ${path}: the bridge's answer is not JSON`);
    }
    if (!Array.isArray(parsed)) throw new BridgeCallError(200, `GET ${path}: the bridge's answer is not a list`);
    return decodeInstances(path, parsed);
  };

  return {
    async stage(stagingGuid, request, requestId) {
      const path = `/v1/staging/${encodeURIComponent(stagingGuid)}`;
      expect('PUT', path, await call('PUT', path, encodeLegacyJson(`${CC}.StagingRequestFromCC`, request), requestIdHeader(requestId)), success);
    },
    async stopStaging(stagingGuid, requestId) {
      const path = `/v1/staging/${encodeURIComponent(stagingGuid)}`;
      expect('DELETE', path, await call('DELETE', path, undefined, requestIdHeader(requestId)), successOrGone);
    },
    async desireApp(request, requestId) {
      const path = `/v1/apps/${encodeURIComponent(request.processGuid)}`;
      expect('PUT', path, await call('PUT', path, encodeLegacyJson(`${CC}.DesireAppRequestFromCC`, request), requestIdHeader(requestId)), success);
    },
    async stopApp(processGuid, requestId) {
      const path = `/v1/apps/${encodeURIComponent(processGuid)}`;
      expect('DELETE', path, await call('DELETE', path, undefined, requestIdHeader(requestId)), successOrGone);
    },
    async instances(processGuid) {
      const path = `/v1/actual_lrps/${encodeURIComponent(processGuid)}`;
      const got = await call('GET', path);
      expect('GET', path, got, (status) => status === 200);
      return instanceList(path, got.text);
    },
    async instanceStats(processGuid) {
      const path = `/v1/actual_lrps/${encodeURIComponent(processGuid)}/stats`;
      const got = await call('GET', path, undefined, { Authorization: statsAuthorization });
      expect('GET', path, got, (status) => status === 200);
      return instanceList(path, got.text);
    },
    async bulkInstances(processGuids) {
      const found = new Map<string, LRPInstance[]>();
      if (processGuids.length === 0) return found;
      const path = `/v1/bulk_actual_lrp_status?guids=${processGuids.map(encodeURIComponent).join(',')}`;
      const got = await call('GET', path);
      expect('GET', path, got, (status) => status === 200);
      let parsed: unknown;
      try {
        parsed = JSON.parse(got.text);
      } catch {
        throw new BridgeCallError(200, 'GET /v1/bulk_actual_lrp_status: the bridge\'s answer is not JSON');
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BridgeCallError(200, 'GET /v1/bulk_actual_lrp_status: the bridge\'s answer is not an object');
      for (const [guid, list] of Object.entries(parsed as Record<string, unknown>)) {
        if (Array.isArray(list)) found.set(guid, decodeInstances('GET /v1/bulk_actual_lrp_status', list));
      }
      return found;
    },
  };
}
