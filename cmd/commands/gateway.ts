// `ccbridge gateway`: every CC route, dispatched over gRPC to the Stager, Nsync and TPS daemons.
import { createChannel, type Channel } from 'nice-grpc';
import { NsyncServiceDefinition } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { grpcDispatcher } from '../../gateway/dispatch.js';
import { GATEWAY_DEFAULTS, startGateway } from '../../gateway/server.js';
import { defineCommand } from '../../lib/daemon.js';
import { checkListenAddress, duration, int, splitHostPort, string } from '../../lib/flags.js';
import { commonFlags } from './common.js';
import { grpcChannelCredentials } from '../../lib/tls.js';
import { listenerSecurityFlags, listenerSecurityFrom, restListenFlag } from './flags.js';

export const gatewayFlags = {
  maxRequestBodyBytes: int('largest request body accepted (413 beyond)', GATEWAY_DEFAULTS.maxBodyBytes),
  maxHeaderBytes: int('largest request head accepted', GATEWAY_DEFAULTS.maxHeaderBytes),
  callTimeout: duration('deadline of each call to a service', GATEWAY_DEFAULTS.callTimeoutMs),
  maxInFlightRequests: int('requests served at once; more get 503', 200, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
};

/** The REST listener's limits and deadline, from the flags above. */
export const restLimitsFrom = (flags: { maxRequestBodyBytes: number; maxHeaderBytes: number; callTimeout: number; maxInFlightRequests: number }) => ({
  maxBodyBytes: flags.maxRequestBodyBytes,
  maxHeaderBytes: flags.maxHeaderBytes,
  callTimeoutMs: flags.callTimeout,
  maxInFlightRequests: flags.maxInFlightRequests,
});

export default defineCommand({
  summary: 'the REST gateway: CC routes to the Stager, Nsync and TPS gRPC services',
  flags: {
    ...commonFlags,
    ...restListenFlag('127.0.0.1:8888'),
    ...gatewayFlags,
    ...listenerSecurityFlags,
    serviceCACert: string('CA certificate (PEM file) that signed the services\' gRPC certificates (empty: plaintext gRPC)'),
    serviceClientCert: string('client certificate (PEM file) presented to the services'),
    serviceClientKey: string('client key (PEM file) for -serviceClientCert'),
    stagerAddress: string('host:port of the Stager gRPC service', '127.0.0.1:8988', { check: checkListenAddress }),
    nsyncAddress: string('host:port of the Nsync gRPC service', '127.0.0.1:8987', { check: checkListenAddress }),
    tpsAddress: string('host:port of the TPS gRPC service', '127.0.0.1:1519', { check: checkListenAddress }),
  },
  async start(flags, log) {
    const security = listenerSecurityFrom(flags);
    const credentials = flags.serviceCACert ? grpcChannelCredentials({ caFile: flags.serviceCACert, certFile: flags.serviceClientCert, keyFile: flags.serviceClientKey }) : undefined;
    const channels: Channel[] = [];
    const channel = (address: string) => {
      const c = createChannel(address, credentials);
      channels.push(c);
      return c;
    };
    const { host, port } = splitHostPort(flags.listenAddress);
    const gateway = await startGateway({
      host,
      port,
      logger: log,
      ...restLimitsFrom(flags),
      tls: security.tls,
      auth: security.auth,
      services: [
        { definition: StagerServiceDefinition, dispatcher: grpcDispatcher(StagerServiceDefinition, channel(flags.stagerAddress)) },
        { definition: NsyncServiceDefinition, dispatcher: grpcDispatcher(NsyncServiceDefinition, channel(flags.nsyncAddress)) },
        { definition: TpsServiceDefinition, dispatcher: grpcDispatcher(TpsServiceDefinition, channel(flags.tpsAddress)) },
      ],
    });
    process.stdout.write(`gateway  rest ${gateway.url}\n`);
    return {
      async stop(graceMs) {
        await gateway.close(graceMs);
        for (const c of channels) c.close();
      },
    };
  },
});
