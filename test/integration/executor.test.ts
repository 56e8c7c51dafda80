// The embedded cell's executor against real sandboxes: bubblewrap containers networked by pasta,
// Diego action trees, tasks and app instances. Every file the containers fetch and every upload
// goes through a test HTTP server on 127.0.0.1; intervals are milliseconds. After the suite no
// sandbox, pasta or container directory may be left.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Action, type RunAction } from '../../gen/diego/bbs/v1/actions.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import { silentLogger } from '../../lib/log.js';
import {
  CANCELLED_REASON,
  createExecutor,
  findSandboxTools,
  type Container,
  type ContainerMetricsSample,
  type Executor,
  type LogLine,
  type NetInfo,
} from '../../embedded/diego/executor/index.js';
import { childPids, processTree } from '../../embedded/diego/executor/proc.js';

const token = `exectest-${process.pid}`;
const root = mkdtempSync(join(tmpdir(), `${token}-`));
const dataDir = join(root, 'data');
const files = join(root, 'files');
let guidCount = 0;
const guid = (what: string) => `${token}-${what}-${(guidCount += 1)}`;

// ---------------------------------------------------------------- the test HTTP server

interface Hit {
  method: string;
  path: string;
  status: number;
  headers: IncomingMessage['headers'];
}

const hits: Hit[] = [];
const uploads = new Map<string, { body: Buffer; headers: IncomingMessage['headers'] }>();
const served = new Map<string, Buffer>();
let server: Server;
let port = 0;
const url = (path: string) => `http://127.0.0.1:${port}${path}`;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const answer = (status: number, body: Buffer | string = '', headers: Record<string, string> = {}) => {
    hits.push({ method: req.method ?? '', path, status, headers: req.headers });
    res.writeHead(status, headers);
    res.end(body);
  };
  if (req.method === 'POST') {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (path === '/upload/fail') return answer(500, 'blobstore unavailable');
      uploads.set(path, { body: Buffer.concat(chunks), headers: req.headers });
      answer(201);
    });
    return;
  }
  if (path === '/slow') return void hits.push({ method: 'GET', path, status: 0, headers: req.headers }); // never answers
  const body = served.get(path);
  if (body === undefined) return answer(404, 'no such file');
  const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
  if (path.startsWith('/etag/') && req.headers['if-none-match'] === etag) return answer(304);
  answer(200, body, path.startsWith('/etag/') ? { etag } : {});
}

/** A .tgz (or .zip) of the given files, made with the system's tools. */
function archive(name: string, contents: Record<string, string>, format: 'tgz' | 'zip' = 'tgz'): Buffer {
  const dir = join(files, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(contents)) writeFileSync(join(dir, file), text);
  const out = join(files, `${name}.${format}`);
  if (format === 'tgz') execFileSync('tar', ['-czf', out, '-C', dir, '.']);
  else execFileSync('python3', ['-c', `import zipfile,sys,os\nz=zipfile.ZipFile(sys.argv[1],'w')\nfor f in sorted(os.listdir(sys.argv[2])): z.write(os.path.join(sys.argv[2],f),f)\nz.close()`, out, dir]);
  return readFileSync(out);
}

const APP_SCRIPT = `
const http = require('http');
const fs = require('fs');
let ready = true;
const server = http.createServer((req, res) => {
  if (req.url === '/env') return res.end(JSON.stringify({
    PORT: process.env.PORT, CF_INSTANCE_INDEX: process.env.CF_INSTANCE_INDEX, CF_INSTANCE_GUID: process.env.CF_INSTANCE_GUID,
    CF_INSTANCE_ADDR: process.env.CF_INSTANCE_ADDR, CF_INSTANCE_PORT: process.env.CF_INSTANCE_PORT, CF_INSTANCE_PORTS: process.env.CF_INSTANCE_PORTS,
    CF_INSTANCE_IP: process.env.CF_INSTANCE_IP, VCAP_APPLICATION: process.env.VCAP_APPLICATION, APP_SETTING: process.env.APP_SETTING }));
  if (req.url === '/ready') { res.statusCode = ready ? 200 : 503; return res.end(); }
  if (req.url === '/unready') { ready = false; return res.end('ok'); }
  res.end('hello from instance ' + process.env.CF_INSTANCE_INDEX);
});
server.listen(Number(process.env.PORT || 8080), () => console.log('listening on ' + process.env.PORT));
process.on('SIGTERM', () => {
  console.log('got SIGTERM');
  fs.writeFileSync('/home/vcap/terminated', 'yes');
  process.exit(0);
});
`;

// ---------------------------------------------------------------- action builders

const run = (path: string, args: string[] = [], extra: Partial<RunAction> = {}): Action =>
  Action.fromPartial({ runAction: { path, args, user: 'vcap', ...extra } });
const sh = (script: string, extra: Partial<RunAction> = {}) => run('/bin/sh', ['-c', script], extra);
const serial = (...actions: Action[]) => Action.fromPartial({ serialAction: { actions } });
const parallel = (...actions: Action[]) => Action.fromPartial({ parallelAction: { actions } });
const codependent = (...actions: Action[]) => Action.fromPartial({ codependentAction: { actions } });
const attempt = (action: Action) => Action.fromPartial({ tryAction: { action } });
const download = (from: string, to: string, extra: Record<string, string> = {}) =>
  Action.fromPartial({ downloadAction: { from, to, user: 'vcap', ...extra } });
const upload = (from: string, to: string, artifact = '') => Action.fromPartial({ uploadAction: { from, to, user: 'vcap', artifact } });

// ---------------------------------------------------------------- fixtures

const lines: LogLine[] = [];
const logSink = (line: LogLine) => lines.push(line);
const linesOf = (source: string) => lines.filter((line) => line.source === source);
let executor: Executor;
let shared: Container;

/** Runs an action tree in the shared container. */
function perform(action: Action, logSource: string, signal = new AbortController().signal, stopGraceMs?: number) {
  return executor.actions.run(action, { container: shared, signal, logSource, logSink, stopGraceMs });
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Host processes whose command line mentions this suite's token (sandboxes name their container). */
function processesOfThisSuite(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    if (Number(pid) === process.pid) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue;
    }
    if (cmdline.includes(token)) found.push(`${pid}: ${cmdline.slice(0, 120)}`);
  }
  return found;
}

before(async () => {
  mkdirSync(files, { recursive: true });
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;

  served.set('/hello.tgz', archive('hello', { 'hello.txt': 'hello from a tgz\n' }));
  served.set('/hello.zip', archive('hellozip', { 'zipped.txt': 'hello from a zip\n' }, 'zip'));
  served.set('/etag/cached.tgz', archive('cached', { 'cached.txt': 'cached content\n' }));
  served.set('/checksummed.tgz', archive('checksummed', { 'sum.txt': 'summed\n' }));
  served.set('/app.tgz', archive('app', { 'server.js': APP_SCRIPT }));
  served.set('/bad.tgz', Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(200, 7)]));
  served.set('/plain.txt', Buffer.from('not an archive at all\n'));

  executor = createExecutor({
    dataDir,
    logger: silentLogger(),
    cellId: 'cell-test',
    hostServicePorts: [port],
    stopGraceMs: 3000,
    killWaitMs: 3000,
    networkPollMs: 5,
    memoryPollMs: 50,
    downloadTimeoutMs: 1500,
    uploadTimeoutMs: 3000,
    uploadAttempts: 2,
    uploadRetryDelayMs: 10,
    monitorStartIntervalMs: 50,
    monitorHealthyIntervalMs: 100,
    checkStartIntervalMs: 50,
    checkIntervalMs: 100,
    checkTimeoutMs: 500,
    metricsIntervalMs: 100,
  });
  shared = await executor.createContainer({
    guid: guid('shared'),
    rootfs: 'host',
    env: [
      { name: 'CONTAINER_VAR', value: 'from-container' },
      { name: 'OVERRIDDEN', value: 'container' },
    ],
    ports: [8080],
    memoryMb: 0,
    diskMb: 1024,
    logSink,
    hostServicePorts: [port],
  });
});

after(async () => {
  await executor?.close();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  // Nothing the executor started may outlive it.
  const describePid = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return `${pid} ${stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 160)}`;
    } catch {
      return `${pid} gone`;
    }
  };
  // tsx's esbuild service is the test runner's child, not the executor's.
  const children = childPids(process.pid).map(describePid).filter((child) => !child.includes('esbuild'));
  assert.deepEqual(children, [], 'no child process of the suite is left');
  assert.deepEqual(processesOfThisSuite(), [], 'no sandbox or pasta of the suite is left');
  const containers = join(dataDir, 'containers');
  assert.deepEqual(existsSync(containers) ? readdirSync(containers) : [], [], 'no container directory is left');
  rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- tests

describe('prerequisites', () => {
  test('without bwrap and pasta the executor stops with one line naming the packages', () => {
    assert.throws(
      () => findSandboxTools('/nonexistent'),
      (error: Error) => /bubblewrap \(bwrap\)/.test(error.message) && /passt \(pasta\)/.test(error.message) && !error.message.includes('\n'),
    );
  });
});

describe('containers', () => {
  test('a process runs as vcap in its own sandbox, with the container env, its dir and its open-file limit', async () => {
    const result = await perform(
      sh('id -u; id -g; echo "$CONTAINER_VAR $OVERRIDDEN $HOME"; pwd; ulimit -n; echo oops >&2; cat /proc/1/cmdline | tr "\\0" " "; echo', {
        dir: '/tmp',
        env: [{ name: 'OVERRIDDEN', value: 'run' }],
        resourceLimits: { nofile: '321' },
      }),
      'RUN1',
    );
    assert.deepEqual(result, { failed: false, failureReason: '' });
    const out = linesOf('RUN1').filter((line) => line.stream === 'OUT').map((line) => line.message);
    assert.deepEqual(out.slice(0, 5), ['2000', '2000', 'from-container run /home/vcap', '/tmp', '321']);
    assert.match(out[5]!, /^\S*bwrap /, 'pid 1 is the sandbox init: a pid namespace of its own');
    assert.equal(out.at(-1), 'Exit status 0');
    assert.deepEqual(linesOf('RUN1').filter((line) => line.stream === 'ERR').map((line) => line.message), ['oops']);
  });

  test('root inside is root only inside; the host root is read-only and /home and /run are hidden', async () => {
    const result = await perform(
      sh('id -u; touch /usr/x 2>/dev/null || echo read-only; ls /home; ls /run | wc -l; cat /etc/shadow >/dev/null 2>&1 || echo no-shadow', { user: 'root' }),
      'RUN2',
    );
    assert.equal(result.failed, false);
    assert.deepEqual(linesOf('RUN2').map((line) => line.message).slice(0, 5), ['0', 'read-only', 'vcap', '0', 'no-shadow']);
  });

  test('a failing process fails its run action with its status; suppressed output stays out of the logs', async () => {
    assert.deepEqual(await perform(sh('echo bye; exit 3'), 'RUN3'), { failed: true, failureReason: 'Exited with status 3' });
    assert.deepEqual(linesOf('RUN3').map((line) => line.message), ['bye', 'Exit status 3']);
    assert.deepEqual(await perform(sh('echo secret; exit 4', { suppressLogOutput: true }), 'RUN4'), { failed: true, failureReason: 'Exited with status 4' });
    assert.deepEqual(linesOf('RUN4'), []);
    const missing = await perform(run('/no/such/program'), 'RUN5');
    assert.deepEqual(missing, { failed: true, failureReason: 'Exited with status 1' });
  });

  test('the app port is published on a host port of its own and host services are reachable inside on the same port', async () => {
    const mapping = shared.portMappings[0]!;
    assert.equal(mapping.containerPort, 8080);
    assert.notEqual(mapping.hostPort, 8080);
    const server = shared.run({
      path: 'node',
      args: ['-e', "require('http').createServer((q, s) => s.end('inside')).listen(8080, () => console.log('up'))"],
      user: 'vcap',
      logSource: 'NET',
    });
    await waitFor('the server', () => linesOf('NET').some((line) => line.message === 'up'));
    const answer = await fetch(`http://127.0.0.1:${mapping.hostPort}/`);
    assert.equal(await answer.text(), 'inside');
    // A host service, seen from inside at 127.0.0.1 on its own port (pasta's -T).
    const request = `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET /plain.txt HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3`;
    const outbound = await perform(run('/bin/bash', ['-c', request]), 'NET2');
    assert.equal(outbound.failed, false);
    assert.match(linesOf('NET2')[0]!.message, /^HTTP\/1\.1 200/);

    // TCP probes connect inside the namespace, through one long-lived prober: a listening port
    // passes, one nothing listens on is refused, and a prober killed from outside is replaced
    // without failing a probe.
    assert.equal(await shared.probeTcp(8080, 1000), undefined);
    assert.equal(await shared.probeTcp(8081, 1000), 'connection refused');
    assert.deepEqual(await Promise.all([shared.probeTcp(8080, 1000), shared.probeTcp(8081, 1000), shared.probeTcp(8080, 1000)]), [undefined, 'connection refused', undefined]);
    const commandLineOf = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    const probers = () => processTree(process.pid).filter((pid) => commandLineOf(pid).includes('/dev/tcp/127.0.0.1/$port'));
    assert.equal(probers().length, 1, 'one prober answers every probe');
    process.kill(probers()[0]!, 'SIGKILL');
    await waitFor('the prober gone', () => probers().length === 0);
    assert.equal(await shared.probeTcp(8080, 1000), undefined, 'the next probe starts another');
    assert.equal(probers().length, 1);
    assert.equal((await server.stop(1000)).exitStatus, 143);
  });
});

describe('image roots', () => {
  /** A root file system that is not the host's: dash and the libraries it loads, and a passwd. */
  function imageRoot(): string {
    const image = join(root, 'image');
    for (const dir of ['bin', 'etc', 'tmp', 'home', 'proc', 'dev']) mkdirSync(join(image, dir), { recursive: true });
    const dash = execFileSync('readlink', ['-f', '/bin/sh'], { encoding: 'utf8' }).trim();
    execFileSync('cp', [dash, join(image, 'bin/sh')]);
    const libraries = execFileSync('ldd', [dash], { encoding: 'utf8' }).match(/\/\S+/g) ?? [];
    for (const library of libraries) {
      mkdirSync(join(image, library, '..'), { recursive: true });
      execFileSync('cp', ['-L', library, join(image, library)]);
    }
    writeFileSync(join(image, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nvcap:x:2001:2001::/home/vcap:/bin/sh\n');
    return image;
  }

  test('a container on an image root sees that root, its users and a read-only bind of host files', async () => {
    const lifecycle = join(root, 'lifecycle');
    mkdirSync(lifecycle, { recursive: true });
    writeFileSync(join(lifecycle, 'hello.sh'), 'echo hello from the bound lifecycle\n');
    const container = await executor.createContainer({
      guid: guid('image'),
      rootfs: imageRoot(),
      env: [],
      ports: [],
      memoryMb: 0,
      diskMb: 0,
      logSink,
      hostServicePorts: [],
      readOnlyBinds: [{ hostPath: lifecycle, containerPath: '/tmp/lifecycle' }],
    });
    try {
      const script = [
        '. /tmp/lifecycle/hello.sh',
        'while read key value rest; do [ "$key" = "Uid:" ] && echo "uid $value"; done < /proc/self/status',
        '[ -e /usr/bin/node ] || echo "no host node"',
        'read line < /tmp/dl/hello.txt; echo "$line"',
      ].join('; ');
      const result = await executor.actions.run(serial(download(url('/hello.tgz'), '/tmp/dl'), sh(script)), {
        container,
        signal: new AbortController().signal,
        logSource: 'IMG',
        logSink,
      });
      assert.equal(result.failed, false, result.failureReason);
      assert.deepEqual(linesOf('IMG').map((line) => line.message).slice(0, 4), ['hello from the bound lifecycle', 'uid 2001', 'no host node', 'hello from a tgz']);
    } finally {
      await container.destroy();
    }
  });
});

describe('actions', () => {
  test('emit_progress logs start and success, and "<prefix>: <reason>" on failure', async () => {
    const progress = (action: Action) =>
      Action.fromPartial({ emitProgressAction: { action, startMessage: 'Starting...', successMessage: 'Done!', failureMessagePrefix: 'Failed to do it' } });
    assert.equal((await perform(progress(sh('true')), 'EP1')).failed, false);
    assert.deepEqual(linesOf('EP1').map((line) => line.message), ['Starting...', 'Exit status 0', 'Done!']);
    assert.deepEqual(await perform(progress(sh('exit 1')), 'EP2'), { failed: true, failureReason: 'Exited with status 1' });
    assert.deepEqual(linesOf('EP2').at(-1), { source: 'EP2', message: 'Failed to do it: Exited with status 1', stream: 'ERR' });
  });

  test('try swallows a failure; serial stops at the first one', async () => {
    assert.deepEqual(await perform(attempt(sh('exit 9')), 'TRY'), { failed: false, failureReason: '' });
    const result = await perform(serial(sh('echo one'), sh('exit 2'), sh('echo three')), 'SER');
    assert.deepEqual(result, { failed: true, failureReason: 'Exited with status 2' });
    assert.ok(!linesOf('SER').some((line) => line.message === 'three'));
  });

  test('parallel runs every action and reports the first failure', async () => {
    const result = await perform(parallel(sh('sleep 1.2; echo slow'), sh('exit 5'), sh('sleep 0.8; exit 6')), 'PAR');
    assert.deepEqual(result, { failed: true, failureReason: 'Exited with status 5' });
    assert.ok(linesOf('PAR').some((line) => line.message === 'slow'), 'the others ran to their end');
  });

  test('codependent: the first to exit stops the others and the step fails', async () => {
    const started = Date.now();
    const result = await perform(codependent(sh('sleep 30'), sh('sleep 0.2; echo done')), 'COD');
    assert.deepEqual(result, { failed: true, failureReason: 'Codependent step exited' });
    assert.ok(Date.now() - started < 2500, 'the long process was stopped, not waited for');
    assert.deepEqual(shared.processIds(), []);
    const failed = await perform(codependent(sh('sleep 30'), sh('exit 7')), 'COD2');
    assert.deepEqual(failed, { failed: true, failureReason: 'Exited with status 7' });
  });

  test('timeout fails a slow action with "exceeded <d> timeout" and stops it; timeout_ns is the fallback', async () => {
    const started = Date.now();
    const result = await perform(Action.fromPartial({ timeoutAction: { action: sh('sleep 30'), timeoutMs: '200' } }), 'TMO');
    assert.deepEqual(result, { failed: true, failureReason: 'exceeded 200ms timeout' });
    assert.ok(Date.now() - started < 2500);
    const legacy = await perform(Action.fromPartial({ timeoutAction: { action: sh('sleep 30'), deprecatedTimeoutNs: '150000000' } }), 'TMO2');
    assert.deepEqual(legacy, { failed: true, failureReason: 'exceeded 150ms timeout' });
    const quick = await perform(Action.fromPartial({ timeoutAction: { action: sh('true'), timeoutMs: '5000' } }), 'TMO3');
    assert.equal(quick.failed, false);
    assert.deepEqual(shared.processIds(), []);
  });

  test('cancelling stops the whole tree and every process, children included', async () => {
    const controller = new AbortController();
    const tree = serial(parallel(sh('sleep 30 & sleep 30 & echo started; wait'), sh('sleep 30')), sh('echo never'));
    const running = perform(tree, 'CAN', controller.signal);
    await waitFor('the processes', () => linesOf('CAN').some((line) => line.message === 'started'));
    assert.ok(shared.processIds().length >= 6, 'two sandboxes with their processes are running');
    controller.abort();
    assert.deepEqual(await running, { failed: true, failureReason: CANCELLED_REASON });
    assert.deepEqual(shared.processIds(), []);
    assert.ok(!linesOf('CAN').some((line) => line.message === 'never'));
  });

  test('a process that ignores SIGTERM is killed after the grace period', async () => {
    const controller = new AbortController();
    const running = perform(sh('trap "" TERM; echo trapped; while :; do sleep 0.05; done'), 'GRACE', controller.signal, 300);
    await waitFor('the trap', () => linesOf('GRACE').some((line) => line.message === 'trapped'));
    const started = Date.now();
    controller.abort();
    assert.deepEqual(await running, { failed: true, failureReason: CANCELLED_REASON });
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 2500, `stopped after the grace period (${took} ms)`);
    assert.ok(linesOf('GRACE').some((line) => line.message === 'Exit status 137'));
  });

  test('download extracts .tgz and .zip archives into the container, as vcap', async () => {
    const result = await perform(
      serial(
        Action.fromPartial({ downloadAction: { from: url('/hello.tgz'), to: '/tmp/dl/tgz', user: 'vcap', artifact: 'greeting' } }),
        download(url('/hello.zip'), '/home/vcap/dl/zip'),
        sh('cat /tmp/dl/tgz/hello.txt /home/vcap/dl/zip/zipped.txt; stat -c %u /tmp/dl/tgz/hello.txt'),
      ),
      'DL1',
    );
    assert.equal(result.failed, false, result.failureReason);
    const messages = linesOf('DL1').map((line) => line.message);
    assert.equal(messages[0], 'Downloading greeting...');
    assert.match(messages[1]!, /^Downloaded greeting \(\d+B\)$/);
    assert.deepEqual(messages.slice(2, 5), ['hello from a tgz', 'hello from a zip', '2000']);
  });

  test('a download with a cache_key is served from the cache the second time', async () => {
    const earlier = hits.filter((hit) => hit.path === '/etag/cached.tgz').length;
    const fetchTwice = serial(
      download(url('/etag/cached.tgz'), '/tmp/cache1', { cacheKey: 'cached-artifact' }),
      download(url('/etag/cached.tgz'), '/tmp/cache2', { cacheKey: 'cached-artifact' }),
      sh('cat /tmp/cache2/cached.txt'),
    );
    assert.equal((await perform(fetchTwice, 'CACHE')).failed, false);
    const requests = hits.filter((hit) => hit.path === '/etag/cached.tgz').slice(earlier);
    // Revalidated with the ETag, answered 304: the body crossed the wire once.
    assert.deepEqual(requests.map((hit) => hit.status), [200, 304]);
    assert.equal(linesOf('CACHE')[0]!.message, 'cached content');

    // With a checksum the cached file is known to be right: no request at all.
    const sha256 = createHash('sha256').update(served.get('/checksummed.tgz')!).digest('hex');
    const summed = (to: string) => download(url('/checksummed.tgz'), to, { cacheKey: 'summed', checksumAlgorithm: 'sha256', checksumValue: sha256 });
    assert.equal((await perform(serial(summed('/tmp/sum1'), summed('/tmp/sum2'), sh('cat /tmp/sum2/sum.txt')), 'SUM')).failed, false);
    assert.equal(hits.filter((hit) => hit.path === '/checksummed.tgz').length, 1);
    assert.equal(linesOf('SUM')[0]!.message, 'summed');
  });

  test('downloads fail clearly: checksum mismatch, bad tarball, not an archive, 404, timeout', async () => {
    const mismatch = await perform(download(url('/hello.tgz'), '/tmp/bad1', { checksumAlgorithm: 'md5', checksumValue: '0'.repeat(32) }), 'DLF');
    assert.equal(mismatch.failed, true);
    assert.match(mismatch.failureReason, /^Downloading failed: checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/hello\.tgz: md5 is [0-9a-f]{32}, expected 0{32}$/);
    const bad = await perform(download(url('/bad.tgz'), '/tmp/bad2'), 'DLF');
    assert.match(bad.failureReason, /^Downloading failed: could not extract the archive into \/tmp\/bad2: .+/);
    const plain = await perform(download(url('/plain.txt'), '/tmp/bad3'), 'DLF');
    assert.match(plain.failureReason, /^Downloading failed: http:\/\/127\.0\.0\.1:\d+\/plain\.txt is not a \.tgz, \.tar or \.zip archive$/);
    const missing = await perform(download(url('/missing.tgz'), '/tmp/bad4'), 'DLF');
    assert.match(missing.failureReason, /^Downloading failed: GET http:\/\/127\.0\.0\.1:\d+\/missing\.tgz: HTTP 404 Not Found: no such file$/);
    const slow = await perform(Action.fromPartial({ timeoutAction: { action: download(url('/slow'), '/tmp/bad5'), timeoutMs: '5000' } }), 'DLF');
    assert.match(slow.failureReason, /^Downloading failed: GET http:\/\/127\.0\.0\.1:\d+\/slow: timed out after 1500ms$/);
    const credentials = await perform(download(`http://user:hunter2@127.0.0.1:${port}/missing.tgz?token=abc`, '/tmp/bad6'), 'DLF');
    assert.ok(!credentials.failureReason.includes('hunter2') && !credentials.failureReason.includes('token'), 'no credentials in failure reasons');
    assert.equal(hits.at(-1)!.headers.authorization, `Basic ${Buffer.from('user:hunter2').toString('base64')}`);
  });

  test('upload POSTs a file as it is and a directory as a .tgz; failures are clear', async () => {
    const prepare = sh('printf droplet-bytes > /tmp/droplet; mkdir -p /tmp/outdir/sub; echo a > /tmp/outdir/sub/a.txt');
    const result = await perform(serial(prepare, upload('/tmp/droplet', url('/upload/droplet'), 'droplet'), upload('/tmp/outdir', url('/upload/dir'))), 'UP');
    assert.equal(result.failed, false, result.failureReason);
    const droplet = uploads.get('/upload/droplet')!;
    assert.equal(droplet.body.toString(), 'droplet-bytes');
    assert.equal(droplet.headers['content-length'], '13');
    assert.equal(droplet.headers['content-md5'], createHash('md5').update('droplet-bytes').digest('base64'));
    assert.deepEqual(linesOf('UP').map((line) => line.message).slice(-2), ['Uploading droplet...', 'Uploaded droplet (13B)']);
    const listing = join(root, 'dir.tgz');
    writeFileSync(listing, uploads.get('/upload/dir')!.body);
    assert.match(execFileSync('tar', ['-tzf', listing], { encoding: 'utf8' }), /\.\/sub\/a\.txt/);

    const refused = await perform(upload('/tmp/droplet', url('/upload/fail')), 'UPF');
    assert.match(refused.failureReason, /^Uploading failed: POST http:\/\/127\.0\.0\.1:\d+\/upload\/fail: HTTP 500: blobstore unavailable$/);
    const absent = await perform(upload('/tmp/no-such-file', url('/upload/x')), 'UPF');
    assert.match(absent.failureReason, /^Uploading failed: could not read \/tmp\/no-such-file: .*No such file/);
  });
});

describe('tasks', () => {
  const task = (action: Action, extra: Partial<TaskDefinition> = {}) =>
    TaskDefinition.fromPartial({ rootFs: 'preloaded:cflinuxfs4', action, logSource: 'TASK', memoryMb: 256, diskMb: 1024, ...extra });

  test('a task runs in a fresh container, its result file is read back, and the container is removed', async () => {
    const taskGuid = guid('task');
    const result = await executor.runTask({
      taskGuid,
      definition: task(sh('echo "{\\"answer\\": $ANSWER}" > /tmp/result.json; echo wrote'), {
        resultFile: '/tmp/result.json',
        environmentVariables: [{ name: 'ANSWER', value: '42' }],
      }),
      logSink,
    });
    assert.deepEqual(result, { failed: false, failureReason: '', result: '{"answer": 42}\n' });
    assert.ok(linesOf('TASK').some((line) => line.message === 'wrote'));
    assert.equal(existsSync(join(dataDir, 'containers', taskGuid)), false);
  });

  test('a failing task reports why; a large result file is cut at 10 KB; an unknown rootfs fails', async () => {
    assert.deepEqual(await executor.runTask({ taskGuid: guid('task'), definition: task(sh('exit 222')), logSink }), {
      failed: true,
      failureReason: 'Exited with status 222',
      result: '',
    });
    const big = await executor.runTask({ taskGuid: guid('task'), definition: task(sh('head -c 20000 /dev/zero | tr "\\0" x > /tmp/r'), { resultFile: '/tmp/r' }), logSink });
    assert.equal(big.result.length, 10 * 1024);
    const unknown = await executor.runTask({ taskGuid: guid('task'), definition: task(sh('true'), { rootFs: 'preloaded:windows2016' }), logSink });
    assert.match(unknown.failureReason, /^failed to create container: rootfs preloaded:windows2016 is not available on this cell/);
  });

  test('a task over its memory limit is killed: "out of memory"', async () => {
    const hog = run('node', ['-e', 'const a = []; setInterval(() => a.push(Buffer.alloc(16 * 1024 * 1024, 1)), 10)']);
    const result = await executor.runTask({ taskGuid: guid('oom'), definition: task(hog, { memoryMb: 96 }), logSink });
    assert.deepEqual(result, { failed: true, failureReason: 'Exited with status 137 (out of memory)', result: '' });
  });

  test('a task is cancellable; nothing of it is left', async () => {
    const controller = new AbortController();
    const taskGuid = guid('cancel');
    const running = executor.runTask({ taskGuid, definition: task(sh('echo begun; sleep 30')), logSink, signal: controller.signal });
    await waitFor('the task', () => lines.some((line) => line.source === 'TASK' && line.message === 'begun'));
    controller.abort();
    assert.deepEqual(await running, { failed: true, failureReason: CANCELLED_REASON, result: '' });
    assert.equal(existsSync(join(dataDir, 'containers', taskGuid)), false);
  });
});

describe('app instances', () => {
  const appLrp = (extra: Record<string, unknown> = {}) =>
    DesiredLRP.fromPartial({
      processGuid: 'app-guid-v1',
      rootFs: 'preloaded:cflinuxfs4',
      memoryMb: 256,
      diskMb: 1024,
      ports: [8080],
      logSource: 'APP/PROC/WEB',
      environmentVariables: [
        { name: 'APP_SETTING', value: 'on' },
        { name: 'PORT', value: '8080' },
        { name: 'VCAP_APPLICATION', value: JSON.stringify({ application_name: 'demo', limits: { mem: 256 } }) },
      ],
      setup: download(url('/app.tgz'), '/home/vcap/app', { cacheKey: 'app-droplet' }),
      action: run('node', ['/home/vcap/app/server.js']),
      startTimeoutMs: '10000',
      checkDefinition: { checks: [{ tcpCheck: { port: 8080, connectTimeoutMs: '500', intervalMs: '100' } }], logSource: 'HEALTH', readinessChecks: [] },
      ...extra,
    });

  function start(lrp: DesiredLRP, index = 0) {
    const events: string[] = [];
    const metrics: ContainerMetricsSample[] = [];
    let net: NetInfo | undefined;
    let crash: string | undefined;
    const instance = executor.startLrpInstance({
      desiredLrp: lrp,
      index,
      instanceGuid: guid(`instance${index}`),
      logSink,
      metricsSink: (sample) => metrics.push(sample),
      onRunning: (info) => {
        net = info;
        events.push('running');
      },
      onReadinessChanged: (ready) => events.push(ready ? 'ready' : 'unready'),
      onCrashed: (reason) => {
        crash = reason;
        events.push(`crashed: ${reason}`);
      },
    });
    return { instance, events, metrics, net: () => net, crash: () => crash };
  }

  test('an app instance becomes healthy, answers on its published port, sees its instance env and sends metrics; killed, it crashes', async () => {
    const app = start(appLrp({ checkDefinition: {
      checks: [{ tcpCheck: { port: 8080, connectTimeoutMs: '500', intervalMs: '100' } }],
      readinessChecks: [{ httpCheck: { port: 8080, path: '/ready', requestTimeoutMs: '500', intervalMs: '50' } }],
    } }), 3);
    const net = await waitFor('running', app.net);
    assert.equal(net.address, '127.0.0.1');
    assert.equal(net.ports.length, 1);
    const { containerPort, hostPort } = net.ports[0]!;
    assert.equal(containerPort, 8080);
    assert.equal(await (await fetch(`http://127.0.0.1:${hostPort}/`)).text(), 'hello from instance 3');

    const env = (await (await fetch(`http://127.0.0.1:${hostPort}/env`)).json()) as Record<string, string>;
    assert.equal(env.PORT, '8080');
    assert.equal(env.APP_SETTING, 'on');
    assert.equal(env.CF_INSTANCE_INDEX, '3');
    assert.equal(env.CF_INSTANCE_GUID, app.instance.instanceGuid);
    assert.equal(env.CF_INSTANCE_IP, '127.0.0.1');
    assert.equal(env.CF_INSTANCE_PORT, String(hostPort));
    assert.equal(env.CF_INSTANCE_ADDR, `127.0.0.1:${hostPort}`);
    assert.deepEqual(JSON.parse(env.CF_INSTANCE_PORTS!), [{ external: hostPort, internal: 8080 }]);
    assert.deepEqual(JSON.parse(env.VCAP_APPLICATION!), {
      application_name: 'demo',
      limits: { mem: 256 },
      instance_id: app.instance.instanceGuid,
      instance_index: 3,
      host: '0.0.0.0',
      port: 8080,
    });

    await waitFor('ready', () => app.events.includes('ready'));
    await fetch(`http://127.0.0.1:${hostPort}/unready`);
    await waitFor('unready', () => app.events.includes('unready'));

    // node's resident memory, once it has started.
    const sample = await waitFor('metrics', () => app.metrics.find((metric) => metric.memoryBytes > 10 * 1024 * 1024 && metric.diskBytes > 0));
    assert.equal(sample.memoryQuotaBytes, 256 * 1024 * 1024);
    assert.ok(sample.cpuFraction >= 0 && sample.cpuPercentage === sample.cpuFraction * 100);
    const logs = linesOf('APP/PROC/WEB').map((line) => line.message);
    assert.ok(logs.includes('listening on 8080'), 'app output carries the log source');
    assert.ok(linesOf('CELL').some((line) => line.message === 'Container became healthy'));

    const node = app.instance.processIds().find((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'node');
    assert.ok(node !== undefined);
    process.kill(node, 'SIGKILL');
    await app.instance.done;
    assert.equal(app.crash(), 'Exited with status 137');
    assert.equal(app.instance.state, 'crashed');
    assert.deepEqual(app.events.filter((event) => event.startsWith('crashed')).length, 1);
  });

  test('stopping an instance sends its app SIGTERM, whose handler runs', async () => {
    const httpLiveness = { checks: [{ httpCheck: { port: 8080, path: '/', requestTimeoutMs: '500', intervalMs: '100' } }], readinessChecks: [] };
    const app = start(appLrp({ checkDefinition: httpLiveness }), 1);
    await waitFor('running', app.net);
    const earlier = linesOf('APP/PROC/WEB').filter((line) => line.message === 'got SIGTERM').length;
    await app.instance.stop();
    assert.equal(app.instance.state, 'stopped');
    assert.equal(linesOf('APP/PROC/WEB').filter((line) => line.message === 'got SIGTERM').length, earlier + 1);
    assert.equal(app.crash(), undefined, 'a stopped instance does not crash');
    assert.deepEqual(app.instance.processIds(), []);
  });

  test('an instance whose liveness check starts failing crashes as unhealthy', async () => {
    const liveness = { checks: [{ httpCheck: { port: 8080, path: '/ready', requestTimeoutMs: '500', intervalMs: '50' } }], readinessChecks: [] };
    const app = start(appLrp({ checkDefinition: liveness }), 4);
    const net = await waitFor('running', app.net);
    await fetch(`http://127.0.0.1:${net.ports[0]!.hostPort}/unready`);
    await app.instance.done;
    assert.equal(app.crash(), "Instance became unhealthy: Failed to make HTTP request to '/ready' on port 8080: received status code 503");
    assert.ok(linesOf('CELL').some((line) => line.message === 'Container became unhealthy'));
  });

  test('the legacy monitor action is polled until healthy; an app that never listens is never healthy', async () => {
    const monitor = run('/bin/bash', ['-c', 'exec 3<>/dev/tcp/127.0.0.1/8080'], { suppressLogOutput: true, logSource: 'HEALTH' });
    const monitored = start(appLrp({ checkDefinition: undefined, monitor }), 0);
    await waitFor('running', monitored.net);
    await monitored.instance.stop();

    const silent = start(appLrp({ action: sh('sleep 30'), startTimeoutMs: '400' }), 2);
    await silent.instance.done;
    assert.equal(silent.crash(), 'Instance never healthy after 400ms: Failed to make TCP connection to port 8080: connection refused');
    assert.equal(silent.net(), undefined);
  });

  test('an app that exits crashes with its status; a failed setup crashes the instance', async () => {
    const exits = start(appLrp({ action: sh('exit 4'), checkDefinition: undefined }), 0);
    await exits.instance.done;
    assert.equal(exits.crash(), 'Exited with status 4');
    const badSetup = start(appLrp({ setup: download(url('/missing.tgz'), '/home/vcap/app') }), 0);
    await badSetup.instance.done;
    assert.match(badSetup.crash() ?? '', /^Downloading failed: GET http:\/\/127\.0\.0\.1:\d+\/missing\.tgz: HTTP 404/);
  });
});
