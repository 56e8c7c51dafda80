// Running a daemon: typed flags checked first (a bad flag is one line on stderr and exit 2),
// --help, a logger, and ordered shutdown on SIGINT/SIGTERM (stop accepting, finish in flight,
// release locks, flush what is queued) within a grace period: each component is handed what is
// left of it, and whatever still runs when it is over is closed.
import { createLogger, type Logger } from './log.js';
import { describeFlags, FlagError, parseFlags, type FlagSpecs, type FlagValues } from './flags.js';

/** Something started that must be stopped on shutdown. */
export interface Stoppable {
  /**
   * Stops it. graceMs, when given, is how long work in flight may still take (requests, reports
   * being delivered); what is left after it is cut short. Without it, the component's own default.
   */
  stop(graceMs?: number): Promise<void>;
}

export interface Command<S extends FlagSpecs = FlagSpecs> {
  /** One line for `ccbridge --help`. */
  summary: string;
  flags: S;
  start(values: FlagValues<S>, log: Logger, rest: string[]): Promise<Stoppable>;
}

export function defineCommand<S extends FlagSpecs>(command: Command<S>): Command<S> {
  return command;
}

/** Stops components in the reverse order of their start, each with what is left of the grace period. */
export function stopAll(components: readonly Stoppable[]): Stoppable {
  return {
    async stop(graceMs?: number) {
      const deadline = graceMs === undefined ? undefined : Date.now() + graceMs;
      for (const component of [...components].reverse()) await component.stop(deadline === undefined ? undefined : Math.max(0, deadline - Date.now()));
    },
  };
}

/** The grace period when a command has no -shutdownGracePeriod flag. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/** Beyond the grace period: time for closing what is left (connections, databases) before giving up. */
const SHUTDOWN_MARGIN_MS = 5_000;

export async function runCommand(name: string, command: Command, argv: readonly string[]): Promise<void> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(command.flags, argv);
  } catch (error) {
    if (error instanceof FlagError) {
      process.stderr.write(`${label(name)}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (parsed.help) {
    process.stdout.write(`${label(name)}: ${command.summary}\n\nFlags:\n${describeFlags(command.flags)}\n`);
    return;
  }
  const level = (parsed.values as { logLevel?: string }).logLevel;
  const graceMs = (parsed.values as { shutdownGracePeriod?: number }).shutdownGracePeriod ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const log = createLogger({ name: name || 'ccbridge', level: level || undefined });
  let running: Stoppable;
  try {
    running = await command.start(parsed.values, log, parsed.rest);
  } catch (error) {
    log.error({ err: error }, 'failed-to-start');
    process.stderr.write(`${label(name)}: ${(error as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      // A second signal (Ctrl-C twice): stop waiting for work in flight.
      log.warn({ signal }, 'stopping-at-once');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, grace_ms: graceMs }, 'shutting-down');
    const bound = setTimeout(() => {
      log.error({ bound_ms: graceMs + SHUTDOWN_MARGIN_MS }, 'shutdown-took-too-long');
      process.exit(1);
    }, graceMs + SHUTDOWN_MARGIN_MS);
    bound.unref();
    running
      .stop(graceMs)
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        log.error({ err: error }, 'failed-to-stop-cleanly');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

function label(name: string): string {
  return name ? `ccbridge ${name}` : 'ccbridge';
}
