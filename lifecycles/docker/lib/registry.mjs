// A client of the Docker Registry HTTP API v2 (the "distribution" API that Docker Hub, the
// distribution registry and every OCI registry speak), in plain Node ESM with no dependencies:
// it runs inside staging containers with the stack's node, and on the cell to pull layers.
//
// What it does:
//   - image references as Cloud Controller sends them (`busybox`, `user/image:tag`,
//     `host:port/repo:tag`, `repo@sha256:…`) and the rootfs URIs nsync writes
//     (`docker://<index>/<remote>#<tag or digest>`), with Docker Hub's defaults;
//   - manifests: manifest lists and OCI indexes (one platform chosen, linux/amd64 unless told
//     otherwise), Docker schema 2 and OCI image manifests; schema 1 is refused clearly;
//   - the image config blob, read into the metadata a lifecycle needs;
//   - layer blobs streamed to files (or read as streams), their sha256 checked on the way;
//   - authentication: anonymous, Basic, and the Bearer token flow of WWW-Authenticate challenges
//     (the token endpoint is asked with the credentials when there are any);
//   - TLS verified against node's default CA store plus optional CAs; registries named insecure
//     (the original builder's -insecureDockerRegistries) are spoken to as docker does: https
//     without verifying the certificate when they answer TLS, else plain http;
//   - a timeout on every request (connecting, waiting, and between chunks of a body).
//
// Errors are RegistryErrors with a `code` a caller can switch on; their messages name the
// registry, repository and user but never a password or token.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, renameSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';

export const DOCKER_HUB_REGISTRY = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);
const OFFICIAL_NAMESPACE = 'library/';
const DEFAULT_TAG = 'latest';

export const MEDIA_TYPES = Object.freeze({
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerUncompressed: 'application/vnd.oci.image.layer.v1.tar',
});

const INDEX_TYPES = new Set([MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.ociIndex]);
const MANIFEST_TYPES = new Set([MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest]);
const MANIFEST_ACCEPT = [MEDIA_TYPES.dockerManifestList, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.ociManifest].join(', ');

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 5;
/** Manifests, configs, token answers and error bodies are small; anything bigger is refused. */
const MAX_DOCUMENT_BYTES = 8 * 1024 * 1024;

// The reference grammar of distribution/reference.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const DIGEST_LENGTHS = { sha256: 64, sha512: 128 };
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

/** A registry failure; `code` says what kind, `status` is the HTTP status when there was one. */
export class RegistryError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ status?: number, cause?: unknown }} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = details.status;
  }
}

// ---------------------------------------------------------------------------------------------
// References

/**
 * Parses an image reference as Cloud Controller sends it: `[registry/]repository[:tag][@digest]`.
 * The first path segment is a registry only if it looks like a host (has `.` or `:`, or is
 * `localhost`); otherwise the image is on Docker Hub, and a name without `/` is an official
 * `library/` image. No tag and no digest means `latest`.
 * @param {string} text
 */
export function parseImageReference(text) {
  if (typeof text !== 'string' || text === '') throw invalidReference(text, 'empty');
  if (text.includes('://')) throw invalidReference(text, 'an image reference has no scheme');
  if (/[\s\p{Cc}#]/u.test(text)) throw invalidReference(text, 'contains whitespace, control characters or #');

  const at = text.indexOf('@');
  const nameAndTag = at < 0 ? text : text.slice(0, at);
  const digest = at < 0 ? undefined : text.slice(at + 1);

  const slash = nameAndTag.indexOf('/');
  const first = slash < 0 ? '' : nameAndTag.slice(0, slash);
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registryPart = hasRegistry ? first : '';
  const remoteAndTag = hasRegistry ? nameAndTag.slice(slash + 1) : nameAndTag;

  // The tag follows the last `:`, unless a `/` comes after it (then it was a port).
  const colon = remoteAndTag.lastIndexOf(':');
  const hasTag = colon >= 0 && !remoteAndTag.slice(colon + 1).includes('/');
  const remote = hasTag ? remoteAndTag.slice(0, colon) : remoteAndTag;
  const tag = hasTag ? remoteAndTag.slice(colon + 1) : undefined;
  const name = hasTag ? nameAndTag.slice(0, nameAndTag.length - tag.length - 1) : nameAndTag;

  return buildReference(text, { registryPart, remote, tag, digest, name });
}

/**
 * Parses the rootfs URI nsync writes for docker apps: `docker://<index>/<remote>[#<tag or
 * digest>]`. An empty index (or `docker.io`) is Docker Hub; a fragment with `:` is a digest.
 * @param {string} uri
 */
export function parseDockerRootfsUri(uri) {
  const prefix = 'docker://';
  if (typeof uri !== 'string' || !uri.startsWith(prefix)) throw invalidReference(uri, 'a docker rootfs URI starts with docker://');
  const rest = uri.slice(prefix.length);
  const hash = rest.indexOf('#');
  const path = hash < 0 ? rest : rest.slice(0, hash);
  const fragment = hash < 0 ? '' : rest.slice(hash + 1);
  const slash = path.indexOf('/');
  if (slash < 0) throw invalidReference(uri, 'missing repository path');
  const index = path.slice(0, slash);
  const remote = path.slice(slash + 1);
  const isDigest = fragment.includes(':');
  const name = index === '' ? remote : `${index}/${remote}`;
  return buildReference(uri, {
    registryPart: index,
    remote,
    tag: fragment !== '' && !isDigest ? fragment : undefined,
    digest: isDigest ? fragment : undefined,
    name,
  });
}

/**
 * The registry host as the client dials it: Docker Hub's aliases become registry-1.docker.io; a
 * scheme or path someone wrote (`https://index.docker.io/v1/`) is dropped.
 * @param {string} server
 */
export function normalizeRegistryHost(server) {
  let host = String(server).trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  host = host.toLowerCase();
  if (host === '' || DOCKER_HUB_ALIASES.has(host)) return DOCKER_HUB_REGISTRY;
  return host;
}

function buildReference(input, { registryPart, remote, tag, digest, name }) {
  if (registryPart !== '' && !HOST.test(registryPart)) throw invalidReference(input, `invalid registry host ${JSON.stringify(registryPart)}`);
  const registry = normalizeRegistryHost(registryPart);
  const repository = registry === DOCKER_HUB_REGISTRY && !remote.includes('/') ? `${OFFICIAL_NAMESPACE}${remote}` : remote;
  if (!REPOSITORY.test(repository)) throw invalidReference(input, `invalid repository name ${JSON.stringify(remote)}`);
  if (tag !== undefined && !TAG.test(tag)) throw invalidReference(input, `invalid tag ${JSON.stringify(tag)}`);
  if (digest !== undefined) checkDigest(digest, input);
  const reference = digest ?? tag ?? DEFAULT_TAG;
  return Object.freeze({
    registry,
    repository,
    tag: digest !== undefined ? tag : (tag ?? DEFAULT_TAG),
    digest,
    reference,
    name,
    /** `<name>:<tag>` or `<name>@<digest>`: the image as the user wrote it, with its tag made explicit. */
    familiar: digest !== undefined ? `${name}@${digest}` : `${name}:${tag ?? DEFAULT_TAG}`,
    canonical: `${registry}/${repository}${digest !== undefined ? `@${digest}` : `:${tag ?? DEFAULT_TAG}`}`,
  });
}

function checkDigest(digest, input) {
  const match = DIGEST.exec(digest);
  if (!match) throw invalidReference(input, `malformed digest ${JSON.stringify(digest)}`);
  const length = DIGEST_LENGTHS[/** @type {keyof typeof DIGEST_LENGTHS} */ (match[1])];
  if (length === undefined) throw invalidReference(input, `unsupported digest algorithm ${JSON.stringify(match[1])}`);
  if (match[2].length !== length || !/^[a-f0-9]+$/.test(match[2])) throw invalidReference(input, `malformed ${match[1]} digest`);
}

function invalidReference(input, why) {
  return new RegistryError('INVALID_REFERENCE', `invalid image reference ${JSON.stringify(String(input))}: ${why}`);
}

/** Accepts a parsed reference, a `docker://` rootfs URI or an image reference. */
function toReference(ref) {
  if (typeof ref === 'object' && ref !== null && typeof ref.registry === 'string' && typeof ref.repository === 'string') return ref;
  if (typeof ref === 'string' && ref.startsWith('docker://')) return parseDockerRootfsUri(ref);
  return parseImageReference(ref);
}

// ---------------------------------------------------------------------------------------------
// Image metadata

/**
 * The parts of an image config that a lifecycle uses, with Docker's absent values made empty.
 * Exposed ports are sorted by number, tcp before udp on the same number.
 * @param {any} config the image config blob, parsed
 */
export function imageMetadataOf(config) {
  const inner = config && typeof config === 'object' && config.config && typeof config.config === 'object' ? config.config : {};
  const strings = (value) => (Array.isArray(value) ? value.filter((item) => typeof item === 'string') : []);
  const exposedPorts = [];
  for (const key of Object.keys(inner.ExposedPorts ?? {})) {
    const match = /^(\d{1,5})(?:\/([a-z]+))?$/.exec(key);
    if (!match) continue;
    const port = Number(match[1]);
    if (port < 1 || port > 65535) continue;
    exposedPorts.push({ port, protocol: match[2] ?? 'tcp' });
  }
  exposedPorts.sort((a, b) => a.port - b.port || (a.protocol === b.protocol ? 0 : a.protocol === 'tcp' ? -1 : b.protocol === 'tcp' ? 1 : a.protocol < b.protocol ? -1 : 1));
  return {
    entrypoint: strings(inner.Entrypoint),
    cmd: strings(inner.Cmd),
    env: strings(inner.Env),
    exposedPorts,
    user: typeof inner.User === 'string' ? inner.User : '',
    workdir: typeof inner.WorkingDir === 'string' ? inner.WorkingDir : '',
  };
}

// ---------------------------------------------------------------------------------------------
// The client

/**
 * @param {{
 *   caFile?: string, ca?: string | Buffer | Array<string | Buffer>,
 *   insecureRegistries?: readonly string[] | string,
 *   username?: string, password?: string, loginServer?: string,
 *   timeoutMs?: number, platform?: { os?: string, architecture?: string, variant?: string },
 *   userAgent?: string,
 * }} [options]
 */
export function createRegistryClient(options = {}) {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const platform = { os: options.platform?.os ?? 'linux', architecture: options.platform?.architecture ?? 'amd64', variant: options.platform?.variant };
  const username = options.username ?? '';
  const password = options.password ?? '';
  const hasCredentials = username !== '' || password !== '';
  const loginServer = options.loginServer ? normalizeRegistryHost(options.loginServer) : undefined;
  const insecure = new Set(
    (typeof options.insecureRegistries === 'string' ? options.insecureRegistries.split(',') : (options.insecureRegistries ?? []))
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '')
      .map(normalizeRegistryHost),
  );
  const userAgent = options.userAgent ?? 'ccbridge-docker-lifecycle';

  // Extra CAs are added to node's default store (and to NODE_EXTRA_CA_CERTS, which node adds
  // to that store only when no `ca` is given), so public registries keep working beside a
  // private one.
  const extraCas = [];
  if (options.caFile) {
    try {
      extraCas.push(readFileSync(options.caFile, 'utf8'));
    } catch (err) {
      throw new RegistryError('IO', `cannot read the registry CA file ${options.caFile}: ${/** @type {Error} */ (err).message}`, { cause: err });
    }
  }
  if (options.ca !== undefined) for (const ca of Array.isArray(options.ca) ? options.ca : [options.ca]) extraCas.push(String(ca));
  let ca;
  if (extraCas.length > 0) {
    ca = [...rootCertificates, ...extraCas];
    const nodeExtra = process.env.NODE_EXTRA_CA_CERTS;
    if (nodeExtra) {
      try {
        ca.push(readFileSync(nodeExtra, 'utf8'));
      } catch {
        // node itself only warns about an unreadable NODE_EXTRA_CA_CERTS; so do we, by ignoring it.
      }
    }
  }
  const httpsAgent = new https.Agent({ keepAlive: true, ca });
  // For registries named insecure, as docker treats them: https without verifying the
  // certificate, or plain http when the registry does not speak TLS.
  const unverifiedHttpsAgent = new https.Agent({ keepAlive: true, rejectUnauthorized: false });
  const httpAgent = new http.Agent({ keepAlive: true });

  /** Per registry: how it asked to be authenticated (`basic`, or a bearer challenge). */
  const challenges = new Map();
  /** Bearer tokens by `registry|scope`. */
  const tokens = new Map();

  const credentialsFor = (registry) => hasCredentials && (loginServer === undefined || loginServer === registry);
  const isInsecure = (registry) => {
    if (insecure.has(registry)) return true;
    const colon = registry.lastIndexOf(':');
    return colon > 0 && !registry.endsWith(']') && insecure.has(registry.slice(0, colon));
  };
  /** The scheme of each insecure registry, found by its first request. */
  const insecureSchemes = new Map();

  /** `https://<registry>`, or for an insecure registry whichever of https and http it speaks. */
  async function baseURL(registry) {
    if (!isInsecure(registry)) return `https://${registry}`;
    let scheme = insecureSchemes.get(registry);
    if (scheme === undefined) {
      scheme = await probeScheme(registry);
      insecureSchemes.set(registry, scheme);
    }
    return `${scheme}://${registry}`;
  }

  /** https when the registry answers TLS at all (any HTTP status), else http; a timeout is not a "no". */
  async function probeScheme(registry) {
    try {
      const response = await exchange(`https://${registry}/v2/`, { what: `probing ${registry} for TLS` });
      response.resume();
      return 'https';
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'TIMEOUT') throw err;
      return 'http';
    }
  }

  /** Never lets the password out in a message, whatever a server echoed. */
  const scrub = (text) => (password !== '' ? String(text).split(password).join('***') : String(text));
  const fail = (code, message, details) => new RegistryError(code, scrub(message), details);

  /**
   * One HTTP exchange, following redirects (Authorization is kept only on the same origin).
   * Resolves with the response once its headers are in; the caller consumes or discards the body.
   */
  function exchange(url, { method = 'GET', headers = {}, body, what }) {
    return new Promise((resolve, reject) => {
      let redirects = 0;
      const go = (target, requestHeaders) => {
        let parsed;
        try {
          parsed = new URL(target);
        } catch {
          reject(fail('PROTOCOL', `${what}: the registry sent an invalid URL`));
          return;
        }
        const transport = parsed.protocol === 'http:' ? http : parsed.protocol === 'https:' ? https : undefined;
        if (!transport) {
          reject(fail('PROTOCOL', `${what}: unsupported scheme ${parsed.protocol}`));
          return;
        }
        const request = transport.request(parsed, {
          method,
          headers: { 'User-Agent': userAgent, ...requestHeaders },
          agent: parsed.protocol === 'http:' ? httpAgent : isInsecure(normalizeRegistryHost(parsed.host)) ? unverifiedHttpsAgent : httpsAgent,
          timeout: timeoutMs,
        });
        request.on('timeout', () => request.destroy(fail('TIMEOUT', `${what}: no answer from ${parsed.host} within ${timeoutMs} ms`)));
        request.on('error', (err) => reject(err instanceof RegistryError ? err : connectionError(err, parsed.host, what)));
        request.on('response', (response) => {
          const status = response.statusCode ?? 0;
          const location = response.headers.location;
          if ([301, 302, 303, 307, 308].includes(status) && location) {
            response.resume();
            if (++redirects > MAX_REDIRECTS) {
              reject(fail('PROTOCOL', `${what}: more than ${MAX_REDIRECTS} redirects`));
              return;
            }
            const next = new URL(location, parsed);
            const nextHeaders = { ...requestHeaders };
            if (next.origin !== parsed.origin) delete nextHeaders.Authorization;
            go(next.href, nextHeaders);
            return;
          }
          // Between chunks of the body the same timeout applies.
          response.setTimeout?.(timeoutMs, () => response.destroy(fail('TIMEOUT', `${what}: ${parsed.host} stalled for ${timeoutMs} ms`)));
          resolve(response);
        });
        if (body === undefined || Buffer.isBuffer(body)) request.end(body);
        else {
          body.on('error', (err) => request.destroy(err));
          body.pipe(request);
        }
      };
      go(url, headers);
    });
  }

  function connectionError(err, host, what) {
    const code = /** @type {any} */ (err).code ?? '';
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|SSL/.test(code) || /certificate/i.test(err.message)) {
      return fail('TLS', `${what}: TLS with ${host} failed: ${err.message} (give the registry's CA, or list it as an insecure registry if it speaks plain http)`, { cause: err });
    }
    if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(err.message)) {
      return fail('TLS', `${what}: ${host} did not answer TLS (${err.message}); if it speaks plain http, list it as an insecure registry`, { cause: err });
    }
    return fail('CONNECTION', `${what}: cannot reach ${host}: ${err.message}`, { cause: err });
  }

  async function readBody(response, limit = MAX_DOCUMENT_BYTES) {
    const chunks = [];
    let size = 0;
    for await (const chunk of response) {
      size += chunk.length;
      if (size > limit) {
        response.destroy();
        throw fail('PROTOCOL', `a registry answer larger than ${limit} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /** The `errors[]` of a registry error body, as `CODE: message` text and the first code. */
  async function registryErrorsOf(response) {
    let body;
    try {
      body = await readBody(response, 64 * 1024);
    } catch {
      return { codes: [], text: '' };
    }
    try {
      const parsed = JSON.parse(body.toString('utf8'));
      const errors = Array.isArray(parsed?.errors) ? parsed.errors : [];
      return {
        codes: errors.map((error) => String(error?.code ?? '')),
        text: errors.map((error) => [error?.code, error?.message].filter(Boolean).join(': ')).join('; '),
      };
    } catch {
      return { codes: [], text: body.toString('utf8').trim().slice(0, 200) };
    }
  }

  function authorizationFor(registry, scope) {
    const challenge = challenges.get(registry);
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') return credentialsFor(registry) ? basicAuthorization() : undefined;
    const token = tokens.get(`${registry}|${scope}`);
    if (token && token.expiresAt > Date.now()) return `Bearer ${token.token}`;
    return undefined;
  }

  function basicAuthorization() {
    return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  }

  /** Asks the challenge's token service for `scope`; the token is kept under `cacheScope`, the scope we look it up by. */
  async function fetchToken(registry, challenge, scope, cacheScope, what) {
    let realm;
    try {
      realm = new URL(challenge.realm);
    } catch {
      throw fail('PROTOCOL', `${what}: ${registry} named an invalid token realm`);
    }
    if (challenge.service) realm.searchParams.set('service', challenge.service);
    realm.searchParams.set('scope', scope);
    const headers = { Accept: 'application/json' };
    if (credentialsFor(registry)) {
      realm.searchParams.set('account', username);
      headers.Authorization = basicAuthorization();
    }
    const response = await exchange(realm.href, { headers, what: `${what} (token from ${realm.host})` });
    const status = response.statusCode ?? 0;
    if (status === 401 || status === 403) {
      await registryErrorsOf(response);
      throw credentialsFor(registry)
        ? fail('UNAUTHORIZED', `unauthorized: the token service ${realm.host} rejected the credentials of user ${JSON.stringify(username)} for ${registry}`, { status })
        : fail('UNAUTHORIZED', `unauthorized: ${registry} requires authentication (the token service ${realm.host} refused anonymous access)`, { status });
    }
    if (status < 200 || status >= 300) {
      const { text } = await registryErrorsOf(response);
      throw fail('PROTOCOL', `${what}: the token service ${realm.host} answered HTTP ${status}${text ? `: ${text}` : ''}`, { status });
    }
    let answer;
    try {
      answer = JSON.parse((await readBody(response)).toString('utf8'));
    } catch {
      throw fail('PROTOCOL', `${what}: the token service ${realm.host} did not answer JSON`);
    }
    const token = typeof answer?.token === 'string' && answer.token !== '' ? answer.token : answer?.access_token;
    if (typeof token !== 'string' || token === '') throw fail('PROTOCOL', `${what}: the token service ${realm.host} gave no token`);
    // Tokens live 60 s unless told otherwise; renew a little early.
    const lifetimeS = Number.isFinite(answer.expires_in) && answer.expires_in > 0 ? answer.expires_in : 60;
    tokens.set(`${registry}|${cacheScope}`, { token, expiresAt: Date.now() + Math.max(lifetimeS - 5, 1) * 1000 });
  }

  /**
   * A GET on the registry for one repository, authenticated as the registry asks: the first
   * 401 names the scheme (and for Bearer the token service), we answer it once and retry.
   * Resolves with a 2xx response; anything else becomes a RegistryError.
   */
  async function registryGet(ref, path, { accept, what, notFound }) {
    return registryCall(ref, { path, headers: accept ? { Accept: accept } : {}, what, notFound });
  }

  /**
   * One call on a repository's API. `path` is below /v2/<repository>/ unless `url` is given (an
   * upload location). A streamed body cannot be sent twice, so calls with one must come after
   * a call that settled authentication (the upload's POST does).
   * @param {any} ref
   * @param {{ method?: string, path?: string, url?: string, headers?: Record<string, string>, body?: Buffer | import('node:stream').Readable,
   *   push?: boolean, what: string, notFound?: (code: string) => string, allow?: number[] }} call
   */
  async function registryCall(ref, { method = 'GET', path = '', url, headers: extraHeaders = {}, body, push = false, what, notFound, allow = [] }) {
    const scope = `repository:${ref.repository}:${push ? 'pull,push' : 'pull'}`;
    const target = url ?? `${await baseURL(ref.registry)}/v2/${ref.repository}/${path}`;
    const retryable = body === undefined || Buffer.isBuffer(body);
    for (let attempt = 0; ; attempt += 1) {
      const headers = { ...extraHeaders };
      const authorization = authorizationFor(ref.registry, scope);
      if (authorization) headers.Authorization = authorization;
      const response = await exchange(target, { method, headers, body, what });
      const status = response.statusCode ?? 0;
      if ((status >= 200 && status < 300) || allow.includes(status)) return response;

      if (status === 401 && attempt === 0 && retryable) {
        const challenge = parseChallenge(response.headers['www-authenticate']);
        await registryErrorsOf(response);
        if (challenge?.scheme === 'bearer' && challenge.realm) {
          challenges.set(ref.registry, challenge);
          await fetchToken(ref.registry, challenge, challenge.scope || scope, scope, what);
          continue;
        }
        if (challenge?.scheme === 'basic' && credentialsFor(ref.registry)) {
          challenges.set(ref.registry, { scheme: 'basic' });
          continue;
        }
        throw unauthorized(ref, status, authorization !== undefined);
      }
      const { codes, text } = await registryErrorsOf(response);
      if (status === 401) throw unauthorized(ref, status, authorization !== undefined);
      if (status === 403 || codes.includes('DENIED')) {
        throw fail('DENIED', `denied: access to ${ref.registry}/${ref.repository} is forbidden${credentialsFor(ref.registry) ? ` for user ${JSON.stringify(username)}` : ''}${text ? ` (${text})` : ''}`, { status });
      }
      if (status === 404 || codes.some((code) => code.endsWith('_UNKNOWN'))) {
        const code = ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN'].find((known) => codes.includes(known)) ?? 'NOT_FOUND';
        throw fail(code, notFound ? notFound(code) : `${what}: not found (HTTP ${status}${text ? `: ${text}` : ''})`, { status });
      }
      if (status === 429) throw fail('TOO_MANY_REQUESTS', `${what}: ${ref.registry} is rate limiting (HTTP 429)${text ? `: ${text}` : ''}`, { status });
      throw fail('PROTOCOL', `${what}: ${ref.registry} answered HTTP ${status}${text ? `: ${text}` : ''}`, { status });
    }
  }

  function unauthorized(ref, status, sentCredentials) {
    if (sentCredentials && credentialsFor(ref.registry)) {
      return fail('UNAUTHORIZED', `unauthorized: ${ref.registry} rejected the credentials of user ${JSON.stringify(username)} for ${ref.repository}`, { status });
    }
    return fail('UNAUTHORIZED', `unauthorized: ${ref.registry} requires authentication to pull ${ref.repository}${hasCredentials && !credentialsFor(ref.registry) ? ` (the credentials given are for ${loginServer})` : ''}`, { status });
  }

  async function getManifest(ref, reference) {
    const what = `fetching manifest ${ref.registry}/${ref.repository}:${reference}`;
    const response = await registryGet(ref, `manifests/${reference}`, {
      accept: MANIFEST_ACCEPT,
      what,
      notFound: (code) =>
        code === 'NAME_UNKNOWN'
          ? `repository not found: ${ref.registry} has no repository ${ref.repository}`
          : `manifest unknown: ${ref.registry}/${ref.repository} has no ${reference.includes(':') ? 'manifest' : 'tag'} ${reference}`,
    });
    const body = await readBody(response);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    if (DIGEST.test(reference)) {
      const [algorithm] = reference.split(':');
      const actual = algorithm === 'sha256' ? digest : `${algorithm}:${createHash(algorithm).update(body).digest('hex')}`;
      if (actual !== reference) throw fail('DIGEST_MISMATCH', `${what}: the manifest's digest is ${actual}`);
    }
    let manifest;
    try {
      manifest = JSON.parse(body.toString('utf8'));
    } catch {
      throw fail('PROTOCOL', `${what}: the manifest is not JSON`);
    }
    const contentType = String(response.headers['content-type'] ?? '').split(';')[0].trim();
    const mediaType = typeof manifest?.mediaType === 'string' && manifest.mediaType !== '' ? manifest.mediaType : contentType;
    // The digest is that of the bytes received (what Docker-Content-Digest should also say).
    return { manifest, mediaType, digest: DIGEST.test(reference) ? reference : digest, bytes: body };
  }

  function choosePlatform(ref, index, what) {
    const entries = Array.isArray(index.manifests) ? index.manifests : [];
    const candidates = entries.filter((entry) => {
      const p = entry?.platform;
      return p && p.os === platform.os && p.architecture === platform.architecture && (platform.variant === undefined || p.variant === platform.variant);
    });
    // Without a wanted variant, an entry without one beats the rest (amd64 has none).
    const chosen = candidates.find((entry) => !entry.platform.variant) ?? candidates[0];
    if (chosen && typeof chosen.digest === 'string') return chosen;
    const available = entries
      .map((entry) => entry?.platform)
      .filter((p) => p && p.os !== 'unknown')
      .map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join('/'));
    throw fail('NO_MATCHING_PLATFORM', `${what}: no image for ${[platform.os, platform.architecture, platform.variant].filter(Boolean).join('/')} (the image has ${available.length > 0 ? available.join(', ') : 'no platforms'})`);
  }

  /**
   * The image a reference names, for this client's platform: its manifest, config and layers.
   * @param {string | object} input
   */
  async function resolveImage(input) {
    const ref = toReference(input);
    const what = `resolving ${ref.canonical}`;
    let { manifest, mediaType, digest, bytes } = await getManifest(ref, ref.reference);
    let indexDigest;
    if (INDEX_TYPES.has(mediaType) || (mediaType === '' && Array.isArray(manifest?.manifests))) {
      indexDigest = digest;
      const entry = choosePlatform(ref, manifest, what);
      ({ manifest, mediaType, digest, bytes } = await getManifest(ref, entry.digest));
    }
    if (manifest?.schemaVersion === 1) {
      throw fail('UNSUPPORTED_MANIFEST', `${what}: schema 1 manifests are not supported; push the image again with a current docker or buildah`);
    }
    if (!(MANIFEST_TYPES.has(mediaType) || (mediaType === '' && manifest?.config && Array.isArray(manifest?.layers)))) {
      throw fail('UNSUPPORTED_MANIFEST', `${what}: unsupported manifest type ${JSON.stringify(mediaType)}`);
    }
    const configDigest = manifest?.config?.digest;
    if (typeof configDigest !== 'string' || !DIGEST.test(configDigest)) throw fail('PROTOCOL', `${what}: the manifest names no config blob`);
    const configBody = await readBlob(ref, configDigest);
    let config;
    try {
      config = JSON.parse(configBody.toString('utf8'));
    } catch {
      throw fail('PROTOCOL', `${what}: the image config is not JSON`);
    }
    const layers = (Array.isArray(manifest.layers) ? manifest.layers : []).map((layer) => {
      if (typeof layer?.digest !== 'string' || !DIGEST.test(layer.digest)) throw fail('PROTOCOL', `${what}: a layer without a valid digest`);
      return {
        digest: layer.digest,
        mediaType: String(layer.mediaType ?? ''),
        size: Number(layer.size ?? 0),
        ...(Array.isArray(layer.urls) && layer.urls.length > 0 ? { urls: layer.urls.map(String) } : {}),
      };
    });
    return {
      reference: ref,
      indexDigest,
      manifestDigest: digest,
      mediaType,
      configDigest,
      config,
      metadata: imageMetadataOf(config),
      diffIds: Array.isArray(config?.rootfs?.diff_ids) ? config.rootfs.diff_ids.map(String) : [],
      layers,
      manifest,
      manifestBytes: bytes,
    };
  }

  /** Whether the repository has the blob already (HEAD). */
  async function hasBlob(ref, digest) {
    const response = await registryCall(ref, { method: 'HEAD', path: `blobs/${digest}`, push: true, what: `checking blob ${digest} in ${ref.registry}/${ref.repository}`, allow: [404] });
    response.resume();
    return response.statusCode === 200;
  }

  /**
   * Uploads a blob in one piece (POST an upload, PUT its content with ?digest=), unless the
   * repository has it. `content` is a Buffer, or a function opening a stream of `size` bytes.
   * @param {any} input
   * @param {string} digest
   * @param {Buffer | (() => Promise<import('node:stream').Readable>)} content
   * @param {number} [size]
   */
  async function pushBlob(input, digest, content, size) {
    const ref = toReference(input);
    checkDigest(digest, digest);
    if (await hasBlob(ref, digest)) return { digest, uploaded: false };
    const what = `uploading blob ${digest} to ${ref.registry}/${ref.repository}`;
    const started = await registryCall(ref, { method: 'POST', path: 'blobs/uploads/', push: true, what, headers: { 'Content-Length': '0' }, body: Buffer.alloc(0) });
    started.resume();
    const location = started.headers.location;
    if (typeof location !== 'string' || location === '') throw fail('PROTOCOL', `${what}: the registry gave no upload location`);
    const uploadURL = new URL(location, `${await baseURL(ref.registry)}/`);
    uploadURL.searchParams.set('digest', digest);
    const body = Buffer.isBuffer(content) ? content : await content();
    const length = Buffer.isBuffer(content) ? content.length : size;
    const headers = { 'Content-Type': 'application/octet-stream' };
    if (length !== undefined) headers['Content-Length'] = String(length);
    const done = await registryCall(ref, { method: 'PUT', url: uploadURL.href, push: true, what, headers, body });
    done.resume();
    return { digest, uploaded: true };
  }

  /** PUTs manifest bytes under a tag or digest; returns their digest. */
  async function pushManifest(input, reference, bytes, mediaType) {
    const ref = toReference(input);
    const what = `pushing manifest ${ref.registry}/${ref.repository}:${reference}`;
    const response = await registryCall(ref, {
      method: 'PUT',
      path: `manifests/${reference}`,
      push: true,
      what,
      headers: { 'Content-Type': mediaType, 'Content-Length': String(bytes.length) },
      body: bytes,
    });
    response.resume();
    return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  }

  /**
   * Copies a resolved image (its platform manifest, config and layers) from the registry
   * `source` reads to `target` through this client, blobs streamed through; the manifest bytes
   * are kept, so the copy has the same digest.
   */
  async function copyImage(source, image, targetInput) {
    const target = toReference(targetInput);
    const blobs = [{ digest: image.configDigest, size: undefined }, ...image.layers.map((layer) => ({ digest: layer.digest, size: layer.size }))];
    for (const blob of blobs) {
      if (blob.size === undefined) await pushBlob(target, blob.digest, await source.readBlob(image.reference, blob.digest));
      else await pushBlob(target, blob.digest, () => source.openBlob(image.reference, blob.digest), blob.size);
    }
    const manifestDigest = await pushManifest(target, target.reference, image.manifestBytes, image.mediaType);
    return { reference: target, manifestDigest };
  }

  /** A blob as a stream whose last chunk only arrives if the content matches the digest. */
  async function openBlob(input, digest) {
    const ref = toReference(input);
    checkDigest(digest, digest);
    const response = await registryGet(ref, `blobs/${digest}`, {
      what: `fetching blob ${digest} of ${ref.registry}/${ref.repository}`,
      notFound: (code) =>
        code === 'NAME_UNKNOWN' ? `repository not found: ${ref.registry} has no repository ${ref.repository}` : `blob unknown: ${ref.registry}/${ref.repository} has no blob ${digest}`,
    });
    const [algorithm, expected] = digest.split(':');
    const hash = createHash(algorithm);
    let size = 0;
    const verifier = new Transform({
      transform(chunk, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
      flush(callback) {
        const actual = hash.digest('hex');
        if (actual !== expected) callback(fail('DIGEST_MISMATCH', `blob ${digest} of ${ref.registry}/${ref.repository}: the content's digest is ${algorithm}:${actual}`));
        else callback();
      },
    });
    response.on('error', (err) => verifier.destroy(err));
    response.on('aborted', () => verifier.destroy(fail('CONNECTION', `blob ${digest}: the connection closed early`)));
    response.pipe(verifier);
    Object.defineProperty(verifier, 'bytesRead', { get: () => size });
    return verifier;
  }

  async function readBlob(ref, digest) {
    const stream = await openBlob(ref, digest);
    const chunks = [];
    let size = 0;
    for await (const chunk of stream) {
      size += chunk.length;
      if (size > MAX_DOCUMENT_BYTES) {
        stream.destroy();
        throw fail('PROTOCOL', `blob ${digest} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /**
   * Downloads a blob to `toPath`, written beside it and renamed once the digest matched, so the
   * path holds either the whole verified blob or nothing new.
   */
  async function fetchBlob(input, digest, toPath) {
    const ref = toReference(input);
    const stream = await openBlob(ref, digest);
    const partial = `${toPath}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
    try {
      await pipeline(stream, createWriteStream(partial));
      renameSync(partial, toPath);
    } catch (err) {
      rmSync(partial, { force: true });
      if (err instanceof RegistryError) throw err;
      throw fail('IO', `writing blob ${digest} to ${toPath}: ${/** @type {Error} */ (err).message}`, { cause: err });
    }
    return { digest, size: /** @type {any} */ (stream).bytesRead, path: toPath };
  }

  return {
    resolveImage,
    fetchBlob,
    openBlob,
    readBlob: (input, digest) => readBlob(toReference(input), digest),
    pushBlob,
    pushManifest,
    copyImage,
    /** The URL base this client uses for a registry (an insecure one is probed for TLS first). */
    registryURL: (registry) => baseURL(normalizeRegistryHost(registry)),
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
      unverifiedHttpsAgent.destroy();
    },
  };
}

/**
 * The first challenge of a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"`
 * or `Basic realm="…"`. Parameter values may be quoted (with backslash escapes) or tokens.
 * @param {string | undefined} header
 */
export function parseChallenge(header) {
  if (typeof header !== 'string') return undefined;
  const match = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const challenge = { scheme: match[1].toLowerCase() };
  const params = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = match[2];
  let param;
  while ((param = params.exec(rest)) !== null && param[0] !== '') {
    const value = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3];
    challenge[param[1].toLowerCase()] = value;
  }
  return challenge;
}
