// Running a daemon: typed flags checked first (a bad flag is one line on stderr and exit 2),
// --help, a logger, and ordered shutdown on SIGINT/SIGTERM (stop accepting, finish in flight,
// release locks) with a bound on how long it may take.
import { createLogger, type Logger } from './log.js';
import { describeFlags, FlagError, parseFlags, type FlagSpecs, type FlagValues } from './flags.js';

/** Something started that must be stopped on shutdown. */
export interface Stoppable {
  stop(): Promise<void>;
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

/** Stops components in the reverse order of their start. */
export function stopAll(components: readonly Stoppable[]): Stoppable {
  return {
    async stop() {
      for (const component of [...components].reverse()) await component.stop();
    },
  };
}

const SHUTDOWN_BOUND_MS = 30_000;

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
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting-down');
    const bound = setTimeout(() => {
      log.error({ bound_ms: SHUTDOWN_BOUND_MS }, 'shutdown-took-too-long');
      process.exit(1);
    }, SHUTDOWN_BOUND_MS);
    bound.unref();
    running
      .stop()
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
