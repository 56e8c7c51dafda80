// bench/nsync's bulker process: one sync pass against the given BBS and CC, then its summary,
// duration and peak RSS as one JSON line.
import { readFileSync } from 'node:fs';
import { createBbsClient } from '../../clients/bbs/index.js';
import { createCcClient } from '../../clients/cc/client.js';
import { silentLogger } from '../../lib/log.js';
import { createSshKeyPool } from '../../services/nsync/ssh-key-pool.js';
import { buildBulker } from '../../cmd/wiring/services.js';

const [bbsUrl, ccUrl] = process.argv.slice(2);
const log = silentLogger();
const bbs = createBbsClient({ url: bbsUrl!, logger: log, timeoutMs: 600_000 });
const cc = createCcClient({ baseUrl: ccUrl!, timeoutMs: 60_000 });
const bulker = buildBulker({
  bbs,
  cc,
  logger: log,
  bbsTimeoutMs: 600_000,
  recipe: {
    lifecycles: { 'buildpack/cflinuxfs4': 'buildpack_app_lifecycle/buildpack_app_lifecycle.tgz' },
    fileServerUrl: 'http://127.0.0.1:8080',
    privilegedContainers: false,
    defaultHealthCheckTimeoutSeconds: 60,
    generateSshKeyPair: createSshKeyPool({ size: 16 }).take,
  },
  config: { batchSize: 500, concurrency: 50 },
});
const summary = await bulker.syncOnce();
const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
process.stdout.write(`${JSON.stringify({ ...summary, problems: summary.problems.slice(0, 3), peakRssBytes: Number(hwm?.[1] ?? 0) * 1024 })}\n`);
bbs.close();
cc.close();
process.exit(0);
