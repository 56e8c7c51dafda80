// Lock failover between two daemons of one kind (nsync-bulker, tps-watcher), as real processes:
// both start against one Locket, the holder is found by asking Locket who owns the key, it is
// SIGKILLed (no release; or SIGTERMed, releasing), and the time until Locket names the standby as
// owner is measured.
// Shared by test/faults/lock-failover.test.ts and bench/failover/run.ts.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectToLocket } from '../../clients/locket/client.js';
import { startDaemon, stopDaemon, type Daemon } from './daemons.js';

export interface FailoverOptions {
  command: 'nsync-bulker' | 'tps-watcher';
  /** The Locket key the command holds. */
  key: string;
  locketAddress: string;
  bbsUrl: string;
  ccUrl: string;
  dataDir: string;
  /** -lockTTL (whole seconds on the wire) and -lockRetryInterval. */
  lockTtl: string;
  lockRetryInterval: string;
  /** How the holder goes: SIGKILL (default; the lock runs out its TTL) or SIGTERM (released). */
  signal?: 'SIGKILL' | 'SIGTERM';
  /** How long to wait for each step before giving up. */
  timeoutMs?: number;
}

export interface FailoverMeasurement {
  /** From the signal to the holder to Locket naming the standby as owner. */
  failoverMs: number;
  holderPid: number;
  standbyPid: number;
}

export async function measureFailover(options: FailoverOptions): Promise<FailoverMeasurement> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const ready = /active while it holds the Locket lock/;
  const start = (name: string) =>
    startDaemon(options.command, [
      options.command,
      `-bbsAddress=${options.bbsUrl}`,
      `-ccBaseURL=${options.ccUrl}`,
      `-locketAddress=${options.locketAddress}`,
      `-lockTTL=${options.lockTtl}`,
      `-lockRetryInterval=${options.lockRetryInterval}`,
      '-pollingInterval=1s',
      '-logLevel=silent',
      `-dataDir=${join(options.dataDir, name)}`,
    ].filter((arg) => options.command === 'nsync-bulker' || !arg.startsWith('-pollingInterval')), ready, timeoutMs);
  const connection = connectToLocket({ address: options.locketAddress, defaultDeadlineMs: 5_000 });
  const daemons: Daemon[] = [];
  const pid = (d: Daemon) => d.child.pid!;
  const ownerPid = async (): Promise<number | undefined> => {
    try {
      const { resource } = await connection.client.fetch({ key: options.key });
      const owner = resource?.owner ?? '';
      const found = daemons.find((d) => owner.includes(`-${pid(d)}-`));
      return found && pid(found);
    } catch {
      return undefined;
    }
  };
  const poll = async (what: string, probe: () => Promise<boolean>) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await probe())) {
      for (const d of daemons.slice(1)) if (d.child.exitCode !== null) throw new Error(`${options.command} exited while waiting for ${what}: ${d.output()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  try {
    daemons.push(await start('a'));
    await poll('the first daemon to take the lock', async () => (await ownerPid()) === pid(daemons[0]!));
    daemons.push(await start('b'));
    const [holder, standby] = daemons as [Daemon, Daemon];
    const killedAt = performance.now();
    holder.child.kill(options.signal ?? 'SIGKILL');
    let tookOverAt = 0;
    await poll('the standby to take the lock', async () => {
      const owner = await ownerPid();
      tookOverAt = performance.now();
      return owner === pid(standby);
    });
    return { failoverMs: tookOverAt - killedAt, holderPid: pid(holder), standbyPid: pid(standby) };
  } finally {
    await Promise.all(daemons.filter((d) => d.child.exitCode === null && d.child.signalCode === null).map((d) => stopDaemon(d, 'SIGKILL')));
    connection.close();
  }
}
