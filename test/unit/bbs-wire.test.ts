// Wire compatibility of the generated BBS models: bytes are written by hand, field number by
// field number, the way the BBS (Go, gogoproto) writes them, and the generated ts-proto code
// must decode them to the expected values and encode them back to the same bytes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import { ActualLRP, ActualLRPNetInfo_PreferredAddress, ActualLRP_Presence } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { HTTPCheck } from '../../gen/diego/bbs/v1/check_definition.js';
import { LogRateLimit, MetricTagValue_DynamicValue } from '../../gen/diego/bbs/v1/container.js';
import { DesiredLRP, DesiredLRPRunInfo, DesiredLRP_UpdateStrategy } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { SecurityGroupRule } from '../../gen/diego/bbs/v1/security_group.js';
import { Task, Task_State } from '../../gen/diego/bbs/v1/task.js';

// ---- A tiny protobuf writer, independent of the generated code --------------------------

type Bytes = number[];

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** Base-128 varint; negative int32/int64 values take ten bytes (two's complement), as in Go. */
function varint(value: bigint): Bytes {
  let v = BigInt.asUintN(64, value);
  const out: Bytes = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

const key = (field: number, wireType: number): Bytes => varint(BigInt((field << 3) | wireType));
/** A varint field: int32, int64, uint32, uint64, bool or enum. */
const int = (field: number, value: number | bigint | boolean): Bytes => [...key(field, WIRE_VARINT), ...varint(BigInt(value))];
/** A length-delimited field. */
const len = (field: number, payload: Bytes): Bytes => [...key(field, WIRE_LEN), ...varint(BigInt(payload.length)), ...payload];
const str = (field: number, value: string): Bytes => len(field, [...Buffer.from(value, 'utf8')]);
/** An embedded message made of the given fields. */
const msg = (field: number, ...fields: Bytes[]): Bytes => len(field, fields.flat());
/** A packed repeated varint field. */
const packed = (field: number, values: number[]): Bytes => len(field, values.flatMap((v) => varint(BigInt(v))));
const bytes = (...fields: Bytes[]): Uint8Array => Uint8Array.from(fields.flat());

/** The top-level fields of an encoded message, to look at how the encoder wrote them. */
function topLevelFields(buf: Uint8Array): { field: number; wireType: number; value: bigint | Uint8Array }[] {
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = buf[pos++];
      assert.ok(byte !== undefined, 'truncated varint');
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
    }
  };
  const out: { field: number; wireType: number; value: bigint | Uint8Array }[] = [];
  while (pos < buf.length) {
    const tag = readVarint();
    const field = Number(tag >> 3n);
    const wireType = Number(tag & 7n);
    if (wireType === WIRE_VARINT) {
      out.push({ field, wireType, value: readVarint() });
    } else if (wireType === WIRE_LEN) {
      const length = Number(readVarint());
      out.push({ field, wireType, value: buf.subarray(pos, pos + length) });
      pos += length;
    } else {
      assert.fail(`unexpected wire type ${wireType} for field ${field}`);
    }
  }
  return out;
}

// ---- Checking a case ---------------------------------------------------------------------

interface Codec<T> {
  decode(input: Uint8Array): T;
  encode(message: T): { finish(): Uint8Array };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * Decodes input to want, then checks that encoding gives `canonical` (the input itself unless the
 * input uses an equivalent non-canonical form) and that those bytes decode to want again.
 */
function assertWire<T>(codec: Codec<T>, input: Uint8Array, want: T, canonical: Uint8Array = input): void {
  const got = codec.decode(input);
  assert.deepEqual(got, want);
  const encoded = codec.encode(got).finish();
  assert.equal(hex(encoded), hex(canonical));
  assert.deepEqual(codec.decode(encoded), want);
}

// ---- Task ---------------------------------------------------------------------------------

const STAGING_DEFINITION = msg(
  1,
  str(1, 'preloaded:cflinuxfs4'),
  msg(2, str(1, 'LANG'), str(2, 'en_US.UTF-8')),
  msg(
    3,
    msg(
      3,
      str(1, '/tmp/lifecycle/builder'),
      str(2, '-buildpackOrder=ruby_buildpack'),
      str(2, '-skipDetect=false'),
      msg(5, int(1, 1024)),
      str(6, 'vcap'),
    ),
  ),
  int(4, 6144),
  int(5, 1024),
  str(8, 'STG'),
  str(9, 'app-guid'),
  str(11, '/tmp/result.json'),
  str(12, 'http://127.0.0.1:8888/v1/staging/staging-guid/completed'),
  msg(14, str(1, 'tcp'), str(2, '10.0.0.0-10.255.255.255'), int(3, 443)),
  str(20, 'z1'),
  msg(26, int(1, -1n)),
  msg(27, str(1, 'source_id'), msg(2, str(1, 'app-guid'))),
);

const STAGING_DEFINITION_WANT = {
  rootFs: 'preloaded:cflinuxfs4',
  environmentVariables: [{ name: 'LANG', value: 'en_US.UTF-8' }],
  action: {
    runAction: {
      path: '/tmp/lifecycle/builder',
      args: ['-buildpackOrder=ruby_buildpack', '-skipDetect=false'],
      resourceLimits: { nofile: '1024' },
      user: 'vcap',
    },
  },
  diskMb: 6144,
  memoryMb: 1024,
  logSource: 'STG',
  logGuid: 'app-guid',
  resultFile: '/tmp/result.json',
  completionCallbackUrl: 'http://127.0.0.1:8888/v1/staging/staging-guid/completed',
  egressRules: [{ protocol: 'tcp', destinations: ['10.0.0.0-10.255.255.255'], ports: [443] }],
  placementTags: ['z1'],
  logRateLimit: { bytesPerSecond: '-1' },
  metricTags: { source_id: { static: 'app-guid' } },
};

describe('Task', () => {
  const cases = [
    {
      name: 'running staging task',
      input: bytes(
        STAGING_DEFINITION,
        str(2, 'staging-guid'),
        str(3, 'cf-app-staging'),
        int(4, 1700000000123456789n),
        int(5, 1700000001987654321n),
        int(7, 2),
        str(8, 'cell-z1-0'),
        int(12, 1),
        str(13, 'insufficient resources'),
      ),
      want: Task.fromPartial({
        taskDefinition: STAGING_DEFINITION_WANT,
        taskGuid: 'staging-guid',
        domain: 'cf-app-staging',
        createdAt: '1700000000123456789',
        updatedAt: '1700000001987654321',
        state: Task_State.STATE_RUNNING,
        cellId: 'cell-z1-0',
        rejectionCount: 1,
        rejectionReason: 'insufficient resources',
      }),
    },
    {
      name: 'failed task, completed and resolving',
      input: bytes(
        STAGING_DEFINITION,
        str(2, 'staging-guid'),
        str(3, 'cf-app-staging'),
        int(4, 1700000000123456789n),
        int(5, 1700000009000000007n),
        int(6, 1700000008999999999n),
        int(7, 4),
        str(9, '{"lifecycle_type":"buildpack"}'),
        int(10, true),
        str(11, 'APP/STG: Exited with status 222'),
      ),
      want: Task.fromPartial({
        taskDefinition: STAGING_DEFINITION_WANT,
        taskGuid: 'staging-guid',
        domain: 'cf-app-staging',
        createdAt: '1700000000123456789',
        updatedAt: '1700000009000000007',
        firstCompletedAt: '1700000008999999999',
        state: Task_State.STATE_RESOLVING,
        result: '{"lifecycle_type":"buildpack"}',
        failed: true,
        failureReason: 'APP/STG: Exited with status 222',
      }),
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assertWire(Task, input, want));
  }
});

// ---- DesiredLRP ---------------------------------------------------------------------------

const CF_ROUTER = '[{"hostnames":["dora.example.com"],"port":8080,"route_service_url":null}]';
const DIEGO_SSH = '{"container_port":2222,"private_key":"-----BEGIN RSA PRIVATE KEY-----"}';

/** A desired LRP whose ports (field 14) are written as given. */
function desiredLrpBytes(ports: Bytes[]): Uint8Array {
  return bytes(
    str(1, 'app-guid-version-guid'),
    str(2, 'cf-apps'),
    str(3, 'preloaded:cflinuxfs4'),
    int(4, 2),
    msg(5, str(1, 'VCAP_APPLICATION'), str(2, '{"name":"dora"}')),
    msg(
      6,
      msg(
        1,
        str(2, 'http://127.0.0.1:8080/v1/static/buildpack_app_lifecycle.tgz'),
        str(3, '/tmp/lifecycle'),
        str(4, 'buildpack-cflinuxfs4-lifecycle'),
        str(6, 'vcap'),
      ),
    ),
    msg(
      7,
      msg(
        9,
        msg(1, msg(3, str(1, '/tmp/lifecycle/launcher'), str(2, 'app'), str(2, 'bundle exec rackup'), str(6, 'vcap'))),
        msg(1, msg(3, str(1, '/tmp/lifecycle/diego-sshd'), str(6, 'vcap'))),
      ),
    ),
    int(10, 1024),
    int(11, 256),
    int(12, 8),
    ...ports,
    msg(
      15,
      msg(1, str(1, 'cf-router'), len(2, [...Buffer.from(CF_ROUTER)])),
      msg(1, str(1, 'diego-ssh'), len(2, [...Buffer.from(DIEGO_SSH)])),
    ),
    str(16, 'CELL'),
    str(17, 'app-guid'),
    str(19, '1700000000.5'),
    msg(20, str(1, 'icmp'), str(2, '0.0.0.0/0'), msg(5, int(1, 8), int(2, -1))),
    msg(21, str(1, 'epoch-guid'), int(2, 3)),
    int(27, 60000),
    str(28, 'isolation-a'),
    msg(
      33,
      msg(1, msg(2, int(1, 8080), int(2, 1000), str(3, '/healthz'), int(4, 30000))),
      msg(3, msg(1, int(1, 8080))),
    ),
    msg(35, str(1, 'instance_id'), msg(2, int(2, 1))),
    msg(35, str(1, 'source_id'), msg(2, str(1, 'app-guid'))),
    msg(37, int(1, 16384)),
    int(39, 1),
  );
}

const DESIRED_LRP_WANT = DesiredLRP.fromPartial({
  processGuid: 'app-guid-version-guid',
  domain: 'cf-apps',
  rootFs: 'preloaded:cflinuxfs4',
  instances: 2,
  environmentVariables: [{ name: 'VCAP_APPLICATION', value: '{"name":"dora"}' }],
  setup: {
    downloadAction: {
      from: 'http://127.0.0.1:8080/v1/static/buildpack_app_lifecycle.tgz',
      to: '/tmp/lifecycle',
      cacheKey: 'buildpack-cflinuxfs4-lifecycle',
      user: 'vcap',
    },
  },
  action: {
    codependentAction: {
      actions: [
        { runAction: { path: '/tmp/lifecycle/launcher', args: ['app', 'bundle exec rackup'], user: 'vcap' } },
        { runAction: { path: '/tmp/lifecycle/diego-sshd', user: 'vcap' } },
      ],
    },
  },
  diskMb: 1024,
  memoryMb: 256,
  cpuWeight: 8,
  ports: [8080, 2222],
  routes: { routes: { 'cf-router': Buffer.from(CF_ROUTER), 'diego-ssh': Buffer.from(DIEGO_SSH) } },
  logSource: 'CELL',
  logGuid: 'app-guid',
  annotation: '1700000000.5',
  egressRules: [{ protocol: 'icmp', destinations: ['0.0.0.0/0'], icmpInfo: { type: 8, code: -1 } }],
  modificationTag: { epoch: 'epoch-guid', index: 3 },
  startTimeoutMs: '60000',
  placementTags: ['isolation-a'],
  checkDefinition: {
    checks: [{ httpCheck: { port: 8080, requestTimeoutMs: '1000', path: '/healthz', intervalMs: '30000' } }],
    readinessChecks: [{ tcpCheck: { port: 8080 } }],
  },
  metricTags: {
    instance_id: { dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX },
    source_id: { static: 'app-guid' },
  },
  logRateLimit: { bytesPerSecond: '16384' },
  updateStrategy: DesiredLRP_UpdateStrategy.UPDATE_STRATEGY_RECREATE,
});

describe('DesiredLRP', () => {
  const unpacked = desiredLrpBytes([int(14, 8080), int(14, 2222)]);
  // Decoders must accept both encodings of a repeated scalar; the encoder writes the BBS's
  // unpacked form whichever form came in.
  const cases = [
    { name: 'ports unpacked, as the BBS writes them', input: unpacked },
    { name: 'ports packed', input: desiredLrpBytes([packed(14, [8080, 2222])]) },
    { name: 'ports split over an unpacked and a packed run', input: desiredLrpBytes([int(14, 8080), packed(14, [2222])]) },
  ];
  for (const { name, input } of cases) {
    test(name, () => assertWire(DesiredLRP, input, DESIRED_LRP_WANT, unpacked));
  }
});

// ---- ActualLRP ----------------------------------------------------------------------------

/** A running, evacuating instance whose routable field (13) is written as given. */
function actualLrpBytes(routable: Bytes[]): Uint8Array {
  return bytes(
    msg(1, str(1, 'app-guid-version-guid'), int(2, 3), str(3, 'cf-apps')),
    msg(2, str(1, 'instance-guid'), str(2, 'cell-z1-0')),
    msg(
      3,
      str(1, '10.0.16.5'),
      msg(2, int(1, 8080), int(2, 61001), int(3, 61443), int(4, 61002)),
      msg(2, int(1, 2222), int(2, 61003)),
      str(3, '10.255.7.12'),
      int(4, 1),
    ),
    int(4, 2),
    str(5, 'APP/PROC/WEB: Exited with status 137 (out of memory)'),
    str(6, 'RUNNING'),
    int(8, 1700000002000000001n),
    msg(9, str(1, 'epoch-guid'), int(2, 7)),
    int(10, 1),
    msg(11, str(1, 'dora.apps.internal')),
    msg(12, str(1, 'process_type'), str(2, 'web')),
    ...routable,
    str(14, 'z1'),
  );
}

function actualLrpWant(routable: boolean | undefined): ActualLRP {
  return ActualLRP.fromPartial({
    actualLrpKey: { processGuid: 'app-guid-version-guid', index: 3, domain: 'cf-apps' },
    actualLrpInstanceKey: { instanceGuid: 'instance-guid', cellId: 'cell-z1-0' },
    actualLrpNetInfo: {
      address: '10.0.16.5',
      ports: [
        { containerPort: 8080, hostPort: 61001, containerTlsProxyPort: 61443, hostTlsProxyPort: 61002 },
        { containerPort: 2222, hostPort: 61003 },
      ],
      instanceAddress: '10.255.7.12',
      preferredAddress: ActualLRPNetInfo_PreferredAddress.PREFERRED_ADDRESS_INSTANCE,
    },
    crashCount: 2,
    crashReason: 'APP/PROC/WEB: Exited with status 137 (out of memory)',
    state: 'RUNNING',
    since: '1700000002000000001',
    modificationTag: { epoch: 'epoch-guid', index: 7 },
    presence: ActualLRP_Presence.PRESENCE_EVACUATING,
    actualLrpInternalRoutes: [{ hostname: 'dora.apps.internal' }],
    metricTags: { process_type: 'web' },
    routable,
    availabilityZone: 'z1',
  });
}

describe('ActualLRP', () => {
  const cases = [
    // Explicit presence: false is on the wire (tag 0x68, value 0) and survives a round trip.
    { name: 'routable set to false', input: actualLrpBytes([int(13, false)]), want: actualLrpWant(false) },
    { name: 'routable set to true', input: actualLrpBytes([int(13, true)]), want: actualLrpWant(true) },
    { name: 'routable not set', input: actualLrpBytes([]), want: actualLrpWant(undefined) },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assertWire(ActualLRP, input, want));
  }

  test('routable false is written, not dropped as a default', () => {
    const encoded = ActualLRP.encode(ActualLRP.fromPartial({ routable: false })).finish();
    assert.deepEqual(topLevelFields(encoded), [{ field: 13, wireType: WIRE_VARINT, value: 0n }]);
    assert.equal(hex(ActualLRP.encode(ActualLRP.fromPartial({})).finish()), '');
  });

  test('since above 2^53 stays exact', () => {
    const since = ActualLRP.decode(actualLrpBytes([])).since;
    assert.equal(typeof since, 'string');
    assert.ok(BigInt(since) > 2n ** 53n);
    assert.equal(BigInt(since), 1700000002000000001n);
    // A JavaScript number would have rounded it.
    assert.notEqual(String(Number(since)), since);
  });
});

// ---- Actions: one of each kind ------------------------------------------------------------

const RUN_TRUE = msg(3, str(1, '/bin/true'));
const DOWNLOAD = msg(1, str(2, 'http://127.0.0.1:8080/v1/static/lifecycle.tgz'), str(3, '/tmp/lifecycle'));

describe('Action: one of each of the nine kinds', () => {
  const cases = [
    {
      name: 'download_action (1)',
      input: bytes(
        msg(
          1,
          str(1, 'app package'),
          str(2, 'http://127.0.0.1:9000/packages/p.zip'),
          str(3, '/tmp/app'),
          str(4, 'package-cache'),
          str(5, 'STG'),
          str(6, 'vcap'),
          str(7, 'sha256'),
          str(8, 'c0ffee'),
        ),
      ),
      want: Action.fromPartial({
        downloadAction: {
          artifact: 'app package',
          from: 'http://127.0.0.1:9000/packages/p.zip',
          to: '/tmp/app',
          cacheKey: 'package-cache',
          logSource: 'STG',
          user: 'vcap',
          checksumAlgorithm: 'sha256',
          checksumValue: 'c0ffee',
        },
      }),
    },
    {
      name: 'upload_action (2)',
      input: bytes(
        msg(2, str(1, 'droplet'), str(2, '/tmp/droplet'), str(3, 'http://127.0.0.1:9091/v1/droplet/app-guid'), str(4, 'STG'), str(5, 'vcap')),
      ),
      want: Action.fromPartial({
        uploadAction: {
          artifact: 'droplet',
          from: '/tmp/droplet',
          to: 'http://127.0.0.1:9091/v1/droplet/app-guid',
          logSource: 'STG',
          user: 'vcap',
        },
      }),
    },
    {
      name: 'run_action (3)',
      input: bytes(
        msg(
          3,
          str(1, '/tmp/lifecycle/launcher'),
          str(2, 'app'),
          str(2, ''),
          str(3, '/home/vcap'),
          msg(4, str(1, 'PORT'), str(2, '8080')),
          msg(5, int(1, 16384), int(2, 1024)),
          str(6, 'vcap'),
          str(7, 'APP/PROC/WEB'),
          int(8, true),
          msg(9, str(1, '/etc/cf-service-bindings/db/password'), str(2, 's3cret')),
        ),
      ),
      want: Action.fromPartial({
        runAction: {
          path: '/tmp/lifecycle/launcher',
          args: ['app', ''],
          dir: '/home/vcap',
          env: [{ name: 'PORT', value: '8080' }],
          resourceLimits: { nofile: '16384', nproc: '1024' },
          user: 'vcap',
          logSource: 'APP/PROC/WEB',
          suppressLogOutput: true,
          volumeMountedFiles: [{ path: '/etc/cf-service-bindings/db/password', content: 's3cret' }],
        },
      }),
    },
    {
      name: 'timeout_action (4)',
      input: bytes(msg(4, msg(1, RUN_TRUE), int(2, 900000000000n), str(3, 'STG'), int(4, 900000))),
      want: Action.fromPartial({
        timeoutAction: {
          action: { runAction: { path: '/bin/true' } },
          deprecatedTimeoutNs: '900000000000',
          logSource: 'STG',
          timeoutMs: '900000',
        },
      }),
    },
    {
      name: 'emit_progress_action (5)',
      input: bytes(
        msg(
          5,
          msg(1, DOWNLOAD),
          str(2, 'Downloading app package...'),
          str(3, 'Downloaded app package'),
          str(4, 'Failed to download app package'),
          str(5, 'STG'),
        ),
      ),
      want: Action.fromPartial({
        emitProgressAction: {
          action: { downloadAction: { from: 'http://127.0.0.1:8080/v1/static/lifecycle.tgz', to: '/tmp/lifecycle' } },
          startMessage: 'Downloading app package...',
          successMessage: 'Downloaded app package',
          failureMessagePrefix: 'Failed to download app package',
          logSource: 'STG',
        },
      }),
    },
    {
      name: 'try_action (6)',
      input: bytes(msg(6, msg(1, msg(3, str(1, '/bin/false'))), str(2, 'STG'))),
      want: Action.fromPartial({ tryAction: { action: { runAction: { path: '/bin/false' } }, logSource: 'STG' } }),
    },
    {
      name: 'parallel_action (7)',
      input: bytes(msg(7, msg(1, DOWNLOAD), msg(1, RUN_TRUE), str(2, 'STG'))),
      want: Action.fromPartial({
        parallelAction: {
          actions: [
            { downloadAction: { from: 'http://127.0.0.1:8080/v1/static/lifecycle.tgz', to: '/tmp/lifecycle' } },
            { runAction: { path: '/bin/true' } },
          ],
          logSource: 'STG',
        },
      }),
    },
    {
      name: 'serial_action (8)',
      input: bytes(msg(8, msg(1, DOWNLOAD), msg(1, RUN_TRUE))),
      want: Action.fromPartial({
        serialAction: {
          actions: [
            { downloadAction: { from: 'http://127.0.0.1:8080/v1/static/lifecycle.tgz', to: '/tmp/lifecycle' } },
            { runAction: { path: '/bin/true' } },
          ],
        },
      }),
    },
    {
      name: 'codependent_action (9)',
      input: bytes(msg(9, msg(1, RUN_TRUE), msg(1, msg(3, str(1, '/tmp/lifecycle/diego-sshd'))), str(2, 'CELL'))),
      want: Action.fromPartial({
        codependentAction: {
          actions: [{ runAction: { path: '/bin/true' } }, { runAction: { path: '/tmp/lifecycle/diego-sshd' } }],
          logSource: 'CELL',
        },
      }),
    },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assertWire(Action, input, want));
  }
});

// ---- 64-bit integers ----------------------------------------------------------------------

/** Decodes input with codec, returns the 64-bit field as read, and the re-encoded bytes. */
function int64Case<T>(codec: Codec<T>, read: (m: T) => string) {
  return (input: Uint8Array): { value: string; encoded: Uint8Array } => {
    const message = codec.decode(input);
    return { value: read(message), encoded: codec.encode(message).finish() };
  };
}

describe('64-bit integers stay exact as decimal strings', () => {
  const taskCreatedAt = int64Case(Task, (t) => t.createdAt);
  const cases = [
    { name: 'int64 nanoseconds (Task.created_at)', input: bytes(int(4, 1700000000123456789n)), run: taskCreatedAt, want: '1700000000123456789' },
    { name: 'int64 2^53 + 1, the first integer a double cannot hold', input: bytes(int(4, 2n ** 53n + 1n)), run: taskCreatedAt, want: '9007199254740993' },
    { name: 'int64 maximum', input: bytes(int(4, 2n ** 63n - 1n)), run: taskCreatedAt, want: '9223372036854775807' },
    { name: 'negative int64 (LogRateLimit -1, unlimited)', input: bytes(int(1, -1n)), run: int64Case(LogRateLimit, (l) => l.bytesPerSecond), want: '-1' },
    { name: 'uint64 maximum (HTTPCheck.interval_ms)', input: bytes(int(4, 2n ** 64n - 1n)), run: int64Case(HTTPCheck, (h) => h.intervalMs), want: '18446744073709551615' },
  ];
  for (const { name, input, run, want } of cases) {
    test(name, () => {
      const { value, encoded } = run(input);
      assert.equal(value, want);
      assert.equal(hex(encoded), hex(input));
    });
  }
});

// ---- [packed = false] in the generated encoder --------------------------------------------

describe('the generated encoder writes the [packed = false] fields unpacked', () => {
  const ports = [8080, 2222, 61001];
  const cases = [
    { name: 'DesiredLRP.ports (14)', field: 14, encoded: DesiredLRP.encode(DesiredLRP.fromPartial({ ports })).finish() },
    { name: 'DesiredLRPRunInfo.ports (9)', field: 9, encoded: DesiredLRPRunInfo.encode(DesiredLRPRunInfo.fromPartial({ ports })).finish() },
    { name: 'SecurityGroupRule.ports (3)', field: 3, encoded: SecurityGroupRule.encode(SecurityGroupRule.fromPartial({ ports })).finish() },
  ];
  for (const { name, field, encoded } of cases) {
    test(name, () => {
      // One varint (wire type 0) per element, never one length-delimited run (wire type 2).
      assert.deepEqual(
        topLevelFields(encoded),
        ports.map((port) => ({ field, wireType: WIRE_VARINT, value: BigInt(port) })),
      );
      assert.equal(hex(encoded), hex(bytes(...ports.map((port) => int(field, port)))));
    });
  }
});
