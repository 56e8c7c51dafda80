// bin/compile: puts a small static file server (lib/server.mjs, Node only, run by the stack's
// node) into the app at .staticfile/, with the directory to serve. The Staticfile may name that
// directory (`root: public`); otherwise it is the app directory itself.
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const [buildpackDir, buildDir] = process.argv.slice(2);
if (!buildpackDir || !buildDir) {
  process.stderr.write('usage: compile <build dir> <cache dir>\n');
  process.exit(1);
}

const version = readFileSync(join(buildpackDir, 'VERSION'), 'utf8').trim();
process.stdout.write(`-----> Staticfile Buildpack version ${version}\n`);

/** The `root:` line of a Staticfile (a YAML mapping of simple settings). */
function rootFromStaticfile(path) {
  if (!existsSync(path)) return '.';
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const match = /^root:\s*(.*?)\s*(?:#.*)?$/.exec(line);
    if (match) return match[1].replace(/^(['"])(.*)\1$/, '$2') || '.';
  }
  return '.';
}

const root = rootFromStaticfile(join(buildDir, 'Staticfile'));
const rootDir = resolve(buildDir, root);
if (relative(buildDir, rootDir).startsWith('..') || !existsSync(rootDir) || !statSync(rootDir).isDirectory()) {
  process.stderr.write(`       **ERROR** the Staticfile's root ${JSON.stringify(root)} is not a directory in the app\n`);
  process.exit(1);
}
process.stdout.write(`       Serving ${root === '.' ? 'the app directory' : root}\n`);

const serverDir = join(buildDir, '.staticfile');
mkdirSync(serverDir, { recursive: true });
copyFileSync(join(buildpackDir, 'lib', 'server.mjs'), join(serverDir, 'server.mjs'));
writeFileSync(join(serverDir, 'config.json'), `${JSON.stringify({ root })}\n`);
