// The cc-uploader (spec §9): droplets and build artifacts caches from staging tasks to CC's
// blobstore. `POST /v1/droplet/:guid?cc-droplet-upload-uri=…` and
// `POST /v1/build_artifacts/:app_guid?cc-build-artifacts-upload-uri=…` stream the request body to
// the CC URL as a multipart file; droplets then follow CC's async job to its end.
//
// The CC URL carries the staging credentials (`user:password@`); they become a basic-auth
// header and never reach a log line or an answer.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { formatDuration } from '../../lib/flags.js';
import type { Logger } from '../../lib/log.js';
import { uploadToCc, type CcUploadSettings } from './cc-upload.js';
import { decodeRequestPath, listen, plainTextBody, plainTextError, splitRequestTarget, type Listening } from './http.js';
import { JobPollError, parseCcJob, pollCcJob, type PollSettings } from './job-poller.js';
import { firstValue, parseGoQuery, parseTimeoutParameter, parseUploadUri, withAsyncTrue, withoutCredentials } from './upload-url.js';

export const CC_DROPLET_UPLOAD_URI_KEY = 'cc-droplet-upload-uri';
export const CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY = 'cc-build-artifacts-upload-uri';
export const CC_TIMEOUT_KEY = 'timeout';

export interface UploaderTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** When given, clients must present a certificate signed by it (mutual TLS). */
  ca?: string | Buffer;
}

export interface UploaderOptions {
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  logger: Logger;
  /** Wait between two polls of CC's droplet job. */
  ccJobPollingIntervalMs?: number;
  /** Bound on upload + job polling when the request names no `timeout`. */
  defaultTimeoutMs?: number;
  /** What one unit of the `timeout` parameter is worth: a second on the wire. */
  timeoutUnitMs?: number;
  /** Deadline of each job poll request (the original's -communicationTimeout). */
  communicationTimeoutMs?: number;
  /** Bound on connecting to CC for an upload. */
  dialTimeoutMs?: number;
  /** Upload attempts when connecting to CC fails. */
  uploadAttempts?: number;
  /** Do not verify CC's TLS certificate. */
  skipCertVerify?: boolean;
  /** Largest droplet or build cache accepted (413 beyond); droplets are big, so the default is 5 GiB. */
  maxUploadBytes?: number;
  /** CC's CA and the client certificate this uploader presents to CC (PEM contents). */
  ccTls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Serve HTTPS instead of HTTP. */
  tls?: UploaderTls;
  /** How long close() lets uploads in flight finish before cutting them. */
  shutdownGraceMs?: number;
}

export type Uploader = Listening;

export const DEFAULT_MAX_UPLOAD_BYTES = 5 * 1024 ** 3;

interface UploadKind {
  name: 'droplet' | 'build-artifacts';
  uriKey: string;
  filename: string;
}

const DROPLET: UploadKind = { name: 'droplet', uriKey: CC_DROPLET_UPLOAD_URI_KEY, filename: 'droplet.tgz' };
const BUILD_ARTIFACTS: UploadKind = { name: 'build-artifacts', uriKey: CC_BUILD_ARTIFACTS_UPLOAD_URI_KEY, filename: 'buildpack_cache.tgz' };

// rata routes: a capture matches up to the next `/` and may be empty; the guid is not used.
const ROUTES: readonly { pattern: RegExp; kind: UploadKind }[] = [
  { pattern: /^\/v1\/droplet\/[^/]*$/, kind: DROPLET },
  { pattern: /^\/v1\/build_artifacts\/[^/]*$/, kind: BUILD_ARTIFACTS },
];

// setTimeout cannot wait longer; a larger `timeout` would otherwise fire at once.
const LONGEST_TIMER_MS = 2 ** 31 - 1;

export async function startUploader(options: UploaderOptions): Promise<Uploader> {
  const handler = createUploadHandler(options);
  const server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, ca: options.tls.ca, requestCert: options.tls.ca !== undefined, rejectUnauthorized: options.tls.ca !== undefined, minVersion: 'TLSv1.2' }, handler)
    : createHttpServer(handler);
  const listening = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0, options.tls ? 'https' : 'http', options.shutdownGraceMs ?? 5_000);
  options.logger.info({ url: listening.url }, 'cc-uploader-ready');
  return listening;
}

export function createUploadHandler(options: UploaderOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const uploadSettings: CcUploadSettings = {
    skipCertVerify: options.skipCertVerify ?? false,
    ccTls: options.ccTls,
    dialTimeoutMs: options.dialTimeoutMs ?? 10_000,
    attempts: options.uploadAttempts ?? 3,
    maxResponseBytes: 1024 * 1024,
  };
  const pollSettings: PollSettings = {
    intervalMs: options.ccJobPollingIntervalMs ?? 1_000,
    requestTimeoutMs: options.communicationTimeoutMs ?? 30_000,
    skipCertVerify: options.skipCertVerify ?? false,
    ccTls: options.ccTls,
    maxResponseBytes: 1024 * 1024,
  };
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 300_000;
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const timeoutUnitMs = options.timeoutUnitMs ?? 1_000;
  const log = options.logger.child({ session: 'cc-uploader' });

  return (req, res) => {
    const { rawPath, rawQuery } = splitRequestTarget(req);
    const path = decodeRequestPath(rawPath);
    if (path === undefined) {
      plainTextError(res, 400, '400 Bad Request');
      return;
    }
    const route = ROUTES.find((r) => r.pattern.test(path));
    if (!route) {
      plainTextError(res, 404, '404 page not found');
      return;
    }
    if (req.method !== 'POST') {
      plainTextError(res, 405, 'Method Not Allowed', { Allow: 'POST' });
      return;
    }
    const requestLog = log.child({ upload: route.kind.name, path });
    handleUpload(route.kind, req, res, rawQuery, requestLog).catch((error: unknown) => {
      requestLog.error({ err: error }, 'upload-handler-failed');
      if (!res.headersSent) plainTextBody(res, 500, (error as Error).message);
      else res.destroy();
    });
  };

  async function handleUpload(kind: UploadKind, req: IncomingMessage, res: ServerResponse, rawQuery: string, requestLog: Logger): Promise<void> {
    const query = parseGoQuery(rawQuery);
    const uri = parseUploadUri(firstValue(query, kind.uriKey));
    if (uri.kind === 'missing') {
      requestLog.error({ parameter: kind.uriKey }, 'missing-upload-uri');
      plainTextBody(res, 400, `missing ${kind.uriKey} parameter`);
      return;
    }
    if (uri.kind === 'unparseable') {
      requestLog.error({ parameter: kind.uriKey, reason: uri.message }, 'failed-parsing-upload-uri');
      plainTextBody(res, 400, uri.message);
      return;
    }
    const ccUrl = kind === DROPLET ? withAsyncTrue(uri.url) : uri.url;

    const timeoutParameter = parseTimeoutParameter(firstValue(query, CC_TIMEOUT_KEY));
    if (timeoutParameter.kind === 'invalid') {
      requestLog.error({ reason: timeoutParameter.message }, 'failed-converting-timeout-parameter');
      plainTextBody(res, 400, timeoutParameter.message);
      return;
    }
    const timeoutMs = Math.min(timeoutParameter.kind === 'ok' ? timeoutParameter.value * timeoutUnitMs : defaultTimeoutMs, LONGEST_TIMER_MS);

    const contentLength = Number(req.headers['content-length'] ?? 0);
    if (!(contentLength > 0)) {
      requestLog.error({ content_length: req.headers['content-length'] ?? null }, 'missing-content-length');
      plainTextBody(res, 411, 'Missing Content Length');
      return;
    }
    // The body is exactly Content-Length long (node's parser holds it to that), so this bounds it.
    if (contentLength > maxUploadBytes) {
      requestLog.info({ content_length: contentLength, limit: maxUploadBytes }, 'upload-too-large');
      res.setHeader('Connection', 'close');
      plainTextBody(res, 413, 'Request Entity Too Large');
      req.resume();
      return;
    }

    // One signal for the whole exchange: the timeout and the client going away both cancel the
    // upload or the polling, whichever is under way.
    const cancel = new AbortController();
    const timer = setTimeout(() => cancel.abort(new Error(`timed out after ${formatDuration(timeoutMs)}`)), timeoutMs);
    const onClose = () => {
      if (!res.writableEnded) cancel.abort(new Error('client disconnected'));
    };
    res.once('close', onClose);
    const sessionLog = requestLog.child({ cc_url: withoutCredentials(ccUrl) });
    const started = Date.now();
    try {
      sessionLog.info({ content_length: contentLength, timeout_ms: timeoutMs }, 'upload-started');
      const outcome = await uploadToCc(
        {
          url: ccUrl,
          filename: kind.filename,
          body: req,
          contentLength,
          contentMd5: typeof req.headers['content-md5'] === 'string' ? req.headers['content-md5'] : undefined,
          signal: cancel.signal,
          logger: sessionLog,
        },
        uploadSettings,
      );
      if (!outcome.ok) {
        sessionLog.error({ status: outcome.status, reason: outcome.message, duration_ms: Date.now() - started }, 'upload-failed');
        answer(res, outcome.status, outcome.message);
        return;
      }
      sessionLog.info({ status: outcome.status, duration_ms: Date.now() - started }, 'upload-succeeded');
      if (kind === BUILD_ARTIFACTS) {
        answer(res, 200, '');
        return;
      }
      try {
        const job = parseCcJob(outcome.body);
        sessionLog.info({ job_guid: job.guid, status: job.status }, 'polling-job-started');
        await pollCcJob(job, ccUrl, cancel.signal, pollSettings, sessionLog);
      } catch (error) {
        if (!(error instanceof JobPollError)) throw error;
        sessionLog.error({ reason: error.message, duration_ms: Date.now() - started }, 'job-polling-failed');
        answer(res, 500, error.message);
        return;
      }
      sessionLog.info({ duration_ms: Date.now() - started }, 'droplet-upload-complete');
      answer(res, 201, '');
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
    }
  }
}

/** Nobody to answer once the client has gone; otherwise the status and the text as-is. */
function answer(res: ServerResponse, status: number, text: string): void {
  if (res.destroyed || res.writableEnded) return;
  if (text === '') {
    res.writeHead(status, { 'Content-Length': 0 });
    res.end();
    return;
  }
  plainTextBody(res, status, text);
}
