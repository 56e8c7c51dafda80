// Child processes of bench/bbs/run.ts.
//   seed <dataDir> <from> <to>  inserts desired LRPs from..to-1 straight into the embedded
//                               Diego's store (its desired LRP table, one transaction per batch),
//                               the way the BBS would have stored them after desire, and exits.
//   serve <dataDir>             starts the embedded Diego on that store and prints its port.
// Seeding runs in its own process so that the server's peak RSS is that of serving only.
import { performance } from 'node:perf_hooks';
import { populateMetricsGuid, startEmbeddedDiego } from '../../embedded/diego/index.js';
import { openDiegoDatabase } from '../../embedded/diego/index.js';
import { createDesiredLrpTable } from '../../embedded/diego/store/desired-lrps.js';
import { silentLogger } from '../../lib/log.js';
import { ccShapedLrp, sshKeys } from './lrp-shape.js';

const BATCH = 5_000;

async function main(): Promise<void> {
  const [mode, dataDir, fromText, toText] = process.argv.slice(2);
  if (!dataDir) throw new Error('usage: server.ts seed|serve <dataDir> [from to]');

  if (mode === 'seed') {
    const from = Number(fromText);
    const to = Number(toText);
    const started = performance.now();
    const db = openDiegoDatabase(dataDir);
    const table = createDesiredLrpTable(db);
    const keys = sshKeys(8);
    let bytes = 0;
    for (let start = from; start < to; start += BATCH) {
      db.transaction(() => {
        for (let n = start; n < Math.min(to, start + BATCH); n++) {
          const lrp = populateMetricsGuid(ccShapedLrp(n, keys[n % keys.length]!));
          if (!table.insert(lrp)) throw new Error(`process guid taken: ${lrp.processGuid}`);
        }
      })();
    }
    bytes = (db.prepare('SELECT sum(length(scheduling_info)) FROM desired_lrps').pluck().get() as number) ?? 0;
    const recordBytes = (db.prepare('SELECT sum(length(record)) FROM desired_lrps').pluck().get() as number) ?? 0;
    db.close();
    process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - started) / 1000, schedulingInfoBytes: bytes, recordBytes })}\n`);
    return;
  }

  if (mode === 'serve') {
    // Convergence off (no background timers): the seeded LRPs have no actual LRPs, and a
    // convergence pass creating 250k of them would run alongside the request under test. No cell
    // registers, so the auctioneer has nothing to do; only the measured requests run here.
    const diego = await startEmbeddedDiego({ dataDir, port: 0, logger: silentLogger(), background: false });
    process.stdout.write(`${JSON.stringify({ port: diego.port, url: diego.url })}\n`);
    const stop = () => void diego.close(0).then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
