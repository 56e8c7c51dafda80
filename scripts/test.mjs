#!/usr/bin/env node
// `npm test`: checks the prerequisites, then runs every node:test suite under test/ with tsx.
// Node 20's --test does not expand globs or discover .ts files, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = findTests(join(root, 'test')).map((f) => relative(root, f));
if (filter.length > 0) files = files.filter((f) => filter.some((part) => f.includes(part)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const prereq = spawnSync(process.execPath, [join(root, 'scripts', 'prerequisites.mjs')], { stdio: 'inherit' });
if (prereq.status !== 0) process.exit(prereq.status ?? 1);

const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, CCBRIDGE_LOG_LEVEL: process.env.CCBRIDGE_LOG_LEVEL ?? 'silent' } },
);
process.exit(result.status ?? 1);
