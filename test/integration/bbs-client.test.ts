// The BBS client against the embedded Diego over the real wire protocol: every route with its
// success and its error mappings, both event streams (including a restart of the server on the
// same port and data directory, and the server cutting off a consumer that stopped reading),
// deadlines, retries, mutual TLS, and the rule that request bodies never reach a log line.
// Servers that misbehave on purpose (never answer, drop mid-answer, answer 503) are written here.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  BbsError,
  BbsInvalidRequestError,
  BbsInvalidResponseError,
  BbsResourceExistsError,
  BbsResourceNotFoundError,
  BbsUnavailableError,
  createBbsClient,
  type BbsClient,
  type BbsClientOptions,
  type BbsEventStream,
} from '../../clients/bbs/index.js';
import { startEmbeddedDiego, type EmbeddedDiego, type EmbeddedDiegoOptions } from '../../embedded/diego/index.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { Error_Type } from '../../gen/diego/bbs/v1/error.js';
import { Task_State, TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import { createLogger, silentLogger } from '../../lib/log.js';

const logger = silentLogger();

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-bbs-client-'));
  tempDirs.push(dir);
  return dir;
}
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const FAST_RETRY = { attempts: 3, delayMs: 20 };
const FAST_RESUBSCRIBE = { backoff: { initialMs: 20, maxMs: 100 } };

async function startDiego(options: Partial<EmbeddedDiegoOptions> = {}): Promise<EmbeddedDiego> {
  const diego = await startEmbeddedDiego({ dataDir: options.dataDir ?? tempDir(), port: 0, logger, ...options });
  cleanups.push(() => diego.close(0));
  return diego;
}

function clientOf(url: string, options: Partial<BbsClientOptions> = {}): BbsClient {
  const client = createBbsClient({ url, logger, timeoutMs: 5_000, retry: FAST_RETRY, resubscribe: FAST_RESUBSCRIBE, ...options });
  cleanups.push(() => client.close());
  return client;
}

function lrp(processGuid: string, fields: Partial<DesiredLRP> = {}): DesiredLRP {
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances: 1,
    memoryMb: 256,
    diskMb: 1024,
    logGuid: `log-${processGuid}`,
    annotation: '1700000000.0',
    action: { runAction: { path: '/tmp/lifecycle/launcher', args: ['app', 'start'], user: 'vcap' } },
    metricTags: { source_id: { static: `source-${processGuid}` } },
    ...fields,
  });
}

function taskDefinition(fields: Partial<TaskDefinition> = {}): TaskDefinition {
  return TaskDefinition.fromPartial({
    rootFs: 'preloaded:cflinuxfs4',
    memoryMb: 128,
    diskMb: 256,
    logGuid: 'app-guid',
    action: { runAction: { path: '/bin/true', user: 'vcap' } },
    ...fields,
  });
}

function bbsError(type: Error_Type, cls: typeof BbsError = BbsError) {
  return (error: unknown) => {
    assert.ok(error instanceof cls, `expected ${cls.name}, got ${String(error)}`);
    assert.equal((error as BbsError).type, type, `type ${(error as BbsError).typeName}`);
    return true;
  };
}

function unavailable(reason: BbsUnavailableError['reason']) {
  return (error: unknown) => {
    assert.ok(error instanceof BbsUnavailableError, `expected BbsUnavailableError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    return true;
  };
}

async function take<E>(stream: AsyncIterator<E>, n: number): Promise<E[]> {
  const out: E[] = [];
  while (out.length < n) {
    const next = await stream.next();
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

/** Resolves with the next value that passes `wanted`, skipping others; bounded by `limit`. */
async function nextMatching<E>(stream: AsyncIterator<E>, wanted: (event: E) => boolean, limit = 50): Promise<E> {
  for (let i = 0; i < limit; i++) {
    const next = await stream.next();
    if (next.done) throw new Error('stream ended');
    if (wanted(next.value)) return next.value;
  }
  throw new Error(`no matching event within ${limit}`);
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Log lines of a debug-level logger, to check what the client writes. */
function capturedLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

// ---- routes ------------------------------------------------------------------------------------------

describe('BBS client routes against the embedded Diego', () => {
  let diego: EmbeddedDiego;
  let bbs: BbsClient;
  before(async () => {
    diego = await startDiego();
    bbs = clientOf(diego.url);
  });

  test('ping', async () => {
    assert.equal(await bbs.ping(), true);
  });

  test('domains: upsert with a TTL and for ever, list, and InvalidRequest for an empty name', async () => {
    await bbs.upsertDomain('cf-apps', 120);
    await bbs.upsertDomain('cf-tasks', 0);
    assert.deepEqual((await bbs.domains()).sort(), ['cf-apps', 'cf-tasks']);
    await assert.rejects(bbs.upsertDomain('', 120), bbsError(Error_Type.TYPE_INVALID_REQUEST, BbsInvalidRequestError));
  });

  test('tasks: desire, get, list with filters, cancel', async () => {
    await bbs.desireTask('task-1', 'cf-tasks', taskDefinition({ annotation: 'one' }));
    await bbs.desireTask('task-2', 'cf-app-staging', taskDefinition());

    const task = await bbs.taskByGuid('task-1');
    assert.equal(task.taskGuid, 'task-1');
    assert.equal(task.domain, 'cf-tasks');
    assert.equal(task.state, Task_State.STATE_PENDING);
    assert.equal(task.taskDefinition?.annotation, 'one');
    assert.match(task.createdAt, /^\d{19}$/, 'nanoseconds, as a decimal string');

    assert.deepEqual((await bbs.tasks()).map((t) => t.taskGuid).sort(), ['task-1', 'task-2']);
    assert.deepEqual((await bbs.tasks({ domain: 'cf-app-staging' })).map((t) => t.taskGuid), ['task-2']);
    assert.deepEqual(await bbs.tasks({ cellId: 'no-such-cell' }), []);

    await bbs.cancelTask('task-1');
    const cancelled = await bbs.taskByGuid('task-1');
    assert.equal(cancelled.state, Task_State.STATE_COMPLETED);
    assert.equal(cancelled.failed, true);
    assert.equal(cancelled.failureReason, 'task was cancelled');
  });

  test('tasks: ResourceExists, ResourceNotFound, InvalidRequest, and other errors keep their type', async () => {
    await bbs.desireTask('task-dup', 'cf-tasks', taskDefinition());
    await assert.rejects(bbs.desireTask('task-dup', 'cf-tasks', taskDefinition()), bbsError(Error_Type.TYPE_RESOURCE_EXISTS, BbsResourceExistsError));
    await assert.rejects(bbs.taskByGuid('no-such-task'), bbsError(Error_Type.TYPE_RESOURCE_NOT_FOUND, BbsResourceNotFoundError));
    await assert.rejects(bbs.cancelTask('no-such-task'), bbsError(Error_Type.TYPE_RESOURCE_NOT_FOUND, BbsResourceNotFoundError));
    await assert.rejects(bbs.desireTask('not a guid!', 'cf-tasks', taskDefinition()), (error: unknown) => {
      assert.ok(error instanceof BbsInvalidRequestError);
      assert.match(error.message, /Invalid field: task_guid/);
      return true;
    });
    await assert.rejects(bbs.desireTask('task-no-action', 'cf-tasks', taskDefinition({ action: undefined })), BbsInvalidRequestError);

    await bbs.cancelTask('task-dup');
    await assert.rejects(bbs.cancelTask('task-dup'), (error: unknown) => {
      assert.ok(error instanceof BbsError);
      assert.ok(!(error instanceof BbsInvalidRequestError) && !(error instanceof BbsResourceNotFoundError));
      assert.equal(error.type, Error_Type.TYPE_INVALID_STATE_TRANSITION);
      return true;
    });
  });

  test('desired LRPs: desire, get, list with filters, scheduling infos, update, remove', async () => {
    await bbs.desireLrp(lrp('app-a', { instances: 2 }));
    await bbs.desireLrp(lrp('app-b', { domain: 'other-domain' }));

    const a = await bbs.desiredLrpByProcessGuid('app-a');
    assert.equal(a.instances, 2);
    assert.equal(a.action?.runAction?.path, '/tmp/lifecycle/launcher');
    assert.ok(a.modificationTag?.epoch, 'the BBS sets the modification tag');

    assert.deepEqual((await bbs.desiredLrps({ domain: 'cf-apps' })).map((l) => l.processGuid).filter((g) => g.startsWith('app-')), ['app-a']);
    assert.deepEqual((await bbs.desiredLrps({ processGuids: ['app-b', 'missing'] })).map((l) => l.processGuid), ['app-b']);
    assert.deepEqual(
      (await bbs.desiredLrps()).map((l) => l.processGuid).filter((g) => g.startsWith('app-')).sort(),
      ['app-a', 'app-b'],
    );

    const infos = await bbs.desiredLrpSchedulingInfos({ domain: 'cf-apps', processGuids: ['app-a'] });
    assert.equal(infos.length, 1);
    assert.deepEqual(infos[0]!.desiredLrpKey, { processGuid: 'app-a', domain: 'cf-apps', logGuid: 'log-app-a' });
    assert.equal(infos[0]!.annotation, '1700000000.0');
    assert.equal(infos[0]!.instances, 2);

    await bbs.updateDesiredLrp('app-a', { instances: 3, annotation: '1700000001.0', metricTags: {} });
    const updated = await bbs.desiredLrpByProcessGuid('app-a');
    assert.equal(updated.instances, 3);
    assert.equal(updated.annotation, '1700000001.0');

    await bbs.removeDesiredLrp('app-b');
    await assert.rejects(bbs.desiredLrpByProcessGuid('app-b'), BbsResourceNotFoundError);
  });

  test('desired LRPs: ResourceExists, ResourceNotFound, InvalidRequest', async () => {
    await bbs.desireLrp(lrp('app-dup'));
    await assert.rejects(bbs.desireLrp(lrp('app-dup')), bbsError(Error_Type.TYPE_RESOURCE_EXISTS, BbsResourceExistsError));
    await assert.rejects(bbs.desiredLrpByProcessGuid('no-such-app'), BbsResourceNotFoundError);
    await assert.rejects(bbs.updateDesiredLrp('no-such-app', { instances: 1, metricTags: {} }), BbsResourceNotFoundError);
    await assert.rejects(bbs.removeDesiredLrp('no-such-app'), BbsResourceNotFoundError);
    await assert.rejects(bbs.desireLrp(lrp('app-no-action', { action: undefined })), (error: unknown) => {
      assert.ok(error instanceof BbsInvalidRequestError);
      assert.match(error.message, /action/);
      return true;
    });
    await assert.rejects(bbs.desireLrp(lrp('app-bad-rootfs', { rootFs: 'no scheme' })), BbsInvalidRequestError);
    await assert.rejects(bbs.updateDesiredLrp('app-dup', { instances: -1, metricTags: {} }), BbsInvalidRequestError);
  });

  test('actual LRPs: list with every filter (index with presence), by process guids, retire', async () => {
    await bbs.desireLrp(lrp('app-x', { instances: 3 }));
    await bbs.desireLrp(lrp('app-y', { instances: 1, domain: 'y-domain' }));

    const all = await bbs.actualLrps({ processGuid: 'app-x' });
    assert.deepEqual(all.map((a) => a.actualLrpKey?.index).sort(), [0, 1, 2]);
    assert.ok(all.every((a) => a.state === 'UNCLAIMED'));

    const zero = await bbs.actualLrps({ processGuid: 'app-x', index: 0 });
    assert.deepEqual(zero.map((a) => a.actualLrpKey?.index), [0], 'index 0 is a filter, not "unset"');
    assert.deepEqual((await bbs.actualLrps({ processGuid: 'app-x', index: 2 })).map((a) => a.actualLrpKey?.index), [2]);
    assert.deepEqual((await bbs.actualLrps({ domain: 'y-domain' })).map((a) => a.actualLrpKey?.processGuid), ['app-y']);
    assert.deepEqual(await bbs.actualLrps({ cellId: 'no-such-cell' }), []);

    const both = await bbs.actualLrpsByProcessGuids(['app-x', 'app-y', 'missing']);
    assert.deepEqual([...new Set(both.map((a) => a.actualLrpKey?.processGuid))].sort(), ['app-x', 'app-y']);
    assert.equal(both.length, 4);

    await bbs.retireActualLrp({ processGuid: 'app-x', index: 1, domain: 'cf-apps' });
    await assert.rejects(bbs.retireActualLrp({ processGuid: 'no-such-app', index: 0, domain: 'cf-apps' }), BbsResourceNotFoundError);
  });

  test('cells', async () => {
    diego.bbs.cells.heartbeat(
      { cellId: 'cell-z1-0', repAddress: 'http://127.0.0.1:1800', zone: 'z1', rootfsProviders: [], placementTags: [], optionalPlacementTags: [], repUrl: '', annotations: {} },
      60_000,
    );
    const cells = await bbs.cells();
    assert.deepEqual(
      cells.map((c) => [c.cellId, c.zone]),
      [['cell-z1-0', 'z1']],
    );
  });

  test('the request id travels as X-Vcap-Request-Id (the BBS uses it as the trace id of events)', async () => {
    const stream = await bbs.subscribeToInstanceEvents();
    cleanups.push(() => stream.close());
    await bbs.desireLrp(lrp('app-traced', { instances: 0 }), { requestId: 'trace-me-42' });
    const created = await nextMatching(stream, (e) => e.type === 'desired_lrp_created');
    assert.equal(created.type === 'desired_lrp_created' && created.event.traceId, 'trace-me-42');
    stream.close();
  });

  test('request bodies never reach a log line, even at debug', async () => {
    const { logger: debugLogger, lines } = capturedLogger();
    const client = clientOf(diego.url, { logger: debugLogger });
    const secretKey = '-----BEGIN RSA PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n-----END RSA PRIVATE KEY-----';
    const routes = { 'diego-ssh': Buffer.from(JSON.stringify({ host_fingerprint: 'aa:bb', private_key: secretKey, container_port: 2222 })) };
    await client.desireLrp(lrp('app-secret', { routes: { routes }, imageUsername: 'user', imagePassword: 'hunter2-password' }));
    await assert.rejects(client.desireLrp(lrp('app-secret', { routes: { routes }, imageUsername: 'user', imagePassword: 'hunter2-password' })), BbsResourceExistsError);
    await client.desireTask('task-secret', 'cf-tasks', taskDefinition({ imageUsername: 'user', imagePassword: 'hunter2-password' }));
    assert.ok(lines.length >= 3, 'the client logged its requests');
    for (const line of lines) {
      assert.ok(!line.includes('SECRET-KEY') && !line.includes('hunter2'), `a secret reached the log: ${line}`);
    }
    assert.ok(lines.some((line) => line.includes('"msg":"bbs-request-completed"')));
  });
});

// ---- events ------------------------------------------------------------------------------------------

describe('BBS event streams against the embedded Diego', () => {
  test('a new LRP gives desired_lrp_created and actual_lrp_instance_created', async () => {
    const diego = await startDiego();
    const bbs = clientOf(diego.url);
    const stream = await bbs.subscribeToInstanceEvents();
    cleanups.push(() => stream.close());
    await bbs.desireLrp(lrp('app-events', { instances: 2 }));
    const events = await take(stream, 3);
    stream.close();
    assert.equal(events[0]!.type, 'desired_lrp_created');
    assert.equal(events[0]!.type === 'desired_lrp_created' && events[0]!.event.desiredLrp?.processGuid, 'app-events');
    const instances = events.slice(1).map((e) => (e.type === 'actual_lrp_instance_created' ? e.event.actualLrp?.actualLrpKey?.index : e.type));
    assert.deepEqual(instances.sort(), [0, 1]);
  });

  test('a cell filter keeps desired LRP events and drops instances of other cells', async () => {
    const diego = await startDiego();
    const bbs = clientOf(diego.url);
    const stream = await bbs.subscribeToInstanceEvents({ cellId: 'cell-elsewhere' });
    cleanups.push(() => stream.close());
    await bbs.desireLrp(lrp('app-f1'));
    await bbs.desireLrp(lrp('app-f2'));
    const events = await take(stream, 2);
    stream.close();
    assert.deepEqual(
      events.map((e) => (e.type === 'desired_lrp_created' ? e.event.desiredLrp?.processGuid : e.type)),
      ['app-f1', 'app-f2'],
    );
  });

  test('a cancelled task gives task_changed', async () => {
    const diego = await startDiego();
    const bbs = clientOf(diego.url);
    const stream = await bbs.subscribeToTaskEvents();
    cleanups.push(() => stream.close());
    await bbs.desireTask('task-events', 'cf-tasks', taskDefinition());
    await bbs.cancelTask('task-events');
    const [created, changed] = await take(stream, 2);
    stream.close();
    assert.equal(created!.type === 'task_created' && created!.event.task?.taskGuid, 'task-events');
    assert.equal(changed!.type, 'task_changed');
    if (changed!.type !== 'task_changed') return;
    assert.equal(changed!.event.before?.state, Task_State.STATE_PENDING);
    assert.equal(changed!.event.after?.state, Task_State.STATE_COMPLETED);
    assert.equal(changed!.event.after?.failureReason, 'task was cancelled');
  });

  test('the watch stream reconnects after the server restarts on the same port and data dir', async () => {
    const dataDir = tempDir();
    let diego = await startDiego({ dataDir });
    const port = diego.port;
    const bbs = clientOf(diego.url);
    const stream = bbs.watchInstanceEvents();
    cleanups.push(() => stream.close());
    await stream.subscribed;
    await bbs.desireLrp(lrp('before-restart', { instances: 0 }));
    const first = await stream.next();
    assert.equal(!first.done && first.value.type === 'desired_lrp_created' && first.value.event.desiredLrp?.processGuid, 'before-restart');

    await diego.close(0);
    const pending = stream.next();
    await new Promise((resolve) => setTimeout(resolve, 100));
    diego = await startDiego({ dataDir, port });

    assert.deepEqual((await pending).value, { type: 'resubscribed' });
    await bbs.desireLrp(lrp('after-restart', { instances: 0 }));
    const next = await stream.next();
    assert.equal(!next.done && next.value.type === 'desired_lrp_created' && next.value.event.desiredLrp?.processGuid, 'after-restart');
    assert.equal((await bbs.desiredLrpByProcessGuid('before-restart')).processGuid, 'before-restart', 'state survived the restart');
    stream.close();
  });

  test('a consumer that stops reading is cut off by the server, and the stream says so', async () => {
    const diego = await startDiego({ eventBufferSize: 8 });
    const bbs = clientOf(diego.url, { timeoutMs: 20_000 });
    const stream: BbsEventStream<unknown> = await bbs.subscribeToInstanceEvents();
    cleanups.push(() => stream.close());
    // Events large enough that the socket buffers on both sides fill long before all are sent.
    const big = 'x'.repeat(512 * 1024);
    const desired = 60;
    for (let i = 0; i < desired; i++) {
      await bbs.desireLrp(lrp(`app-slow-${i}`, { instances: 0, environmentVariables: [{ name: 'BIG', value: big }] }));
    }
    let received = 0;
    const outcome = await (async () => {
      for (let i = 0; i <= desired; i++) {
        try {
          const next = await stream.next();
          if (next.done) return 'done';
          received++;
        } catch (error) {
          return error;
        }
      }
      return 'not cut off';
    })();
    assert.ok(outcome instanceof BbsUnavailableError && outcome.reason === 'stream-closed', `got ${String(outcome)}`);
    assert.ok(received < desired, `received ${received} of ${desired} before the cut`);
  });
});

// ---- deadlines, retries, misbehaving servers -------------------------------------------------------

describe('deadlines and retries', () => {
  /** A raw server whose connections get `behave`; counts connections. */
  async function rawServer(behave: (socket: Socket) => void): Promise<{ url: string; connections: () => number }> {
    let connections = 0;
    const server: NetServer = createNetServer((socket) => {
      connections++;
      socket.on('error', () => undefined);
      behave(socket);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => {
      server.close();
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
  }

  /** An HTTP server answering every request with `status` and `headers`. */
  async function statusServer(status: number, headers: Record<string, string> = {}): Promise<string> {
    const server: HttpServer = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(status, { 'Content-Length': '0', ...headers }).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => {
      server.closeAllConnections();
      server.close();
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  test('a server that never answers: Unavailable (timeout) within the deadline, not retried', async () => {
    const server = await rawServer(() => undefined);
    const bbs = clientOf(server.url, { timeoutMs: 150 });
    const started = Date.now();
    await assert.rejects(bbs.desiredLrpSchedulingInfos({ domain: 'cf-apps' }), unavailable('timeout'));
    assert.ok(Date.now() - started < 2_000, 'did not hang past the deadline');
    assert.equal(server.connections(), 1);
  });

  test('a per-call deadline overrides the client default', async () => {
    const server = await rawServer(() => undefined);
    const bbs = clientOf(server.url, { timeoutMs: 60_000 });
    const started = Date.now();
    await assert.rejects(bbs.ping({ timeoutMs: 100 }), unavailable('timeout'));
    assert.ok(Date.now() - started < 2_000);
  });

  test('an event subscription that is never answered: Unavailable (timeout)', async () => {
    const server = await rawServer(() => undefined);
    const bbs = clientOf(server.url, { timeoutMs: 100 });
    await assert.rejects(bbs.subscribeToInstanceEvents(), unavailable('timeout'));
  });

  test('connection refused, then the server comes up: retried and succeeds', async () => {
    const port = await freePort();
    const { logger: debugLogger, lines } = capturedLogger();
    const bbs = clientOf(`http://127.0.0.1:${port}`, { logger: debugLogger, retry: { attempts: 3, delayMs: 1_000 } });
    const answer = bbs.ping();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await startDiego({ port });
    assert.equal(await answer, true);
    const retries = lines.filter((line) => line.includes('"msg":"retrying-bbs-request"'));
    assert.equal(retries.length, 1, 'one refused attempt, then success');
    assert.match(retries[0]!, /ECONNREFUSED/);
  });

  test('nothing listening: three attempts, then Unavailable (transport)', async () => {
    const port = await freePort();
    const { logger: debugLogger, lines } = capturedLogger();
    const bbs = clientOf(`http://127.0.0.1:${port}`, { logger: debugLogger, retry: { attempts: 3, delayMs: 50 } });
    await assert.rejects(bbs.ping(), (error: unknown) => unavailable('transport')(error) && /after 3 attempts/.test((error as Error).message));
    assert.equal(lines.filter((line) => line.includes('"msg":"retrying-bbs-request"')).length, 2);
    assert.equal(lines.filter((line) => line.includes('"msg":"bbs-request-failed"')).length, 1);
  });

  test('a connection dropped before any answer byte is retried', async () => {
    const server = await rawServer((socket) => socket.once('data', () => socket.destroy()));
    const bbs = clientOf(server.url);
    await assert.rejects(bbs.desireTask('t', 'd', taskDefinition()), unavailable('transport'));
    assert.equal(server.connections(), 3);
  });

  test('a connection dropped in the middle of the answer is not retried', async () => {
    const server = await rawServer((socket) =>
      socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\nabc')),
    );
    const bbs = clientOf(server.url);
    await assert.rejects(bbs.desireTask('t', 'd', taskDefinition()), unavailable('transport'));
    assert.equal(server.connections(), 1);
  });

  test('503 (migrations not finished) is Unavailable; other statuses are InvalidResponse; a router error is RouterError', async () => {
    const migrating = clientOf(await statusServer(503));
    await assert.rejects(migrating.ping(), unavailable('not-serving'));
    const notFound = clientOf(await statusServer(404));
    await assert.rejects(notFound.tasks(), (error: unknown) => error instanceof BbsInvalidResponseError && error.status === 404 && error.type === Error_Type.TYPE_INVALID_RESPONSE);
    const routed = clientOf(await statusServer(502, { 'X-Cf-Routererror': 'unknown_route' }));
    await assert.rejects(routed.tasks(), bbsError(Error_Type.TYPE_ROUTER_ERROR));
  });

  test('a 200 answer that is not protobuf is InvalidProtobufMessage', async () => {
    const server: HttpServer = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf' }).end(Buffer.from([0x12, 0x40, 0x01]));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => server.close());
    const bbs = clientOf(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await assert.rejects(bbs.actualLrps(), bbsError(Error_Type.TYPE_INVALID_PROTOBUF_MESSAGE));
  });

  test("the caller's signal cancels a call with the signal's reason", async () => {
    const server = await rawServer(() => undefined);
    const bbs = clientOf(server.url);
    const controller = new AbortController();
    const call = bbs.ping({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutting down')), 20);
    await assert.rejects(call, /shutting down/);
  });
});

// ---- mutual TLS --------------------------------------------------------------------------------------

describe('BBS client over mutual TLS', () => {
  let certs: { ca: string; clientCert: string; clientKey: string; serverCert: string; serverKey: string };
  let diego: EmbeddedDiego;

  before(async () => {
    const dir = tempDir();
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=ccbridge-test-ca', '-days', '1');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const name of ['server', 'client']) {
      openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      const extensions = name === 'server' ? ['-extfile', 'server.ext'] : [];
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...extensions);
    }
    certs = {
      ca: join(dir, 'ca.crt'),
      clientCert: join(dir, 'client.crt'),
      clientKey: join(dir, 'client.key'),
      serverCert: join(dir, 'server.crt'),
      serverKey: join(dir, 'server.key'),
    };
    diego = await startDiego({ tls: { cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey), ca: readFileSync(certs.ca) } });
  });

  test('routes and event streams with a client certificate (files and PEM text both accepted)', async () => {
    assert.match(diego.url, /^https:/);
    const bbs = clientOf(diego.url, { tls: { ca: certs.ca, cert: certs.clientCert, key: readFileSync(certs.clientKey, 'utf8') } });
    assert.equal(await bbs.ping(), true);
    const stream = await bbs.subscribeToInstanceEvents();
    cleanups.push(() => stream.close());
    await bbs.desireLrp(lrp('app-tls', { instances: 0 }));
    const [event] = await take(stream, 1);
    stream.close();
    assert.equal(event!.type === 'desired_lrp_created' && event!.event.desiredLrp?.processGuid, 'app-tls');
  });

  test('without a client certificate the BBS cannot be used', async () => {
    const bbs = clientOf(diego.url, { tls: { ca: certs.ca }, retry: { attempts: 1, delayMs: 0 } });
    await assert.rejects(bbs.ping(), BbsUnavailableError);
    await assert.rejects(bbs.subscribeToInstanceEvents(), BbsUnavailableError);
  });

  test('TLS options with an http URL, or an unreadable file, are refused at start-up', () => {
    assert.throws(() => createBbsClient({ url: 'http://127.0.0.1:1', logger, tls: { ca: certs.ca } }), /plain-http/);
    assert.throws(() => createBbsClient({ url: 'https://127.0.0.1:1', logger, tls: { ca: '/no/such/ca.crt' } }), /cannot read the BBS CA file/);
  });
});
