import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSshKeyPool } from '../../services/nsync/ssh-key-pool.js';

const pair = (n: number) => ({ privateKeyPem: `pem-${n}`, authorizedKey: `ssh-rsa ${n}`, fingerprint: `fp-${n}` });

test('keys are made ahead, handed out at once, and the pool refills', async () => {
  let made = 0;
  let fallbacks = 0;
  const pool = createSshKeyPool({ size: 3, generate: async () => pair(++made), fallback: () => pair(-++fallbacks) });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(made, 0, 'nothing is made before the first key is asked for');
  assert.equal(pool.take().fingerprint, 'fp--1', 'the first key is made on the spot');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(pool.available, 3);
  const taken = [pool.take(), pool.take(), pool.take(), pool.take()];
  assert.deepEqual(taken.map((p) => p.fingerprint), ['fp-1', 'fp-2', 'fp-3', 'fp--2'], 'an empty pool falls back to making one on the spot');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(pool.available, 3, 'refilled');
  pool.close();
  assert.equal(pool.available, 0);
});

test('the default pool makes real RSA keys off the event loop', async () => {
  const pool = createSshKeyPool({ size: 1 });
  pool.take();
  const deadline = Date.now() + 20_000;
  while (pool.available === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const key = pool.take();
  pool.close();
  assert.match(key.privateKeyPem, /^-----BEGIN RSA PRIVATE KEY-----/);
  assert.match(key.authorizedKey, /^ssh-rsa AAAA/);
  assert.match(key.fingerprint, /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
});
