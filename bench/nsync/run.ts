// bench/nsync: one bulker pass at scale.
//
// Process layout (all on 127.0.0.1, sharing 2 cores): the embedded Diego serving a store seeded
// directly (bench/bbs's seeder: CC-shaped desired LRPs with routes, a diego-ssh key, env,
// setup and codependent actions; convergence and cell off), a fake CC serving the bulk
// fingerprint and desired-app endpoints from the same state, and the bulker — each in its own
// process; the bulker's time and peak RSS are reported.
// Load model: one sync pass per scenario — no change (CC and Diego in sync), then dirty (1%
// stale, 1% missing, 1% extra) — at N = 10k, 25k, 100k, 250k (BENCH_SIZES), batch 500,
// 50 Diego writes in flight.
// Anchors: CC's sync takes ~15 s at ~10k apps; the BBS fetch alone took 15.1 s at 200k.
// Goal: a no-change pass at 250k under 10 s and under 1 GiB RSS, near-linear in N.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, stopChildren } from '../lib/child.js';
import { printBenchResult, type BenchRow } from '../lib/result.js';

const SIZES = (process.env.BENCH_SIZES ?? '10000,25000,100000,250000').split(',').map(Number);
const here = (name: string) => fileURLToPath(new URL(name, import.meta.url));
const bbsServer = fileURLToPath(new URL('../bbs/server.ts', import.meta.url));

interface Pass {
  desired: number;
  updated: number;
  removed: number;
  invalid: number;
  failed: number;
  freshnessBumped: boolean;
  durationMs: number;
  peakRssBytes: number;
}

function runBulker(bbsUrl: string, ccUrl: string): Pass {
  const out = execFileSync(process.execPath, ['--import', 'tsx', here('./bulker.ts'), bbsUrl, ccUrl], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Pass;
}

const rows: string[] = [];
const noChange: { n: number; ms: number }[] = [];
const resultRows: BenchRow[] = [];
try {
  for (const n of SIZES) {
    const dataDir = mkdtempSync(join(tmpdir(), `bench-nsync-${n}-`));
    execFileSync(process.execPath, ['--import', 'tsx', bbsServer, 'seed', dataDir, '0', String(n)], { stdio: 'ignore' });
    for (const scenario of ['no change', 'dirty'] as const) {
      const { info: cc, child: ccChild } = await startChild<{ url: string }>(here('./cc.ts'), [dataDir, scenario === 'dirty' ? 'dirty' : 'clean']);
      const { info: bbs, child: bbsChild } = await startChild<{ url: string }>(bbsServer, ['serve', dataDir]);
      const pass = runBulker(bbs.url, cc.url);
      if (scenario === 'no change') noChange.push({ n, ms: pass.durationMs });
      const atGoalSize = n === 250_000 && scenario === 'no change';
      resultRows.push({ figure: `bulker pass, ${scenario}, N=${n}`, value: pass.durationMs / 1000, unit: 's', ...(atGoalSize ? { goal: '< 10 s', met: pass.durationMs < 10_000 } : {}) });
      resultRows.push({ figure: `bulker peak RSS, ${scenario}, N=${n}`, value: pass.peakRssBytes / 2 ** 20, unit: 'MiB', ...(atGoalSize ? { goal: '< 1024 MiB', met: pass.peakRssBytes < 2 ** 30 } : {}) });
      rows.push(
        `${String(n).padStart(7)}  ${scenario.padEnd(9)}  ${(pass.durationMs / 1000).toFixed(2).padStart(7)} s  peak RSS ${(pass.peakRssBytes / 2 ** 20).toFixed(0).padStart(5)} MiB   desired ${pass.desired} updated ${pass.updated} removed ${pass.removed} failed ${pass.failed} fresh ${pass.freshnessBumped}`,
      );
      console.log(rows.at(-1));
      ccChild.kill('SIGINT');
      bbsChild.kill('SIGINT');
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log('\nbench/nsync: one bulker pass (the bulker process alone: time and peak RSS)');
  console.log('      N  scenario      time        memory');
  for (const row of rows) console.log(row);
  if (noChange.length > 1) {
    const first = noChange[0]!;
    const last = noChange.at(-1)!;
    console.log(`no-change time ratio N=${last.n}/N=${first.n}: ${(last.ms / first.ms).toFixed(1)} for ${(last.n / first.n).toFixed(1)}× the apps (linear would be ${(last.n / first.n).toFixed(1)})`);
  }
  console.log('goal: no-change pass at 250k under 10 s and under 1 GiB RSS');
  const notes: string[] = [];
  if (noChange.length > 1) {
    const first = noChange[0]!;
    const last = noChange.at(-1)!;
    resultRows.push({
      figure: `no-change time ratio N=${last.n} / N=${first.n}`,
      value: last.ms / first.ms,
      unit: '×',
      baseline: { name: 'linear scaling', value: last.n / first.n, unit: '×' },
      ratio: last.ms / first.ms / (last.n / first.n),
      goal: 'near-linear (ratio ≈ 1)',
    });
  }
  if (!SIZES.includes(250_000)) notes.push('the goal is stated at N = 250k, which this run did not include');
  printBenchResult({ name: 'nsync', sizes: `N = ${SIZES.join(', ')}`, rows: resultRows, notes });
} finally {
  stopChildren();
}
process.exit(0);
