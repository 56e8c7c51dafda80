// The development router against the embedded Diego over the real BBS protocol: desired LRPs
// with cf-router routes, instances brought to RUNNING with net info pointing at small HTTP
// servers started here, and requests by Host through the router. Instance states are driven
// through the embedded Diego's in-process BBS, which emits the same events a cell's reports do.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createBbsClient, type BbsClient, type BbsClientOptions } from '../../clients/bbs/index.js';
import { createCellClient, startEmbeddedDiego, type EmbeddedDiego } from '../../embedded/diego/index.js';
import {
  createRouteTable,
  hostFromHeader,
  httpRoutesOf,
  isLoopbackAddress,
  startRouter,
  type Router,
  type RouterBbs,
  type RouterOptions,
} from '../../embedded/router/index.js';
import { ActualLRP_Presence, ActualLRPNetInfo_PreferredAddress } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { createLogger, type Logger } from '../../lib/log.js';

// ---------------------------------------------------------------- fixtures

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-router-'));
  tempDirs.push(dir);
  return dir;
}
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Every log line of the suite, parsed, so tests can look for events and for secrets. */
const logLines: Array<Record<string, unknown>> = [];
const rawLog: string[] = [];
const logger: Logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        rawLog.push(line);
        logLines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  }),
});

const SSH_SECRET = 'ROUTER-TEST-SSH-HOST-KEY-MATERIAL';
const CONTAINER_PORT = 8080;

async function startDiego(dataDir = tempDir(), port = 0): Promise<EmbeddedDiego> {
  // No convergence passes: no cell runs here, and the instance states are the tests' to set.
  const diego = await startEmbeddedDiego({ dataDir, port, logger, background: false });
  cleanups.push(() => diego.close(0));
  return diego;
}

function clientOf(url: string, options: Partial<BbsClientOptions> = {}): BbsClient {
  const client = createBbsClient({ url, logger, timeoutMs: 5_000, retry: { attempts: 3, delayMs: 20 }, resubscribe: { backoff: { initialMs: 20, maxMs: 100 } }, ...options });
  cleanups.push(() => client.close());
  return client;
}

async function routerOn(bbs: RouterBbs, options: Partial<RouterOptions> = {}): Promise<Router> {
  const router = await startRouter({ bbs, logger, resyncIntervalMs: 60_000, relistRetryMs: 50, connectTimeoutMs: 1_000, closeGraceMs: 100, ...options });
  cleanups.push(() => router.close());
  await router.synced;
  return router;
}

const cfRouter = (hostnames: string[], port = CONTAINER_PORT) => Buffer.from(JSON.stringify([{ hostnames, port }]));

function lrp(processGuid: string, hostnames: string[], instances: number): DesiredLRP {
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances,
    memoryMb: 64,
    diskMb: 64,
    logGuid: processGuid,
    ports: [CONTAINER_PORT],
    action: { runAction: { path: '/tmp/lifecycle/launcher', args: ['app', 'start'], user: 'vcap' } },
    metricTags: { source_id: { static: processGuid } },
    routes: {
      routes: {
        'cf-router': cfRouter(hostnames),
        'diego-ssh': Buffer.from(JSON.stringify({ container_port: 2222, private_key: SSH_SECRET })),
      },
    },
  });
}

const CELL_ID = 'cell-router-test';
const keyOf = (processGuid: string, index: number) => ({ processGuid, index, domain: 'cf-apps' });
/** One instance guid per index, so a later report about the index is the same instance's. */
const instanceKeyOf = (processGuid: string, index: number) => ({ instanceGuid: `${processGuid}-${index}`, cellId: CELL_ID });
const netInfoOf = (hostPort: number, address = '127.0.0.1') => ({
  address,
  ports: [{ containerPort: CONTAINER_PORT, hostPort, containerTlsProxyPort: 0, hostTlsProxyPort: 0 }],
  instanceAddress: '',
  preferredAddress: ActualLRPNetInfo_PreferredAddress.PREFERRED_ADDRESS_HOST,
  instanceIpv6Address: '',
});

/** Reports an instance RUNNING with net info pointing at hostPort, over the cell routes as a rep does. */
async function runInstance(diego: EmbeddedDiego, processGuid: string, index: number, hostPort: number, options: { address?: string; routable?: boolean } = {}): Promise<void> {
  const cell = createCellClient({ url: diego.url, timeoutMs: 5_000 });
  await cell.start(keyOf(processGuid, index), instanceKeyOf(processGuid, index), netInfoOf(hostPort, options.address), options.routable === undefined ? {} : { routable: options.routable });
}

interface Backend {
  name: string;
  port: number;
  server: Server;
  seen: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, backend: Backend) => void;

/** Answers with its name and what it received, unless given a handler. */
const describeRequest: Handler = (req, res, backend) => {
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  req.on('end', () => {
    const body = JSON.stringify({ name: backend.name, bytes, sha256: hash.digest('hex') });
    res.writeHead(200, { 'Content-Type': 'application/json', 'X-Backend': backend.name }).end(body);
  });
};

async function startBackend(name: string, handler: Handler = describeRequest): Promise<Backend> {
  const backend: Backend = { name, port: 0, server: undefined as unknown as Server, seen: [] };
  backend.server = createServer((req, res) => {
    backend.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, backend);
  });
  // Upgraded connections leave the server's own bookkeeping; these are all of them.
  const sockets = new Set<Socket>();
  backend.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  backend.server.listen(0, '127.0.0.1');
  await once(backend.server, 'listening');
  backend.port = (backend.server.address() as AddressInfo).port;
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => backend.server.close(resolve));
  });
  return backend;
}

/** A port nothing listens on: bound, then released. */
async function deadPort(): Promise<number> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

function send(router: Router, host: string | undefined, options: { method?: string; path?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port: router.port,
      method: options.method ?? 'GET',
      path: options.path ?? '/',
      headers: { ...(host === undefined ? {} : { Host: host }), ...options.headers },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.end(options.body);
  });
}

const nameOf = (answer: Answer) => (answer.status === 200 ? (JSON.parse(answer.text) as { name: string }).name : `status ${answer.status}`);

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Bounded by the deadline.
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const endpointsOf = (router: Router, host: string) => router.routes()[host]?.map((e) => e.port).sort((a, b) => a - b);

/** A raw HTTP exchange, for what node:http clients will not send. */
async function rawExchange(port: number, text: string | Buffer): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  socket.write(text);
  await once(socket, 'close');
  return Buffer.concat(chunks).toString('latin1');
}

// ---------------------------------------------------------------- pure parts

describe('route table parts', () => {
  test('Host headers: port stripped, case folded, trailing dot and IPv6 brackets dropped', () => {
    const cases = [
      { input: 'MyApp.LocalHost:8081', want: 'myapp.localhost' },
      { input: 'myapp.example.com.', want: 'myapp.example.com' },
      { input: '[::1]:8081', want: '::1' },
      { input: '', want: '' },
      { input: undefined, want: '' },
    ];
    for (const { input, want } of cases) assert.equal(hostFromHeader(input), want, String(input));
  });

  test('cf-router documents: hostnames normalized, bad entries skipped, other keys never read', () => {
    const routes = (text: string) => ({ routes: { 'cf-router': Buffer.from(text), 'diego-ssh': Buffer.from('not json') } });
    assert.deepEqual(httpRoutesOf(routes('[{"hostnames":["A.Example.com",""],"port":8080},{"hostnames":["x"],"port":"80"},{"port":9}]')), [
      { hostnames: ['a.example.com'], port: 8080 },
    ]);
    assert.deepEqual(httpRoutesOf({ routes: {} }), []);
    assert.deepEqual(httpRoutesOf(undefined), []);
    assert.throws(() => httpRoutesOf(routes('{not json')), (err: Error) => !err.message.includes('not json'));
  });

  test('only loopback addresses count as local', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(address), true, address);
    for (const address of ['10.0.0.1', '0.0.0.0', 'localhost', '::ffff:10.0.0.1', '', '192.168.1.1']) assert.equal(isLoopbackAddress(address), false, address);
  });

  test('an exact hostname wins over an alias; a shared hostname pools both apps', () => {
    const table = createRouteTable('localhost');
    const instance = (index: number, hostPort: number) => ({
      index,
      instanceGuid: `g${hostPort}`,
      presence: ActualLRP_Presence.PRESENCE_ORDINARY,
      netInfo: { address: '127.0.0.1', ports: [{ containerPort: 8080, hostPort, containerTlsProxyPort: 0, hostTlsProxyPort: 0 }], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' },
    });
    table.setRoutes('blue', [{ hostnames: ['shop.example.com'], port: 8080 }]);
    table.setRoutes('green', [{ hostnames: ['shop.example.com'], port: 8080 }]);
    table.setRoutes('local', [{ hostnames: ['shop.localhost'], port: 8080 }]);
    table.setInstance('blue', 0, ActualLRP_Presence.PRESENCE_ORDINARY, instance(0, 1001));
    table.setInstance('green', 0, ActualLRP_Presence.PRESENCE_ORDINARY, instance(0, 1002));
    table.setInstance('local', 0, ActualLRP_Presence.PRESENCE_ORDINARY, instance(0, 1003));
    assert.deepEqual(table.lookup('shop.example.com')?.map((e) => e.port), [1001, 1002]);
    assert.deepEqual(table.lookup('shop.localhost')?.map((e) => e.port), [1003]);
    table.removeDesired('local');
    assert.deepEqual(table.lookup('shop.localhost')?.map((e) => e.port), [1001, 1002], 'the alias serves once nothing claims the name exactly');
    assert.equal(table.lookup('nothing.localhost'), undefined);
  });
});

// ---------------------------------------------------------------- against the embedded Diego

describe('router against the embedded Diego', () => {
  let diego: EmbeddedDiego;
  let bbs: BbsClient;
  let router: Router;

  before(async () => {
    diego = await startDiego();
    bbs = clientOf(diego.url);
    router = await routerOn(bbs);
  });

  test('requests by Host reach the running instances round robin, with the forwarding headers', async () => {
    const backends = await Promise.all(['rr-0', 'rr-1', 'rr-2'].map((name) => startBackend(name)));
    await bbs.desireLrp(lrp('app-rr', ['rr.example.com'], 3));
    for (const [index, backend] of backends.entries()) await runInstance(diego, 'app-rr', index, backend.port);
    await waitFor('three rr endpoints', () => endpointsOf(router, 'rr.example.com')?.length === 3);

    const names: string[] = [];
    for (let i = 0; i < 6; i++) names.push(nameOf(await send(router, i % 2 === 0 ? 'rr.example.com' : 'RR.Example.COM:4443')));
    assert.deepEqual(names.slice(0, 3).sort(), ['rr-0', 'rr-1', 'rr-2']);
    assert.deepEqual(names.slice(3), names.slice(0, 3), 'the same turn order again');

    const alias = await send(router, 'rr.localhost', { headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Vcap-Request-Id': 'client-chosen' } });
    assert.equal(alias.status, 200, '<app>.<default domain> reaches an app routed under another domain');
    const seen = backends.flatMap((b) => b.seen).find((s) => s.headers.host === 'rr.localhost')!;
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.match(String(seen.headers['x-request-start']), /^\d{13}$/);
    assert.match(String(seen.headers['x-vcap-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(seen.headers.host, 'rr.localhost', 'the Host header is passed as sent');
  });

  test('only RUNNING instances that are not marked unroutable are routed', async () => {
    const [a, b, c] = await Promise.all(['gate-0', 'gate-1', 'gate-2'].map((name) => startBackend(name)));
    await bbs.desireLrp(lrp('app-gate', ['gate.example.com'], 3));
    await runInstance(diego, 'app-gate', 0, a!.port, { routable: false });
    await createCellClient({ url: diego.url }).claim('app-gate', 1, instanceKeyOf('app-gate', 1));
    // Records written before readiness existed carry no routable at all; cells always set it,
    // so this one is written into the store directly.
    diego.bbs.changeActualLrp('app-gate', 2, ActualLRP_Presence.PRESENCE_ORDINARY, (current) => {
      const running = { ...current, state: 'RUNNING', actualLrpInstanceKey: instanceKeyOf('app-gate', 2), actualLrpNetInfo: netInfoOf(c!.port) };
      delete running.routable;
      return running;
    });
    await waitFor('one gate endpoint', () => endpointsOf(router, 'gate.example.com')?.length === 1);
    assert.deepEqual(endpointsOf(router, 'gate.example.com'), [c!.port], 'routable unset counts as routable; CLAIMED and routable=false do not');
    await runInstance(diego, 'app-gate', 0, a!.port, { routable: true });
    await waitFor('gate-0 routable', () => endpointsOf(router, 'gate.example.com')?.length === 2);
    for (let i = 0; i < 4; i++) assert.notEqual(nameOf(await send(router, 'gate.example.com')), 'gate-1');
  });

  test('an instance removed or crashed is no longer routed', async () => {
    const backends = await Promise.all(['gone-0', 'gone-1', 'gone-2'].map((name) => startBackend(name)));
    await bbs.desireLrp(lrp('app-gone', ['gone.example.com'], 3));
    for (const [index, backend] of backends.entries()) await runInstance(diego, 'app-gone', index, backend.port);
    await waitFor('three gone endpoints', () => endpointsOf(router, 'gone.example.com')?.length === 3);

    const cell = createCellClient({ url: diego.url });
    await cell.crash(keyOf('app-gone', 1), instanceKeyOf('app-gone', 1), 'APP/PROC/WEB: Exited with status 1');
    await waitFor('crashed instance unrouted', () => endpointsOf(router, 'gone.example.com')?.length === 2);
    assert.ok(logLines.some((l) => l.msg === 'route-event' && l.event === 'actual_lrp_crashed' && l.process_guid === 'app-gone'));
    await cell.remove('app-gone', 2, instanceKeyOf('app-gone', 2));
    await waitFor('one gone endpoint', () => endpointsOf(router, 'gone.example.com')?.length === 1);
    for (let i = 0; i < 4; i++) assert.equal(nameOf(await send(router, 'gone.example.com')), 'gone-0');
  });

  test('route changes are followed: the old hostname is gone, the new one serves', async () => {
    const backend = await startBackend('moved');
    await bbs.desireLrp(lrp('app-moved', ['old.example.com'], 1));
    await runInstance(diego, 'app-moved', 0, backend.port);
    await waitFor('old route', () => endpointsOf(router, 'old.example.com')?.length === 1);
    assert.equal((await send(router, 'old.example.com')).status, 200);

    await bbs.updateDesiredLrp('app-moved', { routes: { routes: { 'cf-router': cfRouter(['new.example.com', 'new.localhost']) } }, metricTags: {} });
    await waitFor('new route', () => endpointsOf(router, 'new.example.com')?.length === 1);
    assert.equal((await send(router, 'old.example.com')).status, 404);
    assert.equal(nameOf(await send(router, 'new.example.com')), 'moved');
    assert.equal(nameOf(await send(router, 'NEW.localhost')), 'moved');

    await bbs.removeDesiredLrp('app-moved');
    await waitFor('route removed', () => router.routes()['new.example.com'] === undefined);
    assert.equal((await send(router, 'new.example.com')).status, 404);
  });

  test('an unknown host is 404 with gorouter\'s body; a route with no instance up is 503', async () => {
    const unknown = await send(router, 'nobody.localhost:8081');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.text, "404 Not Found: Requested route ('nobody.localhost') does not exist.\n");
    assert.equal(unknown.headers['x-cf-routererror'], 'unknown_route');

    await bbs.desireLrp(lrp('app-idle', ['idle.example.com'], 2));
    await waitFor('idle route', () => router.routes()['idle.example.com'] !== undefined);
    const idle = await send(router, 'idle.example.com');
    assert.equal(idle.status, 503);
    assert.equal(idle.headers['x-cf-routererror'], 'no_endpoints');
    assert.match(idle.text, /idle\.example\.com/);
  });

  test('an instance that refuses the connection is skipped for the next one; with none left it is 502', async () => {
    const alive = await startBackend('alive');
    const dead = await deadPort();
    await bbs.desireLrp(lrp('app-flaky', ['flaky.example.com'], 2));
    await runInstance(diego, 'app-flaky', 0, dead);
    await runInstance(diego, 'app-flaky', 1, alive.port);
    await waitFor('two flaky endpoints', () => endpointsOf(router, 'flaky.example.com')?.length === 2);
    for (let i = 0; i < 4; i++) assert.equal(nameOf(await send(router, 'flaky.example.com')), 'alive', 'every turn ends at the live instance');
    assert.ok(logLines.some((l) => l.msg === 'instance-dial-failed' && l.port === dead));

    await runInstance(diego, 'app-flaky', 1, await deadPort());
    await waitFor('both dead', () => !endpointsOf(router, 'flaky.example.com')?.includes(alive.port));
    const failed = await send(router, 'flaky.example.com');
    assert.equal(failed.status, 502);
    assert.equal(failed.headers['x-cf-routererror'], 'endpoint_failure');
    const access = logLines.filter((l) => l.msg === 'route-request' && l.host === 'flaky.example.com').at(-1)!;
    assert.equal(access.status, 502);
    assert.equal(access.attempts, 2);
  });

  test('addresses off the machine are never dialled: 502 and a log line', async () => {
    await bbs.desireLrp(lrp('app-remote', ['remote.example.com'], 1));
    await runInstance(diego, 'app-remote', 0, 8080, { address: '10.255.255.1' });
    await waitFor('remote endpoint', () => endpointsOf(router, 'remote.example.com')?.length === 1);
    const answer = await send(router, 'remote.example.com');
    assert.equal(answer.status, 502);
    assert.ok(logLines.some((l) => l.msg === 'refused-non-loopback-instance' && l.address === '10.255.255.1'));
    assert.ok(!logLines.some((l) => l.msg === 'instance-dial-failed' && l.address === '10.255.255.1'));
  });

  test('an instance that never answers is 504 after the response deadline', async () => {
    const silent = await startBackend('silent', () => undefined);
    const quick = await routerOn(bbs, { responseTimeoutMs: 200 });
    await bbs.desireLrp(lrp('app-silent', ['silent.example.com'], 1));
    await runInstance(diego, 'app-silent', 0, silent.port);
    await waitFor('silent endpoint', () => endpointsOf(quick, 'silent.example.com')?.length === 1);
    const answer = await send(quick, 'silent.example.com');
    assert.equal(answer.status, 504);
    assert.equal((await send(quick, 'nobody.example.com')).status, 404, 'still serving');
  });

  test('large bodies are streamed both ways, not buffered', async () => {
    // The instance answers its first byte only after the client's first chunk arrived, and
    // the client sends the rest only after that byte came back: a router that held either body
    // until it was complete would deadlock here.
    const chunk = randomBytes(1024 * 1024);
    const chunks = 16;
    const backend = await startBackend('stream', (req, res) => {
      const hash = createHash('sha256');
      let first = true;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      req.on('data', (data: Buffer) => {
        hash.update(data);
        if (first) {
          first = false;
          res.write('started\n');
        }
      });
      req.on('end', () => {
        res.write(`${hash.digest('hex')}\n`);
        // Then a large answer, in pieces, respecting back-pressure.
        let sent = 0;
        const pump = () => {
          while (sent < chunks) {
            sent++;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      });
    });
    await bbs.desireLrp(lrp('app-stream', ['stream.example.com'], 1));
    await runInstance(diego, 'app-stream', 0, backend.port);
    await waitFor('stream endpoint', () => endpointsOf(router, 'stream.example.com')?.length === 1);

    const req = httpRequest({ host: '127.0.0.1', port: router.port, method: 'POST', path: '/upload', headers: { Host: 'stream.example.com' }, agent: false });
    const responded = once(req, 'response') as Promise<[IncomingMessage]>;
    req.write(chunk);
    const [res] = await responded;
    const reader = res[Symbol.asyncIterator]();
    const firstPiece = (await reader.next()).value as Buffer;
    assert.match(firstPiece.toString(), /^started\n/);
    const sentHash = createHash('sha256').update(chunk);
    for (let i = 1; i < chunks; i++) {
      sentHash.update(chunk);
      if (!req.write(chunk)) await once(req, 'drain');
    }
    req.end();
    const received: Buffer[] = [firstPiece];
    for (let next = await reader.next(); !next.done; next = await reader.next()) received.push(next.value as Buffer);
    const body = Buffer.concat(received);
    const headerEnd = body.indexOf('\n', 'started\n'.length);
    assert.equal(body.subarray('started\n'.length, headerEnd).toString(), sentHash.digest('hex'), 'the upload arrived whole');
    const download = body.subarray(headerEnd + 1);
    assert.equal(download.length, chunk.length * chunks);
    assert.equal(createHash('sha256').update(download).digest('hex'), createHash('sha256').update(Buffer.concat(Array(chunks).fill(chunk))).digest('hex'));
  });

  test('clients that go away mid-upload or mid-download do not hurt the router', async () => {
    let uploadClosed!: () => void;
    const uploadGone = new Promise<void>((resolve) => (uploadClosed = resolve));
    const backend = await startBackend('abort', (req, res) => {
      if (req.url === '/upload') {
        req.resume();
        req.on('close', () => uploadClosed());
        return;
      }
      res.writeHead(200);
      const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 5);
      res.on('close', () => clearInterval(timer));
    });
    await bbs.desireLrp(lrp('app-abort', ['abort.example.com'], 1));
    await runInstance(diego, 'app-abort', 0, backend.port);
    await waitFor('abort endpoint', () => endpointsOf(router, 'abort.example.com')?.length === 1);

    const upload = httpRequest({ host: '127.0.0.1', port: router.port, method: 'POST', path: '/upload', headers: { Host: 'abort.example.com', 'Content-Length': '100000000' }, agent: false });
    upload.on('error', () => undefined);
    upload.write(Buffer.alloc(256 * 1024));
    await waitFor('upload reached the instance', () => backend.seen.some((s) => s.url === '/upload'));
    upload.destroy();
    await uploadGone;

    const download = httpRequest({ host: '127.0.0.1', port: router.port, path: '/download', headers: { Host: 'abort.example.com' }, agent: false });
    download.on('error', () => undefined);
    download.end();
    const [res] = (await once(download, 'response')) as [IncomingMessage];
    await once(res, 'data');
    res.destroy();
    await waitFor('abort logged', () => logLines.some((l) => l.msg === 'route-request' && l.host === 'abort.example.com' && l.status === 499));

    assert.equal((await send(router, 'nobody.example.com')).status, 404, 'still serving');
  });

  test('an instance that dies mid-answer: the client sees a cut answer, the log a 502', async () => {
    const backend = await startBackend('cut', (_req, res) => {
      res.writeHead(200, { 'Content-Length': '1000000' });
      res.write(Buffer.alloc(1000));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await bbs.desireLrp(lrp('app-cut', ['cut.example.com'], 1));
    await runInstance(diego, 'app-cut', 0, backend.port);
    await waitFor('cut endpoint', () => endpointsOf(router, 'cut.example.com')?.length === 1);
    await assert.rejects(send(router, 'cut.example.com'));
    await waitFor('cut logged', () => logLines.some((l) => l.msg === 'route-request' && l.host === 'cut.example.com'));
    assert.equal(logLines.find((l) => l.msg === 'route-request' && l.host === 'cut.example.com')!.status, 502);
    assert.equal((await send(router, 'nobody.example.com')).status, 404, 'still serving');
  });

  test('bad input is answered, never fatal: no Host, huge headers, garbage', async () => {
    const noHost = await rawExchange(router.port, 'GET / HTTP/1.0\r\n\r\n');
    assert.match(noHost, /^HTTP\/1\.1 400 /);
    assert.match(noHost, /empty Host header/);
    const huge = await rawExchange(router.port, `GET / HTTP/1.1\r\nHost: x.localhost\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    const garbage = await rawExchange(router.port, Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n', 'latin1'));
    assert.match(garbage, /^HTTP\/1\.1 400 /);
    const half = connect({ host: '127.0.0.1', port: router.port });
    half.on('error', () => undefined);
    half.write('GET / HTTP/1.1\r\nHost: x.local');
    half.destroy();
    assert.equal((await send(router, 'nobody.example.com')).status, 404, 'still serving');
  });

  test('upgrades pass through: a WebSocket-style handshake and bytes both ways', async () => {
    const backend = await startBackend('ws');
    backend.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Forwarded-For-Seen: ${req.headers['x-forwarded-for']}\r\n\r\n`);
      socket.on('data', (data: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), data])));
      socket.on('error', () => undefined);
    });
    await bbs.desireLrp(lrp('app-ws', ['ws.example.com'], 1));
    await runInstance(diego, 'app-ws', 0, backend.port);
    await waitFor('ws endpoint', () => endpointsOf(router, 'ws.example.com')?.length === 1);

    const socket = connect({ host: '127.0.0.1', port: router.port });
    await once(socket, 'connect');
    socket.write('GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    let received = '';
    socket.on('data', (data: Buffer) => (received += data.toString()));
    await waitFor('handshake', () => received.includes('\r\n\r\n'));
    assert.match(received, /^HTTP\/1\.1 101 /);
    assert.match(received, /X-Forwarded-For-Seen: 127\.0\.0\.1/);
    socket.write('ping');
    await waitFor('echo', () => received.endsWith('echo:ping'));
    socket.destroy();
    await waitFor('upgrade logged', () => logLines.some((l) => l.msg === 'route-request' && l.host === 'ws.example.com' && l.status === 101));

    const refused = await rawExchange(router.port, 'GET / HTTP/1.1\r\nHost: nows.example.com\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    assert.match(refused, /^HTTP\/1\.1 404 /);
  });

  test('access log lines carry host, status and duration; route documents never reach a line', async () => {
    const access = logLines.filter((l) => l.msg === 'route-request');
    assert.ok(access.length > 10);
    for (const line of access) {
      assert.equal(typeof line.host, 'string');
      assert.equal(typeof line.status, 'number');
      assert.equal(typeof line.duration_ms, 'number');
    }
    assert.ok(!rawLog.some((line) => line.includes(SSH_SECRET)), 'the diego-ssh route never reaches a log line');
  });
});

describe('keeping the table current', () => {
  test('after the BBS event stream drops (restart on the same port and data dir), the table is re-listed', async () => {
    const dataDir = tempDir();
    let diego = await startDiego(dataDir);
    const port = diego.port;
    // A resubscription backoff long enough to make the changes below while no stream is open.
    const bbs = clientOf(diego.url, { resubscribe: { backoff: { initialMs: 1_000, maxMs: 1_000 } } });
    const router = await routerOn(bbs);
    const [first, second] = await Promise.all([startBackend('before'), startBackend('after')]);
    await bbs.desireLrp(lrp('app-restart', ['restart.example.com'], 1));
    await bbs.desireLrp(lrp('app-dropped', ['dropped.example.com'], 0));
    await runInstance(diego, 'app-restart', 0, first.port);
    await waitFor('restart endpoint', () => endpointsOf(router, 'restart.example.com')?.[0] === first.port);
    await waitFor('dropped route', () => router.routes()['dropped.example.com'] !== undefined);

    await diego.close(0);
    diego = await startDiego(dataDir, port);
    // No subscriber yet: these changes reach the router only through a re-list.
    assert.equal(diego.bbs.lrpEvents.subscriberCount, 0);
    await runInstance(diego, 'app-restart', 0, second.port);
    diego.bbs.removeDesiredLrp('app-dropped');
    await bbs.desireLrp(lrp('app-new', ['new-after-restart.example.com'], 0));

    await waitFor('re-listed', () => endpointsOf(router, 'restart.example.com')?.[0] === second.port);
    assert.equal(nameOf(await send(router, 'restart.example.com')), 'after');
    assert.equal(router.routes()['dropped.example.com'], undefined);
    assert.deepEqual(router.routes()['new-after-restart.example.com'], []);
    assert.ok(logLines.some((l) => l.msg === 'route-table-relisted' && l.reason === 'resubscribed'));

    // And the new stream is followed.
    await runInstance(diego, 'app-restart', 0, first.port);
    await waitFor('event after restart', () => endpointsOf(router, 'restart.example.com')?.[0] === first.port);
  });

  test('the resync interval corrects changes the event stream never delivered', async () => {
    const diego = await startDiego();
    const bbs = clientOf(diego.url);
    // A BBS whose event stream loses every event but keeps the connection.
    const deaf: RouterBbs = {
      desiredLrpSchedulingInfos: (...args) => bbs.desiredLrpSchedulingInfos(...args),
      actualLrps: (...args) => bbs.actualLrps(...args),
      watchInstanceEvents(options) {
        const stream = bbs.watchInstanceEvents(options);
        return {
          subscribed: stream.subscribed,
          get closed() {
            return stream.closed;
          },
          close: () => stream.close(),
          async next() {
            // Bounded: ends when the stream does.
            for (;;) {
              const item = await stream.next();
              if (item.done) return item;
            }
          },
          return: () => stream.return!(),
          [Symbol.asyncIterator]() {
            return this;
          },
        };
      },
    };
    const router = await routerOn(deaf, { resyncIntervalMs: 150 });
    const backend = await startBackend('resynced');
    await bbs.desireLrp(lrp('app-resync', ['resync.example.com'], 1));
    await runInstance(diego, 'app-resync', 0, backend.port);
    await waitFor('resynced endpoint', () => endpointsOf(router, 'resync.example.com')?.[0] === backend.port, 3_000);
    assert.equal(nameOf(await send(router, 'resync.example.com')), 'resynced');
    assert.ok(logLines.some((l) => l.msg === 'route-table-relisted' && l.reason === 'resync'));
  });

  test('the router starts while the BBS is down and fills its table once it is up', async () => {
    const port = await deadPort();
    const dataDir = tempDir();
    const bbs = clientOf(`http://127.0.0.1:${port}`);
    const router = await startRouter({ bbs, logger, relistRetryMs: 50, resyncIntervalMs: 60_000, closeGraceMs: 100 });
    cleanups.push(() => router.close());
    assert.equal((await send(router, 'early.example.com')).status, 404, 'serving before any list');
    const diego = await startDiego(dataDir, port);
    const backend = await startBackend('late');
    await bbs.desireLrp(lrp('app-late', ['late.example.com'], 1));
    await runInstance(diego, 'app-late', 0, backend.port);
    await router.synced;
    await waitFor('late endpoint', () => endpointsOf(router, 'late.example.com')?.[0] === backend.port);
    assert.equal(nameOf(await send(router, 'late.example.com')), 'late');
  });
});
