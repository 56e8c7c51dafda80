// The command line, run as a user runs it (`node bin/ccbridge.js push ...`, child processes),
// against the development Cloud Controller on port 0 with credentials, a fake bridge (answers
// the gateway's routes; the test stages as the stager would: staging log lines, a droplet
// upload, the completion callback) and a log-cache read API holding the app's log lines.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startDevelopmentCloudController, type DevelopmentCloudController } from '../../embedded/cloud-controller/index.js';
import { systemClock } from '../../embedded/diego/clock.js';
import { createLogCache, type LogCache } from '../../embedded/diego/log-cache.js';
import { silentLogger } from '../../lib/log.js';
import { multipartFraming } from '../../services/fileserver/index.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const CCBRIDGE = join(repoRoot, 'bin', 'ccbridge.js');
const USERNAME = 'cli-user';
const PASSWORD = 'cli-password';
const AUTH = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;
const MiB = 1024 * 1024;

interface Call {
  method: string;
  path: string;
  json: any;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const listen = (server: Server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
const envValue = (list: { name: string; value: string }[], name: string) => list.find((e) => e.name === name)?.value;

/**
 * The bridge's gateway as the development CC calls it: 202 to staging and desires; instances
 * of every desired process RUNNING at once, as TPS would report them once Diego ran them.
 */
function fakeBridge(onStage: (stagingGuid: string, request: any) => void) {
  const calls: Call[] = [];
  const desired = new Map<string, number>();
  const instances = (processGuid: string, withStats: boolean) =>
    Array.from({ length: desired.get(processGuid) ?? 0 }, (_, index) => ({
      process_guid: processGuid,
      instance_guid: `instance-${index}`,
      index,
      state: 'RUNNING',
      uptime: 3,
      since: Math.floor(Date.now() / 1000) - 3,
      ...(withStats ? { host: '127.0.0.1', port: 61000 + index, stats: { time: new Date().toISOString(), cpu: 0.012, mem: 12 * MiB, disk: 30 * MiB } } : {}),
    }));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const call: Call = { method: req.method ?? '', path: req.url ?? '', json: text ? JSON.parse(text) : undefined };
      calls.push(call);
      const answer = (status: number, value?: unknown) => {
        res.writeHead(status, value === undefined ? {} : { 'Content-Type': 'application/json' });
        res.end(value === undefined ? undefined : JSON.stringify(value));
      };
      const staging = /^\/v1\/staging\/([^/]+)$/.exec(call.path);
      const app = /^\/v1\/apps\/([^/]+)$/.exec(call.path);
      const stats = /^\/v1\/actual_lrps\/([^/]+)\/stats$/.exec(call.path);
      const states = /^\/v1\/actual_lrps\/([^/?]+)$/.exec(call.path);
      const bulk = /^\/v1\/bulk_actual_lrp_status\?guids=(.*)$/.exec(call.path);
      if (staging && call.method === 'PUT') {
        answer(202);
        onStage(staging[1]!, call.json);
        return;
      }
      if (app && call.method === 'PUT') {
        desired.set(app[1]!, call.json.num_instances);
        return answer(202);
      }
      if (app && call.method === 'DELETE') {
        desired.delete(app[1]!);
        return answer(202);
      }
      if (stats) return answer(200, instances(stats[1]!, true));
      if (states) return answer(200, instances(states[1]!, false));
      if (bulk) return answer(200, Object.fromEntries(bulk[1]!.split(',').map((guid) => [guid, instances(guid, false)])));
      answer(202);
    });
  });
  return { server, calls, desired };
}

/** A log-cache read API over the embedded Diego's log store, counting the reads it answers. */
function fakeLogCache() {
  const store: LogCache = createLogCache({
    clock: systemClock(),
    logger: silentLogger(),
    maxEnvelopesPerSource: 1000,
    maxSources: 100,
    maxPersistedLogsPerSource: 1000,
    flushIntervalMs: 100,
  });
  const reads: string[] = [];
  const server = createServer((req, res) => {
    reads.push(req.url ?? '');
    if (!store.handle(req, res)) res.writeHead(404).end();
  });
  return { server, store, reads };
}

describe('ccbridge command line against the development Cloud Controller', () => {
  let dataDir: string;
  let cc: DevelopmentCloudController;
  let bridge: ReturnType<typeof fakeBridge>;
  let logs: ReturnType<typeof fakeLogCache>;
  let closedPort: number;
  const stagerFailures: unknown[] = [];

  /** Runs the real binary; the API, log-cache and credentials come from the environment unless given. */
  function ccbridge(args: string[], options: { env?: Record<string, string> } = {}): Promise<Run> & { child: ChildProcess } {
    const child = spawn(process.execPath, [CCBRIDGE, ...args], {
      cwd: repoRoot,
      env: {
        ...process.env,
        CCBRIDGE_API: cc.url,
        CCBRIDGE_LOG_CACHE: urlOf(logs.server),
        CCBRIDGE_USERNAME: USERNAME,
        CCBRIDGE_PASSWORD: PASSWORD,
        CCBRIDGE_LOG_LEVEL: 'silent',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const done = new Promise<Run>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`ccbridge ${args.join(' ')} did not end in time; stdout: ${stdout}; stderr: ${stderr}`));
      }, 90_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    return Object.assign(done, { child });
  }

  /** Runs independent commands a few at a time (each is a Node process). */
  async function inBatches(commands: string[][], atOnce = 4): Promise<Run[]> {
    const runs: Run[] = [];
    for (let i = 0; i < commands.length; i += atOnce) runs.push(...(await Promise.all(commands.slice(i, i + atOnce).map((args) => ccbridge(args)))));
    return runs;
  }

  const api = async (method: string, path: string) => {
    const response = await fetch(cc.url + path, { method, headers: { Authorization: AUTH } });
    return { status: response.status, json: (await response.json()) as any };
  };

  /** Exit 1 with exactly one line on stderr matching `pattern`, and no stack trace. */
  function assertFailure(run: Run, pattern: RegExp): void {
    assert.notEqual(run.code, 0, `expected a failure; stdout: ${run.stdout}`);
    const lines = run.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line on stderr: ${run.stderr}`);
    assert.match(lines[0]!, pattern);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }

  const appendLog = (logGuid: string, source: string, line: string) => logs.store.appendLog(logGuid, '0', `${line}\n`, 'OUT', { source_type: source });

  /** The stager's part: log lines, the droplet upload, the completion callback to CC. */
  async function stage(stagingGuid: string, request: any): Promise<void> {
    const name = JSON.parse(envValue(request.environment, 'VCAP_APPLICATION')!).application_name as string;
    const complete = (body: unknown) =>
      fetch(`${cc.url}/internal/staging/${stagingGuid}/completed`, { method: 'POST', headers: { Authorization: AUTH, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    appendLog(request.log_guid, 'STG', 'Downloading app package...');
    if (name === 'broken') {
      appendLog(request.log_guid, 'STG', '-----> None of the buildpacks detected a compatible app');
      const answer = await complete({ error: { id: 'NoAppDetectedError', message: 'An app was not successfully detected by any available buildpack' } });
      assert.equal(answer.status, 200);
      return;
    }
    if (request.lifecycle === 'docker') {
      appendLog(request.log_guid, 'STG', `Staging image ${request.lifecycle_data.docker_image}`);
      const answer = await complete({ execution_metadata: '{"cmd":["/start"]}', detected_start_command: { web: '/start' }, lifecycle_data: { docker_image: request.lifecycle_data.docker_image } });
      assert.equal(answer.status, 200);
      return;
    }
    appendLog(request.log_guid, 'STG', '-----> Nodejs Buildpack version 1.0.0');
    appendLog(request.log_guid, 'STG', '       Installing node 20');
    const framing = multipartFraming('droplet.tgz');
    const upload = await fetch(request.lifecycle_data.droplet_upload_uri, {
      method: 'POST',
      headers: { 'Content-Type': framing.contentType },
      body: Buffer.concat([framing.head, randomBytes(4096), framing.tail]),
    });
    assert.equal(upload.status, 201, await upload.text());
    appendLog(request.log_guid, 'STG', 'Uploading droplet, build artifacts cache...');
    const answer = await complete({
      execution_metadata: '{"start_command":"node server.js"}',
      detected_start_command: { web: 'node server.js' },
      lifecycle_data: { buildpack_key: 'nodejs', detected_buildpack: 'nodejs' },
    });
    assert.equal(answer.status, 200);
  }

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-cli-'));
    bridge = fakeBridge((stagingGuid, request) => {
      // After the answer, as the stager calls back once the staging task has run.
      setTimeout(() => stage(stagingGuid, request).catch((error: unknown) => stagerFailures.push(error)), 200);
    });
    logs = fakeLogCache();
    await Promise.all([listen(bridge.server), listen(logs.server)]);
    // The app's log lines once Diego runs it, as a cell writes them.
    bridge.server.prependListener('request', (req) => {
      const desire = req.method === 'PUT' && /^\/v1\/apps\/([0-9a-f-]{36})-/.exec(req.url ?? '');
      if (desire) appendLog(desire[1]!, 'APP/PROC/WEB', 'node-app listening on port 8080');
    });
    cc = await startDevelopmentCloudController({
      dataDir,
      logger: silentLogger(),
      username: USERNAME,
      password: PASSWORD,
      bridgeUrl: urlOf(bridge.server),
      fileServerUrl: 'http://127.0.0.1:8080',
      bridgeTimeoutMs: 5_000,
    });
    // A port nothing listens on: a server started and stopped.
    const gone = createServer();
    await listen(gone);
    closedPort = (gone.address() as AddressInfo).port;
    await close(gone);
  });

  after(async () => {
    await cc.close();
    await Promise.all([close(bridge.server), close(logs.server)]);
    logs.store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('push creates, uploads, stages (streaming the staging log) and starts an app, and prints its URL; a failed staging exits non-zero with its error', async () => {
    // A second app from a directory with a .cfignore; its staging fails.
    const brokenDir = join(dataDir, 'apps', 'broken');
    mkdirSync(join(brokenDir, 'logs'), { recursive: true });
    cpSync(join(repoRoot, 'examples', 'node-app'), brokenDir, { recursive: true });
    writeFileSync(join(brokenDir, 'secret.txt'), 'not for upload');
    writeFileSync(join(brokenDir, 'logs', 'debug.log'), 'not for upload either');
    writeFileSync(join(brokenDir, '.cfignore'), '# local files\nsecret.txt\nlogs/\n');

    const [pushed, failed] = await Promise.all([
      ccbridge([
        'push', 'examples/node-app', '--name', 'hello', '--api', cc.url, '--instances', '2', '-m', '128M',
        '--env', 'GREETING=hi', '--allow-ssh', '--poll-interval', '100ms', '--staging-timeout', '20s', '--start-timeout', '20s',
      ], { env: { CCBRIDGE_API: 'http://127.0.0.1:1' } }),
      ccbridge(['push', brokenDir, '--poll-interval', '100ms']),
    ]);
    assert.deepEqual(stagerFailures, []);

    assert.equal(pushed.code, 0, `stdout: ${pushed.stdout}\nstderr: ${pushed.stderr}`);
    assert.equal(pushed.stderr, '');
    assert.match(pushed.stdout, /^Created app hello\.$/m);
    assert.match(pushed.stdout, /^Uploaded \d+ files \(.+\)\.$/m);
    // The staging log, streamed in order; the app's own lines are not staging lines.
    const staged = pushed.stdout.indexOf('-----> Nodejs Buildpack version 1.0.0');
    assert.ok(staged > 0, pushed.stdout);
    assert.ok(pushed.stdout.indexOf('Downloading app package...') < staged);
    assert.ok(pushed.stdout.indexOf('Uploading droplet, build artifacts cache...') > staged);
    assert.doesNotMatch(pushed.stdout, /node-app listening/);
    assert.match(pushed.stdout, /^Started hello: 2 of 2 instances running\.$/m);
    assert.match(pushed.stdout.trimEnd().split('\n').at(-1)!, /^hello is running at http:\/\/hello\.localhost:8081\/$/);
    assert.doesNotMatch(pushed.stdout, /\x1b/, 'no terminal control characters when stdout is not a terminal');
    assert.ok(logs.reads.some((path) => /\/api\/v1\/read\/[0-9a-f-]{36}\?envelope_types=LOG&start_time=\d+/.test(path)), 'the staging log is read from a start time');

    const hello = (await api('GET', '/dev/v1/apps/hello')).json;
    assert.equal(hello.state, 'STARTED');
    assert.equal(hello.instances, 2);
    assert.equal(hello.memory_mb, 128);
    assert.equal(hello.allow_ssh, true);
    assert.equal(hello.build.state, 'STAGED');
    assert.equal(hello.package.type, 'tgz');
    assert.deepEqual((await api('GET', '/dev/v1/apps/hello/environment_variables')).json.var, { GREETING: 'hi' });

    assertFailure(failed, /^ccbridge push: staging of broken failed: NoAppDetectedError: An app was not successfully detected by any available buildpack$/);
    assert.match(failed.stdout, /None of the buildpacks detected a compatible app/, 'the staging log up to the failure');
    // The .cfignore kept its files out of the upload, and itself too.
    const broken = (await api('GET', '/dev/v1/apps/broken')).json;
    const bits = await fetch(`${cc.url}/staging/packages/${broken.guid}`, { headers: { Authorization: AUTH } });
    const listing = execFileSync('tar', ['-tzf', '-'], { input: Buffer.from(await bits.arrayBuffer()) }).toString().split('\n').filter(Boolean);
    assert.deepEqual(listing.sort(), ['package.json', 'server.js']);
  });

  test('apps, app, env, events, logs --recent and their --json; logs follows until Ctrl-C; bad input is one line on stderr', async () => {
    // A crash, as the watcher reports it.
    const hello = (await api('GET', '/dev/v1/apps/hello')).json;
    const crash = await fetch(`${cc.url}/internal/v4/apps/${hello.process_guid}/crashed`, {
      method: 'POST',
      headers: { Authorization: AUTH, 'Content-Type': 'application/json' },
      body: JSON.stringify({ instance: 'instance-1', index: 1, reason: 'CRASHED', exit_description: 'APP/PROC/WEB: Exited with status 137 (out of memory)', crash_count: 1, crash_timestamp: 1 }),
    });
    assert.equal(crash.status, 200);

    const follow = ccbridge(['logs', 'hello', '--poll-interval', '100ms']);
    const following = (async () => {
      // The recent lines first, then a new one as it is written, then Ctrl-C.
      let seen = '';
      follow.child.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()));
      const waitFor = async (text: string) => {
        const deadline = Date.now() + 60_000;
        while (!seen.includes(text) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
        assert.ok(seen.includes(text), `logs printed ${text}: ${seen}`);
      };
      await waitFor('node-app listening on port 8080');
      appendLog(hello.guid, 'APP/PROC/WEB', 'GET / 200');
      await waitFor('GET / 200');
      follow.child.kill('SIGINT');
      return follow;
    })();
    const [[apps, appsJson, app, appJson, env, events, eventsJson, recent, recentJson, unknown, unreachable, wrongPassword, ssh, unconfirmed, badFlag], followed] = await Promise.all([
      inBatches([
        ['apps'],
        ['apps', '--json'],
        ['app', 'hello'],
        ['app', 'hello', '--json'],
        ['env', 'hello'],
        ['events', 'hello'],
        ['events', 'hello', '--json', '--type', 'app.crash'],
        ['logs', 'hello', '--recent'],
        ['logs', 'hello', '--recent', '--json'],
        ['app', 'nope'],
        ['apps', '--api', `http://127.0.0.1:${closedPort}`],
        ['apps', '--password', 'wrong'],
        ['ssh', 'hello'],
        ['delete', 'broken'],
        ['scale', 'hello', '-i', 'many'],
      ]),
      following,
    ]);

    assert.equal(apps.code, 0, apps.stderr);
    const rows = apps.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^name\s+state\s+instances\s+memory\s+url$/);
    assert.ok(rows.some((row) => /^hello\s+STARTED\s+2\/2\s+128M\s+http:\/\/hello\.localhost:8081\/$/.test(row)), apps.stdout);
    assert.ok(rows.some((row) => /^broken\s+STARTED\s+0\/1\s+256M\s+http:\/\/broken\.localhost:8081\/$/.test(row)), apps.stdout);
    assert.deepEqual(JSON.parse(appsJson.stdout).resources.map((a: { name: string }) => a.name).sort(), ['broken', 'hello']);

    assert.equal(app.code, 0, app.stderr);
    assert.match(app.stdout, /^state:\s+STARTED$/m);
    assert.match(app.stdout, /^url:\s+http:\/\/hello\.localhost:8081\/$/m);
    assert.match(app.stdout, /^droplet:\s+nodejs, start command: node server\.js$/m);
    assert.match(app.stdout, /^index\s+state\s+since\s+cpu\s+memory\s+disk$/m);
    assert.match(app.stdout, /^#0\s+RUNNING\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+1\.2%\s+12M of 128M\s+30M of 1G$/m);
    assert.match(app.stdout, /^#1\s+RUNNING\s/m);
    const shown = JSON.parse(appJson.stdout);
    assert.equal(shown.name, 'hello');
    assert.deepEqual(shown.instance_details.map((i: { state: string }) => i.state), ['RUNNING', 'RUNNING']);

    assert.equal(env.stdout, 'GREETING=hi\n');

    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /^time\s+event\s+actor\s+description$/m);
    assert.match(events.stdout, /app\.crash\s+bridge\s+index 1, APP\/PROC\/WEB: Exited with status 137 \(out of memory\), crash count 1$/m);
    assert.match(events.stdout, /audit\.app\.create\s+user\s/);
    const crashes = JSON.parse(eventsJson.stdout).resources;
    assert.deepEqual(crashes.map((e: { type: string }) => e.type), ['app.crash']);

    assert.equal(recent.code, 0, recent.stderr);
    assert.match(recent.stdout, /^\S+Z \[STG\/0\] OUT -----> Nodejs Buildpack version 1\.0\.0$/m);
    assert.match(recent.stdout, /^\S+Z \[APP\/PROC\/WEB\/0\] OUT node-app listening on port 8080$/m);
    const lines = recent.stdout.trimEnd().split('\n');
    assert.ok(lines.findIndex((l) => l.includes('Nodejs Buildpack')) < lines.findIndex((l) => l.includes('listening')), 'oldest first');
    const batch = JSON.parse(recentJson.stdout).envelopes.batch;
    assert.ok(batch.some((e: any) => Buffer.from(e.log.payload, 'base64').toString().includes('Installing node 20')));

    assert.equal(followed.code, 0, `Ctrl-C ends following cleanly: ${followed.stderr}`);
    assert.equal(followed.stdout.match(/node-app listening/g)?.length, 1, 'no line twice');
    assert.match(followed.stdout, /\[APP\/PROC\/WEB\/0\] OUT GET \/ 200$/m);

    assertFailure(unknown, /^ccbridge app: app "nope" not found \(CF-AppNotFound\)$/);
    assertFailure(unreachable, new RegExp(`^ccbridge apps: cannot reach the API at http://127\\.0\\.0\\.1:${closedPort}: .*ECONNREFUSED`));
    assertFailure(wrongPassword, /^ccbridge apps: the API at \S+ refused the credentials \(CF-NotAuthenticated\)/);
    assertFailure(ssh, /^ccbridge ssh: this development Cloud Controller was started without a BBS address, so it cannot look up SSH access/);
    assertFailure(unconfirmed, /^ccbridge delete: not deleting broken without a confirmation: give -f$/);
    assert.equal((await api('GET', '/dev/v1/apps/broken')).status, 200);
    assertFailure(badFlag, /^ccbridge scale: --instances: "many" is not a whole number$/);
    assert.equal(badFlag.code, 2);
  });

  test('scale, set-env, unset-env, stop, start and delete change the app through the bridge; a docker push with --json', async () => {
    const before = (await api('GET', '/dev/v1/apps/hello')).json;
    const mark = bridge.calls.length;
    const [scaled, set, deletedBroken, docker] = await Promise.all([
      ccbridge(['scale', 'hello', '-i', '3', '--memory', '256M']),
      ccbridge(['set-env', 'hello', 'FOO', 'bar baz']),
      ccbridge(['delete', 'broken', '-f']),
      ccbridge(['push', '--docker-image', 'registry.example/web:1', '--name', 'web', '--json', '--poll-interval', '100ms']),
    ]);
    // --json: stdout is the app as the API answers it; progress and the staging log go to stderr.
    assert.equal(docker.code, 0, docker.stderr);
    const web = JSON.parse(docker.stdout);
    assert.equal(web.lifecycle.docker_image, 'registry.example/web:1');
    assert.equal(web.running_instances, 1);
    assert.match(docker.stderr, /\[STG\/0\] OUT Staging image registry\.example\/web:1$/m);
    assert.equal((await ccbridge(['delete', 'web', '-f'])).code, 0);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.equal(scaled.stdout, 'hello: 3 instances, 256M memory, 1G disk\n');
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'FOO set on hello\n');
    assert.equal(deletedBroken.stdout, 'broken is deleted\n');
    assert.equal((await api('GET', '/dev/v1/apps/broken')).status, 404);
    const desires = bridge.calls.slice(mark).filter((c) => c.method === 'PUT' && c.path.startsWith(`/v1/apps/${before.guid}-`));
    assert.equal(desires.at(-1)!.json.num_instances, 3);
    assert.equal(desires.at(-1)!.json.memory_mb, 256);
    assert.equal(envValue(desires.at(-1)!.json.environment, 'FOO'), 'bar baz');

    const [stopped, unset] = await Promise.all([ccbridge(['stop', 'hello']), ccbridge(['unset-env', 'hello', 'FOO', '--json'])]);
    assert.equal(stopped.stdout, 'hello is stopped\n');
    assert.deepEqual(JSON.parse(unset.stdout).var, { GREETING: 'hi' });
    assert.equal((await api('GET', '/dev/v1/apps/hello')).json.state, 'STOPPED');
    assert.equal(bridge.desired.size, 0, 'nothing desired once stopped');

    const started = await ccbridge(['start', 'hello', '--poll-interval', '100ms']);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /^Started hello: 3 of 3 instances running\.$/m);
    assert.match(started.stdout, /^hello is running at http:\/\/hello\.localhost:8081\/$/m);
    assert.equal([...bridge.desired.values()][0], 3);

    const deleted = await ccbridge(['delete', 'hello', '-f', '--json']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(JSON.parse(deleted.stdout), { deleted: before.guid, name: 'hello', warnings: [] });
    assert.equal(bridge.desired.size, 0);
    assert.deepEqual((await api('GET', '/dev/v1/apps')).json.resources, []);
    assert.deepEqual(stagerFailures, []);
  });
});
