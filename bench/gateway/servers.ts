// Child-process servers for bench/gateway. Usage: servers.ts <mode> [grpcAddress]
//   bare       node:http handler writing the same JSON as the gateway
//   grpc       the TPS test service over gRPC (nice-grpc)
//   colocated  gateway + the service in this process (in-process dispatch)
//   split      gateway dispatching over gRPC to grpcAddress
// Prints one JSON line {"port": N} when listening.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createChannel } from 'nice-grpc';
import { LRPInstanceState, type LRPInstance } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { TpsServiceDefinition, type TpsServiceImplementation } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { grpcDispatcher, inProcessDispatcher } from '../../gateway/dispatch.js';
import { startGateway } from '../../gateway/server.js';
import { startGrpcServer } from '../../lib/grpc.js';
import { encodeLegacyJsonField } from '../../lib/legacy-json.js';
import { silentLogger } from '../../lib/log.js';

/** Four instances of one process: the common shape of a status answer. */
export function fourInstances(processGuid: string): LRPInstance[] {
  return [0, 1, 2, 3].map((index) => ({
    processGuid,
    instanceGuid: `b0e9c1a4-5d3f-4c2e-8a7b-00000000000${index}`,
    index,
    state: LRPInstanceState.LRP_INSTANCE_STATE_RUNNING,
    details: '',
    host: '',
    port: 0,
    uptime: '3600',
    since: '1764150000',
    stats: undefined,
  }));
}

const tps: TpsServiceImplementation = {
  async getLrpStatus(request) {
    return { instances: fourInstances(request.processGuid) };
  },
  async getLrpStats() {
    return { instances: [] };
  },
  async bulkLrpStatus() {
    return { statuses: {} };
  },
  async *watchInstances() {},
};

async function main(): Promise<void> {
  const [mode, grpcAddress] = process.argv.slice(2);
  const log = silentLogger();
  let port: number;
  if (mode === 'bare') {
    const server = createServer((req, res) => {
      const guid = (req.url ?? '').split('/')[3] ?? '';
      const body = `${encodeLegacyJsonField('cloudfoundry.ccbridge.tps.v1.GetLrpStatusResponse', 'instances', { instances: fourInstances(guid) })}\n`;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  } else if (mode === 'grpc') {
    const server = await startGrpcServer({ logger: log, services: [{ definition: TpsServiceDefinition, implementation: tps }] });
    port = server.port;
  } else if (mode === 'colocated') {
    const gateway = await startGateway({
      logger: log,
      services: [{ definition: TpsServiceDefinition, dispatcher: inProcessDispatcher(TpsServiceDefinition, tps as never, log) }],
    });
    port = gateway.port;
  } else if (mode === 'split') {
    const channel = createChannel(grpcAddress!);
    const gateway = await startGateway({ logger: log, services: [{ definition: TpsServiceDefinition, dispatcher: grpcDispatcher(TpsServiceDefinition, channel) }] });
    port = gateway.port;
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

await main();
