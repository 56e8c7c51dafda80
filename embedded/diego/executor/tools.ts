// The host programs the cell's containers are made of. bubblewrap and pasta are the two packages
// the executor cannot work without; the util-linux helpers (nsenter, prlimit, setpriv, unshare,
// mount: the overlays of image roots), tar, unzip, bash and coreutils' sleep are part of the same
// contract. They are looked up once,
// on PATH, when the executor is created, so a missing one stops the cell with one clear line
// instead of failing the first task that needs it.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

export interface SandboxTools {
  bwrap: string;
  pasta: string;
  nsenter: string;
  prlimit: string;
  setpriv: string;
  tar: string;
  unzip: string;
  sh: string;
  bash: string;
  sleep: string;
  mount: string;
  unshare: string;
}

/** Command -> Debian package, in the order a missing one is reported. */
const TOOL_PACKAGES: Record<keyof SandboxTools, string> = {
  bwrap: 'bubblewrap',
  pasta: 'passt',
  nsenter: 'util-linux',
  prlimit: 'util-linux',
  setpriv: 'util-linux',
  tar: 'tar',
  unzip: 'unzip',
  sh: 'dash',
  bash: 'bash',
  sleep: 'coreutils',
  mount: 'mount',
  unshare: 'util-linux',
};

/** Where the executor looks when the daemon's own PATH is short (systemd units, `env -i`). */
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class ExecutorPrerequisiteError extends Error {
  override name = 'ExecutorPrerequisiteError';
}

function findOnPath(command: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(':')) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Absolute paths of every tool, or one line naming the missing Debian packages. The executor
 * runs as root: it joins the containers' network namespaces (nsenter), starts pasta for them and
 * drops each container process to an unprivileged uid (setpriv), which only root may do.
 */
export function findSandboxTools(searchPath: string = `${process.env.PATH ?? ''}:${FALLBACK_PATH}`): SandboxTools {
  const found: Partial<SandboxTools> = {};
  const missing = new Map<string, string[]>();
  for (const [command, pkg] of Object.entries(TOOL_PACKAGES) as Array<[keyof SandboxTools, string]>) {
    const path = findOnPath(command, searchPath);
    if (path === undefined) missing.set(pkg, [...(missing.get(pkg) ?? []), command]);
    else found[command] = path;
  }
  if (missing.size > 0) {
    const named = [...missing].map(([pkg, commands]) => `${pkg} (${commands.join(', ')})`).join(', ');
    throw new ExecutorPrerequisiteError(
      `the embedded Diego cell needs the Debian package${missing.size > 1 ? 's' : ''} ${named}: run apt-get install ${[...missing.keys()].join(' ')}`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new ExecutorPrerequisiteError(
      'the embedded Diego cell must run as root: it starts pasta, joins container network namespaces and drops container processes to an unprivileged uid',
    );
  }
  return found as SandboxTools;
}
