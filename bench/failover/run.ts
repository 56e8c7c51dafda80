// Lock failover time: two daemons of one kind (nsync-bulker, tps-watcher) run as real processes
// against one embedded Locket (in this process, with the embedded Diego and a CC double); the
// holder is SIGKILLed and the time until Locket names the standby as owner is measured. The
// baseline, measured in the same run, is the holder stopped with SIGTERM, which releases the
// lock. Lock TTL 1 s (the smallest the wire allows), retry interval 100 ms; ROUNDS per daemon.
//
//   node --import tsx bench/failover/run.ts [rounds]     (or BENCH_FAILOVER_ROUNDS; 3 by default)
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedDiego } from '../../embedded/diego/index.js';
import { startEmbeddedLocket } from '../../embedded/locket/index.js';
import { silentLogger } from '../../lib/log.js';
import { startCcDouble } from '../../test/support/cc-double.js';
import { measureFailover } from '../../test/support/failover.js';
import { printBenchResult, type BenchRow } from '../lib/result.js';

const ROUNDS = Number(process.argv[2] ?? process.env.BENCH_FAILOVER_ROUNDS ?? 3);
const TTL_MS = 1_000;
const RETRY_MS = 100;

const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-bench-failover-'));
const log = silentLogger();
const diego = await startEmbeddedDiego({ dataDir: join(dataDir, 'diego'), logger: log });
const locket = await startEmbeddedLocket({ dataDir: join(dataDir, 'locket'), logger: log });
const cc = await startCcDouble();

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const rows: BenchRow[] = [];
try {
  console.log(`lock failover, ${ROUNDS} rounds each, lock TTL ${TTL_MS} ms, retry ${RETRY_MS} ms, ${cpus().length} cpus`);
  for (const [command, key] of [
    ['nsync-bulker', 'nsync_bulker_lock'],
    ['tps-watcher', 'tps_watcher_lock'],
  ] as const) {
    const killed: number[] = [];
    const terminated: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
        const measured = await measureFailover({
          command,
          key,
          signal,
          locketAddress: locket.address,
          bbsUrl: diego.url,
          ccUrl: cc.url,
          dataDir: join(dataDir, `${command}-${signal}-${round}`),
          lockTtl: `${TTL_MS}ms`,
          lockRetryInterval: `${RETRY_MS}ms`,
        });
        (signal === 'SIGKILL' ? killed : terminated).push(measured.failoverMs);
        console.log(`  ${command.padEnd(13)} ${signal}  failover ${measured.failoverMs.toFixed(0)} ms`);
      }
    }
    const kill = median(killed);
    const term = median(terminated);
    rows.push({
      figure: `${command}: failover after the holder is SIGKILLed, median`,
      value: kill,
      unit: 'ms',
      baseline: { name: 'failover after SIGTERM (lock released), median', value: term, unit: 'ms' },
      ratio: kill / term,
      goal: `≤ lock TTL + retry interval (${TTL_MS + RETRY_MS} ms)`,
      met: kill <= TTL_MS + RETRY_MS,
    });
    rows.push({
      figure: `${command}: failover after SIGTERM (lock released), median`,
      value: term,
      unit: 'ms',
      goal: `well under the lock TTL (≤ ${TTL_MS / 2} ms): the standby does not wait out the TTL`,
      met: term <= TTL_MS / 2,
    });
  }
  printBenchResult({
    name: 'failover',
    sizes: `${ROUNDS} rounds per daemon and signal; lock TTL ${TTL_MS} ms, retry ${RETRY_MS} ms`,
    rows,
    notes: ['the time runs from the signal to the first Locket Fetch naming the standby (polled every 10 ms)'],
  });
} finally {
  await cc.stop();
  await locket.close(100);
  await diego.close(100);
  rmSync(dataDir, { recursive: true, force: true });
}
