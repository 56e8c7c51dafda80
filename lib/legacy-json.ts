// The legacy JSON codec: reads and writes the 2015 Cloud Controller bodies for any message in
// proto/, driven by the descriptors and the cloudfoundry.ccbridge.legacy.v1 field options.
//
// Writing follows Go's encoding/json: keys in declaration order, `omitempty` fields dropped when
// empty, other fields always written (empty lists and maps as null where the Go value was nil),
// map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped, times as RFC 3339 with trailing
// zeros trimmed. Reading follows Go's decoder: unknown keys ignored, keys matched
// case-insensitively, `null` leaves the zero value, a type mismatch is an error.
//
// Objects read are shaped like ts-proto's generated types (camelCase properties, int64 as a
// decimal string, every field present with its zero value). Objects written may be ts-proto or
// protobuf-es messages (int64 as string or bigint, Timestamp as Date or {seconds, nanos}).
import { ScalarType, type DescEnum, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { messageDescriptor, optionOf } from './descriptors.js';

/** Raised for a body that is not valid JSON or does not fit the message. */
export class LegacyJsonError extends Error {
  override name = 'LegacyJsonError';
}

interface JsonFieldOption {
  key: string;
  omitEmpty: boolean;
  raw: boolean;
  nullWhenEmpty: boolean;
  unwrapValues: boolean;
}

type ValueKind =
  | { kind: 'scalar'; scalar: ScalarType; raw: boolean }
  | { kind: 'enum'; names: Map<number, string>; numbers: Map<string, number> }
  | MessageKind;

interface MessageKind {
  kind: 'message';
  plan: () => MessagePlan;
  /** For unwrap_values maps: the value message's single field. */
  unwrap?: FieldPlan;
}

interface FieldPlan {
  key: string;
  prop: string;
  omitEmpty: boolean;
  nullWhenEmpty: boolean;
  container: 'single' | 'list' | 'map';
  mapKey?: ScalarType;
  value: ValueKind;
}

interface MessagePlan {
  typeName: string;
  fields: FieldPlan[];
  byKey: Map<string, FieldPlan>;
  byLowerKey: Map<string, FieldPlan>;
  wellKnown?: 'timestamp';
}

const plans = new Map<string, MessagePlan>();

function planFor(desc: DescMessage): MessagePlan {
  let plan = plans.get(desc.typeName);
  if (plan) return plan;
  plan = {
    typeName: desc.typeName,
    fields: [],
    byKey: new Map(),
    byLowerKey: new Map(),
    wellKnown: desc.typeName === 'google.protobuf.Timestamp' ? 'timestamp' : undefined,
  };
  plans.set(desc.typeName, plan);
  for (const field of desc.fields) {
    if (field.oneof && !field.proto.proto3Optional) {
      throw new Error(`${desc.typeName}.${field.name}: the legacy JSON codec does not map oneofs`);
    }
    const fieldPlan = planField(field);
    plan.fields.push(fieldPlan);
    plan.byKey.set(fieldPlan.key, fieldPlan);
    plan.byLowerKey.set(fieldPlan.key.toLowerCase(), fieldPlan);
  }
  return plan;
}

function planField(field: DescField): FieldPlan {
  const option = optionOf(field, 'cloudfoundry.ccbridge.legacy.v1.json') as JsonFieldOption | undefined;
  const raw = option?.raw ?? false;
  const base = {
    key: option?.key || field.name,
    prop: field.localName,
    omitEmpty: option?.omitEmpty ?? false,
    nullWhenEmpty: option?.nullWhenEmpty ?? false,
  };
  switch (field.fieldKind) {
    case 'scalar':
      return { ...base, container: 'single', value: { kind: 'scalar', scalar: field.scalar, raw } };
    case 'enum':
      return { ...base, container: 'single', value: enumKind(field.enum) };
    case 'message':
      return { ...base, container: 'single', value: messageKind(field.message) };
    case 'list':
      return {
        ...base,
        container: 'list',
        value:
          field.listKind === 'scalar'
            ? { kind: 'scalar', scalar: field.scalar, raw }
            : field.listKind === 'enum'
              ? enumKind(field.enum)
              : messageKind(field.message),
      };
    case 'map': {
      let value: ValueKind;
      if (field.mapKind === 'scalar') value = { kind: 'scalar', scalar: field.scalar, raw };
      else if (field.mapKind === 'enum') value = enumKind(field.enum);
      else {
        const message = field.message;
        const kind = messageKind(message);
        if (option?.unwrapValues) {
          if (message.fields.length !== 1) throw new Error(`${field.parent.typeName}.${field.name}: unwrap_values needs a single-field value message`);
          kind.unwrap = planField(message.fields[0]!);
        }
        value = kind;
      }
      return { ...base, container: 'map', mapKey: field.mapKey, value };
    }
  }
}

function messageKind(message: DescMessage): MessageKind {
  return { kind: 'message', plan: () => planFor(message) };
}

function enumKind(desc: DescEnum): ValueKind {
  const names = new Map<number, string>();
  const numbers = new Map<string, number>();
  for (const value of desc.values) {
    const option = optionOf(value, 'cloudfoundry.ccbridge.legacy.v1.json_value') as { name: string } | undefined;
    const name = option ? option.name : value.name;
    names.set(value.number, name);
    numbers.set(name, value.number);
  }
  return { kind: 'enum', names, numbers };
}

function planByName(typeName: string): MessagePlan {
  return planFor(messageDescriptor(typeName));
}

// ---------------------------------------------------------------------------------------------
// Writing

/** The legacy JSON text of a message. */
export function encodeLegacyJson(typeName: string, message: object | undefined | null): string {
  return message === undefined || message === null ? 'null' : writeMessage(planByName(typeName), message);
}

/** The legacy JSON text of one field's value (a response_body such as a list or a map). */
export function encodeLegacyJsonField(typeName: string, fieldName: string, message: object): string {
  const plan = planByName(typeName);
  const field = plan.fields.find((f) => f.key === fieldName || f.prop === fieldName);
  if (!field) throw new Error(`${typeName} has no field ${fieldName}`);
  const value = (message as Record<string, unknown>)[field.prop];
  // A response body is a value Go made, never nil: an empty list is [] and an empty map {}.
  return writeFieldValue({ ...field, nullWhenEmpty: false }, value);
}

function writeMessage(plan: MessagePlan, message: object): string {
  if (plan.wellKnown === 'timestamp') return quote(formatTimestamp(message));
  const record = message as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const field of plan.fields) {
    const value = record[field.prop];
    if (field.omitEmpty && isEmpty(field, value)) continue;
    out += `${first ? '' : ','}${quote(field.key)}:${writeFieldValue(field, value)}`;
    first = false;
  }
  return `${out}}`;
}

function writeFieldValue(field: FieldPlan, value: unknown): string {
  if (field.container === 'list') {
    const list = (value ?? []) as unknown[];
    if (list.length === 0) return field.nullWhenEmpty ? 'null' : '[]';
    return `[${list.map((item) => writeValue(field.value, item)).join(',')}]`;
  }
  if (field.container === 'map') {
    const map = (value ?? {}) as Record<string, unknown>;
    const keys = Object.keys(map).sort();
    if (keys.length === 0) return field.nullWhenEmpty ? 'null' : '{}';
    const unwrap = field.value.kind === 'message' ? field.value.unwrap : undefined;
    const parts = keys.map((key) => {
      const item = map[key];
      const written = unwrap ? writeFieldValue(unwrap, (item as Record<string, unknown> | undefined)?.[unwrap.prop]) : writeValue(field.value, item);
      return `${quote(key)}:${written}`;
    });
    return `{${parts.join(',')}}`;
  }
  return writeValue(field.value, value);
}

function writeValue(kind: ValueKind, value: unknown): string {
  switch (kind.kind) {
    case 'message':
      return value === undefined || value === null ? 'null' : writeMessage(kind.plan(), value as object);
    case 'enum': {
      const number = typeof value === 'number' ? value : 0;
      return quote(kind.names.get(number) ?? String(number));
    }
    case 'scalar':
      return writeScalar(kind.scalar, kind.raw, value);
  }
}

function writeScalar(scalar: ScalarType, raw: boolean, value: unknown): string {
  switch (scalar) {
    case ScalarType.STRING: {
      const text = typeof value === 'string' ? value : '';
      if (raw) return text === '' ? 'null' : text;
      return quote(text);
    }
    case ScalarType.BOOL:
      return value === true ? 'true' : 'false';
    case ScalarType.BYTES:
      return quote(value instanceof Uint8Array ? Buffer.from(value).toString('base64') : '');
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      const number = typeof value === 'number' ? value : 0;
      if (!Number.isFinite(number)) throw new Error(`cannot write ${number} as JSON`);
      return String(number);
    }
    default:
      // Integers: int64 arrives as a decimal string (ts-proto) or bigint (protobuf-es).
      if (value === undefined || value === null || value === '') return '0';
      return String(value);
  }
}

function isEmpty(field: FieldPlan, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (field.container === 'list') return (value as unknown[]).length === 0;
  if (field.container === 'map') return Object.keys(value as object).length === 0;
  switch (field.value.kind) {
    case 'message':
      return false;
    case 'enum':
      return value === 0;
    case 'scalar':
      if (typeof value === 'string') return value === '' || (field.value.scalar !== ScalarType.STRING && value === '0');
      if (typeof value === 'number') return value === 0;
      if (typeof value === 'bigint') return value === 0n;
      if (typeof value === 'boolean') return !value;
      if (value instanceof Uint8Array) return value.length === 0;
      return false;
  }
}

const HTML_UNSAFE = /[<>&\u2028\u2029]/g;
const HTML_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/** A JSON string literal escaped as Go's encoder escapes it. */
export function quote(text: string): string {
  const json = JSON.stringify(text);
  return HTML_UNSAFE.test(json) ? json.replace(HTML_UNSAFE, (c) => HTML_ESCAPES[c]!) : json;
}

/** RFC 3339 with nanoseconds and trailing zeros trimmed, as Go's time.Time marshals in UTC. */
function formatTimestamp(value: object): string {
  let seconds: bigint;
  let nanos: number;
  if (value instanceof Date) {
    const ms = value.getTime();
    seconds = BigInt(Math.floor(ms / 1000));
    nanos = (ms - Math.floor(ms / 1000) * 1000) * 1_000_000;
  } else {
    const ts = value as { seconds?: bigint | string | number; nanos?: number };
    seconds = BigInt(ts.seconds ?? 0);
    nanos = ts.nanos ?? 0;
  }
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const fraction = nanos > 0 ? `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}` : '';
  return `${base}${fraction}Z`;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Reads legacy JSON text into a ts-proto-shaped object of the given message type. */
export function decodeLegacyJson<T = Record<string, unknown>>(typeName: string, text: string): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new LegacyJsonError(`invalid JSON: ${(error as Error).message}`);
  }
  return fromLegacyValue<T>(typeName, parsed);
}

/** Reads an already parsed JSON value into a ts-proto-shaped object of the given message type. */
export function fromLegacyValue<T = Record<string, unknown>>(typeName: string, value: unknown): T {
  const plan = planByName(typeName);
  return readMessage(plan, value, '') as T;
}

/** The zero value of a message, shaped as ts-proto's `create...` makes it. */
export function emptyLegacyMessage<T = Record<string, unknown>>(typeName: string): T {
  return readMessage(planByName(typeName), null, '') as T;
}

function readMessage(plan: MessagePlan, value: unknown, path: string): Record<string, unknown> | Date {
  if (plan.wellKnown === 'timestamp') return readTimestamp(value, path);
  if (value !== null && (typeof value !== 'object' || Array.isArray(value))) {
    throw new LegacyJsonError(`${path || 'body'}: expected an object`);
  }
  const out: Record<string, unknown> = {};
  for (const field of plan.fields) out[field.prop] = zeroOf(field);
  if (value === null) return out;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const field = plan.byKey.get(key) ?? plan.byLowerKey.get(key.toLowerCase());
    if (!field || item === null) continue;
    out[field.prop] = readFieldValue(field, item, path ? `${path}.${field.key}` : field.key);
  }
  return out;
}

function zeroOf(field: FieldPlan): unknown {
  if (field.container === 'list') return [];
  if (field.container === 'map') return {};
  const kind = field.value;
  if (kind.kind === 'message') return undefined;
  if (kind.kind === 'enum') return 0;
  return scalarZero(kind.scalar);
}

function scalarZero(scalar: ScalarType): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return '';
    case ScalarType.BOOL:
      return false;
    case ScalarType.BYTES:
      return Buffer.alloc(0);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return '0';
    default:
      return 0;
  }
}

function readFieldValue(field: FieldPlan, value: unknown, path: string): unknown {
  if (field.container === 'list') {
    if (!Array.isArray(value)) throw new LegacyJsonError(`${path}: expected an array`);
    return value.map((item, i) => (item === null ? zeroOfValue(field.value) : readValue(field.value, item, `${path}[${i}]`)));
  }
  if (field.container === 'map') {
    if (typeof value !== 'object' || Array.isArray(value)) throw new LegacyJsonError(`${path}: expected an object`);
    const out: Record<string, unknown> = {};
    const unwrap = field.value.kind === 'message' ? field.value.unwrap : undefined;
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      if (field.mapKey !== ScalarType.STRING && !/^-?\d+$/.test(key)) throw new LegacyJsonError(`${path}: map key ${key} is not a number`);
      if (unwrap) {
        const wrapper: Record<string, unknown> = { [unwrap.prop]: zeroOf(unwrap) };
        if (item !== null) wrapper[unwrap.prop] = readFieldValue(unwrap, item, `${path}.${key}`);
        out[key] = wrapper;
      } else {
        out[key] = item === null ? zeroOfValue(field.value) : readValue(field.value, item, `${path}.${key}`);
      }
    }
    return out;
  }
  return readValue(field.value, value, path);
}

function zeroOfValue(kind: ValueKind): unknown {
  if (kind.kind === 'message') return readMessage(kind.plan(), null, '');
  if (kind.kind === 'enum') return 0;
  return scalarZero(kind.scalar);
}

function readValue(kind: ValueKind, value: unknown, path: string): unknown {
  switch (kind.kind) {
    case 'message':
      return readMessage(kind.plan(), value, path);
    case 'enum': {
      if (typeof value !== 'string') throw new LegacyJsonError(`${path}: expected a string`);
      const number = kind.numbers.get(value);
      if (number === undefined) throw new LegacyJsonError(`${path}: unknown value ${JSON.stringify(value)}`);
      return number;
    }
    case 'scalar':
      return readScalar(kind.scalar, kind.raw, value, path);
  }
}

const INT_LIMITS: Partial<Record<ScalarType, [bigint, bigint]>> = {
  [ScalarType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SINT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SFIXED32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.UINT32]: [0n, 2n ** 32n - 1n],
  [ScalarType.FIXED32]: [0n, 2n ** 32n - 1n],
  [ScalarType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SINT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SFIXED64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.UINT64]: [0n, 2n ** 64n - 1n],
  [ScalarType.FIXED64]: [0n, 2n ** 64n - 1n],
};

function readScalar(scalar: ScalarType, raw: boolean, value: unknown, path: string): unknown {
  if (raw) return JSON.stringify(value);
  switch (scalar) {
    case ScalarType.STRING:
      if (typeof value !== 'string') throw new LegacyJsonError(`${path}: expected a string`);
      return value;
    case ScalarType.BOOL:
      if (typeof value !== 'boolean') throw new LegacyJsonError(`${path}: expected true or false`);
      return value;
    case ScalarType.BYTES:
      if (typeof value !== 'string') throw new LegacyJsonError(`${path}: expected a base64 string`);
      return Buffer.from(value, 'base64');
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      if (typeof value !== 'number') throw new LegacyJsonError(`${path}: expected a number`);
      return value;
    default: {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new LegacyJsonError(`${path}: expected an integer`);
      const [min, max] = INT_LIMITS[scalar]!;
      const big = BigInt(value);
      if (big < min || big > max) throw new LegacyJsonError(`${path}: ${value} is out of range`);
      const is64 = max > 2n ** 32n;
      return is64 ? big.toString() : value;
    }
  }
}

function readTimestamp(value: unknown, path: string): Date {
  if (typeof value !== 'string') throw new LegacyJsonError(`${path}: expected an RFC 3339 time`);
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new LegacyJsonError(`${path}: expected an RFC 3339 time`);
  return date;
}
