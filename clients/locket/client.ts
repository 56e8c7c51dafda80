// A Locket client over gRPC: plaintext for the embedded Locket on loopback, mTLS for a real
// Diego Locket (which requires client certificates).
import { readFileSync } from 'node:fs';
import { ChannelCredentials, createChannel } from 'nice-grpc';
import { LocketDefinition, type LocketClient as GeneratedLocketClient } from '../../gen/locket/locket.js';
import { createGrpcClient, type DeadlineCallOptions } from '../../lib/grpc.js';

/** A models.Locket client whose calls take a `deadline`. */
export type LocketClient = GeneratedLocketClient<DeadlineCallOptions>;

/** PEM files for mutual TLS, as a real Locket deployment hands them out. */
export interface LocketTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface LocketConnectionOptions {
  /** host:port of the Locket server. */
  address: string;
  tls?: LocketTlsFiles;
  /** Deadline of a call that sets none itself; milliseconds. */
  defaultDeadlineMs?: number;
}

export interface LocketConnection {
  client: LocketClient;
  close(): void;
}

export function locketChannelCredentials(tls: LocketTlsFiles): ChannelCredentials {
  return ChannelCredentials.createSsl(readFileSync(tls.caFile), readFileSync(tls.keyFile), readFileSync(tls.certFile));
}

export function connectToLocket(options: LocketConnectionOptions): LocketConnection {
  const credentials = options.tls ? locketChannelCredentials(options.tls) : ChannelCredentials.createInsecure();
  const channel = createChannel(options.address, credentials);
  const client = createGrpcClient(LocketDefinition, channel, { defaultDeadlineMs: options.defaultDeadlineMs });
  return { client, close: () => channel.close() };
}
