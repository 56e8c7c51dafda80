// diego-sshd's set-up and wrapper, run as programs: the host key in the recipe's PEM becomes a
// dropbear key file that dropbear's own tools read back as the same key, in private files; a
// flag it cannot use is reported without its value (the host key is one); and when set-up fails
// the wrapper stays up, idle, until signalled, so an instance never fails because of SSH.
// (No -authorizedKey here: it would go to the home directory of the user running the test.)
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sshKeyPairFromPrivateKey } from '../../services/nsync/recipe/ssh.js';

const lifecycle = fileURLToPath(new URL('../../lifecycles/buildpack/', import.meta.url));
const SETUP = join(lifecycle, 'diego-sshd.mjs');
const WRAPPER = join(lifecycle, 'diego-sshd');

function setup(args: string[]) {
  return spawnSync(process.execPath, [SETUP, 'diego-sshd', ...args], { encoding: 'utf8' });
}

/** The shell assignments the set-up prints, as a map. */
function assignments(stdout: string): Map<string, string> {
  return new Map(stdout.trim().split('\n').map((line) => {
    const match = /^(\w+)='(.*)'$/.exec(line);
    assert.ok(match, `a shell assignment: ${line}`);
    return [match[1]!, match[2]!] as [string, string];
  }));
}

/** The public key dropbear's own tool reads from a dropbear key file. */
function dropbearPublicKey(file: string): string {
  const out = execFileSync('dropbearkey', ['-y', '-f', file], { encoding: 'utf8' });
  const line = out.split('\n').find((each) => each.startsWith('ssh-'));
  assert.ok(line, out);
  return line.split(' ').slice(0, 2).join(' ');
}

test('an RSA (PKCS#1) and an ed25519 (PKCS#8) host key become dropbear key files of the same key, 0600 in a 0700 directory', () => {
  const keys = [
    generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  ];
  for (const pem of keys) {
    const result = setup(['-address=0.0.0.0:2222', `-hostKey=${pem}`, '-inheritDaemonEnv', '-logLevel=fatal']);
    assert.equal(result.status, 0, result.stderr);
    const values = assignments(result.stdout);
    try {
      assert.equal(values.get('sshd_listen'), '0.0.0.0:2222');
      assert.equal(values.get('sshd_inherit_env'), '1');
      assert.equal(values.get('sshd_verbose'), '');
      const file = values.get('sshd_host_key')!;
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(values.get('sshd_state')!).mode & 0o777, 0o700);
      assert.equal(dropbearPublicKey(file), sshKeyPairFromPrivateKey(pem).authorizedKey);
      assert.ok(!readFileSync(file, 'latin1').includes('PRIVATE KEY'), 'dropbear format, not the PEM');
      assert.ok(!result.stderr.includes(pem.split('\n')[1]!), 'nothing of the key on stderr');
    } finally {
      rmSync(values.get('sshd_state')!, { recursive: true, force: true });
    }
  }
});

test('without -hostKey an ed25519 host key is generated; Go\'s ":port" listens on every address', () => {
  const result = setup(['-address=:2222']);
  assert.equal(result.status, 0, result.stderr);
  const values = assignments(result.stdout);
  try {
    assert.equal(values.get('sshd_listen'), '2222');
    assert.equal(values.get('sshd_verbose'), '1', 'log level info by default');
    assert.match(dropbearPublicKey(values.get('sshd_host_key')!), /^ssh-ed25519 /);
    assert.match(result.stderr, /no -authorizedKey: nobody can log in/);
  } finally {
    rmSync(values.get('sshd_state')!, { recursive: true, force: true });
  }
});

test('errors name the flag, never its value', () => {
  const secret = 'SECRET-KEY-MATERIAL';
  const cases: Array<{ args: string[]; status: number; message: RegExp }> = [
    { args: [`-hostKey=-----BEGIN RSA PRIVATE KEY-----\n${secret}\n-----END RSA PRIVATE KEY-----\n`], status: 1, message: /-hostKey is not a PEM private key/ },
    { args: [`-inheritDaemonEnv=${secret}`], status: 2, message: /invalid boolean value for -inheritDaemonEnv/ },
    { args: [`---hostKey=${secret}`], status: 2, message: /bad flag syntax/ },
    { args: ['-unknown=1'], status: 2, message: /flag provided but not defined: -unknown/ },
    { args: ['-address=nowhere'], status: 1, message: /-address must be host:port/ },
    { args: ['-logLevel=loud'], status: 1, message: /-logLevel must be one of/ },
  ];
  for (const { args, status, message } of cases) {
    const result = setup(args);
    assert.equal(result.status, status, result.stderr);
    assert.match(result.stderr, message);
    assert.ok(!result.stderr.includes(secret) && !result.stdout.includes(secret), `no value in: ${result.stderr}`);
  }
});

test('when SSH cannot be set up, the wrapper says why once and stays up until it is signalled', async () => {
  const child = spawn(WRAPPER, ['-hostKey=not a key'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const unavailable = new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('SSH to this instance is unavailable')) resolve();
    });
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await unavailable;
  assert.match(stderr, /-hostKey is not a PEM private key/);
  assert.equal(child.exitCode, null, 'still running');
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
});
