// Buildpacks given by URL (CC's `custom` buildpacks): the staging task does not download them,
// the builder fetches each into the directory the others are downloaded to. As the Cloud Foundry
// builder does, a URL whose path ends in `.zip` is downloaded and unzipped and any other URL is
// cloned with git (its fragment naming a branch or tag); a `.tgz` / `.tar.gz` path is also
// downloaded and unpacked, since the stack's tar reads those.
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describeFailure, run, succeeded } from './run.mjs';

/** A buildpack download may take this long, as in the Cloud Foundry builder. */
const DOWNLOAD_TIMEOUT_MS = 10 * 60 * 1000;
const MAX_REDIRECTS = 10;

/** Whether a buildpack key names a buildpack by URL rather than one downloaded by the task. */
export function isBuildpackURL(key) {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(key) && URL.canParse(key);
}

/**
 * Fetches the buildpack at `url` into `destination`.
 * @param {string} url
 * @param {string} destination
 * @param {{ skipCertVerify: boolean }} options
 */
export async function fetchCustomBuildpack(url, destination, { skipCertVerify }) {
  const parsed = new URL(url);
  const archive = archiveKind(parsed.pathname);
  if (archive === undefined) {
    await gitClone(parsed, destination, skipCertVerify);
    return;
  }
  const workDir = mkdtempSync(join(tmpdir(), 'buildpack-download-'));
  try {
    const file = join(workDir, 'buildpack');
    await download(parsed, file, skipCertVerify);
    mkdirSync(destination, { recursive: true });
    const result =
      archive === 'zip'
        ? await run('unzip', ['-qq', '-o', file, '-d', destination], { quiet: true })
        : await run('tar', ['-xzf', file, '-C', destination], { quiet: true });
    if (!succeeded(result)) throw new Error(`Failed to extract buildpack ${redact(parsed)}: ${describeFailure(result)} ${result.stdout.trim()}`.trim());
    process.stdout.write(`Downloaded buildpack \`${redact(parsed)}\` (${byteSize(statSync(file).size)})\n`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

function archiveKind(pathname) {
  if (/\.zip$/i.test(pathname)) return 'zip';
  if (/\.(tgz|tar\.gz)$/i.test(pathname)) return 'tgz';
  return undefined;
}

async function gitClone(url, destination, skipCertVerify) {
  const branch = decodeURIComponent(url.hash.replace(/^#/, ''));
  const repository = new URL(url);
  repository.hash = '';
  const args = ['clone', '--depth', '1', '--recursive'];
  if (branch !== '') args.push('--branch', branch);
  args.push(repository.toString(), destination);
  const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
  if (skipCertVerify) env.GIT_SSL_NO_VERIFY = 'true';
  const result = await run('git', args, { quiet: true, env });
  if (!succeeded(result)) {
    throw new Error(`Failed to clone git repository at ${redact(repository)}: ${describeFailure(result)}`);
  }
}

/** GET with redirects into `file`; anything but a final 200 is an error. */
async function download(url, file, skipCertVerify) {
  const deadline = Date.now() + DOWNLOAD_TIMEOUT_MS;
  let current = url;
  for (let redirects = 0; redirects <= MAX_REDIRECTS; redirects += 1) {
    const response = await get(current, skipCertVerify, Math.max(deadline - Date.now(), 1));
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      current = new URL(response.headers.location, current);
      continue;
    }
    if (status !== 200) {
      response.resume();
      throw new Error(`Failed to download buildpack ${redact(url)}: status code ${status}`);
    }
    await pipeline(response, createWriteStream(file));
    return;
  }
  throw new Error(`Failed to download buildpack ${redact(url)}: too many redirects`);
}

/** @returns {Promise<import('node:http').IncomingMessage>} */
function get(url, skipCertVerify, timeoutMs) {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (client === undefined) {
      reject(new Error(`Failed to download buildpack ${redact(url)}: unsupported scheme ${url.protocol}`));
      return;
    }
    const request = client.get(url, { rejectUnauthorized: !skipCertVerify, timeout: timeoutMs }, resolve);
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (error) => reject(new Error(`Failed to download buildpack ${redact(url)}: ${error.message}`)));
  });
}

/** A URL for a log line: credentials in it stay out of the staging log. */
function redact(url) {
  const copy = new URL(url);
  if (copy.username !== '' || copy.password !== '') {
    copy.username = '***';
    copy.password = '';
  }
  return copy.toString();
}

/** Sizes as Cloud Foundry's bytefmt writes them: `512B`, `1.5K`, `12M`. */
export function byteSize(bytes) {
  const units = [
    ['T', 1024 ** 4],
    ['G', 1024 ** 3],
    ['M', 1024 ** 2],
    ['K', 1024],
  ];
  for (const [unit, size] of units) {
    if (bytes >= /** @type {number} */ (size)) return `${(bytes / /** @type {number} */ (size)).toFixed(1).replace(/\.0$/, '')}${unit}`;
  }
  return `${bytes}B`;
}
