// `ccbridge diego`: the embedded Diego — a BBS-compatible API on SQLite with the auctioneer,
// task callbacks, convergence and the log-cache read API — with its cell, as one daemon. The
// all-in-one starts its Diego through the same builder, with the same flags.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExecutorPrerequisiteError, startEmbeddedCell } from '../../embedded/diego/cell/index.js';
import { createImageRegistry } from '../../embedded/diego/executor/registry.js';
import { startEmbeddedDiego, type EmbeddedDiego, type EmbeddedDiegoOptions, type EmbeddedDiegoTls } from '../../embedded/diego/index.js';
import { defineCommand, stopAll, type Stoppable } from '../../lib/daemon.js';
import { bool, checkListenAddress, duration, int, list, splitHostPort, string } from '../../lib/flags.js';
import type { Logger } from '../../lib/log.js';
import { commonFlags } from './common.js';
import { stagerRecipeFlags } from './recipes.js';
import { listenerTlsFlags, listenerTlsFrom } from './flags.js';

const notNegative = (value: number) => (value < 0 ? 'must be 0 or more' : undefined);

/** `8080,9090` or repeated: each a TCP port. */
export function parsePorts(values: readonly string[]): number[] {
  return values.flatMap((value) => value.split(',')).filter((port) => port !== '').map(Number);
}

const checkPorts = (values: string[]) => {
  for (const port of values.flatMap((value) => value.split(',')).filter((p) => p !== '')) {
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535) return `"${port}" is not a TCP port`;
  }
  return undefined;
};

/** The embedded Diego's own flags, shared by `ccbridge diego` and the all-in-one. */
export const diegoFlags = {
  convergeRepeatInterval: duration('how often the embedded Diego converges LRPs and kicks tasks', 30_000, {
    check: (v) => (v >= 100 ? undefined : 'must be at least 100ms'),
  }),
  cell: bool('run the embedded Diego\'s cell, which runs tasks and app instances in bubblewrap sandboxes (needs root, bubblewrap and passt); -cell=false runs without one', true),
  cellMemoryMb: int('memory the cell offers, in MB (0: all of the machine\'s)', 0, { check: notNegative }),
  cellDiskMb: int('disk the cell offers, in MB (0: the free space under -dataDir)', 0, { check: notNegative }),
  cellHostServicePorts: {
    ...list('host ports containers reach as 127.0.0.1:<port> (file server, uploader, CC blobstore, registry), comma-separated or repeated; the all-in-one adds its own file server, uploader and CC'),
    check: checkPorts,
  },
  // The cell pulls the images of docker work itself; the staging task's builder reads image
  // metadata from inside its container, so loopback registries named here are also forwarded
  // into containers (a loopback registry with TLS goes in -cellHostServicePorts).
  insecureDockerRegistry: stagerRecipeFlags.insecureDockerRegistry,
  dockerRegistryCACert: string('CA certificate (PEM file) the cell trusts, beside the system\'s, when it pulls docker images', '', {
    check: (v) => (v === '' || existsSync(v) ? undefined : `no such file: ${v}`),
  }),
  cellImageCacheMb: int('disk the cell keeps unused docker image layers and roots in, in MB; beyond it the least recently used go', 10_240, { check: notNegative }),
};

export interface DiegoFlagValues {
  dataDir: string;
  convergeRepeatInterval: number;
  cell: boolean;
  cellMemoryMb: number;
  cellDiskMb: number;
  cellHostServicePorts: string[];
  insecureDockerRegistry: string;
  dockerRegistryCACert: string;
  cellImageCacheMb: number;
  /** The stager's caching registry, where the all-in-one has one: forwarded into containers when it is on loopback. */
  dockerRegistryAddress?: string;
}

export interface StartedDiego extends Stoppable {
  diego: EmbeddedDiego;
  url: string;
  /**
   * Starts the cell, when -cell is on, once the host services its containers reach are up
   * (`extraPorts` join -cellHostServicePorts). Its stop drains its instances; stopping the Diego
   * stops the cell first if it still runs.
   */
  startCell(extraPorts?: readonly number[]): Promise<Stoppable & { description: string }>;
}

/** The embedded Diego on `listenAddress`, its data under <dataDir>/diego (and the cell's under <dataDir>/cell). */
export async function startDiegoFromFlags(
  flags: DiegoFlagValues,
  listenAddress: string,
  log: Logger,
  /** TLS of the BBS API (client certificates required when there is a CA); plain HTTP without. */
  tls?: EmbeddedDiegoTls,
  /** The client certificate its cell and completion callbacks present, and the callbacks' basic auth. */
  clients?: Pick<EmbeddedDiegoOptions, 'clientTls' | 'callbackAuthorizationFor'>,
): Promise<StartedDiego> {
  // The cell reports over the BBS's cell-side routes: with mutual TLS it needs a client certificate.
  if (tls?.ca !== undefined && flags.cell && clients?.clientTls?.cert === undefined) throw new Error('the embedded cell needs a client certificate for a BBS that requires one');
  const dir = (name: string) => {
    const path = join(flags.dataDir, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const { host, port } = splitHostPort(listenAddress);
  const diego = await startEmbeddedDiego({
    dataDir: dir('diego'),
    host,
    port,
    logger: log,
    tls,
    ...clients,
    timing: { convergenceIntervalMs: flags.convergeRepeatInterval, taskKickIntervalMs: flags.convergeRepeatInterval },
  });
  const running: Stoppable[] = [{ stop: () => diego.close() }];
  return {
    diego,
    url: diego.url,
    async startCell(extraPorts = []) {
      if (!flags.cell) return { description: 'none (-cell=false: tasks and instances wait for a cell)', stop: async () => {} };
      const registries = flags.insecureDockerRegistry.split(',').filter((registry) => registry !== '');
      const hostServicePorts = [...new Set([...extraPorts, ...parsePorts(flags.cellHostServicePorts), ...localRegistryPorts([...registries, flags.dockerRegistryAddress ?? ''])])];
      const cell = await startEmbeddedCell({
        diego,
        dataDir: dir('cell'),
        logger: log,
        capacity: { memoryMb: flags.cellMemoryMb || undefined, diskMb: flags.cellDiskMb || undefined },
        hostServicePorts,
        executorOptions: {
          imageRegistry: createImageRegistry({ caFile: flags.dockerRegistryCACert || undefined, insecureRegistries: registries }),
          imageCacheMaxBytes: flags.cellImageCacheMb * 1024 * 1024,
        },
      }).catch((error: unknown) => {
        // The one line a missing prerequisite stops the daemon with also says how to go on without a cell.
        throw error instanceof ExecutorPrerequisiteError ? new Error(`${error.message} (or start with -cell=false to run without a cell)`) : error;
      });
      let closed: Promise<void> | undefined;
      const stop = () => (closed ??= cell.close({ evacuate: true }).then(() => undefined));
      running.push({ stop });
      return { description: `${cell.cellId} (bubblewrap sandboxes; host ports ${hostServicePorts.join(', ') || 'none'} reachable inside)`, stop };
    },
    stop: () => stopAll(running).stop(),
  };
}

/** The ports of registries (`host:port`) on this machine's loopback, which containers can reach through a forward. */
export function localRegistryPorts(registries: readonly string[]): number[] {
  return registries.flatMap((registry) => {
    const match = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/.exec(registry);
    return match ? [Number(match[2])] : [];
  });
}

/** The port of each service URL that listens on this machine (only those map into a container's loopback). */
export function localServicePorts(urls: readonly string[]): number[] {
  return urls
    .map((serviceUrl) => new URL(serviceUrl))
    .filter((serviceUrl) => ['127.0.0.1', 'localhost', '0.0.0.0', '[::]', '[::1]'].includes(serviceUrl.hostname))
    .map((serviceUrl) => Number(serviceUrl.port || (serviceUrl.protocol === 'https:' ? 443 : 80)));
}

export default defineCommand({
  summary: 'the embedded Diego (BBS API on SQLite, auctioneer, convergence, task callbacks, log-cache read API) with its cell',
  flags: {
    ...commonFlags,
    listenAddress: string('host:port of the BBS API (and the log-cache read API)', '127.0.0.1:8889', { check: checkListenAddress }),
    ...diegoFlags,
    ...listenerTlsFlags,
  },
  async start(flags, log) {
    // With -listenerCACert every client, a real Cloud Controller included, must present a
    // certificate that CA signed; the cell (and the completion callbacks) present this daemon's own.
    const tls = listenerTlsFrom(flags);
    const started = await startDiegoFromFlags(flags, flags.listenAddress, log, tls, tls ? { clientTls: { ca: tls.ca, cert: tls.cert, key: tls.key } } : undefined);
    try {
      const cell = await started.startCell();
      process.stdout.write(`diego    bbs ${started.url}   (log-cache read API ${started.url}/api/v1/read/)\n  cell   ${cell.description}\n`);
      return started;
    } catch (error) {
      await started.stop();
      throw error;
    }
  },
});
