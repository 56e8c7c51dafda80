// The routes the bridge and its containers call on the development Cloud Controller (a
// development stand-in), as Cloud Controller answers them: staging results, instance reports,
// the bulk desired-state pages (spec §5.4), the staging blobstore and droplet jobs (spec §9).
import { encodeLegacyJson } from '../../lib/legacy-json.js';
import { CcApiError, type Controller, type InstanceReportKind, type ReceivedJob } from './controller.js';
import { readBody, readJson, sendFile, sendJson, sendText, type Route } from './http.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';

/** Bound on JSON bodies of the internal API. */
const MAX_JSON_BYTES = 4 * 1024 * 1024;
/** Bound on one bulk page and on one bulk apps request. */
export const MAX_BULK_BATCH = 10_000;

export const EVENT_ID_HEADER = 'x-ccbridge-event-id';

const parseError = (message: string) => new CcApiError(400, 'CF-MessageParseError', `Request invalid due to parse error: ${message}`, 1001);

function jobBody(job: ReceivedJob): unknown {
  return {
    metadata: { guid: job.guid, created_at: new Date(job.createdAtMs).toISOString(), url: `/v2/jobs/${job.guid}` },
    entity: { guid: job.guid, status: job.status },
  };
}

/** The `{"id": N}` bulk token; `{}` (the first page) is id 0. */
function tokenId(text: string): number {
  let token: unknown;
  try {
    token = JSON.parse(text);
  } catch {
    throw parseError(`token ${JSON.stringify(text)} is not JSON`);
  }
  if (token === null || typeof token !== 'object' || Array.isArray(token)) throw parseError('token is not a JSON object');
  const id = (token as { id?: unknown }).id;
  if (id === undefined) return 0;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw parseError('token id is not a non-negative integer');
  return id;
}

function batchSize(text: string | null): number {
  if (text === null || !/^\d+$/.test(text)) throw parseError('batch_size must be a positive integer');
  const size = Number(text);
  if (size < 1 || size > MAX_BULK_BATCH) throw parseError(`batch_size must be between 1 and ${MAX_BULK_BATCH}`);
  return size;
}

export function internalRoutes(controller: Controller): Route[] {
  const report = (kind: InstanceReportKind): Route['handle'] => async ({ req, res, params }) => {
    const body = await readBody(req, MAX_JSON_BYTES);
    const eventId = req.headers[EVENT_ID_HEADER];
    controller.instanceReport(kind, params.process_guid!, body, typeof eventId === 'string' && eventId !== '' ? eventId : undefined);
    sendText(res, 200, '', 'application/json');
  };

  return [
    {
      method: 'POST',
      path: '/internal/staging/:staging_guid/completed',
      access: 'basic',
      errors: 'v2',
      async handle({ req, res, params, requestId }) {
        const body = await readBody(req, MAX_JSON_BYTES);
        controller.stagingCompleted(params.staging_guid!, body, requestId);
        sendText(res, 200, '', 'application/json');
      },
    },
    { method: 'POST', path: '/internal/apps/:process_guid/crashed', access: 'basic', errors: 'v2', handle: report('crashed-legacy') },
    { method: 'POST', path: '/internal/v4/apps/:process_guid/crashed', access: 'basic', errors: 'v2', handle: report('crashed') },
    { method: 'POST', path: '/internal/v4/apps/:process_guid/rescheduling', access: 'basic', errors: 'v2', handle: report('rescheduling') },
    { method: 'POST', path: '/internal/v4/apps/:process_guid/readiness_changed', access: 'basic', errors: 'v2', handle: report('readiness_changed') },
    {
      method: 'GET',
      path: '/internal/bulk/apps',
      access: 'basic',
      errors: 'v2',
      handle({ res, query }) {
        const size = batchSize(query.get('batch_size'));
        const after = tokenId(query.get('token') ?? '{}');
        // Written as Cloud Controller writes them: lists are [] when empty, never null.
        if (query.get('format') === 'fingerprint') {
          const page = controller.fingerprints(size, after);
          sendJson(res, 200, { fingerprints: page.fingerprints.map((f) => ({ process_guid: f.processGuid, etag: f.etag })), token: { id: page.nextId } });
        } else {
          const page = controller.desiredAppsPage(size, after);
          const apps = page.apps.map((app) => encodeLegacyJson(`${CC}.DesireAppRequestFromCC`, app)).join(',');
          sendText(res, 200, `{"apps":[${apps}],"token":${JSON.stringify({ id: page.nextId })}}`, 'application/json');
        }
      },
    },
    {
      method: 'POST',
      path: '/internal/bulk/apps',
      access: 'basic',
      errors: 'v2',
      async handle({ req, res }) {
        const guids = await readJson(req, MAX_JSON_BYTES);
        if (!Array.isArray(guids) || !guids.every((g) => typeof g === 'string')) throw parseError('the body must be a JSON array of process guids');
        if (guids.length > MAX_BULK_BATCH) throw parseError(`at most ${MAX_BULK_BATCH} process guids at once`);
        const apps = controller.desiredApps(guids as string[]);
        sendText(res, 200, `[${apps.map((app) => encodeLegacyJson(`${CC}.DesireAppRequestFromCC`, app)).join(',')}]`, 'application/json');
      },
    },
    {
      method: 'GET',
      path: '/staging/packages/:app_guid',
      access: 'basic-or-signature',
      errors: 'v2',
      handle: ({ res, params, query }) => sendFile(res, controller.packageFile(params.app_guid!, query.get('package'))),
    },
    {
      method: 'POST',
      path: '/staging/droplets/:app_guid/upload',
      access: 'basic-or-signature',
      errors: 'v2',
      async handle({ req, res, params, query }) {
        const job = await controller.receiveDroplet(params.app_guid!, query.get('build'), req);
        if (query.get('async') === 'true') sendJson(res, 200, jobBody(job));
        else sendJson(res, 201, {});
      },
    },
    {
      method: 'GET',
      path: '/staging/droplets/:app_guid/download',
      access: 'basic-or-signature',
      errors: 'v2',
      handle: ({ res, params, query }) => sendFile(res, controller.dropletFile(params.app_guid!, query.get('droplet'))),
    },
    {
      method: 'POST',
      path: '/staging/buildpack_cache/:app_guid/upload',
      access: 'basic-or-signature',
      errors: 'v2',
      async handle({ req, res, params }) {
        await controller.receiveBuildpackCache(params.app_guid!, req);
        sendJson(res, 200, {});
      },
    },
    {
      method: 'GET',
      path: '/staging/buildpack_cache/:app_guid/download',
      access: 'basic-or-signature',
      errors: 'v2',
      handle: ({ res, params }) => sendFile(res, controller.buildpackCacheFile(params.app_guid!)),
    },
    {
      // The uploader polls job URLs without credentials, as it did against Cloud Controller.
      method: 'GET',
      path: '/v2/jobs/:job_guid',
      access: 'anyone',
      errors: 'v2',
      handle: ({ res, params }) => sendJson(res, 200, jobBody(controller.job(params.job_guid!))),
    },
  ];
}
