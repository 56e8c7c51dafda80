// `ccbridge ssh <name> [--index N] [-- command...]`: the system `ssh` into one app instance. The
// development Cloud Controller answers where the instance's SSH server listens, the user it lets
// in, the user key and the host key fingerprint from the app's `diego-ssh` route (what CF's
// ssh-proxy uses); this logs in directly:
//
//   * the key goes into a 0600 file in a fresh 0700 directory, removed when ssh ends;
//   * the host key is checked strictly: ssh-keyscan fetches what the server offers, the key whose
//     fingerprint is the route's goes into a known_hosts file of its own, and ssh runs with
//     StrictHostKeyChecking=yes against only that file, so a server with another key is refused;
//   * a command after `--` runs without a terminal and its exit status is ccbridge's; without
//     one, ssh opens an interactive login shell.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duration, int } from '../lib/flags.js';
import type { SshAccessJson } from './api.js';
import type { CliCommandSpec } from './command.js';
import { CliError } from './errors.js';

const sshFlags = {
  index: int('the instance index', 0, { check: (v) => (v >= 0 ? undefined : 'must be 0 or more') }),
  'connect-timeout': duration('how long ssh-keyscan and ssh wait for the instance\'s SSH server', 15_000, {
    check: (v) => (v >= 1000 ? undefined : 'must be 1s or more'),
  }),
};

export const ssh: CliCommandSpec<typeof sshFlags> = {
  usage: 'ssh <name> [--index N] [-- command...]',
  summary: 'log into an app instance with the system ssh: a shell, or the command after -- (its exit status is ccbridge\'s)',
  flags: sshFlags,
  args: { min: 1, max: Number.MAX_SAFE_INTEGER },
  // Ctrl-C reaches ssh itself (same process group); ccbridge waits for it and cleans up.
  endsOnInterrupt: true,
  async run(context) {
    const [name, ...command] = context.args as [string, ...string[]];
    const index = context.flags.index;
    const timeoutSeconds = Math.ceil(context.flags['connect-timeout'] / 1000);
    const access = await context.api.sshAccess(name, index);
    if (!access.host_fingerprint) throw new CliError(`the API names no host key fingerprint for ${name}, so the instance's SSH server cannot be trusted`);

    const dir = await mkdtemp(join(tmpdir(), 'ccbridge-ssh-'));
    try {
      const keyFile = join(dir, 'id');
      await writeFile(keyFile, access.private_key.endsWith('\n') ? access.private_key : `${access.private_key}\n`, { mode: 0o600 });
      const knownHosts = join(dir, 'known_hosts');
      const hostKey = await trustedHostKey(access, timeoutSeconds);
      await writeFile(knownHosts, `${knownHostsName(access.host, access.port)} ${hostKey}\n`, { mode: 0o600 });
      const args = [
        '-F', '/dev/null',
        '-i', keyFile,
        '-p', String(access.port),
        '-o', 'IdentitiesOnly=yes',
        '-o', 'IdentityAgent=none',
        '-o', 'PasswordAuthentication=no',
        '-o', 'KbdInteractiveAuthentication=no',
        '-o', `UserKnownHostsFile=${knownHosts}`,
        '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'StrictHostKeyChecking=yes',
        '-o', `ConnectTimeout=${timeoutSeconds}`,
        '-o', 'LogLevel=ERROR',
        ...(command.length > 0 ? ['-T'] : []),
        `${access.user}@${access.host}`,
        ...command,
      ];
      return await runSsh(args);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

function runSsh(args: string[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: 'inherit' });
    child.on('error', (error: NodeJS.ErrnoException) => reject(new CliError(error.code === 'ENOENT' ? 'the system ssh was not found (Debian: openssh-client)' : `ssh did not run: ${error.message}`)));
    child.on('close', (exit, signal) => resolve(exit ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : 15) : 1)));
  });
}

/** known_hosts names a server on another port than 22 as [host]:port. */
function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The host key (`type base64`) the server offers whose fingerprint is the route's. */
async function trustedHostKey(access: SshAccessJson, timeoutSeconds: number): Promise<string> {
  const scanned = await new Promise<string>((resolve, reject) => {
    const child = spawn('ssh-keyscan', ['-T', String(timeoutSeconds), '-p', String(access.port), access.host], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('error', (error: NodeJS.ErrnoException) => reject(new CliError(error.code === 'ENOENT' ? 'ssh-keyscan was not found (Debian: openssh-client)' : `ssh-keyscan did not run: ${error.message}`)));
    child.on('close', () => resolve(out));
  });
  const wanted = access.host_fingerprint.toLowerCase();
  const offered: string[] = [];
  for (const line of scanned.split('\n')) {
    const [, type, base64] = line.trim().split(/\s+/);
    if (!type || !base64 || line.startsWith('#')) continue;
    const blob = Buffer.from(base64, 'base64');
    offered.push(type);
    if (fingerprints(blob).includes(wanted)) return `${type} ${base64}`;
  }
  if (offered.length === 0) throw new CliError(`the SSH server of instance ${access.index} (${access.host}:${access.port}) did not answer ssh-keyscan`);
  throw new CliError(`the SSH server of instance ${access.index} offers no host key with the fingerprint the app's route names (it offers ${offered.join(', ')}), so it is not trusted`);
}

/** MD5 and SHA-1 of a key's wire encoding as colon-separated hex: the route carries one of them. */
function fingerprints(blob: Buffer): string[] {
  return ['md5', 'sha1'].map((algorithm) => createHash(algorithm).update(blob).digest('hex').match(/../g)!.join(':'));
}
