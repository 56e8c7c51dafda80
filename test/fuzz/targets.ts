// What the fuzzer runs against: the test bridge (gateway with in-process dispatch, the embedded
// Diego and the CC double behind it) plus a gRPC server serving the same service objects.
import { createChannel, type Channel } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { createGrpcClient, startGrpcServer, type RunningGrpcServer } from '../../lib/grpc.js';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import type { FuzzTargets } from './fuzzer.js';

export interface RunningFuzzTargets extends FuzzTargets {
  bridge: TestBridge;
  grpc: RunningGrpcServer;
  close(): Promise<void>;
}

const HEALTH_SERVING = 1;

export async function startFuzzTargets(): Promise<RunningFuzzTargets> {
  const bridge = await startTestBridge();
  const grpc = await startGrpcServer({
    logger: bridge.log,
    services: [
      { definition: StagerServiceDefinition, implementation: bridge.services.stager as never },
      { definition: NsyncServiceDefinition, implementation: bridge.services.nsync as never },
      { definition: TpsServiceDefinition, implementation: bridge.services.tps as never },
    ],
  });
  const channel: Channel = createChannel(grpc.address);
  const health = createGrpcClient(HealthDefinition, channel, { defaultDeadlineMs: 10_000 });
  const tps = createGrpcClient(TpsServiceDefinition, channel, { defaultDeadlineMs: 10_000 });

  return {
    bridge,
    grpc,
    gatewayUrl: bridge.gateway.url,
    grpcAddress: grpc.address,
    async healthy() {
      const rest = await bridge.request('GET', '/v1/actual_lrps/health-check-guid');
      if (rest.status !== 200 || rest.text !== '[]\n') throw new Error(`the gateway stopped answering: ${rest.status} ${rest.text}`);
      const checked = await health.check({ service: TpsServiceDefinition.fullName });
      if (checked.status !== HEALTH_SERVING) throw new Error(`the gRPC server is not serving: ${checked.status}`);
      const answer = await tps.getLrpStatus({ processGuid: 'health-check-guid' });
      if (answer.instances.length !== 0) throw new Error('the gRPC TPS answered instances for an unknown guid');
    },
    async close() {
      channel.close();
      await grpc.close(100);
      await bridge.close();
    },
  };
}
