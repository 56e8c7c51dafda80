// The Nsync listener through CC's routes on the gateway, against the embedded Diego.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestBridge, type TestBridge } from '../support/bridge.js';

const app = (processGuid: string, overrides: Record<string, unknown> = {}) => ({
  process_guid: processGuid,
  droplet_uri: 'http://127.0.0.1:9022/droplets/app.tgz',
  stack: 'cflinuxfs4',
  start_command: 'node server.js',
  execution_metadata: '{"start_command":"node server.js"}',
  environment: [{ name: 'FOO', value: 'bar' }],
  memory_mb: 256,
  disk_mb: 1024,
  file_descriptors: 16384,
  num_instances: 2,
  routes: ['app.example.com'],
  log_guid: 'log-guid',
  health_check_type: 'port',
  health_check_timeout_in_seconds: 60,
  etag: 'etag-1',
  ...overrides,
});

describe('nsync listener', () => {
  let bridge: TestBridge;
  before(async () => {
    bridge = await startTestBridge();
  });
  after(() => bridge.close());

  test('desire creates the LRP with its instances', async () => {
    const r = await bridge.request('PUT', '/v1/apps/web-v1', app('web-v1'));
    assert.equal(r.status, 202);
    assert.equal(r.text, '');
    const lrp = await bridge.bbs.desiredLrpByProcessGuid('web-v1');
    assert.equal(lrp.domain, 'cf-apps');
    assert.equal(lrp.instances, 2);
    assert.equal(lrp.annotation, 'etag-1');
    assert.equal(lrp.rootFs, 'preloaded:cflinuxfs4');
    assert.deepEqual(JSON.parse(lrp.routes!.routes['cf-router']!.toString()), [{ hostnames: ['app.example.com'], port: 8080 }]);
    const actuals = await bridge.bbs.actualLrps({ processGuid: 'web-v1' });
    assert.deepEqual(actuals.map((a) => a.actualLrpKey!.index).sort(), [0, 1]);
  });

  test('desire of an existing LRP updates only instances, routes and annotation, keeping other routers', async () => {
    await bridge.request('PUT', '/v1/apps/web-v2', app('web-v2', { allow_ssh: true }));
    const before = await bridge.bbs.desiredLrpByProcessGuid('web-v2');
    assert.ok(before.routes!.routes['diego-ssh'], 'ssh route present');
    const r = await bridge.request('PUT', '/v1/apps/web-v2', app('web-v2', { num_instances: 3, routes: ['new.example.com'], etag: 'etag-2', memory_mb: 4096 }));
    assert.equal(r.status, 202);
    const after = await bridge.bbs.desiredLrpByProcessGuid('web-v2');
    assert.equal(after.instances, 3);
    assert.equal(after.annotation, 'etag-2');
    assert.equal(after.memoryMb, 256, 'memory is immutable: CC changes the process guid for it');
    assert.deepEqual(JSON.parse(after.routes!.routes['cf-router']!.toString()), [{ hostnames: ['new.example.com'], port: 8080 }]);
    assert.deepEqual(after.routes!.routes['diego-ssh'], before.routes!.routes['diego-ssh'], 'the ssh key does not rotate');
    assert.equal((await bridge.bbs.actualLrps({ processGuid: 'web-v2' })).length, 3);
  });

  test('stop removes the LRP; an unknown one is 404', async () => {
    await bridge.request('PUT', '/v1/apps/web-stop', app('web-stop'));
    assert.equal((await bridge.request('DELETE', '/v1/apps/web-stop')).status, 202);
    await assert.rejects(bridge.bbs.desiredLrpByProcessGuid('web-stop'));
    assert.equal((await bridge.request('DELETE', '/v1/apps/web-stop')).status, 404);
  });

  test('kill index retires that instance; an index beyond the instances is 404', async () => {
    await bridge.request('PUT', '/v1/apps/web-kill', app('web-kill', { num_instances: 3 }));
    assert.equal((await bridge.request('DELETE', '/v1/apps/web-kill/index/1')).status, 202);
    const indexes = (await bridge.bbs.actualLrps({ processGuid: 'web-kill' })).map((a) => a.actualLrpKey!.index).sort();
    assert.deepEqual(indexes, [0, 2]);
    assert.equal((await bridge.request('DELETE', '/v1/apps/web-kill/index/4')).status, 404);
  });

  const badInput = [
    { name: 'malformed JSON', method: 'PUT', path: '/v1/apps/x', body: 'bad-json', status: 400 },
    { name: 'an empty body', method: 'PUT', path: '/v1/apps/x', body: '', status: 400 },
    { name: 'a body for another process guid', method: 'PUT', path: '/v1/apps/x', body: app('y'), status: 400 },
    { name: 'neither droplet nor docker image', method: 'PUT', path: '/v1/apps/x', body: app('x', { droplet_uri: '' }), status: 400 },
    { name: 'both droplet and docker image', method: 'PUT', path: '/v1/apps/x', body: app('x', { docker_image: 'busybox' }), status: 400 },
    { name: 'negative instances', method: 'PUT', path: '/v1/apps/x', body: app('x', { num_instances: -1 }), status: 400 },
    // Found by test/fuzz: 2^31 - 1 instances made the embedded Diego create every actual LRP and run out of memory.
    { name: 'more instances than Diego takes', method: 'PUT', path: '/v1/apps/x', body: app('x', { num_instances: 2147483647 }), status: 400 },
    { name: 'a bad docker image', method: 'PUT', path: '/v1/apps/x', body: app('x', { droplet_uri: '', docker_image: 'UPPER CASE' }), status: 400 },
    { name: 'an unknown stack', method: 'PUT', path: '/v1/apps/x', body: app('x', { stack: 'nope' }), status: 400 },
    { name: 'an empty process guid on delete', method: 'DELETE', path: '/v1/apps/', body: undefined, status: 400 },
    { name: 'an empty guid on kill', method: 'DELETE', path: '/v1/apps//index/1', body: undefined, status: 400 },
    { name: 'an empty index', method: 'DELETE', path: '/v1/apps/x/index/', body: undefined, status: 400 },
    { name: 'an index that is not a number', method: 'DELETE', path: '/v1/apps/x/index/not-a-number', body: undefined, status: 400 },
    { name: 'a negative index', method: 'DELETE', path: '/v1/apps/x/index/-1', body: undefined, status: 400 },
  ];
  for (const { name, method, path, body, status } of badInput) {
    test(`${name} → ${status}, nothing desired`, async () => {
      const r = await bridge.request(method, path, body);
      assert.equal(r.status, status);
      await assert.rejects(bridge.bbs.desiredLrpByProcessGuid('x'));
    });
  }

  test('an update to more instances than Diego takes → 400, the LRP unchanged', async () => {
    assert.equal((await bridge.request('PUT', '/v1/apps/grows', app('grows', { num_instances: 1 }))).status, 202);
    assert.equal((await bridge.request('PUT', '/v1/apps/grows', app('grows', { num_instances: 2147483647 }))).status, 400);
    assert.equal((await bridge.bbs.desiredLrpByProcessGuid('grows')).instances, 1);
  });

  test('Diego down → 503', async () => {
    const port = bridge.diego.port;
    await bridge.diego.close(50);
    try {
      assert.equal((await bridge.request('PUT', '/v1/apps/web-down', app('web-down'))).status, 503);
      assert.equal((await bridge.request('DELETE', '/v1/apps/web-down')).status, 503);
      assert.equal((await bridge.request('DELETE', '/v1/apps/web-down/index/0')).status, 503);
    } finally {
      const { startEmbeddedDiego } = await import('../../embedded/diego/index.js');
      bridge.diego = await startEmbeddedDiego({ dataDir: `${bridge.dataDir}/diego`, port, logger: bridge.log });
    }
    assert.equal((await bridge.request('PUT', '/v1/apps/web-down', app('web-down'))).status, 202);
  });
});
