// The one way a daemon serves gRPC: its services plus health checking, server reflection and a
// per-call log line, so every daemon answers grpc-health-probe and grpcurl the same way.
// Also the one way to make a client whose every call carries a deadline.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ServerCredentials } from '@grpc/grpc-js';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import {
  ClientError,
  createClientFactory,
  createServer,
  ServerError,
  Status,
  type CallContext,
  type Channel,
  type Client,
  type ClientMiddleware,
  type CompatServiceDefinition,
  type Server,
  type ServerMiddlewareCall,
  type ServiceImplementation,
} from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { ServerReflection, ServerReflectionService } from 'nice-grpc-server-reflection';
import { createErrorMiddleware, invalidArgument, translateError } from './errors.js';
import type { Logger } from './log.js';

/** The FileDescriptorSet that `npm run gen` writes next to the generated code. */
export const DESCRIPTOR_SET_PATH = new URL('../gen/descriptors.binpb', import.meta.url);

export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';
export const REFLECTION_SERVICE_NAME = 'grpc.reflection.v1.ServerReflection';

/** One service to serve: a generated definition and its implementation. */
export interface GrpcService<Definition extends CompatServiceDefinition = CompatServiceDefinition> {
  definition: Definition;
  implementation: ServiceImplementation<Definition>;
}

export interface StartGrpcServerOptions<Definitions extends readonly CompatServiceDefinition[]> {
  /** Defaults to 127.0.0.1: loopback unless a deployment asks for more. */
  host?: string;
  /** 0 picks a free port; the chosen one is returned. */
  port?: number;
  services: { [K in keyof Definitions]: GrpcService<Definitions[K]> };
  logger: Logger;
  /** TLS / mTLS; plaintext when absent. */
  credentials?: ServerCredentials;
}

export interface RunningGrpcServer {
  port: number;
  /** host:port, ready for a client's createChannel. */
  address: string;
  server: Server;
  /** Per-service serving status; every added service starts 'healthy'. */
  health: HealthState;
  /**
   * Marks every service NOT_SERVING, lets calls in flight finish for up to graceMs, then cancels
   * what is left. Safe to call more than once.
   */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_CLOSE_GRACE_MS = 5_000;

/** Codes that mean the server, not the caller, went wrong: logged as errors. */
const SERVER_FAULT_CODES = new Set<Status>([Status.UNKNOWN, Status.INTERNAL, Status.DATA_LOSS, Status.UNIMPLEMENTED]);

export async function startGrpcServer<const Definitions extends readonly CompatServiceDefinition[]>(
  options: StartGrpcServerOptions<Definitions>,
): Promise<RunningGrpcServer> {
  const host = options.host ?? '127.0.0.1';
  const log = options.logger.child({ session: 'grpc-server' });
  const services = options.services as readonly GrpcService[];
  const serviceNames = services.map((service) => serviceFullName(service.definition));

  let server: Server = createServer();
  for (const middleware of standardServerMiddleware(log)) server = server.use(middleware);
  for (const service of services) server.add(decodingFailuresAsCalls(service.definition), service.implementation);

  const health = HealthState();
  for (const name of serviceNames) health.setStatus('healthy', name);
  server.add(HealthDefinition, HealthServiceImpl(health));

  const described = describedServiceNames();
  const reflected = serviceNames.filter((name) => described.has(name));
  for (const name of serviceNames.filter((name) => !described.has(name))) {
    log.warn({ service: name, descriptors: DESCRIPTOR_SET_PATH.pathname }, 'service-missing-from-descriptors');
  }
  server.add(ServerReflectionService, ServerReflection(descriptorSetBytes(), reflected));

  const port = await server.listen(joinHostPort(host, options.port ?? 0), options.credentials ?? ServerCredentials.createInsecure());
  const address = joinHostPort(host, port);
  log.info({ address, services: serviceNames, tls: options.credentials !== undefined }, 'grpc-server-listening');

  let closing: Promise<void> | undefined;
  const close = (graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> => {
    closing ??= (async () => {
      for (const name of serviceNames) health.setStatus('unhealthy', name);
      health.setStatus('unhealthy');
      let graceTimer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace-over'>((resolve) => {
        graceTimer = setTimeout(() => resolve('grace-over'), graceMs);
      });
      const outcome = await Promise.race([server.shutdown().then(() => 'drained' as const), graceOver]);
      clearTimeout(graceTimer);
      if (outcome === 'grace-over') server.forceShutdown();
      log.info({ address, outcome }, 'grpc-server-closed');
    })();
    return closing;
  };

  return { port, address, server, health, close };
}

/** `package.Service` of a ts-proto, grpc-js or nice-grpc definition. */
export function serviceFullName(definition: CompatServiceDefinition): string {
  if ('fullName' in definition && typeof definition.fullName === 'string') return definition.fullName;
  const first = Object.values(definition as Record<string, { path?: unknown }>)[0];
  const path = typeof first?.path === 'string' ? first.path : '';
  const match = /^\/([^/]+)\//.exec(path);
  if (!match) throw new TypeError('service definition has neither fullName nor method paths');
  return match[1]!;
}

function joinHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

let cachedDescriptorSet: { bytes: Uint8Array; serviceNames: Set<string> } | undefined;

function loadDescriptorSet(): { bytes: Uint8Array; serviceNames: Set<string> } {
  if (!cachedDescriptorSet) {
    const bytes = new Uint8Array(readFileSync(DESCRIPTOR_SET_PATH));
    const serviceNames = new Set<string>();
    for (const file of fromBinary(FileDescriptorSetSchema, bytes).file) {
      for (const service of file.service) serviceNames.add(file.package ? `${file.package}.${service.name}` : service.name);
    }
    cachedDescriptorSet = { bytes, serviceNames };
  }
  return cachedDescriptorSet;
}

function descriptorSetBytes(): Uint8Array {
  return loadDescriptorSet().bytes;
}

function describedServiceNames(): Set<string> {
  return loadDescriptorSet().serviceNames;
}

/**
 * The middleware every call runs through, outermost first: the call log line, then the one
 * translation of domain errors to gRPC status. The gateway's in-process dispatch runs the same
 * two steps through runUnaryCall.
 */
export function standardServerMiddleware(log: Logger) {
  return [createCallLoggingMiddleware(log), createErrorMiddleware(log), refuseUndecodableRequests] as const;
}

/** Stands in for a request message whose bytes did not decode. */
const UNDECODABLE = Symbol('undecodable-request');

interface DecodingMethod {
  requestStream: boolean;
  requestType: { decode(bytes: Uint8Array): unknown };
}

/**
 * grpc-js answers a request that does not decode with a bare INTERNAL, as if the server had
 * failed. With ts-proto definitions, the decoding failure reaches the call instead, so the call
 * answers INVALID_ARGUMENT with an ErrorInfo like every other refused request.
 */
function decodingFailuresAsCalls<Definition extends CompatServiceDefinition>(definition: Definition): Definition {
  if (!('fullName' in definition) || !('methods' in definition)) return definition;
  const methods: Record<string, DecodingMethod> = {};
  for (const [key, method] of Object.entries(definition.methods as Record<string, DecodingMethod>)) {
    const decode = method.requestType.decode;
    const requestType = Object.create(method.requestType) as DecodingMethod['requestType'];
    requestType.decode = (bytes) => {
      try {
        return decode(bytes);
      } catch {
        return { [UNDECODABLE]: true };
      }
    };
    methods[key] = { ...method, requestType };
  }
  return { ...definition, methods };
}

async function* refuseUndecodableRequests<Request, Response>(
  call: ServerMiddlewareCall<Request, Response>,
  context: CallContext,
): AsyncGenerator<Response, Response | void, undefined> {
  if (!call.method.requestStream && typeof call.request === 'object' && call.request !== null && UNDECODABLE in call.request) {
    throw invalidArgument('MALFORMED_REQUEST', `the request is not a valid message for ${call.method.path}`);
  }
  return yield* call.next(call.request, context);
}

/** The code a call ended with, for its log line. */
function codeOf(error: unknown): { code: Status; unexpected?: unknown } {
  if (error instanceof ServerError) return { code: error.code };
  if (error instanceof Error && error.name === 'AbortError') return { code: Status.CANCELLED };
  return { code: Status.UNKNOWN, unexpected: error };
}

/** One `grpc-call` line per RPC: method, status code, duration. Request bodies are never logged. */
function logCallLine(log: Logger, method: string, started: number, code: Status, unexpected: unknown): void {
  const fault = SERVER_FAULT_CODES.has(code);
  if (!log.isLevelEnabled(fault ? 'error' : 'info')) return;
  const line = {
    method,
    code: Status[code],
    duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
    ...(unexpected === undefined ? {} : { err: unexpected }),
  };
  if (fault) log.error(line, 'grpc-call');
  else log.info(line, 'grpc-call');
}

export function createCallLoggingMiddleware(log: Logger) {
  return async function* logCall<Request, Response>(
    call: ServerMiddlewareCall<Request, Response>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const started = performance.now();
    let outcome: { code: Status; unexpected?: unknown } = { code: Status.OK };
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      outcome = codeOf(error);
      throw error;
    } finally {
      logCallLine(log, call.method.path, started, outcome.code, outcome.unexpected);
    }
  };
}

/**
 * A unary call in this process through the same steps as standardServerMiddleware — the call
 * log line around the error translation — without the generator machinery a server needs for
 * streams (a hot path: the co-located gateway calls it for every request).
 */
export async function runUnaryCall<Response>(log: Logger, methodPath: string, context: CallContext, call: () => Promise<Response>): Promise<Response> {
  const started = performance.now();
  let outcome: { code: Status; unexpected?: unknown } = { code: Status.OK };
  try {
    try {
      return await call();
    } catch (error) {
      translateError(error, context, log, methodPath);
    }
  } catch (error) {
    outcome = codeOf(error);
    throw error;
  } finally {
    logCallLine(log, methodPath, started, outcome.code, outcome.unexpected);
  }
}

export interface DeadlineCallOptions {
  /** An absolute Date, or milliseconds from the start of the call. */
  deadline?: Date | number;
}

/**
 * Client middleware that cancels a call at its deadline and reports DEADLINE_EXCEEDED, as a
 * ClientError like any other gRPC failure. nice-grpc's CallOptions have no deadline of their own.
 */
export const deadlineClientMiddleware: ClientMiddleware<DeadlineCallOptions> = async function* withDeadline(call, options) {
  const { deadline, signal: callerSignal, ...rest } = options;
  if (deadline === undefined) return yield* call.next(call.request, options);
  const timeoutMs = Math.max(0, deadline instanceof Date ? deadline.getTime() - Date.now() : deadline);
  const controller = new AbortController();
  const abortFromCaller = () => controller.abort();
  if (callerSignal?.aborted) controller.abort();
  callerSignal?.addEventListener('abort', abortFromCaller, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    return yield* call.next(call.request, { ...rest, signal: controller.signal });
  } catch (error) {
    if (timedOut && error instanceof Error && error.name === 'AbortError') {
      throw new ClientError(call.method.path, Status.DEADLINE_EXCEEDED, `deadline of ${timeoutMs} ms exceeded`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', abortFromCaller);
  }
};

export interface GrpcClientOptions {
  /** Deadline of every call that does not pass its own; milliseconds. */
  defaultDeadlineMs?: number;
}

const DEFAULT_CALL_DEADLINE_MS = 10_000;

/** A nice-grpc client whose calls always have a deadline (per call `{ deadline }` overrides the default). */
export function createGrpcClient<Definition extends CompatServiceDefinition>(
  definition: Definition,
  channel: Channel,
  options: GrpcClientOptions = {},
): Client<Definition, DeadlineCallOptions> {
  return createClientFactory()
    .use(deadlineClientMiddleware)
    .create(definition, channel, { '*': { deadline: options.defaultDeadlineMs ?? DEFAULT_CALL_DEADLINE_MS } });
}
