// A ccbridge daemon as a child process (bin/ccbridge.js), for tests that signal or kill it:
// its output is kept, the addresses it prints can be awaited, and its exit awaited.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CCBRIDGE = fileURLToPath(new URL('../../bin/ccbridge.js', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

export interface DaemonProcess {
  child: ChildProcess;
  readonly pid: number;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the first match of the pattern in the output (waits for it). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or the signal's name). */
  exited(): Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

export function startDaemon(args: readonly string[], env: Record<string, string> = {}): DaemonProcess {
  const child = spawn(process.execPath, [CCBRIDGE, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    get pid() {
      return child.pid!;
    },
    output: () => output,
    async waitForOutput(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`ccbridge ${args[0] ?? ''} exited before printing ${pattern}: ${output}`);
        if (Date.now() > deadline) throw new Error(`ccbridge ${args[0] ?? ''} did not print ${pattern} in time: ${output}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    exited: () => exit,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
