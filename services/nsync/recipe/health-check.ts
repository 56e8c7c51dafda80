// How a cell decides an instance is up. CC's health_check_type picks the check: `port` (and
// `""`, CC's unspecified, which meant port in 2015) and `http` check the app's port; `none` and
// anything else (today's `process`) check nothing but the process itself.
//
// Both forms are sent, the 2015 `monitor` action and today's declarative `check_definition`,
// as today's Cloud Controller does: a cell with declarative health checks runs the
// check_definition natively and ignores the monitor, and a cell without them (older reps, or
// declarative checks switched off) polls the monitor. One LRP then runs on either kind of cell.
//
// The monitor is the 2015 one exactly: the lifecycle's healthcheck binary in a 30 s timeout,
// nofile 1024, log source HEALTH. `http` adds the endpoint as `-uri`, as today's CC does.
//
// The check_definition carries the same check twice, as liveness and as readiness. The 2015
// request has a single health check and no readiness setting; what it checks (the app answers
// on its port or endpoint) is also the best statement available of "ready for traffic". As
// readiness it makes the instance routable only while it answers, and gives tps-watcher's
// readiness_changed a real signal; as liveness it gets the instance restarted. Timeouts and
// intervals stay 0, the cell's defaults, since CC sends none.
import type { Action } from '../../../gen/diego/bbs/v1/actions.js';
import { Check, CheckDefinition } from '../../../gen/diego/bbs/v1/check_definition.js';
import { run, timeout } from './actions.js';
import { DEFAULT_FILE_DESCRIPTOR_LIMIT, HEALTH_LOG_SOURCE, HEALTHCHECK_PATH, MONITOR_TIMEOUT_MS } from './constants.js';

export type HealthCheck = { readonly kind: 'port' } | { readonly kind: 'http'; readonly path: string } | { readonly kind: 'none' };

/** Endpoint of an `http` check whose CC record names none, as CC defaults it. */
const DEFAULT_HTTP_ENDPOINT = '/';

export function healthCheckFor(app: { readonly healthCheckType: string; readonly healthCheckHttpEndpoint: string }): HealthCheck {
  switch (app.healthCheckType) {
    case '':
    case 'port':
      return { kind: 'port' };
    case 'http':
      return { kind: 'http', path: app.healthCheckHttpEndpoint === '' ? DEFAULT_HTTP_ENDPOINT : app.healthCheckHttpEndpoint };
    default:
      return { kind: 'none' };
  }
}

/** The legacy monitor action, or undefined when nothing is checked. */
export function monitorActionFor(healthCheck: HealthCheck, port: number, user: string): Action | undefined {
  if (healthCheck.kind === 'none') return undefined;
  const args = [`-port=${port}`];
  if (healthCheck.kind === 'http') args.push(`-uri=${healthCheck.path}`);
  return timeout(
    run({
      path: HEALTHCHECK_PATH,
      args,
      resourceLimits: { nofile: String(DEFAULT_FILE_DESCRIPTOR_LIMIT) },
      user,
      logSource: HEALTH_LOG_SOURCE,
    }),
    MONITOR_TIMEOUT_MS,
  );
}

/** The declarative checks, or undefined when nothing is checked. */
export function checkDefinitionFor(healthCheck: HealthCheck, port: number): CheckDefinition | undefined {
  if (healthCheck.kind === 'none') return undefined;
  const check = () =>
    healthCheck.kind === 'http'
      ? Check.fromPartial({ httpCheck: { port, path: healthCheck.path } })
      : Check.fromPartial({ tcpCheck: { port } });
  return CheckDefinition.fromPartial({ checks: [check()], readinessChecks: [check()], logSource: HEALTH_LOG_SOURCE });
}
