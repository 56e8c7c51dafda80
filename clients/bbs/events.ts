// BBS event subscriptions over a raw socket, and a wrapper that resubscribes after a drop.
//
// The request is written by hand and the answer read by hand because the BBS frames its stream
// in a way node:http refuses (see sse.ts). Reads are pulled by the consumer: while it is busy
// nothing more is read from the socket, TCP's window closes, the BBS's per-subscriber buffer
// (1,024 events) fills and the BBS drops the subscriber, as it does for a slow Go client. Nothing
// here buffers an unbounded number of events.
//
// The BBS has no replay (no Last-Event-ID), so after any drop a consumer must re-list what it
// tracks; the resubscribing wrapper says so with a `{ type: 'resubscribed' }` marker.
import { randomUUID } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from '../../lib/log.js';
import { Error_Type } from '../../gen/diego/bbs/v1/error.js';
import { BbsError, BbsInvalidResponseError, BbsUnavailableError, bbsErrorFromWire } from './errors.js';
import { createListDecoder } from './list-decoder.js';
import { ChunkedDecoder, decodeBbsEvent, InvalidEventPayloadError, SseParser, StreamFormatError, type BbsEvent, type SseFrame } from './sse.js';

/** Where and how to reach the BBS; built once by the client from its options. */
export interface EventEndpoint {
  /** http: or https: base URL; a path prefix is kept. */
  url: URL;
  /** TLS material for https (already loaded). */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string; rejectUnauthorized?: boolean };
}

export interface OpenEventStreamOptions {
  endpoint: EventEndpoint;
  /** e.g. /v1/events/lrp_instances.r1 */
  route: string;
  /** The request message's bytes (EventsByCellId). */
  body: Uint8Array;
  /** Event names this stream yields; others are skipped. */
  accepted: ReadonlySet<string>;
  logger: Logger;
  /** Deadline for connecting and receiving the answer's head; the stream itself is open-ended. */
  timeoutMs: number;
  requestId?: string;
  /** Aborting closes the stream (and cancels a subscription still being opened). */
  signal?: AbortSignal;
}

/** A subscription: an async iterable of typed events, ended by close(). Single consumer. */
export interface BbsEventStream<E> extends AsyncIterableIterator<E> {
  /** Stops reading and releases the connection; a pending next() resolves as done. */
  close(): void;
  readonly closed: boolean;
}

/** Bound on the answer's status line and headers. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Bound on an error body (a protobuf Error) read from a refused subscription. */
const MAX_ERROR_BODY_BYTES = 1024 * 1024;

/** Pull-based reads from a socket: one chunk per call, null at the end. */
class SocketReader {
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    const wake = () => {
      const w = this.wake;
      this.wake = undefined;
      w?.();
    };
    socket.on('readable', wake);
    socket.on('end', () => {
      this.ended = true;
      wake();
    });
    socket.on('error', (error) => {
      this.error = error;
      wake();
    });
    socket.on('close', () => {
      this.ended = true;
      wake();
    });
  }

  async read(): Promise<Buffer | null> {
    // Each turn either returns or waits for one socket event; the socket's life bounds it.
    for (;;) {
      const chunk = this.socket.read() as Buffer | null;
      if (chunk !== null) return chunk;
      if (this.error) throw this.error;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Wakes a pending read, e.g. after the socket was destroyed without an error event. */
  interrupt(): void {
    this.ended = true;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

interface ResponseHead {
  status: number;
  headers: Map<string, string>;
  rest: Buffer;
}

function parseHead(text: string): { status: number; headers: Map<string, string> } {
  const lines = text.split(/\r?\n/);
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!statusLine) throw new StreamFormatError(`not an HTTP/1.1 status line: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new StreamFormatError('malformed header line');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { status: Number(statusLine[1]), headers };
}

async function readHead(reader: SocketReader): Promise<ResponseHead> {
  let buffered: Buffer = Buffer.alloc(0);
  // Bounded by MAX_HEAD_BYTES.
  for (;;) {
    const chunk = await reader.read();
    if (chunk === null) throw new BbsUnavailableError('transport', 'the BBS closed the connection before answering');
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const crlf = buffered.indexOf('\r\n\r\n');
    const lf = buffered.indexOf('\n\n');
    const end = crlf !== -1 && (lf === -1 || crlf < lf) ? crlf + 4 : lf !== -1 ? lf + 2 : -1;
    if (end !== -1) {
      const { status, headers } = parseHead(buffered.subarray(0, end).toString('latin1'));
      return { status, headers, rest: buffered.subarray(end) };
    }
    if (buffered.length > MAX_HEAD_BYTES) throw new StreamFormatError('answer head larger than 64 KiB');
  }
}

/** The error a refused subscription reports: in-band BBS error, 503, router error or bad status. */
async function refusal(head: ResponseHead, reader: SocketReader, route: string): Promise<BbsError> {
  const routerError = head.headers.get('x-cf-routererror');
  if (routerError !== undefined) return new BbsError(Error_Type.TYPE_ROUTER_ERROR, routerError);
  if (head.status === 503) return new BbsUnavailableError('not-serving', `${route} answered 503: the BBS is not serving yet`);
  if (head.status !== 200) return new BbsInvalidResponseError(head.status, `Invalid Response with status code: ${head.status}`);
  // 200 with a protobuf body instead of a stream: the BBS reporting an error in-band.
  const length = Number(head.headers.get('content-length') ?? NaN);
  const decoder = createListDecoder<undefined>({ decode: () => undefined });
  let read = 0;
  let body = head.rest;
  // Bounded by MAX_ERROR_BODY_BYTES and by the content length.
  for (;;) {
    decoder.push(body);
    read += body.length;
    if ((Number.isFinite(length) && read >= length) || read > MAX_ERROR_BODY_BYTES) break;
    const chunk = await reader.read();
    if (chunk === null) break;
    body = chunk;
  }
  try {
    const { error } = decoder.finish();
    if (error) return bbsErrorFromWire(error);
  } catch {
    // Not a protobuf answer after all; reported below.
  }
  return new BbsInvalidResponseError(head.status, `${route} answered ${head.headers.get('content-type') ?? 'without a content type'} instead of an event stream`);
}

function requestBytes(endpoint: EventEndpoint, route: string, body: Uint8Array, requestId: string): Buffer {
  const path = endpoint.url.pathname.replace(/\/+$/, '') + route;
  const head =
    `POST ${path} HTTP/1.1\r\n` +
    `Host: ${endpoint.url.host}\r\n` +
    'Content-Type: application/x-protobuf\r\n' +
    `Content-Length: ${body.length}\r\n` +
    `X-Vcap-Request-Id: ${requestId}\r\n` +
    'Accept: text/event-stream\r\n' +
    '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

function connectSocket(endpoint: EventEndpoint): Socket {
  const host = endpoint.url.hostname.replace(/^\[|\]$/g, '');
  const secure = endpoint.url.protocol === 'https:';
  const port = Number(endpoint.url.port || (secure ? 443 : 80));
  if (!secure) return netConnect({ host, port });
  const tls = endpoint.tls ?? {};
  return tlsConnect({
    host,
    port,
    servername: tls.servername ?? (/^[\d.]+$|:/.test(host) ? undefined : host),
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    ALPNProtocols: ['http/1.1'],
  });
}

/**
 * Opens one subscription. Resolves once the BBS has answered 200 (from then on it delivers
 * every event it publishes); rejects with a typed BbsError otherwise.
 */
export async function openEventStream<E extends BbsEvent>(options: OpenEventStreamOptions): Promise<BbsEventStream<E>> {
  const requestId = options.requestId ?? randomUUID();
  const log = options.logger.child({ route: options.route, request_id: requestId });
  options.signal?.throwIfAborted();
  const socket = connectSocket(options.endpoint);
  socket.setNoDelay(true);
  // The BBS sends nothing on a quiet stream; TCP keep-alive is what notices a peer that vanished.
  socket.setKeepAlive(true, 30_000);
  const reader = new SocketReader(socket);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
    reader.interrupt();
  }, options.timeoutMs);
  const onAbort = () => {
    socket.destroy();
    reader.interrupt();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let head: ResponseHead;
  try {
    socket.write(requestBytes(options.endpoint, options.route, options.body, requestId));
    head = await readHead(reader);
    // Anything but a 200 is a refusal, and so is a 200 carrying a protobuf (an in-band error);
    // other content types are read as the stream, to be lenient with what proxies do to headers.
    if (head.status !== 200 || (head.headers.get('content-type') ?? '').startsWith('application/x-protobuf')) {
      throw await refusal(head, reader, options.route);
    }
  } catch (error) {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    socket.destroy();
    if (options.signal?.aborted) throw options.signal.reason;
    if (timedOut) throw new BbsUnavailableError('timeout', `${options.route} did not answer within ${options.timeoutMs} ms`);
    if (error instanceof BbsError) throw error;
    if (error instanceof StreamFormatError) throw new BbsError(Error_Type.TYPE_INVALID_RESPONSE, `${options.route}: ${error.message}`);
    throw new BbsUnavailableError('transport', `${options.route} did not reach the BBS: ${(error as Error).message}`, { cause: error });
  }
  clearTimeout(timer);
  log.debug({ chunked: /chunked/i.test(head.headers.get('transfer-encoding') ?? '') }, 'bbs-event-stream-opened');

  const chunked = /chunked/i.test(head.headers.get('transfer-encoding') ?? '') ? new ChunkedDecoder() : undefined;
  const parser = new SseParser();
  let frames: SseFrame[] = [];
  let nextFrame = 0;
  let closed = false;
  let reading = false;

  const feed = (bytes: Uint8Array) => {
    const pieces = chunked ? chunked.push(bytes) : [bytes];
    for (const piece of pieces) {
      const parsed = parser.push(piece);
      if (parsed.length === 0) continue;
      frames = nextFrame < frames.length ? frames.slice(nextFrame).concat(parsed) : parsed;
      nextFrame = 0;
    }
  };

  const close = () => {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener('abort', close);
    socket.destroy();
    reader.interrupt();
    log.debug('bbs-event-stream-closed');
  };
  options.signal?.removeEventListener('abort', onAbort);
  options.signal?.addEventListener('abort', close, { once: true });

  const fail = (error: BbsError): never => {
    if (!closed) {
      closed = true;
      options.signal?.removeEventListener('abort', close);
      socket.destroy();
    }
    throw error;
  };

  // Bytes that came with the head are the stream's first; they are read like any later chunk,
  // so that a bad frame fails next(), not the subscription.
  let unread: Buffer | null = head.rest.length > 0 ? head.rest : null;

  const stream: BbsEventStream<E> = {
    get closed() {
      return closed;
    },
    close,
    async next(): Promise<IteratorResult<E>> {
      if (reading) throw new Error('a BBS event stream has one consumer: await next() before calling it again');
      reading = true;
      try {
        // Each turn hands out a frame or reads one more chunk; the connection's life bounds it.
        for (;;) {
          if (closed) return { done: true, value: undefined };
          if (nextFrame < frames.length) {
            const frame = frames[nextFrame++]!;
            let event: BbsEvent | undefined;
            try {
              event = decodeBbsEvent(frame, options.accepted);
            } catch (error) {
              if (error instanceof InvalidEventPayloadError) fail(new BbsError(Error_Type.TYPE_INVALID_PROTOBUF_MESSAGE, error.message));
              throw error;
            }
            if (event === undefined) {
              log.debug({ event_name: frame.event, event_id: frame.id }, 'skipping-unknown-bbs-event');
              continue;
            }
            return { done: false, value: event as E };
          }
          let chunk: Buffer | null;
          try {
            chunk = unread ?? (await reader.read());
            unread = null;
          } catch (error) {
            if (closed) return { done: true, value: undefined };
            return fail(new BbsUnavailableError('stream-closed', `${options.route} broke: ${(error as Error).message}`, { cause: error }));
          }
          if (closed) return { done: true, value: undefined };
          if (chunk === null) return fail(new BbsUnavailableError('stream-closed', `the BBS ended ${options.route}`));
          try {
            feed(chunk);
          } catch (error) {
            if (error instanceof StreamFormatError) fail(new BbsError(Error_Type.TYPE_INVALID_RESPONSE, `${options.route}: ${error.message}`));
            throw error;
          }
          if (chunked?.done && nextFrame >= frames.length) return fail(new BbsUnavailableError('stream-closed', `the BBS ended ${options.route}`));
        }
      } finally {
        reading = false;
      }
    },
    async return(): Promise<IteratorResult<E>> {
      close();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return stream;
}

// ---- resubscribing ---------------------------------------------------------------------------

/** Emitted after every reconnect: events may have been missed, so re-list. */
export interface ResubscribedMarker {
  type: 'resubscribed';
}

export interface BackoffOptions {
  /** First wait after a drop. */
  initialMs: number;
  /** Longest wait. */
  maxMs: number;
  /** Growth per consecutive failure; 2 unless set. */
  factor?: number;
}

export interface ResubscribeOptions {
  logger: Logger;
  backoff?: BackoffOptions;
  /**
   * Consecutive failed attempts (refused connections, or connections that dropped before
   * delivering an event) after which the stream gives up and throws; bounds the loop.
   */
  maxConsecutiveFailures?: number;
  /** Aborting closes the stream. */
  signal?: AbortSignal;
  /** How to wait; injectable so tests control time. Must reject or resolve early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** A resubscribing stream; `subscribed` settles when the first connection is up. */
export interface ResubscribingEventStream<E> extends BbsEventStream<E | ResubscribedMarker> {
  /** Resolves once the first subscription is open; rejects if the stream gives up or closes first. */
  readonly subscribed: Promise<void>;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 5_000, factor: 2 };
/** With the default backoff, about ten minutes of refused attempts: longer than a BBS migration. */
export const DEFAULT_MAX_CONSECUTIVE_FAILURES = 130;

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export function backoffDelay(backoff: BackoffOptions, failures: number): number {
  const factor = backoff.factor ?? 2;
  return Math.min(backoff.maxMs, backoff.initialMs * factor ** Math.max(0, failures - 1));
}

/**
 * Keeps a subscription open across drops. `open` makes one subscription and must honour its
 * signal. The first connection is opened at once; later ones when the consumer next pulls after
 * a drop, after a backoff that grows with consecutive failures.
 */
export function resubscribing<E>(open: (signal: AbortSignal) => Promise<BbsEventStream<E>>, options: ResubscribeOptions): ResubscribingEventStream<E> {
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const maxFailures = options.maxConsecutiveFailures ?? DEFAULT_MAX_CONSECUTIVE_FAILURES;
  const sleep = options.sleep ?? abortableSleep;
  const lifetime = new AbortController();
  const log = options.logger;
  let current: BbsEventStream<E> | undefined;
  let failures = 0;
  let everConnected = false;
  let closed = false;
  let reading = false;

  let settleSubscribed: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  const subscribed = new Promise<void>((resolve, reject) => (settleSubscribed = { resolve, reject }));
  // Callers that never await it must not see an unhandled rejection.
  subscribed.catch(() => undefined);

  const close = () => {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener('abort', close);
    lifetime.abort();
    current?.close();
    current = undefined;
    settleSubscribed?.reject(new BbsUnavailableError('stream-closed', 'the event stream was closed before it subscribed'));
  };
  options.signal?.addEventListener('abort', close, { once: true });
  if (options.signal?.aborted) close();

  /** One attempt to (re)connect; returns whether a subscription is now open. */
  async function connect(): Promise<boolean> {
    try {
      current = await open(lifetime.signal);
    } catch (error) {
      if (closed) return false;
      failures++;
      log.warn({ err: error, failures }, 'bbs-event-subscription-failed');
      if (failures >= maxFailures) {
        const giveUp = new BbsUnavailableError('stream-closed', `gave up subscribing after ${failures} consecutive failures: ${(error as Error).message}`, { cause: error });
        settleSubscribed?.reject(giveUp);
        close();
        throw giveUp;
      }
      return false;
    }
    if (closed) {
      current.close();
      current = undefined;
      return false;
    }
    settleSubscribed?.resolve();
    return true;
  }

  let first: Promise<boolean> | undefined = connect();
  first.catch(() => undefined);

  const stream: ResubscribingEventStream<E> = {
    subscribed,
    get closed() {
      return closed;
    },
    close,
    async next(): Promise<IteratorResult<E | ResubscribedMarker>> {
      if (reading) throw new Error('a BBS event stream has one consumer: await next() before calling it again');
      reading = true;
      try {
        // Each turn delivers, reconnects once, or gives up after maxFailures; bounded.
        for (;;) {
          if (closed) return { done: true, value: undefined };
          if (first) {
            const pending = first;
            first = undefined;
            if (await pending) {
              everConnected = true;
              continue;
            }
          }
          if (!current) {
            await sleep(backoffDelay(backoff, Math.max(1, failures)), lifetime.signal);
            if (closed) return { done: true, value: undefined };
            const reconnected = await connect();
            if (!reconnected) continue;
            const marker = everConnected;
            everConnected = true;
            log.info({ failures }, 'bbs-event-stream-resubscribed');
            if (marker) return { done: false, value: { type: 'resubscribed' } };
            continue;
          }
          try {
            const result = await current.next();
            if (result.done) {
              if (closed) return { done: true, value: undefined };
              throw new BbsUnavailableError('stream-closed', 'the event stream ended');
            }
            failures = 0;
            return result;
          } catch (error) {
            if (closed) return { done: true, value: undefined };
            current?.close();
            current = undefined;
            failures++;
            log.warn({ err: error, failures }, 'bbs-event-stream-dropped');
            if (failures >= maxFailures) {
              close();
              throw new BbsUnavailableError('stream-closed', `gave up after ${failures} consecutive drops: ${(error as Error).message}`, { cause: error });
            }
          }
        }
      } finally {
        reading = false;
      }
    },
    async return(): Promise<IteratorResult<E | ResubscribedMarker>> {
      close();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return stream;
}
