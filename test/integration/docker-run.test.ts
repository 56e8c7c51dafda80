// The cell runs docker-lifecycle work from its image: layers unpacked into a root (whiteouts,
// opaque directories, no escape from the root), cached by digest and shared; the docker
// launcher and healthcheck running inside a busybox image from the host runtime the cell binds
// there; and docker LRPs desired on the embedded Diego, pulled from Debian's docker-registry on
// 127.0.0.1 (open, over TLS with a throwaway CA given to the cell, and behind htpasswd with
// right and wrong credentials). Intervals are milliseconds; every server is on loopback.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import { Action } from '../../gen/diego/bbs/v1/actions.js';
import { ActualLRP_Presence, type ActualLRP } from '../../gen/diego/bbs/v1/actual_lrp.js';
import { MetricTagValue_DynamicValue } from '../../gen/diego/bbs/v1/container.js';
import { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import { Task_State, TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import { startEmbeddedCell, type EmbeddedCell } from '../../embedded/diego/cell/index.js';
import { createExecutor, HOST_RUNTIME_PATH, type Executor, type LogLine, type NetInfo } from '../../embedded/diego/executor/index.js';
import { createImageStore, ImagePullError, type ImageRegistry, type ImageStore } from '../../embedded/diego/executor/images.js';
import { createImageRegistry } from '../../embedded/diego/executor/registry.js';
import { ActualLrpState, startEmbeddedDiego, type EmbeddedDiego } from '../../embedded/diego/index.js';
import { createLogger, silentLogger } from '../../lib/log.js';
import { packageDockerLifecycle } from '../../lifecycles/package.mjs';
import { DesireAppRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { desiredLrpFromDesireAppRequest, SSH_PORT } from '../../services/nsync/recipe/index.js';
import { createSshKeyPairGenerator, sshKeyPairFromPrivateKey } from '../../services/nsync/recipe/ssh.js';
import { ssh, sshClientArgs } from '../support/ssh.js';
import { buildBusyboxImage, buildLayer, EXAMPLE_IMAGE_PAGE, pushExampleImage, sha256Digest, startRegistry, type TestRegistry } from '../support/registry.js';

const logger = silentLogger();
const token = `dockerrun${process.pid}`;
const root = mkdtempSync(join(tmpdir(), `${token}-`));
const HOST_UID = 2000;

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// ---------------------------------------------------------------- layers and a registry in memory

/** A ustar entry written by hand, for layers the system tar will not make (`..`, devices). */
function tarEntry(name: string, type: '0' | '2' | '3' | '5', content = '', linkName = ''): Buffer {
  const header = Buffer.alloc(512);
  const body = Buffer.from(content);
  header.write(name, 0, 100);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write(type, 156);
  header.write(linkName, 157, 100);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, padding]);
}

const tarOf = (...entries: Buffer[]) => Buffer.concat([...entries, Buffer.alloc(1024)]);

/** An ImageRegistry over images held in memory, counting what it is asked. */
function memoryRegistry(images: Record<string, Buffer[]>): ImageRegistry & { resolves: number; fetches: string[] } {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { digest: string; layers: { digest: string; size: number }[] }>();
  for (const [rootFs, layers] of Object.entries(images)) {
    const described = layers.map((layer) => {
      const digest = sha256Digest(layer);
      blobs.set(digest, layer);
      return { digest, size: layer.length };
    });
    manifests.set(rootFs, { digest: sha256Digest(JSON.stringify(described)), layers: described });
  }
  const registry = {
    resolves: 0,
    fetches: [] as string[],
    async resolve(rootFs: string) {
      registry.resolves += 1;
      // Long enough for concurrent acquires to meet in one pull.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const manifest = manifests.get(rootFs);
      if (!manifest) throw new Error(`manifest unknown: ${rootFs}`);
      return manifest;
    },
    async fetchBlob(_rootFs: string, _credentials: unknown, digest: string, destination: string) {
      registry.fetches.push(digest);
      writeFileSync(destination, blobs.get(digest)!);
    },
  };
  return registry;
}

function storeWith(registry: ImageRegistry, dir: string, bounds: { maxBytes?: number; maxIdleMs?: number } = {}): ImageStore {
  return createImageStore({
    dir,
    registry,
    logger,
    hostUid: HOST_UID,
    hostGid: HOST_UID,
    maxBytes: bounds.maxBytes ?? 1024 ** 3,
    maxIdleMs: bounds.maxIdleMs ?? 3_600_000,
    pullTimeoutMs: 30_000,
  });
}

describe('image roots', () => {
  test('layers are unpacked in order: whiteouts delete, opaque directories hide the lower layers, mount points exist, files belong to the container user', async () => {
    const registry = memoryRegistry({ 'docker://example/busybox#whiteouts': buildBusyboxImage({ whiteouts: true }).layers });
    const store = storeWith(registry, join(root, 'store-whiteouts'));
    const image = await store.acquire('docker://example/busybox#whiteouts', undefined);
    try {
      const at = (path: string) => join(image.path, path);
      assert.equal(readFileSync(at('www/index.html'), 'utf8'), EXAMPLE_IMAGE_PAGE);
      assert.equal(readFileSync(at('www/extra.html'), 'utf8'), 'added by the second layer\n');
      assert.equal(existsSync(at('www/old.html')), false, 'a .wh. file deletes its sibling');
      assert.deepEqual(execFileSync('ls', ['-A', at('opt/data')], { encoding: 'utf8' }).split('\n').filter(Boolean), ['new.txt'], 'an opaque directory keeps only its own layer');
      assert.equal(readlinkSync(at('bin/sh')), 'busybox');
      for (const dir of ['tmp', 'home/vcap', 'proc', 'dev']) assert.ok(statSync(at(dir)).isDirectory(), `/${dir}`);
      assert.equal(statSync(at('tmp')).mode & 0o7777, 0o1777);
      assert.equal(statSync(at('root')).mode & 0o777, 0o700, 'a directory keeps its mode');
      assert.equal(statSync(at('bin/busybox')).uid, HOST_UID);
      assert.equal(statSync(at('bin/busybox')).mode & 0o777, 0o755);
    } finally {
      image.release();
    }
  });

  test('long names arrive whole from POSIX pax, ustar-prefix and GNU archives', async () => {
    const source = join(root, 'long-names');
    const deep = ['a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60)].join('/');
    mkdirSync(join(source, deep), { recursive: true });
    writeFileSync(join(source, deep, 'file.txt'), 'deep\n');
    const layers = (['posix', 'ustar', 'gnu'] as const).map((format) => execFileSync('tar', [`--format=${format}`, '-cf', '-', '-C', source, '.']));
    const images = Object.fromEntries(layers.map((layer, index) => [`docker://example/long#${index}`, [layer]]));
    const store = storeWith(memoryRegistry(images), join(root, 'store-long-names'));
    for (const rootFs of Object.keys(images)) {
      const image = await store.acquire(rootFs, undefined);
      assert.equal(readFileSync(join(image.path, deep, 'file.txt'), 'utf8'), 'deep\n', rootFs);
      image.release();
    }
  });

  test('no entry reaches outside the root: symlinks planted by a lower layer are not followed, `..` is refused, devices are skipped', async () => {
    const outside = join(root, `outside-${token}`);
    mkdirSync(outside, { recursive: true });
    const planted = tarOf(tarEntry('escape', '2', '', outside), tarEntry('etc/', '5'), tarEntry('dev/null', '3'));
    const through = tarOf(tarEntry('escape/written.txt', '0', 'should stay inside'));
    const climbing = tarOf(tarEntry('../climbed.txt', '0', 'must not exist'));
    const registry = memoryRegistry({ 'docker://example/planted#1': [planted, through], 'docker://example/climbing#1': [climbing] });
    const store = storeWith(registry, join(root, 'store-escapes'));

    const image = await store.acquire('docker://example/planted#1', undefined);
    try {
      assert.equal(existsSync(join(outside, 'written.txt')), false, 'nothing was written through the symlink');
      assert.ok(lstatSync(join(image.path, 'escape')).isDirectory(), 'the later layer\'s directory replaced the symlink');
      assert.equal(readFileSync(join(image.path, 'escape/written.txt'), 'utf8'), 'should stay inside');
      assert.ok(statSync(join(image.path, 'dev')).isDirectory());
      assert.equal(existsSync(join(image.path, 'dev/null')), false, 'device nodes are skipped');
    } finally {
      image.release();
    }

    await assert.rejects(store.acquire('docker://example/climbing#1', undefined), (error: Error) => {
      assert.ok(error instanceof ImagePullError);
      assert.match(error.message, /^failed to pull image docker:\/\/example\/climbing#1: could not unpack the image's layers: layer 1 of 1: .*climbs out of the root/);
      return true;
    });
    assert.equal(existsSync(join(root, 'store-escapes', 'climbed.txt')), false);
    assert.equal(existsSync(join(root, 'store-escapes', 'roots', 'climbed.txt')), false);
  });

  test('one pull for concurrent uses of an image, no download for a root already unpacked, and unused roots go beyond the size bound', async () => {
    const rootFs = 'docker://example/busybox#cached';
    const registry = memoryRegistry({ [rootFs]: buildBusyboxImage().layers });
    const dir = join(root, 'store-cache');
    const store = storeWith(registry, dir, { maxBytes: 0 });
    const [first, second] = await Promise.all([store.acquire(rootFs, undefined), store.acquire(rootFs, undefined)]);
    assert.equal(first.path, second.path);
    assert.equal(registry.resolves, 1, 'the concurrent uses shared one pull');
    assert.equal(registry.fetches.length, 1, 'the one layer was downloaded once');

    const third = await store.acquire(rootFs, undefined);
    assert.equal(third.path, first.path);
    assert.equal(registry.resolves, 2, 'the manifest is asked for at every use (it checks credentials)');
    assert.equal(registry.fetches.length, 1, 'but nothing is downloaded again');

    first.release();
    second.release();
    await store.prune();
    assert.ok(existsSync(third.path), 'a root in use stays, whatever the bound');
    third.release();
    await store.prune();
    assert.equal(existsSync(third.path), false, 'an unused root over the bound is removed');
    assert.deepEqual(execFileSync('ls', ['-A', join(dir, 'blobs')], { encoding: 'utf8' }).trim(), '', 'and so are its blobs');
  });
});

// ---------------------------------------------------------------- the docker lifecycle in a busybox image

/** The docker lifecycle as the file server hands it out: the real packager's archive. */
function dockerLifecycleArchive(): Buffer {
  return readFileSync(packageDockerLifecycle(join(root, 'lifecycle')).path);
}

let fileServer: Server;
let fileServerPort = 0;
const served = new Map<string, Buffer>();
const fileUrl = (path: string) => `http://127.0.0.1:${fileServerPort}${path}`;

before(async () => {
  served.set('/docker_app_lifecycle.tgz', dockerLifecycleArchive());
  fileServer = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200).end(body);
  });
  await new Promise<void>((resolve) => fileServer.listen(0, '127.0.0.1', resolve));
  fileServerPort = (fileServer.address() as AddressInfo).port;
});

after(async () => {
  fileServer?.closeAllConnections();
  await new Promise((resolve) => fileServer?.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

const METADATA = JSON.stringify({ entrypoint: ['/bin/busybox'], cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], workdir: '/www', user: 'vcap' });

/** A docker app's LRP as the nsync docker recipe shapes it (setup, launcher, healthcheck monitor). */
function dockerLrp(processGuid: string, rootFs: string, options: { startCommand?: string; monitorArgs?: string[]; credentials?: { username: string; password: string } } = {}): DesiredLRP {
  const logGuid = `log-${processGuid}`;
  return DesiredLRP.fromPartial({
    processGuid,
    domain: 'docker-test',
    rootFs,
    instances: 1,
    memoryMb: 256,
    diskMb: 256,
    ports: [8080],
    logGuid,
    metricsGuid: logGuid,
    logSource: 'CELL',
    metricTags: { source_id: { static: logGuid }, instance_id: { dynamic: MetricTagValue_DynamicValue.DYNAMIC_VALUE_INDEX } },
    setup: Action.fromPartial({
      serialAction: { actions: [{ downloadAction: { from: fileUrl('/docker_app_lifecycle.tgz'), to: '/tmp/lifecycle', cacheKey: 'docker-lifecycle', user: 'vcap' } }] },
    }),
    action: Action.fromPartial({
      codependentAction: {
        actions: [
          {
            runAction: {
              path: '/tmp/lifecycle/launcher',
              args: ['app', options.startCommand ?? '', METADATA],
              env: [{ name: 'PORT', value: '8080' }],
              user: 'vcap',
              logSource: 'APP',
            },
          },
        ],
      },
    }),
    monitor: Action.fromPartial({
      timeoutAction: {
        action: { runAction: { path: '/tmp/lifecycle/healthcheck', args: options.monitorArgs ?? ['-port=8080'], user: 'vcap', logSource: 'HEALTH', resourceLimits: { nofile: '1024' } } },
        timeoutMs: '30000',
      },
    }),
    startTimeoutMs: '20000',
    imageUsername: options.credentials?.username ?? '',
    imagePassword: options.credentials?.password ?? '',
  });
}

describe('the docker lifecycle inside a busybox image', () => {
  let executor: Executor;
  const lines: LogLine[] = [];
  const rootFs = 'docker://example/busybox#latest';

  before(() => {
    executor = createExecutor({
      dataDir: join(root, 'executor'),
      logger,
      hostServicePorts: [fileServerPort],
      imageRegistry: memoryRegistry({ [rootFs]: buildBusyboxImage().layers }),
      stopGraceMs: 1_000,
      killWaitMs: 2_000,
      monitorStartIntervalMs: 50,
    });
  });
  after(async () => executor?.close());

  async function runInstance(lrp: DesiredLRP): Promise<{ netInfo: NetInfo; stop: () => Promise<void> }> {
    let crash: string | undefined;
    let running: NetInfo | undefined;
    const instance = executor.startLrpInstance({
      desiredLrp: lrp,
      index: 0,
      instanceGuid: `${lrp.processGuid}-0`,
      logSink: (line) => lines.push(line),
      onRunning: (netInfo) => (running = netInfo),
      onCrashed: (reason) => (crash = reason),
    });
    const netInfo = await waitFor('the instance running', () => {
      if (crash !== undefined) throw new Error(`crashed: ${crash}; logs: ${JSON.stringify(lines.slice(-10))}`);
      return running;
    });
    return { netInfo, stop: () => instance.stop() };
  }

  test('the launcher runs the image\'s entrypoint and cmd in its workdir; the healthcheck passes on the port', async () => {
    const { netInfo, stop } = await runInstance(dockerLrp(`${token}-entrypoint`, rootFs));
    try {
      const answer = await fetch(`http://127.0.0.1:${netInfo.ports[0]!.hostPort}/`);
      assert.equal(await answer.text(), EXAMPLE_IMAGE_PAGE);
      assert.ok(lines.some((line) => line.source === 'HEALTH' && line.message === 'healthcheck passed'));
    } finally {
      await stop();
    }
  });

  test('a start command runs with the image\'s /bin/sh; the http healthcheck passes; the host runtime is read-only and no host node is there; the image root is the container\'s own to write', async () => {
    // The first instance writes into its image root (a new directory, and a change to a file of
    // the image); the second, of the same image, sees neither.
    const writes = 'mkdir /written && echo mine > /www/index.html && echo wrote into the image';
    const lrp = dockerLrp(`${token}-command`, rootFs, {
      startCommand: `echo "runtime: $(ls ${HOST_RUNTIME_PATH}/bin | tr '\\n' ' ')"; touch ${HOST_RUNTIME_PATH}/x 2>/dev/null || echo runtime is read-only; [ -e /usr/bin/node ] || echo no host node; [ -e /written ] && echo saw a write of another container; ${writes}; exec httpd -f -p 8080 -h /www`,
      monitorArgs: ['-port=8080', '-uri=/index.html'],
    });
    const { netInfo, stop } = await runInstance(lrp);
    try {
      const app = lines.filter((line) => line.source === 'APP').map((line) => line.message);
      assert.ok(app.some((line) => /^runtime: .*\bnode\b/.test(line) && /\bsh\b/.test(line) && /\bdropbear\b/.test(line)), app.join('\n'));
      assert.ok(app.includes('runtime is read-only'));
      assert.ok(app.includes('no host node'));
      assert.ok(app.includes('wrote into the image'), app.join('\n'));
      assert.equal(await (await fetch(`http://127.0.0.1:${netInfo.ports[0]!.hostPort}/index.html`)).text(), 'mine\n');
    } finally {
      await stop();
    }
    lines.length = 0;
    const again = await runInstance(dockerLrp(`${token}-command-2`, rootFs, { startCommand: `[ -e /written ] && echo saw a write of another container; exec httpd -f -p 8080 -h /www` }));
    try {
      assert.equal(await (await fetch(`http://127.0.0.1:${again.netInfo.ports[0]!.hostPort}/index.html`)).text(), EXAMPLE_IMAGE_PAGE, 'the shared image root is as pulled');
      assert.equal(lines.some((line) => line.message.includes('saw a write of another container')), false);
    } finally {
      await again.stop();
    }
  });
});

// ---------------------------------------------------------------- docker LRPs on the embedded Diego

describe('docker LRPs on the embedded Diego from a real registry', () => {
  const PASSWORD = `s3cret-${token}`;
  let open: TestRegistry;
  let guarded: TestRegistry;
  let secure: TestRegistry;
  let diego: EmbeddedDiego;
  let bbs: BbsClient;
  let cell: EmbeddedCell;
  const logStream = new PassThrough();
  let logText = '';
  logStream.on('data', (chunk: Buffer) => (logText += chunk.toString('utf8')));
  const rootFsOf = (reference: string) => {
    const [host, ...rest] = reference.split('/');
    const [remote, tag] = rest.join('/').split(':');
    return `docker://${host}/${remote}#${tag}`;
  };

  before(async () => {
    [open, guarded, secure] = await Promise.all([startRegistry(), startRegistry({ auth: { username: 'puller', password: PASSWORD } }), startRegistry({ tls: true })]);
    diego = await startEmbeddedDiego({
      dataDir: join(root, 'diego'),
      logger,
      timing: { convergenceIntervalMs: 500, taskKickIntervalMs: 500, staleUnclaimedMs: 500, cellTtlMs: 3_000, cellCheckIntervalMs: 100, callbackTimeoutMs: 2_000, reservationTtlMs: 2_000 },
      logCache: { flushIntervalMs: 20 },
    });
    bbs = createBbsClient({ url: diego.url, logger });
    cell = await startEmbeddedCell({
      diego,
      cellId: `cell-${token}`,
      dataDir: join(root, 'cell'),
      logger: createLogger({ destination: logStream, level: 'debug' }),
      capacity: { memoryMb: 4096, diskMb: 16_384, containers: 16 },
      hostServicePorts: [fileServerPort],
      executorOptions: {
        imageRegistry: createImageRegistry({ insecureRegistries: [open.address, guarded.address], caFile: secure.caFile }),
        stopGraceMs: 1_000,
        killWaitMs: 2_000,
        monitorStartIntervalMs: 50,
      },
      timing: { evacuationTimeoutMs: 1_000, evacuationPollIntervalMs: 50, reportRetryDelayMs: 20 },
    });
  });

  after(async () => {
    await cell?.close({ evacuate: false });
    bbs?.close();
    await diego?.close(100);
    await Promise.all([open?.stop(), guarded?.stop(), secure?.stop()]);
  });

  const ordinary = async (processGuid: string): Promise<ActualLRP | undefined> =>
    (await bbs.actualLrps({ processGuid, index: 0 })).find((lrp) => lrp.presence === ActualLRP_Presence.PRESENCE_ORDINARY);

  async function answersOverHttp(processGuid: string): Promise<void> {
    const lrp = await waitFor(`${processGuid} RUNNING`, async () => {
      const actual = await ordinary(processGuid);
      if (actual?.state === ActualLrpState.CRASHED) throw new Error(`crashed: ${actual.crashReason}`);
      return actual?.state === ActualLrpState.RUNNING ? actual : undefined;
    });
    const port = lrp.actualLrpNetInfo!.ports[0]!.hostPort;
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), EXAMPLE_IMAGE_PAGE);
    await bbs.removeDesiredLrp(processGuid);
    await waitFor(`${processGuid} removed`, async () => (await bbs.actualLrps({ processGuid })).length === 0);
  }

  test('an image from an open registry runs and answers on its host port; a second app of it starts from the cached root', async () => {
    const reference = await pushExampleImage(open);
    const pulls = () => logText.split('\n').filter((line) => line.includes('"pulling-image"') && line.includes(rootFsOf(reference))).length;
    await bbs.desireLrp(dockerLrp(`${token}-open`, rootFsOf(reference)));
    await answersOverHttp(`${token}-open`);
    assert.equal(pulls(), 1, 'the first start downloaded the image');
    await bbs.desireLrp(dockerLrp(`${token}-open-again`, rootFsOf(reference)));
    await answersOverHttp(`${token}-open-again`);
    assert.equal(pulls(), 1, 'the second start did not download it again');
  });

  test('an image from a registry whose certificate the cell\'s CA signed runs', async () => {
    const reference = await pushExampleImage(secure);
    await bbs.desireLrp(dockerLrp(`${token}-tls`, rootFsOf(reference)));
    await answersOverHttp(`${token}-tls`);
  });

  test('an image behind basic auth runs with the LRP\'s credentials', async () => {
    const reference = await pushExampleImage(guarded);
    await bbs.desireLrp(dockerLrp(`${token}-auth`, rootFsOf(reference), { credentials: { username: 'puller', password: PASSWORD } }));
    await answersOverHttp(`${token}-auth`);
  });

  test('a docker app that allows SSH: the recipe\'s diego-sshd runs in the image from the host runtime, and the system ssh logs in with the route\'s key', async () => {
    const reference = await pushExampleImage(open, { repository: 'ccbridge/ssh' });
    const processGuid = `${token}-ssh`;
    const lrp = desiredLrpFromDesireAppRequest(
      DesireAppRequestFromCC.fromPartial({
        processGuid,
        dockerImage: reference,
        // What the docker stager recorded for the example image.
        executionMetadata: JSON.stringify({ cmd: ['httpd', '-f', '-p', '8080', '-h', '/www'], entrypoint: ['/bin/busybox'], workdir: '/www', ports: [{ Port: 8080, Protocol: 'tcp' }] }),
        environment: [{ name: 'GREETING', value: 'hello from the app environment' }],
        memoryMb: 128,
        diskMb: 256,
        fileDescriptors: '1024',
        numInstances: 1,
        routes: [],
        logGuid: `log-${processGuid}`,
        healthCheckType: 'port',
        healthCheckTimeoutInSeconds: 30,
        allowSsh: true,
        etag: '1',
      }),
      {
        lifecycles: { docker: fileUrl('/docker_app_lifecycle.tgz') },
        fileServerUrl: fileUrl(''),
        privilegedContainers: false,
        defaultHealthCheckTimeoutSeconds: 0,
        generateSshKeyPair: createSshKeyPairGenerator(),
      },
    );
    const route = JSON.parse(Buffer.from(lrp.routes!.routes['diego-ssh']!).toString('utf8')) as { container_port: number; private_key: string };
    const sshd = lrp.action!.codependentAction!.actions[1]!.runAction!;
    const sshdArgs = sshd.args;
    // The image names no USER, so the app and its SSH server run as root, as under Docker.
    assert.equal(sshd.user, 'root');
    const hostKey = sshKeyPairFromPrivateKey(sshdArgs.find((arg) => arg.startsWith('-hostKey='))!.slice('-hostKey='.length));

    await bbs.desireLrp(lrp);
    const running = await waitFor(`${processGuid} RUNNING`, async () => {
      const actual = await ordinary(processGuid);
      if (actual?.state === ActualLrpState.CRASHED) throw new Error(`crashed: ${actual.crashReason}`);
      return actual?.state === ActualLrpState.RUNNING ? actual : undefined;
    });
    const port = (containerPort: number) => running.actualLrpNetInfo!.ports.find((mapping) => mapping.containerPort === containerPort)?.hostPort;
    assert.equal(await (await fetch(`http://127.0.0.1:${port(8080)}/`)).text(), EXAMPLE_IMAGE_PAGE);
    const sshPort = port(route.container_port);
    assert.equal(route.container_port, SSH_PORT);
    assert.ok(sshPort, 'container port 2222 is published');

    const dir = mkdtempSync(join(root, 'ssh-client-'));
    writeFileSync(join(dir, 'id'), route.private_key, { mode: 0o600 });
    writeFileSync(join(dir, 'known_hosts'), `[127.0.0.1]:${sshPort} ${hostKey.authorizedKey}\n`);
    const login = (command: string) =>
      ssh([...sshClientArgs(join(dir, 'known_hosts'), sshPort), '-i', join(dir, 'id'), `${sshd.user}@127.0.0.1`, command]);
    // diego-sshd may still be starting when the app already passes its health check.
    let last: { code: number | null; stderr: string } | undefined;
    const session = await waitFor('an SSH session in the image', async () => {
      const result = await login('id -u; echo "$HOME"; echo "$GREETING"; cat /www/index.html');
      last = result;
      return result.code === 0 ? result : undefined;
    }).catch(async (error: Error) => {
      const logs = await (await fetch(`${diego.url}/api/v1/read/log-${processGuid}?envelope_types=LOG&limit=200`)).text();
      throw new Error(`${error.message}; ssh said (${last?.code}): ${last?.stderr}; the instance logged: ${logs}`);
    });
    assert.equal(session.stdout, `0\n/root\nhello from the app environment\n${EXAMPLE_IMAGE_PAGE}`, 'a shell of the image, as its user, with the app\'s environment');
    assert.equal((await login('exit 3')).code, 3);
    const instance = await ordinary(processGuid);
    assert.equal(instance?.crashCount, 0, 'SSH never made the instance crash');
    await bbs.removeDesiredLrp(processGuid);
    await waitFor(`${processGuid} removed`, async () => (await bbs.actualLrps({ processGuid })).length === 0);
  });

  test('a task in an image runs there with the image\'s environment beneath its own and hands back its result; a task whose image cannot be pulled fails with the reason', async () => {
    const reference = await pushExampleImage(open, { repository: 'ccbridge/task' });
    const task = (taskGuid: string, rootFs: string) =>
      bbs.desireTask(
        taskGuid,
        'docker-test',
        TaskDefinition.fromPartial({
          rootFs,
          memoryMb: 64,
          diskMb: 64,
          logGuid: `log-${taskGuid}`,
          metricTags: { source_id: { static: `log-${taskGuid}` } },
          // The image's Env comes beneath the task's: EXAMPLE from the image, PATH from the task.
          environmentVariables: [{ name: 'PATH', value: '/bin:/usr/bin' }],
          action: Action.fromPartial({ runAction: { path: '/bin/sh', args: ['-c', 'cat /www/index.html > /tmp/result.txt; echo "EXAMPLE=$EXAMPLE PATH=$PATH" >> /tmp/result.txt'], user: 'vcap' } }),
          resultFile: '/tmp/result.txt',
        }),
      );
    const completed = (taskGuid: string) =>
      waitFor(`${taskGuid} completed`, async () => {
        const found = await bbs.taskByGuid(taskGuid);
        return found.state === Task_State.STATE_COMPLETED ? found : undefined;
      });

    await task(`${token}-task`, rootFsOf(reference));
    const done = await completed(`${token}-task`);
    assert.equal(done.failed, false, done.failureReason);
    assert.equal(done.result, `${EXAMPLE_IMAGE_PAGE}EXAMPLE=busybox PATH=/bin:/usr/bin\n`);

    await task(`${token}-missing`, `docker://${open.address}/ccbridge/missing#latest`);
    const failed = await completed(`${token}-missing`);
    assert.equal(failed.failed, true);
    assert.match(failed.failureReason, new RegExp(`^failed to pull image docker://${open.address.replace('.', '\\.')}/ccbridge/missing#latest: `));
  });

  test('wrong credentials crash the instance with a clear reason, and the password is in no log line', async () => {
    const reference = await pushExampleImage(guarded, { repository: 'ccbridge/private' });
    const wrong = `wrong-${PASSWORD}`;
    const processGuid = `${token}-wrong`;
    await bbs.desireLrp(dockerLrp(processGuid, rootFsOf(reference), { credentials: { username: 'puller', password: wrong } }));
    const crashed = await waitFor('the instance crashed', async () => {
      const actual = await ordinary(processGuid);
      return actual !== undefined && actual.crashCount > 0 ? actual : undefined;
    });
    assert.match(crashed.crashReason, new RegExp(`^failed to pull image docker://${guarded.address.replace('.', '\\.')}/ccbridge/private#latest: `));
    assert.match(crashed.crashReason, /unauthori[sz]ed|401|denied/i);
    await bbs.removeDesiredLrp(processGuid);
    assert.ok(logText.includes('failed-to-prepare-instance-root'), 'the cell logged the failure');
    assert.equal(logText.includes(wrong), false, 'the wrong password is in no log line');
    assert.equal(logText.includes(PASSWORD), false, 'nor the right one');
    const digestOfWrong = createHash('sha256').update(wrong).digest('hex');
    assert.equal(logText.includes(digestOfWrong), false);
  });
});
