// The docker launcher's decisions (lifecycles/docker/launcher.mjs), read from what it prints for
// its wrapper to evaluate, and the host runtime's reading of ldd. The launcher runs here with the
// host's node; inside an image it runs from the host runtime (test/integration/docker-run.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HostRuntimeError, parseLdd } from '../../embedded/diego/executor/host-runtime.js';

const LAUNCHER = fileURLToPath(new URL('../../lifecycles/docker/launcher.mjs', import.meta.url));

function launch(args: string[], env: Record<string, string> = { PATH: '/usr/bin:/bin' }): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [LAUNCHER, '/tmp/lifecycle/launcher', ...args], { encoding: 'utf8', env });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('the launcher execs what the start command or the image metadata says', () => {
  const cases = [
    {
      name: 'a start command runs with the image\'s /bin/sh',
      args: ['app', 'echo "it\'s $PORT"', '{"entrypoint":["/bin/busybox"],"cmd":["httpd"]}'],
      want: `exec '/bin/sh' '-c' 'echo "it'\\''s $PORT"'\n`,
    },
    {
      name: 'entrypoint then cmd, in the workdir; a name is looked up on PATH',
      args: ['app', '', '{"Entrypoint":["sh","-c"],"cmd":["exec httpd"],"workdir":"/tmp"}'], env: { PATH: '/bin' },
      want: "cd -- '/tmp' || exit 1\nexec '/bin/sh' '-c' 'exec httpd'\n",
    },
    { name: 'cmd alone', args: ['app', '', '{"cmd":["/bin/true","x"]}'], want: "exec '/bin/true' 'x'\n" },
    { name: 'null metadata with a start command', args: ['app', 'true', 'null'], want: "exec '/bin/sh' '-c' 'true'\n" },
  ];
  for (const { name, args, want, env } of cases as Array<{ name: string; args: string[]; want: string; env?: Record<string, string> }>) {
    const result = launch(args, env);
    assert.equal(result.status, 0, `${name}: ${result.stderr}`);
    assert.equal(result.stdout, want, name);
  }
});

test('the launcher fails with one line when it cannot start anything', () => {
  const cases = [
    { name: 'nothing to run', args: ['app', '', '{}'], want: /No start command found or specified/ },
    { name: 'metadata that is no JSON', args: ['app', '', '{'], want: /Invalid metadata - / },
    { name: 'cmd that is no list', args: ['app', '', '{"cmd":"httpd"}'], want: /Invalid metadata - "cmd" must be a list of strings/ },
    { name: 'a program not on PATH', args: ['app', '', '{"cmd":["no-such-program-anywhere"]}'], want: /exec: "no-such-program-anywhere": executable file not found in \$PATH/ },
    { name: 'too few arguments', args: ['app', ''], want: /received only 2 arguments/ },
  ];
  for (const { name, args, want } of cases) {
    const result = launch(args);
    assert.equal(result.status, 1, name);
    assert.equal(result.stdout, '', name);
    assert.match(result.stderr, want, name);
  }
});

test('ldd output gives the libraries by soname and the loader; a missing library is an error', () => {
  const { libraries, loader } = parseLdd(
    [
      '\tlinux-vdso.so.1 (0x00007ffd0e5f2000)',
      '\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f3357420000)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f33571c5000)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f3357540000)',
    ].join('\n'),
  );
  assert.deepEqual([...libraries], [
    ['libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1'],
    ['libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'],
  ]);
  assert.equal(loader, '/lib64/ld-linux-x86-64.so.2');
  assert.throws(() => parseLdd('\tlibfoo.so.1 => not found\n'), HostRuntimeError);
});
