// The docker lifecycle's registry client and builder against Debian's docker-registry on
// 127.0.0.1: an open registry over plain http (listed insecure), one behind TLS from a throwaway
// CA with htpasswd Basic auth, and a Bearer token flow through a small loopback token service
// in front of the open one (the registry's own token auth needs a JWT issuer). Images are the
// busybox example and variants of it, pushed over the registry API.
//
// The builder runs as a process from docker_app_lifecycle.tgz as a staging task gets it (packed
// as the all-in-one packs it, downloaded from the file server at the Stager's download URL),
// with the arguments of the Stager's real docker staging task, and its result goes through the
// Stager's completion translation to the body CC receives.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StagingRequestFromCC } from '../../gen/cloudfoundry/ccbridge/cc/v1/cc.js';
import { TaskCallbackResponse } from '../../gen/diego/bbs/v1/task_requests.js';
import { decodeLegacyJson, encodeLegacyJson } from '../../lib/legacy-json.js';
import {
  createRegistryClient,
  RegistryError,
  type RegistryClient,
  type RegistryClientOptions,
} from '../../lifecycles/docker/lib/registry.mjs';
import { packBuiltInLifecycles } from '../../cmd/commands/file-server.js';
import { lifecycleFlags } from '../../cmd/commands/flags.js';
import { silentLogger } from '../../lib/log.js';
import { DOCKER_LIFECYCLE_ARCHIVE, packageDockerLifecycle } from '../../lifecycles/package.mjs';
import { startFileServer, type FileServer } from '../../services/fileserver/index.js';
import {
  buildStagingTask,
  DEFAULT_STAGING_TIMEOUT_MS,
  parseLifecycles,
  stagingResponseFromTaskCallback,
  type StagingRecipeConfig,
} from '../../services/stager/recipe/index.js';
import {
  buildBusyboxImage,
  EXAMPLE_IMAGE_PORT,
  pushImage,
  pushManifestList,
  sha256Digest,
  startRegistry,
  type PushedImage,
  type TestRegistry,
} from '../support/registry.js';

const CC = 'cloudfoundry.ccbridge.cc.v1';
const USER = 'puller';
const PASSWORD = `pw-${process.pid}-correct-horse`;
const WRONG_PASSWORD = `pw-${process.pid}-wrong-battery`;

let work: string;
let open: TestRegistry;
let guarded: TestRegistry;
let tokenService: TokenService;
let example: PushedImage;
let guardedExample: PushedImage;
let lifecycleDir: string;
let fileServer: FileServer;
const clients: RegistryClient[] = [];

function client(options: RegistryClientOptions = {}): RegistryClient {
  const created = createRegistryClient({ timeoutMs: 10_000, ...options });
  clients.push(created);
  return created;
}

/** The error a promise rejects with; fails when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<RegistryError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof RegistryError, `expected a RegistryError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'ccbridge-docker-builder-'));
  [open, guarded] = await Promise.all([startRegistry(), startRegistry({ tls: true, auth: { username: USER, password: PASSWORD } })]);
  const image = buildBusyboxImage();
  [example, guardedExample] = await Promise.all([pushImage(open, 'ccbridge/busybox', 'latest', image), pushImage(guarded, 'team/busybox', '1.0', image)]);
  tokenService = await startTokenService(open, { username: USER, password: PASSWORD });

  // The lifecycle as a staging task gets it: packed as the all-in-one packs it, served by the
  // file server, downloaded from the URL of the Stager's download action under the default
  // -lifecycle values, unpacked.
  const staticDirectory = join(work, 'static');
  packBuiltInLifecycles(staticDirectory);
  fileServer = await startFileServer({ staticDirectory, host: '127.0.0.1', port: 0, logger: silentLogger() });
  const config = { ...stagerConfig([]), fileServerURL: fileServer.url, lifecycles: parseLifecycles(lifecycleFlags.lifecycle.default) };
  const task = buildStagingTask('staging-guid', dockerStagingRequest({ docker_image: 'busybox' }), config);
  const download = task.taskDefinition.action!.timeoutAction!.action!.serialAction!.actions[0]!.emitProgressAction!.action!.downloadAction!;
  assert.equal(download.to, '/tmp/docker_app_lifecycle');
  const response = await fetch(download.from);
  assert.equal(response.status, 200, `GET ${download.from}`);
  const archive = join(work, DOCKER_LIFECYCLE_ARCHIVE);
  writeFileSync(archive, Buffer.from(await response.arrayBuffer()));
  lifecycleDir = join(work, 'docker_app_lifecycle');
  mkdirSync(lifecycleDir);
  const untar = spawnSync('tar', ['-xzf', archive, '-C', lifecycleDir], { encoding: 'utf8' });
  assert.equal(untar.status, 0, untar.stderr);
});

after(async () => {
  for (const created of clients) created.close();
  await fileServer?.close();
  await tokenService?.close();
  await Promise.all([open?.stop(), guarded?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('registry client', { concurrency: true }, () => {
  test('anonymous over plain http for an insecure registry: metadata, layers, and a layer blob verified on disk', async () => {
    const registry = client({ insecureRegistries: [open.address] });
    const image = await registry.resolveImage(example.reference);
    assert.equal(image.manifestDigest, example.manifestDigest);
    assert.equal(image.configDigest, example.configDigest);
    assert.equal(image.indexDigest, undefined);
    assert.deepEqual(
      image.layers.map((layer) => layer.digest),
      example.layerDigests,
    );
    assert.deepEqual(image.metadata, {
      entrypoint: ['/bin/busybox'],
      cmd: ['httpd', '-f', '-v', '-p', String(EXAMPLE_IMAGE_PORT), '-h', '/www'],
      env: ['PATH=/bin', 'EXAMPLE=busybox'],
      exposedPorts: [{ port: EXAMPLE_IMAGE_PORT, protocol: 'tcp' }],
      user: 'vcap',
      workdir: '/www',
    });
    assert.equal(image.diffIds.length, 1);

    const target = join(work, 'layer-0.tgz');
    const fetched = await registry.fetchBlob(example.reference, image.layers[0]!.digest, target);
    assert.equal(fetched.size, image.layers[0]!.size);
    assert.equal(sha256Digest(readFileSync(target)), image.layers[0]!.digest);
    const listing = spawnSync('tar', ['-tzf', target], { encoding: 'utf8' }).stdout;
    assert.match(listing, /^bin\/busybox$/m);
    assert.match(listing, /^etc\/passwd$/m);
  });

  test('the rootfs URI nsync writes names the same image', async () => {
    const registry = client({ insecureRegistries: [open.address] });
    const image = await registry.resolveImage(`docker://${open.address}/ccbridge/busybox#latest`);
    assert.equal(image.manifestDigest, example.manifestDigest);
    const untagged = await registry.resolveImage(`docker://${open.address}/ccbridge/busybox`);
    assert.equal(untagged.manifestDigest, example.manifestDigest, 'no fragment means latest');
  });

  test('a digest reference, and an unknown digest', async () => {
    const registry = client({ insecureRegistries: [open.address] });
    const image = await registry.resolveImage(`${open.address}/ccbridge/busybox@${example.manifestDigest}`);
    assert.equal(image.manifestDigest, example.manifestDigest);
    const err = await rejection(registry.resolveImage(`${open.address}/ccbridge/busybox@sha256:${'0'.repeat(64)}`));
    assert.equal(err.code, 'MANIFEST_UNKNOWN');
    assert.match(err.message, /manifest unknown/);
  });

  test('unknown tag and unknown repository are told apart from other failures', async () => {
    const registry = client({ insecureRegistries: [open.address] });
    const noTag = await rejection(registry.resolveImage(`${open.address}/ccbridge/busybox:no-such-tag`));
    assert.equal(noTag.code, 'MANIFEST_UNKNOWN');
    assert.match(noTag.message, /no tag no-such-tag/);
    const noRepo = await rejection(registry.resolveImage(`${open.address}/nobody/nothing:latest`));
    assert.ok(['NAME_UNKNOWN', 'MANIFEST_UNKNOWN'].includes(noRepo.code), noRepo.code);
    assert.equal(noRepo.status, 404);
    const noBlob = await rejection(registry.fetchBlob(example.reference, `sha256:${'1'.repeat(64)}`, join(work, 'missing-blob')));
    assert.equal(noBlob.code, 'BLOB_UNKNOWN');
  });

  test('a manifest list and an OCI index: linux/amd64 is chosen, another platform on request, none matching is an error', async () => {
    const amd64 = buildBusyboxImage();
    const arm64 = buildBusyboxImage();
    arm64.config = { ...arm64.config, architecture: 'arm64', config: { ...(arm64.config.config as object), Cmd: ['echo', 'arm64'] } };
    const pushedAmd = await pushImage(open, 'multi/busybox', '', amd64);
    const pushedArm = await pushImage(open, 'multi/busybox', '', arm64, { format: 'oci' });
    const entries = [
      { digest: pushedArm.manifestDigest, size: Buffer.byteLength(JSON.stringify(pushedArm.manifest)), mediaType: 'application/vnd.oci.image.manifest.v1+json', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { digest: pushedAmd.manifestDigest, size: Buffer.byteLength(JSON.stringify(pushedAmd.manifest)), mediaType: 'application/vnd.docker.distribution.manifest.v2+json', platform: { os: 'linux', architecture: 'amd64' } },
    ];
    const listDigest = await pushManifestList(open, 'multi/busybox', 'list', entries);
    const indexDigest = await pushManifestList(open, 'multi/busybox', 'index', entries, { format: 'oci' });

    const registry = client({ insecureRegistries: [open.address] });
    for (const [tag, digest] of [['list', listDigest], ['index', indexDigest]] as const) {
      const image = await registry.resolveImage(`${open.address}/multi/busybox:${tag}`);
      assert.equal(image.indexDigest, digest, tag);
      assert.equal(image.manifestDigest, pushedAmd.manifestDigest, tag);
      assert.equal(image.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      assert.deepEqual(image.metadata.cmd, amd64.config.config && (amd64.config.config as { Cmd: string[] }).Cmd);
    }
    const arm = await client({ insecureRegistries: [open.address], platform: { architecture: 'arm64' } }).resolveImage(`${open.address}/multi/busybox:index`);
    assert.equal(arm.manifestDigest, pushedArm.manifestDigest);
    assert.equal(arm.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.deepEqual(arm.metadata.cmd, ['echo', 'arm64']);

    const none = await rejection(client({ insecureRegistries: [open.address], platform: { architecture: 's390x' } }).resolveImage(`${open.address}/multi/busybox:list`));
    assert.equal(none.code, 'NO_MATCHING_PLATFORM');
    assert.match(none.message, /linux\/arm64\/v8, linux\/amd64/);
  });

  test('TLS: refused without the CA, trusted with it (beside the default store); named insecure, used without verification', async () => {
    const untrusted = await rejection(client({ username: USER, password: PASSWORD }).resolveImage(guardedExample.reference));
    assert.equal(untrusted.code, 'TLS');
    // As docker treats insecure registries: https when they answer TLS (unverified), else http.
    const insecure = client({ insecureRegistries: [guarded.address], username: USER, password: PASSWORD });
    assert.equal((await insecure.resolveImage(guardedExample.reference)).manifestDigest, guardedExample.manifestDigest);
    assert.equal(await insecure.registryURL(guarded.address), `https://${guarded.address}`);
    const plain = client({ insecureRegistries: [open.address] });
    assert.equal(await plain.registryURL(open.address), `http://${open.address}`);
    const image = await client({ caFile: guarded.caFile, username: USER, password: PASSWORD }).resolveImage(guardedExample.reference);
    assert.equal(image.manifestDigest, guardedExample.manifestDigest);
    const layer = await client({ caFile: guarded.caFile, username: USER, password: PASSWORD }).fetchBlob(
      guardedExample.reference,
      image.layers[0]!.digest,
      join(work, 'guarded-layer.tgz'),
    );
    assert.equal(layer.digest, image.layers[0]!.digest);
  });

  test('Basic auth: no credentials, a wrong password and credentials for another registry are unauthorized, never showing the password', async () => {
    const anonymous = await rejection(client({ caFile: guarded.caFile }).resolveImage(guardedExample.reference));
    assert.equal(anonymous.code, 'UNAUTHORIZED');
    assert.match(anonymous.message, /requires authentication/);

    const wrong = await rejection(client({ caFile: guarded.caFile, username: USER, password: WRONG_PASSWORD }).resolveImage(guardedExample.reference));
    assert.equal(wrong.code, 'UNAUTHORIZED');
    assert.match(wrong.message, new RegExp(`rejected the credentials of user "${USER}"`));
    assert.doesNotMatch(`${wrong.message} ${wrong.stack}`, new RegExp(WRONG_PASSWORD));

    const elsewhere = await rejection(
      client({ caFile: guarded.caFile, username: USER, password: PASSWORD, loginServer: 'registry.example.com' }).resolveImage(guardedExample.reference),
    );
    assert.equal(elsewhere.code, 'UNAUTHORIZED');
    assert.match(elsewhere.message, /credentials given are for registry\.example\.com/);
  });

  test('Bearer tokens: the challenge sends the client to the token service with its credentials, then the token opens the registry', async () => {
    const registry = client({ insecureRegistries: [tokenService.address], username: USER, password: PASSWORD });
    const reference = `${tokenService.address}/ccbridge/busybox:latest`;
    const image = await registry.resolveImage(reference);
    assert.equal(image.manifestDigest, example.manifestDigest);
    await registry.fetchBlob(reference, image.layers[0]!.digest, join(work, 'token-layer.tgz'));
    // (Other tests use the token service at the same time, for other repositories.)
    assert.deepEqual(tokenService.tokenRequests.filter((request) => request.scope === 'repository:ccbridge/busybox:pull'), [
      { service: 'ccbridge-test-tokens', scope: 'repository:ccbridge/busybox:pull', account: USER, authorized: true },
    ], 'one token, reused for the manifest, the config and the layer');

    const anonymous = await rejection(client({ insecureRegistries: [tokenService.address] }).resolveImage(reference));
    assert.equal(anonymous.code, 'UNAUTHORIZED');
    assert.match(anonymous.message, /refused anonymous access/);
    const wrong = await rejection(client({ insecureRegistries: [tokenService.address], username: USER, password: WRONG_PASSWORD }).resolveImage(reference));
    assert.equal(wrong.code, 'UNAUTHORIZED');
    assert.doesNotMatch(wrong.message, new RegExp(WRONG_PASSWORD));
  });

  test('a blob whose content does not match its digest is refused and leaves no file', async () => {
    await pushImage(open, `${CORRUPTED_NAMESPACE}busybox`, 'latest', buildBusyboxImage());
    const registry = client({ insecureRegistries: [tokenService.address], username: USER, password: PASSWORD });
    const reference = `${tokenService.address}/${CORRUPTED_NAMESPACE}busybox:latest`;
    const target = join(work, 'corrupt-layer.tgz');
    const err = await rejection(registry.fetchBlob(reference, example.layerDigests[0]!, target));
    assert.equal(err.code, 'DIGEST_MISMATCH');
    assert.equal(spawnSync('ls', [work], { encoding: 'utf8' }).stdout.includes('corrupt-layer'), false);
  });

  test('a registry that never answers times out with the configured timeout', async () => {
    const silent = await startSilentServer();
    try {
      const err = await rejection(client({ insecureRegistries: [silent.address], timeoutMs: 200 }).resolveImage(`${silent.address}/any/image`));
      assert.equal(err.code, 'TIMEOUT');
    } finally {
      await silent.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

const stagerConfig = (insecure: string[]): StagingRecipeConfig => ({
  fileServerURL: 'http://127.0.0.1:8080',
  ccUploaderURL: 'http://127.0.0.1:9090',
  stagingTaskCallbackURL: 'http://127.0.0.1:8888',
  lifecycles: parseLifecycles(['docker:docker_app_lifecycle/docker_app_lifecycle.tgz']),
  dockerStagingStack: 'cflinuxfs4',
  dockerRegistryAddress: '',
  insecureDockerRegistries: insecure,
  skipCertVerify: false,
  privileged: false,
  defaultStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
  maxStagingTimeoutMs: DEFAULT_STAGING_TIMEOUT_MS,
});

function dockerStagingRequest(lifecycleData: Record<string, string>): StagingRequestFromCC {
  return decodeLegacyJson<StagingRequestFromCC>(
    `${CC}.StagingRequestFromCC`,
    JSON.stringify({ app_id: 'app', log_guid: 'app', file_descriptors: 512, memory_mb: 256, disk_mb: 1024, environment: [], timeout: 60, lifecycle: 'docker', lifecycle_data: lifecycleData }),
  );
}

/** The builder's run action of the Stager's real docker staging task for this request. */
function builderRunFor(request: StagingRequestFromCC, config: StagingRecipeConfig): { args: string[]; env: Record<string, string> } {
  const task = buildStagingTask('staging-guid', request, config);
  const steps = task.taskDefinition.action!.timeoutAction!.action!.serialAction!.actions;
  const run = steps[1]!.emitProgressAction!.action!.runAction!;
  assert.equal(run.path, '/tmp/docker_app_lifecycle/builder');
  return { args: run.args, env: Object.fromEntries(run.env.map(({ name, value }) => [name, value])) };
}

const builderArgsFor = (request: StagingRequestFromCC, config: StagingRecipeConfig) => builderRunFor(request, config).args;

interface BuilderRun {
  code: number | null;
  stdout: string;
  stderr: string;
  result?: string;
}

/** Runs the unpacked builder with the task's arguments, its result file moved into `work`. */
async function runBuilder(args: string[], extra: string[] = [], env: Record<string, string> = {}): Promise<BuilderRun> {
  const resultFile = join(mkdtempSync(join(work, 'result-')), 'result.json');
  const moved = args.map((arg) => (arg === '/tmp/docker-result/result.json' ? resultFile : arg));
  const child = spawn(join(lifecycleDir, 'builder'), [...moved, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  let result: string | undefined;
  try {
    result = readFileSync(resultFile, 'utf8');
  } catch {
    result = undefined;
  }
  return { code, stdout, stderr, result };
}

/** What CC receives for a successful staging task with this result. */
function ccStagingResponse(result: string): Record<string, unknown> {
  const callback = TaskCallbackResponse.fromPartial({ taskGuid: 'staging-guid', failed: false, result, annotation: '{"lifecycle":"docker"}' });
  return JSON.parse(encodeLegacyJson(`${CC}.StagingResponseForCC`, stagingResponseFromTaskCallback(callback)));
}

describe('builder', { concurrency: true }, () => {
  test('the archive has the builder, launcher, healthcheck and diego-sshd executable at its top level and packs to the same bytes twice', () => {
    const first = packageDockerLifecycle(join(work, 'pack-1'));
    const second = packageDockerLifecycle(join(work, 'pack-2'));
    assert.equal(first.path.endsWith(DOCKER_LIFECYCLE_ARCHIVE), true);
    assert.equal(first.sha256, second.sha256);
    const listing = spawnSync('tar', ['-tvzf', first.path], { encoding: 'utf8' }).stdout;
    for (const program of ['builder', 'launcher', 'healthcheck', 'diego-sshd']) assert.match(listing, new RegExp(`^-rwxr-xr-x 0/0 .* ${program}$`, 'm'));
    // diego-sshd is the buildpack lifecycle's, sourced from lib/ by the docker wrapper.
    assert.match(listing, / lib\/diego-sshd\.sh$/m);
    assert.match(listing, / diego-sshd\.mjs$/m);
    assert.match(listing, / lib\/registry\.mjs$/m);
    assert.match(listing, / lib\/flags\.mjs$/m);
    assert.doesNotMatch(listing, /\.d\.mts$/m);
  });

  test('stages the example image from an insecure registry: the result JSON and what CC receives', async () => {
    const config = stagerConfig([open.address]);
    // A repeated -insecureDockerRegistries adds to the list (the stager's value comes first).
    const run = await runBuilder(builderArgsFor(dockerStagingRequest({ docker_image: example.reference }), config), ['-insecureDockerRegistries', 'registry.invalid:5000']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Fetching image metadata of 127\.0\.0\.1:\d+\/ccbridge\/busybox:latest/);
    assert.ok(run.result !== undefined);
    const result = JSON.parse(run.result);
    const startCommand = `/bin/busybox httpd -f -v -p ${EXAMPLE_IMAGE_PORT} -h /www`;
    assert.deepEqual(result, {
      execution_metadata: JSON.stringify({
        cmd: ['httpd', '-f', '-v', '-p', String(EXAMPLE_IMAGE_PORT), '-h', '/www'],
        entrypoint: ['/bin/busybox'],
        workdir: '/www',
        ports: [{ Port: EXAMPLE_IMAGE_PORT, Protocol: 'tcp' }],
        user: 'vcap',
      }),
      detected_start_command: { web: startCommand },
      docker_image: example.reference,
      lifecycle_type: 'docker',
      lifecycle_metadata: { docker_image: example.reference },
      process_types: { web: startCommand },
    });

    const cc = ccStagingResponse(run.result);
    assert.equal(cc.execution_metadata, result.execution_metadata);
    assert.deepEqual(cc.detected_start_command, { web: startCommand });
    assert.deepEqual(cc.lifecycle_data, { docker_image: example.reference });
  });

  test('stages from a TLS registry with credentials and the CA; a wrong password fails with a clear line that never shows it', async () => {
    const config = stagerConfig([]);
    const withCredentials = (password: string) =>
      builderArgsFor(dockerStagingRequest({ docker_image: guardedExample.reference, docker_user: USER, docker_password: password, docker_email: 'puller@example.com' }), config);

    const good = await runBuilder(withCredentials(PASSWORD), ['-dockerRegistryCACert', guarded.caFile!]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(JSON.parse(good.result!).docker_image, guardedExample.reference);
    assert.doesNotMatch(good.stdout + good.stderr, new RegExp(PASSWORD));

    // The stager's -dockerRegistryCACert reaches the builder in the task's environment.
    const fromStager = builderRunFor(
      dockerStagingRequest({ docker_image: guardedExample.reference, docker_user: USER, docker_password: PASSWORD, docker_email: 'puller@example.com' }),
      { ...config, dockerRegistryCACerts: guarded.caPem },
    );
    assert.equal(fromStager.env.CCBRIDGE_DOCKER_REGISTRY_CA_CERTS, guarded.caPem);
    const viaEnvironment = await runBuilder(fromStager.args, [], fromStager.env);
    assert.equal(viaEnvironment.code, 0, viaEnvironment.stderr);

    const bad = await runBuilder(withCredentials(WRONG_PASSWORD), ['-dockerRegistryCACert', guarded.caFile!]);
    assert.equal(bad.code, 1);
    assert.equal(bad.result, undefined, 'no result file on failure');
    assert.match(bad.stderr, /^Staging failed: unauthorized: .*rejected the credentials of user "puller"/m);
    assert.doesNotMatch(bad.stdout + bad.stderr, new RegExp(WRONG_PASSWORD));

    const noCa = await runBuilder(withCredentials(PASSWORD));
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /^Staging failed: .*TLS with 127\.0\.0\.1:\d+ failed/m);
  });

  test('an unknown image fails staging with the registry\'s reason', async () => {
    const run = await runBuilder(builderArgsFor(dockerStagingRequest({ docker_image: `${open.address}/ccbridge/busybox:missing` }), stagerConfig([open.address])));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^Staging failed: manifest unknown: .* has no tag missing$/m);
  });

  test('-cacheDockerImage copies the image into the caching registry and the result names the copy', async () => {
    const config = stagerConfig([]);
    const args = builderArgsFor(dockerStagingRequest({ docker_image: guardedExample.reference, docker_user: USER, docker_password: PASSWORD, docker_email: 'e@example.com' }), config);
    const run = await runBuilder(args, ['-dockerRegistryCACert', guarded.caFile!, '-cacheDockerImage', '-dockerRegistryHost', '127.0.0.1', '-dockerRegistryPort', String(open.port), '-dockerRegistryIPs', '127.0.0.1']);
    assert.equal(run.code, 0, run.stderr);
    const cached = JSON.parse(run.result!).docker_image as string;
    assert.match(cached, new RegExp(`^${open.address.replace(/\./g, '\\.')}/[0-9a-f-]{36}$`));
    const copy = await client({ insecureRegistries: [open.address] }).resolveImage(cached);
    assert.equal(copy.manifestDigest, guardedExample.manifestDigest, 'the same manifest bytes');
  });

  test('bad flags: exit 1 and the usage', async () => {
    const run = await runBuilder(['-outputMetadataJSONFilename', '/tmp/docker-result/result.json']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /dockerRef or dockerImageURL required/);
    assert.match(run.stderr, /Usage of builder/);
  });
});

// ---------------------------------------------------------------------------------------------
// A token service in front of a registry: /token hands out tokens for Basic credentials, every
// other request needs `Authorization: Bearer <token>` and is proxied to the registry. Blobs of
// repositories under CORRUPTED_NAMESPACE arrive with their last byte flipped.

const CORRUPTED_NAMESPACE = 'corrupted/';

interface TokenService {
  address: string;
  tokenRequests: { service: string | null; scope: string | null; account: string | null; authorized: boolean }[];
  close(): Promise<void>;
}

async function startTokenService(backend: TestRegistry, credentials: { username: string; password: string }): Promise<TokenService> {
  const issued = new Set<string>();
  const expected = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  const service: TokenService = { address: '', tokenRequests: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname === '/token') {
      const authorized = req.headers.authorization === expected;
      service.tokenRequests.push({ service: url.searchParams.get('service'), scope: url.searchParams.get('scope'), account: url.searchParams.get('account'), authorized });
      if (!authorized) return void res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"details":"incorrect username or password"}');
      const token = createHash('sha256').update(`${Math.random()}`).digest('hex');
      issued.add(token);
      return void res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer === undefined || !issued.has(bearer)) {
      const repository = /^\/v2\/(.+?)\/(?:manifests|blobs)\//.exec(url.pathname)?.[1];
      const scope = repository ? `,scope="repository:${repository}:pull"` : '';
      res.writeHead(401, {
        'Content-Type': 'application/json',
        'WWW-Authenticate': `Bearer realm="http://${service.address}/token",service="ccbridge-test-tokens"${scope}`,
      });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    }
    const upstream = http.request(`${backend.url}${req.url}`, { method: req.method, headers: { accept: req.headers.accept ?? '*/*' } }, (answer) => {
      const corrupt = url.pathname.startsWith(`/v2/${CORRUPTED_NAMESPACE}`) && url.pathname.includes('/blobs/');
      if (!corrupt) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length > 0) body[body.length - 1] ^= 0xff;
        res.writeHead(answer.statusCode ?? 502, answer.headers).end(body);
      });
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  service.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  service.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return service;
}

/** Accepts connections and never answers. */
async function startSilentServer(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
