// The executor's HTTP client for downloads and uploads: node:http(s) with a deadline on every
// request, credentials in the URL turned into basic auth (and never printed), redirects followed
// a bounded number of times.
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { displayUrl } from './types.js';

export class HttpFailure extends Error {
  override name = 'HttpFailure';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface HttpCall {
  method: 'GET' | 'POST';
  url: string;
  headers?: OutgoingHttpHeaders;
  body?: Readable;
  signal: AbortSignal;
  maxRedirects?: number;
}

/** Sends the request and resolves with the response head; the caller reads (or discards) the body. */
export async function httpCall(call: HttpCall): Promise<IncomingMessage> {
  let url = call.url;
  for (let redirects = 0; ; redirects += 1) {
    const response = await once(call, url);
    const location = response.headers.location;
    const redirected = [301, 302, 303, 307, 308].includes(response.statusCode ?? 0) && location !== undefined;
    if (!redirected || call.method !== 'GET') return response;
    response.resume();
    if (redirects >= (call.maxRedirects ?? 10)) throw new HttpFailure(`${call.method} ${displayUrl(call.url)}: too many redirects`);
    url = new URL(location, url).toString();
  }
}

function once(call: HttpCall, target: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return reject(new HttpFailure(`invalid URL`));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return reject(new HttpFailure(`${displayUrl(target)}: unsupported scheme ${url.protocol}`));
    }
    const headers: OutgoingHttpHeaders = { ...call.headers };
    if (url.username !== '' || url.password !== '') {
      const user = decodeURIComponent(url.username);
      const password = decodeURIComponent(url.password);
      headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send(
      {
        method: call.method,
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port,
        path: `${url.pathname}${url.search}`,
        headers,
        // One connection per request: no pooled socket outlives a cancelled download.
        agent: false,
        signal: call.signal,
      },
      resolve,
    );
    request.on('error', (error) => reject(describe(call, target, error)));
    if (call.body) {
      call.body.on('error', (error) => request.destroy(error));
      call.body.pipe(request);
    } else request.end();
  });
}

function describe(call: HttpCall, target: string, error: Error): HttpFailure {
  if (call.signal.aborted) {
    const reason: unknown = call.signal.reason;
    const text = reason instanceof Error ? reason.message : String(reason);
    return new HttpFailure(`${call.method} ${displayUrl(target)}: ${text}`);
  }
  return new HttpFailure(`${call.method} ${displayUrl(target)}: ${error.message}`);
}

/** A bounded excerpt of an error response's body, for failure messages. */
export async function bodyExcerpt(response: IncomingMessage, maxBytes = 512): Promise<string> {
  let text = '';
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (text.length < maxBytes) text += chunk.toString('utf8');
  }
  return text.slice(0, maxBytes).trim();
}

/** An AbortSignal that fires on the caller's signal or after ms, with a message saying which. */
export function deadline(signal: AbortSignal, ms: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error(`timed out after ${ms}ms`)), ms);
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    },
  };
}
