// A static file server for the staticfile buildpack, on $PORT, serving the directory named in
// config.json beside it (relative to the app directory, its working directory at start).
// GET and HEAD only; a directory serves its index.html; dotfiles and the buildpack's own files
// are never served; one log line per request on stdout, as the app's log.
import { createReadStream, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8'));
const appDir = resolve(fileURLToPath(new URL('..', import.meta.url)));
const root = resolve(appDir, config.root ?? '.');
const port = Number(process.env.PORT ?? 8080);

/** Files of the app's configuration, not of the site, when the site is the app directory. */
const HIDDEN = new Set(['Staticfile', 'Staticfile.auth', 'manifest.yml', 'Procfile']);

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.xml': 'application/xml',
  '.pdf': 'application/pdf',
};

/** The file a request path names, or undefined when it names nothing servable. */
function fileFor(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  const segments = decoded.split('/').filter((segment) => segment !== '');
  if (segments.some((segment) => segment.startsWith('.') || segment.includes('\0'))) return undefined;
  if (root === appDir && segments.length === 1 && HIDDEN.has(segments[0])) return undefined;
  const path = resolve(root, ...segments);
  if (path !== root && !path.startsWith(root + sep)) return undefined;
  return path;
}

function send(response, status, body, headers = {}) {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

const server = http.createServer((request, response) => {
  response.on('finish', () => process.stdout.write(`${request.method} ${request.url} ${response.statusCode}\n`));
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    send(response, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
    return;
  }
  const url = new URL(request.url ?? '/', 'http://localhost');
  let path = fileFor(url.pathname);
  let stats = path === undefined ? undefined : statOrUndefined(path);
  if (path !== undefined && stats?.isDirectory()) {
    if (!url.pathname.endsWith('/')) {
      send(response, 301, 'moved\n', { location: `${url.pathname}/${url.search}` });
      return;
    }
    path = join(path, 'index.html');
    stats = statOrUndefined(path);
  }
  if (path === undefined || stats === undefined || !stats.isFile()) {
    send(response, 404, 'not found\n');
    return;
  }
  response.writeHead(200, {
    'content-type': CONTENT_TYPES[/** @type {keyof typeof CONTENT_TYPES} */ (extname(path).toLowerCase())] ?? 'application/octet-stream',
    'content-length': stats.size,
    'last-modified': stats.mtime.toUTCString(),
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(path).on('error', () => response.destroy()).pipe(response);
});

function statOrUndefined(path) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

server.listen(port, () => process.stdout.write(`staticfile server listening on port ${port}, serving ${root}\n`));

// The cell stops an instance with SIGTERM: close and exit 0, so the stop is not a crash.
process.on('SIGTERM', () => {
  process.stdout.write('staticfile server stopping\n');
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
