// Fuzzing every REST route of the gateway and every gRPC method of the Stager, Nsync and TPS
// services with malformed and random input (test/fuzz/fuzzer.ts says what is checked). The run
// is deterministic for a seed: FUZZ_SEED picks another, FUZZ_INPUTS another size, and
// FUZZ_ONLY=<n,...> replays single inputs of a failed run (with the same FUZZ_INPUTS).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { routesFor } from '../../gateway/routes.js';
import { describeInput, FUZZED_SERVICES, fuzzSettings, grpcMethods, runFuzz, splitInputs } from './fuzzer.js';
import { startFuzzTargets, type RunningFuzzTargets } from './targets.js';

const CI_INPUTS = 10_000;

describe('fuzzing the gateway routes and the gRPC methods', () => {
  let targets: RunningFuzzTargets;

  before(async () => {
    targets = await startFuzzTargets();
  });

  after(async () => {
    await targets?.close();
  });

  test('the route table and the generated definitions give every route and method to fuzz', () => {
    const routes = routesFor(FUZZED_SERVICES);
    const methods = grpcMethods();
    // Counted from the contracts: a new annotated RPC is fuzzed without a change here.
    const rpcCount = FUZZED_SERVICES.reduce((n, d) => n + Object.keys(d.methods).length, 0);
    assert.equal(methods.length, rpcCount);
    assert.ok(routes.length >= 9, `only ${routes.length} routes`);
    assert.ok(methods.some((m) => m.streaming), 'the streaming WatchInstances is fuzzed too');
  });

  // The per-request deadlines live in this process, beside the servers: a server that blocks the
  // event loop stops them too, so the whole test has a bound as well.
  test('no crash, no hang, no undeclared 5xx, every error in its declared shape', { timeout: 600_000 }, async () => {
    const { seed, inputs, only } = fuzzSettings(CI_INPUTS);
    const { rest, grpc } = splitInputs(inputs);
    console.log(`fuzz: seed ${seed} (FUZZ_SEED), ${inputs} inputs (FUZZ_INPUTS): ${rest} REST, ${grpc} gRPC${only ? `, only ${only.join(',')}` : ''}`);
    const report = await runFuzz(targets, { seed, rest, grpc, only, concurrency: 16, batch: 1_000, deadlineMs: 15_000 });
    console.log(`fuzz: ${report.inputs} inputs in ${report.seconds.toFixed(1)} s; outcomes ${JSON.stringify(Object.fromEntries([...report.counts].sort()))}`);
    // No crash: still answering at the end (runFuzz checked after every batch as well).
    await targets.healthy();
    const kinds = new Map<string, number>();
    for (const f of report.failures) {
      const kind = `${f.input.target} ${f.problem.replace(/\d+/g, 'N').slice(0, 80)}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    const shown = report.failures.slice(0, 10).map((f) => ({ seed: f.seed, index: f.index, problem: f.problem, input: describeInput(f.input) }));
    assert.equal(
      report.failures.length,
      0,
      `${report.failures.length} inputs broke the contract (replay with FUZZ_SEED=${seed} FUZZ_INPUTS=${inputs} FUZZ_ONLY=<index>):\n${JSON.stringify(Object.fromEntries(kinds), null, 2)}\n${JSON.stringify(shown, null, 2)}`,
    );
    if (!only) assert.ok(report.inputs >= CI_INPUTS || process.env.FUZZ_INPUTS !== undefined, 'the CI run makes at least 10,000 inputs');
  });
});
