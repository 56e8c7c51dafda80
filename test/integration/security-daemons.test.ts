// The security flags of the split daemons, run as a user runs them: `ccbridge tps-listener` with
// -listenerCert/-listenerKey/-listenerCACert and -listenerUsername/-listenerPassword serves its
// REST routes over HTTPS behind authentication and its gRPC service with mutual TLS;
// `ccbridge locket` with the same flags refuses a client without a certificate.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createChannel } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { connectToLocket } from '../../clients/locket/client.js';
import { createGrpcClient } from '../../lib/grpc.js';
import { tlsFetch } from '../../lib/tls-fetch.js';
import { grpcChannelCredentials } from '../../lib/tls.js';
import { makeTestCerts, type TestCerts } from '../support/certs.js';
import { startDaemon, stopDaemon, type Daemon } from '../support/daemons.js';

let certs: TestCerts;
const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-security-daemons-'));
const running: Daemon[] = [];

before(() => {
  certs = makeTestCerts();
});

after(async () => {
  for (const daemon of running) if (daemon.child.exitCode === null && daemon.child.signalCode === null) await stopDaemon(daemon, 'SIGKILL');
  certs.remove();
  rmSync(dataDir, { recursive: true, force: true });
});

const tlsFlags = () => [`-listenerCert=${certs.server.cert}`, `-listenerKey=${certs.server.key}`, `-listenerCACert=${certs.caFile}`];

test('tps-listener: HTTPS REST behind basic auth or a client certificate, gRPC with mutual TLS', { timeout: 60_000 }, async () => {
  const daemon = await startDaemon(
    'tps-listener',
    ['tps-listener', `-dataDir=${dataDir}`, '-bbsAddress=http://127.0.0.1:9', '-listenAddress=127.0.0.1:0', '-grpcListenAddress=127.0.0.1:0', ...tlsFlags(), '-listenerUsername=cc', '-listenerPassword=tps-secret'],
    /tps +rest/,
  );
  running.push(daemon);
  const rest = daemon.address('tps');
  assert.match(rest, /^https:/);
  const ca = certs.read(certs.caFile);
  const anonymous = await tlsFetch({ ca })(`${rest}/v1/actual_lrps/p1`);
  assert.equal(anonymous.status, 401);
  const withBasic = await tlsFetch({ ca })(`${rest}/v1/actual_lrps/p1`, { headers: { Authorization: `Basic ${Buffer.from('cc:tps-secret').toString('base64')}` } });
  assert.notEqual(withBasic.status, 401);
  const withCert = await tlsFetch({ ca, cert: certs.read(certs.client.cert), key: certs.read(certs.client.key) })(`${rest}/v1/actual_lrps/p1`);
  assert.notEqual(withCert.status, 401);

  const grpcAddress = /grpc (\S+)/.exec(daemon.output())![1]!;
  const health = async (certFile: string, keyFile: string) => {
    const channel = createChannel(grpcAddress, grpcChannelCredentials({ caFile: certs.caFile, certFile, keyFile }));
    try {
      return await createGrpcClient(HealthDefinition, channel, { defaultDeadlineMs: 5_000 }).check({ service: '' });
    } finally {
      channel.close();
    }
  };
  assert.ok(await health(certs.client.cert, certs.client.key));
  await assert.rejects(health('', ''));
  await stopDaemon(daemon);
});

test('locket: mutual TLS', { timeout: 60_000 }, async () => {
  const daemon = await startDaemon('locket', ['locket', `-dataDir=${dataDir}`, '-locketListenAddress=127.0.0.1:0', ...tlsFlags()], /locket +grpc/);
  running.push(daemon);
  const address = /grpc:\/\/(\S+)/.exec(daemon.output())![1]!;
  const fetchAll = async (tls?: { caFile: string; certFile: string; keyFile: string }) => {
    const connection = connectToLocket({ address, tls, defaultDeadlineMs: 5_000 });
    try {
      return await connection.client.fetchAll({ type: 'lock', typeCode: 0 });
    } finally {
      connection.close();
    }
  };
  assert.ok(await fetchAll({ caFile: certs.caFile, certFile: certs.client.cert, keyFile: certs.client.key }));
  await assert.rejects(fetchAll({ caFile: certs.caFile, certFile: certs.stranger.cert, keyFile: certs.stranger.key }));
  await stopDaemon(daemon);
});
