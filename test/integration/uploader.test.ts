// The cc-uploader over real HTTP on port 0 against the CC double's blobstore (spec §9): request
// checks and their exact answers, the multipart body CC receives, credentials, job polling,
// timeouts, client disconnects, retries on refused connections, TLS towards CC, a large upload in
// bounded memory, and the `ccbridge uploader` command.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createLogger, silentLogger } from '../../lib/log.js';
import { multipartFraming, startUploader, type Uploader, type UploaderOptions } from '../../services/fileserver/index.js';
import { CcDouble, startCcDouble } from '../support/cc-double.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface PostOptions {
  /** The body; omitted: no body and no Content-Length. */
  body?: Buffer;
  headers?: Record<string, string | number>;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
  method?: string;
  ca?: Buffer;
}

function post(base: string, path: string, options: PostOptions = {}): Promise<Answer> {
  const url = new URL(base);
  const send = url.protocol === 'https:' ? httpsRequest : request;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.body && !options.chunked) headers['Content-Length'] = options.body.length;
    const req = send({ host: url.hostname, port: url.port, path, method: options.method ?? 'POST', headers, ca: options.ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunked) req.setHeader('Transfer-Encoding', 'chunked');
    req.end(options.body);
  });
}

const dropletPath = (ccUrl: string, extra = '') => `/v1/droplet/app-guid?cc-droplet-upload-uri=${encodeURIComponent(ccUrl)}${extra}`;
const cachePath = (ccUrl: string, extra = '') => `/v1/build_artifacts/app-guid?cc-build-artifacts-upload-uri=${encodeURIComponent(ccUrl)}${extra}`;

/** Log lines of an uploader, parsed, for assertions about what was (not) logged. */
function capturedLogger(): { logger: UploaderOptions['logger']; lines: Record<string, unknown>[]; raw: () => string; onLine: (fn: (line: Record<string, unknown>) => void) => void } {
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  const listeners: ((line: Record<string, unknown>) => void)[] = [];
  const destination = new PassThrough();
  destination.on('data', (chunk: Buffer) => {
    raw += chunk.toString('utf8');
    for (const text of chunk.toString('utf8').split('\n')) {
      if (!text.trim()) continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      for (const listener of listeners) listener(line);
    }
  });
  return { logger: createLogger({ destination, level: 'debug' }), lines, raw: () => raw, onLine: (fn) => listeners.push(fn) };
}

async function eventually(what: string, predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** global.gc without starting node with --expose-gc: the flag is set now and gc taken from a fresh context. */
function fullGarbageCollector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** A port nothing listens on (bound, then released). */
async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('cc-uploader', () => {
  let cc: CcDouble;
  let uploader: Uploader;
  let logs: ReturnType<typeof capturedLogger>;

  before(async () => {
    cc = await startCcDouble();
    logs = capturedLogger();
    // `timeout` counts milliseconds here so that timeouts can be exercised quickly.
    uploader = await startUploader({ logger: logs.logger, ccJobPollingIntervalMs: 5, defaultTimeoutMs: 10_000, timeoutUnitMs: 1 });
  });
  after(async () => {
    await uploader.close();
    await cc.stop();
  });
  beforeEach(() => {
    cc.statusFor.clear();
    cc.bodyFor.clear();
    cc.delayMs = 0;
    cc.jobPollsUntilDone = 1;
    cc.jobFinalStatus = 'finished';
    cc.keepUploadBytesUpTo = 4 * 1024 * 1024;
  });

  const dropletUrl = (guid: string, query = '') => `${cc.url}/staging/droplets/${guid}/upload${query}`;
  const cacheUrl = (guid: string) => `${cc.url}/staging/buildpack_cache/${guid}/upload`;

  test('a missing upload URI is 400 with the original texts, before anything else is checked', async () => {
    const droplet = await post(uploader.url, '/v1/droplet/app-guid');
    assert.equal(droplet.status, 400);
    assert.equal(droplet.text, 'missing cc-droplet-upload-uri parameter');
    const cache = await post(uploader.url, '/v1/build_artifacts/app-guid?timeout=abc', { body: Buffer.from('x') });
    assert.equal(cache.status, 400);
    assert.equal(cache.text, 'missing cc-build-artifacts-upload-uri parameter');
    // A URL without a host counts as missing, as in Go.
    for (const uri of ['', '/staging/droplets/x/upload', 'cc.example.com/staging/droplets/x/upload', 'http:///x', 'mailto:ops@example.com']) {
      const answer = await post(uploader.url, dropletPath(uri), { body: Buffer.from('x') });
      assert.equal(answer.status, 400, uri);
      assert.equal(answer.text, 'missing cc-droplet-upload-uri parameter', uri);
    }
  });

  test("an unparseable upload URI is 400 with Go's parse error, credentials removed", async () => {
    const cases = [
      { uri: ':no-scheme', text: 'parse ":no-scheme": missing protocol scheme' },
      { uri: 'http://cc.example.com/a%zzb', text: 'parse "http://cc.example.com/a%zzb": invalid URL escape "%zz"' },
      { uri: 'http://user:hunter2@cc.example.com:abc/x', text: 'parse "http://cc.example.com:abc/x": invalid port ":abc" after host' },
      { uri: 'http://[::1/x', text: `parse "http://[::1/x": missing ']' in host` },
      { uri: 'http://cc.example.com/\x01', text: 'parse "http://cc.example.com/\\u0001": net/url: invalid control character in URL' },
      { uri: 'a:b/c', text: 'missing cc-droplet-upload-uri parameter' },
      { uri: '1a:b', text: 'parse "1a:b": first path segment in URL cannot contain colon' },
    ];
    for (const { uri, text } of cases) {
      const answer = await post(uploader.url, dropletPath(uri), { body: Buffer.from('x') });
      assert.equal(answer.status, 400, uri);
      assert.equal(answer.text, text, uri);
    }
    assert.equal(cc.received(/^\/staging\//).length, 0);
  });

  test('a timeout that is not a positive integer is 400', async () => {
    const cases = [
      { timeout: 'abc', text: 'strconv.Atoi: parsing "abc": invalid syntax' },
      { timeout: '1.5', text: 'strconv.Atoi: parsing "1.5": invalid syntax' },
      { timeout: '99999999999999999999', text: 'strconv.Atoi: parsing "99999999999999999999": value out of range' },
      { timeout: '0', text: 'timeout must be a positive number of seconds, got "0"' },
      { timeout: '-5', text: 'timeout must be a positive number of seconds, got "-5"' },
    ];
    for (const { timeout, text } of cases) {
      const answer = await post(uploader.url, dropletPath(dropletUrl('d1'), `&timeout=${timeout}`), { body: Buffer.from('x') });
      assert.equal(answer.status, 400, timeout);
      assert.equal(answer.text, text, timeout);
    }
  });

  test('no Content-Length, or a zero one, is 411 Missing Content Length', async () => {
    const chunked = await post(uploader.url, dropletPath(dropletUrl('d1')), { body: Buffer.from('some bytes'), chunked: true });
    assert.equal(chunked.status, 411);
    assert.equal(chunked.text, 'Missing Content Length');
    const empty = await post(uploader.url, cachePath(cacheUrl('a1')), { body: Buffer.alloc(0) });
    assert.equal(empty.status, 411);
    assert.equal(empty.text, 'Missing Content Length');
    const none = await post(uploader.url, cachePath(cacheUrl('a1')));
    assert.equal(none.status, 411);
    assert.equal(cc.received(/^\/staging\//).length, 0);
  });

  test('routes: other verbs are 405 Allow: POST, other paths 404', async () => {
    const get = await post(uploader.url, dropletPath(dropletUrl('d1')), { method: 'GET' });
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    assert.equal(get.text, 'Method Not Allowed\n');
    for (const path of ['/v1/droplet/a/b', '/v1/droplets/a', '/v1/static/x', '/']) {
      const answer = await post(uploader.url, path, { body: Buffer.from('x') });
      assert.equal(answer.status, 404, path);
      assert.equal(answer.text, '404 page not found\n', path);
    }
    // The guid may be empty: rata matches it, and it is not used.
    const emptyGuid = await post(uploader.url, `/v1/droplet/?cc-droplet-upload-uri=${encodeURIComponent(dropletUrl('d-empty'))}`, { body: Buffer.from('x') });
    assert.equal(emptyGuid.status, 201);
  });

  test('a droplet goes to CC as one multipart file part with an exact length, Content-MD5 and async=true; the job is followed to 201', async () => {
    const droplet = randomBytes(100_000);
    const md5 = createHash('md5').update(droplet).digest('base64');
    cc.jobPollsUntilDone = 3;
    const answer = await post(uploader.url, dropletPath(dropletUrl('droplet-1', '?keep=me&async=false')), { body: droplet, headers: { 'Content-MD5': md5 } });
    assert.equal(answer.status, 201);
    assert.equal(answer.text, '');

    const [upload] = cc.received('/staging/droplets/droplet-1/upload');
    assert.ok(upload?.upload, upload?.uploadError);
    assert.equal(upload.query.get('async'), 'true');
    assert.equal(upload.query.get('keep'), 'me');
    assert.deepEqual([...upload.query.keys()], ['async', 'keep'], 'query re-encoded with sorted keys, as Go does');
    assert.equal(upload.headers['content-md5'], md5);
    assert.equal(upload.headers['content-type'], `multipart/form-data; boundary=${upload.upload.boundary}`);
    assert.match(upload.upload.boundary, /^[0-9a-f]{60}$/);
    assert.equal(Number(upload.headers['content-length']), upload.upload.bodyBytes);
    const framing = multipartFraming('droplet.tgz', upload.upload.boundary);
    assert.equal(upload.upload.bodyBytes, droplet.length + framing.head.length + framing.tail.length);
    assert.equal(upload.upload.preamble, '');
    assert.equal(upload.upload.epilogue, '\r\n');
    assert.equal(upload.upload.parts.length, 1);
    const [part] = upload.upload.parts;
    assert.equal(part!.name, 'file');
    assert.equal(part!.filename, 'droplet.tgz');
    assert.deepEqual(part!.headers, { 'content-disposition': 'form-data; name="file"; filename="droplet.tgz"', 'content-type': 'application/octet-stream' });
    assert.ok(part!.bytes?.equals(droplet));
    assert.equal(cc.droplets.get('droplet-1')?.parts[0]?.md5, createHash('md5').update(droplet).digest('hex'));

    const job = [...cc.jobs.values()].find((j) => j.dropletGuid === 'droplet-1');
    assert.equal(job?.polls, 3);
    const polls = cc.received(`/v2/jobs/${job!.guid}`);
    assert.equal(polls.length, 3);
    for (const poll of polls) assert.equal(poll.headers.authorization, undefined);
  });

  test('without Content-MD5 none is sent', async () => {
    const answer = await post(uploader.url, dropletPath(dropletUrl('droplet-no-md5')), { body: Buffer.from('droplet') });
    assert.equal(answer.status, 201);
    assert.equal(cc.received('/staging/droplets/droplet-no-md5/upload')[0]?.headers['content-md5'], undefined);
  });

  test('a job that is final at once is not polled', async () => {
    cc.jobPollsUntilDone = 0;
    const answer = await post(uploader.url, dropletPath(dropletUrl('droplet-at-once')), { body: Buffer.from('droplet') });
    assert.equal(answer.status, 201);
    const job = [...cc.jobs.values()].find((j) => j.dropletGuid === 'droplet-at-once');
    assert.equal(job?.polls, 0);
  });

  test('a build artifacts cache goes as buildpack_cache.tgz, without async, and answers 200 without polling', async () => {
    const cache = randomBytes(5_000);
    const jobsBefore = cc.jobs.size;
    const pollsBefore = cc.received(/^\/v2\/jobs\//).length;
    const answer = await post(uploader.url, cachePath(cacheUrl('app-1')), { body: cache });
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '');
    const [upload] = cc.received('/staging/buildpack_cache/app-1/upload');
    assert.equal(upload?.query.get('async'), null);
    const part = upload?.upload?.parts[0];
    assert.equal(part?.name, 'file');
    assert.equal(part?.filename, 'buildpack_cache.tgz');
    assert.ok(part?.bytes?.equals(cache));
    assert.equal(cc.jobs.size, jobsBefore);
    assert.equal(cc.received(/^\/v2\/jobs\//).length, pollsBefore);

    // The double serves what was uploaded back, as CC does for the next staging.
    const download = await fetch(`${cc.url}/staging/buildpack_cache/app-1/download`);
    assert.equal(download.status, 200);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(cache));
  });

  test("CC's other statuses come back as they are, with status code: <n> and CC's body", async () => {
    cc.statusFor.set('droplet-upload', 507);
    cc.bodyFor.set('droplet-upload', '{"description":"disk full"}');
    const droplet = await post(uploader.url, dropletPath(dropletUrl('droplet-full')), { body: Buffer.from('droplet') });
    assert.equal(droplet.status, 507);
    assert.equal(droplet.text, 'status code: 507\n{"description":"disk full"}');

    cc.statusFor.set('buildpack-cache-upload', 404);
    const cache = await post(uploader.url, cachePath(cacheUrl('app-missing')), { body: Buffer.from('cache') });
    assert.equal(cache.status, 404);
    assert.equal(cache.text, 'status code: 404\n');
  });

  test('job failed is 500 upload job failed; an unknown status is 500 unknown job status', async () => {
    cc.jobFinalStatus = 'failed';
    const failed = await post(uploader.url, dropletPath(dropletUrl('droplet-failed')), { body: Buffer.from('droplet') });
    assert.equal(failed.status, 500);
    assert.equal(failed.text, 'upload job failed');
    cc.jobFinalStatus = 'exploded';
    const unknown = await post(uploader.url, dropletPath(dropletUrl('droplet-unknown')), { body: Buffer.from('droplet') });
    assert.equal(unknown.status, 500);
    assert.equal(unknown.text, 'unknown job status: exploded');
  });

  test('a job poll CC refuses is 500 with its status', async () => {
    cc.statusFor.set('job', 503);
    cc.bodyFor.set('job', 'busy');
    const answer = await post(uploader.url, dropletPath(dropletUrl('droplet-poll-503')), { body: Buffer.from('droplet') });
    assert.equal(answer.status, 500);
    assert.equal(answer.text, 'status code: 503\nbusy');
  });

  test('a droplet upload answer that is not a job is 500', async () => {
    // A CC answering the upload with something else than job JSON.
    const notJson = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(201).end('<html>'));
    });
    await new Promise<void>((resolve) => notJson.listen(0, '127.0.0.1', resolve));
    try {
      const port = (notJson.address() as AddressInfo).port;
      const answer = await post(uploader.url, dropletPath(`http://127.0.0.1:${port}/staging/droplets/x/upload`), { body: Buffer.from('droplet') });
      assert.equal(answer.status, 500);
      assert.match(answer.text, /^invalid job JSON from CC: /);
    } finally {
      notJson.close();
    }
  });

  test('the timeout cancels a slow upload: 500 and CC sees the upload cut', async () => {
    cc.delayMs = 500;
    const answer = await post(uploader.url, dropletPath(dropletUrl('droplet-slow'), '&timeout=100'), { body: Buffer.from('droplet') });
    assert.equal(answer.status, 500);
    assert.equal(answer.text, 'upload cancelled: timed out after 100ms');
  });

  test('the timeout cancels job polling too', async () => {
    cc.jobPollsUntilDone = Number.MAX_SAFE_INTEGER;
    const answer = await post(uploader.url, dropletPath(dropletUrl('droplet-endless-job'), '&timeout=150'), { body: Buffer.from('droplet') });
    assert.equal(answer.status, 500);
    assert.equal(answer.text, 'job polling cancelled: timed out after 150ms');
    const job = [...cc.jobs.values()].find((j) => j.dropletGuid === 'droplet-endless-job')!;
    assert.ok(job.polls > 0);
    // A poll sent just before the timeout may still reach CC; after that, nothing more comes.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const polls = job.polls;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(job.polls, polls, 'polling stopped');
  });

  test('a client that goes away mid-body cancels the upload to CC', async () => {
    const before = cc.requests.length;
    const url = new URL(uploader.url);
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path: dropletPath(dropletUrl('droplet-abandoned')), headers: { 'Content-Length': 1_000_000 } });
    req.on('error', () => undefined);
    req.write(randomBytes(300_000));
    await eventually('CC to receive part of the upload', () => logs.lines.some((l) => l.msg === 'upload-started' && String(l.cc_url).includes('droplet-abandoned')));
    await new Promise((resolve) => setTimeout(resolve, 20));
    req.destroy();
    const cut = await cc.waitFor((r) => r.path === '/staging/droplets/droplet-abandoned/upload');
    assert.ok(cut.uploadError, 'CC saw the upload end before its last boundary');
    assert.ok(cc.requests.length > before);
    assert.equal(cc.droplets.has('droplet-abandoned'), false);
  });

  test('a client that goes away during job polling stops the polling', async () => {
    cc.jobPollsUntilDone = Number.MAX_SAFE_INTEGER;
    const url = new URL(uploader.url);
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path: dropletPath(dropletUrl('droplet-left-polling')), headers: { 'Content-Length': 7 } });
    req.on('error', () => undefined);
    req.end('droplet');
    await eventually('a few polls', () => ([...cc.jobs.values()].find((j) => j.dropletGuid === 'droplet-left-polling')?.polls ?? 0) >= 2);
    req.destroy();
    await eventually('polling to stop', () => logs.lines.some((l) => l.msg === 'job-polling-failed' && l.reason === 'job polling cancelled: client disconnected'));
    const job = [...cc.jobs.values()].find((j) => j.dropletGuid === 'droplet-left-polling')!;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const polls = job.polls;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(job.polls, polls, 'polling stopped');
  });

  test('an unsupported scheme is 500 without contacting anything', async () => {
    const answer = await post(uploader.url, dropletPath('ftp://user:pw@cc.example.com/staging/droplets/x/upload'), { body: Buffer.from('droplet') });
    assert.equal(answer.status, 500);
    assert.equal(answer.text, 'Post "ftp://cc.example.com/staging/droplets/x/upload?async=true": unsupported protocol scheme "ftp"');
  });

  test('a refused connection is tried 3 times in all, then 500', async () => {
    const port = await refusedPort();
    const before = logs.lines.length;
    const answer = await post(uploader.url, cachePath(`http://127.0.0.1:${port}/staging/buildpack_cache/app/upload`), { body: Buffer.from('cache') });
    assert.equal(answer.status, 500);
    assert.match(answer.text, new RegExp(`^Post "http://127\\.0\\.0\\.1:${port}/staging/buildpack_cache/app/upload": connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`));
    const attempts = logs.lines.slice(before).filter((l) => l.msg === 'upload-attempt-failed');
    assert.deepEqual(
      attempts.map((l) => l.attempt),
      [1, 2, 3],
    );
  });

  test('a retry after a refused connection sends the whole body: the body was not consumed by the failed dial', async () => {
    const port = await refusedPort();
    const body = randomBytes(200_000);
    let received: { bytes: Buffer; headers: IncomingHttpHeaders } | undefined;
    let lateCc: Server | undefined;
    // CC comes up the moment the first attempt has been refused. Listening without a host binds
    // synchronously, so the next attempt (made right after this log line) finds it.
    logs.onLine((line) => {
      if (line.msg !== 'upload-attempt-failed' || lateCc || !String((line.err as { message?: string })?.message).includes(`:${port}`)) return;
      lateCc = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          received = { bytes: Buffer.concat(chunks), headers: req.headers };
          res.writeHead(200).end();
        });
      });
      lateCc.listen(port);
    });
    try {
      const answer = await post(uploader.url, cachePath(`http://127.0.0.1:${port}/staging/buildpack_cache/app/upload`), { body });
      assert.equal(answer.status, 200, answer.text);
      assert.ok(received);
      const boundary = /boundary=(\w+)/.exec(received.headers['content-type'] ?? '')![1]!;
      const framing = multipartFraming('buildpack_cache.tgz', boundary);
      assert.ok(received.bytes.equals(Buffer.concat([framing.head, body, framing.tail])));
    } finally {
      lateCc?.close();
    }
  });

  test('a 50 MB upload streams through in bounded memory', async (t) => {
    cc.keepUploadBytesUpTo = 0;
    const chunk = randomBytes(64 * 1024);
    const chunks = 800; // 50 MiB
    const size = chunk.length * chunks;
    const md5 = createHash('md5');
    for (let i = 0; i < chunks; i++) md5.update(chunk);
    const expectedMd5 = md5.digest('hex');

    // Buffers already passed along are garbage V8 collects late (tens of MiB may pile up before
    // it does), so each sample follows a full collection: what is measured is memory still held.
    const collectGarbage = fullGarbageCollector();
    collectGarbage();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      collectGarbage();
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const url = new URL(uploader.url);
      const answer = await new Promise<Answer>((resolve, reject) => {
        const req = request({ host: url.hostname, port: url.port, method: 'POST', path: dropletPath(dropletUrl('droplet-large'), '&timeout=300000'), headers: { 'Content-Length': size } }, (res) => {
          let text = '';
          res.on('data', (data: Buffer) => (text += data.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        });
        req.on('error', reject);
        // The same buffer again and again, honouring backpressure: the client holds one chunk.
        let sent = 0;
        const pump = () => {
          while (sent < chunks) {
            sent++;
            if (!req.write(chunk)) {
              req.once('drain', pump);
              return;
            }
          }
          req.end();
        };
        pump();
      });
      assert.equal(answer.status, 201, answer.text);
    } finally {
      clearInterval(sampler);
    }
    const upload = cc.droplets.get('droplet-large');
    assert.equal(upload?.parts[0]?.size, size);
    assert.equal(upload?.parts[0]?.md5, expectedMd5);
    const growth = peak - baseline;
    t.diagnostic(`peak RSS growth ${(growth / 1024 / 1024).toFixed(1)} MiB for ${size / 1024 / 1024} MiB`);
    // Uploader, CC double and client share this process; together they must stay far below the size.
    assert.ok(growth < size / 4, `RSS grew by ${(growth / 1024 / 1024).toFixed(1)} MiB for a ${size / 1024 / 1024} MiB upload`);
  });
});

describe('cc-uploader: credentials', () => {
  let cc: CcDouble;
  let uploader: Uploader;
  let logs: ReturnType<typeof capturedLogger>;

  before(async () => {
    cc = await startCcDouble({ username: 'stager', password: 'p@ss word' });
    logs = capturedLogger();
    uploader = await startUploader({ logger: logs.logger, ccJobPollingIntervalMs: 5 });
  });
  after(async () => {
    await uploader.close();
    await cc.stop();
  });

  test('credentials in the CC URL become basic auth, polls carry none, and no log line holds them', async () => {
    const ccUrl = `http://stager:${encodeURIComponent('p@ss word')}@127.0.0.1:${new URL(cc.url).port}/staging/droplets/droplet-auth/upload`;
    const answer = await post(uploader.url, dropletPath(ccUrl), { body: Buffer.from('droplet') });
    assert.equal(answer.status, 201, answer.text);
    const [upload] = cc.received('/staging/droplets/droplet-auth/upload');
    assert.equal(upload?.headers.authorization, `Basic ${Buffer.from('stager:p@ss word').toString('base64')}`);
    assert.ok(cc.received(/^\/v2\/jobs\//).every((poll) => poll.headers.authorization === undefined));

    const wrong = `http://stager:wrong-secret@127.0.0.1:${new URL(cc.url).port}/staging/droplets/droplet-auth/upload`;
    const refused = await post(uploader.url, dropletPath(wrong), { body: Buffer.from('droplet') });
    assert.equal(refused.status, 401);
    assert.equal(refused.text, 'status code: 401\n');

    const raw = logs.raw();
    assert.ok(raw.includes('droplet-auth'), 'the uploads were logged');
    for (const secret of ['p@ss', 'p%40ss', 'wrong-secret', Buffer.from('stager:p@ss word').toString('base64')]) assert.ok(!raw.includes(secret), `log mentions ${secret}`);
  });
});

describe('cc-uploader: TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-uploader-tls-'));
  let cert: Buffer;
  let key: Buffer;
  let httpsCc: ReturnType<typeof createHttpsServer>;
  let ccPort = 0;
  let received = 0;

  before(async () => {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'],
      { cwd: dir, stdio: 'ignore' },
    );
    cert = readFileSync(join(dir, 'cert.pem'));
    key = readFileSync(join(dir, 'key.pem'));
    httpsCc = createHttpsServer({ cert, key }, (req, res) => {
      req.resume();
      req.on('end', () => {
        received++;
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => httpsCc.listen(0, '127.0.0.1', resolve));
    ccPort = (httpsCc.address() as AddressInfo).port;
  });
  after(() => {
    httpsCc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("CC's certificate is verified unless skipCertVerify; a TLS failure is not retried", async () => {
    const logs = capturedLogger();
    const strict = await startUploader({ logger: logs.logger });
    const lenient = await startUploader({ logger: silentLogger(), skipCertVerify: true });
    try {
      const target = cachePath(`https://127.0.0.1:${ccPort}/staging/buildpack_cache/app/upload`);
      const refused = await post(strict.url, target, { body: Buffer.from('cache') });
      assert.equal(refused.status, 500);
      assert.match(refused.text, /self[- ]signed certificate/);
      assert.equal(logs.lines.filter((l) => l.msg === 'upload-attempt-failed').length, 1);
      assert.equal(received, 0);
      const accepted = await post(lenient.url, target, { body: Buffer.from('cache') });
      assert.equal(accepted.status, 200, accepted.text);
      assert.equal(received, 1);
    } finally {
      await strict.close();
      await lenient.close();
    }
  });

  test('the uploader itself can serve HTTPS', async () => {
    const secure = await startUploader({ logger: silentLogger(), tls: { cert, key }, skipCertVerify: true });
    try {
      assert.match(secure.url, /^https:\/\//);
      const answer = await post(secure.url, cachePath(`https://127.0.0.1:${ccPort}/staging/buildpack_cache/app/upload`), { body: Buffer.from('cache'), ca: cert });
      assert.equal(answer.status, 200, answer.text);
    } finally {
      await secure.close();
    }
  });
});

describe('ccbridge uploader command', () => {
  const program = `
    import { runCommand } from './lib/daemon.ts';
    import command from './cmd/commands/uploader.ts';
    await runCommand('uploader', command, process.argv.slice(1));
  `;
  const run = (args: string[]) =>
    spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program, '--', ...args], { cwd: repoRoot, env: { ...process.env, CCBRIDGE_LOG_LEVEL: 'silent' } });

  test('a bad flag is one line and exit status 2', async () => {
    const child = run(['-ccJobPollingInterval=soon']);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 2);
    assert.equal(stderr, 'ccbridge uploader: -ccJobPollingInterval: invalid duration "soon" (use e.g. 500ms, 30s, 5m)\n');
  });

  test('uploads through the original -address flag and stops on SIGTERM', async () => {
    const cc = await startCcDouble();
    const child = run(['-address=127.0.0.1:0', '-ccJobPollingInterval=10ms']);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let seen = '';
        child.stdout.on('data', (chunk: Buffer) => {
          seen += chunk.toString();
          const match = /uploader\s+(http:\/\/\S+)\n/.exec(seen);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
      });
      const answer = await post(url, dropletPath(`${cc.url}/staging/droplets/via-command/upload`), { body: Buffer.from('droplet') });
      assert.equal(answer.status, 201, answer.text);
      assert.ok(cc.droplets.has('via-command'));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await cc.stop();
    }
  });
});

test('the CC double serves packages and caches a test put there, and fails them on request', async () => {
  const cc = await startCcDouble({ username: 'u', password: 'p' });
  try {
    const auth = { Authorization: `Basic ${Buffer.from('u:p').toString('base64')}` };
    cc.packages.set('app-1', Buffer.from('package bits'));
    cc.buildpackCacheBlobs.set('app-1', Buffer.from('cache bits'));
    const pkg = await fetch(`${cc.url}/staging/packages/app-1`, { headers: auth });
    assert.equal(pkg.status, 200);
    assert.equal(await pkg.text(), 'package bits');
    const cache = await fetch(`${cc.url}/staging/buildpack_cache/app-1/download`, { headers: auth });
    assert.equal(await cache.text(), 'cache bits');
    assert.equal((await fetch(`${cc.url}/staging/packages/app-2`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${cc.url}/staging/packages/app-1`)).status, 401);
    cc.statusFor.set('package-download', 503);
    cc.statusFor.set('buildpack-cache-download', 500);
    assert.equal((await fetch(`${cc.url}/staging/packages/app-1`, { headers: auth })).status, 503);
    assert.equal((await fetch(`${cc.url}/staging/buildpack_cache/app-1/download`, { headers: auth })).status, 500);
  } finally {
    await cc.stop();
  }
});

test('the multipart framing matches what Go writes around one form file', () => {
  const framing = multipartFraming('droplet.tgz', 'b0undary');
  assert.equal(framing.contentType, 'multipart/form-data; boundary=b0undary');
  assert.equal(framing.head.toString(), '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="droplet.tgz"\r\nContent-Type: application/octet-stream\r\n\r\n');
  assert.equal(framing.tail.toString(), '\r\n--b0undary--\r\n');
});
