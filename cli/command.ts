// A command-line subcommand as a `ccbridge` subcommand: the daemons' flag parser and --help, the
// flags every command shares (where the API is, credentials, --json), the clients built from
// them, and the contract with the shell — results on stdout, every failure as one line on
// stderr with a non-zero exit, Ctrl-C ending a follow cleanly.
import type { Command } from '../lib/daemon.js';
import { bool, duration, string, type FlagSpecs, type FlagValues } from '../lib/flags.js';
import { createDevApi, type DevApi } from './api.js';
import { CliError, EXIT_INTERRUPTED, oneLine, usageError } from './errors.js';
import type { FetchLike } from './http.js';
import { createLogCacheReader, type LogCacheReader } from './log-cache.js';
import { createTerminal, type Output, type Terminal } from './terminal.js';

export const DEFAULTS = {
  api: 'http://127.0.0.1:9022',
  logCache: 'http://127.0.0.1:8889',
  routerPort: 8081,
} as const;

/** Environment variables read when the flag is not given. */
export const ENVIRONMENT = {
  api: 'CCBRIDGE_API',
  logCache: 'CCBRIDGE_LOG_CACHE',
  routerPort: 'CCBRIDGE_ROUTER_PORT',
  username: 'CCBRIDGE_USERNAME',
  password: 'CCBRIDGE_PASSWORD',
} as const;

export const globalFlags = {
  api: string(`URL of the development Cloud Controller (default: $${ENVIRONMENT.api}, else ${DEFAULTS.api})`),
  'log-cache': string(`URL of the log-cache read API, the embedded Diego's (default: $${ENVIRONMENT.logCache}, else ${DEFAULTS.logCache})`),
  'router-port': string(`port of the router, for app URLs (default: $${ENVIRONMENT.routerPort}, else ${DEFAULTS.routerPort})`),
  username: string(`basic-auth user of the API (default: $${ENVIRONMENT.username})`),
  password: string(`basic-auth password of the API (default: $${ENVIRONMENT.password})`, '', { secret: true }),
  json: bool('print the API\'s JSON, for scripts, instead of text'),
  timeout: duration('deadline of each API and log-cache call', 30_000, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
};

export type GlobalFlags = FlagValues<typeof globalFlags>;

/** What a command runs with. */
export interface CliContext<S extends FlagSpecs> {
  name: string;
  flags: GlobalFlags & FlagValues<S>;
  args: string[];
  api: DevApi;
  logCache: LogCacheReader;
  term: Terminal;
  /** `http://<route>:<router port>/` for an app's route. */
  appUrl(route: string): string;
  /** Aborted by Ctrl-C in commands that follow until then. */
  signal: AbortSignal;
  /** Whether a person can answer a question on stdin. */
  stdinInteractive: boolean;
  /** Asks a question on stdin (only when stdinInteractive). */
  ask(question: string): Promise<string>;
}

export interface CliCommandSpec<S extends FlagSpecs> {
  /** e.g. `app <name>`. */
  usage: string;
  summary: string;
  flags: S;
  /** How many positional arguments the command takes. */
  args: { min: number; max: number };
  /** Ctrl-C ends the command with success (following logs) instead of interrupting it. */
  endsOnInterrupt?: boolean;
  run(context: CliContext<S>): Promise<number | void>;
}

/** The process the command line runs in; tests of the wiring may pass their own. */
export interface CliProcess {
  stdout: Output & { isTTY?: boolean };
  stderr: Output;
  stdin: { isTTY?: boolean };
  env: Record<string, string | undefined>;
  fetch?: FetchLike;
  ask(question: string): Promise<string>;
  onInterrupt(handler: () => void): void;
  /** Ends the process once what was written is out. */
  exit(code: number): Promise<never>;
}

function checkedUrl(value: string, what: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value.replace(/\/+$/, '');
  } catch {
    // Reported below.
  }
  throw usageError(`${what}: "${value}" is not an http(s) URL`);
}

function checkedPort(value: string, what: string): number {
  if (/^\d{1,5}$/.test(value) && Number(value) > 0 && Number(value) < 65536) return Number(value);
  throw usageError(`${what}: "${value}" is not a port`);
}

/** Flag, else environment variable, else default. */
function setting(flag: string, env: Record<string, string | undefined>, name: string): string | undefined {
  if (flag !== '') return flag;
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function cliCommand<S extends FlagSpecs>(name: string, spec: CliCommandSpec<S>, host: () => CliProcess): Command {
  const flags = { ...globalFlags, ...spec.flags };
  return {
    summary: `${spec.summary} (ccbridge ${spec.usage})`,
    flags,
    async start(values, _log, rest) {
      const io = host();
      const json = (values as unknown as GlobalFlags).json;
      const term = createTerminal({ stdout: io.stdout, stderr: io.stderr, interactive: io.stdout.isTTY === true, json });
      const interrupted = new AbortController();
      io.onInterrupt(() => {
        if (spec.endsOnInterrupt) {
          interrupted.abort();
          return;
        }
        term.settle();
        io.stderr.write(`ccbridge ${name}: interrupted\n`);
        void io.exit(EXIT_INTERRUPTED);
      });
      let code: number;
      try {
        code = (await spec.run(contextFor(name, spec, values as GlobalFlags & FlagValues<S>, rest, io, term, interrupted.signal))) ?? 0;
      } catch (error) {
        term.settle();
        io.stderr.write(`ccbridge ${name}: ${oneLine(error)}\n`);
        code = error instanceof CliError ? error.exitCode : 1;
      }
      term.settle();
      return io.exit(code);
    },
  };
}

function contextFor<S extends FlagSpecs>(
  name: string,
  spec: CliCommandSpec<S>,
  flags: GlobalFlags & FlagValues<S>,
  args: string[],
  io: CliProcess,
  term: Terminal,
  signal: AbortSignal,
): CliContext<S> {
  if (args.length < spec.args.min || args.length > spec.args.max) {
    const problem = args.length < spec.args.min ? 'missing arguments' : `unexpected argument ${JSON.stringify(args[spec.args.max])}`;
    throw usageError(`${problem} (usage: ccbridge ${spec.usage}; see ccbridge ${name} --help)`);
  }
  const apiUrl = checkedUrl(setting(flags.api, io.env, ENVIRONMENT.api) ?? DEFAULTS.api, '--api');
  const logCacheUrl = checkedUrl(setting(flags['log-cache'], io.env, ENVIRONMENT.logCache) ?? DEFAULTS.logCache, '--log-cache');
  const routerPortText = setting(flags['router-port'], io.env, ENVIRONMENT.routerPort);
  const routerPort = routerPortText === undefined ? DEFAULTS.routerPort : checkedPort(routerPortText, '--router-port');
  return {
    name,
    flags,
    args,
    api: createDevApi({
      url: apiUrl,
      username: setting(flags.username, io.env, ENVIRONMENT.username) ?? '',
      password: setting(flags.password, io.env, ENVIRONMENT.password) ?? '',
      timeoutMs: flags.timeout,
      // Bits may be large; loopback uploads are quick, so a generous bound is enough.
      uploadTimeoutMs: Math.max(flags.timeout, 10 * 60_000),
      fetch: io.fetch,
    }),
    logCache: createLogCacheReader({ url: logCacheUrl, timeoutMs: flags.timeout, fetch: io.fetch }),
    term,
    appUrl: (route) => `http://${route}:${routerPort}/`,
    signal,
    stdinInteractive: io.stdin.isTTY === true,
    ask: (question) => io.ask(question),
  };
}
