// The BBS event stream reader: the tolerant chunked decoder and the SSE parser fed every way the
// bytes can arrive, then the whole reader against raw `net` servers written here that frame
// their answers exactly as the BBS does (a hand-made `<hex>;\r\n<frame>\r\n` chunk per event),
// and the resubscribing wrapper against a server that drops connections. Also the incremental
// decoder of list answers, which shares the "any split of the bytes" property.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  BbsError,
  BbsInvalidResponseError,
  BbsResourceNotFoundError,
  BbsUnavailableError,
  ChunkedDecoder,
  createListDecoder,
  decodeBbsEvent,
  InvalidEventPayloadError,
  LRP_INSTANCE_EVENT_TYPES,
  openEventStream,
  resubscribing,
  schedulingInfoDecoder,
  SchedulingInfoDecodeError,
  SseParser,
  StreamFormatError,
  TASK_EVENT_TYPES,
  TruncatedMessageError,
  type BbsEventStream,
  type LrpInstanceEvent,
  type SseFrame,
  type TaskEvent,
} from '../../clients/bbs/index.js';
import { ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { DesiredLRPSchedulingInfo } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { DesiredLRPSchedulingInfosResponse } from '../../gen/diego/bbs/v1/desired_lrp_requests.js';
import { Error_Type } from '../../gen/diego/bbs/v1/error.js';
import {
  ActualLRPCrashedEvent,
  ActualLRPInstanceCreatedEvent,
  DesiredLRPCreatedEvent,
  EventsByCellId,
  TaskChangedEvent,
} from '../../gen/diego/bbs/v1/events.js';
import { Task_State } from '../../gen/diego/bbs/v1/task.js';
import { silentLogger } from '../../lib/log.js';

const logger = silentLogger();
const bytes = (text: string) => Buffer.from(text, 'latin1');

/** Feeds `input` split at the given sizes (cycled) and returns what each piece produced. */
function feedSplit<T>(push: (piece: Uint8Array) => T[], input: Buffer, sizes: number[]): T[] {
  const out: T[] = [];
  let i = 0;
  for (let n = 0; i < input.length; n++) {
    const size = sizes[n % sizes.length]!;
    out.push(...push(input.subarray(i, i + size)));
    i += size;
  }
  return out;
}

const SPLITS: Array<{ name: string; sizes: number[] }> = [
  { name: 'whole', sizes: [1 << 20] },
  { name: 'byte by byte', sizes: [1] },
  { name: 'two bytes', sizes: [2] },
  { name: 'odd splits 3,7,1,5', sizes: [3, 7, 1, 5] },
  { name: 'odd splits 11,2,13', sizes: [11, 2, 13] },
];

// ---- chunked decoder ---------------------------------------------------------------------------

function decodeChunked(input: Buffer, sizes: number[]): { body: string; done: boolean } {
  const decoder = new ChunkedDecoder();
  const pieces = feedSplit((piece) => decoder.push(piece), input, sizes);
  return { body: Buffer.concat(pieces).toString('latin1'), done: decoder.done };
}

/** A chunk exactly as the BBS writes one: empty extension after the size. */
const bbsChunk = (payload: string) => `${Buffer.byteLength(payload, 'latin1').toString(16)};\r\n${payload}\r\n`;

describe('ChunkedDecoder', () => {
  const frames = ['id: 0\nevent: a\ndata: QUJD\n\n', 'id: 1\nevent: b\ndata: REVG\n\n', 'x'.repeat(300)];
  const bbsBody = frames.map(bbsChunk).join('') + '0\r\n\r\n';

  for (const { name, sizes } of SPLITS) {
    test(`the BBS framing (<hex>;CRLF), ${name}`, () => {
      assert.deepEqual(decodeChunked(bytes(bbsBody), sizes), { body: frames.join(''), done: true });
    });
  }

  test('every two-piece split of the BBS framing', () => {
    const input = bytes(bbsBody);
    for (let cut = 0; cut <= input.length; cut++) {
      const decoder = new ChunkedDecoder();
      const body = Buffer.concat([...decoder.push(input.subarray(0, cut)), ...decoder.push(input.subarray(cut))]).toString('latin1');
      assert.equal(body, frames.join(''), `cut at ${cut}`);
      assert.equal(decoder.done, true);
    }
  });

  const variants = [
    { name: 'no extension', input: '5\r\nhello\r\n0\r\n\r\n' },
    { name: 'empty extension', input: '5;\r\nhello\r\n0;\r\n\r\n' },
    { name: 'named extension with a value', input: '5;name=value\r\nhello\r\n0\r\n\r\n' },
    { name: 'several extensions, quoted value', input: '5;a=1;b="x;y"\r\nhello\r\n0\r\n\r\n' },
    { name: 'whitespace before the extension', input: '5 ;ext\r\nhello\r\n0\r\n\r\n' },
    { name: 'upper-case hex and leading zeros', input: '0005\r\nhe\r\n\r\n0\r\n\r\n', want: 'he\r\n\r' },
    { name: 'bare LF line ends', input: '5;\nhello\n0\n\n' },
    { name: 'CRLF size lines, LF after data', input: '5;\r\nhello\n0\r\n\r\n' },
    { name: 'trailers after the last chunk', input: '5\r\nhello\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n' },
    { name: 'hex letters', input: 'A;\r\n0123456789\r\n0\r\n\r\n', want: '0123456789' },
  ];
  for (const { name, input, want } of variants) {
    for (const { name: split, sizes } of SPLITS) {
      test(`${name}, ${split}`, () => {
        assert.deepEqual(decodeChunked(bytes(input), sizes), { body: want ?? 'hello', done: true });
      });
    }
  }

  test('not done before the last chunk; bytes after it are ignored', () => {
    const decoder = new ChunkedDecoder();
    assert.equal(Buffer.concat(decoder.push(bytes('3;\r\nabc\r\n'))).toString(), 'abc');
    assert.equal(decoder.done, false);
    decoder.push(bytes('0\r\n'));
    assert.equal(decoder.done, false, 'trailers not finished yet');
    decoder.push(bytes('\r\n'));
    assert.equal(decoder.done, true);
    assert.deepEqual(decoder.push(bytes('garbage')), []);
  });

  const broken = [
    { name: 'a size that is not hex', input: 'zz\r\nhello\r\n' },
    { name: 'an empty size line', input: '\r\nhello\r\n' },
    { name: 'data longer than its size', input: '3\r\nhello\r\n' },
    { name: 'a size line without end', input: '5' + ';x'.repeat(3000) },
  ];
  for (const { name, input } of broken) {
    test(`refuses ${name}`, () => {
      assert.throws(() => new ChunkedDecoder().push(bytes(input)), StreamFormatError);
    });
  }
});

// ---- SSE parser ---------------------------------------------------------------------------------

function parseSse(input: Buffer, sizes: number[]): SseFrame[] {
  const parser = new SseParser();
  return feedSplit((piece) => parser.push(piece), input, sizes);
}

describe('SseParser', () => {
  const want: SseFrame[] = [
    { id: '0', event: 'desired_lrp_created', data: 'QUJD' },
    { id: '1', event: 'task_changed', data: 'line one\nline two\n\nline four' },
    { event: 'no_id', data: '' },
  ];
  const lf = 'id: 0\nevent: desired_lrp_created\ndata: QUJD\n\nid: 1\nevent: task_changed\ndata: line one\ndata: line two\ndata\ndata: line four\n\nevent: no_id\ndata:\n\n';

  const endings = [
    { name: 'LF', text: lf },
    { name: 'CRLF', text: lf.replaceAll('\n', '\r\n') },
    { name: 'CR', text: lf.replaceAll('\n', '\r') },
    { name: 'mixed', text: lf.replace(/\n/g, (_, offset: number) => ['\n', '\r\n', '\r'][offset % 3]!) },
  ];
  for (const { name, text } of endings) {
    for (const { name: split, sizes } of SPLITS) {
      test(`${name} line ends, ${split}`, () => assert.deepEqual(parseSse(bytes(text), sizes), want));
    }
  }

  test('every two-piece split of CRLF frames, including between CR and LF', () => {
    const input = bytes(endings[1]!.text);
    for (let cut = 0; cut <= input.length; cut++) {
      const parser = new SseParser();
      assert.deepEqual([...parser.push(input.subarray(0, cut)), ...parser.push(input.subarray(cut))], want, `cut at ${cut}`);
    }
  });

  test('comments are skipped, frames without data are dropped, one leading space is trimmed', () => {
    const input = bytes(': keep-alive\n\nid: 7\nevent: only-id\n\nevent:x\ndata:  two spaces\nretry: 10\nunknown: y\n\n');
    assert.deepEqual(parseSse(input, [1 << 20]), [{ event: 'x', data: ' two spaces' }]);
  });

  test('an incomplete frame is held until its blank line', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push(bytes('event: a\ndata: b\n')), []);
    assert.deepEqual(parser.push(bytes('\n')), [{ event: 'a', data: 'b' }]);
  });

  test('UTF-8 split across pieces', () => {
    assert.deepEqual(parseSse(Buffer.from('event: é\ndata: ü\n\n', 'utf8'), [1]), [{ event: 'é', data: 'ü' }]);
  });

  test('a frame beyond the bound is refused', () => {
    const parser = new SseParser(64);
    assert.throws(() => parser.push(bytes(`data: ${'x'.repeat(100)}\n`)), StreamFormatError);
  });
});

// ---- event decoding -------------------------------------------------------------------------------

const b64 = (message: Uint8Array) => Buffer.from(message).toString('base64');

function desiredCreated(processGuid: string): string {
  return b64(DesiredLRPCreatedEvent.encode(DesiredLRPCreatedEvent.fromPartial({ desiredLrp: { processGuid, domain: 'cf-apps', instances: 2 }, traceId: 't' })).finish());
}
function instanceCreated(processGuid: string, index: number): string {
  const actualLrp = ActualLRP.fromPartial({ actualLrpKey: { processGuid, index, domain: 'cf-apps' }, state: 'UNCLAIMED', since: '1700000000123456789' });
  return b64(ActualLRPInstanceCreatedEvent.encode({ actualLrp, traceId: '' }).finish());
}
function crashed(processGuid: string): string {
  return b64(
    ActualLRPCrashedEvent.encode(
      ActualLRPCrashedEvent.fromPartial({
        actualLrpKey: { processGuid, index: 1, domain: 'cf-apps' },
        actualLrpInstanceKey: { instanceGuid: 'i-1', cellId: 'cell-1' },
        crashCount: 3,
        crashReason: 'out of memory',
        since: '1700000000999999999',
      }),
    ).finish(),
  );
}

describe('decodeBbsEvent', () => {
  test('decodes by event name', () => {
    const event = decodeBbsEvent({ event: 'actual_lrp_crashed', data: crashed('p') }, LRP_INSTANCE_EVENT_TYPES);
    assert.equal(event?.type, 'actual_lrp_crashed');
    assert.equal(event?.type === 'actual_lrp_crashed' && event.event.crashCount, 3);
    assert.equal(event?.type === 'actual_lrp_crashed' && event.event.since, '1700000000999999999');
  });

  test('base64 split over several data lines', () => {
    const data = desiredCreated('p-1');
    const event = decodeBbsEvent({ event: 'desired_lrp_created', data: `${data.slice(0, 5)}\n${data.slice(5)}` }, LRP_INSTANCE_EVENT_TYPES);
    assert.equal(event?.type === 'desired_lrp_created' && event.event.desiredLrp?.processGuid, 'p-1');
  });

  test('unknown names, and names of the other stream, are skipped', () => {
    assert.equal(decodeBbsEvent({ event: 'lrp_deployment_created', data: 'AAAA' }, LRP_INSTANCE_EVENT_TYPES), undefined);
    assert.equal(decodeBbsEvent({ event: 'task_created', data: 'AAAA' }, LRP_INSTANCE_EVENT_TYPES), undefined);
    assert.equal(decodeBbsEvent({ event: 'actual_lrp_created', data: 'AAAA' }, TASK_EVENT_TYPES), undefined);
  });

  test('a payload that is not base64 protobuf is an error', () => {
    assert.throws(() => decodeBbsEvent({ event: 'task_changed', data: '' }, TASK_EVENT_TYPES), InvalidEventPayloadError);
    assert.throws(() => decodeBbsEvent({ event: 'task_changed', data: 'not base64!' }, TASK_EVENT_TYPES), InvalidEventPayloadError);
    assert.throws(() => decodeBbsEvent({ event: 'task_changed', data: b64(Buffer.from([0x0a, 0x05, 0x01])) }, TASK_EVENT_TYPES), InvalidEventPayloadError);
  });
});

// ---- list decoder -----------------------------------------------------------------------------------

describe('createListDecoder', () => {
  const infos = Array.from({ length: 20 }, (_, i) =>
    DesiredLRPSchedulingInfo.fromPartial({
      desiredLrpKey: { processGuid: `p-${i}`, domain: 'cf-apps', logGuid: `l-${i}` },
      annotation: `${i}`.repeat(i * 20),
      instances: i,
      routes: { routes: { 'cf-router': Buffer.from(JSON.stringify([{ hostnames: [`h${i}`], port: 8080 }])) } },
    }),
  );
  const encoded = Buffer.from(DesiredLRPSchedulingInfosResponse.encode({ desiredLrpSchedulingInfos: infos }).finish());

  for (const { name, sizes } of SPLITS) {
    test(`decodes a list answer fed ${name}, as the generated decoder does`, () => {
      const decoder = createListDecoder(DesiredLRPSchedulingInfo);
      feedSplit((piece) => (decoder.push(Buffer.from(piece)), []), encoded, sizes);
      assert.deepEqual(decoder.finish(), { items: DesiredLRPSchedulingInfosResponse.decode(encoded).desiredLrpSchedulingInfos });
    });
  }

  test('an error field, and unknown fields of every wire type, anywhere in the message', () => {
    const error = Buffer.from([0x0a, 0x04, 0x08, 0x0d, 0x12, 0x00]); // field 1: {type: 13, message: ''}
    const unknown = Buffer.from([0x18, 0x96, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2d, 1, 2, 3, 4, 0x32, 0x01, 0x00]);
    const input = Buffer.concat([unknown, encoded, error]);
    const decoder = createListDecoder(DesiredLRPSchedulingInfo);
    feedSplit((piece) => (decoder.push(Buffer.from(piece)), []), input, [1]);
    const result = decoder.finish();
    assert.equal(result.items.length, 20);
    assert.deepEqual(result.error, { type: Error_Type.TYPE_RESOURCE_NOT_FOUND, message: '' });
  });

  test('a body that ends inside an entry is refused', () => {
    const decoder = createListDecoder(DesiredLRPSchedulingInfo);
    decoder.push(encoded.subarray(0, encoded.length - 3));
    assert.throws(() => decoder.finish(), TruncatedMessageError);
  });
});

// ---- scheduling info decoder --------------------------------------------------------------------------

describe('schedulingInfoDecoder', () => {
  const full = DesiredLRPSchedulingInfo.fromPartial({
    desiredLrpKey: { processGuid: '3c5e-é-unicode', domain: 'cf-apps', logGuid: 'log' },
    annotation: '1700000000.123456',
    instances: -3,
    desiredLrpResource: { memoryMb: 1024, diskMb: -1, rootFs: 'preloaded:cflinuxfs4', maxPids: 2_000_000_000 },
    routes: {
      routes: {
        'cf-router': Buffer.from(JSON.stringify([{ hostnames: ['a.example.com'], port: 8080 }])),
        'tcp-router': Buffer.from('[]'),
        'internal-router': Buffer.from('[]'),
        'diego-ssh': Buffer.from(JSON.stringify({ container_port: 2222, private_key: 'k'.repeat(1700) })),
        empty: Buffer.alloc(0),
      },
    },
    modificationTag: { epoch: 'epoch-guid', index: 4_294_967_295 },
    volumePlacement: { driverNames: ['nfs', 'smb'] },
    placementTags: ['isolation-a', 'isolation-b'],
  });
  const cases: Array<{ name: string; bytes: Buffer }> = [
    { name: 'every field set', bytes: Buffer.from(DesiredLRPSchedulingInfo.encode(full).finish()) },
    { name: 'nothing set', bytes: Buffer.alloc(0) },
    { name: 'empty sub-messages', bytes: Buffer.from(DesiredLRPSchedulingInfo.encode({ ...full, desiredLrpKey: { processGuid: '', domain: '', logGuid: '' }, routes: { routes: {} }, volumePlacement: { driverNames: [] } }).finish()) },
    {
      name: 'unknown fields of every wire type, at the top and inside sub-messages',
      bytes: Buffer.concat([
        Buffer.from([0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x62, 0x02, 0x41, 0x42, 0x6b, 0x08, 0x01, 0x6c]),
        Buffer.from(DesiredLRPSchedulingInfo.encode(full).finish()),
        // desired_lrp_key with an unknown field 9 (varint) before its process guid
        Buffer.from([0x0a, 0x07, 0x48, 0x01, 0x0a, 0x03, 0x61, 0x62, 0x63]),
        // a routes map entry with an unknown field and the value before the key
        Buffer.from([0x2a, 0x0c, 0x0a, 0x0a, 0x18, 0x05, 0x12, 0x01, 0x5b, 0x0a, 0x03, 0x6b, 0x65, 0x79]),
      ]),
    },
    {
      name: 'a field that repeats (last one wins, repeated ones append)',
      bytes: Buffer.concat([Buffer.from(DesiredLRPSchedulingInfo.encode(full).finish()), Buffer.from(DesiredLRPSchedulingInfo.encode({ ...full, annotation: 'second', placementTags: ['third'] }).finish())]),
    },
  ];
  for (const { name, bytes: input } of cases) {
    test(`decodes ${name} as the generated decoder does`, () => {
      assert.deepEqual(schedulingInfoDecoder.decode(input), DesiredLRPSchedulingInfo.decode(input));
      const padded = Buffer.concat([Buffer.from('prefix'), input, Buffer.from('suffix')]);
      assert.deepEqual(schedulingInfoDecoder.decodeRange(padded, 6, 6 + input.length), DesiredLRPSchedulingInfo.decode(input), 'in place');
    });
  }

  test('route values are views of the received bytes, short ones shared', () => {
    const input = Buffer.from(DesiredLRPSchedulingInfo.encode(full).finish());
    const a = schedulingInfoDecoder.decode(input).routes!.routes;
    const b = schedulingInfoDecoder.decode(Buffer.from(input)).routes!.routes;
    assert.equal(a['diego-ssh']!.buffer, input.buffer, 'a view, not a copy');
    assert.equal(a['tcp-router'], b['internal-router'], 'one shared `[]`');
    assert.equal(a['tcp-router']!.toString(), '[]');
  });

  test('malformed bytes are refused', () => {
    const input = Buffer.from(DesiredLRPSchedulingInfo.encode(full).finish());
    assert.throws(() => schedulingInfoDecoder.decode(input.subarray(0, input.length - 5)), SchedulingInfoDecodeError);
    assert.throws(() => schedulingInfoDecoder.decode(Buffer.from([0x0a, 0x7f, 0x00])), SchedulingInfoDecodeError);
    assert.throws(() => schedulingInfoDecoder.decode(Buffer.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), SchedulingInfoDecodeError);
  });

  test('as the list decoder of a whole answer fed in odd splits', () => {
    const infos = [full, DesiredLRPSchedulingInfo.fromPartial({ annotation: 'two' }), full];
    const answer = Buffer.from(DesiredLRPSchedulingInfosResponse.encode({ desiredLrpSchedulingInfos: infos }).finish());
    for (const { sizes } of SPLITS) {
      const decoder = createListDecoder(schedulingInfoDecoder);
      feedSplit((piece) => (decoder.push(Buffer.from(piece)), []), answer, sizes);
      assert.deepEqual(decoder.finish().items, DesiredLRPSchedulingInfosResponse.decode(answer).desiredLrpSchedulingInfos);
    }
  });
});

// ---- the reader against raw servers ---------------------------------------------------------------

const servers: Server[] = [];
after(() => {
  for (const server of servers) server.close();
});

interface SeenRequest {
  head: string;
  body: Buffer;
}

/** A raw TCP server: `onRequest` gets each connection once its request head and body are in. */
async function rawServer(onRequest: (socket: Socket, request: SeenRequest, n: number) => void): Promise<{ port: number; url: string; requests: SeenRequest[]; sockets: Set<Socket> }> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      socket.off('data', onData);
      const request = { head, body: buffered.subarray(end + 4, end + 4 + length) };
      requests.push(request);
      onRequest(socket, request, requests.length);
    };
    socket.on('data', onData);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { port, url: `http://127.0.0.1:${port}`, requests, sockets };
}

/** What the BBS writes before the first event. */
const BBS_STREAM_HEAD =
  'HTTP/1.1 200 OK\r\n' +
  'Cache-Control: no-cache, no-store, must-revalidate\r\n' +
  'Connection: keep-alive\r\n' +
  'Content-Type: text/event-stream; charset=utf-8\r\n' +
  'Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n' +
  'Transfer-Encoding: chunked\r\n' +
  '\r\n';

/** One event as the BBS frames it on the wire. */
const bbsEvent = (id: number, name: string, data: string) => bbsChunk(`id: ${id}\nevent: ${name}\ndata: ${data}\n\n`);

async function take<E>(stream: AsyncIterator<E>, n: number): Promise<E[]> {
  const out: E[] = [];
  while (out.length < n) {
    const next = await stream.next();
    if (next.done) break;
    out.push(next.value);
  }
  return out;
}

function openLrpStream(url: string, extra: { cellId?: string; timeoutMs?: number; requestId?: string; signal?: AbortSignal } = {}): Promise<BbsEventStream<LrpInstanceEvent>> {
  return openEventStream<LrpInstanceEvent>({
    endpoint: { url: new URL(url) },
    route: '/v1/events/lrp_instances.r1',
    body: EventsByCellId.encode({ cellId: extra.cellId ?? '' }).finish(),
    accepted: LRP_INSTANCE_EVENT_TYPES,
    logger,
    timeoutMs: extra.timeoutMs ?? 2_000,
    requestId: extra.requestId,
    signal: extra.signal,
  });
}

describe('openEventStream against a raw server with the BBS framing', () => {
  test('writes the request as the Go client does and decodes each chunked frame', async () => {
    const server = await rawServer((socket) => {
      socket.write(BBS_STREAM_HEAD);
      socket.write(bbsEvent(0, 'desired_lrp_created', desiredCreated('p-1')));
      // Two events in one write, then one event split over three writes.
      socket.write(bbsEvent(1, 'actual_lrp_instance_created', instanceCreated('p-1', 0)) + bbsEvent(2, 'lrp_deployment_created', 'AAAA'));
      const last = bytes(bbsEvent(3, 'actual_lrp_crashed', crashed('p-1')));
      socket.write(last.subarray(0, 2));
      setTimeout(() => socket.write(last.subarray(2, 20)), 5);
      setTimeout(() => socket.write(last.subarray(20)), 10);
    });
    const stream = await openLrpStream(server.url, { cellId: 'cell-7', requestId: 'req-42' });
    const events = await take(stream, 3);
    stream.close();

    assert.deepEqual(
      events.map((e) => e.type),
      ['desired_lrp_created', 'actual_lrp_instance_created', 'actual_lrp_crashed'],
      'the unknown lrp_deployment_created frame is skipped',
    );
    assert.equal(events[0]!.type === 'desired_lrp_created' && events[0]!.event.desiredLrp?.instances, 2);
    assert.equal(events[1]!.type === 'actual_lrp_instance_created' && events[1]!.event.actualLrp?.since, '1700000000123456789');
    assert.equal(events[2]!.type === 'actual_lrp_crashed' && events[2]!.event.crashReason, 'out of memory');

    const [request] = server.requests;
    const lines = request!.head.split('\r\n');
    assert.equal(lines[0], 'POST /v1/events/lrp_instances.r1 HTTP/1.1');
    assert.ok(lines.includes('Content-Type: application/x-protobuf'));
    assert.ok(lines.includes('X-Vcap-Request-Id: req-42'));
    assert.deepEqual(EventsByCellId.decode(request!.body), { cellId: 'cell-7' });
  });

  test('the same frames written byte by byte', async () => {
    const wire = bytes(BBS_STREAM_HEAD + bbsEvent(0, 'desired_lrp_created', desiredCreated('p-2')) + bbsEvent(1, 'actual_lrp_crashed', crashed('p-2')));
    const server = await rawServer((socket) => {
      let i = 0;
      const timer = setInterval(() => {
        // Several bytes per tick keeps the test short; each is still its own write.
        for (let n = 0; n < 16 && i < wire.length; n++) socket.write(wire.subarray(i, ++i));
        if (i >= wire.length) clearInterval(timer);
      }, 1);
    });
    const stream = await openLrpStream(server.url);
    const events = await take(stream, 2);
    stream.close();
    assert.deepEqual(
      events.map((e) => e.type),
      ['desired_lrp_created', 'actual_lrp_crashed'],
    );
  });

  test('a stream without chunked framing (Transfer-Encoding: identity) is read to its end', async () => {
    const server = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: identity\r\n\r\n');
      socket.write(`id: 0\r\nevent: desired_lrp_created\r\ndata: ${desiredCreated('p-3')}\r\n\r\n`);
    });
    const stream = await openLrpStream(server.url);
    const [event] = await take(stream, 1);
    stream.close();
    assert.equal(event!.type === 'desired_lrp_created' && event!.event.desiredLrp?.processGuid, 'p-3');
  });

  test('the task stream decodes task events', async () => {
    const before = { taskGuid: 't-1', state: Task_State.STATE_RUNNING };
    const after = { taskGuid: 't-1', state: Task_State.STATE_COMPLETED, failed: true, failureReason: 'task was cancelled' };
    const data = b64(TaskChangedEvent.encode(TaskChangedEvent.fromPartial({ before, after })).finish());
    const server = await rawServer((socket) => socket.write(BBS_STREAM_HEAD + bbsEvent(0, 'task_changed', data)));
    const stream = await openEventStream<TaskEvent>({
      endpoint: { url: new URL(server.url) },
      route: '/v1/events/tasks.r1',
      body: new Uint8Array(0),
      accepted: TASK_EVENT_TYPES,
      logger,
      timeoutMs: 2_000,
    });
    const [event] = await take(stream, 1);
    stream.close();
    assert.equal(event!.type, 'task_changed');
    assert.equal(event!.type === 'task_changed' && event!.event.after?.failureReason, 'task was cancelled');
  });

  test('the last-chunk ends the stream with an Unavailable error, not silently', async () => {
    const server = await rawServer((socket) => socket.end(BBS_STREAM_HEAD + bbsEvent(0, 'desired_lrp_created', desiredCreated('p')) + '0\r\n\r\n'));
    const stream = await openLrpStream(server.url);
    assert.equal((await stream.next()).value?.type, 'desired_lrp_created');
    await assert.rejects(stream.next(), (error: unknown) => error instanceof BbsUnavailableError && error.reason === 'stream-closed');
    assert.equal(stream.closed, true);
  });

  test('a dropped connection ends the stream with an Unavailable error', async () => {
    const server = await rawServer((socket) => {
      socket.write(BBS_STREAM_HEAD);
      setTimeout(() => socket.destroy(), 20);
    });
    const stream = await openLrpStream(server.url);
    await assert.rejects(stream.next(), BbsUnavailableError);
  });

  test('close() ends a pending next() as done, and for-await break closes', async () => {
    const server = await rawServer((socket) => socket.write(BBS_STREAM_HEAD + bbsEvent(0, 'desired_lrp_created', desiredCreated('p'))));
    const stream = await openLrpStream(server.url);
    for await (const event of stream) {
      assert.equal(event.type, 'desired_lrp_created');
      break;
    }
    assert.equal(stream.closed, true);

    const second = await openLrpStream(server.url);
    await second.next();
    const pending = second.next();
    setTimeout(() => second.close(), 10);
    assert.deepEqual(await pending, { done: true, value: undefined });
  });

  test('an aborted signal closes the stream', async () => {
    const server = await rawServer((socket) => socket.write(BBS_STREAM_HEAD));
    const controller = new AbortController();
    const stream = await openLrpStream(server.url, { signal: controller.signal });
    const pending = stream.next();
    controller.abort();
    assert.deepEqual(await pending, { done: true, value: undefined });
  });

  test('a garbled chunk header fails the stream with InvalidResponse', async () => {
    const server = await rawServer((socket) => socket.write(BBS_STREAM_HEAD + 'zz;\r\nnope\r\n'));
    const stream = await openLrpStream(server.url);
    await assert.rejects(stream.next(), (error: unknown) => error instanceof BbsError && error.type === Error_Type.TYPE_INVALID_RESPONSE);
  });

  test('a known event with a bad payload fails the stream with InvalidProtobufMessage', async () => {
    const server = await rawServer((socket) => socket.write(BBS_STREAM_HEAD + bbsEvent(0, 'actual_lrp_crashed', '!!!')));
    const stream = await openLrpStream(server.url);
    await assert.rejects(stream.next(), (error: unknown) => error instanceof BbsError && error.type === Error_Type.TYPE_INVALID_PROTOBUF_MESSAGE);
  });
});

describe('openEventStream refusals', () => {
  test('503 while the BBS migrates is Unavailable', async () => {
    const server = await rawServer((socket) => socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n'));
    await assert.rejects(openLrpStream(server.url), (error: unknown) => error instanceof BbsUnavailableError && error.reason === 'not-serving');
  });

  test('another status is InvalidResponse', async () => {
    const server = await rawServer((socket) => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found'));
    await assert.rejects(openLrpStream(server.url), (error: unknown) => error instanceof BbsInvalidResponseError && error.status === 404);
  });

  test('a 200 protobuf answer carries an in-band error, mapped by meaning', async () => {
    const body = Buffer.from([0x0a, 0x09, 0x08, 0x0d, 0x12, 0x05, ...Buffer.from('gone!')]);
    const server = await rawServer((socket) => socket.end(Buffer.concat([bytes(`HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`), body])));
    await assert.rejects(openLrpStream(server.url), (error: unknown) => error instanceof BbsResourceNotFoundError && error.message === 'gone!');
  });

  test('a server that never answers is Unavailable (timeout) within the deadline', async () => {
    const server = await rawServer(() => undefined);
    const started = Date.now();
    await assert.rejects(openLrpStream(server.url, { timeoutMs: 100 }), (error: unknown) => error instanceof BbsUnavailableError && error.reason === 'timeout');
    assert.ok(Date.now() - started < 2_000);
  });

  test('nothing listening is Unavailable (transport)', async () => {
    const server = await rawServer(() => undefined);
    const port = server.port;
    servers.pop()!.close();
    await new Promise((resolve) => setTimeout(resolve, 10));
    await assert.rejects(openLrpStream(`http://127.0.0.1:${port}`), (error: unknown) => error instanceof BbsUnavailableError && error.reason === 'transport');
  });
});

// ---- resubscribing -----------------------------------------------------------------------------------

describe('resubscribing', () => {
  const fast = { backoff: { initialMs: 5, maxMs: 20 }, logger };

  test('reconnects after the server drops the connection and marks it with resubscribed', async () => {
    const server = await rawServer((socket, _request, n) => {
      socket.write(BBS_STREAM_HEAD + bbsEvent(0, 'desired_lrp_created', desiredCreated(`p-${n}`)));
      // The first connection is dropped mid-stream, the way a restarting BBS drops it.
      if (n === 1) setTimeout(() => socket.destroy(), 20);
    });
    const stream = resubscribing((signal) => openLrpStream(server.url, { signal }), fast);
    await stream.subscribed;
    const seen = await take(stream, 3);
    stream.close();
    assert.deepEqual(
      seen.map((e) => (e.type === 'desired_lrp_created' ? `${e.type}:${e.event.desiredLrp?.processGuid}` : e.type)),
      ['desired_lrp_created:p-1', 'resubscribed', 'desired_lrp_created:p-2'],
    );
    assert.equal(server.requests.length, 2);
  });

  test('a refused first connection is retried with backoff and is not marked', async () => {
    let calls = 0;
    const server = await rawServer((socket) => socket.write(BBS_STREAM_HEAD + bbsEvent(0, 'desired_lrp_created', desiredCreated('p'))));
    const waits: number[] = [];
    const stream = resubscribing(
      (signal) => {
        calls++;
        return calls < 3 ? Promise.reject(new BbsUnavailableError('transport', 'refused')) : openLrpStream(server.url, { signal });
      },
      { ...fast, backoff: { initialMs: 10, maxMs: 15, factor: 2 }, sleep: async (ms) => void waits.push(ms) },
    );
    const [first] = await take(stream, 1);
    await stream.subscribed;
    stream.close();
    assert.equal(first?.type, 'desired_lrp_created');
    assert.deepEqual(waits, [10, 15], 'backoff grows and is capped');
  });

  test('gives up after the bound of consecutive failures', async () => {
    let calls = 0;
    const stream = resubscribing(
      () => {
        calls++;
        return Promise.reject(new BbsUnavailableError('transport', 'refused'));
      },
      { ...fast, maxConsecutiveFailures: 4 },
    );
    await assert.rejects(stream.next(), (error: unknown) => error instanceof BbsUnavailableError && /4 consecutive/.test(error.message));
    await assert.rejects(stream.subscribed, BbsUnavailableError);
    assert.equal(calls, 4);
    assert.equal(stream.closed, true, 'a stream that gave up is finished');
    assert.deepEqual(await stream.next(), { done: true, value: undefined });
  });

  test('close() during a backoff wait ends the stream at once', async () => {
    const stream = resubscribing(() => Promise.reject(new BbsUnavailableError('transport', 'refused')), { ...fast, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    const pending = stream.next();
    setTimeout(() => stream.close(), 20);
    const started = Date.now();
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.ok(Date.now() - started < 5_000);
    await assert.rejects(stream.subscribed, BbsUnavailableError);
  });

  test('an aborted signal closes it, and the open subscription with it', async () => {
    const server = await rawServer((socket) => socket.write(BBS_STREAM_HEAD));
    const controller = new AbortController();
    const stream = resubscribing((signal) => openLrpStream(server.url, { signal }), { ...fast, signal: controller.signal });
    await stream.subscribed;
    const pending = stream.next();
    controller.abort();
    assert.deepEqual(await pending, { done: true, value: undefined });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.sockets.size, 0, 'the connection was released');
  });
});
