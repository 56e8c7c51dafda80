// Secrets never reach a log line: by field path, and by their shape anywhere in the line.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../lib/log.js';

function capture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { log: createLogger({ destination: stream, level: 'debug' }), text: () => Buffer.concat(chunks).toString() };
}

const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAplanted-secret-key\n-----END RSA PRIVATE KEY-----\n';

test('secret fields are redacted wherever they appear', async () => {
  const { log, text } = capture();
  log.info({ docker_password: 'planted-1', app: { dockerPassword: 'planted-2', imagePassword: 'planted-3' }, headers: { authorization: 'Basic planted-4' } }, 'x');
  await new Promise((resolve) => setImmediate(resolve));
  for (const secret of ['planted-1', 'planted-2', 'planted-3', 'planted-4']) assert.ok(!text().includes(secret), secret);
});

test('private keys, password arguments and URL credentials are redacted by shape, also inside errors', async () => {
  const { log, text } = capture();
  log.error({ err: new Error(`builder failed: -dockerPassword=planted-5 key ${PEM}`) }, 'failed');
  log.info({ url: 'http://user:planted-6@127.0.0.1:9022/staging/droplets/x' }, 'uploading');
  log.info({ detail: `args -password planted-7 and ${PEM}` }, 'y');
  await new Promise((resolve) => setImmediate(resolve));
  const out = text();
  for (const secret of ['planted-5', 'planted-6', 'planted-7', 'planted-secret-key']) assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
  assert.match(out, /\[REDACTED PRIVATE KEY\]/);
  assert.match(out, /http:\/\/user:\[REDACTED\]@127\.0\.0\.1:9022/);
  for (const line of out.trim().split('\n')) JSON.parse(line);
});

test('listener and bridge passwords, argument lists, deeply nested fields and header values are redacted', async () => {
  const { log, text } = capture();
  log.info({ listenerPassword: 'planted-8', flags: { bridgePassword: 'planted-9' } }, 'flags');
  log.info({ args: ['-dockerUser', 'u', '-dockerPassword', 'planted-10', '-dockerEmail', 'e'] }, 'builder-args');
  log.info({ task: { definition: { action: { env: [{ name: 'X', value: 'y' }] }, docker_password: 'planted-11' } } }, 'deep');
  log.error({ err: new Error(`rejected header Basic ${Buffer.from('user:planted-12').toString('base64')}`) }, 'failed');
  await new Promise((resolve) => setImmediate(resolve));
  const out = text();
  for (const secret of ['planted-8', 'planted-9', 'planted-10', 'planted-11', Buffer.from('user:planted-12').toString('base64')]) assert.ok(!out.includes(secret), `${secret} leaked: ${out}`);
});
