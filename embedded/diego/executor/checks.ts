// Native health checks of a check_definition (spec/diego-today.md §1.5, §1.6). TCP checks connect
// from inside the container's network namespace (see Container.probeTcp for why not through the
// published port); HTTP checks GET the app through its published host port, which only an
// answering app can answer. Messages follow Diego's healthcheck program.
import type { Check } from '../../../gen/diego/bbs/v1/check_definition.js';
import type { Container } from './container.js';
import { deadline, httpCall } from './http.js';

export interface CheckDefaults {
  intervalMs: number;
  timeoutMs: number;
}

export interface PreparedCheck {
  /** Every how often the check runs once the instance is up. */
  intervalMs: number;
  /** undefined when healthy, else what failed. */
  run(signal: AbortSignal): Promise<string | undefined>;
}

/** The container ports checks talk to (they are published with the LRP's own ports). */
export function checkPorts(checks: Check[]): number[] {
  return checks.flatMap((check) => (check.httpCheck ? [check.httpCheck.port] : check.tcpCheck ? [check.tcpCheck.port] : []));
}

export function prepareCheck(check: Check, container: Container, defaults: CheckDefaults): PreparedCheck {
  const positive = (text: string | undefined, fallback: number) => (Number(text ?? '0') > 0 ? Number(text) : fallback);
  if (check.httpCheck) {
    const { port, path } = check.httpCheck;
    const timeoutMs = positive(check.httpCheck.requestTimeoutMs, defaults.timeoutMs);
    const target = path === '' ? '/' : path.startsWith('/') ? path : `/${path}`;
    return {
      intervalMs: positive(check.httpCheck.intervalMs, defaults.intervalMs),
      async run(signal) {
        const hostPort = container.portMappings.find((mapping) => mapping.containerPort === port)?.hostPort;
        if (hostPort === undefined) return `Failed to make HTTP request to '${target}' on port ${port}: port not published`;
        const limit = deadline(signal, timeoutMs);
        try {
          const response = await httpCall({ method: 'GET', url: `http://127.0.0.1:${hostPort}${target}`, signal: limit.signal, maxRedirects: 0 });
          response.resume();
          if (response.statusCode === 200) return undefined;
          return `Failed to make HTTP request to '${target}' on port ${port}: received status code ${response.statusCode}`;
        } catch {
          const why = limit.signal.aborted && !signal.aborted ? 'timeout when making request' : 'connection refused';
          return `Failed to make HTTP request to '${target}' on port ${port}: ${why}`;
        } finally {
          limit.clear();
        }
      },
    };
  }
  if (check.tcpCheck) {
    const { port } = check.tcpCheck;
    const timeoutMs = positive(check.tcpCheck.connectTimeoutMs, defaults.timeoutMs);
    return {
      intervalMs: positive(check.tcpCheck.intervalMs, defaults.intervalMs),
      async run() {
        const failed = await container.probeTcp(port, timeoutMs);
        return failed === undefined ? undefined : `Failed to make TCP connection to port ${port}: ${failed}`;
      },
    };
  }
  return { intervalMs: defaults.intervalMs, run: async () => 'invalid check: neither tcp_check nor http_check' };
}

/** Runs every check once; the first failure, or undefined when all pass. */
export async function runChecks(checks: PreparedCheck[], signal: AbortSignal): Promise<string | undefined> {
  const outcomes = await Promise.all(checks.map((check) => check.run(signal)));
  return outcomes.find((outcome) => outcome !== undefined);
}
