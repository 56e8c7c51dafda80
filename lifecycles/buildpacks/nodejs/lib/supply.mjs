// bin/supply <build dir> <cache dir> <deps dir> <deps index>: provides Node.js and the app's
// dependencies.
//
// Node.js is the stack's own (the node running this script), so nothing is downloaded. The app's
// dependencies: none means no npm run at all; a vendored node_modules is used as it is; otherwise
// the stack's npm installs them, with its package cache kept in the build artifacts cache.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detail, readPackageJson, step } from './package-json.mjs';

const [buildDir, cacheDir, depsDir, depsIndex] = process.argv.slice(2);
if (!buildDir || !cacheDir || !depsDir || depsIndex === undefined) {
  process.stderr.write('usage: supply <build dir> <cache dir> <deps dir> <deps index>\n');
  process.exit(1);
}

const buildpackDir = dirname(dirname(fileURLToPath(import.meta.url)));
const version = readFileSync(join(buildpackDir, 'VERSION'), 'utf8').trim();
step(`Node.js Buildpack version ${version}`);
detail(`Using the stack's node ${process.version} (${process.execPath})`);

// The cache remembers which node built the app last, so a change of stack shows in the log.
mkdirSync(cacheDir, { recursive: true });
const cachedVersionFile = join(cacheDir, 'node-version');
if (existsSync(cachedVersionFile)) {
  const previous = readFileSync(cachedVersionFile, 'utf8').trim();
  step(`Restoring build cache from a previous staging (node ${previous})`);
  if (previous !== process.version) detail(`node changed since then: ${previous} -> ${process.version}`);
}
writeFileSync(cachedVersionFile, `${process.version}\n`);

// The name and version staging reports for this buildpack.
const ownDepsDir = join(depsDir, depsIndex);
mkdirSync(ownDepsDir, { recursive: true });
writeFileSync(join(ownDepsDir, 'config.yml'), `name: nodejs\nversion: ${version}\n`);

const packageJson = readPackageJson(buildDir) ?? {};
const dependencies = Object.keys({ ...(packageJson.dependencies ?? {}), ...(packageJson.optionalDependencies ?? {}) });
const modulesDir = join(buildDir, 'node_modules');

if (dependencies.length === 0) {
  step('No dependencies in package.json; skipping npm install');
} else if (existsSync(modulesDir)) {
  const vendored = readdirSync(modulesDir).filter((name) => !name.startsWith('.'));
  step(`Using the vendored node_modules (${vendored.length} top-level packages)`);
} else {
  step(`Installing ${dependencies.length} dependencies with npm`);
  const npm = spawnSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund'], {
    cwd: buildDir,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, npm_config_cache: join(cacheDir, 'npm') },
  });
  if (npm.error) {
    process.stderr.write(`       **ERROR** npm could not run (${npm.error.message}); vendor node_modules with the app instead\n`);
    process.exit(1);
  }
  if (npm.status !== 0) {
    process.stderr.write(`       **ERROR** npm install failed (exit status ${npm.status ?? npm.signal})\n`);
    process.exit(1);
  }
}
