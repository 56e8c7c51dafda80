// The docker launcher's decisions, printed as shell for the `launcher` wrapper to evaluate (the
// wrapper then execs the app, so it takes the launcher's place).
//
// Usage (argv after the wrapper's own path): <ignored> <start command> <execution metadata>
//   * a start command runs as `/bin/sh -c <start command>` (the image's shell);
//   * otherwise the image's entrypoint followed by its cmd, from the execution metadata the
//     docker builder recorded at staging (`{"entrypoint":[…],"cmd":[…],"workdir":…}`);
//   * the working directory is the metadata's workdir when it names one;
//   * the environment is the app's, as the cell gives it.
// A program named without a `/` is looked up on PATH here, inside the image, and exec'd by its
// full path: the runtime's busybox shell would otherwise run its own applet of that name.
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

/** POSIX shell single quoting: safe for any byte string in an eval. */
function shellQuote(text) {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function fail(program, message) {
  process.stderr.write(`${program}: ${message}\n`);
  process.exit(1);
}

/** Go's decoder matches keys case-insensitively, the last match winning. */
function field(object, name) {
  let found;
  for (const [key, value] of Object.entries(object)) if (key.toLowerCase() === name) found = value;
  return found;
}

function stringList(program, metadata, name) {
  const value = field(metadata, name);
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' || item === null)) {
    fail(program, `Invalid metadata - "${name}" must be a list of strings`);
  }
  return value.map((item) => item ?? '');
}

/** exec.LookPath: a name with a slash as it is, else the first executable file of that name on PATH. */
export function lookPath(name, path = process.env.PATH ?? '') {
  if (name.includes('/')) return name;
  for (const dir of path.split(':')) {
    const candidate = join(dir === '' ? '.' : dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** The lines the wrapper evaluates. */
export function launchScript(program, args) {
  if (args.length < 3) {
    fail(program, `received only ${args.length} arguments\nUsage: ${program} <ignored> <start command> <metadata>`);
  }
  const [, startCommand, executionMetadata] = args;
  let metadata;
  try {
    metadata = JSON.parse(executionMetadata);
  } catch (error) {
    fail(program, `Invalid metadata - ${error.message}`);
  }
  if (metadata === null) metadata = {};
  if (typeof metadata !== 'object' || Array.isArray(metadata)) fail(program, 'Invalid metadata - must be a JSON object');

  const argv = startCommand !== '' ? ['/bin/sh', '-c', startCommand] : [...stringList(program, metadata, 'entrypoint'), ...stringList(program, metadata, 'cmd')];
  if (argv.length === 0) fail(program, 'No start command found or specified');
  const workdir = field(metadata, 'workdir');
  if (workdir !== undefined && workdir !== null && typeof workdir !== 'string') fail(program, 'Invalid metadata - "workdir" must be a string');

  const lines = [];
  if (workdir) lines.push(`cd -- ${shellQuote(workdir)} || exit 1`);
  // The lookup happens after the cd, as the exec would: a relative PATH entry means the workdir.
  if (workdir) {
    try {
      process.chdir(workdir);
    } catch (error) {
      fail(program, `cannot change to the working directory ${workdir}: ${error.message}`);
    }
  }
  const executable = lookPath(argv[0]);
  if (executable === undefined) fail(program, `exec: ${JSON.stringify(argv[0])}: executable file not found in $PATH`);
  lines.push(`exec ${[executable, ...argv.slice(1)].map(shellQuote).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

const [program = 'launcher', ...args] = process.argv.slice(2);
process.stdout.write(launchScript(program, args));
