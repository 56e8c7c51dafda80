// `ccbridge diego`'s flags: the cell's host service ports and which service URLs can be mapped
// into a container's loopback.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diegoFlags, localRegistryPorts, localServicePorts, parsePorts } from '../../cmd/commands/diego.js';
import { FlagError, parseFlags } from '../../lib/flags.js';

test('host service ports: comma-separated, repeated, or both', () => {
  const { values } = parseFlags(diegoFlags, ['-cellHostServicePorts=8080,9090', '--cellHostServicePorts=9022']);
  assert.deepEqual(parsePorts(values.cellHostServicePorts), [8080, 9090, 9022]);
  assert.deepEqual(parsePorts(parseFlags(diegoFlags, []).values.cellHostServicePorts), []);
});

test('a host service port that is not a TCP port stops the daemon with one line', () => {
  const cases = [
    { name: 'a name', input: 'http', want: /"http" is not a TCP port/ },
    { name: 'zero', input: '0', want: /"0" is not a TCP port/ },
    { name: 'too big', input: '8080,65536', want: /"65536" is not a TCP port/ },
    { name: 'an address', input: '127.0.0.1:8080', want: /is not a TCP port/ },
  ];
  for (const { name, input, want } of cases) {
    assert.throws(() => parseFlags(diegoFlags, [`-cellHostServicePorts=${input}`]), (error: unknown) => error instanceof FlagError && want.test(error.message), name);
  }
});

test('only services on this machine map into a container, by port (scheme default when none)', () => {
  const cases = [
    { input: ['http://127.0.0.1:8080', 'http://localhost:9090/path'], want: [8080, 9090] },
    { input: ['https://127.0.0.1', 'http://[::1]:9022'], want: [443, 9022] },
    { input: ['https://cc.service.cf.internal:9023', 'http://10.0.0.5:8080'], want: [] },
  ];
  for (const { input, want } of cases) assert.deepEqual(localServicePorts(input), want, input.join(' '));
});

test('registries on this machine\'s loopback are forwarded into containers by port; others and portless ones are not', () => {
  const cases = [
    { input: ['127.0.0.1:5000', 'localhost:5001', '[::1]:5002'], want: [5000, 5001, 5002] },
    { input: ['registry.example.com:5000', '10.0.0.5:5000', '127.0.0.1', ''], want: [] },
  ];
  for (const { input, want } of cases) assert.deepEqual(localRegistryPorts(input), want, input.join(' '));
});

test('the cell\'s registry CA must be a file that exists', () => {
  assert.throws(
    () => parseFlags(diegoFlags, ['-dockerRegistryCACert=/nonexistent/ca.pem']),
    (error: unknown) => error instanceof FlagError && /no such file: \/nonexistent\/ca\.pem/.test(error.message),
  );
  const { values } = parseFlags(diegoFlags, ['-insecureDockerRegistry=127.0.0.1:5000,registry.local:5000']);
  assert.equal(values.insecureDockerRegistry, '127.0.0.1:5000,registry.local:5000');
  assert.equal(values.cellImageCacheMb, 10_240);
});
