// The legacy JSON codec against the worked examples of the 2015 specification, byte for byte,
// both ways.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeLegacyJson, encodeLegacyJson, encodeLegacyJsonField, LegacyJsonError, quote } from '../../lib/legacy-json.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';

describe('legacy JSON: the spec examples byte for byte', () => {
  const cases = [
    {
      name: 'staging failure body (stager §3.2)',
      type: `${CC}.StagingResponseForCC`,
      json: '{"execution_metadata":"","detected_start_command":null,"error":{"id":"StagingError","message":"staging failed"}}',
    },
    {
      name: 'buildpack staging success posted to CC (stager §3.5)',
      type: `${CC}.StagingResponseForCC`,
      json: '{"execution_metadata":"{\\"start_command\\":\\"./some-start-command\\"}","detected_start_command":{"web":"./some-start-command"},"lifecycle_data":{"buildpack_key":"buildpack-key","detected_buildpack":"Some Buildpack"}}',
    },
    {
      name: 'crash report (watcher §7.2)',
      type: `${CC}.AppCrashedRequest`,
      json: '{"instance":"instance-guid","index":1,"reason":"CRASHED","exit_description":"out of memory","crash_count":1,"crash_timestamp":3}',
    },
    {
      name: 'minimal crash report (watcher §7.2)',
      type: `${CC}.AppCrashedRequest`,
      json: '{"instance":"","index":1,"reason":"","crash_count":0,"crash_timestamp":0}',
    },
    {
      name: 'buildpack staging response lifecycle data',
      type: `${CC}.BuildpackStagingResponse`,
      json: '{"buildpack_key":"buildpack-key","detected_buildpack":"Some Buildpack"}',
    },
    {
      name: 'docker staging response lifecycle data (other keys omitted)',
      type: `${CC}.DockerStagingData`,
      json: '{"docker_image":"cloudfoundry/diego-docker-app:latest"}',
    },
    {
      name: 'staging task annotation',
      type: `${CC}.StagingTaskAnnotation`,
      json: '{"lifecycle":"buildpack"}',
    },
    {
      name: 'fingerprint page with its raw token',
      type: `${CC}.CCDesiredStateFingerprintResponse`,
      json: '{"fingerprints":[{"process_guid":"p1","etag":"e1"}],"token":{"id":42}}',
    },
    {
      name: 'instance with stats (TPS §6.2)',
      type: `${CC}.LRPInstance`,
      json: '{"process_guid":"p","instance_guid":"i","index":2,"state":"RUNNING","host":"1.2.3.4","port":61000,"uptime":10,"since":1700000000,"stats":{"time":"2008-08-08T08:08:13.12Z","cpu":0.04,"mem":1024,"disk":2048}}',
    },
    {
      name: 'egress rule: log always written, the rest omitted when empty',
      type: `${CC}.SecurityGroupRule`,
      json: '{"protocol":"tcp","destinations":["0.0.0.0-9.255.255.255"],"ports":[80,443],"log":false}',
    },
  ];
  for (const { name, type, json } of cases) {
    test(name, () => {
      const decoded = decodeLegacyJson(type, json);
      assert.equal(encodeLegacyJson(type, decoded), json);
    });
  }

  test('the nsync spec request reads back field by field', () => {
    const json =
      '{"process_guid":"the-app-guid-the-app-version","droplet_uri":"http://the-droplet.uri.com","stack":"some-stack","start_command":"the-start-command with-arguments","execution_metadata":"the-execution-metadata","environment":[{"name":"foo","value":"bar"}],"memory_mb":128,"disk_mb":512,"file_descriptors":32,"num_instances":23,"routes":["route1","route2"],"log_guid":"the-log-id","health_check_type":"port","health_check_timeout_in_seconds":123456,"etag":"etag-updated-at"}';
    const app = decodeLegacyJson<Record<string, unknown>>(`${CC}.DesireAppRequestFromCC`, json);
    assert.equal(app.processGuid, 'the-app-guid-the-app-version');
    assert.equal(app.fileDescriptors, '32', 'uint64 reads as a decimal string');
    assert.equal(app.numInstances, 23);
    assert.deepEqual(app.routes, ['route1', 'route2']);
    assert.equal(app.healthCheckTimeoutInSeconds, 123456);
    assert.equal(app.dockerImage, '');
    assert.equal(app.allowSsh, false);
  });
});

describe('legacy JSON: Go semantics', () => {
  test('HTML-sensitive characters are escaped as Go escapes them', () => {
    assert.equal(quote('<a href="x">&</a>\u2028'), '"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e\\u2028"');
  });

  test('map keys are written sorted', () => {
    const json = encodeLegacyJson(`${CC}.StagingResponseForCC`, { executionMetadata: '', detectedStartCommand: { web: 'b', api: 'a' } });
    assert.equal(json, '{"execution_metadata":"","detected_start_command":{"api":"a","web":"b"}}');
  });

  test('a response body field is never null: an empty map is {} and an empty list []', () => {
    assert.equal(encodeLegacyJsonField('cloudfoundry.ccbridge.tps.v1.BulkLrpStatusResponse', 'statuses', { statuses: {} }), '{}');
    assert.equal(encodeLegacyJsonField('cloudfoundry.ccbridge.tps.v1.GetLrpStatusResponse', 'instances', { instances: [] }), '[]');
  });

  test('int64 beyond 2^53 is written exactly, from a string or a bigint', () => {
    const type = `${CC}.AppCrashedRequest`;
    assert.match(encodeLegacyJson(type, { crashTimestamp: '1700000000123456789' }), /"crash_timestamp":1700000000123456789}/);
    assert.match(encodeLegacyJson(type, { crashTimestamp: 1700000000123456789n }), /"crash_timestamp":1700000000123456789}/);
  });

  test('null body reads as the zero message; null values leave zeros', () => {
    assert.deepEqual(decodeLegacyJson(`${CC}.CCDesiredAppFingerprint`, 'null'), { processGuid: '', etag: '' });
    assert.deepEqual(decodeLegacyJson(`${CC}.CCDesiredAppFingerprint`, '{"etag":null,"process_guid":"p"}'), { processGuid: 'p', etag: '' });
  });

  const bad = [
    { name: 'not JSON', json: 'bad-json' },
    { name: 'string for an integer', json: '{"memory_mb":"abc"}' },
    { name: 'fraction for an integer', json: '{"memory_mb":1.5}' },
    { name: 'out of int32 range', json: '{"memory_mb":4294967296}' },
    { name: 'number for a string', json: '{"app_id":5}' },
    { name: 'object for a list', json: '{"environment":{}}' },
    { name: 'string for a bool in a nested message', json: '{"egress_rules":[{"log":"yes"}]}' },
    { name: 'array for the body', json: '[]' },
  ];
  for (const { name, json } of bad) {
    test(`rejects ${name} with a LegacyJsonError`, () => {
      assert.throws(() => decodeLegacyJson(`${CC}.StagingRequestFromCC`, json), LegacyJsonError);
    });
  }

  test('negative values are refused for unsigned fields', () => {
    assert.throws(() => decodeLegacyJson(`${CC}.DesireAppRequestFromCC`, '{"file_descriptors":-1}'), LegacyJsonError);
  });
});
