// bin/finalize <build dir> <cache dir> <deps dir> <deps index> <profile dir>: readies the app to
// start. The launcher sources .profile.d/*.sh before the start command, so the app's own
// binaries (node_modules/.bin) are on PATH as under `npm start`, and NODE_ENV defaults to
// production.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detail, readPackageJson, startCommandFor, step } from './package-json.mjs';

const [buildDir] = process.argv.slice(2);
if (!buildDir) {
  process.stderr.write('usage: finalize <build dir> <cache dir> <deps dir> <deps index> <profile dir>\n');
  process.exit(1);
}

const packageJson = readPackageJson(buildDir);
const command = startCommandFor(packageJson);
if (command === 'node server.js' && !existsSync(join(buildDir, 'server.js'))) {
  detail('**WARNING** package.json has no scripts.start and the app has no server.js; give a start command');
}

step('Writing .profile.d/nodejs.sh');
const profileDir = join(buildDir, '.profile.d');
mkdirSync(profileDir, { recursive: true });
writeFileSync(
  join(profileDir, 'nodejs.sh'),
  ['# Written by the nodejs buildpack.', 'export PATH="$HOME/node_modules/.bin:$PATH"', 'export NODE_ENV="${NODE_ENV:-production}"', ''].join('\n'),
);
