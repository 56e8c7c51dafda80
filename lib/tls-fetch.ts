// fetch for clients that must present a client certificate or trust a private CA: the global
// fetch cannot take TLS options in Node 20, so an https URL with TLS material goes through
// node:https and its answer is handed back as a web Response. Without TLS material (or for an
// http URL) it is the global fetch.
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

/** What a client trusts and presents; PEM contents. */
export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Skip verifying the server (only where the original daemon had such a flag). */
  rejectUnauthorized?: boolean;
}

export type TlsFetch = (url: string, init?: RequestInit) => Promise<Response>;

export function tlsFetch(tls: ClientTls | undefined): TlsFetch {
  if (!tls) return (url, init) => fetch(url, init);
  return (url, init = {}) => {
    const target = new URL(url);
    if (target.protocol !== 'https:') return fetch(url, init);
    return new Promise<Response>((resolve, reject) => {
      const headers = new Headers(init.headers);
      const body = init.body as string | Uint8Array | undefined | null;
      if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
        return reject(new TypeError('tlsFetch sends string or byte bodies only'));
      }
      if (body !== undefined && body !== null) headers.set('content-length', String(Buffer.byteLength(body)));
      const request = httpsRequest(
        {
          method: init.method ?? 'GET',
          hostname: target.hostname.replace(/^\[|\]$/g, ''),
          port: target.port,
          path: `${target.pathname}${target.search}`,
          headers: Object.fromEntries(headers),
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          rejectUnauthorized: tls.rejectUnauthorized ?? true,
          minVersion: 'TLSv1.2',
          agent: false,
          signal: init.signal ?? undefined,
        },
        (response) => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (value === undefined) continue;
            for (const one of Array.isArray(value) ? value : [value]) responseHeaders.append(name, one);
          }
          const status = response.statusCode ?? 502;
          const noBody = status === 204 || status === 304 || init.method === 'HEAD';
          if (noBody) response.resume();
          resolve(new Response(noBody ? null : (Readable.toWeb(response) as ReadableStream), { status, headers: responseHeaders }));
        },
      );
      request.on('error', (error) => reject(new TypeError('fetch failed', { cause: error })));
      request.end(body ?? undefined);
    });
  };
}
