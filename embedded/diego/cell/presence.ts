// What the embedded cell tells the embedded Diego about itself, and how it reports an instance:
// pure builders, no I/O beyond reading the machine's size for the capacity defaults.
import { statfsSync } from 'node:fs';
import { hostname, totalmem } from 'node:os';
import {
  ActualLRPNetInfo_PreferredAddress,
  type ActualLRPNetInfo,
} from '../../../gen/diego/bbs/v1/actual_lrp.js';
import { CellPresence, type Provider } from '../../../gen/diego/bbs/v1/cells.js';
import type { DesiredLRP } from '../../../gen/diego/bbs/v1/desired_lrp.js';
import type { TaskDefinition } from '../../../gen/diego/bbs/v1/task.js';
import type { NetInfo } from '../executor/index.js';
import { resolveMetricTags } from '../metric-tags.js';

export interface CellCapacity {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

/** The rep's default container limit (diego-release rep: max_containers 256). */
export const DEFAULT_MAX_CONTAINERS = 256;

/** The one stack a machine offers: its own root, read-only. */
export const DEFAULT_ROOTFS_PROVIDERS: readonly string[] = ['preloaded:cflinuxfs4'];

export const defaultCellId = (): string => `cell-${hostname()}`;

/**
 * The machine's size as the cell advertises it: all of its memory, and the disk space free for
 * unprivileged writers where the cell keeps its containers (what containers can actually fill).
 */
export function machineCapacity(dataDir: string): CellCapacity {
  let diskMb = 0;
  try {
    const fs = statfsSync(dataDir);
    diskMb = Math.floor((fs.bavail * fs.bsize) / (1024 * 1024));
  } catch {
    // The directory is made by the executor right after; an unreadable file system advertises no disk.
  }
  return { memoryMb: Math.floor(totalmem() / (1024 * 1024)), diskMb, containers: DEFAULT_MAX_CONTAINERS };
}

/**
 * `preloaded:cflinuxfs4` -> { name: preloaded, properties: [cflinuxfs4] }; a bare scheme (`docker`)
 * takes any image, as the rep advertises it. Entries with the same scheme are merged.
 */
export function rootfsProvidersFrom(specs: readonly string[]): Provider[] {
  const providers = new Map<string, string[]>();
  for (const spec of specs) {
    const colon = spec.indexOf(':');
    const name = colon < 0 ? spec : spec.slice(0, colon);
    const property = colon < 0 ? '' : spec.slice(colon + 1);
    if (name === '') throw new Error(`rootfs provider "${spec}" has no scheme (expected e.g. preloaded:cflinuxfs4 or docker)`);
    const properties = providers.get(name) ?? [];
    if (property !== '' && !properties.includes(property)) properties.push(property);
    providers.set(name, properties);
  }
  return [...providers].map(([name, properties]) => ({ name, properties }));
}

export function cellPresenceFor(options: {
  cellId: string;
  capacity: CellCapacity;
  rootfsProviders: readonly string[];
  zone: string;
  placementTags: readonly string[];
  optionalPlacementTags: readonly string[];
}): CellPresence {
  return CellPresence.fromPartial({
    cellId: options.cellId,
    // The rep port is in-process; there is no rep HTTP server to name.
    repAddress: '',
    repUrl: '',
    zone: options.zone,
    capacity: { ...options.capacity },
    rootfsProviders: rootfsProvidersFrom(options.rootfsProviders),
    placementTags: [...options.placementTags],
    optionalPlacementTags: [...options.optionalPlacementTags],
  });
}

/**
 * The BBS's net info for a running instance: its ports are published on 127.0.0.1, and that is
 * the only address anything outside the container can use (the container's own address lives in
 * its network namespace), so routers are told to prefer the host address.
 */
export function actualNetInfoFor(net: NetInfo): ActualLRPNetInfo {
  return {
    address: net.address,
    ports: net.ports.map(({ containerPort, hostPort }) => ({ containerPort, hostPort, containerTlsProxyPort: 0, hostTlsProxyPort: 0 })),
    instanceAddress: '',
    preferredAddress: ActualLRPNetInfo_PreferredAddress.PREFERRED_ADDRESS_HOST,
    instanceIpv6Address: '',
  };
}

/**
 * An instance's tags for its logs and metrics: the desired LRP's metric tags resolved for this
 * instance, with process_id always the process guid, which TPS matches container metrics on.
 */
export function instanceTags(desired: DesiredLRP, index: number, instanceGuid: string): Record<string, string> {
  return { ...resolveMetricTags(desired, index, instanceGuid), process_id: desired.processGuid };
}

/** A task's tags: its static metric tags (a task has no index or instance guid to fill in). */
export function taskTags(definition: TaskDefinition): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [name, value] of Object.entries(definition.metricTags)) if (value.static !== '') tags[name] = value.static;
  return tags;
}

/**
 * Where an instance's container metrics go: its source_id tag (the BBS requires it to equal the
 * metrics guid), else the log guid TPS reads stats under.
 */
export function metricsSourceOf(desired: DesiredLRP, tags: Record<string, string>): string {
  return tags.source_id || desired.logGuid || desired.metricsGuid || desired.processGuid;
}
