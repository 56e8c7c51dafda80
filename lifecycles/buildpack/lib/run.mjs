// Running the programs a staging runs (buildpack scripts, tar, cp, git): their output is the
// staging log, so it goes straight to ours unless the caller needs to read it (detect, release).
import { spawn } from 'node:child_process';

/** @type {Set<import('node:child_process').ChildProcess>} */
const running = new Set();

/**
 * @typedef {{ code: number | null, signal: NodeJS.Signals | null, stdout: string, error?: Error }} RunResult
 * @param {string} path
 * @param {readonly string[]} args
 * @param {{ captureStdout?: boolean, quiet?: boolean, cwd?: string, env?: NodeJS.ProcessEnv }} [options]
 *   captureStdout: return stdout instead of passing it on; quiet: pass nothing on (for tools
 *   whose output only matters on failure, which is then returned as `stdout`).
 * @returns {Promise<RunResult>}
 */
export function run(path, args, options = {}) {
  const capture = options.captureStdout === true || options.quiet === true;
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(path, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: ['ignore', capture ? 'pipe' : 'inherit', options.quiet ? 'pipe' : 'inherit'],
        // Its own process group, so stopping it reaches what it started too (a buildpack's
        // compile is a shell script whose children would otherwise outlive it).
        detached: true,
      });
    } catch (error) {
      resolve({ code: null, signal: null, stdout: '', error: /** @type {Error} */ (error) });
      return;
    }
    running.add(child);
    /** @type {Buffer[]} */
    const chunks = [];
    child.stdout?.on('data', (chunk) => chunks.push(chunk));
    child.stderr?.on('data', (chunk) => chunks.push(chunk));
    /** @type {Error | undefined} */
    let spawnError;
    child.on('error', (error) => {
      spawnError = error;
    });
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(chunks).toString('utf8'), error: spawnError });
    });
  });
}

/** How Go's exec package described a failed run: `exit status 1`, `signal: killed`, or the spawn error. */
export function describeFailure(result) {
  if (result.error) return result.error.message;
  if (result.signal) return `signal: ${result.signal === 'SIGKILL' ? 'killed' : result.signal.replace(/^SIG/, '').toLowerCase()}`;
  return `exit status ${result.code}`;
}

export function succeeded(result) {
  return !result.error && result.code === 0;
}

/** Passes a termination signal on to whatever is running, so a cancelled staging stops its buildpack. */
export function stopRunning(signal) {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
  }
}
