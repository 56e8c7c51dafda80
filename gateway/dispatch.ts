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
  type ServerMiddlewareCall,
  type TsProtoServiceDefinition,
} from 'nice-grpc';
import { callFailureFrom, type CallFailure } from '../lib/errors.js';
import { standardServerMiddleware } from '../lib/grpc.js';
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
 * Dispatches to a service object in this process. The call runs through the middleware a gRPC
 * server would run (call log, error translation), so both paths behave the same.
 */
export function inProcessDispatcher(
  definition: TsProtoServiceDefinition,
  implementation: Record<string, unknown>,
  log: Logger,
): Dispatcher {
  const middleware = [...standardServerMiddleware(log)];
  const handlerNames = new Map<string, string>();
  for (const [key, method] of Object.entries(definition.methods)) handlerNames.set(method.name, key);

  return {
    mode: 'in-process',
    async unary(method, request, metadata, signal) {
      const key = handlerNames.get(method.name);
      const handler = key === undefined ? undefined : (implementation[key] as UnaryHandler | undefined);
      const context: CallContext = {
        metadata,
        peer: 'in-process',
        header: Metadata(),
        trailer: Metadata(),
        signal,
        sendHeader() {},
      };
      const descriptor = {
        path: `/${definition.fullName}/${method.name}`,
        requestStream: false as const,
        responseStream: false as const,
        options: {},
      };
      // The innermost step calls the service; each middleware wraps the one inside it.
      let next = async function* (req: unknown, ctx: CallContext): AsyncGenerator<never, unknown, undefined> {
        if (!handler) throw new ServerError(Status.UNIMPLEMENTED, `${descriptor.path} is not implemented`);
        return await handler.call(implementation, req, ctx);
      };
      for (const layer of [...middleware].reverse()) {
        const inner = next;
        next = (req, ctx) =>
          layer(
            { method: descriptor, requestStream: false, request: req, responseStream: false, next: inner } as unknown as ServerMiddlewareCall<unknown, unknown>,
            ctx,
          ) as AsyncGenerator<never, unknown, undefined>;
      }
      try {
        const run = next(request, context);
        let step = await run.next();
        while (!step.done) step = await run.next();
        return step.value;
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
