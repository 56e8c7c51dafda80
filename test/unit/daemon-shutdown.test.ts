// lib/daemon's stopAll: components stop in the reverse order of their start, each handed what is
// left of one grace period (none without a grace period), so the whole shutdown stays within it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stopAll, type Stoppable } from '../../lib/daemon.js';

function recorder(calls: { name: string; graceMs: number | undefined }[], name: string, takesMs = 0): Stoppable {
  return {
    async stop(graceMs) {
      calls.push({ name, graceMs });
      if (takesMs > 0) await new Promise((resolve) => setTimeout(resolve, takesMs));
    },
  };
}

test('reverse order, each with what is left of the grace period', async () => {
  const calls: { name: string; graceMs: number | undefined }[] = [];
  await stopAll([recorder(calls, 'first'), recorder(calls, 'second'), recorder(calls, 'third', 30)]).stop(10_000);
  assert.deepEqual(calls.map((c) => c.name), ['third', 'second', 'first']);
  const [third, second, first] = calls.map((c) => c.graceMs!);
  assert.ok(third! <= 10_000 && third! > 0);
  assert.ok(second! <= third! - 20, `the time the third took is gone from the second's grace (${third} → ${second})`);
  assert.ok(first! <= second!);
});

test('a spent grace period leaves 0, never a negative wait', async () => {
  const calls: { name: string; graceMs: number | undefined }[] = [];
  await stopAll([recorder(calls, 'first'), recorder(calls, 'second', 30)]).stop(5);
  assert.equal(calls[1]!.graceMs, 0);
});

test('without a grace period, each component keeps its own default', async () => {
  const calls: { name: string; graceMs: number | undefined }[] = [];
  await stopAll([recorder(calls, 'first'), recorder(calls, 'second')]).stop();
  assert.deepEqual(calls, [
    { name: 'second', graceMs: undefined },
    { name: 'first', graceMs: undefined },
  ]);
});
