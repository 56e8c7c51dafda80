// SSH access to app instances for the command line: what Cloud Foundry's ssh-proxy finds out
// before it logs into an instance's diego-sshd, read from the BBS the same way — the instance's
// address and the host port of container port 2222 from its actual LRP, the user key and the host
// key fingerprint from the desired LRP's `diego-ssh` route. A development stand-in for the proxy:
// the development CC hands these to its authenticated API client, which logs in directly.
//
// The route holds a private key: nothing here logs it or puts it in an error message.
import type { Action } from '../../gen/diego/bbs/v1/actions.js';
import { ActualLRP_Presence, type ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { CcApiError } from './controller.js';

/** The container port of diego-sshd and the routing key of its route (ccbridge-2015 §4.3). */
export const SSH_CONTAINER_PORT = 2222;
const DIEGO_SSH_ROUTE = 'diego-ssh';
const RUNNING = 'RUNNING';

/** The BBS reads SSH access needs (a BbsClient has them). */
export interface SshLookup {
  desiredLrpByProcessGuid(processGuid: string): Promise<DesiredLRP>;
  actualLrpsByProcessGuids(processGuids: readonly string[]): Promise<ActualLRP[]>;
}

export interface SshAccess {
  processGuid: string;
  index: number;
  instanceGuid: string;
  host: string;
  port: number;
  /** The user diego-sshd runs as: the one it lets in. */
  user: string;
  /** A secret. */
  privateKey: string;
  /** MD5 (or SHA-1) of the host key, colon-separated hex, as the route carries it. */
  hostFingerprint: string;
}

const unprocessable = (message: string) => new CcApiError(422, 'CF-UnprocessableEntity', message, 10008);

/** Host ports of container port 2222 by instance guid, for the running instances of a process. */
export async function sshPortsOf(lookup: SshLookup, processGuid: string): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  for (const lrp of await lookup.actualLrpsByProcessGuids([processGuid])) {
    const guid = lrp.actualLrpInstanceKey?.instanceGuid;
    const port = sshHostPort(lrp);
    if (guid && port !== undefined && lrp.state === RUNNING) ports.set(guid, port);
  }
  return ports;
}

function sshHostPort(lrp: ActualLRP): number | undefined {
  return lrp.actualLrpNetInfo?.ports.find((mapping) => mapping.containerPort === SSH_CONTAINER_PORT)?.hostPort || undefined;
}

/** Everything a client needs to log into instance `index` of a process. */
export async function sshAccessFor(lookup: SshLookup, appName: string, processGuid: string, index: number): Promise<SshAccess> {
  let desired: DesiredLRP;
  try {
    desired = await lookup.desiredLrpByProcessGuid(processGuid);
  } catch (error) {
    throw unprocessable(`${appName} is not running on Diego (${lookupFailure(error)})`);
  }
  const routeBytes = desired.routes?.routes[DIEGO_SSH_ROUTE];
  if (!routeBytes) throw unprocessable(`${appName} runs without SSH; restart it after allowing SSH`);
  let route: { container_port?: unknown; host_fingerprint?: unknown; private_key?: unknown };
  try {
    route = JSON.parse(Buffer.from(routeBytes).toString('utf8')) as typeof route;
  } catch {
    throw unprocessable(`the ${DIEGO_SSH_ROUTE} route of ${appName} is not JSON`);
  }
  if (typeof route.private_key !== 'string' || route.private_key === '') throw unprocessable(`the ${DIEGO_SSH_ROUTE} route of ${appName} has no private key`);

  const lrps = (await lookup.actualLrpsByProcessGuids([processGuid])).filter((lrp) => lrp.actualLrpKey?.index === index && lrp.state === RUNNING);
  // An evacuating instance still serves until its replacement runs.
  const lrp = lrps.find((each) => each.presence === ActualLRP_Presence.PRESENCE_ORDINARY) ?? lrps[0];
  if (!lrp) throw unprocessable(`instance ${index} of ${appName} is not running`);
  const containerPort = typeof route.container_port === 'number' ? route.container_port : SSH_CONTAINER_PORT;
  const port = lrp.actualLrpNetInfo?.ports.find((mapping) => mapping.containerPort === containerPort)?.hostPort;
  const host = lrp.actualLrpNetInfo?.address;
  if (!port || !host) throw unprocessable(`instance ${index} of ${appName} publishes no SSH port`);

  return {
    processGuid,
    index,
    instanceGuid: lrp.actualLrpInstanceKey?.instanceGuid ?? '',
    host,
    port,
    user: sshdUser(desired.action) ?? 'vcap',
    privateKey: route.private_key,
    hostFingerprint: typeof route.host_fingerprint === 'string' ? route.host_fingerprint : '',
  };
}

/** The user of the diego-sshd run action: dropbear lets only the user it runs as log in. */
function sshdUser(action: Action | undefined): string | undefined {
  if (!action) return undefined;
  const run = action.runAction;
  if (run && run.path.endsWith('/diego-sshd')) return run.user && !/^\d/.test(run.user) ? run.user : undefined;
  const children = [
    ...(action.codependentAction?.actions ?? []),
    ...(action.parallelAction?.actions ?? []),
    ...(action.serialAction?.actions ?? []),
    action.timeoutAction?.action,
    action.tryAction?.action,
    action.emitProgressAction?.action,
  ];
  for (const child of children) {
    const user = sshdUser(child);
    if (user) return user;
  }
  return undefined;
}

/** A BBS error's name, without anything from the request. */
function lookupFailure(error: unknown): string {
  const message = (error as Error).message ?? String(error);
  return /not ?found|ResourceNotFound/i.test(message) ? 'no desired LRP' : message.slice(0, 200);
}
