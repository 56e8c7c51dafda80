// bench/fuzz: the fuzzer of test/fuzz at volume — inputs per second and the outcomes by status.
//
// Process layout: one process — the test bridge (gateway with in-process dispatch, the Stager,
// Nsync and TPS services, the embedded Diego on SQLite, the CC test double) and a gRPC server
// serving the same services, with the fuzzer sending to both over 127.0.0.1; 2 cores.
// Load model: closed loop, 16 inputs in flight, FUZZ_INPUTS inputs (default 200,000: 70% REST
// over every gateway route, 30% gRPC over every Stager, Nsync and TPS method), a health check
// of both servers after every 1,000; seeded (FUZZ_SEED, default as in the test).
// Data shape: malformed and random bodies — random bytes, truncated, deeply nested and huge
// JSON, wrong types per field from the message descriptors, odd path segments and queries,
// random protobuf and mutated valid messages.
// Goal: zero contract failures (no crash, no hang, no undeclared 5xx, errors in their shape).
import { describeInput, fuzzSettings, runFuzz, splitInputs } from '../../test/fuzz/fuzzer.js';
import { startFuzzTargets } from '../../test/fuzz/targets.js';
import { printBenchResult } from '../lib/result.js';

const { seed, inputs } = fuzzSettings(200_000);
const { rest, grpc } = splitInputs(inputs);
console.log(`bench/fuzz: seed ${seed}, ${inputs} inputs (${rest} REST, ${grpc} gRPC)`);
const targets = await startFuzzTargets();
let exitCode = 0;
try {
  let lastReport = performance.now();
  const report = await runFuzz(targets, {
    seed,
    rest,
    grpc,
    concurrency: 16,
    batch: 1_000,
    deadlineMs: 15_000,
    onProgress(done, total) {
      if (performance.now() - lastReport < 10_000 && done < total) return;
      lastReport = performance.now();
      console.log(`  ${done} / ${total}`);
    },
  });
  await targets.healthy();
  const perSecond = report.inputs / report.seconds;
  console.log(`${report.inputs} inputs in ${report.seconds.toFixed(1)} s: ${perSecond.toFixed(0)} inputs/s`);
  console.log('outcomes:');
  for (const [label, count] of [...report.counts].sort((a, b) => b[1] - a[1])) console.log(`  ${String(count).padStart(8)}  ${label}`);
  console.log(`slowest inputs: ${report.slowest.map((s) => `#${s.index} ${s.ms} ms (${s.label})`).join(', ')}`);
  for (const failure of report.failures.slice(0, 20)) console.log(`FAILURE #${failure.index}: ${failure.problem}\n  ${JSON.stringify(describeInput(failure.input))}`);
  const statusCounts = (prefix: string) => [...report.counts].filter(([label]) => label.startsWith(prefix)).reduce((n, [, c]) => n + c, 0);
  printBenchResult({
    name: 'fuzz',
    sizes: `${inputs} inputs (${rest} REST, ${grpc} gRPC), seed ${seed}`,
    rows: [
      { figure: 'fuzz inputs checked per second', value: perSecond, unit: 'inputs/s' },
      { figure: 'contract failures', value: report.failures.length, unit: 'inputs', goal: '0', met: report.failures.length === 0 },
      { figure: 'REST answers 2xx', value: statusCounts('rest 2'), unit: 'inputs' },
      { figure: 'REST answers 4xx', value: statusCounts('rest 4'), unit: 'inputs' },
      { figure: 'REST answers 5xx (declared by the spec for the route)', value: statusCounts('rest 5'), unit: 'inputs' },
      { figure: 'gRPC answers OK', value: statusCounts('grpc OK'), unit: 'inputs' },
      { figure: 'gRPC answers with an error status and ErrorInfo', value: statusCounts('grpc ') - statusCounts('grpc OK'), unit: 'inputs' },
      { figure: 'slowest input', value: report.slowest[0]?.ms ?? 0, unit: 'ms' },
    ],
    notes: [`outcomes: ${JSON.stringify(Object.fromEntries([...report.counts].sort()))}`],
  });
  if (report.failures.length > 0) exitCode = 1;
} finally {
  await targets.close();
}
process.exit(exitCode);
