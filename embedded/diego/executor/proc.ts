// What the executor reads from /proc: process trees (a container's processes are the
// descendants of the sandboxes it started), their resident memory and CPU time, and listening
// sockets (how the executor knows pasta has finished wiring a network namespace). Every walk is
// bounded: a fork bomb inside a container must not stall the cell.
import { readFileSync, readdirSync } from 'node:fs';

/** Linux reports CPU times in USER_HZ, which is 100 on every architecture Node supports. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** The most processes one walk visits; beyond this a container's figures are a lower bound. */
export const MAX_WALKED_PROCESSES = 4096;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Direct children of pid, over all its threads (a child belongs to the thread that forked it). */
export function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of tasks) {
    const text = readText(`/proc/${pid}/task/${tid}/children`);
    if (text === undefined) continue;
    for (const part of text.split(' ')) {
      const child = Number(part);
      if (Number.isInteger(child) && child > 0) children.push(child);
    }
  }
  return children;
}

/** pid and every process below it, breadth first, at most `limit` of them. */
export function processTree(pid: number, limit = MAX_WALKED_PROCESSES): number[] {
  const seen = new Set<number>();
  const queue = [pid];
  for (let head = 0; head < queue.length && seen.size < limit; head += 1) {
    const next = queue[head]!;
    if (seen.has(next)) continue;
    seen.add(next);
    queue.push(...childPids(next));
  }
  return [...seen];
}

interface ProcStat {
  state: string;
  ppid: number;
  /** utime + stime + cutime + cstime: the process's CPU time and that of children it reaped. */
  cpuTicks: number;
}

export function readStat(pid: number): ProcStat | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name sits in parentheses and may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 of proc(5): state, ppid, ..., utime (14), stime, cutime, cstime (17).
  const number = (field: number) => Number(fields[field - 3] ?? 0);
  return { state: fields[0] ?? '?', ppid: number(4), cpuTicks: number(14) + number(15) + number(16) + number(17) };
}

/** True while pid is alive (not a zombie) and parent's child: guards against reused pids. */
export function isLiveChildOf(pid: number, parent: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.ppid === parent && stat.state !== 'Z';
}

/** Resident memory of a process in bytes (0 once it is gone). */
export function residentBytes(pid: number): number {
  const text = readText(`/proc/${pid}/status`);
  const match = text?.match(/^VmRSS:\s+(\d+) kB$/m);
  return match ? Number(match[1]) * 1024 : 0;
}

export interface TreeUsage {
  processes: number;
  residentBytes: number;
  cpuTicks: number;
}

/** Summed usage of the trees below the given roots. */
export function treeUsage(roots: number[], limit = MAX_WALKED_PROCESSES): TreeUsage {
  const usage: TreeUsage = { processes: 0, residentBytes: 0, cpuTicks: 0 };
  for (const root of roots) {
    for (const pid of processTree(root, limit - usage.processes)) {
      usage.processes += 1;
      usage.residentBytes += residentBytes(pid);
      usage.cpuTicks += readStat(pid)?.cpuTicks ?? 0;
    }
  }
  return usage;
}

/** "0100007F:1F90" for 127.0.0.1:8080, as /proc/net/tcp writes local addresses. */
function procNetAddress(ipv4: string, port: number): string {
  const hexIp = ipv4
    .split('.')
    .reverse()
    .map((octet) => Number(octet).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  return `${hexIp}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

const TCP_LISTEN = '0A';

/**
 * Ports among `ports` with a listening IPv4 socket on `ipv4` in the network namespace whose
 * /proc/<pid>/net/tcp this is ('self' for the executor's own).
 */
export function listeningPorts(pid: number | 'self', ipv4: string, ports: number[]): Set<number> {
  const text = readText(`/proc/${pid}/net/tcp`) ?? '';
  const wanted = new Map(ports.map((port) => [procNetAddress(ipv4, port), port]));
  const found = new Set<number>();
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const port = wanted.get(fields[1] ?? '');
    if (port !== undefined && fields[3] === TCP_LISTEN) found.add(port);
  }
  return found;
}
