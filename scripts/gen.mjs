#!/usr/bin/env node
// `npm run gen`: regenerates gen/ from proto/ (never edit gen/ by hand).
// gen/ is removed first so that a deleted proto leaves no stale code behind.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const buf = fileURLToPath(new URL('../node_modules/.bin/buf', import.meta.url));
rmSync(`${root}/gen`, { recursive: true, force: true });
execFileSync(buf, ['generate'], { cwd: root, stdio: 'inherit' });
// The descriptor set drives the gateway's routes and the legacy JSON codec at run time.
execFileSync(buf, ['build', '--as-file-descriptor-set', '--exclude-source-info', '-o', 'gen/descriptors.binpb'], { cwd: root, stdio: 'inherit' });
