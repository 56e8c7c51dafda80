// Starting a benchmark's server in a child process: the child prints one JSON line with what
// it serves, the parent reads it and kills the child at the end.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const children: ChildProcess[] = [];

export async function startChild<T>(script: string, args: string[] = []): Promise<{ info: T; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return { info: JSON.parse(line) as T, child };
}

export function stopChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

/** Peak resident set size of a child (Linux), from /proc: VmHWM in bytes. */
export async function peakRssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}
