// How a service daemon serves: its gRPC service (with health and reflection) on
// --grpcListenAddress, and the CC routes of that service on -listenAddress through the gateway
// with in-process dispatch, as the original daemons served HTTP themselves.
import { ServerError, Status, type TsProtoServiceDefinition } from 'nice-grpc';
import { inProcessDispatcher, type ServiceBinding } from '../../gateway/dispatch.js';
import { startGateway, type GatewayOptions } from '../../gateway/server.js';
import type { Stoppable } from '../../lib/daemon.js';
import { splitHostPort } from '../../lib/flags.js';
import { startGrpcServer } from '../../lib/grpc.js';
import type { Logger } from '../../lib/log.js';
import type { Registry } from '../../lib/metrics.js';
import { grpcServerCredentials } from '../../lib/tls.js';
import type { ListenerSecurity } from './flags.js';

export interface ServedService {
  definition: TsProtoServiceDefinition;
  implementation: object;
}

export async function serveServices(options: {
  services: readonly ServedService[];
  grpcListenAddress: string;
  listenAddress: string;
  logger: Logger;
  /** Served on the REST listener as GET /metrics. */
  metrics?: Registry;
  /** Limits and deadlines of the REST listener (the gateway's defaults otherwise). */
  gateway?: Pick<GatewayOptions, 'maxBodyBytes' | 'maxHeaderBytes' | 'callTimeoutMs' | 'maxInFlightRequests'>;
  /** TLS of both listeners (gRPC requires client certificates when there is a CA) and the REST routes' authentication. */
  security?: ListenerSecurity;
}): Promise<Stoppable & { grpcAddress: string; restUrl: string }> {
  const log = options.logger;
  const grpcAt = splitHostPort(options.grpcListenAddress);
  const grpc = await startGrpcServer({
    host: grpcAt.host,
    port: grpcAt.port,
    logger: log,
    credentials: grpcServerCredentials(options.security?.tls),
    services: options.services.map((s) => ({ definition: s.definition, implementation: s.implementation })) as never,
  });
  const bindings: ServiceBinding[] = options.services.map((s) => ({
    definition: s.definition,
    dispatcher: inProcessDispatcher(s.definition, s.implementation as Record<string, unknown>, log),
  }));
  const restAt = splitHostPort(options.listenAddress);
  const rest = await startGateway({
    ...options.gateway,
    services: bindings,
    logger: log,
    host: restAt.host,
    port: restAt.port,
    metrics: options.metrics,
    tls: options.security?.tls,
    auth: options.security?.auth,
  });
  return {
    grpcAddress: grpc.address,
    restUrl: rest.url,
    /** Both listeners stop accepting at once; requests in flight have graceMs to finish. */
    async stop(graceMs?: number) {
      await Promise.all([rest.close(graceMs), grpc.close(graceMs)]);
    },
  };
}

/** GET /metrics on its own listener, for daemons without a REST listener (bulker, watcher). */
export async function serveMetrics(address: string, registry: Registry, log: Logger): Promise<Stoppable & { url: string }> {
  const { createServer } = await import('node:http');
  const { host, port } = splitHostPort(address);
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('404 page not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  const bound = server.address() as { port: number };
  const url = `http://${host}:${bound.port}`;
  log.info({ url }, 'metrics-listening');
  return {
    url,
    stop: (graceMs) =>
      new Promise<void>((resolve) => {
        // A scraper's kept-alive connection would hold close() open until it times out.
        const cut = setTimeout(() => server.closeAllConnections(), graceMs ?? 5_000);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/**
 * A service implementation to be supplied after the servers start (the development CC needs
 * the gateway's address, and the Stager needs the CC's). Its methods forward to the one set
 * later; a call before that is answered UNAVAILABLE.
 */
export function lateBound<T extends object>(name: string): { implementation: T; set(implementation: T): void } {
  let target: T | undefined;
  const implementation = new Proxy({} as T, {
    get(_t, key) {
      return (...args: unknown[]) => {
        const method = target?.[key as keyof T] as ((...a: unknown[]) => unknown) | undefined;
        if (!method) throw new ServerError(Status.UNAVAILABLE, `${name} is not ready yet`);
        return method.apply(target, args);
      };
    },
  });
  return { implementation, set: (value) => void (target = value) };
}
