// How the gateway reaches a service: in-process (the same service object, through the same
// server middleware a gRPC server runs) or over gRPC with a nice-grpc client. Both report a
// failed call the same way, as a GatewayCallError carrying the status and its rich details.
import {
  ClientError,
  createClient,
  Metadata,
  ServerError,
  Status,
  type CallContext,
  type Channel,
  type TsProtoServiceDefinition,
} from 'nice-grpc';
import { callFailureFrom, type CallFailure } from '../lib/errors.js';
import { runUnaryCall } from '../lib/grpc.js';
import type { Logger } from '../lib/log.js';
import type { TsProtoMethodDefinition } from './routes.js';

export class GatewayCallError extends Error {
  override name = 'GatewayCallError';
  constructor(readonly failure: CallFailure) {
    super(failure.message);
  }
}

/** Calls one unary method of one service. */
export interface Dispatcher {
  readonly mode: 'in-process' | 'grpc';
  unary(method: TsProtoMethodDefinition<unknown, unknown>, request: unknown, metadata: Metadata, signal: AbortSignal): Promise<unknown>;
}

/** A service the gateway serves: its generated definition and how to reach it. */
export interface ServiceBinding {
  definition: TsProtoServiceDefinition;
  dispatcher: Dispatcher;
}

type UnaryHandler = (request: unknown, context: CallContext) => Promise<unknown>;

/**
 * Dispatches to a service object in this process. The call runs through the steps a gRPC
 * server runs (call log, error translation; lib/grpc.ts runUnaryCall), so both paths behave
 * the same.
 */
export function inProcessDispatcher(
  definition: TsProtoServiceDefinition,
  implementation: Record<string, unknown>,
  log: Logger,
): Dispatcher {
  const handlers = new Map<string, { path: string; key: string }>();
  for (const [key, method] of Object.entries(definition.methods)) handlers.set(method.name, { key, path: `/${definition.fullName}/${method.name}` });

  return {
    mode: 'in-process',
    async unary(method, request, metadata, signal) {
      const target = handlers.get(method.name);
      const handler = target === undefined ? undefined : (implementation[target.key] as UnaryHandler | undefined);
      const path = target?.path ?? `/${definition.fullName}/${method.name}`;
      // Header and trailer are made only when a handler touches them (the trailer carries error
      // details; success rarely writes either).
      let header: Metadata | undefined;
      let trailer: Metadata | undefined;
      const context: CallContext = {
        metadata,
        peer: 'in-process',
        get header() {
          return (header ??= Metadata());
        },
        get trailer() {
          return (trailer ??= Metadata());
        },
        signal,
        sendHeader() {},
      };
      try {
        return await runUnaryCall(log, path, context, async () => {
          if (!handler) throw new ServerError(Status.UNIMPLEMENTED, `${path} is not implemented`);
          return handler.call(implementation, request, context);
        });
      } catch (error) {
        if (error instanceof ServerError) throw new GatewayCallError(callFailureFrom(error.code, error.details, context.trailer));
        throw error;
      }
    },
  };
}

/** Dispatches over gRPC to a service in another process. */
export function grpcDispatcher(definition: TsProtoServiceDefinition, channel: Channel): Dispatcher {
  const client = createClient(definition, channel) as unknown as Record<
    string,
    (request: unknown, options: { metadata: Metadata; signal: AbortSignal; onTrailer(trailer: Metadata): void }) => Promise<unknown>
  >;
  const clientNames = new Map<string, string>();
  for (const [key, method] of Object.entries(definition.methods)) clientNames.set(method.name, key);

  return {
    mode: 'grpc',
    async unary(method, request, metadata, signal) {
      const call = client[clientNames.get(method.name) ?? ''];
      if (!call) throw new GatewayCallError({ code: Status.UNIMPLEMENTED, message: `${method.name} is not in the client` });
      let trailer: Metadata | undefined;
      try {
        return await call(request, { metadata, signal, onTrailer: (t) => (trailer = t) });
      } catch (error) {
        if (error instanceof ClientError) throw new GatewayCallError(callFailureFrom(error.code, error.details, trailer));
        throw error;
      }
    },
  };
}
