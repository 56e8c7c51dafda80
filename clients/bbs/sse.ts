// The byte-level half of the BBS event streams: a tolerant HTTP/1.1 chunked decoder, an SSE
// frame parser, and the decoding of a frame into a typed BBS event. All three are pure and
// incremental (fed any split of the bytes), so they are tested without sockets.
//
// Why a decoder of our own: the BBS hijacks the connection and writes every SSE frame as a
// hand-made chunk whose size line ends in an empty extension (`<hex>;\r\n<frame>\r\n`). That is
// valid HTTP/1.1 (RFC 9112 allows chunk extensions) but Node's llhttp rejects it with HPE_STRICT,
// so node:http cannot read a real BBS's event stream.
import {
  ActualLRPCrashedEvent,
  ActualLRPInstanceChangedEvent,
  ActualLRPInstanceCreatedEvent,
  ActualLRPInstanceRemovedEvent,
  DesiredLRPChangedEvent,
  DesiredLRPCreatedEvent,
  DesiredLRPRemovedEvent,
  TaskChangedEvent,
  TaskCreatedEvent,
  TaskRemovedEvent,
} from '../../gen/diego/bbs/v1/events.js';

/** The stream's bytes do not follow HTTP/1.1 chunked framing or the SSE format. */
export class StreamFormatError extends Error {
  override name = 'StreamFormatError';
}

const CR = 0x0d;
const LF = 0x0a;

/** A size line (hex digits plus extensions) longer than this is not a chunk header. */
const MAX_CHUNK_LINE = 4096;
/** Trailer section bound, so a broken peer cannot make us buffer forever. */
const MAX_TRAILER_BYTES = 16 * 1024;

type ChunkState = 'size' | 'data' | 'data-end' | 'trailers' | 'done';

/**
 * Decodes `Transfer-Encoding: chunked`, accepting what strict parsers refuse: chunk extensions
 * (empty `;` included), whitespace before them, and bare LF line ends. Everything after the
 * last-chunk and trailers is ignored.
 */
export class ChunkedDecoder {
  private state: ChunkState = 'size';
  private line: number[] = [];
  private remaining = 0;
  /** Bytes of the CRLF after a chunk's data that were already seen (CR counts as one). */
  private sawCr = false;
  private trailerBytes = 0;

  /** True once the last-chunk (size 0) and its trailers were read: the body is complete. */
  get done(): boolean {
    return this.state === 'done';
  }

  /** Feeds bytes; returns the body bytes they carry (views into `input`). */
  push(input: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let i = 0;
    // Every branch consumes at least one byte or ends the loop.
    while (i < input.length) {
      switch (this.state) {
        case 'size': {
          const byte = input[i++]!;
          if (byte === LF) {
            this.startChunk();
          } else {
            if (this.line.length >= MAX_CHUNK_LINE) throw new StreamFormatError('chunk size line too long');
            this.line.push(byte);
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, input.length - i);
          out.push(input.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = 'data-end';
          break;
        }
        case 'data-end': {
          const byte = input[i++]!;
          if (byte === CR && !this.sawCr) {
            this.sawCr = true;
          } else if (byte === LF) {
            this.sawCr = false;
            this.state = 'size';
          } else {
            throw new StreamFormatError(`expected CRLF after chunk data, got byte 0x${byte.toString(16)}`);
          }
          break;
        }
        case 'trailers': {
          const byte = input[i++]!;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) throw new StreamFormatError('chunked trailers too long');
          if (byte === LF) {
            const blank = this.line.length === 0 || (this.line.length === 1 && this.line[0] === CR);
            this.line = [];
            if (blank) this.state = 'done';
          } else {
            this.line.push(byte);
          }
          break;
        }
        case 'done':
          return out;
      }
    }
    return out;
  }

  private startChunk(): void {
    let text = Buffer.from(this.line).toString('latin1');
    this.line = [];
    if (text.endsWith('\r')) text = text.slice(0, -1);
    const semicolon = text.indexOf(';');
    const sizeText = (semicolon === -1 ? text : text.slice(0, semicolon)).trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) throw new StreamFormatError(`invalid chunk size line ${JSON.stringify(text.slice(0, 40))}`);
    const size = parseInt(sizeText, 16);
    if (size === 0) {
      this.state = 'trailers';
      this.trailerBytes = 0;
    } else {
      this.remaining = size;
      this.state = 'data';
    }
  }
}

/** One server-sent event. `data` lines are joined with `\n`. */
export interface SseFrame {
  id?: string;
  event: string;
  data: string;
}

/** One frame larger than this is not something a BBS sends; stop instead of buffering it. */
const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Parses the text/event-stream format (id, event, data, comments; lines end in CRLF, LF or CR;
 * a blank line ends a frame; frames without data are dropped, as go-sse and browsers do).
 */
export class SseParser {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** The last byte seen was CR: a following LF belongs to the same line end. */
  private afterCr = false;
  private id: string | undefined;
  private event = '';
  private data: string[] | undefined;
  private frameBytes = 0;

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Feeds bytes; returns the frames they complete. */
  push(input: Uint8Array): SseFrame[] {
    const frames: SseFrame[] = [];
    let start = 0;
    for (let i = 0; i < input.length; i++) {
      const byte = input[i]!;
      if (byte !== LF && byte !== CR) {
        this.afterCr = false;
        continue;
      }
      if (byte === LF && this.afterCr) {
        // Second half of a CRLF that was split around the CR.
        this.afterCr = false;
        start = i + 1;
        continue;
      }
      this.afterCr = byte === CR;
      this.appendPending(input.subarray(start, i));
      start = i + 1;
      const line = this.takeLine();
      const frame = this.onLine(line);
      if (frame) frames.push(frame);
    }
    if (start < input.length) this.appendPending(input.subarray(start));
    return frames;
  }

  private appendPending(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.frameBytes += bytes.length;
    if (this.frameBytes > this.maxFrameBytes) throw new StreamFormatError(`event frame larger than ${this.maxFrameBytes} bytes`);
    // Copy: the caller may reuse its buffer once push returns.
    this.pending.push(Uint8Array.prototype.slice.call(bytes));
    this.pendingBytes += bytes.length;
  }

  private takeLine(): string {
    const line =
      this.pending.length === 1 ? Buffer.from(this.pending[0]!.buffer, this.pending[0]!.byteOffset, this.pendingBytes).toString('utf8') : Buffer.concat(this.pending, this.pendingBytes).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    return line;
  }

  private onLine(line: string): SseFrame | undefined {
    if (line === '') {
      const frame = this.data === undefined ? undefined : { ...(this.id === undefined ? {} : { id: this.id }), event: this.event, data: this.data.join('\n') };
      this.id = undefined;
      this.event = '';
      this.data = undefined;
      this.frameBytes = 0;
      return frame;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'id':
        this.id = value;
        break;
      case 'event':
        this.event = value;
        break;
      case 'data':
        (this.data ??= []).push(value);
        break;
      default:
        // `retry` and unknown fields carry nothing a BBS client uses.
        break;
    }
    return undefined;
  }
}

// ---- BBS events --------------------------------------------------------------------------

/** The events of /v1/events/lrp_instances.r1, by their SSE names. */
export type LrpInstanceEvent =
  | { type: 'desired_lrp_created'; event: DesiredLRPCreatedEvent }
  | { type: 'desired_lrp_changed'; event: DesiredLRPChangedEvent }
  | { type: 'desired_lrp_removed'; event: DesiredLRPRemovedEvent }
  | { type: 'actual_lrp_instance_created'; event: ActualLRPInstanceCreatedEvent }
  | { type: 'actual_lrp_instance_changed'; event: ActualLRPInstanceChangedEvent }
  | { type: 'actual_lrp_instance_removed'; event: ActualLRPInstanceRemovedEvent }
  | { type: 'actual_lrp_crashed'; event: ActualLRPCrashedEvent };

/** The events of /v1/events/tasks.r1. */
export type TaskEvent =
  | { type: 'task_created'; event: TaskCreatedEvent }
  | { type: 'task_changed'; event: TaskChangedEvent }
  | { type: 'task_removed'; event: TaskRemovedEvent };

export type BbsEvent = LrpInstanceEvent | TaskEvent;
export type BbsEventType = BbsEvent['type'];

const DECODERS: { [K in BbsEventType]: { decode(bytes: Uint8Array): Extract<BbsEvent, { type: K }>['event'] } } = {
  desired_lrp_created: DesiredLRPCreatedEvent,
  desired_lrp_changed: DesiredLRPChangedEvent,
  desired_lrp_removed: DesiredLRPRemovedEvent,
  actual_lrp_instance_created: ActualLRPInstanceCreatedEvent,
  actual_lrp_instance_changed: ActualLRPInstanceChangedEvent,
  actual_lrp_instance_removed: ActualLRPInstanceRemovedEvent,
  actual_lrp_crashed: ActualLRPCrashedEvent,
  task_created: TaskCreatedEvent,
  task_changed: TaskChangedEvent,
  task_removed: TaskRemovedEvent,
};

export const LRP_INSTANCE_EVENT_TYPES: ReadonlySet<string> = new Set<LrpInstanceEvent['type']>([
  'desired_lrp_created',
  'desired_lrp_changed',
  'desired_lrp_removed',
  'actual_lrp_instance_created',
  'actual_lrp_instance_changed',
  'actual_lrp_instance_removed',
  'actual_lrp_crashed',
]);

export const TASK_EVENT_TYPES: ReadonlySet<string> = new Set<TaskEvent['type']>(['task_created', 'task_changed', 'task_removed']);

/** A frame whose name is known but whose payload does not decode. */
export class InvalidEventPayloadError extends Error {
  override name = 'InvalidEventPayloadError';
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The typed event a frame carries, or undefined when its name is not one of `accepted` (newer
 * BBSes add event types; older clients skip them, as the Go client's callers do).
 */
export function decodeBbsEvent(frame: SseFrame, accepted: ReadonlySet<string>): BbsEvent | undefined {
  if (!accepted.has(frame.event)) return undefined;
  const type = frame.event as BbsEventType;
  const text = frame.data.replace(/\s+/g, '');
  if (text.length === 0 || !BASE64.test(text)) throw new InvalidEventPayloadError(`${type} event with no valid base64 payload`);
  const bytes = Buffer.from(text, 'base64');
  try {
    return { type, event: DECODERS[type].decode(bytes) } as BbsEvent;
  } catch (error) {
    throw new InvalidEventPayloadError(`invalid protobuf payload of ${type}: ${(error as Error).message}`, { cause: error });
  }
}
