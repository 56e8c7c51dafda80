// The machine-readable summary every benchmark prints as its last line, for bench/run.ts and
// BENCHMARKS.md: `BENCH-RESULT {json}`. Process layout, load model and data shape are stated in
// the header comment of each run.ts, which the report quotes.

export interface BenchRow {
  /** What was measured, e.g. "co-located gateway, GET /v1/actual_lrps/:guid". */
  figure: string;
  value: number;
  unit: string;
  /** The baseline measured in the same run, when there is one. */
  baseline?: { name: string; value: number; unit?: string };
  /** figure / baseline (or as the goal defines it). */
  ratio?: number;
  /** The goal in words, e.g. "≥ 0.80× bare node:http". */
  goal?: string;
  met?: boolean;
}

export interface BenchResult {
  name: string;
  /** The sizes this run used (so a shrunken run says so). */
  sizes?: string;
  rows: BenchRow[];
  notes?: string[];
}

export const BENCH_RESULT_PREFIX = 'BENCH-RESULT ';

export function printBenchResult(result: BenchResult): void {
  const round = (n: number) => (Number.isFinite(n) ? Math.round(n * 1000) / 1000 : n);
  const rows = result.rows.map((row) => ({
    ...row,
    value: round(row.value),
    ...(row.ratio === undefined ? {} : { ratio: round(row.ratio) }),
    ...(row.baseline === undefined ? {} : { baseline: { ...row.baseline, value: round(row.baseline.value) } }),
  }));
  console.log(`${BENCH_RESULT_PREFIX}${JSON.stringify({ ...result, rows })}`);
}
