// Protobuf framing for responses assembled from stored bytes. List responses are
// `Error error = 1; repeated X items = 2;`, and a repeated message field on the wire is just each
// element's bytes behind its own tag and length, so a list is the concatenation of the stored
// records with a prefix each: no record is decoded or re-encoded on the way out.
import { Error as BbsError } from '../../gen/diego/bbs/v1/error.js';

const WIRE_TYPE_LENGTH_DELIMITED = 2;

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(target: Buffer, offset: number, value: number): number {
  while (value >= 0x80) {
    target[offset++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  target[offset++] = value;
  return offset;
}

/**
 * The bytes of `repeated <message> field = fieldNumber` holding items, in order. One allocation
 * and one copy per item, which is what keeps a 250k-record list cheap.
 */
export function repeatedMessageField(fieldNumber: number, items: readonly Uint8Array[]): Buffer {
  const tag = fieldNumber * 8 + WIRE_TYPE_LENGTH_DELIMITED;
  const tagSize = varintSize(tag);
  let total = 0;
  for (const item of items) total += tagSize + varintSize(item.length) + item.length;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const item of items) {
    offset = writeVarint(out, offset, tag);
    offset = writeVarint(out, offset, item.length);
    out.set(item, offset);
    offset += item.length;
  }
  return out;
}

/** The bytes of one embedded message field. */
export function messageField(fieldNumber: number, payload: Uint8Array): Buffer {
  return repeatedMessageField(fieldNumber, [payload]);
}

/** A response whose only field is `Error error = 1` — valid for every BBS response but ping. */
export function errorOnlyResponse(error: BbsError): Buffer {
  return messageField(1, BbsError.encode(error).finish());
}
