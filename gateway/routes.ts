// The gateway's route table, built from the contracts: each RPC's google.api.http binding
// (verb, path template, body, response_body) and its cloudfoundry.ccbridge.legacy.v1.route
// option (success status, error statuses). No route is written by hand.
import type { DescMessage, DescMethod } from '@bufbuild/protobuf';
import type { TsProtoServiceDefinition } from 'nice-grpc';

export type TsProtoMethodDefinition<Req, Res> = TsProtoServiceDefinition['methods'][string] & {
  requestType: { encode(m: Req): { finish(): Uint8Array }; decode(b: Uint8Array): Req };
  responseType: { encode(m: Res): { finish(): Uint8Array }; decode(b: Uint8Array): Res };
};
import { descriptorRegistry, optionOf } from '../lib/descriptors.js';

export interface LegacyErrorStatus {
  reason: string;
  code: number;
  httpStatus: number;
}

export interface LegacyRoute {
  successStatus: number;
  emptyBody: boolean;
  trailingNewline: boolean;
  errors: LegacyErrorStatus[];
}

/** One segment of a compiled path template: a literal, or a variable bound to a field path. */
type Segment = { literal: string } | { variable: string[] };

export interface Route {
  verb: string;
  template: string;
  segments: Segment[];
  /** "" (no body), "*" (the whole request) or a top-level request field name. */
  body: string;
  /** "" (the whole response) or the response field written as the body. */
  responseBody: string;
  legacy: LegacyRoute;
  method: DescMethod;
  /** The generated ts-proto method, for encoding and dispatch. */
  generated: TsProtoMethodDefinition<unknown, unknown>;
  serviceName: string;
  /** gRPC path: /package.Service/Method. */
  path: string;
}

interface HttpRuleShape {
  pattern: { case: string | undefined; value?: unknown };
  body: string;
  responseBody: string;
}

interface RouteOptionShape {
  successStatus: number;
  emptyBody: boolean;
  trailingNewline: boolean;
  errors: { reason: string; code: number; httpStatus: number }[];
}

const VERBS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** The routes of the given services, in declaration order. */
export function routesFor(definitions: readonly TsProtoServiceDefinition[]): Route[] {
  const routes: Route[] = [];
  for (const definition of definitions) {
    const service = descriptorRegistry().getService(definition.fullName);
    if (!service) throw new Error(`service ${definition.fullName} is not in the descriptors: run npm run gen`);
    for (const method of service.methods) {
      const rule = optionOf(method, 'google.api.http') as unknown as HttpRuleShape | undefined;
      if (!rule || !rule.pattern.case || !(VERBS as readonly string[]).includes(rule.pattern.case)) continue;
      const generated = Object.values(definition.methods).find((m) => m.name === method.name);
      if (!generated) throw new Error(`${definition.fullName}.${method.name} has no generated method`);
      const template = rule.pattern.value as string;
      const option = optionOf(method, 'cloudfoundry.ccbridge.legacy.v1.route') as unknown as RouteOptionShape | undefined;
      routes.push({
        verb: rule.pattern.case.toUpperCase(),
        template,
        segments: compileTemplate(template, method.input),
        body: rule.body,
        responseBody: rule.responseBody,
        legacy: {
          successStatus: option?.successStatus || 200,
          emptyBody: option?.emptyBody ?? false,
          trailingNewline: option?.trailingNewline ?? false,
          errors: (option?.errors ?? []).map((e) => ({ reason: e.reason, code: e.code, httpStatus: e.httpStatus })),
        },
        method,
        generated: generated as TsProtoMethodDefinition<unknown, unknown>,
        serviceName: definition.fullName,
        path: `/${definition.fullName}/${method.name}`,
      });
    }
  }
  return routes;
}

/**
 * Compiles a google.api.http path template whose variables each match one segment
 * (`/v1/apps/{process_guid}/index/{index}`). A variable matches an empty segment too, as the
 * 2015 router did, so the service can answer 400 for it.
 */
export function compileTemplate(template: string, input: DescMessage): Segment[] {
  if (!template.startsWith('/')) throw new Error(`path template ${template} must start with /`);
  return template
    .slice(1)
    .split('/')
    .map((part) => {
      const variable = /^\{([a-z0-9_.]+)(?:=\*)?\}$/.exec(part);
      if (!variable) {
        if (/[{}*]/.test(part)) throw new Error(`unsupported path template segment ${part} in ${template}`);
        return { literal: part };
      }
      const fieldPath = variable[1]!.split('.');
      checkFieldPath(input, fieldPath, template);
      return { variable: fieldPath };
    });
}

function checkFieldPath(input: DescMessage, fieldPath: string[], template: string): void {
  let message: DescMessage | undefined = input;
  for (const name of fieldPath) {
    const field: DescMessage['fields'][number] | undefined = message?.fields.find((f) => f.name === name);
    if (!field) throw new Error(`path template ${template} names unknown field ${fieldPath.join('.')}`);
    message = field.fieldKind === 'message' ? field.message : undefined;
  }
}

export interface RouteMatch {
  route: Route;
  /** Field path (dotted) → URL-unescaped segment value. */
  variables: Map<string, string>;
}

/** The route table, matched by path first and then verb (404 vs 405 as the 2015 router). */
export class RouteTable {
  constructor(readonly routes: readonly Route[]) {}

  match(verb: string, pathname: string): RouteMatch | { allowed: string[] } | undefined {
    const parts = pathname.slice(1).split('/');
    const allowed = new Set<string>();
    for (const route of this.routes) {
      const variables = matchSegments(route.segments, parts);
      if (!variables) continue;
      const routeVerbs = route.verb === 'GET' ? ['GET', 'HEAD'] : [route.verb];
      if (routeVerbs.includes(verb)) return { route, variables };
      for (const v of routeVerbs) allowed.add(v);
    }
    return allowed.size > 0 ? { allowed: [...allowed] } : undefined;
  }
}

function matchSegments(segments: readonly Segment[], parts: readonly string[]): Map<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const variables = new Map<string, string>();
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if ('literal' in segment) {
      if (segment.literal !== part) return undefined;
    } else {
      let value: string;
      try {
        value = decodeURIComponent(part);
      } catch {
        return undefined;
      }
      variables.set(segment.variable.join('.'), value);
    }
  }
  return variables;
}
