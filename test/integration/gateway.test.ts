// The gateway through its real surface: HTTP in, gRPC (or in-process) out, against test
// implementations of the three services that record what they receive.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createChannel, Status, type CallContext, type Channel } from 'nice-grpc';
import { NsyncServiceDefinition, type NsyncServiceImplementation } from '../../gen/cloudfoundry/ccbridge/nsync/v1/nsync.js';
import { StagerServiceDefinition, type StagerServiceImplementation } from '../../gen/cloudfoundry/ccbridge/stager/v1/stager.js';
import { TpsServiceDefinition, type TpsServiceImplementation } from '../../gen/cloudfoundry/ccbridge/tps/v1/tps.js';
import { LRPInstanceState, StagingErrorId, StagingResponseForCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { BridgeError, invalidArgument, notFound, pack, unavailable } from '../../lib/errors.js';
import { startGrpcServer, type RunningGrpcServer } from '../../lib/grpc.js';
import { silentLogger } from '../../lib/log.js';
import { grpcDispatcher, inProcessDispatcher, type ServiceBinding } from '../../gateway/dispatch.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';

interface Received {
  method: string;
  request: unknown;
  requestId?: string;
  authorization?: string;
}

const received: Received[] = [];
function record(method: string, request: unknown, context: CallContext): void {
  received.push({
    method,
    request,
    requestId: context.metadata.get('x-vcap-request-id'),
    authorization: context.metadata.get('authorization'),
  });
}

/** Test services whose behaviour is steered by the guid in the request. */
const stager: StagerServiceImplementation = {
  async stage(request, context) {
    record('Stage', request, context);
    if (request.request?.lifecycle === 'unknown') throw notFound('UNKNOWN_LIFECYCLE', 'no such lifecycle');
    if (request.stagingGuid === 'recipe-error') {
      const body = { executionMetadata: '', detectedStartCommand: {}, error: { id: StagingErrorId.STAGING_ERROR_ID_STAGING_ERROR, message: 'staging failed' }, lifecycleData: '' };
      throw new BridgeError(Status.INTERNAL, 'RECIPE_ERROR', 'staging failed', { body: pack('cloudfoundry.ccbridge.cc.v1.StagingResponseForCC', StagingResponseForCC, body) });
    }
    if (request.stagingGuid === 'boom') throw new Error('a bug');
    return {};
  },
  async stopStaging(request, context) {
    record('StopStaging', request, context);
    if (request.stagingGuid === 'missing') throw notFound('TASK_NOT_FOUND', 'no such task');
    return {};
  },
  async stagingCompleted(request, context) {
    record('StagingCompleted', request, context);
    if (request.stagingGuid === 'cc-504') throw new BridgeError(Status.UNAVAILABLE, 'CC_STATUS', 'CC answered 504', { httpStatus: 504 });
    if (request.stagingGuid === 'cc-down') throw unavailable('CC_UNREACHABLE', 'CC is unreachable');
    return {};
  },
};

const nsync: NsyncServiceImplementation = {
  async desireApp(request, context) {
    record('DesireApp', request, context);
    if (request.app && request.app.processGuid !== request.processGuid) throw invalidArgument('PROCESS_GUID_MISMATCH', 'process_guid differs');
    if (request.processGuid === 'conflict') throw new BridgeError(Status.ALREADY_EXISTS, 'CONFLICT', 'lost a race');
    return {};
  },
  async stopApp(request, context) {
    record('StopApp', request, context);
    if (request.processGuid === '') throw invalidArgument('MISSING_PROCESS_GUID', 'process_guid is empty');
    return {};
  },
  async killIndex(request, context) {
    record('KillIndex', request, context);
    if (request.processGuid === '' || request.index === '') throw invalidArgument('MISSING_PARAMETER', 'empty');
    if (request.index === '9') throw notFound('INDEX_NOT_FOUND', 'no such index');
    return {};
  },
};

const instance = {
  processGuid: 'p1',
  instanceGuid: 'i1',
  index: 0,
  state: LRPInstanceState.LRP_INSTANCE_STATE_RUNNING,
  details: '',
  host: '',
  port: 0,
  uptime: '12',
  since: '1700000000',
  stats: undefined,
};

const tps: TpsServiceImplementation = {
  async getLrpStatus(request, context) {
    record('GetLrpStatus', request, context);
    if (request.processGuid === 'unknown') return { instances: [] };
    return { instances: [{ ...instance, processGuid: request.processGuid }] };
  },
  async getLrpStats(request, context) {
    record('GetLrpStats', request, context);
    if (!context.metadata.get('authorization')) throw new BridgeError(Status.UNAUTHENTICATED, 'MISSING_AUTHORIZATION', 'no authorization');
    return {
      instances: [{ ...instance, host: '127.0.0.1', port: 61000, stats: { time: new Date('2026-01-02T03:04:05.120Z'), cpu: 0.04, mem: '1024', disk: '2048' } }],
    };
  },
  async bulkLrpStatus(request, context) {
    record('BulkLrpStatus', request, context);
    if (!/^([a-zA-Z0-9_-]+,)*[a-zA-Z0-9_-]+$/.test(request.guids)) throw invalidArgument('INVALID_GUIDS', 'bad guids');
    const statuses: Record<string, { instances: (typeof instance)[] }> = {};
    for (const guid of request.guids.split(',')) statuses[guid] = { instances: guid === 'none' ? [] : [{ ...instance, processGuid: guid }] };
    return { statuses };
  },
  async *watchInstances() {},
};

const modes = ['in-process', 'grpc'] as const;

for (const mode of modes) {
  describe(`gateway (${mode} dispatch)`, () => {
    let gateway: RunningGateway;
    let grpc: RunningGrpcServer | undefined;
    let channel: Channel | undefined;

    before(async () => {
      const log = silentLogger();
      let services: ServiceBinding[];
      if (mode === 'grpc') {
        grpc = await startGrpcServer({
          logger: log,
          services: [
            { definition: StagerServiceDefinition, implementation: stager },
            { definition: NsyncServiceDefinition, implementation: nsync },
            { definition: TpsServiceDefinition, implementation: tps },
          ],
        });
        channel = createChannel(grpc.address);
        services = [StagerServiceDefinition, NsyncServiceDefinition, TpsServiceDefinition].map((definition) => ({
          definition,
          dispatcher: grpcDispatcher(definition, channel!),
        }));
      } else {
        services = [
          { definition: StagerServiceDefinition, dispatcher: inProcessDispatcher(StagerServiceDefinition, stager as never, log) },
          { definition: NsyncServiceDefinition, dispatcher: inProcessDispatcher(NsyncServiceDefinition, nsync as never, log) },
          { definition: TpsServiceDefinition, dispatcher: inProcessDispatcher(TpsServiceDefinition, tps as never, log) },
        ];
      }
      gateway = await startGateway({ services, logger: log, maxBodyBytes: 64 * 1024 });
    });

    after(async () => {
      await gateway.close(100);
      channel?.close();
      await grpc?.close(100);
    });

    async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
      received.length = 0;
      const response = await fetch(gateway.url + path, { method, body, headers });
      return { status: response.status, text: await response.text(), headers: response.headers, got: received[0] };
    }

    test('PUT /v1/staging/:guid reaches Stage with the path guid and the decoded body', async () => {
      const body = JSON.stringify({
        app_id: 'app-1',
        file_descriptors: 512,
        memory_mb: 1024,
        disk_mb: 2048,
        environment: [{ name: 'A', value: 'b' }],
        timeout: 900,
        log_guid: 'log-1',
        lifecycle: 'buildpack',
        lifecycle_data: { stack: 'cflinuxfs4', buildpacks: [] },
        some_newer_key: { ignored: true },
      });
      const r = await call('PUT', '/v1/staging/staging-1', body, { 'X-Vcap-Request-Id': 'req-42' });
      assert.equal(r.status, 202);
      assert.equal(r.text, '');
      assert.equal(r.got?.method, 'Stage');
      assert.equal(r.got?.requestId, 'req-42');
      assert.deepEqual(r.got?.request, {
        stagingGuid: 'staging-1',
        request: {
          appId: 'app-1',
          fileDescriptors: 512,
          memoryMb: 1024,
          diskMb: 2048,
          environment: [{ name: 'A', value: 'b' }],
          egressRules: [],
          timeout: 900,
          logGuid: 'log-1',
          lifecycle: 'buildpack',
          lifecycleData: '{"stack":"cflinuxfs4","buildpacks":[]}',
        },
      });
    });

    test('a request id is made when CC sends none, and returned', async () => {
      const r = await call('DELETE', '/v1/staging/staging-1');
      assert.equal(r.status, 202);
      assert.match(r.got?.requestId ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(r.headers.get('x-vcap-request-id'), r.got?.requestId);
    });

    const badBodies = [
      { name: 'malformed JSON', body: 'bad-json' },
      { name: 'empty body', body: '' },
      { name: 'a string where a number goes', body: '{"memory_mb":"abc"}' },
      { name: 'an array body', body: '[1,2]' },
      { name: 'a fraction for an integer', body: '{"memory_mb":1.5}' },
    ];
    for (const { name, body } of badBodies) {
      test(`stage with ${name} is 400 with no body`, async () => {
        const r = await call('PUT', '/v1/staging/staging-1', body);
        assert.equal(r.status, 400);
        assert.equal(r.text, '');
        assert.equal(r.got, undefined, 'the service is not called');
      });
    }

    test('stage with an unknown lifecycle is 404 (declared legacy status)', async () => {
      const r = await call('PUT', '/v1/staging/staging-1', '{"lifecycle":"unknown"}');
      assert.equal(r.status, 404);
      assert.equal(r.text, '');
    });

    test('a recipe error is 500 with the StagingResponseForCC body', async () => {
      const r = await call('PUT', '/v1/staging/recipe-error', '{"lifecycle":"buildpack"}');
      assert.equal(r.status, 500);
      assert.equal(r.text, '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}');
      assert.equal(r.headers.get('content-type'), 'application/json');
    });

    test('an unexpected fault is 500 with no detail in the body', async () => {
      const r = await call('PUT', '/v1/staging/boom', '{"lifecycle":"buildpack"}');
      assert.equal(r.status, 500);
      assert.equal(r.text, '');
    });

    test('StopStaging of an unknown guid is 404', async () => {
      const r = await call('DELETE', '/v1/staging/missing');
      assert.equal(r.status, 404);
    });

    test('POST /v1/staging/:guid/completed reaches StagingCompleted with the callback body', async () => {
      const body = '{"task_guid":"s1","failed":false,"failure_reason":"","result":"{}","annotation":"{\\"lifecycle\\":\\"buildpack\\"}","created_at":1700000000123456789,"state":"COMPLETED"}';
      const r = await call('POST', '/v1/staging/s1/completed', body);
      assert.equal(r.status, 200);
      const request = r.got?.request as { stagingGuid: string; task: { taskGuid: string; annotation: string; createdAt: string } };
      assert.equal(request.stagingGuid, 's1');
      assert.equal(request.task.taskGuid, 's1');
      assert.equal(request.task.annotation, '{"lifecycle":"buildpack"}');
      assert.match(request.task.createdAt, /^17000000001234567\d\d$/);
    });

    test("CC's status passes through (504), and CC unreachable is 503", async () => {
      assert.equal((await call('POST', '/v1/staging/cc-504/completed', '{"task_guid":"cc-504"}')).status, 504);
      assert.equal((await call('POST', '/v1/staging/cc-down/completed', '{"task_guid":"cc-down"}')).status, 503);
    });

    test('PUT /v1/apps/:guid gives the service both the path guid and the body guid', async () => {
      const r = await call('PUT', '/v1/apps/p-1', '{"process_guid":"p-2","num_instances":3,"routes":["a.example.com"]}');
      assert.equal(r.status, 400);
      const request = r.got?.request as { processGuid: string; app: { processGuid: string; numInstances: number; routes: string[] } };
      assert.equal(request.processGuid, 'p-1');
      assert.equal(request.app.processGuid, 'p-2');
      assert.equal(request.app.numInstances, 3);
      assert.deepEqual(request.app.routes, ['a.example.com']);
      assert.equal((await call('PUT', '/v1/apps/p-1', '{"process_guid":"p-1"}')).status, 202);
      assert.equal((await call('PUT', '/v1/apps/conflict', '{"process_guid":"conflict"}')).status, 409);
    });

    test('keys match case-insensitively, as Go decodes them', async () => {
      const r = await call('PUT', '/v1/apps/p-1', '{"PROCESS_GUID":"p-1","Num_Instances":2}');
      assert.equal(r.status, 202);
      assert.equal((r.got?.request as { app: { numInstances: number } }).app.numInstances, 2);
    });

    test('empty path segments still reach the service (DELETE /v1/apps//index/1 is its 400)', async () => {
      const r = await call('DELETE', '/v1/apps//index/1');
      assert.equal(r.status, 400);
      assert.deepEqual(r.got?.request, { processGuid: '', index: '1' });
      assert.equal((await call('DELETE', '/v1/apps/p-1/index/')).status, 400);
      assert.equal((await call('DELETE', '/v1/apps/p-1/index/9')).status, 404);
      assert.equal((await call('DELETE', '/v1/apps/p-1/index/2')).status, 202);
      assert.equal((await call('DELETE', '/v1/apps/p-1')).status, 202);
    });

    test('path values are URL-unescaped', async () => {
      const r = await call('DELETE', '/v1/apps/a%2Db');
      assert.deepEqual(r.got?.request, { processGuid: 'a-b' });
    });

    test('GET /v1/actual_lrps/:guid writes the instance list with a trailing newline', async () => {
      const r = await call('GET', '/v1/actual_lrps/p1');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(r.text, '[{"process_guid":"p1","instance_guid":"i1","index":0,"state":"RUNNING","uptime":12,"since":1700000000}]\n');
      const empty = await call('GET', '/v1/actual_lrps/unknown');
      assert.equal(empty.text, '[]\n');
    });

    test('HEAD answers like GET without a body', async () => {
      const r = await call('HEAD', '/v1/actual_lrps/p1');
      assert.equal(r.status, 200);
      assert.equal(r.text, '');
      assert.equal(r.got?.method, 'GetLrpStatus');
    });

    test('stats: Authorization is passed on; without it 401', async () => {
      const r = await call('GET', '/v1/actual_lrps/p1/stats', undefined, { Authorization: 'bearer token' });
      assert.equal(r.status, 200);
      assert.equal(r.got?.authorization, 'bearer token');
      assert.equal(
        r.text,
        '[{"process_guid":"p1","instance_guid":"i1","index":0,"state":"RUNNING","host":"127.0.0.1","port":61000,"uptime":12,"since":1700000000,"stats":{"time":"2026-01-02T03:04:05.12Z","cpu":0.04,"mem":1024,"disk":2048}}]\n',
      );
      const denied = await call('GET', '/v1/actual_lrps/p1/stats');
      assert.equal(denied.status, 401);
      assert.equal(denied.text, '');
    });

    test('bulk status reads guids from the query and writes a map of lists', async () => {
      const r = await call('GET', '/v1/bulk_actual_lrp_status?guids=b,a,none');
      assert.equal(r.status, 200);
      assert.deepEqual(r.got?.request, { guids: 'b,a,none' });
      assert.equal(
        r.text,
        '{"a":[{"process_guid":"a","instance_guid":"i1","index":0,"state":"RUNNING","uptime":12,"since":1700000000}],' +
          '"b":[{"process_guid":"b","instance_guid":"i1","index":0,"state":"RUNNING","uptime":12,"since":1700000000}],"none":[]}\n',
      );
      assert.equal((await call('GET', '/v1/bulk_actual_lrp_status')).status, 400);
      assert.equal((await call('GET', '/v1/bulk_actual_lrp_status?guids=a,,b')).status, 400);
    });

    test('a bulk status URL with 1,000 real guids fits in the header limit', async () => {
      const guids = Array.from({ length: 1000 }, (_, i) => `${crypto.randomUUID()}-${String(i).padStart(10, '0')}`);
      const r = await call('GET', `/v1/bulk_actual_lrp_status?guids=${guids.join(',')}`);
      assert.equal(r.status, 200);
      assert.equal(Object.keys(JSON.parse(r.text)).length, 1000);
    });

    test('unknown routes are 404 and wrong verbs 405, with the original plain bodies', async () => {
      const missing = await call('GET', '/v1/nothing-here');
      assert.equal(missing.status, 404);
      assert.equal(missing.text, '404 page not found\n');
      const wrongVerb = await call('POST', '/v1/apps/p-1');
      assert.equal(wrongVerb.status, 405);
      assert.equal(wrongVerb.text, 'Method Not Allowed\n');
      assert.equal(wrongVerb.headers.get('allow'), 'PUT, DELETE');
    });

    test('an oversized body is 413 and never reaches the service', async () => {
      const r = await call('PUT', '/v1/apps/p-1', JSON.stringify({ process_guid: 'p-1', start_command: 'x'.repeat(100 * 1024) }));
      assert.equal(r.status, 413);
      assert.equal(r.got, undefined);
    });
  });
}
