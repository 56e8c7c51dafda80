// A real Docker registry for tests and benchmarks: Debian's `docker-registry` (the distribution
// registry) as a child process on 127.0.0.1, its storage in a temporary directory, optionally
// behind TLS with a throwaway CA and with htpasswd (bcrypt) Basic auth. Images are pushed over
// the registry HTTP API itself (monolithic blob uploads, manifest PUTs): no container engine.
//
// buildBusyboxImage() makes the example image from Debian's busybox-static: /bin/busybox with
// its applets as symlinks, /etc/passwd and /etc/group (root and vcap, uid 2000 as the cell
// maps it), the usual empty directories, and `busybox httpd` serving a page on 8080.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
export const BUSYBOX_BINARY = '/bin/busybox';

export const MEDIA_TYPE = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface RegistryOptions {
  /** Serve https with a certificate for 127.0.0.1 and localhost from a throwaway CA. */
  tls?: boolean;
  /** Require Basic auth (htpasswd, bcrypt) with these credentials. */
  auth?: { username: string; password: string };
  /** How long to wait for the registry to answer /v2/ (default 20 s). */
  startTimeoutMs?: number;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>`, as image references and -insecureDockerRegistry name it. */
  readonly address: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` or `https://…`. */
  readonly url: string;
  readonly tls: boolean;
  /** The CA that signed the server certificate (TLS only): its PEM file and text. */
  readonly caFile: string | undefined;
  readonly caPem: string | undefined;
  readonly auth: { username: string; password: string } | undefined;
  /** Everything the registry owns (config, storage, certificates); removed by stop(). */
  readonly dir: string;
  /** The registry's output so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'ccbridge-registry-'));
  try {
    const tlsFiles = options.tls ? makeCertificates(join(dir, 'tls')) : undefined;
    const htpasswdFile = options.auth ? writeHtpasswd(join(dir, 'htpasswd'), options.auth.username, options.auth.password) : undefined;
    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      const configFile = join(dir, 'config.yml');
      writeFileSync(configFile, registryConfig({ dir, port, tlsFiles, htpasswdFile }));
      const started = await launch(configFile, port, options, { dir, tlsFiles });
      if (started !== 'port-taken') return started;
      if (attempt >= 5) throw new Error(`docker-registry: no free port after ${attempt} attempts`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(
  configFile: string,
  port: number,
  options: RegistryOptions,
  { dir, tlsFiles }: { dir: string; tlsFiles: { caFile: string } | undefined },
): Promise<TestRegistry | 'port-taken'> {
  const child = spawn(REGISTRY_BINARY, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-64 * 1024);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => {
      spawnError = err;
      collect(Buffer.from(`\n${err.message}`));
      resolve(-1);
    });
  });

  const caPem = tlsFiles ? readFileSync(tlsFiles.caFile, 'utf8') : undefined;
  const registry: TestRegistry = {
    address: `127.0.0.1:${port}`,
    port,
    url: `${tlsFiles ? 'https' : 'http'}://127.0.0.1:${port}`,
    tls: tlsFiles !== undefined,
    caFile: tlsFiles?.caFile,
    caPem,
    auth: options.auth,
    dir,
    output: () => output,
    stop: async () => {
      await stopChild(child, exited);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
  for (;;) {
    if (spawnError) throw new Error(`cannot start ${REGISTRY_BINARY} (Debian package docker-registry, see scripts/prerequisites.mjs): ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      await exited;
      if (/address already in use/i.test(output)) return 'port-taken';
      throw new Error(`docker-registry exited with ${child.exitCode ?? child.signalCode}: ${output.trim().slice(-2000)}`);
    }
    try {
      // 200 when open, 401 behind auth: either way it serves the API.
      const answer = await registryRequest(registry, 'GET', '/v2/', { anonymous: true });
      if (answer.status === 200 || answer.status === 401) return registry;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stopChild(child, exited);
      throw new Error(`docker-registry did not answer /v2/ in time: ${output.trim().slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A port that was free a moment ago: bound on port 0 and closed. The caller retries on a clash. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function registryConfig({
  dir,
  port,
  tlsFiles,
  htpasswdFile,
}: {
  dir: string;
  port: number;
  tlsFiles: { certFile: string; keyFile: string } | undefined;
  htpasswdFile: string | undefined;
}): string {
  // JSON is YAML, which spares us quoting rules.
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, 'storage') }, delete: { enabled: true } },
    http: {
      addr: `127.0.0.1:${port}`,
      secret: randomBytes(16).toString('hex'),
      ...(tlsFiles ? { tls: { certificate: tlsFiles.certFile, key: tlsFiles.keyFile } } : {}),
    },
    health: { storagedriver: { enabled: false } },
  };
  if (htpasswdFile) config.auth = { htpasswd: { realm: 'ccbridge-test-registry', path: htpasswdFile } };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** A throwaway CA and a server certificate for 127.0.0.1 and localhost, both valid for a day. */
export function makeCertificates(dir: string): { caFile: string; caKeyFile: string; certFile: string; keyFile: string } {
  mkdirSync(dir, { recursive: true });
  const files = { caFile: join(dir, 'ca.pem'), caKeyFile: join(dir, 'ca.key'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') };
  const openssl = (args: string[]) => {
    const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (result.error || result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.error?.message ?? result.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', files.caKeyFile, '-out', files.caFile, '-subj', '/CN=ccbridge test registry CA', '-days', '1',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', ...ec, '-keyout', files.keyFile, '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', files.caFile, '-CAkey', files.caKeyFile, '-CAcreateserial',
    '-days', '1', '-out', files.certFile, '-extfile', join(dir, 'server.ext')]);
  return files;
}

function writeHtpasswd(file: string, username: string, password: string): string {
  // bcrypt, the only hash the registry accepts; the password is on htpasswd's command line,
  // which is fine for a throwaway test credential.
  const result = spawnSync('htpasswd', ['-Bbn', username, password], { encoding: 'utf8' });
  if (result.error || result.status !== 0) throw new Error(`htpasswd failed: ${result.error?.message ?? result.stderr}`);
  writeFileSync(file, result.stdout.trim() + '\n', { mode: 0o600 });
  return file;
}

// ---------------------------------------------------------------------------------------------
// The registry HTTP API, for pushing

export interface RegistryAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request to the registry, with its CA and (unless anonymous) its Basic credentials. */
export function registryRequest(
  registry: Pick<TestRegistry, 'url' | 'caPem' | 'auth'>,
  method: string,
  path: string,
  { headers = {}, body, anonymous = false }: { headers?: Record<string, string>; body?: Buffer; anonymous?: boolean } = {},
): Promise<RegistryAnswer> {
  const url = new URL(path, registry.url);
  const allHeaders: Record<string, string> = { ...headers };
  if (body !== undefined) allHeaders['Content-Length'] = String(body.length);
  if (registry.auth && !anonymous) {
    allHeaders.Authorization = `Basic ${Buffer.from(`${registry.auth.username}:${registry.auth.password}`).toString('base64')}`;
  }
  return new Promise((resolve, reject) => {
    const transport = url.protocol === 'https:' ? https : http;
    const request = transport.request(url, { method, headers: allHeaders, ca: registry.caPem, agent: false, timeout: 10_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`${method} ${url.pathname}: timed out`)));
    request.on('error', reject);
    request.end(body);
  });
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Where to push: a TestRegistry, or any registry described the same way (scripts/push-example-image.ts). */
export type PushTarget = Pick<TestRegistry, 'address' | 'url' | 'caPem' | 'auth'>;

/** Uploads a blob monolithically (POST an upload, PUT it with ?digest=); returns its digest. */
export async function pushBlob(registry: PushTarget, repository: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  const started = await registryRequest(registry, 'POST', `/v2/${repository}/blobs/uploads/`);
  if (started.status !== 202 || typeof started.headers.location !== 'string') {
    throw new Error(`starting a blob upload to ${repository}: HTTP ${started.status} ${started.body.toString('utf8')}`);
  }
  const location = new URL(started.headers.location, registry.url);
  location.searchParams.set('digest', digest);
  const put = await registryRequest(registry, 'PUT', `${location.pathname}${location.search}`, {
    headers: { 'Content-Type': 'application/octet-stream' },
    body: data,
  });
  if (put.status !== 201) throw new Error(`uploading blob ${digest} to ${repository}: HTTP ${put.status} ${put.body.toString('utf8')}`);
  return digest;
}

/** PUTs a manifest (or manifest list / index) under a tag or its digest; returns its digest. */
export async function pushManifest(registry: PushTarget, repository: string, reference: string, manifest: object, mediaType: string): Promise<string> {
  const body = Buffer.from(JSON.stringify(manifest));
  const answer = await registryRequest(registry, 'PUT', `/v2/${repository}/manifests/${reference}`, { headers: { 'Content-Type': mediaType }, body });
  if (answer.status !== 201) throw new Error(`pushing manifest ${repository}:${reference}: HTTP ${answer.status} ${answer.body.toString('utf8')}`);
  return sha256Digest(body);
}

export interface ImageContent {
  /** Gzipped layer tars, bottom first. */
  layers: Buffer[];
  /** The image config (the `config` blob); rootfs.diff_ids are filled in when absent. */
  config: Record<string, unknown>;
}

export interface PushedImage {
  /** `<address>/<repository>:<tag>`, the reference to pull it by. */
  reference: string;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  manifest: Record<string, unknown>;
}

/**
 * Pushes an image: every layer blob, the config blob, then a schema 2 (or OCI) manifest under
 * `tag` (or, with tag '', by digest only).
 */
export async function pushImage(
  registry: PushTarget,
  repository: string,
  tag: string,
  image: ImageContent,
  { format = 'docker' }: { format?: 'docker' | 'oci' } = {},
): Promise<PushedImage> {
  const oci = format === 'oci';
  const config = { ...image.config };
  if (config.rootfs === undefined) config.rootfs = { type: 'layers', diff_ids: image.layers.map((layer) => diffIdOf(layer)) };
  const configBlob = Buffer.from(JSON.stringify(config));
  const layerDigests: string[] = [];
  for (const layer of image.layers) layerDigests.push(await pushBlob(registry, repository, layer));
  const configDigest = await pushBlob(registry, repository, configBlob);
  const manifest = {
    schemaVersion: 2,
    mediaType: oci ? MEDIA_TYPE.ociManifest : MEDIA_TYPE.dockerManifest,
    config: { mediaType: oci ? MEDIA_TYPE.ociConfig : MEDIA_TYPE.dockerConfig, size: configBlob.length, digest: configDigest },
    layers: image.layers.map((layer, index) => ({ mediaType: oci ? MEDIA_TYPE.ociLayer : MEDIA_TYPE.dockerLayer, size: layer.length, digest: layerDigests[index] })),
  };
  const manifestBody = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = sha256Digest(manifestBody);
  await pushManifest(registry, repository, tag === '' ? manifestDigest : tag, manifest, manifest.mediaType);
  return {
    reference: tag === '' ? `${registry.address}/${repository}@${manifestDigest}` : `${registry.address}/${repository}:${tag}`,
    manifestDigest,
    configDigest,
    layerDigests,
    manifest,
  };
}

/**
 * Pushes a manifest list (or OCI index) under `tag` naming already pushed manifests with their
 * platforms; returns its digest.
 */
export async function pushManifestList(
  registry: PushTarget,
  repository: string,
  tag: string,
  entries: { digest: string; size: number; mediaType?: string; platform: { os: string; architecture: string; variant?: string } }[],
  { format = 'docker' }: { format?: 'docker' | 'oci' } = {},
): Promise<string> {
  const oci = format === 'oci';
  const mediaType = oci ? MEDIA_TYPE.ociIndex : MEDIA_TYPE.dockerManifestList;
  const list = {
    schemaVersion: 2,
    mediaType,
    manifests: entries.map((entry) => ({
      mediaType: entry.mediaType ?? (oci ? MEDIA_TYPE.ociManifest : MEDIA_TYPE.dockerManifest),
      size: entry.size,
      digest: entry.digest,
      platform: entry.platform,
    })),
  };
  return pushManifest(registry, repository, tag, list, mediaType);
}

/** The uncompressed digest of a gzipped layer, as rootfs.diff_ids lists it. */
export function diffIdOf(gzippedLayer: Buffer): string {
  const gunzip = spawnSync('gzip', ['-dc'], { input: gzippedLayer, maxBuffer: 512 * 1024 * 1024 });
  if (gunzip.status !== 0) throw new Error(`gzip -d failed: ${gunzip.stderr.toString()}`);
  return sha256Digest(gunzip.stdout);
}

// ---------------------------------------------------------------------------------------------
// The example image

/** busybox applets linked in the example image's /bin. */
export const BUSYBOX_APPLETS = [
  'sh', 'ash', 'ls', 'cat', 'echo', 'env', 'id', 'sleep', 'httpd', 'nc', 'wget', 'ps', 'mkdir', 'rm', 'cp', 'mv', 'grep', 'sed',
  'head', 'tail', 'true', 'false', 'test', 'printf', 'pwd', 'whoami', 'uname', 'date', 'hostname', 'kill', 'touch', 'chmod', 'ln', 'stat',
];

export const EXAMPLE_IMAGE_PORT = 8080;
export const EXAMPLE_IMAGE_PAGE = 'hello from the ccbridge busybox image\n';
/** uid and gid of vcap in the image, as the cell maps vcap. */
export const VCAP_UID = 2000;

/** A file tree for a layer: path (no leading slash) → content, or a directory / symlink. */
export type LayerEntry = { type: 'file'; content: string | Buffer; mode?: number } | { type: 'dir'; mode?: number } | { type: 'symlink'; target: string };

/**
 * A gzipped tar of the entries, reproducible (sorted, mtime 0, owner root unless `owners` says
 * otherwise for a path), made with the system tar and gzip. Paths are relative, no leading `/`.
 */
export function buildLayer(entries: Record<string, LayerEntry>, { owners = {} }: { owners?: Record<string, number> } = {}): Buffer {
  const stage = mkdtempSync(join(tmpdir(), 'ccbridge-layer-'));
  try {
    const root = join(stage, 'root');
    mkdirSync(root);
    for (const [path, entry] of Object.entries(entries).sort(([a], [b]) => a.localeCompare(b))) {
      const target = join(root, path);
      mkdirSync(join(target, '..'), { recursive: true });
      if (entry.type === 'dir') {
        mkdirSync(target, { recursive: true });
        chmodSync(target, entry.mode ?? 0o755);
      } else if (entry.type === 'symlink') {
        symlinkSync(entry.target, target);
      } else {
        writeFileSync(target, entry.content);
        chmodSync(target, entry.mode ?? 0o644);
      }
    }
    const members = Object.keys(entries).sort();
    // Ownership per member needs one tar call per owner; a layer with a few owned paths stays
    // small, so the members are appended in groups and the archive stays sorted within each.
    const tarFile = join(stage, 'layer.tar');
    const byOwner = new Map<number, string[]>();
    for (const member of members) {
      const owner = owners[member] ?? 0;
      byOwner.set(owner, [...(byOwner.get(owner) ?? []), member]);
    }
    let first = true;
    for (const [owner, paths] of [...byOwner.entries()].sort(([a], [b]) => a - b)) {
      const tar = spawnSync(
        'tar',
        [first ? '--create' : '--append', '--format=gnu', '--no-recursion', '--sort=name', '--mtime=@0', `--owner=${owner}`, `--group=${owner}`, '--numeric-owner',
          '--file', tarFile, '--directory', root, ...paths],
        { encoding: 'utf8' },
      );
      if (tar.error || tar.status !== 0) throw new Error(`tar failed: ${tar.error?.message ?? tar.stderr}`);
      first = false;
    }
    const gzip = spawnSync('gzip', ['-9', '-n', '-c', tarFile], { maxBuffer: 256 * 1024 * 1024 });
    if (gzip.error || gzip.status !== 0) throw new Error(`gzip failed: ${gzip.error?.message ?? gzip.stderr.toString()}`);
    return gzip.stdout;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** The example image's base layer: busybox, its applets, users, a page, the usual directories. */
export function busyboxBaseLayer(): Buffer {
  const entries: Record<string, LayerEntry> = {
    bin: { type: 'dir' },
    'bin/busybox': { type: 'file', content: readFileSync(BUSYBOX_BINARY), mode: 0o755 },
    etc: { type: 'dir' },
    'etc/passwd': {
      type: 'file',
      content: `root:x:0:0:root:/root:/bin/sh\nvcap:x:${VCAP_UID}:${VCAP_UID}:vcap:/home/vcap:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n`,
    },
    'etc/group': { type: 'file', content: `root:x:0:\nvcap:x:${VCAP_UID}:\nnogroup:x:65534:\n` },
    tmp: { type: 'dir', mode: 0o1777 },
    home: { type: 'dir' },
    'home/vcap': { type: 'dir' },
    proc: { type: 'dir' },
    dev: { type: 'dir' },
    root: { type: 'dir', mode: 0o700 },
    www: { type: 'dir' },
    'www/index.html': { type: 'file', content: EXAMPLE_IMAGE_PAGE },
  };
  for (const applet of BUSYBOX_APPLETS) entries[`bin/${applet}`] = { type: 'symlink', target: 'busybox' };
  return buildLayer(entries, { owners: { 'home/vcap': VCAP_UID } });
}

/**
 * A layer on top of the base that exercises whiteouts: it deletes /www/index.html's sibling
 * /www/old.html (a `.wh.` file), replaces /opt/data wholesale (an opaque directory,
 * `.wh..wh..opq`), and adds /www/extra.html.
 */
export function whiteoutLayer(): Buffer {
  return buildLayer({
    www: { type: 'dir' },
    'www/.wh.old.html': { type: 'file', content: '' },
    'www/extra.html': { type: 'file', content: 'added by the second layer\n' },
    opt: { type: 'dir' },
    'opt/data': { type: 'dir' },
    'opt/data/.wh..wh..opq': { type: 'file', content: '' },
    'opt/data/new.txt': { type: 'file', content: 'only this survives in /opt/data\n' },
  });
}

/**
 * The layer between base and whiteout layer in the whiteout variant: what the whiteouts remove
 * (/www/old.html, /opt/data/stale.txt, /opt/data/sub/deeper.txt).
 */
export function doomedLayer(): Buffer {
  return buildLayer({
    www: { type: 'dir' },
    'www/old.html': { type: 'file', content: 'removed by a whiteout\n' },
    opt: { type: 'dir' },
    'opt/data': { type: 'dir' },
    'opt/data/stale.txt': { type: 'file', content: 'hidden by the opaque directory\n' },
    'opt/data/sub': { type: 'dir' },
    'opt/data/sub/deeper.txt': { type: 'file', content: 'hidden too\n' },
  });
}

/**
 * The example image: busybox httpd in the foreground on 8080 serving /www, run as vcap.
 * `{ whiteouts: true }` adds two layers: one with files, one removing them by whiteouts (so a
 * rootfs built from it has /www/extra.html and /opt/data/new.txt only, no old.html, stale.txt
 * or sub/).
 */
export function buildBusyboxImage({ whiteouts = false }: { whiteouts?: boolean } = {}): ImageContent {
  const layers = [busyboxBaseLayer()];
  if (whiteouts) layers.push(doomedLayer(), whiteoutLayer());
  return {
    layers,
    config: {
      architecture: 'amd64',
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: {
        User: 'vcap',
        Env: ['PATH=/bin', 'EXAMPLE=busybox'],
        Entrypoint: ['/bin/busybox'],
        Cmd: ['httpd', '-f', '-v', '-p', String(EXAMPLE_IMAGE_PORT), '-h', '/www'],
        WorkingDir: '/www',
        ExposedPorts: { [`${EXAMPLE_IMAGE_PORT}/tcp`]: {} },
      },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'ccbridge test/support/registry.ts buildBusyboxImage' }],
    },
  };
}

/** Builds the example image and pushes it; returns the reference to pull it by. */
export async function pushExampleImage(
  registry: PushTarget,
  { repository = 'ccbridge/busybox', tag = 'latest', whiteouts = false }: { repository?: string; tag?: string; whiteouts?: boolean } = {},
): Promise<string> {
  const pushed = await pushImage(registry, repository, tag, buildBusyboxImage({ whiteouts }));
  return pushed.reference;
}

/**
 * Flags the all-in-one daemon needs to stage and run images from this registry: a plain http
 * registry is listed as insecure (which also forwards its loopback port into containers); a TLS
 * registry's CA goes to the docker builder and the cell, and its port is forwarded explicitly.
 */
export function daemonFlagsFor(registry: TestRegistry): string[] {
  if (!registry.tls) return [`-insecureDockerRegistry=${registry.address}`];
  return [...(registry.caFile ? [`-dockerRegistryCACert=${registry.caFile}`] : []), `-cellHostServicePorts=${registry.port}`];
}
