// The file server over real HTTP on port 0 (spec §8.1): Go http.FileServer semantics under
// /v1/static/, rata/pat routing around it, nothing served from outside the directory, and the
// `ccbridge file-server` command.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger, silentLogger } from '../../lib/log.js';
import { startFileServer, type FileServer } from '../../services/fileserver/static-files.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** A request with the path sent byte for byte (no client-side normalisation of `..`). */
function call(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const workDir = mkdtempSync(join(tmpdir(), 'ccbridge-fileserver-'));
const staticDir = join(workDir, 'static');
const outsideDir = join(workDir, 'secret');
const bigFile = randomBytes(3 * 1024 * 1024 + 17);
// Dates Go would write back exactly: whole seconds.
const fixedTime = new Date('2015-08-12T10:20:30Z');

before(() => {
  mkdirSync(staticDir);
  mkdirSync(outsideDir);
  writeFileSync(join(outsideDir, 'passwd.txt'), 'top secret');
  writeFileSync(join(workDir, 'passwd.txt'), 'also secret');
  writeFileSync(join(staticDir, 'test'), 'hello');
  utimesSync(join(staticDir, 'test'), fixedTime, fixedTime);
  mkdirSync(join(staticDir, 'buildpack_app_lifecycle'));
  writeFileSync(join(staticDir, 'buildpack_app_lifecycle', 'buildpack_app_lifecycle.tgz'), Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), randomBytes(2000)]));
  writeFileSync(join(staticDir, 'page.html'), '<p>hi</p>');
  writeFileSync(join(staticDir, 'style.css'), 'p {}');
  writeFileSync(join(staticDir, 'binary'), Buffer.from([0x00, 0x01, 0x02, 0xff, 0x10]));
  writeFileSync(join(staticDir, 'sniffed-html'), '  <!DOCTYPE html><html></html>');
  writeFileSync(join(staticDir, 'empty'), '');
  writeFileSync(join(staticDir, 'big.bin'), bigFile);
  mkdirSync(join(staticDir, 'dir'));
  mkdirSync(join(staticDir, 'dir', 'sub'));
  writeFileSync(join(staticDir, 'dir', 'b.txt'), 'b');
  // Go sorts names before adding the directory slash: `b` comes before `b-c` although `/` > `-`.
  mkdirSync(join(staticDir, 'dir', 'b'));
  writeFileSync(join(staticDir, 'dir', 'b-c'), 'b-c');
  writeFileSync(join(staticDir, 'dir', 'a <odd> & "name".txt'), 'odd');
  writeFileSync(join(staticDir, 'dir', 'colon:file'), 'colon');
  writeFileSync(join(staticDir, 'dir', 'q?mark#hash'), 'q');
  utimesSync(join(staticDir, 'dir'), fixedTime, fixedTime);
  mkdirSync(join(staticDir, 'site'));
  writeFileSync(join(staticDir, 'site', 'index.html'), '<h1>site</h1>');
  symlinkSync(join(staticDir, 'test'), join(staticDir, 'inside-link'));
  symlinkSync(join(outsideDir, 'passwd.txt'), join(staticDir, 'escape'));
  symlinkSync(outsideDir, join(staticDir, 'escape-dir'));
  symlinkSync(join(outsideDir, 'passwd.txt'), join(staticDir, 'site', 'index-escape.html'));
});
after(() => rmSync(workDir, { recursive: true, force: true }));

describe('file server', () => {
  let server: FileServer;
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    const destination = new PassThrough();
    destination.on('data', (line: Buffer) => {
      for (const text of line.toString('utf8').split('\n')) if (text.trim()) logLines.push(JSON.parse(text) as Record<string, unknown>);
    });
    // No host mime.types: the types asserted below must not depend on the machine.
    server = await startFileServer({ staticDirectory: staticDir, logger: createLogger({ destination, level: 'info' }), mimeTypesFiles: [], readChunkBytes: 16 * 1024 });
  });
  after(() => server.close());

  test('serves a file: bytes, sniffed type, length, Last-Modified, ranges accepted, no ETag', async () => {
    const answer = await call(server.url, '/v1/static/test');
    assert.equal(answer.status, 200);
    assert.equal(answer.text, 'hello');
    assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(answer.headers['content-length'], '5');
    assert.equal(answer.headers['last-modified'], 'Wed, 12 Aug 2015 10:20:30 GMT');
    assert.equal(answer.headers['accept-ranges'], 'bytes');
    assert.equal(answer.headers.etag, undefined);
  });

  test('HEAD answers the headers of GET and no body', async () => {
    const answer = await call(server.url, '/v1/static/test', { method: 'HEAD' });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-length'], '5');
    assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(answer.body.length, 0);
  });

  test('Content-Type by extension, else sniffed from the first bytes', async () => {
    const cases = [
      { name: 'page.html', want: 'text/html; charset=utf-8' },
      { name: 'style.css', want: 'text/css; charset=utf-8' },
      { name: 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz', want: 'application/x-gzip' },
      { name: 'binary', want: 'application/octet-stream' },
      { name: 'sniffed-html', want: 'text/html; charset=utf-8' },
      { name: 'empty', want: 'text/plain; charset=utf-8' },
    ];
    for (const { name, want } of cases) {
      const answer = await call(server.url, `/v1/static/${name}`);
      assert.equal(answer.status, 200, name);
      assert.equal(answer.headers['content-type'], want, name);
    }
  });

  test("a host mime.types file names the types Go's table does not know", async () => {
    const mimeTypes = join(workDir, 'mime.types');
    writeFileSync(mimeTypes, '# comment\napplication/x-gtar\t\ttgz gtar\ntext/x-custom  custom # trailing comment\napplication/xhtml+xml html\n');
    const withHostTypes = await startFileServer({ staticDirectory: staticDir, logger: silentLogger(), mimeTypesFiles: [mimeTypes] });
    try {
      const tgz = await call(withHostTypes.url, '/v1/static/buildpack_app_lifecycle/buildpack_app_lifecycle.tgz');
      assert.equal(tgz.headers['content-type'], 'application/x-gtar');
      // Go's own table keeps .html whatever the host file says.
      const html = await call(withHostTypes.url, '/v1/static/page.html');
      assert.equal(html.headers['content-type'], 'text/html; charset=utf-8');
    } finally {
      await withHostTypes.close();
    }
  });

  test('If-Modified-Since at or after the modification time: 304 with Last-Modified and no body', async () => {
    for (const since of ['Wed, 12 Aug 2015 10:20:30 GMT', 'Thu, 13 Aug 2015 00:00:00 GMT', 'Wednesday, 12-Aug-15 10:20:30 GMT', 'Wed Aug 12 10:20:30 2015']) {
      const answer = await call(server.url, '/v1/static/test', { headers: { 'If-Modified-Since': since } });
      assert.equal(answer.status, 304, since);
      assert.equal(answer.body.length, 0);
      assert.equal(answer.headers['last-modified'], 'Wed, 12 Aug 2015 10:20:30 GMT');
      assert.equal(answer.headers['content-type'], undefined);
    }
    const older = await call(server.url, '/v1/static/test', { headers: { 'If-Modified-Since': 'Wed, 12 Aug 2015 10:20:29 GMT' } });
    assert.equal(older.status, 200);
    assert.equal(older.text, 'hello');
    const garbage = await call(server.url, '/v1/static/test', { headers: { 'If-Modified-Since': 'yesterday' } });
    assert.equal(garbage.status, 200);
  });

  test('If-None-Match * is 304; If-Unmodified-Since before the change and If-Match with a tag are 412', async () => {
    assert.equal((await call(server.url, '/v1/static/test', { headers: { 'If-None-Match': '*' } })).status, 304);
    assert.equal((await call(server.url, '/v1/static/test', { headers: { 'If-None-Match': '"abc"' } })).status, 200);
    assert.equal((await call(server.url, '/v1/static/test', { headers: { 'If-Unmodified-Since': 'Tue, 11 Aug 2015 00:00:00 GMT' } })).status, 412);
    assert.equal((await call(server.url, '/v1/static/test', { headers: { 'If-Unmodified-Since': 'Wed, 12 Aug 2015 10:20:30 GMT' } })).status, 200);
    assert.equal((await call(server.url, '/v1/static/test', { headers: { 'If-Match': '"abc"' } })).status, 412);
    assert.equal((await call(server.url, '/v1/static/test', { headers: { 'If-Match': '*' } })).status, 200);
  });

  test('a directory listing honours If-Modified-Since too', async () => {
    const answer = await call(server.url, '/v1/static/dir/', { headers: { 'If-Modified-Since': 'Wed, 12 Aug 2015 10:20:30 GMT' } });
    assert.equal(answer.status, 304);
  });

  test('Range: one range is 206 with Content-Range; suffix and open ranges', async () => {
    const cases = [
      { range: 'bytes=1-3', body: 'ell', contentRange: 'bytes 1-3/5' },
      { range: 'bytes=-2', body: 'lo', contentRange: 'bytes 3-4/5' },
      { range: 'bytes=2-', body: 'llo', contentRange: 'bytes 2-4/5' },
      { range: 'bytes=3-100', body: 'lo', contentRange: 'bytes 3-4/5' },
      { range: 'bytes=-100', body: 'hello', contentRange: 'bytes 0-4/5' },
      { range: 'bytes= 0-0 ', body: 'h', contentRange: 'bytes 0-0/5' },
    ];
    for (const { range, body, contentRange } of cases) {
      const answer = await call(server.url, '/v1/static/test', { headers: { Range: range } });
      assert.equal(answer.status, 206, range);
      assert.equal(answer.text, body, range);
      assert.equal(answer.headers['content-range'], contentRange, range);
      assert.equal(answer.headers['content-length'], String(body.length), range);
    }
  });

  test('Range: unsatisfiable is 416 with bytes */size; malformed is 416 invalid range', async () => {
    const beyond = await call(server.url, '/v1/static/test', { headers: { Range: 'bytes=5-' } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], 'bytes */5');
    assert.equal(beyond.text, 'invalid range: failed to overlap\n');
    for (const range of ['bytes=x-1', 'items=0-1', 'bytes=3-1', 'bytes=1', 'bytes=--1']) {
      const answer = await call(server.url, '/v1/static/test', { headers: { Range: range } });
      assert.equal(answer.status, 416, range);
      assert.equal(answer.text, 'invalid range\n', range);
    }
  });

  test('Range: several ranges come back as multipart/byteranges', async () => {
    const answer = await call(server.url, '/v1/static/test', { headers: { Range: 'bytes=0-0,3-4' } });
    assert.equal(answer.status, 206);
    const boundary = /^multipart\/byteranges; boundary=([0-9a-f]+)$/.exec(answer.headers['content-type'] ?? '')?.[1];
    assert.ok(boundary, answer.headers['content-type']);
    assert.equal(answer.headers['content-length'], String(answer.body.length));
    assert.equal(
      answer.text,
      `--${boundary}\r\nContent-Range: bytes 0-0/5\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nh` +
        `\r\n--${boundary}\r\nContent-Range: bytes 3-4/5\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nlo` +
        `\r\n--${boundary}--\r\n`,
    );
  });

  test('If-Range with another date, or with an entity tag, serves the whole file', async () => {
    const stale = await call(server.url, '/v1/static/test', { headers: { Range: 'bytes=0-1', 'If-Range': 'Tue, 11 Aug 2015 00:00:00 GMT' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.text, 'hello');
    const tagged = await call(server.url, '/v1/static/test', { headers: { Range: 'bytes=0-1', 'If-Range': '"tag"' } });
    assert.equal(tagged.status, 200);
    const current = await call(server.url, '/v1/static/test', { headers: { Range: 'bytes=0-1', 'If-Range': 'Wed, 12 Aug 2015 10:20:30 GMT' } });
    assert.equal(current.status, 206);
    assert.equal(current.text, 'he');
  });

  test('missing files and paths outside /v1/static/ are 404 page not found', async () => {
    for (const path of ['/v1/static/nope', '/v1/static/dir/nope/', '/v1/static/test/more', '/v2/static/test', '/', '/v1/staticx', '/v1/droplet/x']) {
      const answer = await call(server.url, path);
      assert.equal(answer.status, 404, path);
      assert.equal(answer.text, '404 page not found\n', path);
      assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8', path);
    }
  });

  test('other verbs are 405 with Allow: GET, HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of ['/v1/static/test', '/v1/static/nope', '/v1/static']) {
        const answer = await call(server.url, path, { method });
        assert.equal(answer.status, 405, `${method} ${path}`);
        assert.equal(answer.headers.allow, 'GET, HEAD');
        assert.equal(answer.text, 'Method Not Allowed\n');
      }
    }
  });

  test('a directory lists its entries sorted, directories with a slash, names escaped', async () => {
    const answer = await call(server.url, '/v1/static/dir/');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(answer.headers['last-modified'], 'Wed, 12 Aug 2015 10:20:30 GMT');
    assert.equal(
      answer.text,
      '<pre>\n' +
        '<a href="a%20%3Codd%3E%20&%20%22name%22.txt">a &lt;odd&gt; &amp; &#34;name&#34;.txt</a>\n' +
        '<a href="b/">b/</a>\n' +
        '<a href="b-c">b-c</a>\n' +
        '<a href="b.txt">b.txt</a>\n' +
        '<a href="./colon:file">colon:file</a>\n' +
        '<a href="q%3Fmark%23hash">q?mark#hash</a>\n' +
        '<a href="sub/">sub/</a>\n' +
        '</pre>\n',
    );
    const root = await call(server.url, '/v1/static/');
    assert.equal(root.status, 200);
    assert.match(root.text, /<a href="buildpack_app_lifecycle\/">buildpack_app_lifecycle\/<\/a>\n/);
    assert.match(root.text, /<a href="escape">escape<\/a>\n/, 'links are listed, not followed');
  });

  test('a file with an escaped name is found by its escaped path', async () => {
    const answer = await call(server.url, '/v1/static/dir/q%3Fmark%23hash');
    assert.equal(answer.status, 200);
    assert.equal(answer.text, 'q');
  });

  test('a directory with index.html serves it', async () => {
    const answer = await call(server.url, '/v1/static/site/');
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '<h1>site</h1>');
    assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8');
  });

  test('redirects: directory without slash, file with slash, .../index.html, /v1/static', async () => {
    const cases = [
      { path: '/v1/static/dir', location: 'dir/' },
      { path: '/v1/static/dir/sub?x=1', location: 'sub/?x=1' },
      { path: '/v1/static/test/', location: '../test' },
      { path: '/v1/static/site/index.html', location: './' },
      { path: '/v1/static/index.html', location: './' },
      { path: '/v1/static/nope/index.html', location: './' },
      { path: '/v1/static', location: '/v1/static/' },
    ];
    for (const { path, location } of cases) {
      const answer = await call(server.url, path);
      assert.equal(answer.status, 301, path);
      assert.equal(answer.headers.location, location, path);
    }
    const pat = await call(server.url, '/v1/static');
    assert.equal(pat.text, '<a href="/v1/static/">Moved Permanently</a>.\n\n');
  });

  test('nothing outside the directory is reachable: .., escaped .., symlinks out', async () => {
    const attempts = [
      '/v1/static/../passwd.txt',
      '/v1/static/../secret/passwd.txt',
      '/v1/static/dir/../../secret/passwd.txt',
      '/v1/static/%2e%2e/secret/passwd.txt',
      '/v1/static/%2E%2E/passwd.txt',
      '/v1/static/..%2fsecret%2fpasswd.txt',
      '/v1/static/dir%2f..%2f..%2fpasswd.txt',
      '/v1/static/dir/..',
      '/v1/static/..',
      '/v1/static/escape',
      '/v1/static/escape-dir/passwd.txt',
      '/v1/static/escape-dir/',
      '/v1/static/site/index-escape.html',
      '/v1/static/test%00.txt',
    ];
    for (const path of attempts) {
      const answer = await call(server.url, path);
      assert.equal(answer.status, 404, path);
      assert.equal(answer.text, '404 page not found\n', path);
      assert.doesNotMatch(answer.text, /secret/);
    }
  });

  test('a symlink that stays inside the directory is served', async () => {
    const answer = await call(server.url, '/v1/static/inside-link');
    assert.equal(answer.status, 200);
    assert.equal(answer.text, 'hello');
  });

  test('a malformed escape is 400', async () => {
    const answer = await call(server.url, '/v1/static/%zz');
    assert.equal(answer.status, 400);
  });

  test('a large file streams whole and intact, and ranges inside it are exact', async () => {
    const answer = await call(server.url, '/v1/static/big.bin');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['content-length'], String(bigFile.length));
    assert.equal(createHash('sha256').update(answer.body).digest('hex'), createHash('sha256').update(bigFile).digest('hex'));
    const start = 1_000_000;
    const end = 2_500_000;
    const part = await call(server.url, '/v1/static/big.bin', { headers: { Range: `bytes=${start}-${end}` } });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(bigFile.subarray(start, end + 1)));
  });

  test('a client leaving mid-download does not disturb the server', async () => {
    await new Promise<void>((resolve, reject) => {
      const url = new URL(server.url);
      const req = request({ host: url.hostname, port: url.port, path: '/v1/static/big.bin' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
      req.end();
    });
    const answer = await call(server.url, '/v1/static/test');
    assert.equal(answer.text, 'hello');
  });

  test('one static-file-response line per request, with status, size, method and path', async () => {
    const before = logLines.length;
    await call(server.url, '/v1/static/test?q=1');
    await call(server.url, '/v1/static/nope', { method: 'HEAD' });
    const waitUntil = Date.now() + 2_000;
    while (logLines.length < before + 2 && Date.now() < waitUntil) await new Promise((resolve) => setTimeout(resolve, 5));
    const lines = logLines.slice(before).filter((line) => line.msg === 'static-file-response');
    assert.equal(lines.length, 2);
    assert.deepEqual(
      lines.map(({ status, size, method, path }) => ({ status, size, method, path })),
      [
        { status: 200, size: 5, method: 'GET', path: '/v1/static/test' },
        { status: 404, size: 0, method: 'HEAD', path: '/v1/static/nope' },
      ],
    );
  });
});

describe('ccbridge file-server command', () => {
  const program = `
    import { runCommand } from './lib/daemon.ts';
    import command from './cmd/commands/file-server.ts';
    await runCommand('file-server', command, process.argv.slice(1));
  `;
  const run = (args: string[]) => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program, '--', ...args], { cwd: repoRoot, env: { ...process.env, CCBRIDGE_LOG_LEVEL: 'silent' } });
  const outputOf = (child: ReturnType<typeof run>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  test('without -staticDirectory: one line on stderr and exit status 2', async () => {
    const { code, stderr } = await outputOf(run([]));
    assert.equal(code, 2);
    assert.equal(stderr, 'ccbridge file-server: -staticDirectory is required (the directory to serve under /v1/static/)\n');
  });

  test('with a -staticDirectory that is not a directory: exit status 2', async () => {
    const { code, stderr } = await outputOf(run(['-staticDirectory', join(staticDir, 'test')]));
    assert.equal(code, 2);
    assert.match(stderr, /is not a directory\n$/);
    assert.equal(stderr.split('\n').length, 2);
  });

  test('serves the directory on the original -address flag and stops on SIGTERM', async () => {
    const child = run([`-staticDirectory=${staticDir}`, '-address=127.0.0.1:0']);
    const done = outputOf(child);
    const url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        const match = /file-server\s+(http:\/\/\S+)\/v1\/static\//.exec(seen);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
    });
    const answer = await call(url, '/v1/static/test');
    assert.equal(answer.text, 'hello');
    child.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });
});

test('the static directory is resolved once: the symlinked root itself may be a link', async () => {
  const linkedRoot = join(workDir, 'linked-root');
  symlinkSync(staticDir, linkedRoot);
  const server = await startFileServer({ staticDirectory: linkedRoot, logger: silentLogger(), mimeTypesFiles: [] });
  try {
    assert.equal((await call(server.url, '/v1/static/test')).text, 'hello');
    assert.equal((await call(server.url, '/v1/static/escape')).status, 404);
    assert.ok(statSync(linkedRoot).isDirectory());
  } finally {
    await server.close();
  }
});
