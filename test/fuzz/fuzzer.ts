// The fuzzer behind test/fuzz/fuzz.test.ts and bench/fuzz/run.ts: seeded, bounded runs of
// malformed and random input against every REST route of the gateway (the route table the
// gateway builds from the google.api.http annotations) and every gRPC method of the Stager,
// Nsync and TPS services (their generated definitions). Input n of a run with seed s is made by
// its own generator seeded from (s, n), so any one input can be made again alone.
//
// What every answer is checked against:
// - REST: an answer within the deadline; 404/405 exactly when the route table says so; a 5xx
//   only when the route's legacy options declare it (the spec's statuses: e.g. 503 for Diego
//   unavailable) and never 500 for an internal fault; bodies in their declared shape — the
//   success body as the route's response JSON, error bodies empty except where the spec gives
//   one (Stage's StagingResponseForCC error).
// - gRPC: an answer within the deadline; every failure with a valid status code whose
//   grpc-status-details-bin is a google.rpc.Status carrying an ErrorInfo of our domain; never
//   UNKNOWN, and INTERNAL only where the method's route declares it.
import { Agent, request as httpRequest } from 'node:http';
import { credentials, Client as GrpcJsClient, Metadata as GrpcMetadata, type ServiceError, status as grpcStatus } from '@grpc/grpc-js';
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import type { TsProtoServiceDefinition } from 'nice-grpc';
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { ErrorInfo } from '../../gen/google/rpc/error_details.js';
import { Status as RpcStatus } from '../../gen/google/rpc/status.js';
import { RouteTable, routesFor, type Route } from '../../gateway/routes.js';
import { messageDescriptor, descriptorRegistry, optionOf } from '../../lib/descriptors.js';
import { ERROR_DOMAIN, STATUS_DETAILS_KEY } from '../../lib/errors.js';
import { decodeLegacyJson, fromLegacyValue } from '../../lib/legacy-json.js';

/** The services the gateway serves and the gRPC server exposes: all of them are fuzzed. */
export const FUZZED_SERVICES: readonly TsProtoServiceDefinition[] = [StagerServiceDefinition, NsyncServiceDefinition, TpsServiceDefinition];

export const DEFAULT_SEED = 20151015;

/**
 * Error bodies the spec gives a route (ccbridge-2015.md §3.2: the Stage route's 500 carries
 * StagingResponseForCC with an error). Every other error answer of every route has no body.
 */
const ERROR_BODY_TYPES: Record<string, Partial<Record<number, string>>> = {
  '/cloudfoundry.ccbridge.stager.v1.StagerService/Stage': { 500: 'cloudfoundry.ccbridge.cc.v1.StagingResponseForCC' },
};

// ---------------------------------------------------------------------------------------------
// Randomness

/** A small seeded generator (sfc32); n-th input of seed s gets Rng.for(s, n). */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    this.a = 0x9e3779b9 ^ seed;
    this.b = 0x243f6a88 ^ stream;
    this.c = 0xb7e15162 ^ Math.imul(seed, 31);
    this.d = 1;
    for (let i = 0; i < 15; i++) this.next();
  }

  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  guid(): string {
    const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdef'[this.int(16)]).join('');
    return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs and outcomes

export interface RestInput {
  kind: 'rest';
  /** The route the input was made for (its method path). */
  target: string;
  shape: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface GrpcInput {
  kind: 'grpc';
  /** /package.Service/Method */
  target: string;
  shape: string;
  streaming: boolean;
  body: Buffer;
}

export type FuzzInput = RestInput | GrpcInput;

export interface Outcome {
  /** "rest 202", "rest 404", "grpc OK", "grpc INVALID_ARGUMENT"... */
  label: string;
  /** Why the answer breaks the contract; undefined when it holds. */
  problem?: string;
}

export interface Failure {
  seed: number;
  index: number;
  input: FuzzInput;
  problem: string;
}

/** An input, printable and small enough to paste into a test. */
export function describeInput(input: FuzzInput): Record<string, unknown> {
  const body = input.body;
  const text = body === undefined ? undefined : body.length > 600 ? `${body.subarray(0, 600).toString('latin1')}… (${body.length} bytes)` : body.toString('latin1');
  if (input.kind === 'rest') return { target: input.target, shape: input.shape, method: input.method, path: input.path.length > 300 ? `${input.path.slice(0, 300)}…` : input.path, headers: input.headers, body: text };
  const bytes = input.body;
  return { target: input.target, shape: input.shape, bodyHex: bytes.length > 300 ? `${bytes.subarray(0, 300).toString('hex')}…` : bytes.toString('hex') };
}

// ---------------------------------------------------------------------------------------------
// Values from the message descriptors (legacy JSON keys and enum names)

interface JsonFieldOption {
  key: string;
  raw: boolean;
}

function legacyKey(field: DescField): { key: string; raw: boolean } {
  const option = optionOf(field, 'cloudfoundry.ccbridge.legacy.v1.json') as JsonFieldOption | undefined;
  return { key: option?.key || field.name, raw: option?.raw ?? false };
}

function enumNames(field: DescField): string[] {
  const desc = field.fieldKind === 'enum' ? field.enum : field.fieldKind === 'list' && field.listKind === 'enum' ? field.enum : field.fieldKind === 'map' && field.mapKind === 'enum' ? field.enum : undefined;
  if (!desc) return [];
  return desc.values.map((value) => (optionOf(value, 'cloudfoundry.ccbridge.legacy.v1.json_value') as { name: string } | undefined)?.name ?? value.name);
}

/** Context of one input: the guid in its URL, so bodies can agree with it and go deep. */
interface Ctx {
  rng: Rng;
  guid: string;
  depth: number;
  /** Only values the services accept, so a mutation is the one thing wrong and goes deep. */
  strict?: boolean;
}

/** Accepted values by field name, for strict (valid) messages. */
const STRICT_STRINGS: Record<string, string[]> = {
  lifecycle: ['buildpack'],
  annotation: ['{"lifecycle":"buildpack"}'],
  result: ['{"process_types":{"web":"run"},"lifecycle_metadata":{"buildpack_key":"k","detected_buildpack":"d"},"execution_metadata":"{}"}', '{"detected_start_command":{"web":"node app.js"},"execution_metadata":""}'],
  execution_metadata: ['', '{}'],
  health_check_type: ['port', 'process', 'none'],
  stack: ['cflinuxfs4'],
  protocol: ['tcp', 'udp', 'all'],
  destinations: ['10.0.0.0/8', '1.2.3.4', '0.0.0.0-9.255.255.255'],
  failure_reason: ['', 'staging failed'],
};

const LIFECYCLES = ['buildpack', 'docker', 'buildpack/cflinuxfs4', 'cflinuxfs4', '', 'Buildpack', 'windows'];
const INTERESTING_STRINGS = ['', ' ', 'a', '0', '-1', 'null', 'true', '{}', '[]', '☃', 'é', '\u0000', '\ud800', '\u202e', '%00', '%2e%2e', '../..', '<script>', 'a'.repeat(300), 'http://', 'http://127.0.0.1:1/x', 'ftp://x', '\n'];

/** A plausible string for a field, by its name, so requests pass the first checks. */
function stringFor(name: string, ctx: Ctx): string {
  const { rng } = ctx;
  if (ctx.strict) {
    if (/(^|_)guid$|^instance$|^app_id$/.test(name)) return ctx.guid;
    if (STRICT_STRINGS[name]) return rng.pick(STRICT_STRINGS[name]);
    if (name.includes('docker')) return '';
    if (name.endsWith('_uri') || name.endsWith('_url') || name === 'url') return `http://127.0.0.1:1/${name}`;
  }
  if (rng.chance(0.08)) return rng.pick(INTERESTING_STRINGS);
  if (/(^|_)guid$|^instance$|^app_id$|_guid$/.test(name)) return rng.chance(0.8) ? ctx.guid : rng.guid();
  if (name === 'lifecycle') return rng.pick(LIFECYCLES);
  if (name === 'annotation') return rng.pick(['{"lifecycle":"buildpack"}', '{"lifecycle":"docker"}', '{}', '', 'nope', '{"lifecycle":"x","completion_callback":"http://127.0.0.1:1/"}']);
  if (name === 'result') return rng.pick(['', '{', '{}', '{"detected_start_command":{"web":"node app.js"},"execution_metadata":""}', '{"process_types":{"web":"run"},"lifecycle_metadata":{"buildpack_key":"k","detected_buildpack":"d"},"execution_metadata":"{}"}', 'null', '[]']);
  if (name === 'execution_metadata') return rng.pick(['', '{}', '{"ports":[{"Port":8080,"Protocol":"tcp"}]}', '{"ports":[{"Port":-1}]}', '{', 'null', '{"ports":"x"}']);
  if (name === 'health_check_type') return rng.pick(['port', 'http', 'process', 'none', '', 'bogus']);
  if (name === 'stack') return rng.pick(['cflinuxfs4', 'cflinuxfs3', '', 'windows']);
  if (name.includes('docker_image')) return rng.pick(['', 'busybox', 'docker.io/library/busybox:latest', 'registry:5000/a/b@sha256:abc', ':::', 'UPPER/Case']);
  if (name.endsWith('_uri') || name.endsWith('_url') || name === 'url' || name === 'droplet_uri') return rng.pick(['http://127.0.0.1:1/x', 'https://example.invalid/a?b=c', '', 'not a url', 'docker://x']);
  if (name === 'protocol') return rng.pick(['tcp', 'udp', 'icmp', 'all', '', 'sctp']);
  if (name === 'destinations' || name === 'destination') return rng.pick(['0.0.0.0-9.255.255.255', '10.0.0.0/8', '1.2.3.4', 'x', '']);
  if (name === 'routes') return rng.pick(['app.example.com', '', 'a.b']);
  if (name === 'name') return rng.pick(['VCAP_APPLICATION', 'PORT', 'nodejs', '']);
  if (name === 'value') return rng.pick(['{}', '8080', '']);
  if (name === 'guids') return Array.from({ length: 1 + rng.int(4) }, () => rng.guid()).join(',');
  return rng.chance(0.5) ? rng.guid() : rng.pick(['x', 'web', 'staging failed', 'tcp', 'cflinuxfs4']);
}

function integerFor(scalar: ScalarType, name: string, rng: Rng): number | string {
  // Instance counts stay small or far out of range: a valid desire of tens of thousands of
  // instances is accepted and keeps the embedded Diego busy with them for the rest of the run.
  if (name === 'index' || name === 'num_instances' || name === 'instances') return rng.chance(0.05) ? rng.pick([-1, 2147483647]) : rng.int(4);
  if (rng.chance(0.1)) return rng.pick([0, 1, -1, 2147483647, 65535]);
  if (name.endsWith('_mb')) return rng.pick([0, 64, 256, 1024]);
  if (name === 'timeout' || name.endsWith('_seconds')) return rng.pick([0, 60, 900]);
  const unsigned = [ScalarType.UINT32, ScalarType.UINT64, ScalarType.FIXED32, ScalarType.FIXED64].includes(scalar);
  return unsigned ? rng.int(100_000) : rng.int(200_000) - 100_000;
}

function scalarFor(field: DescField, scalar: ScalarType, ctx: Ctx): unknown {
  const { rng } = ctx;
  switch (scalar) {
    case ScalarType.STRING:
      return stringFor(field.name, ctx);
    case ScalarType.BOOL:
      return rng.chance(0.5);
    case ScalarType.BYTES:
      return rng.bytes(rng.int(12)).toString('base64');
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return rng.pick([0, 0.5, 4.25, -1]);
    default:
      return integerFor(scalar, field.name, rng);
  }
}

/** A random JSON value (for raw fields and random bodies). */
export function randomJson(rng: Rng, depth = 0): unknown {
  const roll = rng.int(depth > 3 ? 5 : 8);
  switch (roll) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -2147483649, 4294967296, 9007199254740991]);
    case 3:
    case 4:
      return rng.pick([...INTERESTING_STRINGS, rng.guid()]);
    case 5:
    case 6: {
      const out: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) out[rng.pick(['lifecycle', 'a', 'ports', 'Port', 'app_bits_download_uri', 'buildpacks', 'docker_image', rng.guid()])] = randomJson(rng, depth + 1);
      return out;
    }
    default:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
  }
}

/** Raw JSON fields (lifecycle_data): the staging data shapes the lifecycles read, or anything. */
function rawFor(field: DescField, ctx: Ctx): unknown {
  const { rng } = ctx;
  if (field.name === 'lifecycle_data' && (ctx.strict || rng.chance(0.7))) {
    const typeName = ctx.strict ? 'cloudfoundry.ccbridge.cc.v1.BuildpackStagingData' : rng.pick(['cloudfoundry.ccbridge.cc.v1.BuildpackStagingData', 'cloudfoundry.ccbridge.cc.v1.DockerStagingData']);
    return validMessage(messageDescriptor(typeName), { ...ctx, depth: ctx.depth + 1 });
  }
  return randomJson(rng);
}

/** A legacy JSON object of a message, every field plausible (the start of most inputs). */
export function validMessage(message: DescMessage, ctx: Ctx): Record<string, unknown> | string {
  if (message.typeName === 'google.protobuf.Timestamp') return new Date(1_700_000_000_000 + ctx.rng.int(1e9)).toISOString();
  const out: Record<string, unknown> = {};
  for (const field of message.fields) {
    if (!ctx.strict && ctx.rng.chance(0.12)) continue;
    const { key, raw } = legacyKey(field);
    if (raw && field.fieldKind === 'scalar') {
      out[key] = rawFor(field, ctx);
      continue;
    }
    out[key] = fieldValue(field, ctx);
  }
  return out;
}

function fieldValue(field: DescField, ctx: Ctx): unknown {
  const { rng } = ctx;
  const deeper = { ...ctx, depth: ctx.depth + 1 };
  const one = (): unknown => {
    switch (field.fieldKind) {
      case 'scalar':
        return scalarFor(field, field.scalar, ctx);
      case 'enum':
        return rng.pick(enumNames(field));
      case 'message':
        return ctx.depth > 4 ? null : validMessage(field.message, deeper);
      case 'list':
        if (field.listKind === 'scalar') return scalarFor(field, field.scalar, ctx);
        if (field.listKind === 'enum') return rng.pick(enumNames(field));
        return ctx.depth > 4 ? {} : validMessage(field.message, deeper);
      case 'map':
        if (field.mapKind === 'scalar') return scalarFor(field, field.scalar, ctx);
        if (field.mapKind === 'enum') return rng.pick(enumNames(field));
        return ctx.depth > 4 ? {} : validMessage(field.message, deeper);
    }
  };
  if (field.fieldKind === 'list') return Array.from({ length: rng.int(3) }, one);
  if (field.fieldKind === 'map') {
    const out: Record<string, unknown> = {};
    for (let i = rng.int(3); i > 0; i--) out[field.mapKey === ScalarType.STRING ? rng.pick(['web', 'worker', rng.guid()]) : String(rng.int(10))] = one();
    return out;
  }
  return one();
}

// Wrong values: placeholders stand for JSON numbers JavaScript cannot hold, swapped in after
// JSON.stringify.
const BIG_NUMBERS = ['18446744073709551616', '-9223372036854775809', '1e400', '123456789012345678901234567890', '-0', '1E+2', '0.0000001'];
const WRONG_VALUES: unknown[] = [
  'abc', '', '☃☃', '\ud83d\ude00', '12', 'true', 'null', 0, -1, 1.5, -2147483649, 2147483648, 4294967296, 9007199254740993, 1e308, -1e308,
  true, false, null, [], [1, 'a', null], [[[]]], {}, { a: { b: {} } }, { lifecycle: 'buildpack' }, 'a'.repeat(70_000),
];

function wrongValue(rng: Rng): unknown {
  if (rng.chance(0.15)) return `__BIG_${rng.int(BIG_NUMBERS.length)}__`;
  // A copy: later mutations of the same input may reach inside it.
  return structuredClone(rng.pick(WRONG_VALUES));
}

function withBigNumbers(json: string): string {
  return json.replace(/"__BIG_(\d+)__"/g, (_m, i: string) => BIG_NUMBERS[Number(i)]!);
}

/** Every (object, key) pair inside a JSON value, for mutating one at random. */
function slots(value: unknown, out: Array<[Record<string, unknown> | unknown[], string | number]> = []): Array<[Record<string, unknown> | unknown[], string | number]> {
  if (Array.isArray(value)) value.forEach((item, i) => (out.push([value, i]), slots(item, out)));
  else if (value && typeof value === 'object') for (const [key, item] of Object.entries(value)) out.push([value as Record<string, unknown>, key]), slots(item, out);
  return out;
}

function mutateJson(value: unknown, rng: Rng, times: number): unknown {
  for (let n = 0; n < times; n++) {
    const all = slots(value);
    if (all.length === 0) return wrongValue(rng);
    const [container, key] = rng.pick(all);
    const roll = rng.int(10);
    if (roll < 7) (container as Record<string | number, unknown>)[key] = wrongValue(rng);
    else if (roll < 8 && !Array.isArray(container)) delete (container as Record<string, unknown>)[key as string];
    else if (roll < 9 && !Array.isArray(container)) {
      // Go matched keys case-insensitively: the same key in other case, maybe twice.
      const k = key as string;
      (container as Record<string, unknown>)[k.toUpperCase()] = wrongValue(rng);
    } else (container as Record<string | number, unknown>)[key] = randomJson(rng);
  }
  return value;
}

function deepNesting(rng: Rng): string {
  const depth = rng.pick([100, 1_000, 10_000, 100_000]);
  if (rng.chance(0.5)) return '['.repeat(depth) + ']'.repeat(depth);
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** A body for a route's request message (or body field), in one of many malformed shapes. */
function restBody(typeName: string, ctx: Ctx, wrapRaw?: (v: unknown) => unknown): { shape: string; body: Buffer } {
  const { rng } = ctx;
  const valid = () => validMessage(messageDescriptor(typeName), { ...ctx, strict: true });
  const plausible = () => validMessage(messageDescriptor(typeName), ctx);
  const json = (v: unknown) => Buffer.from(withBigNumbers(JSON.stringify(wrapRaw ? wrapRaw(v) : v)));
  const roll = rng.int(100);
  if (roll < 14) return { shape: 'valid', body: json(valid()) };
  if (roll < 22) return { shape: 'plausible', body: json(plausible()) };
  if (roll < 55) return { shape: 'wrong-types', body: json(mutateJson(valid(), rng, 1 + rng.int(3))) };
  if (roll < 63) {
    const whole = json(valid());
    return { shape: 'truncated', body: whole.subarray(0, rng.int(whole.length)) };
  }
  if (roll < 71) return { shape: 'random-bytes', body: rng.bytes(rng.int(rng.chance(0.1) ? 20_000 : 200)) };
  if (roll < 75) return { shape: 'deep-nested', body: Buffer.from(deepNesting(rng)) };
  if (roll < 78) {
    // Deep nesting inside the message: raw fields take any JSON.
    const v = valid();
    const deep = deepNesting(rng);
    if (typeof v === 'object') for (const key of Object.keys(v)) if (rng.chance(0.3)) v[key] = '__DEEP__';
    return { shape: 'deep-nested-field', body: Buffer.from(json(v).toString().replaceAll('"__DEEP__"', deep)) };
  }
  if (roll < 79) {
    if (rng.chance(0.3)) return { shape: 'huge-over-limit', body: Buffer.alloc(4 * 1024 * 1024 + 1 + rng.int(1000), 0x20) };
    const v = valid();
    if (typeof v === 'object') v[rng.pick(Object.keys(v).concat('padding'))] = 'x'.repeat(1_000_000 + rng.int(1_000_000));
    return { shape: 'huge', body: json(v) };
  }
  if (roll < 83) return { shape: 'json-scalar', body: Buffer.from(rng.pick(['', ' ', 'null', '[]', '0', '"x"', 'true', '{}', '{"a":1}{', '\ufeff{}', '{"a":1,}', "{'a':1}", 'NaN'])) };
  if (roll < 88) return { shape: 'random-json', body: json(randomJson(rng)) };
  if (roll < 92) {
    // Valid JSON with unknown, duplicated and differently cased keys.
    const v = valid();
    const text = JSON.stringify(v);
    const extra = rng.pick(['"unknown":{"x":[1,2]}', '"LIFECYCLE":"docker"', '"process_guid":"other"', '"task_guid":null']);
    return { shape: 'extra-keys', body: Buffer.from(text.startsWith('{') && text.length > 2 ? `{${extra},${text.slice(1)}` : text) };
  }
  const whole = json(valid());
  const bytes = Buffer.from(whole);
  for (let n = 1 + rng.int(4); n > 0 && bytes.length > 0; n--) bytes[rng.int(bytes.length)] = rng.int(256);
  return { shape: 'byte-flips', body: bytes };
}

// ---------------------------------------------------------------------------------------------
// REST inputs

/** Percent-encodes the UTF-8 bytes of any text (lone surrogates too, unlike encodeURIComponent). */
function pctEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

const VERBS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];

function segmentFor(name: string, ctx: Ctx): { text: string; shape?: string } {
  const { rng } = ctx;
  if (rng.chance(0.75)) return { text: name === 'index' ? String(rng.int(4)) : pctEncode(ctx.guid) };
  const odd = rng.pick([
    '', '.', '..', '%2e', '%2e%2e', '%2F', 'a%2Fb', '%00', '%zz', '%', '%e2%98%83', '%ff%fe', 'a%20b', '-1', '99999999999999999999', '1.5', '0x10', '+1', '%201',
    'ÿþ', '%252e', 'not-a-guid', 'a'.repeat(rng.pick([64, 10_000])), pctEncode('☃'), '~!$&\'()*+,;=:@', `${pctEncode(ctx.guid)}%00`,
  ]);
  return { text: odd, shape: 'odd-segment' };
}

/** One REST input for a route. */
export function restInput(route: Route, rng: Rng): RestInput {
  const ctx: Ctx = { rng, guid: rng.chance(0.9) ? rng.guid() : rng.pick(['a', 'process-1', 'with space', 'UPPER_case-1']), depth: 0 };
  const shapes: string[] = [];
  const parts: string[] = [];
  for (const segment of route.segments) {
    if ('literal' in segment) parts.push(segment.literal);
    else {
      const made = segmentFor(segment.variable.at(-1)!, ctx);
      if (made.shape) shapes.push(made.shape);
      parts.push(made.text);
    }
  }
  let path = `/${parts.join('/')}`;
  if (rng.chance(0.03)) {
    path += rng.pick(['/', '/extra', '//', '/.', '?']);
    shapes.push('odd-path');
  }
  // Query parameters: the fields not bound to the path or body, filled or broken, plus junk.
  const query: string[] = [];
  if (route.body !== '*') {
    const input = route.method.input;
    for (const field of input.fields) {
      const bound = route.segments.some((s) => 'variable' in s && s.variable[0] === field.name) || field.name === route.body;
      if (bound || field.fieldKind !== 'scalar') continue;
      const roll = rng.int(10);
      if (roll < 6) query.push(`${field.name}=${pctEncode(String(scalarFor(field, field.scalar, ctx)))}`);
      else if (roll < 9) {
        shapes.push('odd-query');
        const many = () => Array.from({ length: rng.pick([1, 2, 1001]) }, () => rng.guid()).join(',');
        query.push(`${field.name}=${rng.pick(['', ',', 'a,,b', 'a,', ',a', '%zz', '%2C', 'a%2Cb', pctEncode('☃'), 'a+b', many(), '-_', `${many()}&${field.name}=x`])}`);
      }
    }
  }
  if (rng.chance(0.1)) {
    shapes.push('junk-query');
    query.push(rng.pick(['=', '&&', 'a=%', 'x=1&x=2', '%zz=1', 'guids', ';', `${'q'.repeat(100)}=${'v'.repeat(1000)}`]));
  }
  if (query.length > 0) path += `?${query.join('&')}`;

  let method = route.verb;
  if (rng.chance(0.08)) {
    method = rng.pick(VERBS);
    shapes.push('other-verb');
  }
  const headers: Record<string, string> = {};
  if (rng.chance(0.6)) headers.authorization = rng.pick(['bearer token', 'Basic dXNlcjpwYXNz', '', 'x'.repeat(200)]);
  if (rng.chance(0.5)) headers['content-type'] = rng.pick(['application/json', 'text/plain', 'application/x-protobuf', '']);
  if (rng.chance(0.2)) headers['x-vcap-request-id'] = rng.pick([rng.guid(), '', '☃'.normalize(), 'a'.repeat(500)].map((v) => v.replace(/[^\x20-\x7e]/g, '?')));
  for (const [k, v] of Object.entries(headers)) if (v === '') delete headers[k];

  let body: Buffer | undefined;
  let bodyShape = 'no-body';
  if (route.body !== '' || rng.chance(0.05)) {
    const typeName = route.body === '*' || route.body === '' ? route.method.input.typeName : bodyFieldType(route);
    const made = restBody(typeName, ctx);
    body = made.body;
    bodyShape = made.shape;
  }
  return { kind: 'rest', target: route.path, shape: [bodyShape, ...shapes].join('+'), method, path, headers, body };
}

function bodyFieldType(route: Route): string {
  const field = route.method.input.fields.find((f) => f.name === route.body);
  if (!field || field.fieldKind !== 'message') throw new Error(`${route.path}: body ${route.body} is not a message field`);
  return field.message.typeName;
}

// ---------------------------------------------------------------------------------------------
// REST checking

export interface RestAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Whether an answer keeps the contract of the route table and the spec. */
export function checkRest(table: RouteTable, input: RestInput, answer: RestAnswer): Outcome {
  const label = `rest ${answer.status}`;
  const fail = (problem: string): Outcome => ({ label, problem });
  const queryAt = input.path.indexOf('?');
  const pathname = queryAt < 0 ? input.path : input.path.slice(0, queryAt);
  // node:http reads the request line as latin1: the gateway sees the same characters.
  const text = answer.body.toString('utf8');
  const head = input.method === 'HEAD';
  // A request target must be ASCII (RFC 9112): node's HTTP parser refuses others with 400.
  if (/[^\x21-\x7e]/.test(input.path)) return answer.status === 400 ? { label } : fail(`a non-ASCII request target answered ${answer.status}, not 400`);
  const match = table.match(input.method, pathname);
  if (!match) {
    if (answer.status !== 404) return fail(`no route matches, expected 404, got ${answer.status}`);
    if (!head && text !== '404 page not found\n') return fail(`404 body ${JSON.stringify(text.slice(0, 100))}`);
    return { label };
  }
  if ('allowed' in match) {
    if (answer.status !== 405) return fail(`the path matches only ${match.allowed.join(',')}: expected 405, got ${answer.status}`);
    if (!head && text !== 'Method Not Allowed\n') return fail(`405 body ${JSON.stringify(text.slice(0, 100))}`);
    const allow = String(answer.headers.allow ?? '');
    if (allow !== match.allowed.join(', ')) return fail(`405 Allow header ${allow}`);
    return { label };
  }
  const { route } = match;
  const legacy = route.legacy;
  if (answer.status === legacy.successStatus) {
    if (legacy.emptyBody || head) return text === '' ? { label } : fail(`success body should be empty, got ${JSON.stringify(text.slice(0, 100))}`);
    if (!String(answer.headers['content-type']).startsWith('application/json')) return fail(`success content-type ${answer.headers['content-type']}`);
    if (legacy.trailingNewline && !text.endsWith('\n')) return fail('success body lacks its trailing newline');
    try {
      JSON.parse(text);
    } catch {
      return fail(`success body is not JSON: ${text.slice(0, 100)}`);
    }
    return { label };
  }
  if (answer.status === 413) {
    if ((input.body?.length ?? 0) <= MAX_BODY_BYTES) return fail(`413 for a body of ${input.body?.length ?? 0} bytes`);
    return text === '' ? { label } : fail('413 with a body');
  }
  if (answer.status < 400 || answer.status > 599) return fail(`status ${answer.status} is neither the route's success (${legacy.successStatus}) nor an error`);
  if (answer.status >= 500) {
    const declared = legacy.errors.some((e) => e.httpStatus === answer.status);
    if (!declared) return fail(`${answer.status} is not among the statuses the spec gives ${route.verb} ${route.template} (${[...new Set(legacy.errors.map((e) => e.httpStatus))].join(', ')})`);
  }
  const bodyType = ERROR_BODY_TYPES[route.path]?.[answer.status];
  if (bodyType === undefined) return text === '' ? { label } : fail(`error ${answer.status} should have no body, got ${JSON.stringify(text.slice(0, 100))}`);
  if (head) return { label };
  if (!String(answer.headers['content-type']).startsWith('application/json')) return fail(`error ${answer.status} content-type ${answer.headers['content-type']}`);
  try {
    const decoded = decodeLegacyJson<{ error?: { id: number; message: string } }>(bodyType, text);
    if (!decoded.error || decoded.error.id === 0 || !decoded.error.message) return fail(`error body without an error id and message: ${text.slice(0, 200)}`);
  } catch (error) {
    return fail(`error body is not a ${bodyType}: ${(error as Error).message}: ${text.slice(0, 200)}`);
  }
  return { label };
}

/** Sends one REST input with node:http (which keeps the path exactly as made). */
export function sendRest(baseUrl: URL, agent: Agent, input: RestInput, deadlineMs: number): Promise<RestAnswer | 'timeout' | { error: string }> {
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...input.headers };
    if (input.body !== undefined) headers['content-length'] = input.body.length;
    let settled = false;
    const done = (value: RestAnswer | 'timeout' | { error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    let req: ReturnType<typeof httpRequest>;
    try {
      req = httpRequest({ host: baseUrl.hostname, port: baseUrl.port, method: input.method, path: input.path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (error) => done({ error: `response: ${error.message}` }));
      });
    } catch (error) {
      // The client itself refuses the request (not the server's doing): reported as such.
      return resolve({ error: `client: ${(error as Error).message}` });
    }
    const timer = setTimeout(() => {
      req.destroy();
      done('timeout');
    }, deadlineMs);
    req.on('error', (error) => done({ error: error.message }));
    req.end(input.body);
  });
}

// ---------------------------------------------------------------------------------------------
// gRPC inputs

interface GrpcMethodInfo {
  path: string;
  streaming: boolean;
  inputType: string;
  encode(message: unknown): Uint8Array;
  /** Legacy route statuses (for which codes may be INTERNAL). */
  declaredCodes: Set<number>;
}

export function grpcMethods(definitions: readonly TsProtoServiceDefinition[] = FUZZED_SERVICES): GrpcMethodInfo[] {
  const routes = new Map(routesFor(definitions).map((r) => [r.path, r]));
  const out: GrpcMethodInfo[] = [];
  for (const definition of definitions) {
    const service = descriptorRegistry().getService(definition.fullName)!;
    for (const method of Object.values(definition.methods)) {
      const desc = service.methods.find((m) => m.name === method.name)!;
      const path = `/${definition.fullName}/${method.name}`;
      const requestType = method.requestType as unknown as { fromPartial(v: unknown): unknown; encode(v: unknown): { finish(): Uint8Array } };
      out.push({
        path,
        streaming: method.responseStream,
        inputType: desc.input.typeName,
        encode: (message) => requestType.encode(requestType.fromPartial(message)).finish(),
        declaredCodes: new Set(routes.get(path)?.legacy.errors.map((e) => e.code) ?? []),
      });
    }
  }
  return out;
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** Well-formed protobuf of a random schema: random field numbers and wire types. */
function randomProtobuf(rng: Rng, depth = 0): Buffer {
  const out: number[] = [];
  for (let n = rng.int(8); n > 0; n--) {
    const field = rng.chance(0.7) ? 1 + rng.int(25) : 1 + rng.int(536_870_911);
    const wire = rng.pick([0, 1, 2, 5, 2]);
    out.push(...varint((field << 3) | wire));
    if (wire === 0) out.push(...(rng.chance(0.2) ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01] : varint(rng.int(1 << 30))));
    else if (wire === 1) out.push(...rng.bytes(8));
    else if (wire === 5) out.push(...rng.bytes(4));
    else {
      const inner = depth < 3 && rng.chance(0.4) ? randomProtobuf(rng, depth + 1) : rng.chance(0.5) ? Buffer.from(rng.pick([...INTERESTING_STRINGS, rng.guid()])) : rng.bytes(rng.int(20));
      out.push(...varint(inner.length), ...inner);
    }
  }
  return Buffer.from(out);
}

/** One gRPC input for a method. */
export function grpcInput(method: GrpcMethodInfo, rng: Rng): GrpcInput {
  const ctx: Ctx = { rng, guid: rng.guid(), depth: 0 };
  const valid = (): Buffer => {
    let legacy = validMessage(messageDescriptor(method.inputType), { ...ctx, strict: rng.chance(0.6) }) as Record<string, unknown>;
    // Raw fields hold JSON text on the wire, as the gateway would pass them.
    try {
      return Buffer.from(method.encode(fromLegacyValue(method.inputType, legacy)));
    } catch {
      legacy = {};
      return Buffer.from(method.encode({}));
    }
  };
  const roll = rng.int(100);
  let shape: string;
  let body: Buffer;
  if (roll < 20) [shape, body] = ['valid', valid()];
  else if (roll < 35) [shape, body] = ['random-bytes', rng.bytes(rng.int(rng.chance(0.05) ? 5_000 : 64))];
  else if (roll < 55) [shape, body] = ['random-protobuf', randomProtobuf(rng)];
  else if (roll < 70) {
    const bytes = valid();
    for (let n = 1 + rng.int(4); n > 0 && bytes.length > 0; n--) bytes[rng.int(bytes.length)] ^= 1 << rng.int(8);
    [shape, body] = ['bit-flips', bytes];
  } else if (roll < 80) {
    const bytes = valid();
    [shape, body] = ['truncated', bytes.subarray(0, rng.int(bytes.length + 1))];
  } else if (roll < 92) [shape, body] = ['valid+random-fields', Buffer.concat([valid(), randomProtobuf(rng)])];
  else [shape, body] = ['empty', Buffer.alloc(0)];
  return { kind: 'grpc', target: method.path, shape, streaming: method.streaming, body };
}

// ---------------------------------------------------------------------------------------------
// gRPC sending and checking

export interface GrpcAnswer {
  code: number;
  details: string;
  trailer?: GrpcMetadata;
  /** A streaming call: messages received before it ended or was cancelled. */
  messages: number;
}

const identity = (b: Buffer) => b;

/** Sends raw request bytes; a streaming call is cancelled after its first message. */
export function sendGrpc(client: GrpcJsClient, input: GrpcInput, deadlineMs: number): Promise<GrpcAnswer | 'timeout'> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (value: GrpcAnswer | 'timeout') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    let cancel: () => void = () => {};
    const timer = setTimeout(() => {
      cancel();
      done('timeout');
    }, deadlineMs);
    if (!input.streaming) {
      const call = client.makeUnaryRequest(input.target, identity, identity, input.body, new GrpcMetadata(), {}, (error: ServiceError | null) => {
        done(error ? { code: error.code, details: error.details, trailer: error.metadata, messages: 0 } : { code: grpcStatus.OK, details: '', messages: 1 });
      });
      cancel = () => call.cancel();
      return;
    }
    const call = client.makeServerStreamRequest(input.target, identity, identity, input.body, new GrpcMetadata(), {});
    let messages = 0;
    cancel = () => call.cancel();
    call.on('data', () => {
      messages++;
      // One message proves the stream answers; the rest would run until cancelled.
      if (messages === 1) done({ code: grpcStatus.OK, details: '', messages });
      call.cancel();
    });
    call.on('error', (error: ServiceError) => {
      if (error.code === grpcStatus.CANCELLED && messages > 0) return;
      done({ code: error.code, details: error.details, trailer: error.metadata, messages });
    });
    call.on('end', () => done({ code: grpcStatus.OK, details: '', messages }));
  });
}

const FAULT_CODES = new Set<number>([grpcStatus.UNKNOWN, grpcStatus.DATA_LOSS, grpcStatus.UNIMPLEMENTED, grpcStatus.DEADLINE_EXCEEDED, grpcStatus.CANCELLED]);

export function checkGrpc(method: GrpcMethodInfo, answer: GrpcAnswer): Outcome {
  const name = grpcStatus[answer.code] ?? String(answer.code);
  const label = `grpc ${name}`;
  const fail = (problem: string): Outcome => ({ label, problem });
  if (!Number.isInteger(answer.code) || answer.code < 0 || answer.code > 16) return fail(`invalid status code ${answer.code}`);
  if (answer.code === grpcStatus.OK) return { label };
  if (FAULT_CODES.has(answer.code)) return fail(`${name}: ${answer.details}`);
  if (answer.code === grpcStatus.INTERNAL && !method.declaredCodes.has(grpcStatus.INTERNAL)) return fail(`INTERNAL, which ${method.path} does not declare: ${answer.details}`);
  const bytes = answer.trailer?.get(STATUS_DETAILS_KEY)[0];
  if (!(bytes instanceof Buffer)) return fail(`${name} without ${STATUS_DETAILS_KEY}: ${answer.details}`);
  let status: RpcStatus;
  try {
    status = RpcStatus.decode(bytes);
  } catch (error) {
    return fail(`${STATUS_DETAILS_KEY} is not a google.rpc.Status: ${(error as Error).message}`);
  }
  if (status.code !== answer.code) return fail(`details say code ${status.code}, the status ${answer.code}`);
  const info = status.details.find((d) => d.typeUrl === 'type.googleapis.com/google.rpc.ErrorInfo');
  if (!info) return fail(`${name} without a google.rpc.ErrorInfo`);
  const decoded = ErrorInfo.decode(info.value);
  if (!decoded.reason || decoded.domain !== ERROR_DOMAIN) return fail(`ErrorInfo ${JSON.stringify(decoded)}`);
  return { label: `${label} ${decoded.reason}` };
}

// ---------------------------------------------------------------------------------------------
// A run

export interface FuzzTargets {
  /** The gateway's base URL. */
  gatewayUrl: string;
  /** host:port of the gRPC server serving the same services. */
  grpcAddress: string;
  /** Checks that both servers still answer a valid request; throws when they do not. */
  healthy(): Promise<void>;
}

export interface FuzzOptions {
  seed: number;
  /** REST inputs and gRPC inputs. */
  rest: number;
  grpc: number;
  /** Requests in flight. */
  concurrency?: number;
  /** Inputs between two health checks. */
  batch?: number;
  /** Per-request deadline. */
  deadlineMs?: number;
  /** Run only these input numbers (replaying a failure). */
  only?: readonly number[];
  onProgress?(done: number, total: number): void;
}

export interface FuzzReport {
  seed: number;
  inputs: number;
  seconds: number;
  counts: Map<string, number>;
  failures: Failure[];
  /** Inputs the HTTP client itself refused to send (not counted as failures). */
  unsendable: number;
  /** The slowest inputs: index, milliseconds and outcome. */
  slowest: Array<{ index: number; ms: number; label: string }>;
}

/**
 * Input n < rest is a REST input for route n mod routes (so every route gets its share);
 * the rest are gRPC inputs for method n mod methods.
 */
export function inputAt(seed: number, index: number, rest: number, routes: readonly Route[], methods: readonly GrpcMethodInfo[]): FuzzInput {
  const rng = new Rng(seed, index);
  if (index < rest) return restInput(routes[index % routes.length]!, rng);
  const n = index - rest;
  return grpcInput(methods[n % methods.length]!, rng);
}

export async function runFuzz(targets: FuzzTargets, options: FuzzOptions): Promise<FuzzReport> {
  const routes = routesFor(FUZZED_SERVICES);
  const table = new RouteTable(routes);
  const methods = grpcMethods();
  const methodsByPath = new Map(methods.map((m) => [m.path, m]));
  const concurrency = options.concurrency ?? 16;
  const batch = options.batch ?? 500;
  const deadlineMs = options.deadlineMs ?? 10_000;
  const base = new URL(targets.gatewayUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const client = new GrpcJsClient(targets.grpcAddress, credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  const total = options.rest + options.grpc;
  const indexes = options.only ? [...options.only] : Array.from({ length: total }, (_, i) => i);
  const counts = new Map<string, number>();
  const failures: Failure[] = [];
  let unsendable = 0;
  const slowest: FuzzReport['slowest'] = [];
  const started = performance.now();
  const count = (label: string) => counts.set(label, (counts.get(label) ?? 0) + 1);

  async function one(index: number): Promise<void> {
    const input = inputAt(options.seed, index, options.rest, routes, methods);
    const t0 = performance.now();
    let outcome: Outcome;
    if (input.kind === 'rest') {
      const answer = await sendRest(base, agent, input, deadlineMs);
      if (answer === 'timeout') outcome = { label: 'rest timeout', problem: `no answer within ${deadlineMs} ms` };
      else if ('error' in answer) {
        if (answer.error.startsWith('client: ')) {
          unsendable++;
          outcome = { label: 'rest unsendable' };
        } else outcome = { label: 'rest connection-error', problem: answer.error };
      } else outcome = checkRest(table, input, answer);
    } else {
      const method = methodsByPath.get(input.target)!;
      const answer = await sendGrpc(client, input, deadlineMs);
      outcome = answer === 'timeout' ? { label: 'grpc timeout', problem: `no answer within ${deadlineMs} ms` } : checkGrpc(method, answer);
    }
    count(outcome.label);
    const ms = performance.now() - t0;
    if (slowest.length < 5 || ms > slowest.at(-1)!.ms) {
      slowest.push({ index, ms: Math.round(ms), label: outcome.label });
      slowest.sort((a, b) => b.ms - a.ms);
      slowest.length = Math.min(slowest.length, 5);
    }
    if (outcome.problem) failures.push({ seed: options.seed, index, input, problem: outcome.problem });
  }

  try {
    for (let from = 0; from < indexes.length; from += batch) {
      const slice = indexes.slice(from, from + batch);
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(concurrency, slice.length) }, async () => {
          while (next < slice.length) await one(slice[next++]!);
        }),
      );
      // No crash: both servers still answer a valid request after every batch.
      await targets.healthy();
      options.onProgress?.(Math.min(from + batch, indexes.length), indexes.length);
    }
  } finally {
    agent.destroy();
    client.close();
  }
  return { seed: options.seed, inputs: indexes.length, seconds: (performance.now() - started) / 1000, counts, failures, unsendable, slowest };
}

/** Seed and input count from the environment (FUZZ_SEED, FUZZ_INPUTS, FUZZ_ONLY=3,17). */
export function fuzzSettings(defaultInputs: number): { seed: number; inputs: number; only?: number[] } {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : DEFAULT_SEED;
  if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${process.env.FUZZ_SEED}`);
  const inputs = process.env.FUZZ_INPUTS ? Number(process.env.FUZZ_INPUTS) : defaultInputs;
  if (!Number.isInteger(inputs) || inputs <= 0) throw new Error(`FUZZ_INPUTS must be a positive integer, got ${process.env.FUZZ_INPUTS}`);
  const only = process.env.FUZZ_ONLY ? process.env.FUZZ_ONLY.split(',').map(Number) : undefined;
  return { seed, inputs, only };
}

/** The REST share of a run: 70% of the inputs. */
export function splitInputs(inputs: number): { rest: number; grpc: number } {
  const rest = Math.round(inputs * 0.7);
  return { rest, grpc: inputs - rest };
}
