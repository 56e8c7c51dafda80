// The host runtime: what lifecycle programs need to run inside a root that is not the host's (a
// docker image has no node, and often no shell worth the name). The cell assembles it once, in
// its data directory, and every container whose root is an image sees it read-only at
// HOST_RUNTIME_PATH:
//
//   bin/sh            Debian's static busybox (busybox-static): the shebang of lifecycle wrappers
//   bin/node          the node that runs the cell
//   bin/dropbear      Debian's dropbear server (dropbear-bin), and bin/dropbearkey, for diego-sshd
//   lib/              every shared library those programs load (as ldd lists them), by soname
//   lib/ld.so         the host's dynamic loader
//
// Dynamic programs run through the loader, never through their own PT_INTERP (the image's
// /lib64 may hold another libc, or nothing):
//
//   exec /tmp/ccbridge-runtime/lib/ld.so --library-path /tmp/ccbridge-runtime/lib /tmp/ccbridge-runtime/bin/node prog.mjs
//
// Files are hard links to the host's when the data directory shares their filesystem, copies
// otherwise.
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, link, mkdir, rename, rm } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Where containers with an image root find the host runtime. Lifecycle wrappers name it. */
export const HOST_RUNTIME_PATH = '/tmp/ccbridge-runtime';

export interface HostRuntimePrograms {
  /** A statically linked busybox, the runtime's shell. */
  busybox: string;
  node: string;
  /** Programs shipped with their libraries when present (dropbear and dropbearkey). */
  optional: Record<string, string>;
}

export const DEFAULT_HOST_RUNTIME_PROGRAMS: HostRuntimePrograms = {
  busybox: '/bin/busybox',
  node: process.execPath,
  optional: { dropbear: '/usr/sbin/dropbear', dropbearkey: '/usr/bin/dropbearkey' },
};

export class HostRuntimeError extends Error {
  override name = 'HostRuntimeError';
}

/** What `ldd` says a program loads: its libraries (soname → host path) and the loader. */
export function sharedObjectsOf(program: string): { libraries: Map<string, string>; loader: string | undefined } {
  let output: string;
  try {
    output = execFileSync('ldd', [program], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    // A static program: "not a dynamic executable" (glibc's ldd exits 1).
    const text = `${(error as { stdout?: string }).stdout ?? ''}${(error as { stderr?: string }).stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(text)) return { libraries: new Map(), loader: undefined };
    throw new HostRuntimeError(`ldd ${program} failed: ${text.trim() || (error as Error).message}`);
  }
  return parseLdd(output);
}

export function parseLdd(output: string): { libraries: Map<string, string>; loader: string | undefined } {
  const libraries = new Map<string, string>();
  let loader: string | undefined;
  for (const line of output.split('\n')) {
    const mapped = /^\s*(\S+)\s+=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (mapped) {
      libraries.set(mapped[1]!, mapped[2]!);
      continue;
    }
    if (/=>\s+not found/.test(line)) throw new HostRuntimeError(`a library is missing on the host: ${line.trim()}`);
    const direct = /^\s*(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (direct && /ld-linux|ld64|ld\.so/.test(basename(direct[1]!))) loader = direct[1];
  }
  return { libraries, loader };
}

async function place(source: string, target: string, mode: number): Promise<void> {
  const real = realpathSync(source);
  try {
    await link(real, target);
  } catch {
    await copyFile(real, target);
  }
  await chmod(target, mode).catch(() => undefined);
}

/**
 * Builds the runtime under `dir` (replacing what an earlier run left) and returns its host path.
 * Throws when busybox is not static or node's libraries cannot be found.
 */
export async function assembleHostRuntime(dir: string, programs: HostRuntimePrograms = DEFAULT_HOST_RUNTIME_PROGRAMS): Promise<string> {
  const building = `${dir}.tmp-${randomBytes(4).toString('hex')}`;
  await rm(building, { recursive: true, force: true });
  await mkdir(join(building, 'bin'), { recursive: true, mode: 0o755 });
  await mkdir(join(building, 'lib'), { mode: 0o755 });
  await chmod(building, 0o755);
  try {
    if (!existsSync(programs.busybox)) throw new HostRuntimeError(`${programs.busybox} is missing (install Debian's busybox-static)`);
    if (sharedObjectsOf(programs.busybox).loader !== undefined) {
      throw new HostRuntimeError(`${programs.busybox} is not statically linked (install Debian's busybox-static)`);
    }
    await place(programs.busybox, join(building, 'bin', 'sh'), 0o755);

    const dynamic: Record<string, string> = { node: programs.node };
    for (const [name, path] of Object.entries(programs.optional)) if (existsSync(path)) dynamic[name] = path;
    const libraries = new Map<string, string>();
    let loader: string | undefined;
    for (const [name, path] of Object.entries(dynamic)) {
      const found = sharedObjectsOf(path);
      for (const [soname, libraryPath] of found.libraries) libraries.set(soname, libraryPath);
      loader ??= found.loader;
      await place(path, join(building, 'bin', name), 0o755);
    }
    if (loader === undefined) throw new HostRuntimeError(`ldd found no dynamic loader for ${programs.node}`);
    for (const [soname, path] of libraries) await place(path, join(building, 'lib', soname), 0o755);
    await place(loader, join(building, 'lib', 'ld.so'), 0o755);
    await rm(dir, { recursive: true, force: true });
    await rename(building, dir);
    return dir;
  } catch (error) {
    await rm(building, { recursive: true, force: true });
    throw error;
  }
}
