// Writing an event stream exactly as the BBS does (handlers/events_handlers.go): the response
// head goes out, the connection is then taken over ("hijacked"), and every SSE frame
//   id: <n>\nevent: <name>\ndata: <base64 protobuf>\n\n
// is written as a hand-made HTTP/1.1 chunk whose size line carries an empty extension,
//   <hex size>;\r\n<frame>\r\n
// with ids counting from 0 on each connection, and `0\r\n\r\n` when the stream ends. Clients built
// for the real BBS (Go's and ours) read this framing; Node's own HTTP client rejects the ';'.
import type { Socket } from 'node:net';
import type { Logger } from '../../../lib/log.js';
import type { EventSubscription, HubEvent, SubscriptionEndReason } from './hub.js';

/** How many queued events one flush writes before yielding to other work. */
const MAX_EVENTS_PER_FLUSH = 256;
/** After the final chunk, how long a peer that stopped reading keeps the connection. */
export const DEFAULT_END_GRACE_MS = 2_000;

/** The response head Go writes for the BBS's stream headers, then hijacks the connection. */
export function eventStreamHead(date: Date): string {
  return (
    'HTTP/1.1 200 OK\r\n' +
    'Cache-Control: no-cache, no-store, must-revalidate\r\n' +
    'Connection: keep-alive\r\n' +
    'Content-Type: text/event-stream; charset=utf-8\r\n' +
    'Transfer-Encoding: chunked\r\n' +
    `Date: ${date.toUTCString()}\r\n` +
    '\r\n'
  );
}

/** One SSE frame as its own chunk. The frame is ASCII (base64 data), so length = bytes. */
export function eventChunk(id: number, event: HubEvent): string {
  const frame = `id: ${id}\nevent: ${event.name}\ndata: ${event.data}\n\n`;
  return `${frame.length.toString(16)};\r\n${frame}\r\n`;
}

export const FINAL_CHUNK = '0\r\n\r\n';

export interface EventStreamOptions {
  socket: Socket;
  subscription: EventSubscription;
  logger: Logger;
  now: () => Date;
  endGraceMs?: number;
  /** Called once when the stream is over, whatever ended it. */
  onClosed?: (reason: SubscriptionEndReason | 'connection-closed') => void;
}

/**
 * Streams a subscription's events to a connection taken over from the HTTP server. Events are
 * written only while the socket accepts them without buffering; otherwise they wait in the
 * subscription's bounded queue, so a peer that stops reading fills that queue and is cut off.
 */
export function streamEvents(options: EventStreamOptions): void {
  const { socket, subscription, logger } = options;
  const endGraceMs = options.endGraceMs ?? DEFAULT_END_GRACE_MS;
  let nextId = 0;
  let flushScheduled = false;
  let finished = false;

  const finish = (reason: SubscriptionEndReason | 'connection-closed') => {
    if (finished) return;
    finished = true;
    options.onClosed?.(reason);
  };

  const flush = () => {
    flushScheduled = false;
    if (finished || socket.destroyed) return;
    // Bounded per turn; a drain or the next batch of events resumes the rest.
    for (let batch = 0; batch < 64 && !socket.writableNeedDrain && subscription.pending > 0; batch++) {
      const events = subscription.take(MAX_EVENTS_PER_FLUSH);
      let text = '';
      for (const event of events) text += eventChunk(nextId++, event);
      socket.write(text);
    }
    if (subscription.pending > 0 && !socket.writableNeedDrain) scheduleFlush();
  };

  const scheduleFlush = () => {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(flush);
  };

  socket.on('drain', scheduleFlush);
  socket.on('error', (err) => logger.debug({ err }, 'event-stream-socket-error'));
  socket.on('close', () => {
    subscription.close();
    finish('connection-closed');
  });
  // Anything the peer sends after its request is read and dropped, as the BBS does, so the
  // connection's close is still noticed.
  socket.on('data', () => {});
  socket.resume();

  subscription.listen({
    onEvents: scheduleFlush,
    onEnd(reason) {
      if (reason === 'unsubscribed' || socket.destroyed) return;
      if (reason === 'slow-consumer') logger.info({ cell_id: subscription.cellId }, 'event-stream-slow-consumer');
      socket.end(FINAL_CHUNK);
      // A peer that no longer reads never lets the final chunk out; do not wait forever.
      setTimeout(() => socket.destroy(), endGraceMs).unref();
      finish(reason);
    },
  });

  socket.write(eventStreamHead(options.now()));
}
