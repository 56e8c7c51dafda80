// TPS mappings, table-driven: Diego actual LRPs (and metrics) → CC's LRPInstance.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LRPInstanceState } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { ActualLRP, ActualLRP_Presence } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { instanceStateFor, lrpInstancesFor, lrpInstancesWithStats, onePerIndex } from '../../services/tps/instances.js';

const S = LRPInstanceState;
const SECOND = 1_000_000_000n;
const NOW_NS = 1_700_000_100n * SECOND + 999n;

function actual(index: number, fields: Partial<ActualLRP> = {}): ActualLRP {
  return ActualLRP.fromPartial({
    actualLrpKey: { processGuid: 'p', index, domain: 'cf-apps' },
    actualLrpInstanceKey: { instanceGuid: `i${index}`, cellId: 'cell-1' },
    state: 'RUNNING',
    since: (1_700_000_000n * SECOND + 123n).toString(),
    ...fields,
  });
}

describe('instanceStateFor', () => {
  const cases = [
    { name: 'unclaimed', input: { state: 'UNCLAIMED', placementError: '' }, want: S.LRP_INSTANCE_STATE_STARTING },
    { name: 'claimed', input: { state: 'CLAIMED', placementError: '' }, want: S.LRP_INSTANCE_STATE_STARTING },
    { name: 'unclaimed with a placement error', input: { state: 'UNCLAIMED', placementError: 'insufficient resources' }, want: S.LRP_INSTANCE_STATE_DOWN },
    { name: 'claimed with a placement error', input: { state: 'CLAIMED', placementError: 'found no compatible cell' }, want: S.LRP_INSTANCE_STATE_DOWN },
    { name: 'running', input: { state: 'RUNNING', placementError: '' }, want: S.LRP_INSTANCE_STATE_RUNNING },
    { name: 'crashed', input: { state: 'CRASHED', placementError: '' }, want: S.LRP_INSTANCE_STATE_CRASHED },
    { name: 'anything else', input: { state: 'INVALID', placementError: '' }, want: S.LRP_INSTANCE_STATE_UNKNOWN },
    { name: 'empty', input: { state: '', placementError: '' }, want: S.LRP_INSTANCE_STATE_UNKNOWN },
  ];
  for (const { name, input, want } of cases) test(name, () => assert.equal(instanceStateFor(input), want));
});

describe('lrpInstancesFor', () => {
  test('fields, seconds and uptime from nanoseconds', () => {
    assert.deepEqual(lrpInstancesFor([actual(0)], NOW_NS), [
      { processGuid: 'p', instanceGuid: 'i0', index: 0, state: S.LRP_INSTANCE_STATE_RUNNING, details: '', host: '', port: 0, uptime: '100', since: '1700000000', stats: undefined },
    ]);
  });

  const cases = [
    { name: 'details carry the placement error', input: actual(0, { state: 'UNCLAIMED', placementError: 'insufficient resources' }), want: 'insufficient resources' },
    { name: 'details carry the crash reason', input: actual(0, { state: 'CRASHED', crashReason: 'Exited with status 1' }), want: 'Exited with status 1' },
    { name: 'no details when running', input: actual(0), want: '' },
  ];
  for (const { name, input, want } of cases) test(name, () => assert.equal(lrpInstancesFor([input], NOW_NS)[0]!.details, want));

  test('a since in the future gives uptime 0, not a negative number', () => {
    assert.equal(lrpInstancesFor([actual(0, { since: (NOW_NS + SECOND).toString() })], NOW_NS)[0]!.uptime, '0');
  });
});

describe('onePerIndex', () => {
  const evacuating = actual(1, { presence: ActualLRP_Presence.PRESENCE_EVACUATING, actualLrpInstanceKey: { instanceGuid: 'old', cellId: 'c0' } });
  const replacement = actual(1, { state: 'CLAIMED', actualLrpInstanceKey: { instanceGuid: 'new', cellId: 'c2' } });
  const cases = [
    { name: 'the ordinary record wins over an evacuating one (either order)', input: [evacuating, replacement, actual(0)], want: ['i0', 'new'] },
    { name: 'reverse order', input: [replacement, evacuating, actual(0)], want: ['i0', 'new'] },
    { name: 'an evacuating record stands in when its index has no other', input: [evacuating, actual(0)], want: ['i0', 'old'] },
    { name: 'sorted by index', input: [actual(2), actual(0), actual(1)], want: ['i0', 'i1', 'i2'] },
  ];
  for (const { name, input, want } of cases) {
    test(name, () => assert.deepEqual(onePerIndex(input).map((a) => a.actualLrpInstanceKey!.instanceGuid), want));
  }
});

describe('lrpInstancesWithStats', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const withNet = (index: number, ports: { containerPort: number; hostPort: number }[]) =>
    actual(index, { actualLrpNetInfo: { address: '10.0.0.5', ports: ports.map((p) => ({ ...p, containerTlsProxyPort: 0, hostTlsProxyPort: 0 })), instanceAddress: '', preferredAddress: 0, instanceIpv6Address: '' } });

  test('host, the host port of container port 8080, stats by index (last metric wins)', () => {
    const got = lrpInstancesWithStats(
      [withNet(0, [{ containerPort: 2222, hostPort: 61001 }, { containerPort: 8080, hostPort: 61000 }]), withNet(1, [{ containerPort: 2222, hostPort: 61003 }])],
      [
        { index: 0, cpuPercentage: 1, memoryBytes: 1n, diskBytes: 1n },
        { index: 0, cpuPercentage: 4, memoryBytes: 1024n, diskBytes: 2048n },
        { index: 7, cpuPercentage: 9, memoryBytes: 9n, diskBytes: 9n },
      ],
      NOW_NS,
      now,
    );
    assert.equal(got[0]!.host, '10.0.0.5');
    assert.equal(got[0]!.port, 61000);
    assert.deepEqual(got[0]!.stats, { time: now, cpu: 0.04, mem: '1024', disk: '2048' });
    assert.equal(got[1]!.port, 0, 'no mapping for 8080');
    assert.equal(got[1]!.stats, undefined, 'no metric for index 1');
  });
});
