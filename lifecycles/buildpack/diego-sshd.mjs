// diego-sshd's set-up (spec §4.3): reads the flags the recipe gives (Go flag syntax, as the
// original Go program read them), writes what the SSH server underneath needs into private files,
// and prints shell assignments for the `diego-sshd` wrapper, which runs and supervises Debian's
// dropbear with them. It runs once at start and exits, so no Node process stays in the instance.
//
// Flags:
//   -address=<host>:<port>        where to listen (default :2222, every address)
//   -hostKey=<PEM>                the host key (RSA in PKCS#1 or PKCS#8, ed25519 in PKCS#8);
//                                 empty: an ed25519 key is generated at start
//   -authorizedKey=<ssh-rsa ...>  the one public key that may log in
//   -inheritDaemonEnv             sessions get this program's environment (the app's)
//   -logLevel=debug|info|error|fatal   error and fatal pass on only the server's fatal lines
//   -allowUnauthenticatedClients, -allowedCiphers, -allowedMACs, -allowedKeyExchanges: accepted;
//                                 dropbear offers its own algorithms and key authentication only
//
// Files, all in a 0700 directory /tmp/diego-sshd-XXXXXX and 0600 themselves:
//   host_key         the host key in dropbear's format (converted here: the PEM never reaches
//                    another program's command line)
// and ~/.ssh/authorized_keys (0700 / 0600) of the user this runs as, found by uid in
// /etc/passwd, because dropbear looks there and nowhere else.
//
// Secrets: the host key arrives as an argument. No message here contains an argument's value.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FlagError, flagUsage, parseGoFlags } from './lib/flags.mjs';

const FLAGS = {
  address: { type: 'string', default: ':2222', usage: 'listen address (host:port)' },
  hostKey: { type: 'string', default: '', usage: 'PEM encoded RSA or ed25519 host key; generated when empty' },
  authorizedKey: { type: 'string', default: '', usage: 'public key in authorized_keys format allowed to log in' },
  inheritDaemonEnv: { type: 'bool', default: false, usage: 'sessions inherit the environment of diego-sshd' },
  allowUnauthenticatedClients: { type: 'bool', default: false, usage: 'not supported: only key authentication is offered' },
  allowedCiphers: { type: 'string', default: '', usage: 'accepted and ignored: dropbear offers its own ciphers' },
  allowedMACs: { type: 'string', default: '', usage: 'accepted and ignored: dropbear offers its own MACs' },
  allowedKeyExchanges: { type: 'string', default: '', usage: 'accepted and ignored: dropbear offers its own key exchanges' },
  logLevel: { type: 'string', default: 'info', usage: 'debug, info, error or fatal' },
};

const LOG_LEVELS = new Set(['debug', 'info', 'error', 'fatal']);

class SetupError extends Error {}

/** POSIX shell single quoting. */
function shellQuote(text) {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

// ------------------------------------------------------------------ dropbear's key file format
// A dropbear private key file is the key in SSH wire encoding (RFC 4251 strings and mpints):
//   RSA:     string "ssh-rsa", mpint e, mpint n, mpint d, mpint p, mpint q
//   ed25519: string "ssh-ed25519", string (32-byte seed || 32-byte public key)

function sshString(bytes) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function sshMpint(unsigned) {
  let start = 0;
  while (start < unsigned.length && unsigned[start] === 0) start += 1;
  const magnitude = unsigned.subarray(start);
  return sshString(magnitude.length > 0 && (magnitude[0] & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude);
}

/** @param {string} pem */
function dropbearKeyFromPem(pem) {
  let key;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new SetupError('-hostKey is not a PEM private key');
  }
  const jwk = key.export({ format: 'jwk' });
  const part = (name) => {
    const value = jwk[name];
    if (typeof value !== 'string') throw new SetupError(`-hostKey lacks its ${name} component`);
    return Buffer.from(value, 'base64url');
  };
  if (key.asymmetricKeyType === 'rsa') {
    return Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshMpint(part('e')), sshMpint(part('n')), sshMpint(part('d')), sshMpint(part('p')), sshMpint(part('q'))]);
  }
  if (key.asymmetricKeyType === 'ed25519') {
    return Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(Buffer.concat([part('d'), part('x')]))]);
  }
  throw new SetupError(`-hostKey is a ${key.asymmetricKeyType} key; dropbear serves RSA and ed25519 keys here`);
}

// ------------------------------------------------------------------ the user and its files

/** The /etc/passwd entry of a uid: dropbear looks users up the same way (getpwnam). */
function passwdEntry(uid) {
  let text;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch (error) {
    throw new SetupError(`cannot read /etc/passwd: ${error.message}`);
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 7 && Number(fields[2]) === uid && fields[2] !== '') {
      return { name: fields[0], home: fields[5], shell: fields[6] || '/bin/sh' };
    }
  }
  throw new SetupError(`uid ${uid} has no entry in /etc/passwd, so the SSH server cannot log anyone in`);
}

/** dropbear ignores authorized_keys under a directory others may write to; say so plainly instead. */
function checkHomeDirectory(home, uid) {
  let info;
  try {
    info = statSync(home);
  } catch {
    throw new SetupError(`home directory ${home} does not exist`);
  }
  if (!info.isDirectory()) throw new SetupError(`home directory ${home} is not a directory`);
  if ((info.uid !== uid && info.uid !== 0) || (info.mode & 0o022) !== 0) {
    throw new SetupError(`home directory ${home} must belong to uid ${uid} (or root) and not be writable by others, or the SSH server ignores its keys`);
  }
}

/** Writes a file that only its owner may read, replacing any earlier one in one step. */
function writePrivateFile(path, bytes) {
  const partial = `${path}.${process.pid}.partial`;
  const fd = openSync(partial, 'wx', 0o600);
  try {
    writeSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path);
}

/** The shells the C library accepts (getusershell): /etc/shells, else its built-in pair. */
function acceptedShells() {
  if (!existsSync('/etc/shells')) return ['/bin/sh', '/bin/csh'];
  return readFileSync('/etc/shells', 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('/'));
}

function setup(values) {
  const notes = [];
  const logLevel = String(values.logLevel).toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) throw new SetupError(`-logLevel must be one of ${[...LOG_LEVELS].join(', ')}`);
  const address = String(values.address);
  const colon = address.lastIndexOf(':');
  const port = address.slice(colon + 1);
  if (colon < 0 || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new SetupError(`-address must be host:port (got ${JSON.stringify(address)})`);
  // Go's ":2222" is every address; dropbear's is the port alone.
  const listen = colon === 0 ? port : address;
  if (values.allowUnauthenticatedClients) notes.push('-allowUnauthenticatedClients is not supported: clients must present the authorized key');

  const uid = process.getuid?.() ?? 0;
  const user = passwdEntry(uid);
  if (!acceptedShells().includes(user.shell)) notes.push(`${user.name}'s shell ${user.shell} is not in /etc/shells, so the SSH server will refuse the login`);

  const stateDir = mkdtempSync('/tmp/diego-sshd-');
  chmodSync(stateDir, 0o700);
  const hostKeyPath = join(stateDir, 'host_key');
  const hostKey = String(values.hostKey);
  // Without one, a fresh key for this instance's life, as the original generated.
  const pem = hostKey !== '' ? hostKey : generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writePrivateFile(hostKeyPath, dropbearKeyFromPem(pem));

  const authorizedKey = String(values.authorizedKey).trim();
  if (authorizedKey === '') {
    notes.push('no -authorizedKey: nobody can log in');
  } else {
    if (/[\r\n]/.test(authorizedKey)) throw new SetupError('-authorizedKey must be one line');
    checkHomeDirectory(user.home, uid);
    const sshDir = join(user.home, '.ssh');
    mkdirSync(sshDir, { recursive: true, mode: 0o700 });
    chmodSync(sshDir, 0o700);
    writePrivateFile(join(sshDir, 'authorized_keys'), `${authorizedKey}\n`);
  }

  return {
    assignments: {
      sshd_state: stateDir,
      sshd_listen: listen,
      sshd_host_key: hostKeyPath,
      sshd_inherit_env: values.inheritDaemonEnv ? '1' : '',
      sshd_verbose: logLevel === 'debug' || logLevel === 'info' ? '1' : '',
    },
    notes,
  };
}

function main(argv) {
  const [program = 'diego-sshd', ...args] = argv;
  let values;
  try {
    if (args.includes('-h') || args.includes('-help') || args.includes('--help')) {
      process.stderr.write(flagUsage(program, FLAGS));
      process.stdout.write('sshd_exit=0\n');
      return;
    }
    ({ values } = parseGoFlags(args, FLAGS));
  } catch (error) {
    // Go's wording names the flag, never its value.
    const message = !(error instanceof FlagError)
      ? 'could not read the flags'
      : error.message.startsWith('bad flag syntax')
        ? 'bad flag syntax'
        : error.message.replace(/^invalid boolean value ".*" for/s, 'invalid boolean value for');
    process.stderr.write(`${program}: ${message}\n`);
    process.exit(2);
  }
  try {
    const { assignments, notes } = setup(values);
    for (const note of notes) process.stderr.write(`${program}: ${note}\n`);
    process.stdout.write(`${Object.entries(assignments).map(([name, value]) => `${name}=${shellQuote(value)}`).join('\n')}\n`);
  } catch (error) {
    // fs errors name paths only; anything else is summed up by its class.
    const message = error instanceof SetupError ? error.message : typeof error?.code === 'string' ? error.message : `set-up failed (${error?.name})`;
    process.stderr.write(`${program}: ${message}\n`);
    process.exit(1);
  }
}

main(process.argv.slice(2));
