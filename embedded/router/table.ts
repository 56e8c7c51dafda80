// The routing table: which instances serve which hostname. It holds the two halves the BBS
// reports separately — each desired LRP's `cf-router` routes (hostnames → container port) and
// each actual LRP that can take traffic — and joins them at lookup time, so an instance that
// starts before its desired LRP is known, or a route change, needs no re-indexing of instances.
//
// Only the `cf-router` key of a desired LRP's routes is ever read: the other keys (`diego-ssh`
// carries the container's SSH host key) are neither parsed, kept nor logged.
//
// Hostnames are matched case-insensitively, without a trailing dot. Besides every hostname in the
// routes, each route's first label under the default domain is an alias (`myapp.example.com` is
// also `myapp.localhost`), so apps routed under a production domain are reachable on one machine
// where `*.localhost` resolves to loopback. An exact hostname always wins over an alias; routes
// that share a hostname (several apps on one route, as in a blue-green deploy) share its pool.
import { isIP } from 'node:net';
import {
  ActualLRP_Presence,
  ActualLRPNetInfo_PreferredAddress,
  type ActualLRP,
  type ActualLRPInstanceKey,
  type ActualLRPKey,
  type ActualLRPNetInfo,
} from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { ProtoRoutes } from '../../gen/diego/bbs/v1/desired_lrp.js';
import type { ActualLRPInfo } from '../../gen/diego/bbs/v1/events.js';

export const CF_ROUTER_KEY = 'cf-router';
const RUNNING = 'RUNNING';

/** One entry of a `cf-router` document. */
export interface HttpRoute {
  /** Lower-cased, without a trailing dot. */
  hostnames: string[];
  /** The container port the hostnames reach. */
  port: number;
}

/** An instance that can take traffic, with the addresses routers may use. */
export interface RoutableInstance {
  index: number;
  instanceGuid: string;
  presence: ActualLRP_Presence;
  netInfo: ActualLRPNetInfo;
}

/** Where one request may go. */
export interface RouteEndpoint {
  processGuid: string;
  index: number;
  instanceGuid: string;
  /** The address dialled: the cell's address, or the instance's when it prefers that. */
  address: string;
  port: number;
}

/** Hostname → the endpoints serving it now; a hostname with no endpoint is a known route with no instance up. */
export type RouteTableSnapshot = Record<string, RouteEndpoint[]>;

/** Why a `cf-router` document was not used; never carries the document itself. */
export class InvalidRoutesError extends Error {
  override name = 'InvalidRoutesError';
}

/** Lower case, no trailing dot, no port: how hostnames are compared. */
export function normalizeHostname(hostname: string): string {
  return hostname.trim().toLowerCase().replace(/\.+$/, '');
}

/**
 * The host a request names, from its Host header: port stripped (IPv6 literals keep their
 * brackets out), normalized. Empty when there is none.
 */
export function hostFromHeader(header: string | undefined): string {
  if (header === undefined) return '';
  const value = header.trim();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return end === -1 ? normalizeHostname(value) : normalizeHostname(value.slice(1, end));
  }
  const colon = value.lastIndexOf(':');
  return normalizeHostname(colon === -1 ? value : value.slice(0, colon));
}

/**
 * The HTTP routes of a desired LRP (its `cf-router` key), or [] when it has none. Entries
 * without hostnames or with a port that is not one are skipped; a document that is not JSON
 * throws, without quoting it.
 */
export function httpRoutesOf(routes: ProtoRoutes | undefined): HttpRoute[] {
  const bytes = routes?.routes[CF_ROUTER_KEY];
  if (bytes === undefined || bytes.length === 0) return [];
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidRoutesError(`the ${CF_ROUTER_KEY} routes are not JSON`);
  }
  if (document === null) return [];
  if (!Array.isArray(document)) throw new InvalidRoutesError(`the ${CF_ROUTER_KEY} routes are not a list`);
  const parsed: HttpRoute[] = [];
  for (const entry of document as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { hostnames, port } = entry as { hostnames?: unknown; port?: unknown };
    if (!Number.isInteger(port) || (port as number) <= 0 || (port as number) > 65_535 || !Array.isArray(hostnames)) continue;
    const names = [...new Set(hostnames.filter((h): h is string => typeof h === 'string').map(normalizeHostname))].filter((h) => h !== '');
    if (names.length > 0) parsed.push({ hostnames: names, port: port as number });
  }
  return parsed;
}

/** Whether an instance in this state takes traffic: running, not marked unroutable (unset counts as routable), with an address. */
export function isRoutable(info: Pick<ActualLRPInfo, 'state' | 'routable' | 'actualLrpNetInfo'>): boolean {
  if (info.state !== RUNNING || info.routable === false) return false;
  const net = info.actualLrpNetInfo;
  return net !== undefined && (net.address !== '' || net.instanceAddress !== '');
}

/** The routable instance an actual LRP record describes, or undefined when it takes no traffic. */
export function routableInstanceOf(
  key: ActualLRPKey | undefined,
  instanceKey: ActualLRPInstanceKey | undefined,
  info: Pick<ActualLRPInfo, 'state' | 'routable' | 'actualLrpNetInfo' | 'presence'>,
): RoutableInstance | undefined {
  if (key === undefined || !isRoutable(info)) return undefined;
  return { index: key.index, instanceGuid: instanceKey?.instanceGuid ?? '', presence: info.presence, netInfo: info.actualLrpNetInfo! };
}

export function routableInstanceOfLrp(lrp: ActualLRP): RoutableInstance | undefined {
  return routableInstanceOf(lrp.actualLrpKey, lrp.actualLrpInstanceKey, lrp);
}

/**
 * Where an instance serves a container port: the cell's address and the host port mapped to it,
 * or, when the instance prefers its own address (overlay networks), that address and the
 * container port itself. Undefined when the port is not published.
 */
export function endpointAddress(netInfo: ActualLRPNetInfo, containerPort: number): { address: string; port: number } | undefined {
  const mapping = netInfo.ports.find((p) => p.containerPort === containerPort);
  if (netInfo.preferredAddress === ActualLRPNetInfo_PreferredAddress.PREFERRED_ADDRESS_INSTANCE && netInfo.instanceAddress !== '') {
    return { address: netInfo.instanceAddress, port: containerPort };
  }
  if (mapping === undefined || mapping.hostPort <= 0 || netInfo.address === '') return undefined;
  return { address: netInfo.address, port: mapping.hostPort };
}

/** Loopback addresses only: the router never dials anything that leaves the machine. */
export function isLoopbackAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 4) return bare.startsWith('127.');
  if (family === 6) {
    const lower = bare.toLowerCase();
    if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/** An instance's place in its process's map: one record per index and presence, as in the BBS. */
const instanceSlot = (index: number, presence: ActualLRP_Presence) => `${index}/${presence}`;

export interface RouteTable {
  /** Replaces everything (a full re-list). */
  replace(desired: ReadonlyMap<string, HttpRoute[]>, instances: ReadonlyMap<string, RoutableInstance[]>): void;
  /** Sets a desired LRP's routes; [] removes them. */
  setRoutes(processGuid: string, routes: HttpRoute[]): void;
  removeDesired(processGuid: string): void;
  /** Sets or clears (undefined) the instance at an index and presence. */
  setInstance(processGuid: string, index: number, presence: ActualLRP_Presence, instance: RoutableInstance | undefined): void;
  /** Clears the instance at an index, whatever its presence, when it is the one named (a crash). */
  removeInstanceByGuid(processGuid: string, index: number, instanceGuid: string): void;
  /** Undefined: no such route (404). []: a route with no instance up (503). */
  lookup(hostname: string): RouteEndpoint[] | undefined;
  /** Next round-robin position for a hostname. */
  nextTurn(hostname: string): number;
  snapshot(): RouteTableSnapshot;
  readonly stats: { hostnames: number; processes: number; instances: number };
}

export function createRouteTable(defaultDomain: string): RouteTable {
  const domain = normalizeHostname(defaultDomain);
  const routesByProcess = new Map<string, HttpRoute[]>();
  const instancesByProcess = new Map<string, Map<string, RoutableInstance>>();
  /** hostname → process guids whose routes name it exactly. */
  const exact = new Map<string, Set<string>>();
  /** `<first label>.<default domain>` → process guids, for hostnames not already under it. */
  const aliases = new Map<string, Set<string>>();
  /** Round-robin positions, pruned with the hostnames they belong to. */
  const turns = new Map<string, number>();

  const aliasOf = (hostname: string): string | undefined => {
    if (domain === '' || hostname === domain || hostname.endsWith(`.${domain}`)) return undefined;
    const label = hostname.split('.', 1)[0]!;
    return label === '' ? undefined : `${label}.${domain}`;
  };

  const link = (index: Map<string, Set<string>>, hostname: string, processGuid: string) => {
    let guids = index.get(hostname);
    if (guids === undefined) index.set(hostname, (guids = new Set()));
    guids.add(processGuid);
  };
  const unlink = (index: Map<string, Set<string>>, hostname: string, processGuid: string) => {
    const guids = index.get(hostname);
    if (guids === undefined) return;
    guids.delete(processGuid);
    if (guids.size === 0) {
      index.delete(hostname);
      if (!exact.has(hostname) && !aliases.has(hostname)) turns.delete(hostname);
    }
  };

  const indexRoutes = (processGuid: string, routes: HttpRoute[], add: boolean) => {
    for (const route of routes) {
      for (const hostname of route.hostnames) {
        const alias = aliasOf(hostname);
        if (add) {
          link(exact, hostname, processGuid);
          if (alias !== undefined) link(aliases, alias, processGuid);
        } else {
          unlink(exact, hostname, processGuid);
          if (alias !== undefined) unlink(aliases, alias, processGuid);
        }
      }
    }
  };

  const setRoutes = (processGuid: string, routes: HttpRoute[]) => {
    const previous = routesByProcess.get(processGuid);
    if (previous !== undefined) indexRoutes(processGuid, previous, false);
    if (routes.length === 0) {
      routesByProcess.delete(processGuid);
      return;
    }
    routesByProcess.set(processGuid, routes);
    indexRoutes(processGuid, routes, true);
  };

  /** The container ports a process serves `hostname` on, reached exactly or through its alias. */
  const portsFor = (processGuid: string, hostname: string, viaAlias: boolean): number[] => {
    const ports: number[] = [];
    for (const route of routesByProcess.get(processGuid) ?? []) {
      const matches = viaAlias ? route.hostnames.some((h) => aliasOf(h) === hostname) : route.hostnames.includes(hostname);
      if (matches && !ports.includes(route.port)) ports.push(route.port);
    }
    return ports;
  };

  const endpointsOf = (hostname: string, guids: Set<string>, viaAlias: boolean): RouteEndpoint[] => {
    const endpoints: RouteEndpoint[] = [];
    // Sorted, so round robin visits instances in a stable order whatever the arrival order.
    for (const processGuid of [...guids].sort()) {
      const instances = instancesByProcess.get(processGuid);
      if (instances === undefined) continue;
      const ports = portsFor(processGuid, hostname, viaAlias);
      const ordered = [...instances.values()].sort((a, b) => a.index - b.index || a.presence - b.presence);
      for (const instance of ordered) {
        for (const containerPort of ports) {
          const target = endpointAddress(instance.netInfo, containerPort);
          if (target !== undefined) endpoints.push({ processGuid, index: instance.index, instanceGuid: instance.instanceGuid, ...target });
        }
      }
    }
    return endpoints;
  };

  const lookup = (hostname: string): RouteEndpoint[] | undefined => {
    const direct = exact.get(hostname);
    if (direct !== undefined) return endpointsOf(hostname, direct, false);
    const aliased = aliases.get(hostname);
    if (aliased !== undefined) return endpointsOf(hostname, aliased, true);
    return undefined;
  };

  const table: RouteTable = {
    replace(desired, instances) {
      routesByProcess.clear();
      instancesByProcess.clear();
      exact.clear();
      aliases.clear();
      for (const [processGuid, routes] of desired) setRoutes(processGuid, routes);
      for (const [processGuid, list] of instances) {
        for (const instance of list) table.setInstance(processGuid, instance.index, instance.presence, instance);
      }
      for (const hostname of [...turns.keys()]) if (!exact.has(hostname) && !aliases.has(hostname)) turns.delete(hostname);
    },
    setRoutes,
    removeDesired(processGuid) {
      setRoutes(processGuid, []);
    },
    setInstance(processGuid, index, presence, instance) {
      const slot = instanceSlot(index, presence);
      let instances = instancesByProcess.get(processGuid);
      if (instance === undefined) {
        if (instances === undefined) return;
        instances.delete(slot);
        if (instances.size === 0) instancesByProcess.delete(processGuid);
        return;
      }
      if (instances === undefined) instancesByProcess.set(processGuid, (instances = new Map()));
      instances.set(slot, instance);
    },
    removeInstanceByGuid(processGuid, index, instanceGuid) {
      const instances = instancesByProcess.get(processGuid);
      if (instances === undefined) return;
      for (const [slot, instance] of instances) {
        if (instance.index === index && (instanceGuid === '' || instance.instanceGuid === instanceGuid)) instances.delete(slot);
      }
      if (instances.size === 0) instancesByProcess.delete(processGuid);
    },
    lookup,
    nextTurn(hostname) {
      const turn = turns.get(hostname) ?? 0;
      // Wraps well before losing integer precision.
      turns.set(hostname, (turn + 1) % 1_000_000_000);
      return turn;
    },
    snapshot() {
      const snapshot: RouteTableSnapshot = {};
      for (const hostname of [...new Set([...exact.keys(), ...aliases.keys()])].sort()) snapshot[hostname] = lookup(hostname) ?? [];
      return snapshot;
    },
    get stats() {
      let count = 0;
      for (const instances of instancesByProcess.values()) count += instances.size;
      return { hostnames: exact.size + aliases.size, processes: routesByProcess.size, instances: count };
    },
  };
  return table;
}
