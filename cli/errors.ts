// What the command line reports when a command cannot do its job: one line on stderr and an exit
// code. Anything else thrown is a bug and is still reported as one line, never a stack trace.

/** Exit codes: 1 for a failure, 2 for a command line that cannot be run as written. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** What a shell reports for a process ended by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = EXIT_FAILURE,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, EXIT_USAGE);

/** The development CC refused a request: its HTTP status and CC error name (CF-AppNotFound, ...). */
export class ApiError extends CliError {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly title: string,
    message: string,
  ) {
    super(message);
  }
}

/** The one line a failure is reported as: messages from servers may carry newlines. */
export function oneLine(error: unknown): string {
  const text = error instanceof CliError ? error.message : `unexpected error: ${error instanceof Error ? error.message : String(error)}`;
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
