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

/**
 * Reads the top-level fields of one message as its bytes arrive. `onField` gets each complete
 * length-delimited field; other wire types are skipped (a list response has none we use).
 */
export class TopLevelFieldReader {
  private pieces: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before the next field can be complete; avoids re-joining a large field per chunk. */
  private needed = 0;

  constructor(private readonly onField: (field: number, value: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pieces.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.needed) return;
    const buf = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.buffered);
    this.pieces = [];
    this.buffered = 0;
    this.needed = 0;
    let pos = 0;
    // Each pass consumes one complete field or stops; bounded by the buffer's length.
    while (pos < buf.length) {
      const tag = readVarint(buf, pos);
      if (tag === undefined) break;
      const field = Math.floor(tag.value / 8);
      const wireType = tag.value & 7;
      let end: number;
      if (wireType === WIRE_VARINT) {
        const value = readVarint(buf, tag.next);
        if (value === undefined) break;
        end = value.next;
      } else if (wireType === WIRE_FIXED64 || wireType === WIRE_FIXED32) {
        end = tag.next + (wireType === WIRE_FIXED64 ? 8 : 4);
        if (end > buf.length) {
          this.needed = end - pos;
          break;
        }
      } else if (wireType === WIRE_LEN) {
        const length = readVarint(buf, tag.next);
        if (length === undefined) break;
        end = length.next + length.value;
        if (end > buf.length) {
          this.needed = end - pos;
          break;
        }
        this.onField(field, buf.subarray(length.next, end));
      } else {
        throw new TruncatedMessageError(`unsupported wire type ${wireType} for field ${field}`);
      }
      pos = end;
    }
    if (pos < buf.length) {
      const rest = buf.subarray(pos);
      this.pieces.push(rest);
      this.buffered = rest.length;
    }
  }

  /** Throws when the body ended inside a field. */
  finish(): void {
    if (this.buffered > 0) throw new TruncatedMessageError(`message ends ${this.buffered} bytes into a field`);
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
  const reader = new TopLevelFieldReader((field, value) => {
    if (field === itemField) items.push(item.decode(value));
    else if (field === 1) errorPieces.push(Buffer.from(value));
  });
  return {
    push: (chunk: Buffer) => reader.push(chunk),
    finish(): DecodedList<T> {
      reader.finish();
      return errorPieces.length === 0 ? { items } : { error: BbsWireError.decode(Buffer.concat(errorPieces)), items };
    },
  };
}
