// How TPS tells CC about instances: pure mappings from Diego's actual LRPs (and container
// metrics) to CC's LRPInstance, as the 2015 TPS listener did, with today's DOWN state.
import { LRPInstanceState, type LRPInstance, type LRPInstanceStats } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { ActualLRP_Presence, type ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';

/** The port the app listens on inside its container; stats report the host port mapped to it. */
export const APP_CONTAINER_PORT = 8080;

const NS_PER_SECOND = 1_000_000_000n;

/** CC's view of an instance's state. */
export function instanceStateFor(actual: Pick<ActualLRP, 'state' | 'placementError'>): LRPInstanceState {
  switch (actual.state) {
    case 'UNCLAIMED':
    case 'CLAIMED':
      return actual.placementError ? LRPInstanceState.LRP_INSTANCE_STATE_DOWN : LRPInstanceState.LRP_INSTANCE_STATE_STARTING;
    case 'RUNNING':
      return LRPInstanceState.LRP_INSTANCE_STATE_RUNNING;
    case 'CRASHED':
      return LRPInstanceState.LRP_INSTANCE_STATE_CRASHED;
    default:
      return LRPInstanceState.LRP_INSTANCE_STATE_UNKNOWN;
  }
}

/**
 * One instance per index: an evacuating copy stands in only when its index has no ordinary
 * record (it is still serving while the replacement starts). Sorted by index.
 */
export function onePerIndex(actuals: readonly ActualLRP[]): ActualLRP[] {
  const byIndex = new Map<number, ActualLRP>();
  for (const actual of actuals) {
    const index = actual.actualLrpKey?.index ?? 0;
    const held = byIndex.get(index);
    if (!held || (held.presence !== ActualLRP_Presence.PRESENCE_ORDINARY && actual.presence === ActualLRP_Presence.PRESENCE_ORDINARY)) {
      byIndex.set(index, actual);
    }
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, actual]) => actual);
}

/** The instance as the status routes write it: no host, port or stats. `nowNs` is the clock. */
export function lrpInstanceFor(actual: ActualLRP, nowNs: bigint): LRPInstance {
  const sinceNs = BigInt(actual.since || '0');
  const uptimeNs = nowNs > sinceNs ? nowNs - sinceNs : 0n;
  return {
    processGuid: actual.actualLrpKey?.processGuid ?? '',
    instanceGuid: actual.actualLrpInstanceKey?.instanceGuid ?? '',
    index: actual.actualLrpKey?.index ?? 0,
    state: instanceStateFor(actual),
    details: actual.placementError || actual.crashReason,
    host: '',
    port: 0,
    uptime: (uptimeNs / NS_PER_SECOND).toString(),
    since: (sinceNs / NS_PER_SECOND).toString(),
    stats: undefined,
  };
}

/** The instances of one process for the status routes. */
export function lrpInstancesFor(actuals: readonly ActualLRP[], nowNs: bigint): LRPInstance[] {
  return onePerIndex(actuals).map((actual) => lrpInstanceFor(actual, nowNs));
}

/** Container metrics of one instance, as read from the metrics source. */
export interface InstanceMetrics {
  index: number;
  /** CPU as a percentage (4.0 is 4 %), as log-cache and the old traffic controller report it. */
  cpuPercentage: number;
  memoryBytes: bigint;
  diskBytes: bigint;
}

/**
 * The instances for the stats route: the status fields plus host, the host port mapped to the
 * app port, and stats when a metric for the same index exists (the last one wins).
 */
export function lrpInstancesWithStats(actuals: readonly ActualLRP[], metrics: readonly InstanceMetrics[], nowNs: bigint, now: Date): LRPInstance[] {
  const byIndex = new Map<number, InstanceMetrics>();
  for (const metric of metrics) byIndex.set(metric.index, metric);
  return onePerIndex(actuals).map((actual) => {
    const instance = lrpInstanceFor(actual, nowNs);
    const net = actual.actualLrpNetInfo;
    instance.host = net?.address ?? '';
    instance.port = net?.ports.find((p) => p.containerPort === APP_CONTAINER_PORT)?.hostPort ?? 0;
    const metric = byIndex.get(instance.index);
    if (metric) instance.stats = statsFor(metric, now);
    return instance;
  });
}

function statsFor(metric: InstanceMetrics, now: Date): LRPInstanceStats {
  return { time: now, cpu: metric.cpuPercentage / 100, mem: metric.memoryBytes.toString(), disk: metric.diskBytes.toString() };
}

/** The 2015 rule for the bulk route's guid list: comma-separated, no empty element. */
export const BULK_GUIDS_PATTERN = /^([a-zA-Z0-9_-]+,)*[a-zA-Z0-9_-]+$/;
