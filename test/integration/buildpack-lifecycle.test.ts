// The buildpack lifecycle's programs run as local processes, the way containers run them:
// buildpack_app_lifecycle.tgz is packed and unpacked (as a download action would), the
// builder's arguments and the buildpack directories come from the Stager's real staging task,
// the launcher's and the health check's arguments from nsync's real DesiredLRP, each with its
// container paths moved into a temporary directory, and the builder's result and exit codes go
// back through the Stager's completion translation to the body CC receives.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DesireAppRequestFromCC, type StagingRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import type { Action, RunAction } from '../../gen/diego/bbs/v1/actions.js';
import { TaskCallbackResponse } from '../../gen/diego/bbs/v1/task_requests.js';
import { decodeLegacyJson, encodeLegacyJson } from '../../lib/legacy-json.js';
import { parseYaml, YamlError } from '../../lifecycles/buildpack/lib/yaml.mjs';
import { BUILDPACK_LIFECYCLE_ARCHIVE, packageBuildpack, packageBuildpackLifecycle } from '../../lifecycles/package.mjs';
import { desiredLrpFromDesireAppRequest, type RecipeConfig } from '../../services/nsync/recipe/index.js';
import {
  buildStagingTask,
  DEFAULT_STAGING_TIMEOUT_MS,
  parseLifecycles,
  stagingResponseFromTaskCallback,
  type StagingRecipeConfig,
} from '../../services/stager/recipe/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLE_BUILDPACKS = join(ROOT, 'lifecycles', 'buildpacks');
const EXAMPLES = join(ROOT, 'examples');
const CC = 'cloudfoundry.ccbridge.cc.v1';
const STACK = 'cflinuxfs4';
/** Where staging and app containers find everything; moved into a temporary directory here. */
const CONTAINER_TMP = '/tmp/';

const stagerConfig: StagingRecipeConfig = {
  fileServerURL: 'http://127.0.0.1:8080',
  ccUploaderURL: 'http://127.0.0.1:9090',
  stagingTaskCallbackURL: 'http://127.0.0.1:8888',
  lifecycles: parseLifecycles([`buildpack/${STACK}:${BUILDPACK_LIFECYCLE_ARCHIVE}`]),
  dockerStagingStack: STACK,
  dockerRegistryAddress: '',
  insecureDockerRegistries: [],
  skipCertVerify: false,
  privileged: true,
  defaultStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
  maxStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
};

const nsyncConfig: RecipeConfig = {
  lifecycles: { [`buildpack/${STACK}`]: BUILDPACK_LIFECYCLE_ARCHIVE },
  fileServerUrl: 'http://127.0.0.1:8080',
  privilegedContainers: true,
  defaultHealthCheckTimeoutSeconds: 0,
  generateSshKeyPair: () => {
    throw new Error('no SSH in these apps');
  },
};

let work: string;
/** The unpacked lifecycle archive: what a container has at /tmp/lifecycle. */
let lifecycleDir: string;
/** A PATH whose first directory holds an `npm` that records being run, and fails. */
let pathWithFakeNpm: string;
let npmMarker: string;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'buildpack-lifecycle-'));
  const archive = packageBuildpackLifecycle(join(work, 'static'));
  lifecycleDir = join(work, 'lifecycle');
  mkdirSync(lifecycleDir);
  execOrThrow('tar', ['-xzf', archive.path, '-C', lifecycleDir]);

  const fakeBin = join(work, 'fake-bin');
  npmMarker = join(work, 'npm-ran');
  writeExecutable(join(fakeBin, 'npm'), `#!/bin/sh\necho "$@" >> '${npmMarker}'\nexit 1\n`);
  pathWithFakeNpm = `${fakeBin}:${process.env.PATH ?? '/usr/bin:/bin'}`;
});

after(() => rmSync(work, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Helpers

function execOrThrow(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

function writeExecutable(path: string, content: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, 0o755);
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  pid: number;
  output: () => { stdout: string; stderr: string };
  finished: Promise<Finished>;
  kill: (signal: NodeJS.Signals) => void;
}

/**
 * Starts a program; it is killed if it outlives `timeoutMs`, so a hang fails the test instead of
 * stalling the run. The bound is generous: it only has to catch hangs, never a slow machine.
 */
function start(path: string, args: readonly string[], options: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Started {
  const child = spawn(path, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const finished = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { pid: child.pid!, output: () => ({ stdout, stderr }), finished, kill: (signal) => child.kill(signal) };
}

function runProgram(path: string, args: readonly string[], options: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Finished> {
  return start(path, args, options).finished;
}

/** Every action in a tree, depth first. */
function* actionsIn(action: Action | undefined): Generator<Action> {
  if (action === undefined) return;
  yield action;
  yield* actionsIn(action.timeoutAction?.action);
  yield* actionsIn(action.emitProgressAction?.action);
  yield* actionsIn(action.tryAction?.action);
  for (const child of action.serialAction?.actions ?? []) yield* actionsIn(child);
  for (const child of action.parallelAction?.actions ?? []) yield* actionsIn(child);
  for (const child of action.codependentAction?.actions ?? []) yield* actionsIn(child);
}

function runActionIn(action: Action | undefined, path: string): RunAction {
  const run = [...actionsIn(action)].map((each) => each.runAction).find((each) => each?.path === path);
  assert.ok(run, `a run action for ${path}`);
  return run;
}

/** A container path as this test's stand-in for it. */
function inContainer(root: string, containerPath: string): string {
  assert.ok(containerPath.startsWith(CONTAINER_TMP), `${containerPath} is under ${CONTAINER_TMP}`);
  return join(root, containerPath.slice(CONTAINER_TMP.length));
}

/** A program path in the recipes (/tmp/lifecycle/x) as the unpacked archive's. */
function lifecycleProgram(containerPath: string): string {
  assert.ok(containerPath.startsWith('/tmp/lifecycle/'), containerPath);
  return join(lifecycleDir, containerPath.slice('/tmp/lifecycle/'.length));
}

interface Buildpack {
  name: string;
  key: string;
  url?: string;
  /** The buildpack's files, as the staging task's download would unpack them; none for `custom`. */
  dir?: string;
  skipDetect?: boolean;
}

function example(name: 'nodejs' | 'staticfile'): Buildpack {
  return { name, key: `${name}-buildpack-key`, url: `http://127.0.0.1:9999/buildpacks/${name}.zip`, dir: join(EXAMPLE_BUILDPACKS, name) };
}

/** A buildpack made of shell scripts, for the contract's failure paths. */
function fixture(name: string, scripts: Record<string, string>): Buildpack {
  const dir = join(work, 'fixture-buildpacks', name);
  for (const [script, body] of Object.entries(scripts)) writeExecutable(join(dir, 'bin', script), `#!/bin/sh\n${body}\n`);
  return { name, key: `${name}-key`, url: `http://127.0.0.1:9999/buildpacks/${name}.zip`, dir };
}

const DETECTS = 'echo fixture';
const RELEASES = `printf -- '---\\ndefault_process_types:\\n  web: ./start.sh\\n'`;

interface Staging {
  result: Finished;
  dir: string;
  outputDroplet: string;
  outputCache: string;
  resultJson: () => Record<string, unknown>;
  /** The body the Stager would send CC for this task's completion. */
  ccResponse: () => Record<string, unknown>;
}

let stagings = 0;

/**
 * Stages `app` as a staging task built by the Stager's recipe: its buildpack downloads are
 * copied into place, the cache optionally restored from an earlier output, and the builder run
 * with the task's own arguments and environment.
 */
async function stage(options: { app: string; buildpacks: Buildpack[]; cacheFrom?: string; path?: string }): Promise<Staging> {
  stagings += 1;
  const dir = join(work, `staging-${stagings}`);
  const request = decodeLegacyJson<StagingRequestFromCC>(
    `${CC}.StagingRequestFromCC`,
    JSON.stringify({
      app_id: 'app-guid',
      log_guid: 'app-guid',
      file_descriptors: 1024,
      memory_mb: 256,
      disk_mb: 1024,
      environment: [{ name: 'VCAP_APPLICATION', value: '{"name":"app"}' }],
      timeout: 900,
      lifecycle: 'buildpack',
      lifecycle_data: {
        app_bits_download_uri: 'http://127.0.0.1:9999/packages/app-guid',
        build_artifacts_cache_download_uri: options.cacheFrom ? 'http://127.0.0.1:9999/cache/app-guid' : '',
        build_artifacts_cache_upload_uri: 'http://127.0.0.1:9999/cache/app-guid',
        droplet_upload_uri: 'http://127.0.0.1:9999/droplets/app-guid',
        buildpacks: options.buildpacks.map(({ name, key, url, skipDetect }) => ({ name, key, url: url ?? key, skip_detect: skipDetect ?? false })),
        stack: STACK,
      },
    }),
  );
  const task = buildStagingTask(`staging-${stagings}`, request, stagerConfig);
  const action = task.taskDefinition.action;

  // The downloads, done as the cell would: the app bits, each buildpack, the cache.
  for (const download of [...actionsIn(action)].map((each) => each.downloadAction).filter((each) => each !== undefined)) {
    const target = inContainer(dir, download.to);
    if (download.artifact === 'app package') cpSync(options.app, target, { recursive: true });
    else if (download.artifact === 'build artifacts cache') {
      mkdirSync(target, { recursive: true });
      execOrThrow('tar', ['-xzf', options.cacheFrom!, '-C', target]);
    } else if (download.artifact !== '') {
      const buildpack = options.buildpacks.find((each) => each.name === download.artifact);
      assert.ok(buildpack?.dir, `buildpack ${download.artifact} has files`);
      cpSync(buildpack.dir, target, { recursive: true });
    }
  }

  const builder = runActionIn(action, '/tmp/lifecycle/builder');
  const args = builder.args.map((arg) => arg.replace(/=\/tmp\//, `=${dir}/`));
  const env = Object.fromEntries([['PATH', options.path ?? pathWithFakeNpm], ...builder.env.map(({ name, value }) => [name, value])]);
  const result = await runProgram(lifecycleProgram(builder.path), args, { env });
  const outputMetadata = inContainer(dir, task.taskDefinition.resultFile);

  return {
    result,
    dir,
    outputDroplet: inContainer(dir, '/tmp/droplet'),
    outputCache: inContainer(dir, '/tmp/output-cache'),
    resultJson: () => JSON.parse(readFileSync(outputMetadata, 'utf8')) as Record<string, unknown>,
    ccResponse: () => {
      // As the executor reports a run action's exit: "Exited with status N".
      const failed = result.code !== 0;
      const callback = TaskCallbackResponse.fromPartial({
        taskGuid: task.taskGuid,
        failed,
        failureReason: failed ? `Exited with status ${result.code}` : '',
        result: failed ? '' : readFileSync(outputMetadata, 'utf8'),
        annotation: task.taskDefinition.annotation,
      });
      return JSON.parse(encodeLegacyJson(`${CC}.StagingResponseForCC`, stagingResponseFromTaskCallback(callback, 'buildpack'))) as Record<string, unknown>;
    },
  };
}

let nodeAppStaging: Promise<Staging> | undefined;

/** The example node app staged with the nodejs buildpack after detection, once for every test that reads it. */
function stagedNodeApp(): Promise<Staging> {
  nodeAppStaging ??= stage({ app: join(EXAMPLES, 'node-app'), buildpacks: [example('staticfile'), example('nodejs')] });
  return nodeAppStaging;
}

function dropletEntries(droplet: string): string[] {
  return execOrThrow('tar', ['-tzf', droplet]).split('\n').filter((line) => line !== '');
}

function readFromTgz(archive: string, entry: string): string {
  return execOrThrow('tar', ['-xzOf', archive, entry]);
}

/** An app directory made from files (path -> content). */
function appWith(name: string, files: Record<string, string>): string {
  const dir = join(work, 'apps', name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function get(port: number, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
    });
    request.on('error', reject);
  });
}

/** Polls until the app answers, or fails with what the app printed (the bound only catches an app that never starts). */
async function waitForHttp(port: number, started: Started): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await get(port, '/');
      return;
    } catch {
      if (Date.now() > deadline) assert.fail(`the app never answered on ${port}: ${JSON.stringify(started.output())}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/**
 * Unpacks a droplet as the LRP's setup does (into the container's working directory) and gives
 * the launcher and health check run actions nsync builds for an app with that staging result.
 */
function desiredApp(droplet: string, staged: Record<string, unknown>, overrides: Partial<DesireAppRequestFromCC> = {}) {
  const home = mkdtempSync(join(work, 'home-'));
  const lrp = desiredLrpFromDesireAppRequest(
    DesireAppRequestFromCC.fromPartial({
      processGuid: 'app-guid-version',
      dropletUri: 'http://127.0.0.1:9999/droplets/app-guid',
      stack: STACK,
      startCommand: '',
      executionMetadata: String(staged.execution_metadata),
      environment: [
        { name: 'VCAP_APPLICATION', value: '{"application_name":"app","limits":{"mem":256}}' },
        { name: 'INSTANCE_INDEX', value: '2' },
      ],
      memoryMb: 256,
      diskMb: 1024,
      fileDescriptors: '0',
      numInstances: 1,
      logGuid: 'app-guid',
      healthCheckType: 'port',
      ...overrides,
    }),
    nsyncConfig,
  );
  const dropletDownload = [...actionsIn(lrp.setup)].map((each) => each.downloadAction).find((each) => each?.from.includes('droplets'));
  assert.equal(dropletDownload?.to, '.', 'the droplet is unpacked in the working directory');
  execOrThrow('tar', ['-xzf', droplet, '-C', home]);
  return { home, launcher: runActionIn(lrp.action, '/tmp/lifecycle/launcher'), healthcheck: runActionIn(lrp.monitor, '/tmp/lifecycle/healthcheck') };
}

/** The run action's environment, its container port replaced by the one this host gives the app. */
function appEnvironment(run: RunAction, port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  for (const { name, value } of run.env) env[name] = name === 'PORT' ? String(port) : value;
  return env;
}

function withPort(args: readonly string[], port: number): string[] {
  return args.map((arg) => arg.replace(/^-port=\d+$/, `-port=${port}`));
}

// ---------------------------------------------------------------------------------------------

describe('buildpack lifecycle archive', () => {
  test('has builder, launcher and healthcheck executable at its top level, and packs to the same bytes twice', () => {
    const first = packageBuildpackLifecycle(join(work, 'pack-1'));
    const second = packageBuildpackLifecycle(join(work, 'pack-2'));
    assert.equal(first.sha256, second.sha256);
    assert.deepEqual(readFileSync(first.path), readFileSync(second.path));

    const listing = execOrThrow('tar', ['-tvzf', first.path]);
    for (const program of ['builder', 'launcher', 'healthcheck']) {
      assert.match(listing, new RegExp(`^-rwxr-xr-x 0/0 .* ${program}$`, 'm'), `${program} is executable at the top level`);
    }
    assert.doesNotMatch(listing, /node_modules/);
  });
});

describe('builder', { concurrency: true }, () => {
  test('detects in order, stages the node app with the nodejs buildpack, and CC gets its start command', async () => {
    const staging = await stagedNodeApp();
    assert.equal(staging.result.code, 0, staging.result.stderr);
    assert.match(staging.result.stdout, /-----> Node.js Buildpack version/);
    assert.match(staging.result.stdout, /No dependencies in package.json; skipping npm install/);
    assert.equal(existsSync(npmMarker), false, 'npm never ran');

    const result = staging.resultJson();
    assert.deepEqual(result, {
      buildpack_key: 'nodejs-buildpack-key',
      detected_buildpack: 'nodejs',
      execution_metadata: '{"start_command":"node server.js"}',
      detected_start_command: { web: 'node server.js' },
      lifecycle_type: 'buildpack',
      lifecycle_metadata: {
        buildpack_key: 'nodejs-buildpack-key',
        detected_buildpack: 'nodejs',
        buildpacks: [{ key: 'nodejs-buildpack-key', name: 'nodejs', version: '1.0.0' }],
      },
      process_types: { web: 'node server.js' },
    });
    assert.deepEqual(staging.ccResponse(), {
      execution_metadata: '{"start_command":"node server.js"}',
      detected_start_command: { web: 'node server.js' },
      lifecycle_data: { buildpack_key: 'nodejs-buildpack-key', detected_buildpack: 'nodejs' },
    });

    const entries = dropletEntries(staging.outputDroplet);
    for (const entry of ['./app/server.js', './app/package.json', './app/.profile.d/nodejs.sh', './staging_info.yml', './tmp/', './logs/', './deps/0/config.yml']) {
      assert.ok(entries.includes(entry), `droplet has ${entry}: ${entries.join(' ')}`);
    }
    assert.deepEqual(JSON.parse(readFromTgz(staging.outputDroplet, './staging_info.yml')), { detected_buildpack: 'nodejs', start_command: 'node server.js' });
  });

  test('the first buildpack in the order that detects wins', async () => {
    const both = appWith('both', { 'package.json': '{"scripts":{"start":"node app.js"}}', 'index.html': '<h1>hi</h1>' });
    const [staticFirst, nodeFirst] = await Promise.all([
      stage({ app: both, buildpacks: [example('staticfile'), example('nodejs')] }),
      stage({ app: both, buildpacks: [example('nodejs'), example('staticfile')] }),
    ]);
    assert.equal(staticFirst.result.code, 0, staticFirst.result.stderr);
    assert.equal(staticFirst.resultJson().detected_buildpack, 'staticfile');
    assert.deepEqual(staticFirst.resultJson().detected_start_command, { web: 'node .staticfile/server.mjs' });
    assert.equal(nodeFirst.result.code, 0, nodeFirst.result.stderr);
    assert.equal(nodeFirst.resultJson().detected_buildpack, 'nodejs');
    assert.deepEqual(nodeFirst.resultJson().detected_start_command, { web: 'node app.js' }, "scripts.start is the start command");
  });

  test('skip_detect with one buildpack uses it without running bin/detect', async () => {
    const neverDetects = fixture('never-detects', {
      detect: 'touch "$1/detect-ran"; exit 1',
      compile: 'echo "-----> compiling"; echo compiled > "$1/compiled.txt"',
      release: RELEASES,
    });
    const app = appWith('plain', { 'start.sh': 'echo hi' });
    const [skipped, detected] = await Promise.all([
      stage({ app, buildpacks: [{ ...neverDetects, skipDetect: true }] }),
      stage({ app, buildpacks: [neverDetects] }),
    ]);
    assert.equal(skipped.result.code, 0, skipped.result.stderr);
    assert.match(skipped.result.stdout, /-----> compiling/);
    const entries = dropletEntries(skipped.outputDroplet);
    assert.ok(entries.includes('./app/compiled.txt'));
    assert.ok(!entries.includes('./app/detect-ran'), 'bin/detect did not run');
    // A classic buildpack leaves the 2015 droplet layout.
    assert.ok(!entries.some((entry) => entry.startsWith('./deps') || entry.startsWith('./profile.d')), entries.join(' '));
    assert.deepEqual(skipped.resultJson().detected_start_command, { web: './start.sh' });
    assert.equal(skipped.resultJson().buildpack_key, 'never-detects-key');

    assert.equal(detected.result.code, 222, 'without skip_detect the same buildpack is not chosen');
  });

  test('no buildpack detects: exit 222, which CC sees as NoAppDetectedError', async () => {
    const staging = await stage({ app: appWith('nothing', { 'README.md': 'no app here' }), buildpacks: [example('nodejs'), example('staticfile')] });
    assert.equal(staging.result.code, 222);
    assert.match(staging.result.stderr, /None of the buildpacks detected a compatible application/);
    assert.equal(existsSync(join(staging.dir, 'result.json')), false, 'no result is written');
    assert.deepEqual(staging.ccResponse().error, { id: 'NoAppDetectedError', message: 'staging failed' });
  });

  test('compile or finalize failing: exit 223, BuildpackCompileFailed', async () => {
    const failsToCompile = fixture('fails-to-compile', { detect: DETECTS, compile: 'echo "compile is failing" >&2; exit 7', release: RELEASES });
    const failsToFinalize = fixture('fails-to-finalize', { detect: DETECTS, supply: 'true', finalize: 'exit 1', release: RELEASES });
    const app = appWith('plain-2', { 'start.sh': 'echo hi' });
    const [compile, finalize] = await Promise.all([stage({ app, buildpacks: [failsToCompile] }), stage({ app, buildpacks: [failsToFinalize] })]);
    assert.equal(compile.result.code, 223);
    assert.match(compile.result.stderr, /compile is failing/, "the buildpack's own output reaches the staging log");
    assert.match(compile.result.stderr, /Failed to compile droplet: exit status 7/);
    assert.deepEqual(compile.ccResponse().error, { id: 'BuildpackCompileFailed', message: 'staging failed' });
    assert.equal(finalize.result.code, 223);
    assert.match(finalize.result.stderr, /Failed to run finalize script: exit status 1/);
  });

  test('release failing or printing something that is not YAML: exit 224, BuildpackReleaseFailed', async () => {
    const failsToRelease = fixture('fails-to-release', { detect: DETECTS, compile: 'true', release: 'exit 3' });
    const badRelease = fixture('bad-release', { detect: DETECTS, compile: 'true', release: `echo 'default_process_types: [web'` });
    const app = appWith('plain-3', { 'start.sh': 'echo hi' });
    const [failing, invalid] = await Promise.all([stage({ app, buildpacks: [failsToRelease] }), stage({ app, buildpacks: [badRelease] })]);
    assert.equal(failing.result.code, 224);
    assert.match(failing.result.stderr, /Failed to build droplet release: exit status 3/);
    assert.deepEqual(failing.ccResponse().error, { id: 'BuildpackReleaseFailed', message: 'staging failed' });
    assert.equal(invalid.result.code, 224);
    assert.match(invalid.result.stderr, /buildpack's release output invalid/);
  });

  test('a Procfile overrides the release, and a vendored node_modules is used without npm', async () => {
    const app = appWith('vendored', {
      'package.json': JSON.stringify({ dependencies: { greeting: '1.0.0' } }),
      'node_modules/greeting/index.js': 'module.exports = "hi";',
      'server.js': 'require("greeting");',
      Procfile: 'web: node server.js --from-procfile\nworker: node worker.js\n',
    });
    const staging = await stage({ app, buildpacks: [example('nodejs')] });
    assert.equal(staging.result.code, 0, staging.result.stderr);
    assert.match(staging.result.stdout, /Using the vendored node_modules \(1 top-level packages\)/);
    assert.equal(existsSync(npmMarker), false, 'npm never ran');
    assert.deepEqual(staging.resultJson().detected_start_command, { web: 'node server.js --from-procfile' });
    assert.deepEqual(staging.resultJson().process_types, { web: 'node server.js --from-procfile', worker: 'node worker.js' });
    assert.ok(dropletEntries(staging.outputDroplet).includes('./app/node_modules/greeting/index.js'));
  });

  test('the build artifacts cache one staging writes is what the next one finds', async () => {
    const first = await stagedNodeApp();
    assert.equal(first.result.code, 0, first.result.stderr);
    assert.doesNotMatch(first.result.stdout, /Restoring build cache/);
    assert.equal(readFromTgz(first.outputCache, './final/node-version').trim(), process.version);

    const second = await stage({ app: join(EXAMPLES, 'node-app'), buildpacks: [example('nodejs')], cacheFrom: first.outputCache });
    assert.equal(second.result.code, 0, second.result.stderr);
    assert.match(second.result.stdout, new RegExp(`Restoring build cache from a previous staging \\(node ${process.version.replaceAll('.', '\\.')}\\)`));
  });

  test('a custom buildpack given by URL is fetched by the builder itself', async () => {
    const archive = packageBuildpack('staticfile', join(work, 'served-buildpacks'));
    const server = http.createServer((request, response) => {
      if (request.url !== '/staticfile_buildpack.tgz') {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/gzip' }).end(readFileSync(archive.path));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/staticfile_buildpack.tgz`;
      const staging = await stage({ app: join(EXAMPLES, 'static-site'), buildpacks: [{ name: 'custom', key: url, url }] });
      assert.equal(staging.result.code, 0, staging.result.stderr);
      assert.match(staging.result.stdout, new RegExp(`Downloaded buildpack \`${url.replaceAll('.', '\\.')}\``));
      assert.equal(staging.resultJson().detected_buildpack, 'staticfile');
      assert.equal(staging.resultJson().buildpack_key, url);
    } finally {
      server.close();
    }
  });
});

describe('launcher', () => {
  test('runs the staged node app from its droplet with the instance environment; SIGTERM reaches the app', async () => {
    const staging = await stagedNodeApp();
    assert.equal(staging.result.code, 0, staging.result.stderr);
    const { home, launcher, healthcheck } = desiredApp(staging.outputDroplet, staging.resultJson());
    assert.deepEqual(launcher.args, ['app', '', '{"start_command":"node server.js"}']);

    const port = await freePort();
    const app = start(lifecycleProgram(launcher.path), launcher.args, { cwd: home, env: appEnvironment(launcher, port) });
    await waitForHttp(port, app);

    assert.equal((await get(port, '/')).body, 'hello from ccbridge\n');
    const env = JSON.parse((await get(port, '/env')).body) as Record<string, string>;
    assert.equal(env.HOME, join(home, 'app'));
    assert.equal(env.TMPDIR, join(home, 'tmp'));
    assert.equal(env.PORT, String(port));
    assert.equal(env.VCAP_APP_PORT, String(port));
    assert.equal(env.NODE_ENV, 'production', "the buildpack's .profile.d script was sourced");
    assert.deepEqual(JSON.parse(env.VCAP_APPLICATION!), {
      application_name: 'app',
      host: '0.0.0.0',
      instance_id: '',
      instance_index: 2,
      limits: { mem: 256 },
      port,
    });

    const check = await runProgram(lifecycleProgram(healthcheck.path), withPort(healthcheck.args, port), { env: { PATH: process.env.PATH } });
    assert.equal(check.code, 0);
    assert.equal(check.stdout, 'healthcheck passed\n');

    // The launcher execs: the process the cell signals is the app itself, which exits 0 on SIGTERM.
    app.kill('SIGTERM');
    const stopped = await app.finished;
    assert.equal(stopped.code, 0, JSON.stringify(stopped));
    assert.match(stopped.stdout, /node-app received SIGTERM, exiting/);
  });

  test('takes the start command from its argument, else from staging_info.yml', async () => {
    const staging = await stagedNodeApp();
    assert.equal(staging.result.code, 0, staging.result.stderr);

    const fromArgument = desiredApp(staging.outputDroplet, staging.resultJson(), { startCommand: 'echo "started by argument in $PWD"' });
    const byArgument = await runProgram(lifecycleProgram(fromArgument.launcher.path), fromArgument.launcher.args, {
      cwd: fromArgument.home,
      env: appEnvironment(fromArgument.launcher, 8080),
    });
    assert.equal(byArgument.code, 0, byArgument.stderr);
    assert.equal(byArgument.stdout, `started by argument in ${join(fromArgument.home, 'app')}\n`);

    // With neither a start command nor execution metadata, the droplet's staging_info.yml decides.
    const fromDroplet = desiredApp(staging.outputDroplet, { execution_metadata: '' });
    writeFileSync(join(fromDroplet.home, 'staging_info.yml'), '{"detected_buildpack":"nodejs","start_command":"echo from staging_info"}\n');
    const byDroplet = await runProgram(lifecycleProgram(fromDroplet.launcher.path), fromDroplet.launcher.args, {
      cwd: fromDroplet.home,
      env: appEnvironment(fromDroplet.launcher, 8080),
    });
    assert.equal(byDroplet.code, 0, byDroplet.stderr);
    assert.equal(byDroplet.stdout, 'from staging_info\n');
  });

  test('serves the static site staged with the staticfile buildpack', async () => {
    const staging = await stage({ app: join(EXAMPLES, 'static-site'), buildpacks: [example('nodejs'), example('staticfile')] });
    assert.equal(staging.result.code, 0, staging.result.stderr);
    assert.equal(staging.resultJson().detected_buildpack, 'staticfile');
    const { home, launcher } = desiredApp(staging.outputDroplet, staging.resultJson());

    const port = await freePort();
    const app = start(lifecycleProgram(launcher.path), launcher.args, { cwd: home, env: appEnvironment(launcher, port) });
    try {
      await waitForHttp(port, app);
      const index = await get(port, '/');
      assert.equal(index.status, 200);
      assert.match(index.body, /hello from ccbridge/);
      assert.equal((await get(port, '/style.css')).headers['content-type'], 'text/css; charset=utf-8');
      assert.equal((await get(port, '/missing.html')).status, 404);
      assert.equal((await get(port, '/.staticfile/config.json')).status, 404, "the buildpack's own files are not served");
      assert.equal((await get(port, '/Staticfile')).status, 404);
    } finally {
      app.kill('SIGTERM');
      assert.equal((await app.finished).code, 0);
    }
  });
});

describe('the YAML the builder reads (release output, Procfile, launch.yml)', () => {
  const cases: Array<{ name: string; input: string; want: unknown }> = [
    {
      name: 'a release with comments, flow collections and a quoted command',
      input: '---\naddons: []\nconfig_vars: {}\ndefault_process_types:\n  web: "node server.js --title \\"x\\""  # the app\n  worker: bundle exec rake jobs:work\n',
      want: { addons: [], config_vars: {}, default_process_types: { web: 'node server.js --title "x"', worker: 'bundle exec rake jobs:work' } },
    },
    { name: 'a Procfile', input: "web: ./bin/start -p $PORT\nclock: 'it''s time'\n", want: { web: './bin/start -p $PORT', clock: "it's time" } },
    {
      name: 'launch.yml: a sequence of mappings, a literal block',
      input: 'processes:\n- type: web\n  command: |\n    echo one\n    echo two\n- type: "worker"\n  command: work\n',
      want: { processes: [{ type: 'web', command: 'echo one\necho two\n' }, { type: 'worker', command: 'work' }] },
    },
    { name: 'folded block, continued plain scalar, nulls', input: 'a: >-\n  one\n  two\n\n  three\nb: first\n  second\nc:\nd: ~\n', want: { a: 'one two\nthree', b: 'first second', c: null, d: null } },
    { name: 'JSON (how staging_info.yml is written)', input: '{"detected_buildpack":"nodejs","start_command":"a \\u0026\\u0026 b"}\n', want: { detected_buildpack: 'nodejs', start_command: 'a && b' } },
    { name: 'an empty document', input: '---\n# nothing\n', want: null },
  ];
  for (const { name, input, want } of cases) test(name, () => assert.deepEqual(JSON.parse(JSON.stringify(parseYaml(input))), want));

  const refusals = [
    { name: 'an unterminated flow sequence', input: 'default_process_types: [web' },
    { name: 'a key at a deeper indentation', input: 'a: b\n  c: d\n' },
    { name: 'tab indentation', input: 'a:\n\tb: c\n' },
    { name: 'an unterminated quote', input: 'web: "node\n' },
  ];
  for (const { name, input } of refusals) test(`refuses ${name}`, () => assert.throws(() => parseYaml(input), YamlError));
});

describe('healthcheck', { concurrency: true }, () => {
  let server: http.Server;
  let port: number;
  before(async () => {
    server = http.createServer((request, response) => {
      if (request.url === '/healthy') response.writeHead(200).end('ok');
      else if (request.url === '/moved') response.writeHead(302, { location: '/healthy' }).end();
      else if (request.url === '/hangs') return; // never answers
      else response.writeHead(500).end('broken');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const healthcheck = (args: string[]) => runProgram(join(lifecycleDir, 'healthcheck'), args, { env: { PATH: process.env.PATH } });

  test('port: passes when the port accepts connections, fails when nothing listens', async () => {
    const closedPort = await freePort();
    const [open, closed] = await Promise.all([healthcheck([`-port=${port}`, '-timeout=5s']), healthcheck([`-port=${closedPort}`, '-timeout=100ms'])]);
    assert.deepEqual([open.code, open.stdout], [0, 'healthcheck passed\n']);
    assert.deepEqual([closed.code, closed.stdout], [1, 'healthcheck failed\n']);
    assert.match(closed.stderr, /ECONNREFUSED/);
  });

  test('uri: 2xx and 3xx pass; 5xx, no answer within -timeout, or nothing listening fail', async () => {
    const closedPort = await freePort();
    const [healthy, moved, broken, hangs, closed] = await Promise.all([
      healthcheck([`-port=${port}`, '-uri=/healthy', '-timeout=5s']),
      healthcheck([`-port=${port}`, '-uri=/moved', '-timeout=5s']),
      healthcheck([`-port=${port}`, '-uri=/broken', '-timeout=5s']),
      healthcheck([`-port=${port}`, '-uri=/hangs', '-timeout=100ms']),
      healthcheck([`-port=${closedPort}`, '-uri=/healthy', '-timeout=100ms']),
    ]);
    assert.deepEqual([healthy.code, healthy.stdout], [0, 'healthcheck passed\n']);
    assert.deepEqual([moved.code, moved.stdout], [0, 'healthcheck passed\n']);
    assert.deepEqual([broken.code, broken.stdout], [1, 'healthcheck failed\n']);
    assert.match(broken.stderr, /status 500/);
    assert.deepEqual([hangs.code, hangs.stdout], [1, 'healthcheck failed\n']);
    assert.match(hangs.stderr, /within 100ms/);
    assert.deepEqual([closed.code, closed.stdout], [1, 'healthcheck failed\n']);
  });

  test('a flag it does not know is a usage error (exit 2)', async () => {
    const result = await healthcheck(['-bogus']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /flag provided but not defined: -bogus/);
  });
});
