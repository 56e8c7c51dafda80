// The configuration reference is generated from the flag definitions and must be current.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { flagReference } from '../../scripts/flag-reference.js';

test('docs/configuration.md is what npm run docs writes from the flag definitions', () => {
  const onDisk = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  assert.equal(onDisk, flagReference(), 'run npm run docs and commit docs/configuration.md');
});
