// A container of the embedded cell: bubblewrap sandboxes sharing one network namespace that pasta
// wires to the host.
//
// The shape, and why (each form was tried on Debian 12 with bubblewrap 0.8 and passt 2023-03,
// as root):
//
//   holder   bwrap --die-with-parent --unshare-net --unshare-pid --ro-bind / / --bind /proc /proc
//                --dev /dev --tmpfs /run --bind <dir>/tmp /run/ccbridge/tmp --bind <dir>/home
//                /run/ccbridge/home [--bind <dir>/rootfs /run/ccbridge/root-layers --dir
//                /run/ccbridge/root] -- sleep infinity
//            Owns the container's network namespace and a "staging" mount namespace for its whole
//            life. Its sleep's host pid names both: /proc/<pid>/ns/{net,mnt}.
//   image    nsenter --mount=/proc/<pid>/ns/mnt -- mount -t overlay overlay -o lowerdir=<image root>,
//                upperdir=/run/ccbridge/root-layers/upper,workdir=/run/ccbridge/root-layers/work
//                /run/ccbridge/root
//            For a docker image: the shared, unpacked image root read-only beneath the container's
//            own changes (bwrap 0.8 mounts no overlay itself). Where the data directory cannot hold
//            an overlay's upper layer the image root is bound read-only instead.
//   network  setpriv --pdeathsig KILL -- pasta --runas 0 --config-net --no-map-gw -f -q -u none -U none
//                -t 127.0.0.1/<host port>:<container port> ... -T <service port>,... --netns /proc/<pid>/ns/net
//            pasta attaches to that namespace, gives it a tap interface, publishes each container
//            port on a free host port of 127.0.0.1 (-t) and makes each host service port reachable
//            inside as 127.0.0.1:<same port> (-T). --no-map-gw keeps the gateway address from
//            reaching the host, so -T is the only way to host services. The executor knows pasta
//            is ready from its listening sockets (/proc/net/tcp on both sides).
//   process  nsenter --net=/proc/<pid>/ns/net --mount=/proc/<pid>/ns/mnt -- prlimit --nofile=N:N --
//                setpriv --reuid=<uid> --regid=<gid> --clear-groups -- bwrap --die-with-parent
//                --new-session --unshare-user --uid <u> --gid <g> --unshare-pid --unshare-ipc ...
//                --ro-bind <root> / --bind /run/ccbridge/tmp /tmp --bind /run/ccbridge/home /home/vcap
//                --proc /proc --dev /dev --ro-bind /run/ccbridge/etc/passwd /etc/passwd (and group)
//                --chdir <dir> --info-fd 3 -- <path> <args>
//            Every run action is a sandbox of its own in the shared network namespace: a fresh pid
//            namespace per process, so stopping a process takes everything it started with it,
//            and all of them share /tmp and /home/vcap, binds of the same host directories.
//            nsenter, prlimit and setpriv exec into each other, so bwrap is the executor's direct
//            child and --die-with-parent holds. Processes that run as root instead join one user
//            namespace per container (--userns 4): made by `unshare --user` as the host uid, its
//            maps written by the executor, so setgroups stays allowed there (an unprivileged
//            bwrap's own namespace denies it for good, and dropbear sets groups for a root login).
//
// Why the staging mount namespace: sandbox bwrap runs as the unprivileged container uid and opens
// every bind source with that uid's permissions; the data directory may sit where it may not
// walk (under /root, say). The holder, as root, binds the container's directories on a tmpfs
// anyone may walk, and sandboxes bind from there.
//
// Forms that do not work as root with this pasta: `pasta -- bwrap ...` (pasta makes a user
// namespace, drops to nobody and may then not write its uid map), pasta attaching by pid (it
// joins the target's user namespace, which for a root holder is its own: EINVAL), and pasta
// without --runas 0 (as nobody it may open neither root's namespaces nor /dev/net/tun, which is
// 0600 on some hosts). With --runas 0 pasta still drops to CAP_NET_BIND_SERVICE + CAP_SYS_ADMIN,
// sets no_new_privs and a seccomp filter once the namespace is set up. It does not notice its
// target namespace going away, so the executor kills it, and setpriv's --pdeathsig kills it
// should the executor die first. A TCP connection through a published port always succeeds
// (pasta accepts before it connects inside), so TCP health checks connect from inside instead.
//
// Container processes run on the host as one unprivileged uid (hostUid): inside their own user
// namespace that uid is vcap (2000) or root (0) as the run action asks, with no capability
// outside it, so the read-only host root shows them only what any user may read. Files they
// create in /tmp and /home/vcap belong to hostUid on the host; files the executor streams in are
// written by tar running inside a sandbox as the same user, never by the executor itself, so a
// symlink planted by an app cannot redirect a write outside the container.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, open, readdir, readFile, readlink, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, isAbsolute, join, normalize } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvironmentVariable } from '../../../gen/diego/bbs/v1/container.js';
import type { Logger } from '../../../lib/log.js';
import { forwardLines } from './lines.js';
import { childPids, listeningPorts, treeUsage } from './proc.js';
import { exitsWithin, INFO_FD, spawnSandbox, USERNS_FD, type ProcessExit, type SandboxProcess, type SandboxTimings } from './sandbox.js';
import type { SandboxTools } from './tools.js';
import { guarded, type LogSink, type PortMapping } from './types.js';

export type { ProcessExit } from './sandbox.js';

/** `host` is the host's root, read-only (the stack cflinuxfs4 on one machine); otherwise the path of an unpacked image root. */
export type Rootfs = 'host' | string;

export interface ContainerSpec {
  guid: string;
  /** The cell's data directory; the container lives in <dataDir>/containers/<guid>. */
  dataDir: string;
  rootfs: Rootfs;
  /**
   * Every process's environment starts with these (a run action's own env comes after). A
   * function is given the port mappings, for variables naming host ports (CF_INSTANCE_PORT).
   */
  env: EnvironmentVariable[] | ((ports: PortMapping[]) => EnvironmentVariable[]);
  /** Container ports to publish, each on a free host port of 127.0.0.1. */
  ports: number[];
  /** Resident memory of all the container's processes together; 0 is no limit. */
  memoryMb: number;
  /** Recorded for metrics (the quota); not enforced. */
  diskMb: number;
  /** Open-file limit of processes whose run action names none. */
  nofile?: number;
  logSink: LogSink;
  /** Host services (file server, uploader, blobstore, registry) reachable inside as 127.0.0.1:<port>. */
  hostServicePorts: number[];
  /** Log source of processes that name none. */
  logSource?: string;
  /** Host directories shown read-only inside, e.g. the runtime lifecycle programs need in an image root; targets must lie under /tmp or /home/vcap. */
  readOnlyBinds?: Array<{ hostPath: string; containerPath: string }>;
}

export interface ProcessSpec {
  path: string;
  args: string[];
  /** Working directory inside; /home/vcap when empty. */
  dir?: string;
  env?: EnvironmentVariable[];
  /** vcap, root, a user of the root's /etc/passwd, or uid[:gid]. */
  user: string;
  nofile?: number;
  logSource?: string;
  suppressLogOutput?: boolean;
}

export interface ProcessHandle {
  readonly exited: Promise<ProcessExit>;
  /** Delivers a signal to the process inside (bwrap forwards none). */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL for everything the process started once graceMs has passed. */
  stop(graceMs?: number): Promise<ProcessExit>;
  kill(): void;
  pids(): number[];
}

export interface ContainerUsage {
  processes: number;
  residentBytes: number;
  /** Cumulative CPU time of the live processes (and of children they reaped), in clock ticks. */
  cpuTicks: number;
}

export interface Container {
  readonly guid: string;
  /** The container's directory on the host. */
  readonly dir: string;
  readonly rootfs: Rootfs;
  readonly portMappings: PortMapping[];
  readonly env: EnvironmentVariable[];
  readonly limits: { memoryMb: number; diskMb: number; nofile: number };
  /** Set once the memory watchdog has killed the container's processes. */
  readonly outOfMemory: boolean;
  readonly destroyed: boolean;
  run(process: ProcessSpec): ProcessHandle;
  /** Extracts an archive file into `to`, as `user`, from inside the container's view. */
  streamIn(archive: { path: string; format: ArchiveFormat }, to: string, user: string, signal?: AbortSignal): Promise<void>;
  /** Writes `from` (a file as it is, a directory as a .tgz of its contents) to a host file. */
  streamOut(from: string, user: string, destination: FileHandle, signal?: AbortSignal): Promise<void>;
  /** The first maxBytes of a file inside. */
  readFile(path: string, maxBytes: number, user: string, signal?: AbortSignal): Promise<Buffer>;
  /** undefined when 127.0.0.1:<port> accepts a TCP connection inside the container, else why not. */
  probeTcp(port: number, timeoutMs: number): Promise<string | undefined>;
  usage(): ContainerUsage;
  diskBytes(): Promise<number>;
  processIds(): number[];
  /** Kills every process, takes the network down and removes the container's directory. */
  destroy(): Promise<void>;
}

export type ArchiveFormat = 'tgz' | 'tar' | 'zip';

export interface SandboxSettings {
  tools: SandboxTools;
  logger: Logger;
  /** Host uid and gid every container process runs as. */
  hostUid: number;
  hostGid: number;
  stopGraceMs: number;
  /** Bound on waiting for processes to go after SIGKILL. */
  killWaitMs: number;
  networkReadyTimeoutMs: number;
  networkPollMs: number;
  memoryPollMs: number;
  defaultNofile: number;
  ports: PortAllocator;
  /** Attempts at publishing ports when a chosen free port was taken in between. */
  portAttempts: number;
  timings: SandboxTimings;
}

/** The uid and gid of vcap in cflinuxfs4, used when the root's /etc/passwd has no vcap. */
export const VCAP_UID = 2000;

const CONTAINER_HOME = '/home/vcap';
/**
 * Where the holder's mount namespace shows the container's directories. Sandboxes are set up by
 * bwrap running as the unprivileged container uid, which must be able to walk to every bind
 * source; the data directory may sit where it cannot (under /root, say), so the holder, which
 * runs as root, binds them here first, on a tmpfs anyone may walk, and every sandbox starts by
 * entering that mount namespace.
 */
const STAGED = {
  dir: '/run/ccbridge',
  tmp: '/run/ccbridge/tmp',
  home: '/run/ccbridge/home',
  root: '/run/ccbridge/root',
  /** The upper and work directories of a writable image root's overlay. */
  rootLayers: '/run/ccbridge/root-layers',
  binds: '/run/ccbridge/binds',
  etc: '/run/ccbridge/etc',
};
const WRITABLE_ROOTS = ['/tmp', CONTAINER_HOME];
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const MAX_STDERR_TAIL = 4096;
const MAX_DISK_WALK_ENTRIES = 200_000;
const GUID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class ContainerError extends Error {
  override name = 'ContainerError';
}

/** Free loopback ports for publishing, never handing out one that a live container holds. */
export interface PortAllocator {
  allocate(count: number): Promise<number[]>;
  release(ports: number[]): void;
}

export function createPortAllocator(maxTries = 64): PortAllocator {
  const held = new Set<number>();
  const freePort = () =>
    new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
      });
    });
  return {
    async allocate(count) {
      const ports: number[] = [];
      for (let tries = 0; ports.length < count; tries += 1) {
        if (tries >= maxTries) {
          this.release(ports);
          throw new ContainerError('no free loopback port to publish on');
        }
        const port = await freePort();
        if (held.has(port)) continue;
        held.add(port);
        ports.push(port);
      }
      return ports;
    },
    release(ports) {
      for (const port of ports) held.delete(port);
    },
  };
}

interface InnerUser {
  uid: number;
  gid: number;
  name: string;
}

export async function createContainer(spec: ContainerSpec, settings: SandboxSettings): Promise<Container> {
  if (!GUID_PATTERN.test(spec.guid)) throw new ContainerError(`invalid container guid "${spec.guid}"`);
  const log = settings.logger.child({ session: 'executor.container', container_guid: spec.guid });
  const logSink = guarded(spec.logSink, (error) => log.error({ err: { message: (error as Error).message } }, 'log-sink-failed'));
  const { tools } = settings;
  const rootPath = spec.rootfs === 'host' ? '/' : spec.rootfs;
  if (spec.rootfs !== 'host') await checkImageRoot(rootPath);
  for (const bind of spec.readOnlyBinds ?? []) {
    if (!isWritablePath(bind.containerPath)) {
      throw new ContainerError(`read-only bind target ${bind.containerPath} must lie under /tmp or /home/vcap`);
    }
  }

  const containersDir = join(spec.dataDir, 'containers');
  const dir = join(containersDir, spec.guid);
  // Only root may walk into containers/: each container sees its own directories through binds
  // and must not reach another's through the read-only host root.
  await mkdir(containersDir, { recursive: true, mode: 0o700 });
  await chmod(containersDir, 0o700);
  await mkdir(dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    throw error.code === 'EEXIST' ? new ContainerError(`a container ${spec.guid} exists already`) : error;
  });
  const tmpDir = join(dir, 'tmp');
  const homeDir = join(dir, 'home');
  await mkdir(tmpDir);
  await mkdir(homeDir);
  await chown(tmpDir, settings.hostUid, settings.hostGid);
  await chown(homeDir, settings.hostUid, settings.hostGid);
  await chmod(tmpDir, 0o1777);
  await chmod(homeDir, 0o755);
  const etcDir = join(dir, 'etc');
  const accounts = await writeAccountFiles(rootPath, spec.rootfs === 'host', etcDir);
  const imageRoot = spec.rootfs === 'host' ? undefined : await prepareImageRoot(rootPath, join(dir, 'rootfs'), containersDir, settings, log);

  const live = new Set<SandboxProcess>();
  let holder: SandboxProcess | undefined;
  let pasta: ChildProcess | undefined;
  let netnsPid: number | undefined;
  let hostPorts: number[] = [];
  let destroyed = false;
  let outOfMemory = false;
  let watchdog: NodeJS.Timeout | undefined;
  const users = new Map<string, InnerUser>();

  const removeEverything = async () => {
    if (watchdog) clearInterval(watchdog);
    for (const sandbox of live) sandbox.kill();
    rootUsernsHolder?.kill('SIGKILL');
    prober?.child.kill('SIGKILL');
    void rootUserns?.then((handle) => handle.close()).catch(() => undefined);
    pasta?.kill('SIGKILL');
    holder?.kill();
    const waits: Array<Promise<unknown>> = [...live].map((sandbox) => exitsWithin(sandbox, settings.killWaitMs));
    if (holder) waits.push(exitsWithin(holder, settings.killWaitMs));
    if (pasta && pasta.exitCode === null && pasta.signalCode === null) {
      const child = pasta;
      waits.push(settledWithin(new Promise((resolve) => child.once('exit', resolve)), settings.killWaitMs));
    }
    await Promise.all(waits);
    settings.ports.release(hostPorts);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    holder = spawnSandbox(
      [
        tools.bwrap,
        '--die-with-parent',
        '--new-session',
        '--unshare-net',
        '--unshare-pid',
        '--unshare-ipc',
        '--ro-bind',
        '/',
        '/',
        // Unprivileged bwrap writes its uid map through /proc: the host's, writable.
        '--bind',
        '/proc',
        '/proc',
        // Device nodes for the sandboxes' own /dev. A bind of the host's /dev would be nodev
        // (bwrap's binds are), and a user namespace may not lift that, so /dev/null would refuse writes.
        '--dev',
        '/dev',
        '--tmpfs',
        '/run',
        // Parents bwrap creates on its own are 0700 for root; the container uid must walk these.
        '--perms',
        '0755',
        '--dir',
        STAGED.dir,
        '--perms',
        '0755',
        '--dir',
        STAGED.binds,
        '--bind',
        tmpDir,
        STAGED.tmp,
        '--bind',
        homeDir,
        STAGED.home,
        // A writable image root: its layers' directory here, the overlay mounted on STAGED.root
        // once the namespace exists (bwrap 0.8 mounts no overlay itself).
        ...(spec.rootfs === 'host' ? [] : imageRoot!.writable ? ['--bind', imageRoot!.dir, STAGED.rootLayers, '--perms', '0755', '--dir', STAGED.root] : ['--ro-bind', rootPath, STAGED.root]),
        ...(spec.readOnlyBinds ?? []).flatMap((bind, index) => ['--ro-bind', bind.hostPath, `${STAGED.binds}/${index}`]),
        ...(accounts ? ['--ro-bind', etcDir, STAGED.etc] : []),
        '--cap-drop',
        'ALL',
        '--info-fd',
        String(INFO_FD),
        '--',
        tools.sleep,
        'infinity',
      ],
      { env: { PATH: DEFAULT_PATH }, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', timings: settings.timings },
    );
    const holderTail = tailOf(holder.stderr);
    netnsPid = await holderCommandPid(holder, basename(tools.sleep), settings.networkReadyTimeoutMs, settings.networkPollMs);
    if (netnsPid === undefined) throw new ContainerError(`could not create the container's namespaces: ${holderTail() || 'bwrap exited'}`);
    if (imageRoot?.writable) await mountImageOverlay(netnsPid, rootPath, settings);
    ({ pasta, hostPorts } = await startNetwork(netnsPid));
  } catch (error) {
    await removeEverything();
    throw error;
  }

  const portMappings: PortMapping[] = spec.ports.map((containerPort, index) => ({ containerPort, hostPort: hostPorts[index]! }));
  const containerEnv = typeof spec.env === 'function' ? spec.env(portMappings) : spec.env;
  pasta.once('exit', (code, signal) => {
    if (!destroyed) log.error({ code, signal }, 'pasta-exited');
  });
  log.info({ ports: portMappings, rootfs: spec.rootfs, memory_mb: spec.memoryMb, disk_mb: spec.diskMb }, 'container-created');

  async function startNetwork(pid: number): Promise<{ pasta: ChildProcess; hostPorts: number[] }> {
    // pasta would listen on such a port inside, and the app could no longer listen on it.
    const serviceForwards = [...new Set(spec.hostServicePorts)].filter((port) => !spec.ports.includes(port));
    if (serviceForwards.length < new Set(spec.hostServicePorts).size) {
      log.error({ host_service_ports: spec.hostServicePorts, ports: spec.ports }, 'host-service-port-is-a-container-port');
    }
    let lastError = '';
    for (let attempt = 1; attempt <= settings.portAttempts; attempt += 1) {
      const ports = await settings.ports.allocate(spec.ports.length);
      const forwards = spec.ports.flatMap((containerPort, index) => ['-t', `127.0.0.1/${ports[index]}:${containerPort}`]);
      const services = serviceForwards;
      const child = spawn(
        tools.setpriv,
        [
          '--pdeathsig',
          'KILL',
          '--',
          tools.pasta,
          '--runas',
          '0',
          '--config-net',
          '--no-map-gw',
          '--foreground',
          '--quiet',
          '-u',
          'none',
          '-U',
          'none',
          ...(forwards.length > 0 ? forwards : ['-t', 'none']),
          '-T',
          services.length > 0 ? services.join(',') : 'none',
          '--netns',
          `/proc/${pid}/ns/net`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: DEFAULT_PATH } },
      );
      const stderr = pastaMessages(child.stderr!);
      let exited = false;
      child.once('exit', () => (exited = true));
      // pasta says nothing when it is ready; its listening sockets say it: the published ports
      // on the host's loopback and the service ports on the namespace's.
      const deadline = Date.now() + settings.networkReadyTimeoutMs;
      for (;;) {
        const hostReady = listeningPorts('self', '127.0.0.1', ports).size === ports.length;
        const servicesReady = listeningPorts(pid, '127.0.0.1', services).size === services.length;
        if (hostReady && servicesReady) return { pasta: child, hostPorts: ports };
        if (exited || Date.now() > deadline) break;
        await sleep(settings.networkPollMs);
      }
      child.kill('SIGKILL');
      settings.ports.release(ports);
      lastError = stderr() || (exited ? 'pasta exited' : `pasta was not ready after ${settings.networkReadyTimeoutMs}ms`);
      // A port chosen free was taken before pasta bound it: choose again.
      if (!/bind/i.test(lastError)) break;
      log.info({ attempt, error: lastError }, 'retrying-port-publication');
    }
    throw new ContainerError(`could not wire the container's network with pasta: ${lastError}`);
  }

  /** nsenter's arguments for the holder's namespaces: its network's, and for sandboxes its staging mount namespace's. */
  function enter(namespaces: Array<'net' | 'mnt'>): string[] {
    if (destroyed || netnsPid === undefined || holder === undefined || holder.done) {
      throw new ContainerError(`container ${spec.guid} is gone`);
    }
    const flags = namespaces.map((ns) => (ns === 'net' ? `--net=/proc/${netnsPid}/ns/net` : `--mount=/proc/${netnsPid}/ns/mnt`));
    return [tools.nsenter, ...flags, '--'];
  }

  async function innerUser(user: string): Promise<InnerUser> {
    const known = users.get(user);
    if (known) return known;
    let found: InnerUser | undefined;
    const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
    if (user === 'root') found = { uid: 0, gid: 0, name: 'root' };
    else if (numeric) found = { uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1]), name: user };
    else {
      const passwd = await readFile(join(rootPath, 'etc/passwd'), 'utf8').catch(() => '');
      for (const line of passwd.split('\n')) {
        const [name, , uid, gid] = line.split(':');
        if (name === user && uid !== undefined && gid !== undefined) found = { uid: Number(uid), gid: Number(gid), name: user };
      }
      // cflinuxfs4 has vcap; the host root that stands in for it may not.
      if (found === undefined && user === 'vcap') found = { uid: VCAP_UID, gid: VCAP_UID, name: 'vcap' };
    }
    if (found === undefined) throw new ContainerError(`user "${user}" does not exist in the container's root filesystem`);
    users.set(user, found);
    return found;
  }

  /**
   * TCP checks connect from inside the container's network namespace: a connection through the
   * published host port always succeeds (pasta accepts it first and only then connects inside,
   * closing again when nothing listens). One long-lived prober per container does it, a bash loop
   * in that namespace that reads a port and opens /dev/tcp/127.0.0.1/<port> in a forked subshell:
   * an exec chain per probe (nsenter, setpriv, timeout, bash) cost ~26 ms of CPU, which twenty
   * instances starting at once, probed every 500 ms, paid out of a whole core. A probe that does
   * not answer within its timeout (a listener whose backlog is full) takes the prober with it; the
   * next probe starts another. The prober ends with the container, or when its stdin closes.
   */
  let prober: { child: ChildProcess; lines: string[]; waiting?: () => void } | undefined;
  let probeQueue: Promise<unknown> = Promise.resolve();

  function startProber(): NonNullable<typeof prober> {
    const argv = [...enter(['net']), ...dropPrivileges(), tools.bash, '-c', PROBER_SCRIPT];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'ignore'], env: { PATH: DEFAULT_PATH } });
    const started: NonNullable<typeof prober> = { child, lines: [] };
    child.stdin!.on('error', () => undefined);
    forwardLines(child.stdout!, (line) => {
      started.lines.push(line);
      started.waiting?.();
    });
    const wake = () => started.waiting?.();
    child.once('close', wake);
    child.once('error', wake);
    return started;
  }

  /** A probe; when the prober turns out to have died (killed from outside), once more with a new one. */
  async function probeOnce(port: number, timeoutMs: number): Promise<string | undefined> {
    const outcome = await probeWithProber(port, timeoutMs);
    return outcome === PROBER_EXITED ? probeWithProber(port, timeoutMs) : outcome;
  }

  async function probeWithProber(port: number, timeoutMs: number): Promise<string | undefined> {
    if (prober && exited(prober.child)) prober = undefined;
    const current = (prober ??= startProber());
    const { child } = current;
    current.lines.length = 0;
    child.stdin!.write(`${port}\n`);
    let timer: NodeJS.Timeout | undefined;
    const answer = await new Promise<string | undefined>((resolve) => {
      const settle = () => {
        if (current.lines.length > 0) resolve(current.lines.shift());
        else if (exited(child)) resolve(undefined);
      };
      current.waiting = settle;
      timer = setTimeout(() => resolve(undefined), Math.max(timeoutMs, 1));
      settle();
    });
    clearTimeout(timer);
    current.waiting = undefined;
    if (answer === 'ok') return undefined;
    if (answer !== undefined) {
      const why = answer.replace(/^fail ?/, '');
      return /refused/i.test(why) ? 'connection refused' : why.split(': ').pop() || 'connection failed';
    }
    // No answer: stuck in a connect, or the prober is gone. Either way the next probe starts anew.
    const gone = exited(child);
    child.kill('SIGKILL');
    if (prober === current) prober = undefined;
    if (destroyed) throw new ContainerError(`container ${spec.guid} is gone`);
    return gone ? PROBER_EXITED : `timed out after ${timeoutMs}ms`;
  }

  let rootUsernsHolder: ChildProcess | undefined;
  let rootUserns: Promise<FileHandle> | undefined;

  /**
   * The user namespace the container's root processes share, made once: a user namespace bwrap
   * makes unprivileged denies setgroups for good, and programs that run as root and switch users
   * (an SSH server logging a session in, su) set groups. This one is made by an unprivileged
   * process of the host uid (so that uid owns it and may enter it) and its maps written by the
   * executor as root, which leaves setgroups allowed; inside, root is the host uid and nothing
   * more, as in any sandbox.
   */
  function sharedRootUserNamespace(): Promise<FileHandle> {
    rootUserns ??= (async () => {
      const child = spawn(tools.setpriv, ['--pdeathsig', 'KILL', `--reuid=${settings.hostUid}`, `--regid=${settings.hostGid}`, '--clear-groups', '--', tools.unshare, '--user', '--', tools.sleep, 'infinity'], {
        stdio: 'ignore',
        env: { PATH: DEFAULT_PATH },
      });
      rootUsernsHolder = child;
      const own = await readlink('/proc/self/ns/user');
      const deadline = Date.now() + settings.networkReadyTimeoutMs;
      for (;;) {
        if (exited(child)) throw new ContainerError('could not create the user namespace of root processes: unshare exited');
        const ns = await readlink(`/proc/${child.pid}/ns/user`).catch(() => own);
        const comm = await readFile(`/proc/${child.pid}/comm`, 'utf8').catch(() => '');
        if (ns !== own && comm.trim() === basename(tools.sleep)) break;
        if (Date.now() > deadline) throw new ContainerError('could not create the user namespace of root processes: timed out');
        await sleep(settings.networkPollMs);
      }
      await writeFile(`/proc/${child.pid}/uid_map`, `0 ${settings.hostUid} 1\n`);
      await writeFile(`/proc/${child.pid}/gid_map`, `0 ${settings.hostGid} 1\n`);
      return open(`/proc/${child.pid}/ns/user`, 'r');
    })();
    return rootUserns;
  }

  /**
   * bwrap arguments for a sandbox showing the container's filesystem to `user`. With `userns`,
   * the sandbox joins the shared root user namespace (on USERNS_FD) instead of making its own,
   * and root keeps the capabilities Docker leaves a container's root by default, within it.
   */
  function filesystemArgs(user: InnerUser, root: 'container' | 'host', chdir: string, userns = false): string[] {
    const rootSource = root === 'host' || spec.rootfs === 'host' ? '/' : STAGED.root;
    const args = [
      '--die-with-parent',
      '--new-session',
      ...(userns ? ['--userns', String(USERNS_FD), ...ROOT_CAPABILITIES.flatMap((cap) => ['--cap-add', cap])] : ['--unshare-user']),
      '--uid',
      String(user.uid),
      '--gid',
      String(user.gid),
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      '--hostname',
      spec.guid.slice(0, 63),
      // An image root is the container's own to write (its changes in the container directory,
      // gone with it), as a Garden container's is; the host root never is.
      rootSource === STAGED.root && imageRoot?.writable ? '--bind' : '--ro-bind',
      rootSource,
      '/',
      // The host's /home and /run (sockets of system daemons, and the staging area) stay out of sight.
      '--tmpfs',
      '/home',
      ...(rootSource === '/' ? ['--tmpfs', '/run'] : []),
      '--bind',
      STAGED.tmp,
      '/tmp',
      '--bind',
      STAGED.home,
      CONTAINER_HOME,
      '--proc',
      '/proc',
      '--dev',
      '/dev',
    ];
    if (accounts && (root === 'container' || spec.rootfs === 'host')) {
      args.push('--ro-bind', `${STAGED.etc}/passwd`, '/etc/passwd', '--ro-bind', `${STAGED.etc}/group`, '/etc/group');
    }
    (spec.readOnlyBinds ?? []).forEach((bind, index) => args.push('--ro-bind', `${STAGED.binds}/${index}`, bind.containerPath));
    args.push('--chdir', chdir, '--info-fd', String(INFO_FD));
    return args;
  }

  function dropPrivileges(): string[] {
    return [tools.setpriv, `--reuid=${settings.hostUid}`, `--regid=${settings.hostGid}`, '--clear-groups', '--'];
  }

  function processEnv(user: InnerUser, extra: EnvironmentVariable[] = []): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const variable of [...containerEnv, ...extra]) {
      // The kernel would cut a name at '=' and node refuses NULs; such a variable cannot exist.
      if (variable.name === '' || /[=\0]/.test(variable.name) || variable.value.includes('\0')) continue;
      env[variable.name] = variable.value;
    }
    env.PATH ??= DEFAULT_PATH;
    env.USER ??= user.name;
    env.HOME ??= user.uid === 0 ? '/root' : CONTAINER_HOME;
    return env;
  }

  function track(sandbox: SandboxProcess): void {
    live.add(sandbox);
    void sandbox.exited.then(() => live.delete(sandbox));
    if (spec.memoryMb > 0 && watchdog === undefined) {
      watchdog = setInterval(checkMemory, settings.memoryPollMs);
      watchdog.unref();
    }
  }

  function livePids(): number[] {
    return [...live].flatMap((sandbox) => (sandbox.child.pid ? [sandbox.child.pid] : []));
  }

  function checkMemory(): void {
    if (live.size === 0 || outOfMemory) return;
    const usage = treeUsage(livePids());
    const limit = spec.memoryMb * 1024 * 1024;
    if (usage.residentBytes <= limit) return;
    outOfMemory = true;
    log.info({ resident_bytes: usage.residentBytes, limit_bytes: limit }, 'container-out-of-memory');
    for (const sandbox of live) sandbox.kill();
  }

  /** Runs a helper program (tar, cat, head) in a sandbox with the container's filesystem and no network. */
  async function helper(
    script: string,
    args: string[],
    userName: string,
    io: { stdin?: number; stdout?: number | 'pipe'; maxStdout?: number },
    signal?: AbortSignal,
  ): Promise<{ exitStatus: number; stderr: string; stdout: Buffer }> {
    if (destroyed) throw new ContainerError(`container ${spec.guid} is gone`);
    const user = await innerUser(userName);
    signal?.throwIfAborted();
    // Helpers always run the host's tools (an image root may have no tar); for an image root
    // that is only the container's view under /tmp and /home/vcap, which helpers are limited to.
    const argv = [
      ...enter(['mnt']),
      ...dropPrivileges(),
      tools.bwrap,
      ...filesystemArgs(user, 'host', '/'),
      '--unshare-net',
      '--',
      tools.sh,
      '-c',
      script,
      'sh',
      ...args,
    ];
    const sandbox = spawnSandbox(argv, {
      env: { PATH: DEFAULT_PATH, LANG: 'C', HOME: CONTAINER_HOME },
      stdin: io.stdin ?? 'ignore',
      stdout: io.stdout ?? 'ignore',
      stderr: 'pipe',
      timings: settings.timings,
    });
    const stderr = tailOf(sandbox.stderr);
    const chunks: Buffer[] = [];
    let size = 0;
    sandbox.stdout?.on('data', (chunk: Buffer) => {
      const room = (io.maxStdout ?? 0) - size;
      if (room > 0) chunks.push(chunk.subarray(0, room));
      size += Math.min(chunk.length, Math.max(room, 0));
    });
    const onAbort = () => sandbox.kill();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const { exitStatus } = await sandbox.exited;
      signal?.throwIfAborted();
      return { exitStatus, stderr: stderr(), stdout: Buffer.concat(chunks) };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  function checkHelperPath(path: string, what: string): void {
    if (!isAbsolute(path)) throw new ContainerError(`${what} ${path} is not an absolute path`);
    if (spec.rootfs !== 'host' && !isWritablePath(path)) {
      throw new ContainerError(`${what} ${path} is outside /tmp and /home/vcap, which is all the executor reaches in an image root`);
    }
  }

  const container: Container = {
    guid: spec.guid,
    dir,
    rootfs: spec.rootfs,
    portMappings,
    env: containerEnv,
    limits: { memoryMb: spec.memoryMb, diskMb: spec.diskMb, nofile: spec.nofile ?? settings.defaultNofile },
    get outOfMemory() {
      return outOfMemory;
    },
    get destroyed() {
      return destroyed;
    },

    run(request) {
      const source = request.logSource || spec.logSource || '';
      let sandbox: SandboxProcess | undefined;
      let failedToStart: ProcessExit | undefined;
      const started = (async () => {
        const user = await innerUser(request.user);
        const userns = user.uid === 0 ? await sharedRootUserNamespace() : undefined;
        const nofile = request.nofile && request.nofile > 0 ? request.nofile : container.limits.nofile;
        const argv = [
          ...enter(['net', 'mnt']),
          tools.prlimit,
          `--nofile=${nofile}:${nofile}`,
          '--',
          ...dropPrivileges(),
          tools.bwrap,
          ...filesystemArgs(user, 'container', request.dir || CONTAINER_HOME, userns !== undefined),
          '--',
          request.path,
          ...request.args,
        ];
        sandbox = spawnSandbox(argv, {
          userNamespaceFd: userns?.fd,
          env: processEnv(user, request.env),
          stdin: 'ignore',
          stdout: request.suppressLogOutput ? 'ignore' : 'pipe',
          stderr: request.suppressLogOutput ? 'ignore' : 'pipe',
          timings: settings.timings,
          onSpawnError: (error) => log.error({ err: { message: error.message } }, 'process-spawn-failed'),
        });
        track(sandbox);
        if (sandbox.stdout) forwardLines(sandbox.stdout, (message) => logSink({ source, message, stream: 'OUT' }));
        if (sandbox.stderr) forwardLines(sandbox.stderr, (message) => logSink({ source, message, stream: 'ERR' }));
        return sandbox;
      })().catch((error: unknown) => {
        // Garden refuses such a process at creation; the run action reports it like an exit.
        logSink({ source, message: (error as Error).message, stream: 'ERR' });
        failedToStart = { exitStatus: 1 };
        return undefined;
      });
      const exited = started.then((started) => (started ? started.exited : failedToStart!));
      const handle: ProcessHandle = {
        exited,
        async signal(signal) {
          const running = await started;
          await running?.signal(signal);
        },
        async stop(graceMs = settings.stopGraceMs) {
          const running = await started;
          if (running === undefined) return exited;
          await running.signal('SIGTERM');
          if (!(await exitsWithin(running, graceMs))) {
            running.kill();
            await exitsWithin(running, settings.killWaitMs);
          }
          return exited;
        },
        kill() {
          if (sandbox) sandbox.kill();
          else void started.then((running) => running?.kill());
        },
        pids() {
          return sandbox?.pids() ?? [];
        },
      };
      return handle;
    },

    async streamIn(archive, to, user, signal) {
      checkHelperPath(to, 'download destination');
      const file = await open(archive.path, 'r');
      try {
        const extract =
          archive.format === 'zip'
            ? // unzip needs to seek; /dev/stdin is the archive file itself here, not a pipe.
              'mkdir -p -- "$1" && exec unzip -qo /dev/stdin -d "$1"'
            : `mkdir -p -- "$1" && cd -- "$1" && exec tar -x${archive.format === 'tgz' ? 'z' : ''}f - --no-same-owner`;
        const { exitStatus, stderr } = await helper(extract, [normalize(to)], user, { stdin: file.fd }, signal);
        if (exitStatus !== 0) throw new ContainerError(`could not extract the archive into ${to}: ${lastLine(stderr) || `exit status ${exitStatus}`}`);
      } finally {
        await file.close();
      }
    },

    async streamOut(from, user, destination, signal) {
      checkHelperPath(from, 'upload source');
      const pack = 'if [ -d "$1" ]; then cd -- "$1" && exec tar -czf - .; else exec cat -- "$1"; fi';
      const { exitStatus, stderr } = await helper(pack, [normalize(from)], user, { stdout: destination.fd }, signal);
      if (exitStatus !== 0) throw new ContainerError(`could not read ${from}: ${lastLine(stderr) || `exit status ${exitStatus}`}`);
    },

    async readFile(path, maxBytes, user, signal) {
      checkHelperPath(path, 'file');
      const { exitStatus, stderr, stdout } = await helper(
        'exec head -c "$2" -- "$1"',
        [normalize(path), String(maxBytes)],
        user,
        { stdout: 'pipe', maxStdout: maxBytes },
        signal,
      );
      if (exitStatus !== 0) throw new ContainerError(`could not read ${path}: ${lastLine(stderr) || `exit status ${exitStatus}`}`);
      return stdout;
    },

    probeTcp(port, timeoutMs) {
      // One probe at a time through the container's prober.
      const probe = probeQueue.then(() => probeOnce(port, timeoutMs));
      probeQueue = probe.catch(() => undefined);
      return probe;
    },

    usage() {
      return treeUsage(livePids());
    },

    async diskBytes() {
      return destroyed ? 0 : directoryBytes(dir);
    },

    processIds() {
      return [...live].flatMap((sandbox) => sandbox.pids());
    },

    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await removeEverything();
      log.info({}, 'container-destroyed');
    },
  };
  return container;
}

/**
 * The pid of the holder's command once bwrap has exec'd it. Only then are its namespaces
 * complete (bwrap reports its init before setting the mounts up), and only an exec'd process is
 * dumpable, which pasta, having dropped CAP_SYS_PTRACE, needs to open its /proc/<pid>/ns/net.
 */
async function holderCommandPid(holder: SandboxProcess, command: string, timeoutMs: number, pollMs: number): Promise<number | undefined> {
  const init = await holder.init;
  if (init === undefined) return undefined;
  const deadline = Date.now() + timeoutMs;
  while (!holder.done && Date.now() < deadline) {
    for (const pid of childPids(init)) {
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
      if (comm.trim() === command) return pid;
    }
    await sleep(pollMs);
  }
  return undefined;
}

/** What a probe gets when the prober died under it (killed from outside): it is tried once more. */
const PROBER_EXITED = 'the prober exited';
/**
 * The TCP prober's loop: a port per line in, `ok` or `fail <bash's message>` per line out. The
 * connection is made in a subshell, so it closes as soon as the subshell exits.
 */
const PROBER_SCRIPT = `while IFS= read -r port; do
  if out=$( (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>&1 ); then echo ok; else printf 'fail %s\\n' "\${out//$'\\n'/ }"; fi
done`;

/** What root keeps inside the shared root user namespace: Docker's defaults that act on files and users. */
const ROOT_CAPABILITIES = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID'];

interface ImageRootLayout {
  /** Whether the container sees an overlay of the image root it may write to, or the root read-only. */
  writable: boolean;
  /** The overlay's upper and work directories live here: the container's changes, gone with it. */
  dir: string;
}

/** Paths a mount option list cannot carry as they are. */
const UNSAFE_MOUNT_OPTION = /[,:\\\s]/;

/**
 * The container's view of a shared, unpacked image root: an overlay whose upper layer lives in the
 * container's directory, so writes anywhere in the image stay the container's and go with it, as
 * in a Garden container. The upper directory's root takes the image root's owner and mode, which
 * the merged root shows. Where the data directory's filesystem cannot hold an overlay's upper
 * layer (an overlayfs itself, say) the image root is shown read-only, with /tmp and /home/vcap
 * writable as ever, and the executor says so once.
 */
async function prepareImageRoot(rootPath: string, dir: string, containersDir: string, settings: SandboxSettings, log: Logger): Promise<ImageRootLayout> {
  if (UNSAFE_MOUNT_OPTION.test(rootPath) || UNSAFE_MOUNT_OPTION.test(dir) || !(await overlaySupported(settings, containersDir, log))) {
    return { writable: false, dir };
  }
  await mkdir(join(dir, 'upper'), { recursive: true, mode: 0o700 });
  await mkdir(join(dir, 'work'), { mode: 0o700 });
  const image = await stat(rootPath);
  await chown(join(dir, 'upper'), image.uid, image.gid);
  await chmod(join(dir, 'upper'), image.mode & 0o7777);
  return { writable: true, dir };
}

/** Mounts the image root's overlay on STAGED.root in the holder's mount namespace. */
async function mountImageOverlay(holderPid: number, rootPath: string, settings: SandboxSettings): Promise<void> {
  const { tools } = settings;
  const options = `lowerdir=${rootPath},upperdir=${STAGED.rootLayers}/upper,workdir=${STAGED.rootLayers}/work`;
  const { code, stderr } = await runQuietly(tools.nsenter, [`--mount=/proc/${holderPid}/ns/mnt`, '--', tools.mount, '-t', 'overlay', 'overlay', '-o', options, STAGED.root]);
  if (code !== 0) throw new ContainerError(`could not mount the image root: ${stderr.trim() || `mount exited with ${code}`}`);
}

/** Whether an overlay can have its upper layer under `dir`; asked once per directory. */
const overlayProbes = new Map<string, Promise<boolean>>();
function overlaySupported(settings: SandboxSettings, dir: string, log: Logger): Promise<boolean> {
  let probe = overlayProbes.get(dir);
  if (probe === undefined) {
    probe = (async () => {
      const probeDir = join(dir, `.overlay-probe-${process.pid}`);
      try {
        for (const part of ['lower', 'upper', 'work', 'merged']) await mkdir(join(probeDir, part), { recursive: true, mode: 0o700 });
        const { tools } = settings;
        const options = `lowerdir=${probeDir}/lower,upperdir=${probeDir}/upper,workdir=${probeDir}/work`;
        // In a mount namespace of its own, gone with the command.
        const { code, stderr } = await runQuietly(tools.unshare, ['--mount', '--propagation', 'private', '--', tools.mount, '-t', 'overlay', 'overlay', '-o', options, join(probeDir, 'merged')]);
        if (code !== 0) log.error({ dir, error: stderr.trim() }, 'image-roots-read-only-no-overlay');
        return code === 0;
      } catch (error) {
        log.error({ dir, error: (error as Error).message }, 'image-roots-read-only-no-overlay');
        return false;
      } finally {
        await rm(probeDir, { recursive: true, force: true });
      }
    })();
    overlayProbes.set(dir, probe);
  }
  return probe;
}

/** Whether a child process has ended (its exit seen). */
function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Runs a helper to its end: its exit code and the last of what it said on stderr. */
function runQuietly(command: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: DEFAULT_PATH } });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-500)));
    child.once('error', (error) => resolve({ code: 127, stderr: error.message }));
    child.once('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

async function checkImageRoot(root: string): Promise<void> {
  if (!isAbsolute(root)) throw new ContainerError(`rootfs ${root} is not an absolute path`);
  // Mount points bwrap cannot create in a read-only root.
  for (const needed of ['tmp', 'home', 'proc', 'dev']) {
    const info = await stat(join(root, needed)).catch(() => undefined);
    if (!info?.isDirectory()) throw new ContainerError(`rootfs ${root} has no /${needed} directory to mount the container's own on`);
  }
}

/**
 * The container's /etc/passwd and /etc/group: the root's own, with two changes that programs
 * looking users up by name need (an SSH server above all; diego-sshd runs dropbear):
 *
 *   * a `vcap` user and group (uid and gid VCAP_UID, home /home/vcap, shell bash) when the root
 *     has none: the host root standing in for cflinuxfs4 usually has no vcap, and dropbear logs
 *     in only users getpwnam finds, whose home holds authorized_keys;
 *   * no `tty` group: inside the sandbox's user namespace only the container's uid and gid are
 *     mapped, and an SSH server that finds a tty group chowns each new pty to it, which the kernel
 *     refuses for an unmapped gid and the session ends; without one the pty keeps the user's
 *     group (devpts gives it the opener's), as on a system without a tty group.
 *
 * Written into <container>/etc (0755, files 0644) and bound read-only over /etc/passwd and
 * /etc/group. An image root whose /etc or account files are not plain files and directories (a
 * symlink could name a host file) keeps its own, untouched; undefined then.
 */
async function writeAccountFiles(rootPath: string, hostRoot: boolean, etcDir: string): Promise<boolean> {
  const read = async (name: string): Promise<string | undefined> => {
    const path = join(rootPath, 'etc', name);
    if (!hostRoot) {
      const etc = await lstat(join(rootPath, 'etc')).catch(() => undefined);
      const file = await lstat(path).catch(() => undefined);
      if (!etc?.isDirectory() || !file?.isFile()) return undefined;
    }
    return readFile(path, 'utf8').catch(() => undefined);
  };
  const passwd = await read('passwd');
  const group = await read('group');
  if (passwd === undefined || group === undefined) return false;
  const lines = (text: string) => text.split('\n').filter((line) => line.trim() !== '');
  const named = (list: string[], name: string) => list.some((line) => line.split(':')[0] === name);
  const users = lines(passwd);
  const shell = (await stat(join(rootPath, 'bin/bash')).catch(() => undefined))?.isFile() ? '/bin/bash' : '/bin/sh';
  if (!named(users, 'vcap')) users.push(`vcap:x:${VCAP_UID}:${VCAP_UID}::${CONTAINER_HOME}:${shell}`);
  const groups = lines(group).filter((line) => line.split(':')[0] !== 'tty');
  if (!named(groups, 'vcap')) groups.push(`vcap:x:${VCAP_UID}:`);
  await mkdir(etcDir, { mode: 0o755 });
  await chmod(etcDir, 0o755);
  await writeFile(join(etcDir, 'passwd'), `${users.join('\n')}\n`, { mode: 0o644 });
  await writeFile(join(etcDir, 'group'), `${groups.join('\n')}\n`, { mode: 0o644 });
  return true;
}

function isWritablePath(path: string): boolean {
  const normalized = normalize(path);
  return WRITABLE_ROOTS.some((root) => normalized === root || normalized.startsWith(`${root}/`));
}

/** Waits for the promise at most ms, leaving no timer behind. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  const timer = new AbortController();
  await Promise.race([promise, sleep(ms, undefined, { signal: timer.signal }).catch(() => undefined)]);
  timer.abort();
}

/** The last bytes a stream wrote, for error messages. */
function tailOf(stream: Readable | null): () => string {
  let tail = '';
  stream?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-MAX_STDERR_TAIL);
  });
  return () => tail.trim();
}

/** pasta's own messages, without its complaints about a missing syslog. */
function pastaMessages(stream: Readable): () => string {
  const tail = tailOf(stream);
  return () =>
    tail()
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('Failed to send'))
      .join('; ');
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1]?.trim() ?? '';
}

/** Bytes the directory takes on disk (allocated blocks), visiting at most MAX_DISK_WALK_ENTRIES entries. */
async function directoryBytes(root: string): Promise<number> {
  let total = 0;
  let visited = 0;
  const pending = [root];
  while (pending.length > 0 && visited < MAX_DISK_WALK_ENTRIES) {
    const dir = pending.pop()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      visited += 1;
      const path = join(dir, entry.name);
      const info = await lstat(path).catch(() => undefined);
      if (info === undefined) continue;
      total += info.blocks * 512;
      if (entry.isDirectory()) pending.push(path);
    }
  }
  return total;
}
