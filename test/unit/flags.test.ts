import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { commonFlags } from '../../cmd/commands/common.js';
import { bool, describeFlags, directory, duration, FlagError, int, list, parseDuration, parseFlags, string } from '../../lib/flags.js';

const specs = {
  listenAddress: string('where to listen', '127.0.0.1:8080'),
  pollingInterval: duration('how often to sync', 30_000),
  bulkBatchSize: int('apps per batch', 500, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
  skipCertVerify: bool('skip TLS verification'),
  lifecycle: list('lifecycle bundles'),
  ccPassword: string('CC password', 'secret-default', { secret: true }),
};

test('both -name=value and --name=value spellings, and -name value', () => {
  const { values, rest } = parseFlags(specs, ['-listenAddress=0.0.0.0:1', '--pollingInterval=500ms', '-bulkBatchSize', '7', '-skipCertVerify', 'extra']);
  assert.equal(values.listenAddress, '0.0.0.0:1');
  assert.equal(values.pollingInterval, 500);
  assert.equal(values.bulkBatchSize, 7);
  assert.equal(values.skipCertVerify, true);
  assert.deepEqual(rest, ['extra']);
});

test('repeatable flags collect every value and replace the default', () => {
  const { values } = parseFlags({ lifecycle: list('x', ['default']) }, ['-lifecycle=buildpack/cflinuxfs4:a.tgz', '-lifecycle', 'docker:b.tgz']);
  assert.deepEqual(values.lifecycle, ['buildpack/cflinuxfs4:a.tgz', 'docker:b.tgz']);
});

test('durations as Go writes them', () => {
  const cases = [
    { input: '30s', want: 30_000 },
    { input: '1m30s', want: 90_000 },
    { input: '250ms', want: 250 },
    { input: '2h', want: 7_200_000 },
    { input: '5', want: 5_000 },
  ];
  for (const { input, want } of cases) assert.equal(parseDuration(input), want, input);
});

test('a bad flag is one clear error', () => {
  const cases = [
    { argv: ['-nope=1'], want: /unknown flag -nope/ },
    { argv: ['-bulkBatchSize=abc'], want: /-bulkBatchSize: "abc" is not an integer/ },
    { argv: ['-bulkBatchSize=0'], want: /-bulkBatchSize: must be positive/ },
    { argv: ['-pollingInterval=soon'], want: /invalid duration "soon"/ },
    { argv: ['-listenAddress'], want: /needs a value/ },
  ];
  for (const { argv, want } of cases) assert.throws(() => parseFlags(specs, argv), (e: unknown) => e instanceof FlagError && want.test(e.message));
});

test('--help lists every flag with its default, never a secret default', () => {
  const { help } = parseFlags(specs, ['--help']);
  assert.equal(help, true);
  const text = describeFlags(specs);
  assert.match(text, /-pollingInterval <duration>\n\s+how often to sync \(default 30s\)/);
  assert.doesNotMatch(text, /secret-default/);
});

test('a directory flag is made absolute against the working directory, given or by default', () => {
  const specs = { dataDir: directory('data', './.ccbridge'), staticDir: directory('static'), other: directory('other') };
  const { values } = parseFlags(specs, ['-staticDir=static/../files', '-other=/abs/dir']);
  assert.equal(values.dataDir, join(process.cwd(), '.ccbridge'));
  assert.equal(values.staticDir, join(process.cwd(), 'files'));
  assert.equal(values.other, '/abs/dir');
  assert.equal(parseFlags({ empty: directory('none') }, []).values.empty, '', 'an empty directory stays empty (unset)');
  assert.equal(parseFlags(commonFlags, []).values.dataDir, join(process.cwd(), '.ccbridge'), 'every daemon\'s -dataDir');
});
