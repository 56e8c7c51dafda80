// Reading the app's package.json, which every step of this buildpack consults.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The parsed package.json, or undefined when the app has none; a broken one is fatal. */
export function readPackageJson(buildDir) {
  const path = join(buildDir, 'package.json');
  if (!existsSync(path)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed;
  } catch (error) {
    process.stderr.write(`       **ERROR** package.json is not valid: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

/** The command that starts the app: scripts.start itself (so the app, not npm, gets the signals), else `node server.js`. */
export function startCommandFor(packageJson) {
  const start = packageJson?.scripts?.start;
  return typeof start === 'string' && start.trim() !== '' ? start.trim() : 'node server.js';
}

export function step(message) {
  process.stdout.write(`-----> ${message}\n`);
}

export function detail(message) {
  process.stdout.write(`       ${message}\n`);
}
