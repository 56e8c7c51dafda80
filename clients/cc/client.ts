// The Cloud Controller internal API, as the bridge calls it: staging results, crash and instance
// reports, and the bulk desired-state pages the nsync bulker reads. Bodies go through the legacy
// JSON codec; every call has a deadline; basic auth as the original daemons sent it.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type {
  AppCrashedRequest,
  AppCrashedRequestV4,
  AppReadinessChangedRequest,
  AppReschedulingRequest,
  CCDesiredStateFingerprintResponse,
  DesireAppRequestFromCC,
  StagingResponseForCC,
} from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { decodeLegacyJson, encodeLegacyJson, fromLegacyValue, LegacyJsonError } from '../../lib/legacy-json.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';

export interface CcClientOptions {
  /** e.g. http://127.0.0.1:9022 */
  baseUrl: string;
  username?: string;
  password?: string;
  /** Deadline of each call (5 s for the stager and watcher, 30 s for the bulker in the originals). */
  timeoutMs?: number;
  /** TLS: CA bundle, client certificate and key (PEM), and whether to skip verification. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; skipVerify?: boolean };
}

/** CC could not be reached or did not answer in time (the bridge answers 503 for this). */
export class CcUnreachableError extends Error {
  override name = 'CcUnreachableError';
}

/** CC answered with a status other than the one expected; `status` is passed through where the spec says so. */
export class CcStatusError extends Error {
  override name = 'CcStatusError';
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`invalid response code ${status}`);
  }
}

/** CC answered 200 with a body that does not fit. */
export class CcResponseError extends Error {
  override name = 'CcResponseError';
}

export interface CcCallOptions {
  requestId?: string;
  /** X-Ccbridge-Event-Id: a stable id a receiver can drop duplicates by. */
  eventId?: string;
  signal?: AbortSignal;
}

export type InstanceReport =
  | { kind: 'crashed-legacy'; body: AppCrashedRequest }
  | { kind: 'crashed'; body: AppCrashedRequestV4 }
  | { kind: 'rescheduling'; body: AppReschedulingRequest }
  | { kind: 'readiness_changed'; body: AppReadinessChangedRequest };

const REPORT_ROUTES: Record<InstanceReport['kind'], { path: (guid: string) => string; type: string }> = {
  'crashed-legacy': { path: (g) => `/internal/apps/${g}/crashed`, type: `${CC}.AppCrashedRequest` },
  crashed: { path: (g) => `/internal/v4/apps/${g}/crashed`, type: `${CC}.AppCrashedRequestV4` },
  rescheduling: { path: (g) => `/internal/v4/apps/${g}/rescheduling`, type: `${CC}.AppReschedulingRequest` },
  readiness_changed: { path: (g) => `/internal/v4/apps/${g}/readiness_changed`, type: `${CC}.AppReadinessChangedRequest` },
};

export interface CcClient {
  /** POST /internal/staging/:guid/completed; resolves only on 200. */
  stagingCompleted(stagingGuid: string, response: StagingResponseForCC, options?: CcCallOptions): Promise<void>;
  /** POST an instance report (crash, rescheduling, readiness); resolves on any 2xx. */
  reportInstance(processGuid: string, report: InstanceReport, options?: CcCallOptions): Promise<void>;
  /** GET /internal/bulk/apps?format=fingerprint: one page. `token` is the raw JSON text ("{}" first). */
  fingerprints(batchSize: number, token: string, options?: CcCallOptions): Promise<CCDesiredStateFingerprintResponse>;
  /** POST /internal/bulk/apps: the full desired apps of the given process guids. */
  desiredApps(processGuids: readonly string[], options?: CcCallOptions): Promise<DesireAppRequestFromCC[]>;
  close(): void;
}

export function createCcClient(options: CcClientOptions): CcClient {
  const base = new URL(options.baseUrl);
  const secure = base.protocol === 'https:';
  const agent = secure
    ? new HttpsAgent({
        keepAlive: true,
        ca: options.tls?.ca,
        cert: options.tls?.cert,
        key: options.tls?.key,
        rejectUnauthorized: !(options.tls?.skipVerify ?? false),
      })
    : new HttpAgent({ keepAlive: true });
  const timeoutMs = options.timeoutMs ?? 5_000;
  const auth = options.username || options.password ? `Basic ${Buffer.from(`${options.username ?? ''}:${options.password ?? ''}`).toString('base64')}` : undefined;
  const basePath = base.pathname.replace(/\/+$/, '');

  async function call(method: string, path: string, body: string | undefined, callOptions: CcCallOptions = {}): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (auth) headers.Authorization = auth;
    if (callOptions.requestId) headers['X-Vcap-Request-Id'] = callOptions.requestId;
    if (callOptions.eventId) headers['X-Ccbridge-Event-Id'] = callOptions.eventId;
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
    const signal = callOptions.signal ? AbortSignal.any([callOptions.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const requestOptions: RequestOptions = {
      protocol: base.protocol,
      hostname: base.hostname.replace(/^\[|\]$/g, ''),
      port: base.port,
      method,
      path: basePath + path,
      headers,
      agent,
      signal,
    };
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(requestOptions, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (error) => reject(new CcUnreachableError(`reading CC's answer to ${method} ${path} failed: ${error.message}`)));
      });
      req.on('error', (error) => reject(new CcUnreachableError(`${method} ${path} did not reach CC: ${error.message}`)));
      req.end(body);
    });
  }

  return {
    async stagingCompleted(stagingGuid, response, callOptions) {
      const { status, text } = await call(
        'POST',
        `/internal/staging/${encodeURIComponent(stagingGuid)}/completed`,
        encodeLegacyJson(`${CC}.StagingResponseForCC`, response),
        callOptions,
      );
      if (status !== 200) throw new CcStatusError(status, text);
    },

    async reportInstance(processGuid, report, callOptions) {
      const route = REPORT_ROUTES[report.kind];
      const { status, text } = await call('POST', route.path(encodeURIComponent(processGuid)), encodeLegacyJson(route.type, report.body), callOptions);
      if (status < 200 || status > 299) throw new CcStatusError(status, text);
    },

    async fingerprints(batchSize, token, callOptions) {
      const query = `batch_size=${batchSize}&format=fingerprint&token=${encodeURIComponent(token)}`;
      const { status, text } = await call('GET', `/internal/bulk/apps?${query}`, undefined, callOptions);
      if (status !== 200) throw new CcStatusError(status, text);
      const page = parse<CCDesiredStateFingerprintResponse>(`${CC}.CCDesiredStateFingerprintResponse`, text);
      if (page.token === '') throw new CcResponseError('token not included in response');
      return page;
    },

    async desiredApps(processGuids, callOptions) {
      if (processGuids.length === 0) return [];
      const { status, text } = await call('POST', '/internal/bulk/apps', JSON.stringify(processGuids), callOptions);
      if (status !== 200) throw new CcStatusError(status, text);
      let list: unknown;
      try {
        list = JSON.parse(text);
      } catch {
        throw new CcResponseError('bulk apps answer is not JSON');
      }
      if (!Array.isArray(list)) throw new CcResponseError('bulk apps answer is not a list');
      try {
        return list.map((app) => fromLegacyValue<DesireAppRequestFromCC>(`${CC}.DesireAppRequestFromCC`, app));
      } catch (error) {
        throw new CcResponseError(`bulk apps answer does not fit: ${(error as Error).message}`);
      }
    },

    close() {
      agent.destroy();
    },
  };
}

function parse<T>(typeName: string, text: string): T {
  try {
    return decodeLegacyJson<T>(typeName, text);
  } catch (error) {
    if (error instanceof LegacyJsonError) throw new CcResponseError(`CC's answer does not fit ${typeName}: ${error.message}`);
    throw error;
  }
}
