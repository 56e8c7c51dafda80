// The README's five-minute walkthrough, run as a new user runs it: the repository is cloned
// fresh, `npm start` (the README's first block) runs in the background, and every line of the
// README's second block runs in order with `sh -c` in the clone; each step is then checked —
// both example apps pushed and answering through the router, a killed instance reported as a
// crash and running again, three instances after the scale, the app's own output in the logs,
// stop, delete — and Ctrl-C on `npm start` must end it with no process of it left and its ports
// closed.
//
// What is tested is the committed state: the clone is of the checkout's HEAD, so uncommitted
// changes (to the README, the examples or the code) are not part of the run. In CI the checkout
// is itself a fresh clone. node_modules is the checkout's, linked into the clone.
//
// The commands come from README.md itself (the ```sh blocks under "A five-minute walkthrough"),
// so a change to a README command changes what is tested; a command the test cannot check, or a
// walkthrough that no longer pushes every app under examples/, kills, scales, reads logs, stops
// or deletes, fails the test rather than passing unchecked.
//
// Ports: the README's commands use the default addresses (gateway 8888, router 8081, CC 9022,
// ...). Running on those would collide with anything else on the machine, including another
// `npm start` or a test run beside this one, so the test substitutes ports and nothing else:
// `npm start` gets `-- -<name>ListenAddress=127.0.0.1:0` for each of its listen addresses (npm
// passes arguments after `--` to the script), the command line gets the environment it reads for
// the API, the log-cache and the router (CCBRIDGE_API, CCBRIDGE_LOG_CACHE, CCBRIDGE_ROUTER_PORT),
// and a default port written in a command (curl's router URL) becomes the port the daemon
// printed for the same component, matched by name against the addresses the README shows
// `npm start` printing. The command text otherwise runs as written.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test, type TestContext } from 'node:test';

const checkout = fileURLToPath(new URL('../..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ccbridge-readme-'));
const clone = join(work, 'ccbridge');

const POLL_MS = 1_000;
const STEP_TIMEOUT_MS = 180_000;
const PUSH_TIMEOUT_MS = 600_000;

// ---------------------------------------------------------------------------------------------
// The README: the walkthrough's commands and the addresses `npm start` prints.

/** The fenced blocks of a markdown text, with their info string. */
function fencedBlocks(markdown: string): { info: string; body: string }[] {
  const blocks: { info: string; body: string }[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(markdown); m !== null; m = fence.exec(markdown)) blocks.push({ info: m[1]!.trim(), body: m[2]! });
  return blocks;
}

/** The text of a section: from its heading to the next heading of the same or a higher level. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => /^#+ /.test(line) && line.replace(/^#+ /, '').trim() === heading);
  assert.ok(start >= 0, `README.md has a section "${heading}"`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    const m = /^(#+) /.exec(lines[i]!);
    // A heading inside a fenced block is not one.
    const inFence = lines.slice(start, i).filter((l) => l.startsWith('```')).length % 2 === 1;
    if (m && !inFence && m[1]!.length <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(start, end).join('\n');
}

/** A shell line split into words (quotes honoured) without its comment, and the comment. */
function shellWords(line: string): { words: string[]; comment: string } {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else word = (word ?? '') + c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) {
      return { words, comment: line.slice(i + 1).trim() };
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return { words, comment: '' };
}

/** The command lines of a block: comments and blank lines dropped, the rest as written. */
function commandLines(body: string): string[] {
  return body
    .split('\n')
    .filter((line) => shellWords(line).words.length > 0)
    .map((line) => {
      const { words } = shellWords(line);
      // The line as the shell gets it, without the trailing comment.
      const hash = line.search(/\s#/);
      return hash >= 0 && shellWords(line.slice(0, hash)).words.length === words.length ? line.slice(0, hash).trim() : line.trim();
    });
}

/**
 * `name → address` from the lines under "ccbridge is running", as the README shows them or as
 * `npm start` printed them (each line whole: a line still arriving is not read).
 */
function printedAddresses(text: string): Map<string, string> {
  const addresses = new Map<string, string>();
  const start = text.indexOf('ccbridge is running');
  if (start < 0) return addresses;
  const lines = text.slice(start).split('\n').slice(1, -1);
  for (const line of lines) {
    const m = /^ {2}(\S.*?) {2,}(\S+)/.exec(line);
    if (!m) break;
    addresses.set(m[1]!, m[2]!);
  }
  return addresses;
}

const portOf = (address: string): string | undefined => /:(\d+)(?:\/|$)/.exec(address)?.[1];

// ---------------------------------------------------------------------------------------------
// Processes: everything `npm start` started, followed while it runs.

interface Seen {
  pid: number;
  start: string;
  cmdline: string;
}

function procStat(pid: number): { ppid: number; pgrp: number; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), pgrp: Number(fields[2]), start: fields[19]! };
  } catch {
    return undefined;
  }
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

const allPids = (): number[] => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);

/** Records every descendant of `root` now (and keeps what was recorded before). */
function recordDescendants(root: number, seen: Map<string, Seen>): void {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const stat = procStat(pid);
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  }
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    const stat = procStat(pid);
    if (stat) seen.set(`${pid}/${stat.start}`, { pid, start: stat.start, cmdline: cmdlineOf(pid).slice(0, 160) });
    queue.push(...(children.get(pid) ?? []));
  }
}

/** Of the processes seen, those still alive (the same pid and start time), and any left in the group. */
function stillRunning(seen: Map<string, Seen>, group: number): string[] {
  const alive = [...seen.values()].filter((p) => procStat(p.pid)?.start === p.start).map((p) => `${p.pid}: ${p.cmdline}`);
  const inGroup = allPids()
    .filter((pid) => procStat(pid)?.pgrp === group)
    .map((pid) => `${pid}: ${cmdlineOf(pid).slice(0, 160)}`);
  return [...new Set([...alive, ...inGroup])];
}

// ---------------------------------------------------------------------------------------------
// Running things.

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = STEP_TIMEOUT_MS, last?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `; last:\n${last()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A line of the README through the shell, in the clone, as a user types it. */
function runLine(line: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', line], { cwd: clone, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
      reject(new Error(`"${line}" did not finish in ${timeoutMs / 1000}s:\n${stdout}${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** An HTTP GET as curl sends it for a URL: to the URL's port on this machine, Host as the URL names it. */
function curlGet(url: URL): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: url.port || 80, path: url.pathname + url.search, headers: { Host: url.host }, timeout: 30_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    })
      .on('timeout', function (this: { destroy(e: Error): void }) {
        this.destroy(new Error('timed out'));
      })
      .on('error', reject)
      .end();
  });
}

function portClosed(port: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

// ---------------------------------------------------------------------------------------------

let daemon: ChildProcess | undefined;

after(() => {
  if (daemon?.pid !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
    try {
      process.kill(-daemon.pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  rmSync(work, { recursive: true, force: true });
});

test('the README walkthrough, as written, in a fresh clone', { timeout: 1_800_000 }, async (t) => {
  // A fresh clone of the committed HEAD, with the checkout's node_modules.
  const head = execFileSync('git', ['-C', checkout, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  execFileSync('git', ['clone', '--quiet', '--no-checkout', checkout, clone]);
  execFileSync('git', ['-C', clone, 'checkout', '--quiet', '--detach', head]);
  symlinkSync(join(checkout, 'node_modules'), join(clone, 'node_modules'));
  const dirty = execFileSync('git', ['-C', checkout, 'status', '--porcelain', '--', 'README.md', 'examples'], { encoding: 'utf8' }).trim();
  if (dirty !== '') t.diagnostic(`uncommitted changes are not part of this run (it tests ${head.slice(0, 12)}):\n${dirty}`);

  // The README's commands.
  const readme = readFileSync(join(clone, 'README.md'), 'utf8');
  const walkthrough = fencedBlocks(section(readme, 'A five-minute walkthrough')).filter((b) => b.info === 'sh');
  assert.equal(walkthrough.length, 2, 'the walkthrough has two sh blocks: what runs in the first terminal, then the commands of the second');
  const [daemonLines, steps] = [commandLines(walkthrough[0]!.body), commandLines(walkthrough[1]!.body)];
  assert.equal(daemonLines.length, 1, `the first block is the one command that starts everything: ${daemonLines.join(' | ')}`);
  const readmePrinted = fencedBlocks(readme).find((b) => b.body.startsWith('ccbridge is running'));
  assert.ok(readmePrinted, 'README.md shows what `npm start` prints');
  const readmeAddresses = printedAddresses(`${readmePrinted.body}\n`);

  // Before anything runs: the walkthrough covers what the README promises.
  const stepWords = steps.map((line) => shellWords(line).words);
  const cli = (words: string[]) => (words[0] === 'npx' && words[1] === 'ccbridge' ? words.slice(2) : undefined);
  const checked = ['push', 'apps', 'app', 'events', 'scale', 'logs', 'stop', 'delete'];
  for (const [i, words] of stepWords.entries()) {
    const known = (words[0] === 'curl' && words.length === 2) || checked.includes(cli(words)?.[0] ?? '');
    assert.ok(known, `the README runs "${steps[i]}", which this test does not know how to check (it knows curl <url> and npx ccbridge ${checked.join('|')}): teach it the step`);
  }
  // Example apps are the directories the example buildpacks detect (nodejs: package.json,
  // staticfile: Staticfile); an example image (docker-busybox) needs a registry and is not part
  // of the walkthrough.
  const examples = readdirSync(join(clone, 'examples'))
    .filter((dir) => ['package.json', 'Staticfile'].some((file) => existsSync(join(clone, 'examples', dir, file))))
    .sort();
  const pushedDirs = stepWords.map(cli).filter((w) => w?.[0] === 'push').map((w) => basename(w![1]!));
  assert.deepEqual([...new Set(pushedDirs)].sort(), examples, `the walkthrough pushes every example app (${examples.join(', ')})`);
  for (const [what, found] of [
    ['a kill', steps.some((l) => /^curl \S+\/kill$/.test(l))],
    ['the events', stepWords.some((w) => cli(w)?.[0] === 'events')],
    ['a scale to 3', stepWords.some((w) => cli(w)?.[0] === 'scale' && cli(w)!.includes('3'))],
    ['the recent logs', stepWords.some((w) => cli(w)?.[0] === 'logs' && cli(w)!.includes('--recent'))],
    ['a stop', stepWords.some((w) => cli(w)?.[0] === 'stop')],
    ['a delete', stepWords.some((w) => cli(w)?.[0] === 'delete')],
  ] as const) assert.ok(found, `the walkthrough has ${what}`);

  // A terminal's environment, without what an enclosing `npm test` set for its own scripts.
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && !['INIT_CWD', 'NODE_OPTIONS', 'CCBRIDGE_LOG_LEVEL'].includes(k)));

  // `npm start` in the background, in its own process group as in a terminal (Ctrl-C reaches
  // the whole group), on ports of its own.
  const helpRun = spawnSync(process.execPath, [join(clone, 'bin/ccbridge.js'), '--help'], { cwd: clone, encoding: 'utf8', env: baseEnv });
  assert.equal(helpRun.status, 0, `ccbridge --help runs in the clone of ${head.slice(0, 12)} (the committed state):\n${helpRun.stderr}`);
  const help = helpRun.stdout;
  const listenFlags = [...new Set([...help.matchAll(/^ {2}-(\w*[lL]istenAddress) /gm)].map((m) => m[1]!))];
  assert.ok(['listenAddress', 'routerListenAddress', 'ccListenAddress'].every((f) => listenFlags.includes(f)), `the all-in-one's listen flags: ${listenFlags.join(', ')}`);
  const daemonWords = shellWords(daemonLines[0]!).words;
  assert.ok(daemonWords.every((w) => !/^(&&|\|\|?|;|&)$/.test(w)), `the first block is one simple command: ${daemonLines[0]}`);
  const portFlags = listenFlags.map((f) => `-${f}=127.0.0.1:0`);
  const daemonArgs = [...daemonWords.slice(1), ...(daemonWords.includes('--') ? [] : ['--']), ...portFlags];
  t.diagnostic(`$ ${daemonWords[0]} ${daemonArgs.join(' ')}`);
  // Run directly rather than through sh, so that the process Ctrl-C ends is npm itself.
  const started = spawn(daemonWords[0]!, daemonArgs, { cwd: clone, env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  daemon = started;
  const group = started.pid!;
  let output = '';
  started.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  started.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const seen = new Map<string, Seen>();
  const watch = setInterval(() => recordDescendants(group, seen), 250);
  const tail = () => output.split('\n').slice(-40).join('\n');

  try {
    const exited = () => started.exitCode !== null || started.signalCode !== null;
    await waitFor('npm start to print its addresses', async () => exited() || printedAddresses(output).size > 0, STEP_TIMEOUT_MS, tail);
    // The addresses are written at once; a moment lets the last line arrive whole.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok(!exited(), `npm start is running:\n${output}`);
    const printed = printedAddresses(output);
    assert.deepEqual([...printed.keys()], [...readmeAddresses.keys()], 'npm start prints the addresses the README shows');
    const address = (name: string) => {
      const value = printed.get(name);
      assert.ok(value, `npm start printed the ${name} address`);
      return value;
    };
    const ccUrl = address('cc');
    const routerPort = portOf(address('router'))!;
    // The README's default port → the port printed for the same component.
    const ports = new Map<string, string>();
    for (const [name, readmeAddress] of readmeAddresses) {
      const [from, to] = [portOf(readmeAddress), portOf(printed.get(name) ?? '')];
      if (from && to) ports.set(from, to);
    }
    const substitute = (line: string) => line.replace(/:(\d{2,5})\b/g, (all, port: string) => (ports.has(port) ? `:${ports.get(port)}` : all));
    const env = { ...baseEnv, CCBRIDGE_API: ccUrl, CCBRIDGE_LOG_CACHE: address('diego (bbs)'), CCBRIDGE_ROUTER_PORT: routerPort };

    // What the steps so far lead the next ones to expect, per app.
    interface AppState {
      dir: string;
      instances: number;
      started: boolean;
      deleted: boolean;
      /** Crashes the kills so far must have caused. */
      crashesExpected: number;
      /** When the last kill was answered: instances running after it started after it. */
      killedAt?: number;
    }
    const apps = new Map<string, AppState>();
    const appNamed = (name: string | undefined): AppState => {
      const state = apps.get(name ?? '');
      assert.ok(state, `the walkthrough pushes ${name} before using it`);
      return state;
    };
    const appFromHost = (url: URL) => appNamed(url.hostname.split('.')[0]);

    const run = async (line: string, timeoutMs = STEP_TIMEOUT_MS): Promise<Ran> => {
      const ran = await runLine(line, env, timeoutMs);
      assert.equal(ran.code, 0, `"${line}" exits 0:\n${ran.stdout}${ran.stderr}`);
      return ran;
    };
    /** Runs a line until its output passes `check` (a read that may lag what was just done). */
    const runUntil = async (line: string, what: string, check: (out: string) => boolean): Promise<string> => {
      let last = '';
      return waitFor(
        what,
        async () => {
          const ran = await runLine(line, env, STEP_TIMEOUT_MS);
          last = `exit ${ran.code}\n${ran.stdout}${ran.stderr}`;
          return ran.code === 0 && check(ran.stdout) ? ran.stdout : undefined;
        },
        STEP_TIMEOUT_MS,
        () => last,
      );
    };
    const instanceRows = (out: string) => [...out.matchAll(/^#\d+\s+(\S+)[^\n]*?\s(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)/gm)].map((m) => ({ state: m[1]!, since: Date.parse(m[2]!) }));

    /** Runs one README line and checks what it did, given what the lines before it did. */
    const checkStep = async (readmeLine: string, step: TestContext): Promise<void> => {
      const line = substitute(readmeLine);
      const { words } = shellWords(line);
      const command = cli(words);
      step.diagnostic(`$ ${line}`);
      if (words[0] === 'curl') {
        assert.equal(words.length, 2, `curl with one URL and no options: ${readmeLine}`);
        const url = new URL(words[1]!);
        const app = appFromHost(url);
        if (url.pathname === '/kill') {
          // Once: each answered request is one crash.
          const answer = await waitFor('the kill answered', async () => {
            const res = await curlGet(url);
            return res.status === 200 ? res : undefined;
          });
          assert.match(answer.text, /killing itself/);
          app.crashesExpected += 1;
          app.killedAt = Date.now();
          return;
        }
        assert.equal(url.pathname, '/', `curl of an app's / or /kill: ${readmeLine}`);
        const index = join(clone, 'examples', app.dir, 'index.html');
        const want = existsSync(index) ? readFileSync(index, 'utf8') : 'hello from ccbridge\n';
        let last = '';
        await waitFor(`${url} to answer through the router`, async () => {
          const res = await curlGet(url);
          last = `${res.status} ${res.text}`;
          return res.status === 200 && res.text === want;
        }, STEP_TIMEOUT_MS, () => last);
        return;
      }
      assert.ok(command, `a README step this test knows how to check (curl or npx ccbridge): ${readmeLine}`);
      const [verb, ...rest] = command;
      switch (verb) {
        case 'push': {
          const dir = rest[0]!;
          const flag = (long: string, short?: string) => {
            const i = rest.findIndex((w) => w === long || w === short);
            return i >= 0 ? rest[i + 1] : undefined;
          };
          const name = flag('--name', '-n') ?? basename(dir);
          const instances = Number(flag('--instances', '-i') ?? 1);
          const ran = await run(line, PUSH_TIMEOUT_MS);
          assert.ok(ran.stdout.includes(`${name} is running at http://${name}.localhost:${routerPort}/`), `push prints the app's URL:\n${ran.stdout}`);
          apps.set(name, { dir: basename(dir), instances, started: true, deleted: false, crashesExpected: 0 });
          return;
        }
        case 'apps': {
          await runUntil(line, 'every app listed with its instances running', (out) =>
            [...apps].every(([name, app]) => {
              const row = new RegExp(`^${name}\\s+(\\S+)\\s+(\\d+)/(\\d+)`, 'm').exec(out);
              if (app.deleted) return row === null;
              return row !== null && (!app.started || (row[1] === 'STARTED' && row[2] === String(app.instances) && row[3] === String(app.instances)));
            }),
          );
          return;
        }
        case 'events': {
          const app = appNamed(rest[0]);
          // Named by whichever notices first: the exit (status 137) or the liveness check.
          await runUntil(line, `${app.crashesExpected} crash event(s) of ${rest[0]}`, (o) => (o.match(/\bapp\.crash\b/g) ?? []).length >= app.crashesExpected);
          return;
        }
        case 'app': {
          const app = appNamed(rest[0]);
          await runUntil(line, `${app.instances} instance(s) of ${rest[0]} RUNNING${app.killedAt ? ' again after the kill' : ''}`, (out) => {
            const rows = instanceRows(out);
            const running = rows.filter((r) => r.state === 'RUNNING');
            // The since of a replaced instance is at or after the kill (to the second).
            const fresh = app.killedAt === undefined || running.some((r) => r.since >= Math.floor(app.killedAt! / 1000) * 1000);
            return rows.length === app.instances && running.length === app.instances && fresh;
          });
          return;
        }
        case 'scale': {
          const app = appNamed(rest[0]);
          const i = rest.findIndex((w) => w === '-i' || w === '--instances');
          assert.ok(i >= 0, `scale of instances: ${readmeLine}`);
          const ran = await run(line);
          app.instances = Number(rest[i + 1]);
          assert.match(ran.stdout, new RegExp(`${rest[0]}: ${app.instances} instances`));
          return;
        }
        case 'logs': {
          assert.ok(rest.includes('--recent'), 'logs --recent (following logs runs until Ctrl-C)');
          appNamed(rest[0]);
          // The app's own output: its lines on stdout, tagged APP.
          await runUntil(line, `the output of ${rest[0]} in its logs`, (out) => /\[APP\/\d+\] (OUT|ERR) \S/.test(out));
          return;
        }
        case 'stop': {
          const app = appNamed(rest[0]);
          await run(line);
          app.started = false;
          app.killedAt = undefined;
          const url = new URL(`http://${rest[0]}.localhost:${routerPort}/`);
          let last = '';
          await waitFor(`${rest[0]} gone from the router`, async () => {
            const res = await curlGet(url);
            last = `${res.status} ${res.text}`;
            return res.status >= 400;
          }, STEP_TIMEOUT_MS, () => last);
          return;
        }
        case 'delete': {
          const app = appNamed(rest[0]);
          await run(line);
          app.deleted = true;
          const res = await fetch(`${ccUrl}/dev/v1/apps/${rest[0]}`);
          assert.equal(res.status, 404, `${rest[0]} is gone from the development CC`);
          return;
        }
        default:
          assert.fail(`the README runs "${readmeLine}", which this test does not know how to check: teach it the step`);
      }
    };

    let failed = false;
    for (const readmeLine of steps) {
      // Each step builds on the ones before: the first failure ends the walkthrough.
      if (failed) break;
      await t.test(readmeLine, async (step) => {
        failed = true;
        await checkStep(readmeLine, step);
        failed = false;
      });
    }
    assert.equal(failed, false, 'every step of the walkthrough passed');

    // Ctrl-C in the first terminal: the whole group gets SIGINT.
    recordDescendants(group, seen);
    assert.ok([...seen.values()].some((p) => /\bbwrap\b/.test(p.cmdline)), 'the apps ran in sandboxes of this npm start');
    process.kill(-group, 'SIGINT');
    await waitFor('npm start to exit after Ctrl-C', async () => started.exitCode !== null || started.signalCode !== null, STEP_TIMEOUT_MS, tail);
    t.diagnostic(`npm start exited with ${started.exitCode ?? started.signalCode}`);
    // One Ctrl-C is an orderly stop, not the forced one of a second signal or the shutdown bound.
    for (const event of ['stopping-at-once', 'shutdown-took-too-long', 'failed-to-stop-cleanly']) assert.ok(!output.includes(`"${event}"`), `no ${event} at Ctrl-C:\n${tail()}`);
    clearInterval(watch);
    await waitFor('no process of npm start left', async () => stillRunning(seen, group).length === 0, 30_000, () => stillRunning(seen, group).join('\n'));
    for (const [name, value] of printed) {
      const port = portOf(value);
      if (port) assert.ok(await portClosed(port), `the ${name} port ${port} is closed`);
    }
  } finally {
    clearInterval(watch);
  }
});
