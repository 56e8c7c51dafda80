// TLS, mutual TLS, inbound authentication and limits, server by server, through the real
// surfaces: the gateway (the REST listener of every service daemon), the gRPC servers, the
// embedded Diego's BBS API, Locket, the file server, the uploader and the development CC.
// Certificates are throwaway ones made by openssl (test/support/certs.ts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createChannel, type CallContext } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { createBbsClient } from '../../clients/bbs/index.js';
import { connectToLocket } from '../../clients/locket/client.js';
import { startDevelopmentCloudController } from '../../embedded/cloud-controller/index.js';
import { startEmbeddedDiego } from '../../embedded/diego/index.js';
import { startEmbeddedLocket } from '../../embedded/locket/index.js';
import { TpsServiceDefinition, type TpsServiceImplementation } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { inProcessDispatcher } from '../../gateway/dispatch.js';
import { startGateway } from '../../gateway/server.js';
import { createGrpcClient, startGrpcServer } from '../../lib/grpc.js';
import { createInboundAuth, parseBasicAuthorization, secretsEqual, UNAUTHORIZED_BODY } from '../../lib/inbound-auth.js';
import { silentLogger } from '../../lib/log.js';
import { tlsFetch, type ClientTls } from '../../lib/tls-fetch.js';
import { grpcChannelCredentials, grpcServerCredentials, loadServerTls, TlsConfigError, type TlsMaterial } from '../../lib/tls.js';
import { startFileServer, startUploader } from '../../services/fileserver/index.js';
import { makeTestCerts, type TestCerts } from '../support/certs.js';

const log = silentLogger();
let certs: TestCerts;
let serverTls: TlsMaterial;
let withClientCert: ClientTls;
let withoutClientCert: ClientTls;
let withStrangerCert: ClientTls;
let dataDir: string;

before(() => {
  certs = makeTestCerts();
  serverTls = loadServerTls({ certFile: certs.server.cert, keyFile: certs.server.key, caFile: certs.caFile })!;
  const ca = certs.read(certs.caFile);
  withClientCert = { ca, cert: certs.read(certs.client.cert), key: certs.read(certs.client.key) };
  withoutClientCert = { ca };
  withStrangerCert = { ca, cert: certs.read(certs.stranger.cert), key: certs.read(certs.stranger.key) };
  dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-security-'));
});

after(() => {
  certs.remove();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Whether the request fails before any answer (the handshake refused it). */
async function refusedAtHandshake(url: string, tls: ClientTls, init?: RequestInit): Promise<boolean> {
  try {
    const response = await tlsFetch(tls)(url, init);
    await response.arrayBuffer();
    return false;
  } catch {
    return true;
  }
}

describe('inbound authentication rules', () => {
  test('basic credentials are parsed and compared whole', () => {
    assert.deepEqual(parseBasicAuthorization(`Basic ${Buffer.from('user:pa:ss').toString('base64')}`), ['user', 'pa:ss']);
    assert.equal(parseBasicAuthorization('Bearer abc'), undefined);
    assert.equal(parseBasicAuthorization(undefined), undefined);
    assert.equal(secretsEqual('secret', 'secret'), true);
    assert.equal(secretsEqual('secret', 'secret2'), false);
    assert.equal(secretsEqual('', 'x'), false);
  });

  test('nothing configured means off', () => {
    assert.equal(createInboundAuth({}).enabled, false);
  });

  test('a key without its certificate, or a CA without either, is a configuration error naming flags only', () => {
    assert.throws(() => loadServerTls({ certFile: '', keyFile: certs.server.key, caFile: '' }), TlsConfigError);
    assert.throws(() => loadServerTls({ certFile: '', keyFile: '', caFile: certs.caFile }), TlsConfigError);
    assert.throws(() => loadServerTls({ certFile: join(dataDir, 'missing.crt'), keyFile: certs.server.key, caFile: '' }), /cannot read the certificate/);
    assert.equal(loadServerTls({ certFile: '', keyFile: '', caFile: '' }), undefined);
  });
});

describe('gateway: TLS with a client CA and basic auth', () => {
  const seen: { method: string; authorization: string | undefined }[] = [];
  let release: (() => void) | undefined;
  const tps: TpsServiceImplementation = {
    async getLrpStatus(request, context: CallContext) {
      seen.push({ method: 'GetLrpStatus', authorization: context.metadata.get('authorization') });
      if (request.processGuid === 'slow') await new Promise<void>((resolve) => (release = resolve));
      return { instances: [] };
    },
    async getLrpStats(_request, context: CallContext) {
      seen.push({ method: 'GetLrpStats', authorization: context.metadata.get('authorization') });
      return { instances: [] };
    },
    async bulkLrpStatus() {
      return { statuses: {} };
    },
    async *watchInstances() {},
  };
  let url: string;
  let close: () => Promise<void>;
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  before(async () => {
    const gateway = await startGateway({
      logger: log,
      services: [{ definition: TpsServiceDefinition, dispatcher: inProcessDispatcher(TpsServiceDefinition, tps as unknown as Record<string, unknown>, log) }],
      tls: serverTls,
      auth: createInboundAuth({ username: 'bridge-user', password: 'bridge-password', clientCertificates: true }),
      maxInFlightRequests: 1,
    });
    url = gateway.url;
    close = () => gateway.close();
  });
  after(() => close());

  test('serves https', () => {
    assert.match(url, /^https:\/\//);
  });

  test('no credentials: 401 with a fixed body and a Basic challenge', async () => {
    const response = await tlsFetch(withoutClientCert)(`${url}/v1/actual_lrps/p1`);
    assert.equal(response.status, 401);
    assert.equal(await response.text(), UNAUTHORIZED_BODY);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Basic realm="/);
  });

  test('a wrong password or user: 401, the same answer', async () => {
    for (const authorization of [basic('bridge-user', 'wrong'), basic('someone', 'bridge-password'), 'Bearer token']) {
      const response = await tlsFetch(withoutClientCert)(`${url}/v1/actual_lrps/p1`, { headers: { Authorization: authorization } });
      assert.equal(response.status, 401);
      assert.equal(await response.text(), UNAUTHORIZED_BODY);
    }
  });

  test('the right basic credentials pass, and are not passed on to the service', async () => {
    seen.length = 0;
    const response = await tlsFetch(withoutClientCert)(`${url}/v1/actual_lrps/p1`, { headers: { Authorization: basic('bridge-user', 'bridge-password') } });
    assert.equal(response.status, 200);
    assert.deepEqual(seen, [{ method: 'GetLrpStatus', authorization: undefined }]);
  });

  test('a client certificate signed by the CA passes', async () => {
    const response = await tlsFetch(withClientCert)(`${url}/v1/actual_lrps/p1`);
    assert.equal(response.status, 200);
  });

  test('a client certificate from another CA does not', async () => {
    const response = await tlsFetch(withStrangerCert)(`${url}/v1/actual_lrps/p1`);
    assert.equal(response.status, 401);
  });

  test('the stats route takes a client certificate only, and passes the caller\'s Authorization on', async () => {
    const withBasic = await tlsFetch(withoutClientCert)(`${url}/v1/actual_lrps/p1/stats`, { headers: { Authorization: basic('bridge-user', 'bridge-password') } });
    assert.equal(withBasic.status, 401);
    seen.length = 0;
    const withCert = await tlsFetch(withClientCert)(`${url}/v1/actual_lrps/p1/stats`, { headers: { Authorization: 'bearer user-token' } });
    assert.equal(withCert.status, 200);
    assert.deepEqual(seen, [{ method: 'GetLrpStats', authorization: 'bearer user-token' }]);
  });

  test('the metrics and unknown routes are behind the same authentication', async () => {
    const unknown = await tlsFetch(withoutClientCert)(`${url}/v1/nothing-here`);
    assert.equal(unknown.status, 401);
  });

  test('beyond maxInFlightRequests: 503 with no body, and served again once the first ends', async () => {
    const fetchWithCert = tlsFetch(withClientCert);
    const slow = fetchWithCert(`${url}/v1/actual_lrps/slow`);
    while (release === undefined) await new Promise((resolve) => setTimeout(resolve, 5));
    const refused = await fetchWithCert(`${url}/v1/actual_lrps/p2`);
    assert.equal(refused.status, 503);
    assert.equal(await refused.text(), '');
    release();
    assert.equal((await slow).status, 200);
    assert.equal((await fetchWithCert(`${url}/v1/actual_lrps/p3`)).status, 200);
  });
});

describe('gRPC server with mutual TLS', () => {
  let address: string;
  let close: () => Promise<void>;
  before(async () => {
    const server = await startGrpcServer({ logger: log, services: [], credentials: grpcServerCredentials(serverTls) });
    address = server.address;
    close = () => server.close();
  });
  after(() => close());

  const check = async (certFile: string, keyFile: string, caFile = certs.caFile) => {
    const channel = createChannel(address, grpcChannelCredentials({ caFile, certFile, keyFile }));
    try {
      const client = createGrpcClient(HealthDefinition, channel, { defaultDeadlineMs: 5_000 });
      return (await client.check({ service: '' })).status;
    } finally {
      channel.close();
    }
  };

  test('a client with a certificate from the CA is served', async () => {
    assert.ok(await check(certs.client.cert, certs.client.key));
  });

  test('a client without a certificate, or with another CA\'s, is refused', async () => {
    await assert.rejects(check('', ''));
    await assert.rejects(check(certs.stranger.cert, certs.stranger.key));
  });

  test('the client verifies the server', async () => {
    const otherCa = join(certs.dir, 'other-ca.crt');
    await assert.rejects(check(certs.client.cert, certs.client.key, otherCa));
  });
});

describe('embedded Diego with mutual TLS', () => {
  let diego: Awaited<ReturnType<typeof startEmbeddedDiego>>;
  before(async () => {
    diego = await startEmbeddedDiego({ dataDir: join(dataDir, 'diego'), logger: log, tls: serverTls, clientTls: withClientCert, maxEventSubscribers: 1 });
  });
  after(() => diego.close());

  test('refuses a client without a certificate from its CA at the handshake', async () => {
    assert.match(diego.url, /^https:/);
    assert.equal(await refusedAtHandshake(`${diego.url}/v1/ping`, withoutClientCert, { method: 'POST' }), true);
    assert.equal(await refusedAtHandshake(`${diego.url}/v1/ping`, withStrangerCert, { method: 'POST' }), true);
  });

  test('serves the BBS client that presents one, and that client verifies the server', async () => {
    const bbs = createBbsClient({ url: diego.url, logger: log, tls: { ca: certs.caFile, cert: certs.client.cert, key: certs.client.key } });
    try {
      assert.equal(await bbs.ping(), true);
    } finally {
      bbs.close();
    }
    const distrusting = createBbsClient({ url: diego.url, logger: log, tls: { ca: join(certs.dir, 'other-ca.crt'), cert: certs.client.cert, key: certs.client.key }, retry: { attempts: 1, delayMs: 1 } });
    try {
      await assert.rejects(distrusting.ping());
    } finally {
      distrusting.close();
    }
  });

  test('one event stream more than maxEventSubscribers is answered 503', async () => {
    const controller = new AbortController();
    const first = await tlsFetch(withClientCert)(`${diego.url}/v1/events/tasks.r1`, { method: 'POST', signal: controller.signal });
    assert.equal(first.status, 200);
    const second = await tlsFetch(withClientCert)(`${diego.url}/v1/events/tasks.r1`, { method: 'POST' });
    assert.equal(second.status, 503);
    controller.abort();
    await first.body?.cancel().catch(() => undefined);
  });
});

describe('embedded Locket with mutual TLS', () => {
  let address: string;
  let close: () => Promise<void>;
  before(async () => {
    const locket = await startEmbeddedLocket({ dataDir: join(dataDir, 'locket'), logger: log, credentials: grpcServerCredentials(serverTls) });
    address = locket.address;
    close = () => locket.close();
  });
  after(() => close());

  const fetchAll = async (tls?: { caFile: string; certFile: string; keyFile: string }) => {
    const connection = connectToLocket({ address, tls, defaultDeadlineMs: 5_000 });
    try {
      return await connection.client.fetchAll({ type: 'lock', typeCode: 0 });
    } finally {
      connection.close();
    }
  };

  test('serves a client with a certificate from its CA and refuses one without', async () => {
    assert.ok(await fetchAll({ caFile: certs.caFile, certFile: certs.client.cert, keyFile: certs.client.key }));
    await assert.rejects(fetchAll({ caFile: certs.caFile, certFile: certs.stranger.cert, keyFile: certs.stranger.key }));
    await assert.rejects(fetchAll(undefined));
  });
});

describe('file server and uploader with mutual TLS', () => {
  let fileServerUrl: string;
  let uploaderUrl: string;
  let closeAll: () => Promise<void>;
  before(async () => {
    const staticDirectory = join(dataDir, 'static');
    mkdirSync(staticDirectory, { recursive: true });
    writeFileSync(join(staticDirectory, 'hello.txt'), 'hello\n');
    const fileServer = await startFileServer({ staticDirectory, logger: log, tls: serverTls });
    const uploader = await startUploader({ logger: log, tls: serverTls, maxUploadBytes: 16 });
    fileServerUrl = fileServer.url;
    uploaderUrl = uploader.url;
    closeAll = async () => {
      await fileServer.close();
      await uploader.close();
    };
  });
  after(() => closeAll());

  test('the file server refuses a client without a certificate and serves one with', async () => {
    assert.equal(await refusedAtHandshake(`${fileServerUrl}/v1/static/hello.txt`, withoutClientCert), true);
    const response = await tlsFetch(withClientCert)(`${fileServerUrl}/v1/static/hello.txt`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'hello\n');
  });

  test('the uploader refuses a client without a certificate', async () => {
    assert.equal(await refusedAtHandshake(`${uploaderUrl}/v1/droplet/guid`, withoutClientCert, { method: 'POST', body: 'x' }), true);
    assert.equal(await refusedAtHandshake(`${uploaderUrl}/v1/droplet/guid`, withStrangerCert, { method: 'POST', body: 'x' }), true);
    const response = await tlsFetch(withClientCert)(`${uploaderUrl}/v1/droplet/guid`, { method: 'POST', body: 'x' });
    assert.equal(response.status, 400); // no upload URI: past TLS, into the handler
  });

  test('the uploader refuses a droplet over its limit with 413', async () => {
    const target = `${uploaderUrl}/v1/droplet/guid?cc-droplet-upload-uri=${encodeURIComponent('http://127.0.0.1:9/staging/droplets/guid/upload')}`;
    const response = await tlsFetch(withClientCert)(target, { method: 'POST', body: 'x'.repeat(17) });
    assert.equal(response.status, 413);
  });
});

describe('development CC with TLS and basic auth', () => {
  let url: string;
  let close: () => Promise<void>;
  before(async () => {
    const cc = await startDevelopmentCloudController({
      dataDir: join(dataDir, 'cc'),
      logger: log,
      username: 'cc-user',
      password: 'cc-password',
      bridgeUrl: 'https://127.0.0.1:1',
      fileServerUrl: 'http://127.0.0.1:1',
      tls: loadServerTls({ certFile: certs.server.cert, keyFile: certs.server.key, caFile: '' }),
      maxInFlightRequests: 1,
    });
    url = cc.url;
    close = () => cc.close();
  });
  after(() => close());

  test('serves https that a client verifies against the CA, and asks for basic auth on its API', async () => {
    assert.match(url, /^https:/);
    const response = await tlsFetch(withoutClientCert)(`${url}/dev/v1/apps`);
    assert.equal(response.status, 401);
    const authorized = await tlsFetch(withoutClientCert)(`${url}/dev/v1/apps`, { headers: { Authorization: `Basic ${Buffer.from('cc-user:cc-password').toString('base64')}` } });
    assert.equal(authorized.status, 200);
    assert.equal(await refusedAtHandshake(`${url}/dev/v1/apps`, { ca: certs.read(join(certs.dir, 'other-ca.crt')) }), true);
  });
});
