#!/usr/bin/env node
// Writes the lifecycle archives (buildpack and docker) into the file server's static directory.
//
//   node scripts/package-lifecycles.mjs [<out dir>] [--data-dir <dir>] [--buildpacks]
//
// The out dir defaults to <data dir>/lifecycles, the data dir to ./.ccbridge (the all-in-one's
// default). --buildpacks also writes the example buildpacks as <name>_buildpack.tgz.
import { join, resolve } from 'node:path';
import { EXAMPLE_BUILDPACKS, packageBuildpack, packageBuildpackLifecycle, packageDockerLifecycle } from '../lifecycles/package.mjs';

const DEFAULT_DATA_DIR = './.ccbridge';

function usage(message) {
  if (message) console.error(message);
  console.error('usage: node scripts/package-lifecycles.mjs [<out dir>] [--data-dir <dir>] [--buildpacks]');
  process.exit(2);
}

let outDir;
let dataDir = DEFAULT_DATA_DIR;
let withBuildpacks = false;
const args = process.argv.slice(2);
for (let index = 0; index < args.length; index += 1) {
  const arg = args[index];
  if (arg === '--buildpacks') withBuildpacks = true;
  else if (arg === '--data-dir') dataDir = args[++index] ?? usage('--data-dir needs a directory');
  else if (arg.startsWith('--data-dir=')) dataDir = arg.slice('--data-dir='.length);
  else if (arg === '--help' || arg === '-h') usage();
  else if (arg.startsWith('-')) usage(`unknown option ${arg}`);
  else if (outDir === undefined) outDir = arg;
  else usage(`unexpected argument ${arg}`);
}
outDir = resolve(outDir ?? join(dataDir, 'lifecycles'));

const archives = [packageBuildpackLifecycle(outDir), packageDockerLifecycle(outDir)];
if (withBuildpacks) for (const name of EXAMPLE_BUILDPACKS) archives.push(packageBuildpack(name, outDir));
for (const archive of archives) console.log(`wrote ${archive.path} (${archive.bytes} bytes, sha256 ${archive.sha256})`);
