// `ccbridge ssh` as a user runs it: the all-in-one daemon (every address on port 0, a fresh data
// directory) stages and runs the example Node.js app pushed with --allow-ssh; the development CC
// reports each instance's SSH port and hands out the diego-ssh route's credentials; the command
// after `--` runs in the instance through the system ssh, and its exit status is ccbridge's.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const CCBRIDGE = join(repo, 'bin/ccbridge.js');
const dataDir = mkdtempSync(join(tmpdir(), 'ccbridge-ssh-e2e-'));
// ccbridge ssh's key files go under TMPDIR; this one is the test's, to see them go.
const cliTmp = mkdtempSync(join(tmpdir(), 'ccbridge-ssh-cli-'));

let daemon: ChildProcess;
let output = '';
let cc = '';
let logCache = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function ccbridge(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CCBRIDGE, ...args], {
      cwd: repo,
      env: { ...process.env, CCBRIDGE_API: cc, CCBRIDGE_LOG_CACHE: logCache, TMPDIR: cliTmp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  const ports = ['listenAddress', 'grpcListenAddress', 'bbsListenAddress', 'locketListenAddress', 'routerListenAddress', 'fileServerListenAddress', 'uploaderListenAddress', 'ccListenAddress'];
  daemon = spawn(process.execPath, [CCBRIDGE, `-dataDir=${dataDir}`, '-logLevel=warn', '-lockRetryInterval=200ms', '-pollingInterval=2s', ...ports.map((p) => `-${p}=127.0.0.1:0`)], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  daemon.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const deadline = Date.now() + 120_000;
  while (!/ {2}cell {10}/.test(output)) {
    if (daemon.exitCode !== null) throw new Error(`ccbridge exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`ccbridge did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const address = (name: string) => new RegExp(`  ${name} +(http://[0-9.:]+)`).exec(output)![1]!;
  cc = address('cc');
  logCache = address('diego \\(bbs\\)');
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  }
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(cliTmp, { recursive: true, force: true });
});

test('push --allow-ssh, then ccbridge ssh runs a command in the instance and passes its exit status on', async () => {
  const pushed = await ccbridge(['push', 'examples/node-app', '--name', 'hello', '--allow-ssh', '--poll-interval', '200ms', '--staging-timeout', '180s', '--start-timeout', '120s']);
  assert.equal(pushed.code, 0, `stdout: ${pushed.stdout}\nstderr: ${pushed.stderr}\ndaemon: ${output}`);

  const app = (await (await fetch(`${cc}/dev/v1/apps/hello`)).json()) as { instance_details: { index: number; state: string; ssh_port: number | null; port: number | null }[] };
  const [instance] = app.instance_details;
  assert.equal(instance?.state, 'RUNNING');
  assert.ok(instance.ssh_port && instance.ssh_port !== instance.port, 'the API reports the SSH port, apart from the app port');

  // diego-sshd starts beside the app and may be a moment behind its health check.
  let hello: Run | undefined;
  for (let attempt = 0; attempt < 60; attempt += 1) {
    hello = await ccbridge(['ssh', 'hello', '--', 'echo', 'hello']);
    if (hello.code === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.equal(hello!.code, 0, `stdout: ${hello!.stdout}\nstderr: ${hello!.stderr}`);
  assert.equal(hello!.stdout, 'hello\n');

  const inside = await ccbridge(['ssh', 'hello', '--index', '0', '--', 'sh', '-c', '"echo $HOME; cd app && ls server.js; exit 3"']);
  assert.equal(inside.code, 3, inside.stderr);
  assert.deepEqual(inside.stdout.trim().split('\n'), ['/home/vcap', 'server.js']);

  const missing = await ccbridge(['ssh', 'hello', '--index', '5', '--', 'true']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^ccbridge ssh: instance 5 of hello is not running/);
  assert.deepEqual(readdirSync(cliTmp).filter((name) => name.startsWith('ccbridge-ssh-')), [], 'no key file is left behind');
});
