import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { ClientError, createChannel, ServerError, Status, type Channel } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';
import { ServerReflectionService } from 'nice-grpc-server-reflection';
// google-protobuf modules only work through their default export under ESM.
import reflectionMessages from 'nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js';
import { LocketDefinition, type LocketServiceImplementation } from '../../gen/locket/locket.js';
import { credentials, Client as GrpcJsClient, Metadata as GrpcMetadata, type ServiceError } from '@grpc/grpc-js';
import { ErrorInfo } from '../../gen/google/rpc/error_details.js';
import { Status as RpcStatus } from '../../gen/google/rpc/status.js';
import { STATUS_DETAILS_KEY } from '../../lib/errors.js';
import { createGrpcClient, startGrpcServer, type RunningGrpcServer } from '../../lib/grpc.js';
import { createLogger } from '../../lib/log.js';

const { ServerReflectionRequest } = reflectionMessages;
const HEALTH_SERVING = 1;

function captureLogLines() {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) if (part.trim()) lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  return { logger: createLogger({ level: 'debug', destination: stream }), lines };
}

/** A Locket stand-in: Fetch answers NOT_FOUND, Lock waits until the call is cancelled. */
const stubLocket: LocketServiceImplementation = {
  async lock(_request, context) {
    await new Promise<void>((_resolve, reject) => {
      context.signal.addEventListener('abort', () => reject(new ServerError(Status.CANCELLED, 'cancelled')), { once: true });
    });
    return {};
  },
  async fetch() {
    throw new ServerError(Status.NOT_FOUND, 'resource-not-found');
  },
  async release() {
    return {};
  },
  async fetchAll() {
    return { resources: [] };
  },
};

async function reflect(channel: Channel, request: InstanceType<typeof ServerReflectionRequest>) {
  const client = createGrpcClient(ServerReflectionService, channel);
  async function* one() {
    yield request;
  }
  for await (const response of client.serverReflectionInfo(one())) return response;
  throw new Error('reflection stream ended without a response');
}

describe('startGrpcServer', () => {
  let running: RunningGrpcServer;
  let channel: Channel;
  const { logger, lines } = captureLogLines();

  before(async () => {
    running = await startGrpcServer({ port: 0, services: [{ definition: LocketDefinition, implementation: stubLocket }], logger });
    channel = createChannel(running.address);
  });

  after(async () => {
    channel.close();
    await running.close(100);
  });

  test('listens on a free loopback port', () => {
    assert.ok(running.port > 0);
    assert.equal(running.address, `127.0.0.1:${running.port}`);
  });

  test('health check answers SERVING for each service and for the server', async () => {
    const health = createGrpcClient(HealthDefinition, channel);
    assert.equal((await health.check({ service: 'models.Locket' })).status, HEALTH_SERVING);
    assert.equal((await health.check({ service: '' })).status, HEALTH_SERVING);
    await assert.rejects(health.check({ service: 'no.such.Service' }), (error: unknown) => {
      return error instanceof ClientError && error.code === Status.NOT_FOUND;
    });
  });

  test('reflection lists the services and serves their descriptors', async () => {
    const listRequest = new ServerReflectionRequest();
    listRequest.setListServices('*');
    const listed = await reflect(channel, listRequest);
    const names = listed.getListServicesResponse()?.getServiceList().map((service) => service.getName()) ?? [];
    assert.ok(names.includes('models.Locket'), `listed: ${names.join(', ')}`);

    const symbolRequest = new ServerReflectionRequest();
    symbolRequest.setFileContainingSymbol('models.Locket');
    const described = await reflect(channel, symbolRequest);
    const files = described.getFileDescriptorResponse()?.getFileDescriptorProtoList_asU8() ?? [];
    const fileNames = files.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
    assert.ok(fileNames.includes('locket/locket.proto'), `files: ${fileNames.join(', ')}`);
  });

  // Found by test/fuzz: grpc-js answered bytes that do not decode with a bare INTERNAL, as if
  // the server had failed. The shortest such request: a length-delimited field cut short.
  test('a request that does not decode is INVALID_ARGUMENT with an ErrorInfo, not INTERNAL', async () => {
    const raw = new GrpcJsClient(running.address, credentials.createInsecure());
    try {
      const error = await new Promise<ServiceError | null>((resolve) => {
        const identity = (b: Buffer) => b;
        raw.makeUnaryRequest('/models.Locket/Release', identity, identity, Buffer.from([0x0a, 0x05, 0x61]), new GrpcMetadata(), {}, resolve);
      });
      assert.ok(error, 'the call should fail');
      assert.equal(error.code, Status.INVALID_ARGUMENT);
      const details = RpcStatus.decode(error.metadata.get(STATUS_DETAILS_KEY)[0] as Buffer);
      const info = ErrorInfo.decode(details.details.find((d) => d.typeUrl.endsWith('/google.rpc.ErrorInfo'))!.value);
      assert.equal(info.reason, 'MALFORMED_REQUEST');
      // And the server still serves well-formed calls.
      assert.deepEqual(await createGrpcClient(LocketDefinition, channel).release({ resource: { key: 'k', owner: 'o' } }), {});
    } finally {
      raw.close();
    }
  });

  test('logs one grpc-call line per RPC with method, code and duration, never the request', async () => {
    const locket = createGrpcClient(LocketDefinition, channel);
    await assert.rejects(locket.fetch({ key: 'request-body-marker' }));
    const line = lines.find((entry) => entry.msg === 'grpc-call' && entry.method === '/models.Locket/Fetch');
    assert.ok(line, 'no grpc-call line for Fetch');
    assert.equal(line.code, 'NOT_FOUND');
    assert.equal(typeof line.duration_ms, 'number');
    assert.ok(!lines.some((entry) => JSON.stringify(entry).includes('request-body-marker')));
  });
});

describe('createGrpcClient', () => {
  test('a call past its deadline fails with DEADLINE_EXCEEDED', async () => {
    const running = await startGrpcServer({
      services: [{ definition: LocketDefinition, implementation: stubLocket }],
      logger: createLogger({ level: 'silent' }),
    });
    const channel = createChannel(running.address);
    try {
      const locket = createGrpcClient(LocketDefinition, channel, { defaultDeadlineMs: 50 });
      await assert.rejects(locket.lock({ resource: { key: 'k', owner: 'o' }, ttlInSeconds: '1' }), (error: unknown) => {
        return error instanceof ClientError && error.code === Status.DEADLINE_EXCEEDED;
      });
    } finally {
      channel.close();
      await running.close(100);
    }
  });
});

describe('startGrpcServer close', () => {
  test('marks services NOT_SERVING, then cancels calls still running after the grace period', async () => {
    const running = await startGrpcServer({
      services: [{ definition: LocketDefinition, implementation: stubLocket }],
      logger: createLogger({ level: 'silent' }),
    });
    const channel = createChannel(running.address);
    try {
      const locket = createGrpcClient(LocketDefinition, channel);
      const hanging = locket.lock({ resource: { key: 'k', owner: 'o' }, ttlInSeconds: '1' }, { deadline: 10_000 });
      const outcome = hanging.then(
        () => 'resolved',
        (error: unknown) => (error instanceof ClientError ? Status[error.code] : String(error)),
      );
      // Let the call reach the server before closing.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closed = running.close(100);
      assert.equal(running.health.getStatus('models.Locket'), 'unhealthy');
      await closed;
      assert.equal(await outcome, 'CANCELLED');
    } finally {
      channel.close();
    }
  });
});
