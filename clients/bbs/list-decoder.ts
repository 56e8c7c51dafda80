// Incremental decoding of the BBS's list responses (`Error error = 1; repeated T items = 2;`).
//
// At Cloud Controller's scale one desired_lrp_scheduling_infos/list answer is hundreds of
// megabytes (every entry carries its routes, including a PEM key). Decoding each entry as soon
// as its bytes have arrived means the client never holds the whole body, nor the body and the
// decoded list at once: the generated decoders copy bytes fields out of the input, so a decoded
// entry keeps no reference to the chunk it came from.
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Error as BbsWireError } from '../../gen/diego/bbs/v1/error.js';

/** The decode half of a ts-proto message. */
export interface MessageDecoder<T> {
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

/** A decoder that can read a message in place, from `start` to `end` of a larger buffer. */
export interface RangeDecoder<T> extends MessageDecoder<T> {
  decodeRange(buf: Buffer, start: number, end: number): T;
}

export interface DecodedList<T> {
  error?: BbsWireError;
  items: T[];
}

export class TruncatedMessageError extends Error {
  override name = 'TruncatedMessageError';
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** Where one top-level field ends, and where its length-delimited payload starts. */
interface FieldHeader {
  field: number;
  wireType: number;
  /** Offset of a length-delimited payload; -1 for other wire types. */
  payloadStart: number;
  end: number;
}

/** The header of the field at `pos`, or undefined when `buf` ends inside the header. */
function fieldHeaderAt(buf: Buffer, pos: number): FieldHeader | undefined {
  const tag = readVarint(buf, pos);
  if (tag === undefined) return undefined;
  const field = Math.floor(tag.value / 8);
  const wireType = tag.value & 7;
  switch (wireType) {
    case WIRE_VARINT: {
      const value = readVarint(buf, tag.next);
      return value === undefined ? undefined : { field, wireType, payloadStart: -1, end: value.next };
    }
    case WIRE_FIXED64:
      return { field, wireType, payloadStart: -1, end: tag.next + 8 };
    case WIRE_FIXED32:
      return { field, wireType, payloadStart: -1, end: tag.next + 4 };
    case WIRE_LEN: {
      const length = readVarint(buf, tag.next);
      return length === undefined ? undefined : { field, wireType, payloadStart: length.next, end: length.next + length.value };
    }
    default:
      throw new TruncatedMessageError(`unsupported wire type ${wireType} for field ${field}`);
  }
}

/** A field header is at most two 10-byte varints. */
const MAX_HEADER_BYTES = 20;

/**
 * Reads the top-level fields of one message as its bytes arrive. `onField` gets each complete
 * length-delimited field as a range of a buffer (valid during the call); other wire types are
 * skipped (a list response has none we use). Fields are read in place from each chunk; only a
 * field split across chunks is copied, so the body is never copied as a whole.
 */
export class TopLevelFieldReader {
  /** Bytes of the one field that began in an earlier chunk and is not complete yet. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Total bytes of that field once its header is known; 0 while the header is incomplete. */
  private pendingSize = 0;

  constructor(private readonly onField: (field: number, buf: Buffer, start: number, end: number) => void) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    let pos = 0;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      if (this.pendingSize === 0) {
        const head = Buffer.concat(this.pending, Math.min(this.pendingBytes, MAX_HEADER_BYTES));
        const header = fieldHeaderAt(head, 0);
        if (header === undefined) {
          if (this.pendingBytes >= MAX_HEADER_BYTES) throw new TruncatedMessageError('field header longer than 20 bytes');
          return;
        }
        this.pendingSize = header.end;
      }
      if (this.pendingBytes < this.pendingSize) return;
      const field = Buffer.concat(this.pending, this.pendingSize);
      pos = chunk.length - (this.pendingBytes - this.pendingSize);
      this.pending = [];
      this.pendingBytes = 0;
      this.pendingSize = 0;
      this.emit(field, fieldHeaderAt(field, 0)!);
    }
    // Each pass consumes one complete field or keeps the incomplete rest; bounded by the chunk.
    while (pos < chunk.length) {
      const header = fieldHeaderAt(chunk, pos);
      if (header === undefined || header.end > chunk.length) {
        this.pending = [chunk.subarray(pos)];
        this.pendingBytes = chunk.length - pos;
        this.pendingSize = header === undefined ? 0 : header.end - pos;
        return;
      }
      this.emit(chunk, header);
      pos = header.end;
    }
  }

  private emit(buf: Buffer, header: FieldHeader): void {
    if (header.wireType === WIRE_LEN) this.onField(header.field, buf, header.payloadStart, header.end);
  }

  /** Throws when the body ended inside a field. */
  finish(): void {
    if (this.pendingBytes > 0) throw new TruncatedMessageError(`message ends ${this.pendingBytes} bytes into a field`);
  }
}

/** A varint at `pos`, or undefined when the buffer ends before it does. Values up to 2^53. */
function readVarint(buf: Buffer, pos: number): { value: number; next: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let i = pos; i < buf.length && i < pos + 10; i++) {
    const byte = buf[i]!;
    value += (byte & 0x7f) * multiplier;
    if (byte < 0x80) return { value, next: i + 1 };
    multiplier *= 128;
  }
  if (buf.length - pos >= 10) throw new TruncatedMessageError('varint longer than 10 bytes');
  return undefined;
}

/** Decodes a `{ error = 1; repeated items = itemField }` response as it streams in. */
export function createListDecoder<T>(item: MessageDecoder<T>, itemField = 2) {
  const items: T[] = [];
  // A non-repeated message field that appears twice is merged; concatenating its bytes and
  // decoding once gives exactly that.
  const errorPieces: Buffer[] = [];
  const inPlace = 'decodeRange' in item ? (item as RangeDecoder<T>) : undefined;
  const reader = new TopLevelFieldReader((field, buf, start, end) => {
    if (field === itemField) items.push(inPlace ? inPlace.decodeRange(buf, start, end) : item.decode(buf.subarray(start, end)));
    else if (field === 1) errorPieces.push(Buffer.from(buf.subarray(start, end)));
  });
  return {
    push: (chunk: Buffer) => reader.push(chunk),
    finish(): DecodedList<T> {
      reader.finish();
      return errorPieces.length === 0 ? { items } : { error: BbsWireError.decode(Buffer.concat(errorPieces)), items };
    },
  };
}
