// The Locket lock holder SIGKILLed (no release): the standby bulker or watcher takes the lock
// once the dead holder's TTL runs out. The failover time is printed (figures are checked in
// bench/failover, not here).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startEmbeddedDiego, type EmbeddedDiego } from '../../embedded/diego/index.js';
import { startEmbeddedLocket, type EmbeddedLocket } from '../../embedded/locket/index.js';
import { silentLogger } from '../../lib/log.js';
import { startCcDouble, type CcDouble } from '../support/cc-double.js';
import { measureFailover } from '../support/failover.js';

let dataDir: string;
let diego: EmbeddedDiego;
let locket: EmbeddedLocket;
let cc: CcDouble;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-lock-failover-'));
  const log = silentLogger();
  diego = await startEmbeddedDiego({ dataDir: join(dataDir, 'diego'), logger: log });
  locket = await startEmbeddedLocket({ dataDir: join(dataDir, 'locket'), logger: log });
  cc = await startCcDouble();
});

after(async () => {
  await cc.stop();
  await locket.close(100);
  await diego.close(100);
  rmSync(dataDir, { recursive: true, force: true });
});

for (const [command, key] of [
  ['nsync-bulker', 'nsync_bulker_lock'],
  ['tps-watcher', 'tps_watcher_lock'],
] as const) {
  test(`${command}: the holder SIGKILLed, the standby takes the lock`, async (t) => {
    const measured = await measureFailover({
      command,
      key,
      locketAddress: locket.address,
      bbsUrl: diego.url,
      ccUrl: cc.url,
      dataDir: join(dataDir, command),
      lockTtl: '1s',
      lockRetryInterval: '100ms',
    });
    assert.notEqual(measured.standbyPid, measured.holderPid);
    t.diagnostic(`${command} failover after SIGKILL: ${measured.failoverMs.toFixed(0)} ms (lock TTL 1 s, retry every 100 ms)`);
    console.log(`${command} failover after SIGKILL: ${measured.failoverMs.toFixed(0)} ms (lock TTL 1 s, retry every 100 ms)`);
  });
}
