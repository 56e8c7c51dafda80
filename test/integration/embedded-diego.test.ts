// The embedded Diego through its wire protocol only: a tiny raw BBS client (fetch + the generated
// codecs, raw sockets for event streams) against a real server on 127.0.0.1:0.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import Database from 'better-sqlite3';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import { ActualLRP_Presence, type ActualLRPKey } from '../../gen/diego/bbs/v1/actual_lrp.js';
import {
  ActualLRPLifecycleResponse,
  ActualLRPsByProcessGuidsRequest,
  ActualLRPsByProcessGuidsResponse,
  ActualLRPsRequest,
  ActualLRPsResponse,
  RetireActualLRPRequest,
} from '../../gen/diego/bbs/v1/actual_lrp_requests.js';
import { CellPresence, CellsResponse } from '../../gen/diego/bbs/v1/cells.js';
import {
  ImageLayer_DigestAlgorithm,
  ImageLayer_MediaType,
  ImageLayer_Type,
  type ImageLayer,
} from '../../gen/diego/bbs/v1/container.js';
import { DesiredLRP, DesiredLRPUpdate } from '../../gen/diego/bbs/v1/desired_lrp.js';
import {
  DesiredLRPByProcessGuidRequest,
  DesiredLRPLifecycleResponse,
  DesiredLRPResponse,
  DesiredLRPSchedulingInfoByProcessGuidResponse,
  DesiredLRPSchedulingInfosResponse,
  DesiredLRPsRequest,
  DesiredLRPsResponse,
  DesireLRPRequest,
  RemoveDesiredLRPRequest,
  UpdateDesiredLRPRequest,
} from '../../gen/diego/bbs/v1/desired_lrp_requests.js';
import { DomainsResponse, UpsertDomainRequest, UpsertDomainResponse } from '../../gen/diego/bbs/v1/domain.js';
import { Error_Type, type Error as BbsError } from '../../gen/diego/bbs/v1/error.js';
import {
  ActualLRPInstanceChangedEvent,
  ActualLRPInstanceCreatedEvent,
  ActualLRPInstanceRemovedEvent,
  DesiredLRPChangedEvent,
  DesiredLRPCreatedEvent,
  DesiredLRPRemovedEvent,
  EventsByCellId,
  TaskChangedEvent,
  TaskCreatedEvent,
  TaskRemovedEvent,
} from '../../gen/diego/bbs/v1/events.js';
import { PingResponse } from '../../gen/diego/bbs/v1/ping.js';
import { Task_State, TaskDefinition, type Task } from '../../gen/diego/bbs/v1/task.js';
import {
  DesireTaskRequest,
  TaskByGuidRequest,
  TaskGuidRequest,
  TaskLifecycleResponse,
  TaskResponse,
  TasksRequest,
  TasksResponse,
} from '../../gen/diego/bbs/v1/task_requests.js';
import {
  ActualLrpState,
  DIEGO_DATABASE_FILE,
  DIEGO_SCHEMA_VERSION,
  manualClock,
  startEmbeddedDiego,
  type DiegoPorts,
  type EmbeddedDiego,
  type EmbeddedDiegoOptions,
  type ManualClock,
} from '../../embedded/diego/index.js';
import { createLogger, silentLogger } from '../../lib/log.js';

const logger = silentLogger();

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-diego-'));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 3_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > giveUpAt) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ------------------------------------------------------------------ the raw client

interface Decoder<T> {
  decode(input: Uint8Array): T;
}

const EMPTY = new Uint8Array(0);

/** POSTs protobuf bytes to a route and returns the raw response bytes (asserting 200 + type). */
async function postRaw(url: string, path: string, body: Uint8Array, requestId = 'test-request-id'): Promise<Uint8Array> {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'application/x-protobuf', 'X-Vcap-Request-Id': requestId },
  });
  assert.equal(response.status, 200, `${path} answered ${response.status}`);
  assert.equal(response.headers.get('content-type'), 'application/x-protobuf');
  return new Uint8Array(await response.arrayBuffer());
}

async function call<T>(url: string, path: string, body: Uint8Array, decoder: Decoder<T>, requestId?: string): Promise<T> {
  return decoder.decode(await postRaw(url, path, body, requestId));
}

/** The in-band error of a lifecycle route (every such response is just `Error error = 1`). */
async function errorOf(url: string, path: string, body: Uint8Array, requestId?: string): Promise<BbsError | undefined> {
  return (await call(url, path, body, TaskLifecycleResponse, requestId)).error;
}

function assertBbsError(error: BbsError | undefined, type: Error_Type, message?: string | RegExp): void {
  assert.ok(error !== undefined, `expected error ${Error_Type[type]}, got success`);
  assert.equal(Error_Type[error.type], Error_Type[type], `error message: ${error.message}`);
  if (typeof message === 'string') assert.equal(error.message, message);
  else if (message !== undefined) assert.match(error.message, message);
}

const NOT_FOUND = 'the requested resource could not be found';
const EXISTS = 'the requested resource already exists';
const UNDECODABLE = 'the request received is invalid';
/** Bytes no protobuf message decodes: a length-delimited field 1 claiming 127 bytes that are not there. */
const GARBAGE = Uint8Array.from([0x0a, 0x7f, 0x01]);

// ------------------------------------------------------------------ fixtures

const run = (path: string): Action => Action.fromPartial({ runAction: { path, user: 'vcap' } });

function desiredLrp(processGuid: string, overrides: Partial<DesiredLRP> = {}): DesiredLRP {
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'cf-apps',
    rootFs: 'preloaded:cflinuxfs4',
    instances: 2,
    memoryMb: 256,
    diskMb: 1024,
    logGuid: `log-${processGuid}`,
    annotation: '1700000000.0',
    action: run('/tmp/lifecycle/launcher'),
    ports: [8080],
    routes: { routes: { 'cf-router': Buffer.from('[{"hostnames":["a.example.com"],"port":8080}]') } },
    metricTags: { source_id: { static: `app-${processGuid}` } },
    placementTags: ['segment-a'],
    volumeMounts: [{ driver: 'nfs', containerDir: '/data', mode: 'rw', shared: { volumeId: 'v1', mountConfig: '' } }],
    ...overrides,
  });
}

function taskDefinition(overrides: Partial<TaskDefinition> = {}): TaskDefinition {
  return TaskDefinition.fromPartial({
    rootFs: 'preloaded:cflinuxfs4',
    action: run('/tmp/lifecycle/builder'),
    memoryMb: 1024,
    diskMb: 4096,
    logGuid: 'app-guid',
    resultFile: '/tmp/result.json',
    ...overrides,
  });
}

function desireTaskBody(taskGuid: string, domain = 'cf-app-staging', definition = taskDefinition()): Uint8Array {
  return DesireTaskRequest.encode({ taskGuid, domain, taskDefinition: definition }).finish();
}

const desireLrpBody = (lrp: DesiredLRP) => DesireLRPRequest.encode({ desiredLrp: lrp }).finish();
const byProcessGuid = (processGuid: string) => DesiredLRPByProcessGuidRequest.encode({ processGuid }).finish();
const byTaskGuid = (taskGuid: string) => TaskGuidRequest.encode({ taskGuid }).finish();
const updateBody = (processGuid: string, update: Partial<DesiredLRPUpdate>) =>
  UpdateDesiredLRPRequest.encode({ processGuid, update: { metricTags: {}, ...update } }).finish();

const imageLayers: ImageLayer[] = [
  {
    name: 'buildpack',
    url: 'https://blobs.example.com/buildpack.tgz',
    destinationPath: '/tmp/buildpacks/1',
    layerType: ImageLayer_Type.TYPE_SHARED,
    mediaType: ImageLayer_MediaType.MEDIA_TYPE_TGZ,
    digestAlgorithm: ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_SHA256,
    digestValue: 'abc123',
  },
  {
    name: 'lifecycle',
    url: 'https://blobs.example.com/lifecycle.tgz',
    destinationPath: '/tmp/lifecycle',
    layerType: ImageLayer_Type.TYPE_SHARED,
    mediaType: ImageLayer_MediaType.MEDIA_TYPE_TGZ,
    digestAlgorithm: ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_INVALID,
    digestValue: '',
  },
  {
    name: 'droplet',
    url: 'https://blobs.example.com/droplet.tgz',
    destinationPath: '/home/vcap',
    layerType: ImageLayer_Type.TYPE_EXCLUSIVE,
    mediaType: ImageLayer_MediaType.MEDIA_TYPE_TGZ,
    digestAlgorithm: ImageLayer_DigestAlgorithm.DIGEST_ALGORITHM_SHA512,
    digestValue: 'def456',
  },
];

const existingCachedDependency = {
  name: 'old-style',
  from: 'https://blobs.example.com/old.tgz',
  to: '/tmp/old',
  cacheKey: 'old-key',
  logSource: '',
  checksumAlgorithm: '',
  checksumValue: '',
};

/** What the BBS's downgrade makes of imageLayers for an r2 reader. */
const expectedR2CachedDependencies = [
  {
    name: 'buildpack',
    from: 'https://blobs.example.com/buildpack.tgz',
    to: '/tmp/buildpacks/1',
    cacheKey: 'sha256:abc123',
    logSource: '',
    checksumAlgorithm: 'sha256',
    checksumValue: 'abc123',
  },
  {
    name: 'lifecycle',
    from: 'https://blobs.example.com/lifecycle.tgz',
    to: '/tmp/lifecycle',
    cacheKey: 'https://blobs.example.com/lifecycle.tgz',
    logSource: '',
    checksumAlgorithm: '',
    checksumValue: '',
  },
  existingCachedDependency,
];

const expectedDropletDownload = {
  artifact: 'droplet',
  from: 'https://blobs.example.com/droplet.tgz',
  to: '/home/vcap',
  cacheKey: 'sha512:def456',
  logSource: '',
  user: 'vcap',
  checksumAlgorithm: 'sha512',
  checksumValue: 'def456',
};

// ------------------------------------------------------------------ raw event streams

/**
 * An event stream read from a raw socket, chunk by chunk, checking the BBS's framing literally:
 * `<hex>;\r\n<frame>\r\n` per event and `0\r\n\r\n` at the end.
 */
class RawEventStream {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private waiters: (() => void)[] = [];
  head = '';

  private constructor(readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, data]);
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private async waitForData(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for stream bytes')), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  static async open(url: string, path: string, body: Uint8Array, requestId = 'stream-request'): Promise<RawEventStream> {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const stream = new RawEventStream(socket);
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/x-protobuf\r\n` +
        `X-Vcap-Request-Id: ${requestId}\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    socket.write(body);
    for (;;) {
      const end = stream.buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        stream.head = stream.buffer.subarray(0, end + 4).toString('latin1');
        stream.buffer = stream.buffer.subarray(end + 4);
        return stream;
      }
      if (stream.ended) throw new Error('stream closed before its head');
      await stream.waitForData(3_000);
    }
  }

  /** The next chunk's payload as text, or 'end' for the final zero-size chunk. */
  async nextChunk(timeoutMs = 3_000): Promise<string | 'end'> {
    for (;;) {
      const lineEnd = this.buffer.indexOf('\r\n');
      if (lineEnd >= 0) {
        const sizeLine = this.buffer.subarray(0, lineEnd).toString('latin1');
        if (sizeLine === '0') {
          if (this.buffer.length >= lineEnd + 4) {
            assert.equal(this.buffer.subarray(lineEnd, lineEnd + 4).toString('latin1'), '\r\n\r\n');
            this.buffer = this.buffer.subarray(lineEnd + 4);
            return 'end';
          }
        } else {
          // The empty chunk extension, byte for byte: the size line ends in ';'.
          assert.match(sizeLine, /^[0-9a-f]+;$/, `chunk size line ${JSON.stringify(sizeLine)}`);
          const size = parseInt(sizeLine.slice(0, -1), 16);
          const start = lineEnd + 2;
          if (this.buffer.length >= start + size + 2) {
            const payload = this.buffer.subarray(start, start + size).toString('latin1');
            assert.equal(this.buffer.subarray(start + size, start + size + 2).toString('latin1'), '\r\n');
            this.buffer = this.buffer.subarray(start + size + 2);
            return payload;
          }
        }
      }
      if (this.ended) throw new Error('stream closed mid-chunk');
      await this.waitForData(timeoutMs);
    }
  }

  async nextEvent(timeoutMs?: number): Promise<{ id: number; name: string; data: Buffer }> {
    const chunk = await this.nextChunk(timeoutMs);
    assert.notEqual(chunk, 'end', 'stream ended where an event was expected');
    const match = /^id: (\d+)\nevent: ([a-z_]+)\ndata: ([A-Za-z0-9+/=]*)\n\n$/.exec(chunk as string);
    assert.ok(match, `frame ${JSON.stringify(chunk)}`);
    return { id: Number(match[1]), name: match[2]!, data: Buffer.from(match[3]!, 'base64') };
  }

  async closed(timeoutMs = 3_000): Promise<void> {
    const giveUpAt = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > giveUpAt) throw new Error('stream did not close');
      await this.waitForData(timeoutMs).catch(() => {});
    }
  }

  close() {
    this.socket.destroy();
  }
}

// ------------------------------------------------------------------ servers

interface Harness {
  diego: EmbeddedDiego;
  url: string;
  dataDir: string;
  clock: ManualClock;
}

async function startDiego(options: Partial<EmbeddedDiegoOptions> = {}): Promise<Harness> {
  const dataDir = options.dataDir ?? tempDir();
  const clock = (options.clock as ManualClock | undefined) ?? manualClock(Date.UTC(2026, 0, 1));
  const diego = await startEmbeddedDiego({ logger, ...options, dataDir, clock, port: 0 });
  return { diego, url: diego.url, dataDir, clock };
}

// ================================================================== tests

describe('embedded Diego: wire protocol', () => {
  let h: Harness;
  before(async () => {
    h = await startDiego();
  });
  after(() => h.diego.close());

  test('ping answers PingResponse{available: true}', async () => {
    assert.deepEqual(await call(h.url, '/v1/ping', EMPTY, PingResponse), { available: true });
  });

  test('an unknown path, or a route asked with GET, is 404', async () => {
    assert.equal((await fetch(`${h.url}/v1/nope`, { method: 'POST', body: EMPTY })).status, 404);
    assert.equal((await fetch(`${h.url}/v1/ping`)).status, 404);
    assert.equal((await fetch(`${h.url}/v1/events`)).status, 404);
  });

  test('a body that does not decode is InvalidRequest "the request received is invalid" on every route that reads one', async () => {
    const routes = [
      '/v1/domains/upsert',
      '/v1/tasks/desire.r2',
      '/v1/tasks/cancel',
      '/v1/tasks/get_by_task_guid.r3',
      '/v1/tasks/get_by_task_guid.r2',
      '/v1/tasks/list.r3',
      '/v1/tasks/list.r2',
      '/v1/tasks/resolving',
      '/v1/tasks/delete',
      '/v1/desired_lrp/desire.r2',
      '/v1/desired_lrp/update',
      '/v1/desired_lrp/remove',
      '/v1/desired_lrps/get_by_process_guid.r3',
      '/v1/desired_lrps/get_by_process_guid.r2',
      '/v1/desired_lrps/list.r3',
      '/v1/desired_lrps/list.r2',
      '/v1/desired_lrp_scheduling_infos/list',
      '/v1/desired_lrp_scheduling_infos/get_by_process_guid',
      '/v1/desired_lrp_routing_infos/list',
      '/v1/actual_lrps/list',
      '/v1/actual_lrps/list_by_process_guids',
      '/v1/actual_lrps/retire',
    ];
    for (const path of routes) assertBbsError(await errorOf(h.url, path, GARBAGE), Error_Type.TYPE_INVALID_REQUEST, UNDECODABLE);
  });

  test('garbage never crashes the server: random bodies on every route, raw junk on the socket', async () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const paths = [
      '/v1/ping',
      '/v1/domains/upsert',
      '/v1/domains/list',
      '/v1/tasks/desire.r2',
      '/v1/tasks/cancel',
      '/v1/tasks/list.r3',
      '/v1/desired_lrp/desire.r2',
      '/v1/desired_lrp/update',
      '/v1/desired_lrps/list.r2',
      '/v1/actual_lrps/list',
      '/v1/actual_lrps/retire',
      '/v1/cells/list.r1',
    ];
    for (const path of paths) {
      for (let round = 0; round < 15; round++) {
        const body = Uint8Array.from({ length: random() % 200 }, () => random() % 256);
        const response = await fetch(`${h.url}${path}`, { method: 'POST', body });
        assert.equal(response.status, 200, path);
        await response.arrayBuffer();
      }
    }
    // Nesting is bounded: a modest depth is a valid task, an absurd one does not decode.
    const nested = (depth: number) => {
      let action = run('/bin/true');
      for (let level = 0; level < depth; level++) action = Action.fromPartial({ tryAction: { action } });
      return taskDefinition({ action });
    };
    assert.equal(await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('nested', 'd', nested(20))), undefined);
    const deep = await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('deep', 'd', nested(500)));
    assertBbsError(deep, Error_Type.TYPE_INVALID_REQUEST, UNDECODABLE);

    for (const junk of ['\x00\x01\x02garbage\r\n\r\n', 'POST /v1/ping HTTP/1.1\r\nContent-Length: -5\r\n\r\n']) {
      const socket = connect(h.diego.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.resume();
      socket.end(junk);
      await new Promise((resolve) => socket.on('close', resolve));
    }
    assert.deepEqual(await call(h.url, '/v1/ping', EMPTY, PingResponse), { available: true });
  });

  test('X-Vcap-Request-Id reaches the access log as request_id, with path and duration; bodies never do', async () => {
    const lines = new PassThrough();
    const captured: string[] = [];
    lines.on('data', (chunk: Buffer) => captured.push(...chunk.toString().split('\n').filter(Boolean)));
    const logged = await startDiego({ logger: createLogger({ level: 'info', destination: lines }) });
    try {
      const secretLrp = desiredLrp('secret-lrp', {
        imageUsername: 'user',
        imagePassword: 'hunter2-image-password',
        routes: { routes: { 'diego-ssh': Buffer.from('{"host_fingerprint":"x","private_key":"BEGIN-SSH-KEY"}') } },
      });
      assert.equal(await errorOf(logged.url, '/v1/desired_lrp/desire.r2', desireLrpBody(secretLrp), 'req-123'), undefined);
      await waitFor('access log line', () => captured.some((line) => line.includes('req-123')));
      const access = captured.map((line) => JSON.parse(line)).find((line) => line.msg === 'bbs-request' && line.request_id === 'req-123');
      assert.ok(access, 'bbs-request line');
      assert.equal(access.path, '/v1/desired_lrp/desire.r2');
      assert.equal(typeof access.duration_ms, 'number');
      const all = captured.join('\n');
      assert.ok(!all.includes('hunter2-image-password'), 'image password logged');
      assert.ok(!all.includes('BEGIN-SSH-KEY'), 'routes logged');
    } finally {
      await logged.diego.close();
    }
  });
});

describe('embedded Diego: domains', () => {
  let h: Harness;
  before(async () => {
    h = await startDiego();
  });
  after(() => h.diego.close());

  test('upsert with a TTL keeps a domain fresh until the TTL runs out; TTL 0 never expires', async () => {
    const upsert = (domain: string, ttl: number) =>
      call(h.url, '/v1/domains/upsert', UpsertDomainRequest.encode({ domain, ttl }).finish(), UpsertDomainResponse);
    assert.deepEqual(await upsert('cf-apps', 120), { error: undefined });
    assert.deepEqual(await upsert('cf-tasks', 0), { error: undefined });
    const fresh = async () => (await call(h.url, '/v1/domains/list', EMPTY, DomainsResponse)).domains;
    assert.deepEqual(await fresh(), ['cf-apps', 'cf-tasks']);

    h.clock.advance(119_000);
    assert.deepEqual(await fresh(), ['cf-apps', 'cf-tasks']);
    h.clock.advance(1_000);
    assert.deepEqual(await fresh(), ['cf-tasks']);

    await upsert('cf-apps', 120);
    assert.deepEqual(await fresh(), ['cf-apps', 'cf-tasks']);
    h.clock.advance(10 * 365 * 24 * 3600 * 1000);
    assert.deepEqual(await fresh(), ['cf-tasks']);
  });

  test('upsert without a domain is InvalidRequest naming the field', async () => {
    const error = await errorOf(h.url, '/v1/domains/upsert', UpsertDomainRequest.encode({ domain: '', ttl: 5 }).finish());
    assertBbsError(error, Error_Type.TYPE_INVALID_REQUEST, 'Invalid field: domain');
  });
});

describe('embedded Diego: tasks', () => {
  let h: Harness;
  const completed: Task[] = [];
  const cancelledOnCells: string[] = [];
  before(async () => {
    const ports: DiegoPorts = {
      taskCompleted: (task) => completed.push(task),
      cancelTaskOnCell: (cellId, taskGuid) => cancelledOnCells.push(`${cellId}/${taskGuid}`),
    };
    h = await startDiego({ ports });
  });
  after(() => h.diego.close());

  const getTask = async (taskGuid: string, revision: 'r3' | 'r2' = 'r3') =>
    call(h.url, `/v1/tasks/get_by_task_guid.${revision}`, TaskByGuidRequest.encode({ taskGuid }).finish(), TaskResponse);

  test('desire stores a Pending task stamped in nanoseconds; a second desire is ResourceExists', async () => {
    const before = h.clock.nowMs();
    assert.equal(await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('task-1')), undefined);
    const { error, task } = await getTask('task-1');
    assert.equal(error, undefined);
    assert.ok(task);
    assert.equal(task.taskGuid, 'task-1');
    assert.equal(task.domain, 'cf-app-staging');
    assert.equal(task.state, Task_State.STATE_PENDING);
    assert.equal(task.taskDefinition?.resultFile, '/tmp/result.json');
    assert.equal(BigInt(task.createdAt) / 1_000_000n, BigInt(before));
    assert.equal(task.updatedAt, task.createdAt);
    assert.equal(task.firstCompletedAt, '0');

    assertBbsError(await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('task-1')), Error_Type.TYPE_RESOURCE_EXISTS, EXISTS);
  });

  test('a missing task is ResourceNotFound on get (r3 and r2), cancel, resolving and delete', async () => {
    for (const revision of ['r3', 'r2'] as const) {
      assertBbsError((await getTask('no-such-task', revision)).error, Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);
    }
    for (const route of ['cancel', 'resolving', 'delete']) {
      assertBbsError(await errorOf(h.url, `/v1/tasks/${route}`, byTaskGuid('no-such-task')), Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);
    }
  });

  test('validation follows the BBS: task_guid, domain, rootfs, action, annotation size', async () => {
    const cases: { name: string; body: Uint8Array; message: string }[] = [
      { name: 'bad guid', body: desireTaskBody('bad guid!'), message: 'Invalid field: task_guid' },
      { name: 'no domain', body: desireTaskBody('t-nodomain', ''), message: 'Invalid field: domain' },
      {
        name: 'no definition',
        body: DesireTaskRequest.encode({ taskGuid: 't-nodef', domain: 'd', taskDefinition: undefined }).finish(),
        message: 'Invalid field: task_definition',
      },
      { name: 'no rootfs', body: desireTaskBody('t-1', 'd', taskDefinition({ rootFs: '' })), message: 'Invalid field: rootfs' },
      { name: 'rootfs without scheme', body: desireTaskBody('t-1', 'd', taskDefinition({ rootFs: 'cflinuxfs4' })), message: 'Invalid field: rootfs' },
      { name: 'no action', body: desireTaskBody('t-1', 'd', taskDefinition({ action: undefined })), message: 'invalid action type' },
      {
        name: 'run action without path',
        body: desireTaskBody('t-1', 'd', taskDefinition({ action: run('') })),
        message: 'Invalid field: action, Invalid field: path',
      },
      {
        name: 'annotation over 10 KB',
        body: desireTaskBody('t-1', 'd', taskDefinition({ annotation: 'x'.repeat(10 * 1024 + 1) })),
        message: 'Invalid field: annotation',
      },
      {
        name: 'several at once, in the BBS order',
        body: desireTaskBody('', '', taskDefinition({ rootFs: '' })),
        message: 'Invalid field: task_guid, Invalid field: domain, Invalid field: rootfs',
      },
    ];
    for (const { name, body, message } of cases) {
      assertBbsError(await errorOf(h.url, '/v1/tasks/desire.r2', body), Error_Type.TYPE_INVALID_REQUEST, message);
      assert.ok(name);
    }
    assertBbsError(await errorOf(h.url, '/v1/tasks/cancel', byTaskGuid('')), Error_Type.TYPE_INVALID_REQUEST, 'Invalid field: task_guid');
    assertBbsError((await getTask('')).error, Error_Type.TYPE_INVALID_REQUEST, 'Invalid field: task_guid');
  });

  test('list filters by domain and by cell_id', async () => {
    await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('task-list-a', 'cf-tasks'));
    await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('task-list-b', 'cf-tasks'));
    // A cell starts one (the cell routes will do this over HTTP).
    h.diego.bbs.changeTask('task-list-b', (task) => ({ ...task, state: Task_State.STATE_RUNNING, cellId: 'cell-7' }));

    const list = async (domain: string, cellId: string) =>
      (await call(h.url, '/v1/tasks/list.r3', TasksRequest.encode({ domain, cellId }).finish(), TasksResponse)).tasks.map((t) => t.taskGuid);
    assert.deepEqual(await list('cf-tasks', ''), ['task-list-a', 'task-list-b']);
    assert.deepEqual(await list('', 'cell-7'), ['task-list-b']);
    assert.deepEqual(await list('cf-tasks', 'cell-7'), ['task-list-b']);
    assert.deepEqual(await list('nobody', ''), []);
    assert.ok((await list('', '')).length >= 3);
  });

  test('cancel completes the task as failed "task was cancelled", tells its cell and the completion port; only once', async () => {
    h.clock.advance(5_000);
    assert.equal(await errorOf(h.url, '/v1/tasks/cancel', byTaskGuid('task-list-b')), undefined);
    const { task } = await getTask('task-list-b');
    assert.ok(task);
    assert.equal(task.state, Task_State.STATE_COMPLETED);
    assert.equal(task.failed, true);
    assert.equal(task.failureReason, 'task was cancelled');
    assert.equal(task.cellId, '');
    assert.equal(task.firstCompletedAt, task.updatedAt);
    assert.ok(BigInt(task.updatedAt) > BigInt(task.createdAt));
    assert.deepEqual(cancelledOnCells, ['cell-7/task-list-b']);
    assert.deepEqual(completed.map((t) => t.taskGuid), ['task-list-b']);

    assertBbsError(
      await errorOf(h.url, '/v1/tasks/cancel', byTaskGuid('task-list-b')),
      Error_Type.TYPE_INVALID_STATE_TRANSITION,
      'Cannot transition from Completed to Completed',
    );
  });

  test('resolving then delete; both refuse tasks in the wrong state', async () => {
    assertBbsError(
      await errorOf(h.url, '/v1/tasks/resolving', byTaskGuid('task-list-a')),
      Error_Type.TYPE_INVALID_STATE_TRANSITION,
      'Cannot transition from Pending to Resolving',
    );
    assertBbsError(
      await errorOf(h.url, '/v1/tasks/delete', byTaskGuid('task-list-b')),
      Error_Type.TYPE_INVALID_STATE_TRANSITION,
      'Cannot transition from Completed to Resolving',
    );
    assert.equal(await errorOf(h.url, '/v1/tasks/resolving', byTaskGuid('task-list-b')), undefined);
    assert.equal((await getTask('task-list-b')).task?.state, Task_State.STATE_RESOLVING);
    assert.equal(await errorOf(h.url, '/v1/tasks/delete', byTaskGuid('task-list-b')), undefined);
    assertBbsError((await getTask('task-list-b')).error, Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);
  });

  test('.r3 returns image layers; .r2 rewrites them into cached dependencies and downloads before the action', async () => {
    const definition = taskDefinition({ imageLayers, legacyDownloadUser: 'vcap', cachedDependencies: [existingCachedDependency] });
    assert.equal(await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('task-layers', 'cf-tasks', definition)), undefined);

    const r3 = (await getTask('task-layers', 'r3')).task?.taskDefinition;
    assert.deepEqual(r3?.imageLayers, imageLayers);
    assert.deepEqual(r3?.cachedDependencies, [existingCachedDependency]);
    assert.deepEqual(r3?.action, definition.action);

    const r2 = (await getTask('task-layers', 'r2')).task?.taskDefinition;
    assert.deepEqual(r2?.imageLayers, []);
    assert.deepEqual(r2?.cachedDependencies, expectedR2CachedDependencies);
    const serial = r2?.action?.serialAction;
    assert.ok(serial, 'r2 action is serial(parallel(downloads), action)');
    assert.equal(serial.actions.length, 2);
    assert.deepEqual(serial.actions[0]?.parallelAction?.actions.map((a) => a.downloadAction), [expectedDropletDownload]);
    assert.deepEqual(serial.actions[1], definition.action);

    const listed = await call(h.url, '/v1/tasks/list.r2', TasksRequest.encode({ domain: 'cf-tasks', cellId: '' }).finish(), TasksResponse);
    const fromList = listed.tasks.find((t) => t.taskGuid === 'task-layers');
    assert.deepEqual(fromList?.taskDefinition?.cachedDependencies, expectedR2CachedDependencies);
    const listedR3 = await call(h.url, '/v1/tasks/list.r3', TasksRequest.encode({ domain: 'cf-tasks', cellId: '' }).finish(), TasksResponse);
    assert.deepEqual(listedR3.tasks.find((t) => t.taskGuid === 'task-layers')?.taskDefinition?.imageLayers, imageLayers);
  });
});

describe('embedded Diego: desired and actual LRPs', () => {
  let h: Harness;
  const auctions: string[] = [];
  const stopped: string[] = [];
  before(async () => {
    h = await startDiego({
      ports: {
        requestLrpAuctions: (info, indices) => auctions.push(`${info.desiredLrpKey?.processGuid}:${indices.join(',')}`),
        stopLrpInstance: (key, instanceKey) => stopped.push(`${key.processGuid}/${key.index}@${instanceKey.cellId}`),
      },
    });
  });
  after(() => h.diego.close());

  const getLrp = (processGuid: string, revision: 'r3' | 'r2' = 'r3') =>
    call(h.url, `/v1/desired_lrps/get_by_process_guid.${revision}`, byProcessGuid(processGuid), DesiredLRPResponse);
  const listActual = async (filter: Partial<ActualLRPsRequest>) =>
    (
      await call(
        h.url,
        '/v1/actual_lrps/list',
        ActualLRPsRequest.encode({ domain: '', cellId: '', processGuid: '', ...filter }).finish(),
        ActualLRPsResponse,
      )
    ).actualLrps;
  const indicesOf = async (processGuid: string) =>
    (await listActual({ processGuid })).map((lrp) => `${lrp.actualLrpKey?.index}:${lrp.state}`);

  test('desire stores the LRP with a fresh modification tag and creates one UNCLAIMED instance per index', async () => {
    const since = BigInt(h.clock.nowMs()) * 1_000_000n;
    assert.equal(await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('web-1', { instances: 3 }))), undefined);
    const { error, desiredLrp: stored } = await getLrp('web-1');
    assert.equal(error, undefined);
    assert.ok(stored);
    assert.equal(stored.instances, 3);
    assert.equal(stored.modificationTag?.index, 0);
    assert.match(stored.modificationTag?.epoch ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(stored.metricsGuid, 'app-web-1', 'metrics_guid filled from the source_id tag');
    assert.deepEqual(stored.ports, [8080]);

    const actuals = await listActual({ processGuid: 'web-1' });
    assert.deepEqual(actuals.map((lrp) => lrp.actualLrpKey), [0, 1, 2].map((index) => ({ processGuid: 'web-1', index, domain: 'cf-apps' })));
    for (const lrp of actuals) {
      assert.equal(lrp.state, ActualLrpState.UNCLAIMED);
      assert.equal(lrp.presence, ActualLRP_Presence.PRESENCE_ORDINARY);
      assert.deepEqual(lrp.actualLrpInstanceKey, { instanceGuid: '', cellId: '' });
      assert.equal(lrp.crashCount, 0);
      assert.equal(lrp.routable, false);
      assert.ok(BigInt(lrp.since) >= since);
    }
    assert.deepEqual(auctions, ['web-1:0,1,2']);

    assertBbsError(await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('web-1'))), Error_Type.TYPE_RESOURCE_EXISTS, EXISTS);
  });

  test('validation follows the BBS: process_guid, domain, rootfs, instances, action, annotation, routes, metric tags', async () => {
    const cases: { lrp: DesiredLRP; message: string | RegExp }[] = [
      { lrp: desiredLrp('bad/guid'), message: 'Invalid field: process_guid' },
      { lrp: desiredLrp('v-1', { domain: '' }), message: 'Invalid field: domain, Invalid field: domain' },
      { lrp: desiredLrp('v-1', { rootFs: '' }), message: 'Invalid field: rootfs, Invalid field: rootfs' },
      { lrp: desiredLrp('v-1', { instances: -1 }), message: 'Invalid field: instances' },
      { lrp: desiredLrp('v-1', { instances: 2147483647 }), message: 'Invalid field: instances' },
      { lrp: desiredLrp('v-1', { action: undefined }), message: 'invalid action type' },
      { lrp: desiredLrp('v-1', { annotation: 'a'.repeat(10 * 1024 + 1) }), message: 'Invalid field: annotation' },
      {
        lrp: desiredLrp('v-1', { routes: { routes: { 'cf-router': Buffer.alloc(4 * 1024 + 1, 0x20) } } }),
        message: 'Invalid field: routes',
      },
      { lrp: desiredLrp('v-1', { metricTags: {} }), message: 'Invalid field: metric_tags' },
      {
        lrp: desiredLrp('v-1', { metricTags: { source_id: { static: 'x', dynamic: 1 } } }),
        message: 'Invalid field: metric_tags, Invalid field: static, Invalid field: dynamic',
      },
      { lrp: desiredLrp('v-1', { imageUsername: 'user' }), message: 'Invalid field: image_password' },
      {
        lrp: desiredLrp('v-1', { imageLayers: [imageLayers[2]!] }),
        message: 'Invalid field: legacy_download_user',
      },
    ];
    for (const { lrp, message } of cases) {
      assertBbsError(await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(lrp)), Error_Type.TYPE_INVALID_REQUEST, message);
    }
    assertBbsError(
      await errorOf(h.url, '/v1/desired_lrp/desire.r2', DesireLRPRequest.encode({ desiredLrp: undefined }).finish()),
      Error_Type.TYPE_INVALID_REQUEST,
      'Invalid field: desired_lrp',
    );
    assertBbsError(
      await errorOf(h.url, '/v1/desired_lrp/update', updateBody('web-1', { instances: -2 })),
      Error_Type.TYPE_INVALID_REQUEST,
      'Invalid field: instances',
    );
    assertBbsError(
      await errorOf(h.url, '/v1/desired_lrp/update', updateBody('web-1', { instances: 2147483647 })),
      Error_Type.TYPE_INVALID_REQUEST,
      'Invalid field: instances',
    );
    assertBbsError(
      await errorOf(h.url, '/v1/desired_lrp/update', updateBody('web-1', { annotation: 'a'.repeat(10 * 1024 + 1) })),
      Error_Type.TYPE_INVALID_REQUEST,
      'Invalid field: annotation',
    );
    assertBbsError(await errorOf(h.url, '/v1/desired_lrp/update', updateBody('', {})), Error_Type.TYPE_INVALID_REQUEST, 'Invalid field: process_guid');
    assertBbsError(
      await errorOf(h.url, '/v1/desired_lrp/remove', RemoveDesiredLRPRequest.encode({ processGuid: '' }).finish()),
      Error_Type.TYPE_INVALID_REQUEST,
      'Invalid field: process_guid',
    );
    assertBbsError((await getLrp('')).error, Error_Type.TYPE_INVALID_REQUEST, 'Invalid field: process_guid');
    assert.deepEqual(await indicesOf('v-1'), [], 'nothing invalid was stored');
  });

  test('.r3 returns image layers; .r2 rewrites them into cached dependencies and downloads before setup', async () => {
    const setup = run('/tmp/setup');
    const lrp = desiredLrp('layers-1', { imageLayers, legacyDownloadUser: 'vcap', setup, cachedDependencies: [existingCachedDependency], instances: 0 });
    assert.equal(await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(lrp)), undefined);

    const r3 = (await getLrp('layers-1', 'r3')).desiredLrp;
    assert.deepEqual(r3?.imageLayers, imageLayers);
    assert.deepEqual(r3?.cachedDependencies, [existingCachedDependency]);
    assert.deepEqual(r3?.setup, setup);

    const r2 = (await getLrp('layers-1', 'r2')).desiredLrp;
    assert.deepEqual(r2?.imageLayers, []);
    assert.deepEqual(r2?.cachedDependencies, expectedR2CachedDependencies);
    assert.deepEqual(r2?.setup?.serialAction?.actions[0]?.parallelAction?.actions.map((a) => a.downloadAction), [expectedDropletDownload]);
    assert.deepEqual(r2?.setup?.serialAction?.actions[1], setup);
    assert.deepEqual(r2?.action, lrp.action);

    // Without a setup, the downloads alone are the setup.
    const noSetup = desiredLrp('layers-2', { imageLayers, legacyDownloadUser: 'vcap', instances: 0 });
    await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(noSetup));
    const r2NoSetup = (await getLrp('layers-2', 'r2')).desiredLrp;
    assert.deepEqual(r2NoSetup?.setup?.parallelAction?.actions.map((a) => a.downloadAction), [expectedDropletDownload]);

    const listR2 = await call(h.url, '/v1/desired_lrps/list.r2', DesiredLRPsRequest.encode({ domain: '', processGuids: ['layers-1'], appGuids: [] }).finish(), DesiredLRPsResponse);
    assert.deepEqual(listR2.desiredLrps.map((l) => l.cachedDependencies), [expectedR2CachedDependencies]);
    const listR3 = await call(h.url, '/v1/desired_lrps/list.r3', DesiredLRPsRequest.encode({ domain: '', processGuids: ['layers-1'], appGuids: [] }).finish(), DesiredLRPsResponse);
    assert.deepEqual(listR3.desiredLrps.map((l) => l.imageLayers), [imageLayers]);
  });

  test('lists filter by domain and by process guids; scheduling and routing infos are the BBS projections', async () => {
    await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('worker-1', { domain: 'other', instances: 1 })));
    const list = async (path: string, domain: string, processGuids: string[]) =>
      call(h.url, path, DesiredLRPsRequest.encode({ domain, processGuids, appGuids: [] }).finish(), DesiredLRPsResponse);

    assert.deepEqual((await list('/v1/desired_lrps/list.r3', 'other', [])).desiredLrps.map((l) => l.processGuid), ['worker-1']);
    assert.deepEqual(
      (await list('/v1/desired_lrps/list.r3', '', ['worker-1', 'web-1', 'missing'])).desiredLrps.map((l) => l.processGuid).sort(),
      ['web-1', 'worker-1'],
    );
    assert.deepEqual((await list('/v1/desired_lrps/list.r3', 'cf-apps', ['worker-1'])).desiredLrps, []);

    // The list is the stored records framed as `repeated DesiredLRP desired_lrps = 2`: byte for
    // byte what encoding the decoded response gives back.
    const raw = await postRaw(h.url, '/v1/desired_lrps/list.r3', DesiredLRPsRequest.encode({ domain: '', processGuids: [], appGuids: [] }).finish());
    assert.deepEqual(Buffer.from(DesiredLRPsResponse.encode(DesiredLRPsResponse.decode(raw)).finish()), Buffer.from(raw));

    const infos = await call(
      h.url,
      '/v1/desired_lrp_scheduling_infos/list',
      DesiredLRPsRequest.encode({ domain: 'cf-apps', processGuids: [], appGuids: [] }).finish(),
      DesiredLRPSchedulingInfosResponse,
    );
    const web = infos.desiredLrpSchedulingInfos.find((info) => info.desiredLrpKey?.processGuid === 'web-1');
    assert.ok(web);
    assert.deepEqual(web.desiredLrpKey, { processGuid: 'web-1', domain: 'cf-apps', logGuid: 'log-web-1' });
    assert.equal(web.annotation, '1700000000.0');
    assert.equal(web.instances, 3);
    assert.deepEqual(web.desiredLrpResource, { memoryMb: 256, diskMb: 1024, rootFs: 'preloaded:cflinuxfs4', maxPids: 0 });
    assert.deepEqual(Object.keys(web.routes?.routes ?? {}), ['cf-router']);
    assert.deepEqual(web.volumePlacement, { driverNames: ['nfs'] });
    assert.deepEqual(web.placementTags, ['segment-a']);
    assert.equal(infos.desiredLrpSchedulingInfos.some((info) => info.desiredLrpKey?.domain !== 'cf-apps'), false);

    const one = await call(h.url, '/v1/desired_lrp_scheduling_infos/get_by_process_guid', byProcessGuid('web-1'), DesiredLRPSchedulingInfoByProcessGuidResponse);
    assert.deepEqual(one.desiredLrpSchedulingInfo, web);
    const missing = await call(h.url, '/v1/desired_lrp_scheduling_infos/get_by_process_guid', byProcessGuid('nope'), DesiredLRPSchedulingInfoByProcessGuidResponse);
    assertBbsError(missing.error, Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);

    const routing = (await list('/v1/desired_lrp_routing_infos/list', 'cf-apps', ['web-1'])).desiredLrps;
    assert.equal(routing.length, 1);
    const info = routing[0]!;
    assert.equal(info.processGuid, 'web-1');
    assert.equal(info.instances, 3);
    assert.deepEqual(Object.keys(info.routes?.routes ?? {}), ['cf-router']);
    assert.deepEqual(info.metricTags, { source_id: { static: 'app-web-1', dynamic: 0 } });
    assert.equal(info.action, undefined, 'routing info carries no run info');
    assert.equal(info.rootFs, '');
  });

  test('update changes only instances, routes, annotation, metric tags and image credentials, and bumps the modification index', async () => {
    const before = (await getLrp('web-1')).desiredLrp!;
    const update: Partial<DesiredLRPUpdate> = {
      annotation: '1800000000.0',
      routes: { routes: { 'cf-router': Buffer.from('[]'), 'tcp-router': Buffer.from('[{"external_port":1}]') } },
      metricTags: { source_id: { static: 'app-web-1', dynamic: 0 }, instance_id: { static: '', dynamic: 1 } },
      imageUsername: 'registry-user',
      imagePassword: 'registry-password',
    };
    // An update whose bytes also carry fields DesiredLRPUpdate does not have (what a client might
    // send hoping to change disk, memory or privileges): DesiredLRP fields 10, 11, 13 and 16 are
    // unknown to DesiredLRPUpdate and are skipped.
    const smuggled = DesiredLRP.encode(DesiredLRP.fromPartial({ diskMb: 1, memoryMb: 9999, privileged: true, logSource: 'EVIL' })).finish();
    const updateWithUnknownFields = Buffer.concat([DesiredLRPUpdate.encode({ metricTags: {}, ...update }).finish(), smuggled]);
    const withUnknownFields = new BinaryWriter()
      .uint32((1 << 3) | 2)
      .string('web-1')
      .uint32((2 << 3) | 2)
      .bytes(updateWithUnknownFields)
      .finish();
    assert.equal(await errorOf(h.url, '/v1/desired_lrp/update', withUnknownFields), undefined);

    const after = (await getLrp('web-1')).desiredLrp!;
    assert.equal(after.annotation, '1800000000.0');
    assert.deepEqual(Object.keys(after.routes?.routes ?? {}).sort(), ['cf-router', 'tcp-router']);
    assert.deepEqual(after.metricTags, update.metricTags);
    assert.equal(after.imageUsername, 'registry-user');
    assert.equal(after.imagePassword, 'registry-password');
    assert.deepEqual(after.modificationTag, { epoch: before.modificationTag!.epoch, index: 1 });
    const unchanged = (lrp: DesiredLRP) => ({
      ...lrp,
      annotation: '',
      routes: undefined,
      metricTags: {},
      imageUsername: '',
      imagePassword: '',
      modificationTag: undefined,
    });
    assert.deepEqual(unchanged(after), unchanged(before), 'nothing else changed');

    // An empty update still counts as a change.
    assert.equal(await errorOf(h.url, '/v1/desired_lrp/update', updateBody('web-1', {})), undefined);
    assert.equal((await getLrp('web-1')).desiredLrp?.modificationTag?.index, 2);
    assertBbsError(await errorOf(h.url, '/v1/desired_lrp/update', updateBody('nope', { instances: 1 })), Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);
  });

  test('scaling up creates UNCLAIMED instances for the new indices; scaling down removes the extra ones', async () => {
    auctions.length = 0;
    assert.equal(await errorOf(h.url, '/v1/desired_lrp/update', updateBody('web-1', { instances: 5 })), undefined);
    assert.deepEqual(await indicesOf('web-1'), ['0:UNCLAIMED', '1:UNCLAIMED', '2:UNCLAIMED', '3:UNCLAIMED', '4:UNCLAIMED']);
    assert.deepEqual(auctions, ['web-1:3,4']);

    // Index 0 is running on a cell: scaling to 0 asks that cell to stop it, and removes the others.
    h.diego.bbs.cells.heartbeat(CellPresence.fromPartial({ cellId: 'cell-1', repAddress: 'http://127.0.0.1:1' }), 60_000);
    h.diego.bbs.changeActualLrp('web-1', 0, ActualLRP_Presence.PRESENCE_ORDINARY, (lrp) => ({
      ...lrp,
      state: ActualLrpState.RUNNING,
      actualLrpInstanceKey: { instanceGuid: 'ig-0', cellId: 'cell-1' },
    }));
    assert.equal(await errorOf(h.url, '/v1/desired_lrp/update', updateBody('web-1', { instances: 2 })), undefined);
    assert.deepEqual(await indicesOf('web-1'), ['0:RUNNING', '1:UNCLAIMED']);
    assert.deepEqual(stopped, []);
    assert.equal((await getLrp('web-1')).desiredLrp?.instances, 2);

    assert.equal(await errorOf(h.url, '/v1/desired_lrp/update', updateBody('web-1', { instances: 0 })), undefined);
    assert.deepEqual(await indicesOf('web-1'), ['0:RUNNING']);
    assert.deepEqual(stopped, ['web-1/0@cell-1']);
  });

  test('actual LRP lists filter by domain, cell, process guid and index (0 included); list_by_process_guids takes many guids at once', async () => {
    assert.deepEqual((await listActual({ cellId: 'cell-1' })).map((l) => l.actualLrpKey?.processGuid), ['web-1']);
    assert.deepEqual((await listActual({ domain: 'other' })).map((l) => l.actualLrpKey?.processGuid), ['worker-1']);
    assert.deepEqual((await listActual({ processGuid: 'web-1', index: 0 })).length, 1);
    assert.deepEqual((await listActual({ processGuid: 'web-1', index: 1 })).length, 0);
    assert.ok((await listActual({})).length >= 2);

    await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('web-2', { instances: 2 })));
    const many = await call(
      h.url,
      '/v1/actual_lrps/list_by_process_guids',
      ActualLRPsByProcessGuidsRequest.encode({ processGuids: ['web-2', 'worker-1', 'missing'] }).finish(),
      ActualLRPsByProcessGuidsResponse,
    );
    assert.deepEqual(
      many.actualLrps.map((l) => `${l.actualLrpKey?.processGuid}/${l.actualLrpKey?.index}`),
      ['web-2/0', 'web-2/1', 'worker-1/0'],
    );
  });

  test('an evacuating copy shares its index with the ordinary record; scaling to zero leaves it to its cell', async () => {
    await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('evac-1', { instances: 1 })));
    const ordinary = h.diego.bbs.actualLrp('evac-1', 0);
    assert.ok(ordinary);
    h.diego.bbs.createActualLrp({
      ...ordinary,
      state: ActualLrpState.RUNNING,
      presence: ActualLRP_Presence.PRESENCE_EVACUATING,
      actualLrpInstanceKey: { instanceGuid: 'ig-old', cellId: 'cell-draining' },
    });
    assert.throws(() => h.diego.bbs.createActualLrp(ordinary), /already exists/);
    const records = await listActual({ processGuid: 'evac-1', index: 0 });
    assert.deepEqual(records.map((lrp) => [lrp.presence, lrp.state]), [
      [ActualLRP_Presence.PRESENCE_ORDINARY, 'UNCLAIMED'],
      [ActualLRP_Presence.PRESENCE_EVACUATING, 'RUNNING'],
    ]);
    await errorOf(h.url, '/v1/desired_lrp/update', updateBody('evac-1', { instances: 0 }));
    assert.deepEqual((await listActual({ processGuid: 'evac-1' })).map((lrp) => lrp.presence), [ActualLRP_Presence.PRESENCE_EVACUATING]);
  });

  test('retire removes an unclaimed instance, asks the cell to stop a running one, and is ResourceNotFound for a missing one', async () => {
    const retire = (key: ActualLRPKey) =>
      call(h.url, '/v1/actual_lrps/retire', RetireActualLRPRequest.encode({ actualLrpKey: key }).finish(), ActualLRPLifecycleResponse);
    assert.deepEqual(await retire({ processGuid: 'web-2', index: 1, domain: 'cf-apps' }), { error: undefined });
    assert.deepEqual(await indicesOf('web-2'), ['0:UNCLAIMED']);

    stopped.length = 0;
    assert.deepEqual(await retire({ processGuid: 'web-1', index: 0, domain: 'cf-apps' }), { error: undefined });
    assert.deepEqual(stopped, ['web-1/0@cell-1']);
    assert.deepEqual(await indicesOf('web-1'), ['0:RUNNING'], 'the cell removes it once stopped');

    assertBbsError((await retire({ processGuid: 'web-2', index: 7, domain: 'cf-apps' })).error, Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);
    const invalid = await call(h.url, '/v1/actual_lrps/retire', RetireActualLRPRequest.encode({ actualLrpKey: undefined }).finish(), ActualLRPLifecycleResponse);
    assertBbsError(invalid.error, Error_Type.TYPE_INVALID_REQUEST, 'Invalid field: actual_lrp_key');
    assertBbsError(
      (await retire({ processGuid: '', index: -1, domain: '' })).error,
      Error_Type.TYPE_INVALID_REQUEST,
      'Invalid field: process_guid, Invalid field: index, Invalid field: domain',
    );
  });

  test('remove deletes the desired LRP and its instances; a missing one is ResourceNotFound everywhere', async () => {
    assert.equal(await errorOf(h.url, '/v1/desired_lrp/remove', RemoveDesiredLRPRequest.encode({ processGuid: 'web-2' }).finish()), undefined);
    assertBbsError((await getLrp('web-2')).error, Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);
    assertBbsError((await getLrp('web-2', 'r2')).error, Error_Type.TYPE_RESOURCE_NOT_FOUND, NOT_FOUND);
    assert.deepEqual(await indicesOf('web-2'), []);
    assertBbsError(
      await errorOf(h.url, '/v1/desired_lrp/remove', RemoveDesiredLRPRequest.encode({ processGuid: 'web-2' }).finish()),
      Error_Type.TYPE_RESOURCE_NOT_FOUND,
      NOT_FOUND,
    );
  });

  test('cells/list.r1 lists cells whose presence has not expired', async () => {
    h.diego.bbs.cells.heartbeat(CellPresence.fromPartial({ cellId: 'cell-2', zone: 'z1', capacity: { memoryMb: 1024, diskMb: 2048, containers: 10 } }), 1_000);
    const cells = async () => (await call(h.url, '/v1/cells/list.r1', EMPTY, CellsResponse)).cells;
    assert.deepEqual((await cells()).map((c) => c.cellId), ['cell-1', 'cell-2']);
    assert.deepEqual((await cells())[1]?.capacity, { memoryMb: 1024, diskMb: 2048, containers: 10 });
    h.clock.advance(1_000);
    assert.deepEqual((await cells()).map((c) => c.cellId), ['cell-1']);
  });
});

describe('embedded Diego: event streams', () => {
  let h: Harness;
  before(async () => {
    h = await startDiego();
  });
  after(() => h.diego.close());

  test('lrp_instances.r1 streams hijacked chunks with ";" extensions, ids from 0, base64 protobuf events', async () => {
    const stream = await RawEventStream.open(h.url, '/v1/events/lrp_instances.r1', EventsByCellId.encode({ cellId: '' }).finish());
    try {
      assert.match(stream.head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(stream.head, /\r\nContent-Type: text\/event-stream; charset=utf-8\r\n/);
      assert.match(stream.head, /\r\nCache-Control: no-cache, no-store, must-revalidate\r\n/);
      assert.match(stream.head, /\r\nConnection: keep-alive\r\n/);
      assert.match(stream.head, /\r\nTransfer-Encoding: chunked\r\n/);
      await waitFor('subscription', () => h.diego.bbs.lrpEvents.subscriberCount === 1);

      assert.equal(await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('ev-1', { instances: 2 })), 'trace-1'), undefined);
      const created = await stream.nextEvent();
      assert.equal(created.id, 0);
      assert.equal(created.name, 'desired_lrp_created');
      const createdEvent = DesiredLRPCreatedEvent.decode(created.data);
      assert.equal(createdEvent.desiredLrp?.processGuid, 'ev-1');
      assert.equal(createdEvent.traceId, 'trace-1');
      for (const index of [0, 1]) {
        const event = await stream.nextEvent();
        assert.equal(event.id, index + 1);
        assert.equal(event.name, 'actual_lrp_instance_created');
        const payload = ActualLRPInstanceCreatedEvent.decode(event.data);
        assert.deepEqual(payload.actualLrp?.actualLrpKey, { processGuid: 'ev-1', index, domain: 'cf-apps' });
        assert.equal(payload.actualLrp?.state, 'UNCLAIMED');
      }

      await errorOf(h.url, '/v1/desired_lrp/update', updateBody('ev-1', { instances: 1, annotation: 'new' }));
      const changed = await stream.nextEvent();
      assert.equal(changed.id, 3);
      assert.equal(changed.name, 'desired_lrp_changed');
      const changedEvent = DesiredLRPChangedEvent.decode(changed.data);
      assert.equal(changedEvent.before?.instances, 2);
      assert.equal(changedEvent.after?.instances, 1);
      assert.equal(changedEvent.after?.annotation, 'new');
      const removed = await stream.nextEvent();
      assert.equal(removed.name, 'actual_lrp_instance_removed');
      assert.equal(ActualLRPInstanceRemovedEvent.decode(removed.data).actualLrp?.actualLrpKey?.index, 1);

      await call(h.url, '/v1/actual_lrps/retire', RetireActualLRPRequest.encode({ actualLrpKey: { processGuid: 'ev-1', index: 0, domain: 'cf-apps' } }).finish(), ActualLRPLifecycleResponse);
      const retired = await stream.nextEvent();
      assert.equal(retired.id, 5);
      assert.equal(retired.name, 'actual_lrp_instance_removed');

      await errorOf(h.url, '/v1/desired_lrp/remove', RemoveDesiredLRPRequest.encode({ processGuid: 'ev-1' }).finish());
      const gone = await stream.nextEvent();
      assert.equal(gone.name, 'desired_lrp_removed');
      assert.equal(DesiredLRPRemovedEvent.decode(gone.data).desiredLrp?.processGuid, 'ev-1');

      // Bytes the peer sends on a stream connection are ignored; the stream goes on.
      stream.socket.write('garbage after the request\r\n\r\n');
      h.diego.bbs.createUnclaimedActualLrp({ processGuid: 'ev-1', index: 9, domain: 'cf-apps' });
      assert.equal((await stream.nextEvent()).id, 7);
    } finally {
      stream.close();
    }
    await waitFor('unsubscribe on close', () => h.diego.bbs.lrpEvents.subscriberCount === 0);
  });

  test('a stream for one cell gets desired LRP events and that cell\'s instance events only', async () => {
    const stream = await RawEventStream.open(h.url, '/v1/events/lrp_instances.r1', EventsByCellId.encode({ cellId: 'cell-a' }).finish());
    try {
      await waitFor('subscription', () => h.diego.bbs.lrpEvents.subscriberCount === 1);
      await errorOf(h.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('ev-2', { instances: 1 })));
      const first = await stream.nextEvent();
      assert.deepEqual([first.id, first.name], [0, 'desired_lrp_created']);
      // The unclaimed instance is on no cell: filtered out. Claiming it onto cell-a is not.
      h.diego.bbs.changeActualLrp('ev-2', 0, ActualLRP_Presence.PRESENCE_ORDINARY, (lrp) => ({
        ...lrp,
        state: ActualLrpState.CLAIMED,
        actualLrpInstanceKey: { instanceGuid: 'ig-a', cellId: 'cell-a' },
        modificationTag: { epoch: lrp.modificationTag!.epoch, index: 1 },
      }));
      const claimed = await stream.nextEvent();
      assert.deepEqual([claimed.id, claimed.name], [1, 'actual_lrp_instance_changed']);
      const change = ActualLRPInstanceChangedEvent.decode(claimed.data);
      assert.deepEqual(change.actualLrpInstanceKey, { instanceGuid: 'ig-a', cellId: 'cell-a' });
      assert.equal(change.before?.state, 'UNCLAIMED');
      assert.equal(change.after?.state, 'CLAIMED');
      assert.equal(change.after?.modificationTag?.index, 1);
    } finally {
      stream.close();
    }
  });

  test('tasks.r1 streams task_created, task_changed and task_removed', async () => {
    const stream = await RawEventStream.open(h.url, '/v1/events/tasks.r1', EMPTY);
    try {
      await waitFor('subscription', () => h.diego.bbs.taskEvents.subscriberCount === 1);
      await errorOf(h.url, '/v1/tasks/desire.r2', desireTaskBody('ev-task'));
      await errorOf(h.url, '/v1/tasks/cancel', byTaskGuid('ev-task'));
      await errorOf(h.url, '/v1/tasks/resolving', byTaskGuid('ev-task'));
      await errorOf(h.url, '/v1/tasks/delete', byTaskGuid('ev-task'));
      const events = [await stream.nextEvent(), await stream.nextEvent(), await stream.nextEvent(), await stream.nextEvent()];
      assert.deepEqual(events.map((e) => [e.id, e.name]), [
        [0, 'task_created'],
        [1, 'task_changed'],
        [2, 'task_changed'],
        [3, 'task_removed'],
      ]);
      assert.equal(TaskCreatedEvent.decode(events[0]!.data).task?.state, Task_State.STATE_PENDING);
      const cancelled = TaskChangedEvent.decode(events[1]!.data);
      assert.equal(cancelled.before?.state, Task_State.STATE_PENDING);
      assert.equal(cancelled.after?.state, Task_State.STATE_COMPLETED);
      assert.equal(cancelled.after?.failureReason, 'task was cancelled');
      assert.equal(TaskRemovedEvent.decode(events[3]!.data).task?.taskGuid, 'ev-task');
    } finally {
      stream.close();
    }
  });

  test('a subscription body that does not decode is refused with 500, as the BBS does', async () => {
    const response = await fetch(`${h.url}/v1/events/lrp_instances.r1`, { method: 'POST', body: GARBAGE });
    assert.equal(response.status, 500);
  });

  test('closing the server ends every stream with the final zero-size chunk', async () => {
    const own = await startDiego();
    const lrps = await RawEventStream.open(own.url, '/v1/events/lrp_instances.r1', EMPTY);
    const tasks = await RawEventStream.open(own.url, '/v1/events/tasks.r1', EMPTY);
    await waitFor('subscriptions', () => own.diego.bbs.lrpEvents.subscriberCount === 1 && own.diego.bbs.taskEvents.subscriberCount === 1);
    await own.diego.close();
    assert.equal(await lrps.nextChunk(), 'end');
    assert.equal(await tasks.nextChunk(), 'end');
    await lrps.closed();
    await tasks.closed();
  });

  test('a consumer that stops reading is disconnected once its buffer fills; the others keep streaming', async () => {
    const own = await startDiego({ eventBufferSize: 4 });
    const slow = await RawEventStream.open(own.url, '/v1/events/lrp_instances.r1', EMPTY, 'slow');
    const fast = await RawEventStream.open(own.url, '/v1/events/lrp_instances.r1', EMPTY, 'fast');
    try {
      await waitFor('subscriptions', () => own.diego.bbs.lrpEvents.subscriberCount === 2);
      slow.socket.pause();
      const payload = Buffer.alloc(32 * 1024, 7);
      let emitted = 0;
      let fastSeen = 0;
      // Two events per turn stay under the buffer of 4 while the socket keeps up; only the
      // paused one backs up. Bounded: a loopback socket buffers a few MB at most.
      for (let turn = 0; turn < 3_000 && own.diego.bbs.lrpEvents.subscriberCount === 2; turn++) {
        own.diego.bbs.lrpEvents.emit('desired_lrp_changed', payload);
        own.diego.bbs.lrpEvents.emit('desired_lrp_changed', payload);
        emitted += 2;
        while (fastSeen < emitted) {
          assert.equal((await fast.nextEvent()).id, fastSeen);
          fastSeen++;
        }
        await nextTurn();
      }
      assert.equal(own.diego.bbs.lrpEvents.subscriberCount, 1, 'the slow consumer was dropped');

      slow.socket.resume();
      let received = 0;
      for (;;) {
        const chunk = await slow.nextChunk();
        if (chunk === 'end') break;
        received++;
      }
      await slow.closed();
      assert.ok(received > 0 && received < emitted, `slow consumer got ${received} of ${emitted}`);

      own.diego.bbs.lrpEvents.emit('desired_lrp_removed', Buffer.from([1]));
      assert.equal((await fast.nextEvent()).id, emitted, 'the fast consumer is unaffected');
    } finally {
      slow.close();
      fast.close();
      await own.diego.close();
    }
  });
});

describe('embedded Diego: storage', () => {
  test('migrations run from an empty directory; the schema version is recorded; WAL mode', async () => {
    const dataDir = join(tempDir(), 'nested', 'diego');
    assert.equal(existsSync(dataDir), false);
    const h = await startDiego({ dataDir });
    await h.diego.close();
    const db = new Database(join(dataDir, DIEGO_DATABASE_FILE), { readonly: true });
    try {
      assert.deepEqual(db.prepare('SELECT version FROM schema_version').all(), [{ version: DIEGO_SCHEMA_VERSION }]);
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      assert.deepEqual(tables, ['actual_lrps', 'desired_lrps', 'domains', 'schema_version', 'tasks']);
    } finally {
      db.close();
    }
  });

  test('a database from a newer build is refused', async () => {
    const dataDir = tempDir();
    const db = new Database(join(dataDir, DIEGO_DATABASE_FILE));
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (999);');
    db.close();
    await assert.rejects(startDiego({ dataDir }), /schema version 999 is newer/);
  });

  test('everything survives a restart with the same data directory', async () => {
    const dataDir = tempDir();
    const first = await startDiego({ dataDir });
    await call(first.url, '/v1/domains/upsert', UpsertDomainRequest.encode({ domain: 'cf-apps', ttl: 0 }).finish(), UpsertDomainResponse);
    await errorOf(first.url, '/v1/desired_lrp/desire.r2', desireLrpBody(desiredLrp('kept', { instances: 2, imageLayers, legacyDownloadUser: 'vcap' })));
    await errorOf(first.url, '/v1/desired_lrp/update', updateBody('kept', { annotation: 'after-update' }));
    await errorOf(first.url, '/v1/tasks/desire.r2', desireTaskBody('kept-task'));
    const epoch = (await call(first.url, '/v1/desired_lrps/get_by_process_guid.r3', byProcessGuid('kept'), DesiredLRPResponse)).desiredLrp?.modificationTag?.epoch;
    await first.diego.close();

    const second = await startDiego({ dataDir });
    try {
      assert.deepEqual((await call(second.url, '/v1/domains/list', EMPTY, DomainsResponse)).domains, ['cf-apps']);
      const lrp = (await call(second.url, '/v1/desired_lrps/get_by_process_guid.r3', byProcessGuid('kept'), DesiredLRPResponse)).desiredLrp;
      assert.equal(lrp?.annotation, 'after-update');
      assert.deepEqual(lrp?.modificationTag, { epoch, index: 1 });
      assert.deepEqual(lrp?.imageLayers, imageLayers);
      const r2 = (await call(second.url, '/v1/desired_lrps/get_by_process_guid.r2', byProcessGuid('kept'), DesiredLRPResponse)).desiredLrp;
      assert.deepEqual(r2?.imageLayers, []);
      const actuals = await call(second.url, '/v1/actual_lrps/list', ActualLRPsRequest.encode({ domain: '', cellId: '', processGuid: 'kept' }).finish(), ActualLRPsResponse);
      assert.equal(actuals.actualLrps.length, 2);
      const task = await call(second.url, '/v1/tasks/get_by_task_guid.r3', TaskByGuidRequest.encode({ taskGuid: 'kept-task' }).finish(), TaskResponse);
      assert.equal(task.task?.state, Task_State.STATE_PENDING);
    } finally {
      await second.diego.close();
    }
  });
});

describe('embedded Diego: TLS', () => {
  let dir: string;
  before(() => {
    dir = tempDir();
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=ccbridge-diego-test-ca', '-days', '1');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const name of ['server', 'client']) {
      openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      const extensions = name === 'server' ? ['-extfile', 'server.ext'] : [];
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', ...extensions);
    }
  });

  const file = (name: string) => readFileSync(join(dir, name));

  function pingOverTls(url: string, clientCert: boolean): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        `${url}/v1/ping`,
        {
          method: 'POST',
          ca: file('ca.crt'),
          ...(clientCert ? { cert: file('client.crt'), key: file('client.key') } : {}),
          headers: { 'Content-Type': 'application/x-protobuf', 'Content-Length': '0' },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  test('with a CA, clients must present a certificate it signed (mutual TLS)', async () => {
    const h = await startDiego({ tls: { cert: file('server.crt'), key: file('server.key'), ca: file('ca.crt') } });
    try {
      assert.match(h.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const ok = await pingOverTls(h.url, true);
      assert.equal(ok.status, 200);
      assert.deepEqual(PingResponse.decode(ok.body), { available: true });
      await assert.rejects(pingOverTls(h.url, false));
    } finally {
      await h.diego.close();
    }
  });

  test('without a CA it is plain server TLS', async () => {
    const h = await startDiego({ tls: { cert: file('server.crt'), key: file('server.key') } });
    try {
      assert.equal((await pingOverTls(h.url, false)).status, 200);
    } finally {
      await h.diego.close();
    }
  });
});
