#!/usr/bin/env node
// The one list of Debian packages the project needs on a machine, checked before `npm start`
// and `npm test`. Missing ones are installed with apt-get when running as root; otherwise this
// stops with the exact command to run.
import { spawnSync } from 'node:child_process';

/** Debian package -> the command that proves it is installed. */
export const PREREQUISITES = [
  // TLS material for the mTLS tests and for generating development certificates.
  { pkg: 'openssl', command: 'openssl' },
  // The embedded cell's containers: bubblewrap sandboxes, networked by pasta.
  { pkg: 'bubblewrap', command: 'bwrap' },
  { pkg: 'passt', command: 'pasta' },
  // Zip archives in Download actions (buildpacks are often zips); tar is always there.
  { pkg: 'unzip', command: 'unzip' },
];

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export function missingPackages() {
  return PREREQUISITES.filter(({ command }) => !has(command)).map(({ pkg }) => pkg);
}

function main() {
  const missing = missingPackages();
  if (missing.length === 0) return 0;
  const install = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`ccbridge needs these Debian packages: ${missing.join(', ')}. Run: sudo apt-get update && sudo ${install}`);
    return 1;
  }
  console.error(`installing Debian packages: ${missing.join(', ')}`);
  const update = spawnSync('sh', ['-c', 'apt-get update -qq'], { stdio: 'inherit' });
  if (update.status !== 0) return update.status ?? 1;
  const result = spawnSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive ${install}`], { stdio: 'inherit' });
  return result.status ?? 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(main());
