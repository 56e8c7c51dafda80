// Helpers of the end-to-end tests, which run `ccbridge` daemons as a user does: start one as its
// own process and wait for the addresses it prints, stop it with a signal, poll for a state, speak
// the development CC's API and the router, and find the processes a daemon left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = fileURLToPath(new URL('../..', import.meta.url));

/** Ports free now, distinct from each other. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
      servers.push(server);
    }
    return servers.map((server) => (server.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

export const freePort = async (): Promise<number> => (await freePorts(1))[0]!;

export interface Daemon {
  name: string;
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr. */
  output(): string;
  /** The first http(s) URL on a printed line that starts with `label` (after leading spaces). */
  address(label: string): string;
}

/**
 * Runs `ccbridge <args>` from this checkout and waits until its output matches `ready` (its
 * addresses printed). A daemon that exits first, or stays silent for `timeoutMs`, fails with its output.
 */
export async function startDaemon(name: string, args: readonly string[], ready: RegExp, timeoutMs = 90_000): Promise<Daemon> {
  const child = spawn(process.execPath, [join(repo, 'bin/ccbridge.js'), ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const deadline = Date.now() + timeoutMs;
  while (!ready.test(output)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start: ${output}`);
    }
    await sleep(50);
  }
  return {
    name,
    child,
    output: () => output,
    address(label) {
      const found = new RegExp(`^\\s*${label}\\b.*?(https?://[0-9.:\\[\\]]+)`, 'm').exec(output);
      if (!found) throw new Error(`${name} printed no address for ${label}: ${output}`);
      return found[1]!;
    },
  };
}

/** SIGTERM (or `signal`), then its exit code (128 + n for a signal). */
export async function stopDaemon(daemon: Daemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
  const exited = new Promise<number>((resolve) => {
    const { child } = daemon;
    const code = () => child.exitCode ?? 128 + (child.signalCode === 'SIGKILL' ? 9 : 15);
    if (child.exitCode !== null || child.signalCode !== null) resolve(code());
    else child.once('exit', () => resolve(code()));
  });
  daemon.child.kill(signal);
  return exited;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it yields something other than undefined or false; errors count as not yet. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

export interface DevApp {
  guid?: string;
  state: string;
  running_instances: number;
  instances: number;
  instance_details?: { index: number; state: string }[];
}

/** The development CC's command-line API (/dev/v1) at `ccUrl`, with its basic auth credentials when it has some. */
export function devCcApi(ccUrl: () => string, credentials?: { username: string; password: string }) {
  const auth: Record<string, string> = credentials ? { Authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` } : {};
  const api = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${ccUrl()}/dev/v1${path}`, {
      method,
      headers: body instanceof Buffer ? auth : { ...auth, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : body instanceof Buffer ? body : JSON.stringify(body),
    });
  return {
    api,
    app: async (name: string): Promise<DevApp> => (await (await api('GET', `/apps/${name}`)).json()) as DevApp,
    async events(name: string): Promise<{ type: string }[]> {
      const events = (await (await api('GET', `/apps/${name}/events`)).json()) as { resources?: { type: string }[] } | { type: string }[];
      return Array.isArray(events) ? events : (events.resources ?? []);
    },
  };
}

/** GET / through the router with a Host header (fetch does not let a caller set Host). */
export function routed(routerUrl: string, host: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(routerUrl);
    request({ host: url.hostname, port: url.port, path: '/', headers: { Host: host } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    })
      .on('error', reject)
      .end();
  });
}

export interface ProcessInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

/** Every process on the machine now, with its parent and command line. */
export function processTable(): ProcessInfo[] {
  const table: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name (in parentheses) may hold spaces: the fields after its closing one.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      table.push({ pid: Number(entry), ppid, cmdline: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch {
      // Gone meanwhile.
    }
  }
  return table;
}

/** The processes below `pid`, at any depth. */
export function descendants(pid: number): ProcessInfo[] {
  const table = processTable();
  const found: ProcessInfo[] = [];
  const parents = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of table) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.push(p);
        grew = true;
      }
    }
  }
  return found;
}

/** Processes of the example app (node server.js inside a sandbox) below `pid`. */
export function appProcessesUnder(pid: number): number[] {
  return descendants(pid)
    .filter((p) => p.cmdline.includes('server.js') && !p.cmdline.includes('bwrap'))
    .map((p) => p.pid);
}

/** Processes whose command line mentions `path` (a test's data directory), as `pid: cmdline`. */
export function processesMentioning(path: string): string[] {
  return processTable()
    .filter((p) => p.pid !== process.pid && p.cmdline.includes(path))
    .map((p) => `${p.pid}: ${p.cmdline.slice(0, 160)}`);
}

/** Of these processes seen earlier, those still alive as the same program (a reused pid is not). */
export function stillAlive(seen: readonly ProcessInfo[]): string[] {
  const now = new Map(processTable().map((p) => [p.pid, p.cmdline]));
  // An empty command line is a zombie waiting to be reaped or a kernel thread on a reused pid: no
  // program runs there.
  return seen.filter((p) => p.cmdline !== '' && now.get(p.pid) === p.cmdline).map((p) => `${p.pid}: ${p.cmdline.slice(0, 160)}`);
}
