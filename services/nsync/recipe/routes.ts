// DesiredLRP.routes: one JSON document per router, as bytes. Nsync owns two keys, `cf-router`
// (the app's hostnames and port) and `diego-ssh` (see ssh.ts); other keys belong to other
// writers and pass through an update untouched. The JSON is written as Go wrote it (key order,
// HTML-safe escaping) so the bytes match what the original bridge stored.
import { ProtoRoutes } from '../../../gen/diego/bbs/v1/desired_lrp.js';
import { quote } from '../../../lib/legacy-json.js';
import { CF_ROUTER_KEY } from './constants.js';

export type GoJsonValue = string | number | readonly GoJsonValue[] | GoJsonObject;
/** An object as ordered entries, since Go writes struct fields in declaration order. */
export type GoJsonObject = { readonly entries: readonly (readonly [string, GoJsonValue])[] };

/** JSON text of an object given as ordered entries, with Go's string escaping. */
export function goJson(entries: readonly (readonly [string, GoJsonValue])[]): string {
  return encode({ entries });
}

function encode(value: GoJsonValue): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number') return String(value);
  if (isGoJsonObject(value)) return `{${value.entries.map(([key, v]) => `${quote(key)}:${encode(v)}`).join(',')}}`;
  return `[${value.map(encode).join(',')}]`;
}

function isGoJsonObject(value: GoJsonValue): value is GoJsonObject {
  return typeof value === 'object' && !Array.isArray(value);
}

/**
 * The `cf-router` document: one entry for all hostnames on the app's port. Hostnames are `[]`
 * when CC sent none (the 2015 `null` for a null list cannot come through the contract, which
 * has no null lists, and routers read both alike).
 */
export function cfRouterRouteJson(hostnames: readonly string[], port: number): string {
  return `[${goJson([
    ['hostnames', hostnames],
    ['port', port],
  ])}]`;
}

/** ProtoRoutes from router key to JSON text. */
export function protoRoutesOf(routes: Readonly<Record<string, string>>): ProtoRoutes {
  const encoded: Record<string, Buffer> = {};
  for (const [key, json] of Object.entries(routes)) encoded[key] = Buffer.from(json, 'utf8');
  return ProtoRoutes.fromPartial({ routes: encoded });
}

/**
 * The routes of an existing LRP with `cf-router` replaced and every other key's bytes kept as
 * they are (copied, so the result shares no buffer with the input). An LRP without routes is
 * treated as having none, where 2015 nsync crashed.
 */
export function routesWithCfRouter(existing: ProtoRoutes | undefined, hostnames: readonly string[], port: number): ProtoRoutes {
  const routes: Record<string, Buffer> = {};
  for (const [key, bytes] of Object.entries(existing?.routes ?? {})) {
    if (key !== CF_ROUTER_KEY) routes[key] = Buffer.from(bytes);
  }
  routes[CF_ROUTER_KEY] = Buffer.from(cfRouterRouteJson(hostnames, port), 'utf8');
  return ProtoRoutes.fromPartial({ routes });
}
