// The outbound half of the cc-uploader (spec §9): the incoming body goes to CC as
// multipart/form-data with one file part, streamed, with an exact Content-Length computed up
// front (incoming length + the multipart framing), as Go's uploader does with io.MultiReader.
//
// Connection failures are retried (3 attempts in all). The body can only be sent once — it is
// the client's request stream — so the body is not touched until the connection to CC is up:
// a dial failure has consumed nothing, and only dial failures are retried.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../lib/log.js';
import { basicAuthFor, withoutCredentials } from './upload-url.js';

/** The form field CC reads the file from. */
export const FORM_FIELD = 'file';

export interface MultipartFraming {
  contentType: string;
  head: Buffer;
  tail: Buffer;
}

/** Go's multipart.Writer output around one CreateFormFile part; the boundary is 30 random bytes in hex. */
export function multipartFraming(filename: string, boundary = randomBytes(30).toString('hex')): MultipartFraming {
  const escape = (text: string) => text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    head: Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${escape(FORM_FIELD)}"; filename="${escape(filename)}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    tail: Buffer.from(`\r\n--${boundary}--\r\n`),
  };
}

export interface CcUploadRequest {
  /** The CC URL, possibly with `user:password@` (sent as basic auth, never logged). */
  url: URL;
  filename: string;
  body: Readable;
  contentLength: number;
  contentMd5?: string;
  /** Aborts the upload (timeout, client gone); its reason becomes the error text. */
  signal: AbortSignal;
  logger: Logger;
}

export interface CcUploadSettings {
  skipCertVerify: boolean;
  /** CC's CA and the client certificate presented to CC (PEM contents). */
  ccTls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Bound on establishing the connection to CC (Go's dialer timeout). */
  dialTimeoutMs: number;
  attempts: number;
  /** Bound on the CC answer body kept (error texts, job JSON). */
  maxResponseBytes: number;
}

export type CcUploadOutcome =
  | { ok: true; status: number; body: string }
  /** status: CC's status when it answered, else 500. */
  | { ok: false; status: number; message: string };

class DialError extends Error {
  override name = 'DialError';
}

export async function uploadToCc(request: CcUploadRequest, settings: CcUploadSettings): Promise<CcUploadOutcome> {
  const { url, logger } = request;
  const shownUrl = withoutCredentials(url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, status: 500, message: `Post ${JSON.stringify(shownUrl)}: unsupported protocol scheme ${JSON.stringify(url.protocol.slice(0, -1))}` };
  }
  const framing = multipartFraming(request.filename);
  const headers: Record<string, string | number> = {
    'Content-Type': framing.contentType,
    'Content-Length': request.contentLength + framing.head.length + framing.tail.length,
  };
  if (request.contentMd5) headers['Content-MD5'] = request.contentMd5;
  const authorization = basicAuthFor(url);
  if (authorization) headers.Authorization = authorization;

  for (let attempt = 1; ; attempt++) {
    try {
      const { status, body } = await attemptUpload(request, settings, framing, headers);
      if (status === 200 || status === 201) return { ok: true, status, body };
      return { ok: false, status, message: `status code: ${status}\n${body}` };
    } catch (error) {
      if (request.signal.aborted) return { ok: false, status: 500, message: abortMessage(request.signal, 'upload') };
      const message = `Post ${JSON.stringify(shownUrl)}: ${(error as Error).message}`;
      logger.error({ attempt, err: { message, type: (error as Error).name } }, 'upload-attempt-failed');
      if (!(error instanceof DialError) || attempt >= settings.attempts) return { ok: false, status: 500, message };
    }
  }
}

/** The text for a cancelled operation: the abort reason's message when it has one. */
export function abortMessage(signal: AbortSignal, what: string): string {
  const reason = signal.reason as unknown;
  return `${what} cancelled: ${reason instanceof Error ? reason.message : String(reason)}`;
}

function attemptUpload(
  request: CcUploadRequest,
  settings: CcUploadSettings,
  framing: MultipartFraming,
  headers: Record<string, string | number>,
): Promise<{ status: number; body: string }> {
  const { url } = request;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let settled = false;
    let bodyDone = false;
    let answered: { status: number; body: string } | undefined;
    const finish = (error: Error | undefined, result?: { status: number; body: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(dialTimer);
      if (error) {
        outbound.destroy();
        reject(error);
      } else resolve(result!);
    };

    const outbound: ClientRequest = send({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers,
      // A fresh connection per upload: a reused keep-alive socket could fail after the body
      // started flowing, which could not be retried.
      agent: false,
      signal: request.signal,
      rejectUnauthorized: !settings.skipCertVerify,
      ca: settings.ccTls?.ca,
      cert: settings.ccTls?.cert,
      key: settings.ccTls?.key,
    });

    let connected = false;
    const dialTimer = setTimeout(() => {
      if (!connected) outbound.destroy(new DialError(`dial tcp ${url.host}: i/o timeout after ${settings.dialTimeoutMs}ms`));
    }, settings.dialTimeoutMs);

    outbound.once('error', (error) => finish(connected ? error : new DialError((error as Error).message)));
    outbound.once('socket', (socket) => {
      const ready = url.protocol === 'https:' ? 'secureConnect' : 'connect';
      socket.once('connect', () => {
        connected = true;
        clearTimeout(dialTimer);
      });
      socket.once(ready, () => {
        // Only now is the client's body read: nothing was consumed by a failed dial.
        sendBody();
      });
    });

    const sendBody = () => {
      const { body, contentLength } = request;
      let seen = 0;
      // Byte mode keeps at most a chunk or so between the client's socket and CC's.
      const multipartBody = Readable.from(
        (async function* () {
          yield framing.head;
          // Left open on an early stop (CC refused, timeout): the server still answers the
          // client on this connection, and Node drains what the client keeps sending.
          for await (const chunk of body.iterator({ destroyOnReturn: false })) {
            seen += (chunk as Buffer).length;
            yield chunk as Buffer;
          }
          if (seen !== contentLength) throw new Error(`request body ended after ${seen} of ${contentLength} bytes`);
          yield framing.tail;
        })(),
        { objectMode: false },
      );
      pipeline(multipartBody, outbound).then(
        () => {
          bodyDone = true;
          if (answered) finish(undefined, answered);
        },
        (error: Error) => finish(error),
      );
    };

    outbound.once('response', (response: IncomingMessage) => {
      readBounded(response, settings.maxResponseBytes).then(
        (body) => {
          answered = { status: response.statusCode ?? 0, body };
          // An early refusal (CC answering before the whole body arrived) ends the upload now;
          // a success only counts once every byte went out.
          if (bodyDone || !(answered.status === 200 || answered.status === 201)) {
            finish(undefined, answered);
            if (!bodyDone) outbound.destroy();
          }
        },
        (error: Error) => finish(error),
      );
    });
  });
}

/** A response body as text, keeping at most `limit` bytes (the rest is read and dropped). */
export async function readBounded(response: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    if (kept < limit) {
      const piece = buffer.subarray(0, limit - kept);
      chunks.push(piece);
      kept += piece.length;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
