// A decoder for DesiredLRPSchedulingInfo, the one message the client receives by the hundred
// thousand (Cloud Controller's sync lists every scheduling info of cf-apps each cycle). It gives
// what the generated DesiredLRPSchedulingInfo.decode gives (the unit tests compare the two on the
// same bytes) at a fraction of the cost, because at 250k LRPs allocation and garbage collection
// are nearly all of the client's time:
//   - route values are views into the received bytes instead of copies (a copy allocates a
//     backing store; a million of them dominated a 250k list), and values of at most 8 bytes
//     (`[]`, which Cloud Controller sends for the tcp-router and internal-router of nearly every
//     app) are one shared Buffer per distinct value;
//   - fields are read in straight loops over the bytes, with no reader, closure or map-entry
//     object per message.
// The views keep the received chunks alive as long as the decoded routes are; route values are
// nearly all of a scheduling info's bytes, so that costs about what the copies did. Route values
// are JSON documents that readers parse; none of them may be written into.
import type { DesiredLRPSchedulingInfo } from '../../gen/diego/bbs/v1/desired_lrp.js';
import type { RangeDecoder } from './list-decoder.js';

/** Thrown for bytes that are not a valid encoding. */
export class SchedulingInfoDecodeError extends Error {
  override name = 'SchedulingInfoDecodeError';
}

type Info = DesiredLRPSchedulingInfo;
type Key = NonNullable<Info['desiredLrpKey']>;
type Resource = NonNullable<Info['desiredLrpResource']>;
type Routes = NonNullable<Info['routes']>;
type Tag = NonNullable<Info['modificationTag']>;
type Placement = NonNullable<Info['volumePlacement']>;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

// The decoder's cursor. Decoding is synchronous and not re-entrant, so module state is safe and
// spares a cursor object per message.
let buf: Buffer = Buffer.alloc(0);
let pos = 0;

/** A varint's low 32 bits, unsigned (protobuf's uint32; int32 is `| 0` of it). */
function uint32(limit: number): number {
  let result = 0;
  let shift = 0;
  // At most 10 bytes; bits beyond 32 are dropped, as in every protobuf runtime.
  for (let i = 0; i < 10; i++) {
    if (pos >= limit) throw new SchedulingInfoDecodeError('truncated varint');
    const byte = buf[pos++]!;
    if (shift < 32) result |= (byte & 0x7f) << shift;
    if (byte < 0x80) return result >>> 0;
    shift += 7;
  }
  throw new SchedulingInfoDecodeError('varint longer than 10 bytes');
}

/** The end of the length-delimited field whose length comes next. */
function lengthEnd(limit: number): number {
  const length = uint32(limit);
  const end = pos + length;
  if (end > limit) throw new SchedulingInfoDecodeError('length-delimited field past the end of its message');
  return end;
}

function string(limit: number): string {
  const end = lengthEnd(limit);
  const start = pos;
  pos = end;
  return buf.toString('utf8', start, end);
}

const SHARED_VALUE_MAX_BYTES = 8;
const SHARED_VALUES_MAX = 256;
const sharedValues = new Map<string, Buffer>();

function bytes(limit: number): Buffer {
  const end = lengthEnd(limit);
  const start = pos;
  pos = end;
  if (end - start > SHARED_VALUE_MAX_BYTES) return buf.subarray(start, end);
  const key = buf.toString('latin1', start, end);
  let value = sharedValues.get(key);
  if (value === undefined) {
    value = Buffer.from(buf.subarray(start, end));
    if (sharedValues.size < SHARED_VALUES_MAX) sharedValues.set(key, value);
  }
  return value;
}

/** Skips one unknown field, as the generated decoders do. */
function skip(tag: number, limit: number): void {
  switch (tag & 7) {
    case WIRE_VARINT:
      uint32(limit);
      return;
    case WIRE_FIXED64:
      pos += 8;
      break;
    case WIRE_LEN:
      pos = lengthEnd(limit);
      return;
    case WIRE_START_GROUP: {
      // Bounded by `limit`: every turn consumes at least one byte.
      for (;;) {
        const inner = uint32(limit);
        if ((inner & 7) === WIRE_END_GROUP) {
          if (inner >>> 3 !== tag >>> 3) throw new SchedulingInfoDecodeError('invalid end group tag');
          return;
        }
        skip(inner, limit);
      }
    }
    case WIRE_FIXED32:
      pos += 4;
      break;
    default:
      throw new SchedulingInfoDecodeError(`cannot skip wire type ${tag & 7}`);
  }
  if (pos > limit) throw new SchedulingInfoDecodeError('field past the end of its message');
}

/** Like the generated code: an end-group or zero tag ends a message; other unknown tags are skipped. */
function unknown(tag: number, limit: number): boolean {
  if ((tag & 7) === WIRE_END_GROUP || tag === 0) return false;
  skip(tag, limit);
  return true;
}

function desiredLrpKey(end: number): Key {
  const key: Key = { processGuid: '', domain: '', logGuid: '' };
  while (pos < end) {
    const tag = uint32(end);
    if (tag === 10) key.processGuid = string(end);
    else if (tag === 18) key.domain = string(end);
    else if (tag === 26) key.logGuid = string(end);
    else if (!unknown(tag, end)) break;
  }
  pos = end;
  return key;
}

function desiredLrpResource(end: number): Resource {
  const resource: Resource = { memoryMb: 0, diskMb: 0, rootFs: '', maxPids: 0 };
  while (pos < end) {
    const tag = uint32(end);
    if (tag === 8) resource.memoryMb = uint32(end) | 0;
    else if (tag === 16) resource.diskMb = uint32(end) | 0;
    else if (tag === 26) resource.rootFs = string(end);
    else if (tag === 32) resource.maxPids = uint32(end) | 0;
    else if (!unknown(tag, end)) break;
  }
  pos = end;
  return resource;
}

function protoRoutes(end: number): Routes {
  const routes: { [key: string]: Buffer } = {};
  while (pos < end) {
    const tag = uint32(end);
    if (tag === 10) {
      const entryEnd = lengthEnd(end);
      let key = '';
      let value: Buffer = EMPTY;
      while (pos < entryEnd) {
        const entryTag = uint32(entryEnd);
        if (entryTag === 10) key = string(entryEnd);
        else if (entryTag === 18) value = bytes(entryEnd);
        else if (!unknown(entryTag, entryEnd)) break;
      }
      pos = entryEnd;
      routes[key] = value;
    } else if (!unknown(tag, end)) break;
  }
  pos = end;
  return { routes };
}

const EMPTY = Buffer.alloc(0);

function modificationTag(end: number): Tag {
  const tag: Tag = { epoch: '', index: 0 };
  while (pos < end) {
    const t = uint32(end);
    if (t === 10) tag.epoch = string(end);
    else if (t === 16) tag.index = uint32(end);
    else if (!unknown(t, end)) break;
  }
  pos = end;
  return tag;
}

function volumePlacement(end: number): Placement {
  const placement: Placement = { driverNames: [] };
  while (pos < end) {
    const tag = uint32(end);
    if (tag === 10) placement.driverNames.push(string(end));
    else if (!unknown(tag, end)) break;
  }
  pos = end;
  return placement;
}

function decodeRange(input: Buffer, start: number, end: number): Info {
  buf = input;
  pos = start;
  const info: Info = {
    desiredLrpKey: undefined,
    annotation: '',
    instances: 0,
    desiredLrpResource: undefined,
    routes: undefined,
    modificationTag: undefined,
    volumePlacement: undefined,
    placementTags: [],
  };
  try {
    while (pos < end) {
      const tag = uint32(end);
      switch (tag) {
        case 10:
          info.desiredLrpKey = desiredLrpKey(lengthEnd(end));
          break;
        case 18:
          info.annotation = string(end);
          break;
        case 24:
          info.instances = uint32(end) | 0;
          break;
        case 34:
          info.desiredLrpResource = desiredLrpResource(lengthEnd(end));
          break;
        case 42:
          info.routes = protoRoutes(lengthEnd(end));
          break;
        case 50:
          info.modificationTag = modificationTag(lengthEnd(end));
          break;
        case 58:
          info.volumePlacement = volumePlacement(lengthEnd(end));
          break;
        case 66:
          info.placementTags.push(string(end));
          break;
        default:
          if (!unknown(tag, end)) return info;
      }
    }
    return info;
  } finally {
    buf = EMPTY;
  }
}

/** Drop-in for DesiredLRPSchedulingInfo.decode on the list path. */
export const schedulingInfoDecoder: RangeDecoder<Info> = {
  decode(input, length) {
    if (!(input instanceof Uint8Array)) throw new SchedulingInfoDecodeError('expects bytes, not a reader');
    const view = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    return decodeRange(view, 0, length ?? view.length);
  },
  decodeRange,
};
