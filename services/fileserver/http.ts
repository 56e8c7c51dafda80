// HTTP plumbing shared by the file server and the cc-uploader: listening on host:port (0: a free
// port), answering plain-text errors the way Go's net/http does, and closing in order (stop
// accepting, let requests in flight finish, cut what is left after a bound).
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type AnyServer = HttpServer | HttpsServer;

export interface Listening {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, waits for requests in flight up to the grace bound, then cuts them. */
  close(): Promise<void>;
}

export async function listen(server: AnyServer, host: string, port: number, scheme: 'http' | 'https', graceMs: number): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `${scheme}://${shownHost}:${address.port}`,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        // Keep-alive connections with nothing in flight would hold close() open until they time out.
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * Answers as Go's http.Error does: the message plus a newline, text/plain, no sniffing.
 * Returns the number of body bytes written.
 */
export function plainTextError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): number {
  const body = `${message}\n`;
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
  return Buffer.byteLength(body);
}

/** A body written as-is (no newline added), as Go's `w.WriteHeader(n); w.Write(text)` does. */
export function plainTextBody(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The request's path and raw query, split without interpreting either. */
export function splitRequestTarget(req: IncomingMessage): { rawPath: string; rawQuery: string } {
  const target = req.url ?? '/';
  const question = target.indexOf('?');
  return question < 0 ? { rawPath: target, rawQuery: '' } : { rawPath: target.slice(0, question), rawQuery: target.slice(question + 1) };
}

/**
 * Go decodes the request path before routing (`%2F` becomes `/`, `%2e%2e` becomes `..`), so
 * routes and file names are matched on the decoded form. Undefined for a bad escape, which Go's
 * server refuses as a bad request.
 */
export function decodeRequestPath(rawPath: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(rawPath)) return undefined;
  if (!rawPath.includes('%')) return rawPath;
  // Byte by byte rather than decodeURIComponent: Go accepts escapes that are not UTF-8 (`%ff`),
  // and such a name simply matches no file.
  const bytes: number[] = [];
  for (let i = 0; i < rawPath.length; i++) {
    if (rawPath[i] === '%') {
      bytes.push(parseInt(rawPath.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const char = String.fromCodePoint(rawPath.codePointAt(i)!);
      bytes.push(...Buffer.from(char, 'utf8'));
      i += char.length - 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
