// Graceful shutdown of the split daemons, as real processes signalled with SIGTERM: a request
// in flight completes while new connections are refused; the grace period bounds how long that
// may take; a lock holder releases its lock so a standby takes over at its next try rather than
// after the TTL; the watcher gives its queued reports one last delivery before it exits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createCellClient, startEmbeddedDiego, type EmbeddedDiego } from '../../embedded/diego/index.js';
import { startEmbeddedLocket, type EmbeddedLocket } from '../../embedded/locket/index.js';
import type { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { decodeLegacyJson } from '../../lib/legacy-json.js';
import { silentLogger } from '../../lib/log.js';
import { desiredLrpFromDesireAppRequest } from '../../services/nsync/recipe/index.js';
import { openOutbox } from '../../services/tps/watcher/outbox.js';
import { createBbsClient } from '../../clients/bbs/index.js';
import { createChannel, createClient } from 'nice-grpc';
import { TpsServiceDefinition } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { startCcDouble, type CcDouble } from '../support/cc-double.js';
import { startDaemon, stopDaemon, type Daemon } from '../support/daemons.js';
import { eventually, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';

const log = silentLogger();
let dataDir: string;
let diego: EmbeddedDiego;
let locket: EmbeddedLocket;
let cc: CcDouble;
let bbsProxy: FaultProxy;
const daemons: Daemon[] = [];

/** `ccbridge <args>`, once its output matches `ready`. */
async function daemon(args: string[], ready: RegExp): Promise<Daemon> {
  const started = await startDaemon(args[0]!, [...args, '-logLevel=silent'], ready);
  daemons.push(started);
  return started;
}

const running = (d: Daemon) => d.child.exitCode === null && d.child.signalCode === null;

/** True when nothing accepts connections on the port any more. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-shutdown-'));
  diego = await startEmbeddedDiego({ dataDir: join(dataDir, 'diego'), logger: log });
  locket = await startEmbeddedLocket({ dataDir: join(dataDir, 'locket'), logger: log });
  cc = await startCcDouble();
  bbsProxy = await startFaultProxy({ port: diego.port });
});

after(async () => {
  await Promise.all(daemons.filter(running).map((d) => stopDaemon(d, 'SIGKILL')));
  bbsProxy.resume();
  await bbsProxy.close();
  await cc.stop();
  await locket.close(100);
  await diego.close(100);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a service daemon on SIGTERM', () => {
  async function tpsListener(graceMs: number): Promise<{ d: Daemon; url: string; grpcAddress: string }> {
    const d = await daemon(
      ['tps-listener', `-bbsAddress=${bbsProxy.url}`, '-listenAddress=127.0.0.1:0', '-grpcListenAddress=127.0.0.1:0', `-shutdownGracePeriod=${graceMs}ms`, '-bbsCommunicationTimeout=60s'],
      /tps +rest http/,
    );
    return { d, url: d.address('tps'), grpcAddress: /grpc (\S+)/.exec(d.output())![1]! };
  }

  test('finishes the requests in flight (REST and gRPC), refuses new connections meanwhile, and exits 0', async () => {
    const { d, url, grpcAddress } = await tpsListener(20_000);
    const port = Number(new URL(url).port);
    const grpcPort = Number(grpcAddress.split(':').at(-1));
    assert.equal((await fetch(`${url}/v1/actual_lrps/warm-up`)).status, 200);
    const channel = createChannel(grpcAddress);
    const tps = createClient(TpsServiceDefinition, channel);
    await tps.getLrpStatus({ processGuid: 'warm-up' });

    // The BBS holds its answer: the status request stays in flight.
    bbsProxy.pause();
    let exit: Promise<number> | undefined;
    const inFlight = fetch(`${url}/v1/actual_lrps/slow-app`).then(async (r) => ({ status: r.status, body: await r.text() }));
    const grpcInFlight = tps.getLrpStatus({ processGuid: 'slow-grpc-app' });
    try {
      await eventually('both calls to the BBS held', () => bbsProxy.heldConnections > 1);
      exit = stopDaemon(d);
      await eventually('new connections refused', async () => (await refused(port)) && (await refused(grpcPort)));
      assert.ok(running(d), 'still running: a request is in flight');
    } finally {
      bbsProxy.resume();
    }
    const answered = await inFlight;
    assert.equal(answered.status, 200, 'the request in flight completed');
    assert.equal(answered.body, '[]\n');
    assert.deepEqual((await grpcInFlight).instances, [], 'the gRPC call in flight completed');
    channel.close();
    assert.equal(await exit, 0);
  });

  test('the grace period bounds the wait: a request still in flight when it ends is cut, and the daemon exits', async () => {
    const { d, url } = await tpsListener(300);
    assert.equal((await fetch(`${url}/v1/actual_lrps/warm-up`)).status, 200);
    bbsProxy.pause();
    try {
      const inFlight = fetch(`${url}/v1/actual_lrps/stuck-app`).then(
        (r) => r.status,
        () => 'cut' as const,
      );
      await eventually('the call to the BBS held', () => bbsProxy.held > 0);
      assert.equal(await stopDaemon(d), 0);
      const outcome = await inFlight;
      assert.ok(outcome === 'cut' || outcome >= 500, `the stuck request was cut (${outcome})`);
    } finally {
      bbsProxy.resume();
    }
  });
});

describe('lock holders on SIGTERM', () => {
  test('the bulker releases its lock: the standby takes over at its next try, long before the TTL', async () => {
    const bulker = (name: string) =>
      daemon(
        [
        'nsync-bulker',
        `-bbsAddress=${diego.url}`,
        `-ccBaseURL=${cc.url}`,
        `-ccUsername=${name}`,
        `-locketAddress=${locket.address}`,
        '-pollingInterval=100ms',
        // A TTL far beyond the test's deadline: only a released lock lets the standby in.
        '-lockTTL=300s',
        '-lockRetryInterval=100ms',
        `-dataDir=${join(dataDir, name)}`,
        ],
        /nsync-bulker +active while/,
      );
    const syncsBy = (name: string) =>
      cc.requests.filter((r) => r.path === '/internal/bulk/apps' && Buffer.from((r.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().startsWith(`${name}:`)).length;
    const first = await bulker('bulker-one');
    await eventually('the first bulker syncing', () => syncsBy('bulker-one') > 0, 60_000);
    const second = await bulker('bulker-two');
    assert.equal(syncsBy('bulker-two'), 0, 'the standby waits');

    assert.equal(await stopDaemon(first), 0);
    await eventually('the standby syncing', () => syncsBy('bulker-two') > 0, 60_000);
    assert.equal(await stopDaemon(second), 0);
  });

  test('the watcher gives a report waiting out its backoff one last delivery, then releases its lock', async () => {
    const app = decodeLegacyJson<DesireAppRequestFromCC>(
      'cloudfoundry.ccbridge.cc.v1.DesireAppRequestFromCC',
      JSON.stringify({ process_guid: 'flushed-app', droplet_uri: 'http://127.0.0.1:1/d.tgz', stack: 'cflinuxfs4', num_instances: 1, log_guid: 'l', etag: 'e' }),
    );
    const bbs = createBbsClient({ url: diego.url, logger: log, timeoutMs: 10_000 });
    const recipe = {
      lifecycles: { 'buildpack/cflinuxfs4': 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz' },
      fileServerUrl: 'http://127.0.0.1:8080',
      privilegedContainers: false,
      defaultHealthCheckTimeoutSeconds: 60,
      generateSshKeyPair: () => ({ privateKeyPem: '', authorizedKey: '', fingerprint: '' }),
    };
    await bbs.desireLrp(desiredLrpFromDesireAppRequest(app, recipe));
    bbs.close();
    const cell = createCellClient({ url: diego.url });
    const instanceKey = { instanceGuid: 'flushed-instance', cellId: 'cell-1' };
    const key = { processGuid: 'flushed-app', index: 0, domain: 'cf-apps' };
    await cell.claim('flushed-app', 0, instanceKey);
    await cell.start(key, instanceKey, { address: '127.0.0.1', ports: [], instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' });
    await cell.crash(key, instanceKey, 'Exited with status 3');

    cc.statusFor.set('crashed', 503);
    const watcherDir = join(dataDir, 'watcher');
    const watcher = await daemon(
      [
      'tps-watcher',
      `-bbsAddress=${diego.url}`,
      `-ccBaseURL=${cc.url}`,
      `-locketAddress=${locket.address}`,
      '-lockTTL=300s',
      '-lockRetryInterval=100ms',
      // After a failure the report waits far longer than the test runs.
      '-reportRetryInterval=1h',
      '-reportRetryMaxInterval=1h',
      '-shutdownGracePeriod=20s',
      `-dataDir=${watcherDir}`,
      ],
      /tps-watcher +active while/,
    );
    const attempts = () => cc.received('/internal/apps/flushed-app/crashed');
    await eventually('a refused delivery', () => attempts().length > 0, 60_000);
    cc.statusFor.delete('crashed');

    assert.equal(await stopDaemon(watcher), 0);
    assert.equal(attempts().length, 2, 'one more attempt on the way out');
    assert.ok(cc.seenEventIds.has(String(attempts()[1]!.headers['x-ccbridge-event-id'])), 'accepted by CC');
    const outbox = openOutbox(join(watcherDir, 'tps-watcher'));
    try {
      assert.equal(outbox.depth(), 0, 'nothing left in the outbox');
    } finally {
      outbox.close();
    }
    // The lock was released: Locket holds no watcher lock any more.
    const { connectToLocket } = await import('../../clients/locket/client.js');
    const connection = connectToLocket({ address: locket.address });
    try {
      await assert.rejects(connection.client.fetch({ key: 'tps_watcher_lock' }), 'no owner');
    } finally {
      connection.close();
    }
  });
});

describe('the all-in-one on SIGTERM', () => {
  test('drains its gateway first: a request in flight completes while new connections are refused, then it exits 0', async () => {
    // The stats route reads log-cache through a proxy of its own, which holds this request alone.
    const logCacheProxy = await startFaultProxy({ port: diego.port });
    const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress', 'fileServerListenAddress', 'uploaderListenAddress', 'ccListenAddress'];
    const d = await startDaemon(
      'ccbridge',
      [
        `-dataDir=${join(dataDir, 'all-in-one')}`,
        `-bbsAddress=${diego.url}`,
        `-logCacheURL=${logCacheProxy.url}`,
        '-shutdownGracePeriod=20s',
        '-logLevel=silent',
        ...ports.map((p) => `-${p}=127.0.0.1:0`),
      ],
      /tps watcher +running/,
    );
    daemons.push(d);
    const gateway = d.address('gateway');
    const port = Number(new URL(gateway).port);
    const desire = await fetch(`${gateway}/v1/apps/drained-app`, {
      method: 'PUT',
      body: JSON.stringify({ process_guid: 'drained-app', droplet_uri: 'http://127.0.0.1:1/d.tgz', stack: 'cflinuxfs4', num_instances: 1, log_guid: 'drained-app', etag: 'e' }),
    });
    assert.equal(desire.status, 202);

    logCacheProxy.pause();
    let exit: Promise<number> | undefined;
    try {
      const inFlight = fetch(`${gateway}/v1/actual_lrps/drained-app/stats`, { headers: { Authorization: 'bearer token' } }).then((r) => r.status);
      await eventually('the log-cache read held', () => logCacheProxy.held > 0);
      exit = stopDaemon(d);
      await eventually('new connections refused', () => refused(port));
      assert.ok(running(d), 'still running: a request is in flight');
      logCacheProxy.resume();
      assert.equal(await inFlight, 200, 'the request in flight completed');
      assert.equal(await exit, 0, d.output());
    } finally {
      logCacheProxy.resume();
      await logCacheProxy.close();
    }
  });
});
