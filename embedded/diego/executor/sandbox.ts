// One bubblewrap sandbox process, seen from the executor.
//
// bwrap started with --unshare-pid is three processes on the host: the outer bwrap (our child,
// in the host's namespaces), its child, which is pid 1 of the new pid namespace (bwrap's small
// init; --info-fd reports its host pid), and the command, pid 2 inside. bwrap forwards no
// signals, so the executor signals the command itself, by its host pid; and it ends a sandbox by
// SIGKILLing the namespace's init, which makes the kernel kill every process in the namespace, so
// nothing the command started (daemons included) survives it. The outer bwrap then reaps its
// child and exits with the command's status (128+N when a signal ended it, as a shell reports).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, isLiveChildOf, processTree } from './proc.js';

export interface ProcessExit {
  exitStatus: number;
}

export interface SandboxTimings {
  /** How long to look for the command's pid after bwrap reported its init (it forks at once). */
  locateTimeoutMs: number;
  locatePollMs: number;
  /** Bound on waiting for output pipes to close once the sandbox's process has exited. */
  drainTimeoutMs: number;
}

export const DEFAULT_SANDBOX_TIMINGS: SandboxTimings = { locateTimeoutMs: 2000, locatePollMs: 2, drainTimeoutMs: 2000 };

/** The file descriptor on which bwrap writes {"child-pid": N, ...} (set with --info-fd). */
export const INFO_FD = 3;

const MAX_INFO_BYTES = 4096;

export interface SandboxProcess {
  readonly child: ChildProcess;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  /** Resolves once the process has exited and its output pipes are closed. */
  readonly exited: Promise<ProcessExit>;
  /** Host pid of the sandbox's init (pid 1 inside), once bwrap has reported it. */
  readonly init: Promise<number | undefined>;
  readonly done: boolean;
  /** Delivers a signal to the command inside (pid 2 of the sandbox), not to bwrap. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** SIGKILL for the whole pid namespace. */
  kill(): void;
  /** Host pids of the sandbox's processes (bwrap's included), for memory and CPU figures. */
  pids(): number[];
}

export interface SpawnSandboxOptions {
  env: NodeJS.ProcessEnv;
  stdin: 'ignore' | number;
  stdout: 'pipe' | 'ignore' | number;
  stderr: 'pipe' | 'ignore';
  timings: SandboxTimings;
  /** Told about failures to spawn at all (which never happen with resolved tool paths). */
  onSpawnError?: (error: Error) => void;
  /** A user namespace for `bwrap --userns USERNS_FD`, handed to the child as that descriptor. */
  userNamespaceFd?: number;
}

/** The descriptor a sandbox that joins an existing user namespace finds it on. */
export const USERNS_FD = 4;

/**
 * Starts argv, whose last stage must be bwrap with `--unshare-pid --info-fd 3`; the stages
 * before it (nsenter, prlimit, setpriv) exec into each other, so bwrap stays our direct child and
 * its --die-with-parent watches this process.
 */
export function spawnSandbox(argv: string[], options: SpawnSandboxOptions): SandboxProcess {
  const stdio: StdioOptions = [options.stdin, options.stdout, options.stderr, 'pipe', ...(options.userNamespaceFd === undefined ? [] : [options.userNamespaceFd])];
  const child = spawn(argv[0]!, argv.slice(1), { stdio, env: options.env });
  const outerPid = child.pid;
  let initPid: number | undefined;
  let mainPid: number | undefined;
  let done = false;

  const info = child.stdio[INFO_FD] as Readable | null;
  const initKnown = new Promise<number | undefined>((resolve) => {
    if (info === null) return resolve(undefined);
    let text = '';
    info.on('data', (chunk: Buffer) => {
      if (text.length < MAX_INFO_BYTES) text += chunk.toString('utf8');
    });
    info.on('error', () => resolve(undefined));
    info.on('close', () => {
      try {
        const pid = (JSON.parse(text) as { 'child-pid'?: unknown })['child-pid'];
        initPid = typeof pid === 'number' ? pid : undefined;
      } catch {
        initPid = undefined;
      }
      resolve(initPid);
    });
  });

  const exited = new Promise<ProcessExit>((resolve) => {
    let status: number | undefined;
    const finish = () => {
      done = true;
      resolve({ exitStatus: status ?? 1 });
    };
    child.on('error', (error) => {
      options.onSpawnError?.(error);
      if (outerPid === undefined) {
        status = 127;
        finish();
      }
    });
    child.on('exit', (code, signal) => {
      status = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
      // A process that handed its output to something outside the namespace cannot exist (the
      // namespace died with its init), but the wait for the pipes stays bounded regardless.
      const timer = setTimeout(() => {
        for (const stream of child.stdio) stream?.destroy();
      }, options.timings.drainTimeoutMs);
      child.once('close', () => clearTimeout(timer));
    });
    child.on('close', finish);
  });

  const locateMain = async (): Promise<number | undefined> => {
    if (mainPid !== undefined) return mainPid;
    const init = await initKnown;
    if (init === undefined || outerPid === undefined) return undefined;
    const deadline = Date.now() + options.timings.locateTimeoutMs;
    while (!done && Date.now() < deadline) {
      // bwrap's init forks the command first; later children are orphans it adopted.
      const first = childPids(init).sort((a, b) => a - b)[0];
      if (first !== undefined) {
        mainPid = first;
        return first;
      }
      await sleep(options.timings.locatePollMs);
    }
    return undefined;
  };

  const kill = () => {
    if (done || outerPid === undefined) return;
    const target = initPid !== undefined && isLiveChildOf(initPid, outerPid) ? initPid : outerPid;
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  return {
    child,
    stdout: child.stdout,
    stderr: child.stderr,
    exited,
    init: initKnown,
    get done() {
      return done;
    },
    async signal(signal) {
      if (signal === 'SIGKILL') return kill();
      const main = await locateMain();
      if (main === undefined || done || initPid === undefined || !isLiveChildOf(main, initPid)) {
        // No command to signal (it has not started, or has exited and init is tearing down).
        if (!done && main === undefined) kill();
        return;
      }
      try {
        process.kill(main, signal);
      } catch {
        // exited in between
      }
    },
    kill,
    pids() {
      return done || outerPid === undefined ? [] : processTree(outerPid);
    },
  };
}

/** Waits for exit at most `ms`; true when the process exited in time. */
export async function exitsWithin(process: SandboxProcess, ms: number): Promise<boolean> {
  if (process.done) return true;
  const timer = new AbortController();
  const outcome = await Promise.race([
    process.exited.then(() => true),
    sleep(ms, false, { signal: timer.signal }).catch(() => false),
  ]);
  timer.abort();
  return outcome;
}
