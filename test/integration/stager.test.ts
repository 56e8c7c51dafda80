// The Stager through its real surface: CC's routes on the gateway, the embedded Diego over the
// BBS protocol, and the CC test double receiving staging results.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Task_State } from '../../gen/diego/bbs/v1/task.js';
import { CC_PASSWORD, CC_USERNAME, startTestBridge, type TestBridge } from '../support/bridge.js';

const buildpackRequest = (overrides: Record<string, unknown> = {}) => ({
  app_id: 'app-guid',
  file_descriptors: 512,
  memory_mb: 1024,
  disk_mb: 2048,
  environment: [{ name: 'VCAP_APPLICATION', value: '{}' }],
  egress_rules: [{ protocol: 'tcp', destinations: ['0.0.0.0-255.255.255.255'], ports: [443], log: false }],
  timeout: 900,
  log_guid: 'log-guid',
  lifecycle: 'buildpack',
  lifecycle_data: {
    app_bits_download_uri: 'http://127.0.0.1:9022/staging/packages/app-guid',
    build_artifacts_cache_download_uri: 'http://127.0.0.1:9022/staging/buildpack_cache/app-guid/download',
    build_artifacts_cache_upload_uri: 'http://127.0.0.1:9022/staging/buildpack_cache/app-guid/upload',
    buildpacks: [{ name: 'nodejs', key: 'nodejs-key', url: 'http://127.0.0.1:9022/buildpacks/nodejs.zip', skip_detect: false }],
    droplet_upload_uri: 'http://127.0.0.1:9022/staging/droplets/app-guid/upload',
    stack: 'cflinuxfs4',
  },
  ...overrides,
});

const basicAuth = `Basic ${Buffer.from(`${CC_USERNAME}:${CC_PASSWORD}`).toString('base64')}`;

describe('stager', () => {
  let bridge: TestBridge;
  before(async () => {
    bridge = await startTestBridge();
  });
  after(() => bridge.close());

  test('stage desires the staging task in Diego; staging again is accepted', async () => {
    const r = await bridge.request('PUT', '/v1/staging/staging-1', buildpackRequest());
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
    const task = await bridge.bbs.taskByGuid('staging-1');
    assert.equal(task.domain, 'cf-app-staging');
    assert.equal(task.state, Task_State.STATE_PENDING);
    const definition = task.taskDefinition!;
    assert.equal(definition.rootFs, 'preloaded:cflinuxfs4');
    assert.equal(definition.completionCallbackUrl, `${bridge.gateway.url}/v1/staging/staging-1/completed`);
    assert.equal(definition.annotation, '{"lifecycle":"buildpack"}');
    assert.equal(definition.logGuid, 'log-guid');
    assert.equal(definition.logSource, 'STG');
    assert.equal(definition.memoryMb, 1024);
    assert.equal(definition.diskMb, 2048);
    assert.equal(definition.cpuWeight, 50);
    assert.deepEqual(definition.egressRules[0]!.ports, [443]);
    assert.ok(definition.action?.timeoutAction, 'the whole staging action runs under a timeout');
    assert.equal(definition.action!.timeoutAction!.timeoutMs, String(900_000));

    assert.equal((await bridge.request('PUT', '/v1/staging/staging-1', buildpackRequest())).status, 202);
  });

  test('a successful completion reaches CC with basic auth and the buildpack result', async () => {
    await bridge.request('PUT', '/v1/staging/staging-ok', buildpackRequest());
    const result = JSON.stringify({
      buildpack_key: 'nodejs-key',
      detected_buildpack: 'Node.js',
      execution_metadata: '{"start_command":"node server.js"}',
      detected_start_command: { web: 'node server.js' },
    });
    const r = await bridge.request('POST', '/v1/staging/staging-ok/completed', {
      task_guid: 'staging-ok',
      failed: false,
      failure_reason: '',
      result,
      annotation: '{"lifecycle":"buildpack"}',
      created_at: 1_700_000_000_000_000_000,
    });
    assert.equal(r.status, 200);
    const got = bridge.cc.received('/internal/staging/staging-ok/completed')[0]!;
    assert.equal(got.headers.authorization, basicAuth);
    assert.equal(
      got.body,
      '{"execution_metadata":"{\\"start_command\\":\\"node server.js\\"}","detected_start_command":{"web":"node server.js"},"lifecycle_data":{"buildpack_key":"nodejs-key","detected_buildpack":"Node.js"}}',
    );
  });

  const failures = [
    { reason: 'Exited with status 222', want: { id: 'NoAppDetectedError', message: 'staging failed' } },
    { reason: 'Exited with status 223', want: { id: 'BuildpackCompileFailed', message: 'staging failed' } },
    { reason: 'Exited with status 224', want: { id: 'BuildpackReleaseFailed', message: 'staging failed' } },
    { reason: 'insufficient resources', want: { id: 'InsufficientResources', message: 'insufficient resources' } },
    { reason: 'found no compatible cell', want: { id: 'NoCompatibleCell', message: 'found no compatible cell' } },
    { reason: 'something odd with a /secret/path', want: { id: 'StagingError', message: 'staging failed' } },
  ];
  for (const [i, { reason, want }] of failures.entries()) {
    test(`a failed task (${reason}) reaches CC as ${want.id}`, async () => {
      const guid = `staging-failed-${i}`;
      const r = await bridge.request('POST', `/v1/staging/${guid}/completed`, {
        task_guid: guid,
        failed: true,
        failure_reason: reason,
        annotation: '{"lifecycle":"buildpack"}',
      });
      assert.equal(r.status, 200);
      const body = bridge.cc.received(`/internal/staging/${guid}/completed`)[0]!.json;
      assert.deepEqual(body, { execution_metadata: '', detected_start_command: null, error: want });
    });
  }

  test("CC's status is passed through to Diego (504), and CC down is 503", async () => {
    const callback = { task_guid: 'staging-cc', failed: true, failure_reason: 'x', annotation: '{"lifecycle":"buildpack"}' };
    bridge.cc.statusFor.set('staging', 504);
    assert.equal((await bridge.request('POST', '/v1/staging/staging-cc/completed', callback)).status, 504);
    bridge.cc.statusFor.set('staging', 404);
    assert.equal((await bridge.request('POST', '/v1/staging/staging-cc/completed', callback)).status, 404);
    bridge.cc.statusFor.delete('staging');
    await bridge.cc.stop();
    try {
      assert.equal((await bridge.request('POST', '/v1/staging/staging-cc/completed', callback)).status, 503);
    } finally {
      await bridge.cc.start();
    }
    assert.equal((await bridge.request('POST', '/v1/staging/staging-cc/completed', callback)).status, 200);
  });

  test('stop cancels the staging task; an unknown guid is 404', async () => {
    await bridge.request('PUT', '/v1/staging/staging-stop', buildpackRequest());
    assert.equal((await bridge.request('DELETE', '/v1/staging/staging-stop')).status, 202);
    let task = await bridge.bbs.taskByGuid('staging-stop');
    for (let i = 0; i < 50 && !task.failed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      task = await bridge.bbs.taskByGuid('staging-stop');
    }
    assert.equal(task.failed, true);
    assert.equal((await bridge.request('DELETE', '/v1/staging/no-such-task')).status, 404);
  });

  const badInput = [
    { name: 'malformed JSON', method: 'PUT', path: '/v1/staging/s', body: 'bad-json', status: 400, text: '' },
    { name: 'an empty body', method: 'PUT', path: '/v1/staging/s', body: '', status: 400, text: '' },
    { name: 'an unknown lifecycle', method: 'PUT', path: '/v1/staging/s', body: { lifecycle: 'rkt' }, status: 404, text: '' },
    { name: 'no lifecycle', method: 'PUT', path: '/v1/staging/s', body: {}, status: 404, text: '' },
    {
      name: 'an unknown stack',
      method: 'PUT',
      path: '/v1/staging/s',
      body: buildpackRequest({ lifecycle_data: { ...buildpackRequest().lifecycle_data, stack: 'no-such-stack' } }),
      status: 500,
      text: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}',
    },
    {
      name: 'docker without lifecycle_data',
      method: 'PUT',
      path: '/v1/staging/s',
      body: { lifecycle: 'docker' },
      status: 500,
      text: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}',
    },
    { name: 'a callback for another guid', method: 'POST', path: '/v1/staging/s/completed', body: { task_guid: 'other' }, status: 400, text: '' },
    { name: 'a callback with a bad annotation', method: 'POST', path: '/v1/staging/s/completed', body: { task_guid: 's', annotation: 'nope' }, status: 400, text: '' },
    { name: 'a callback with no lifecycle', method: 'POST', path: '/v1/staging/s/completed', body: { task_guid: 's', annotation: '{}' }, status: 404, text: '' },
    {
      name: 'a callback whose result is not JSON',
      method: 'POST',
      path: '/v1/staging/s/completed',
      body: { task_guid: 's', annotation: '{"lifecycle":"buildpack"}', result: '{' },
      status: 400,
      text: '',
    },
  ];
  for (const { name, method, path, body, status, text } of badInput) {
    test(`${name} → ${status}`, async () => {
      const r = await bridge.request(method, path, body);
      assert.equal(r.status, status);
      assert.equal(r.text, text);
    });
  }

  test('staging metrics are counted and served on GET /metrics', async () => {
    const { startGateway } = await import('../../gateway/server.js');
    const served = await startGateway({ services: [], logger: bridge.log, metrics: bridge.metrics });
    const response = await fetch(`${served.url}/metrics`);
    await served.close(50);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    assert.match(text, /ccbridge_staging_requests_received_total\{lifecycle="buildpack"\} \d+/);
    assert.match(text, /ccbridge_staging_requests_completed_total\{outcome="failed"\} \d+/);
  });
});

describe('stager with Diego calling back', () => {
  let bridge: TestBridge;
  let cellRegistration: { deregister(): void } | undefined;
  before(async () => {
    bridge = await startTestBridge({ diego: { timing: { taskKickIntervalMs: 100, callbackTimeoutMs: 2_000 } } });
    // The test plays cell-1 by hand over the cell routes. It is registered (refusing the work the
    // auctioneer offers) so that Diego's task kick does not fail its running tasks as belonging
    // to a cell that has gone.
    const { CellPresence } = await import('../../gen/diego/bbs/v1/cells.js');
    cellRegistration = bridge.diego.registerCell({
      presence: CellPresence.fromPartial({
        cellId: 'cell-1',
        repAddress: 'http://cell-1.invalid',
        capacity: { memoryMb: 4096, diskMb: 16384, containers: 20 },
        rootfsProviders: [{ name: 'preloaded', properties: ['cflinuxfs4'] }],
      }),
      rep: { perform: async (work) => work, stopLrpInstance: async () => {}, cancelTask: async () => {} },
    });
  });
  after(async () => {
    cellRegistration?.deregister();
    await bridge.close();
  });

  async function runOnCell(taskGuid: string, outcome: { failed: boolean; failureReason?: string; result?: string }): Promise<void> {
    const { createCellClient } = await import('../../embedded/diego/index.js');
    const cell = createCellClient({ url: bridge.diego.url });
    await cell.startTask(taskGuid, 'cell-1');
    await cell.completeTask(taskGuid, 'cell-1', outcome.failed, outcome.failureReason ?? '', outcome.result ?? '');
  }

  async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  const taskGone = async (guid: string) => {
    try {
      await bridge.bbs.taskByGuid(guid);
      return false;
    } catch {
      return true;
    }
  };

  test('a cell completes the staging task; Diego calls the stager back; CC gets the result with basic auth; the task is resolved', async () => {
    assert.equal((await bridge.request('PUT', '/v1/staging/cycle-1', buildpackRequest())).status, 202);
    const result = JSON.stringify({ buildpack_key: 'nodejs-key', detected_buildpack: 'Node.js', execution_metadata: '{"start_command":"npm start"}', detected_start_command: { web: 'npm start' } });
    await runOnCell('cycle-1', { failed: false, result });
    const got = await bridge.cc.waitFor((r) => r.path === '/internal/staging/cycle-1/completed');
    assert.equal(got.headers.authorization, basicAuth);
    assert.deepEqual(got.json, {
      execution_metadata: '{"start_command":"npm start"}',
      detected_start_command: { web: 'npm start' },
      lifecycle_data: { buildpack_key: 'nodejs-key', detected_buildpack: 'Node.js' },
    });
    await waitFor('the task deleted after the callback', () => taskGone('cycle-1'));
  });

  test('a failed staging task reaches CC with its error id', async () => {
    await bridge.request('PUT', '/v1/staging/cycle-2', buildpackRequest());
    await runOnCell('cycle-2', { failed: true, failureReason: 'Exited with status 223' });
    const got = await bridge.cc.waitFor((r) => r.path === '/internal/staging/cycle-2/completed');
    assert.deepEqual((got.json as { error: unknown }).error, { id: 'BuildpackCompileFailed', message: 'staging failed' });
  });

  test('CC down: the stager answers 503, Diego keeps the task and calls back again once CC is back', async () => {
    await bridge.request('PUT', '/v1/staging/cycle-3', buildpackRequest());
    await bridge.cc.stop();
    try {
      await runOnCell('cycle-3', { failed: true, failureReason: 'insufficient resources' });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(await taskGone('cycle-3'), false, 'kept while CC is down');
    } finally {
      await bridge.cc.start();
    }
    const got = await bridge.cc.waitFor((r) => r.path === '/internal/staging/cycle-3/completed');
    assert.equal((got.json as { error: { id: string } }).error.id, 'InsufficientResources');
    await waitFor('the task deleted once CC took it', () => taskGone('cycle-3'));
  });

  test('CC answers 504: passed through, so Diego calls back again', async () => {
    await bridge.request('PUT', '/v1/staging/cycle-4', buildpackRequest());
    bridge.cc.statusFor.set('staging', 504);
    try {
      await runOnCell('cycle-4', { failed: true, failureReason: 'x' });
      await waitFor('two callbacks refused', () => bridge.cc.received('/internal/staging/cycle-4/completed').length >= 2);
      assert.equal(await taskGone('cycle-4'), false);
    } finally {
      bridge.cc.statusFor.delete('staging');
    }
    await waitFor('the task deleted once CC took it', () => taskGone('cycle-4'));
  });
});
