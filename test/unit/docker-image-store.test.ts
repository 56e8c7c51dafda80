// The cell's image store when its callers give up: a pull whose every caller has gone (the LRP
// removed while its image was being pulled) may still fail later, and that failure must stay the
// store's own business, never an unhandled rejection that ends the process. The registry here is a
// stand-in that fails when told to; the real registry path is test/integration/docker-run.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ImagePullError, createImageStore, type ImageRegistry } from '../../embedded/diego/executor/images.js';
import { createLogger } from '../../lib/log.js';

function failingRegistry(): { registry: ImageRegistry; fail: (message: string) => void; resolves: () => number } {
  let fail: (message: string) => void = () => undefined;
  let resolves = 0;
  const failed = new Promise<never>((_, reject) => {
    fail = (message) => reject(new Error(message));
  });
  failed.catch(() => undefined);
  return {
    registry: {
      resolve: () => {
        resolves += 1;
        return failed;
      },
      fetchBlob: () => failed,
    },
    fail,
    resolves: () => resolves,
  };
}

async function withStore(run: (store: ReturnType<typeof createImageStore>, registry: ReturnType<typeof failingRegistry>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ccbridge-images-'));
  const registry = failingRegistry();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const store = createImageStore({
      dir,
      registry: registry.registry,
      logger: createLogger({ level: 'silent' }),
      hostUid: process.getuid?.() ?? 0,
      hostGid: process.getgid?.() ?? 0,
      maxBytes: 1 << 30,
      maxIdleMs: 60_000,
      pullTimeoutMs: 30_000,
    });
    await run(store, registry);
    // Unhandled rejections are reported after the microtask queue drains.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(unhandled, [], 'no rejection went unhandled');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await rm(dir, { recursive: true, force: true });
  }
}

test('a caller that gives up mid-pull gets its abort; the pull failing afterwards harms nobody', async () => {
  await withStore(async (store, registry) => {
    const gone = new AbortController();
    const acquiring = store.acquire('docker://127.0.0.1:1/library/app#latest', undefined, gone.signal);
    await new Promise((resolve) => setImmediate(resolve));
    gone.abort(new Error('lrp removed'));
    await assert.rejects(acquiring, /lrp removed/);
    registry.fail('registry went away');
  });
});

test('a caller whose signal is aborted already starts no wait, and the pull it started may fail', async () => {
  await withStore(async (store, registry) => {
    const gone = new AbortController();
    gone.abort(new Error('lrp removed'));
    await assert.rejects(store.acquire('docker://127.0.0.1:1/library/app#latest', undefined, gone.signal), /lrp removed/);
    registry.fail('registry went away');
  });
});

test('a caller still waiting sees the pull failure as an ImagePullError naming the image', async () => {
  await withStore(async (store, registry) => {
    const acquiring = store.acquire('docker://127.0.0.1:1/library/app#latest', { username: 'u', password: 's3cret-pw' });
    await new Promise((resolve) => setImmediate(resolve));
    registry.fail('denied for s3cret-pw');
    const error = await acquiring.then(
      () => assert.fail('acquired'),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof ImagePullError);
    assert.match(error.message, /failed to pull image .*library\/app/);
    assert.doesNotMatch(error.message, /s3cret-pw/);
    assert.equal(registry.resolves(), 1);
  });
});
