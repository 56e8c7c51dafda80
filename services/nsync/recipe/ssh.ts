// `cf ssh` support (ccbridge-2015 §4.3): an app that allows SSH gets a diego-sshd next to its
// process and a `diego-ssh` route that tells the ssh-proxy how to reach and trust it.
//
// Two key pairs per LRP, host first, then user: sshd serves the host key and accepts only the
// user key; the route carries the host key's fingerprint (so the proxy can verify sshd) and the
// user private key (so the proxy can log in). Both private keys are secrets: they live in the
// LRP's action and routes, which is why routes are never logged, and no error message here
// contains one.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Action, ResourceLimits } from '../../../gen/diego/bbs/v1/actions.js';
import type { EnvironmentVariable } from '../../../gen/diego/bbs/v1/container.js';
import { run } from './actions.js';
import { SSH_PORT, SSHD_PATH } from './constants.js';
import { SshKeyGenerationError } from './errors.js';
import { goJson } from './routes.js';

export interface SshKeyPair {
  /** The private key as PEM (PKCS#1 for RSA, PKCS#8 for ed25519). A secret. */
  readonly privateKeyPem: string;
  /** The public key in authorized_keys format (`ssh-rsa AAAA…`), no trailing newline. */
  readonly authorizedKey: string;
  /** MD5 of the public key's SSH encoding: 16 lower-case hex pairs joined by `:`. */
  readonly fingerprint: string;
}

/** Makes a fresh key pair on each call. */
export type SshKeyPairGenerator = () => SshKeyPair;

export interface SshKeyPairGeneratorOptions {
  readonly algorithm: 'rsa' | 'ed25519';
  /** RSA modulus size; ignored for ed25519. */
  readonly rsaBits?: number;
}

/**
 * RSA 2048 by default: 2015 nsync made 1024-bit keys, which no current SSH client should trust;
 * today's Cloud Controller makes 2048-bit RSA keys, and RSA in PKCS#1 PEM is what every
 * diego-sshd and ssh-proxy version parses. ed25519 is much faster to generate and is read by
 * Go's x/crypto/ssh, so it suits a deployment whose proxy and sshd are recent.
 */
export function createSshKeyPairGenerator(
  options: SshKeyPairGeneratorOptions = { algorithm: 'rsa', rsaBits: 2048 },
): SshKeyPairGenerator {
  if (options.algorithm === 'ed25519') {
    return () => sshKeyPairFromPrivateKey(generateKeyPairSync('ed25519').privateKey);
  }
  const modulusLength = options.rsaBits ?? 2048;
  return () => sshKeyPairFromPrivateKey(generateKeyPairSync('rsa', { modulusLength, publicExponent: 0x10001 }).privateKey);
}

/** The generator daemons use unless told otherwise. */
export const generateSshKeyPair: SshKeyPairGenerator = createSshKeyPairGenerator();

/** The key pair of an existing RSA or ed25519 private key (a KeyObject or PEM text). */
export function sshKeyPairFromPrivateKey(privateKey: KeyObject | string): SshKeyPair {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const blob = sshPublicKeyBlob(createPublicKey(key));
  const privateKeyPem =
    key.asymmetricKeyType === 'rsa'
      ? key.export({ type: 'pkcs1', format: 'pem' }).toString()
      : key.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    privateKeyPem,
    authorizedKey: `${sshKeyType(key)} ${blob.toString('base64')}`,
    fingerprint: md5Fingerprint(blob),
  };
}

/**
 * The fingerprint diego-ssh's proxy compares with the host key sshd presents (2015 nsync and
 * diego-ssh's MD5Fingerprint: MD5 over the SSH wire encoding of the public key). Today's Cloud
 * Controller sends a SHA-1 fingerprint instead; the proxy tells the two apart by length and
 * accepts either, so the 2015 form stays.
 */
export function md5Fingerprint(publicKeyBlob: Buffer): string {
  return createHash('md5').update(publicKeyBlob).digest('hex').match(/../g)!.join(':');
}

function sshKeyType(key: KeyObject): string {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'ssh-rsa';
    case 'ed25519':
      return 'ssh-ed25519';
    default:
      throw new Error(`unsupported ssh key type ${key.asymmetricKeyType}`);
  }
}

/** The public key in SSH wire format (RFC 4253 §6.6, RFC 8709 §4), read from its JWK. */
function sshPublicKeyBlob(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const type = sshKeyType(publicKey);
  if (type === 'ssh-rsa') {
    return Buffer.concat([sshString(Buffer.from(type)), sshMpint(base64url(jwk.e)), sshMpint(base64url(jwk.n))]);
  }
  return Buffer.concat([sshString(Buffer.from(type)), sshString(base64url(jwk.x))]);
}

function base64url(value: string | undefined): Buffer {
  if (value === undefined) throw new Error('public key is missing a component');
  return Buffer.from(value, 'base64url');
}

function sshString(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A positive integer: big-endian, no leading zero bytes, one 0x00 added when the top bit is set. */
function sshMpint(unsigned: Buffer): Buffer {
  let start = 0;
  while (start < unsigned.length && unsigned[start] === 0) start++;
  const magnitude = unsigned.subarray(start);
  const needsPad = magnitude.length > 0 && (magnitude[0]! & 0x80) !== 0;
  return sshString(needsPad ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude);
}

export interface SshdOptions {
  /** The app's environment, PORT included: sshd sessions see what the app sees. */
  readonly env: EnvironmentVariable[];
  readonly resourceLimits: ResourceLimits;
  readonly user: string;
}

export interface SshRecipe {
  /** The diego-sshd run action, to run codependent with the app. */
  readonly sshdAction: Action;
  /** The `diego-ssh` routing document (JSON text; holds a private key). */
  readonly routeJson: string;
}

/** Generates the host and user keys and builds what an SSH-enabled LRP adds. */
export function sshRecipeFor(generate: SshKeyPairGenerator, options: SshdOptions): SshRecipe {
  let hostKey: SshKeyPair;
  let userKey: SshKeyPair;
  try {
    hostKey = generate();
    userKey = generate();
  } catch (error) {
    throw new SshKeyGenerationError(error);
  }
  const sshdAction = run({
    path: SSHD_PATH,
    args: [
      `-address=0.0.0.0:${SSH_PORT}`,
      `-hostKey=${hostKey.privateKeyPem}`,
      `-authorizedKey=${userKey.authorizedKey}`,
      '-inheritDaemonEnv',
      '-logLevel=fatal',
    ],
    env: options.env,
    resourceLimits: options.resourceLimits,
    user: options.user,
  });
  // Key order, and empty strings omitted, as Go marshalled the 2015 SSH route.
  const routeJson = goJson([
    ['container_port', SSH_PORT],
    ...(hostKey.fingerprint === '' ? [] : [['host_fingerprint', hostKey.fingerprint] as const]),
    ...(userKey.privateKeyPem === '' ? [] : [['private_key', userKey.privateKeyPem] as const]),
  ]);
  return { sshdAction, routeJson };
}
