// Two `ccbridge nsync-bulker` daemons (real processes) and one embedded Locket: only the lock
// holder syncs; when it is killed, the standby takes over within the TTL plus a retry.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startEmbeddedDiego, type EmbeddedDiego } from '../../embedded/diego/index.js';
import { startEmbeddedLocket, type EmbeddedLocket } from '../../embedded/locket/index.js';
import { silentLogger } from '../../lib/log.js';
import { CcDouble, startCcDouble } from '../support/cc-double.js';

const CCBRIDGE = fileURLToPath(new URL('../../bin/ccbridge.js', import.meta.url));

let dataDir: string;
let diego: EmbeddedDiego;
let locket: EmbeddedLocket;
let cc: CcDouble;
const bulkers = new Map<string, ChildProcess>();

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-failover-'));
  const log = silentLogger();
  diego = await startEmbeddedDiego({ dataDir: join(dataDir, 'diego'), logger: log });
  locket = await startEmbeddedLocket({ dataDir: join(dataDir, 'locket'), logger: log });
  // No credentials checked: each bulker sends its own user name, which tells them apart.
  cc = await startCcDouble();
  for (const name of ['bulker-a', 'bulker-b']) {
    const child = spawn(
      process.execPath,
      [
        CCBRIDGE,
        'nsync-bulker',
        `-bbsAddress=${diego.url}`,
        `-ccBaseURL=${cc.url}`,
        `-ccUsername=${name}`,
        `-locketAddress=${locket.address}`,
        '-pollingInterval=100ms',
        '-lockTTL=1s',
        '-lockRetryInterval=100ms',
        '-logLevel=silent',
        `-dataDir=${join(dataDir, name)}`,
      ],
      { stdio: 'ignore' },
    );
    bulkers.set(name, child);
  }
});

after(async () => {
  for (const child of bulkers.values()) child.kill('SIGKILL');
  await cc.stop();
  await locket.close(100);
  await diego.close(100);
  rmSync(dataDir, { recursive: true, force: true });
});

function syncingBulkers(sinceIndex: number): Set<string> {
  const names = new Set<string>();
  for (const r of cc.requests.slice(sinceIndex)) {
    if (r.path !== '/internal/bulk/apps') continue;
    const user = Buffer.from((r.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().split(':')[0]!;
    names.add(user);
  }
  return names;
}

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test('one bulker syncs; the standby takes over when the holder is killed', async () => {
  await waitFor(() => syncingBulkers(0).size > 0, 20_000);
  // Watch a window of several polling intervals: only one bulker may be syncing.
  const windowStart = cc.requests.length;
  await new Promise((resolve) => setTimeout(resolve, 800));
  const active = syncingBulkers(windowStart);
  assert.equal(active.size, 1, `exactly one bulker syncs, saw ${[...active].join(', ')}`);
  const holder = [...active][0]!;
  const standby = holder === 'bulker-a' ? 'bulker-b' : 'bulker-a';

  const killedAt = Date.now();
  bulkers.get(holder)!.kill('SIGKILL');
  const afterKill = cc.requests.length;
  await waitFor(() => syncingBulkers(afterKill).has(standby), 5_000);
  const failoverMs = Date.now() - killedAt;
  assert.ok(failoverMs < 1_000 + 100 + 2_000, `takeover took ${failoverMs} ms`);
  // Once the standby works, nothing more comes from the killed holder (a request it had in
  // flight at the kill may still land just after).
  await new Promise((resolve) => setTimeout(resolve, 300));
  const taken = cc.requests.length;
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual([...syncingBulkers(taken)], [standby]);
});
