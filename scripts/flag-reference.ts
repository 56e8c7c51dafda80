// Writes docs/configuration.md from the commands' flag definitions, so the reference cannot
// drift from the code (a test checks it is current). Usage: node --import tsx scripts/flag-reference.ts [--check]
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMANDS, ALL_IN_ONE } from '../cmd/commands/index.js';
import { formatDuration, type FlagSpecs } from '../lib/flags.js';

const target = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

function table(flags: FlagSpecs): string {
  const rows = Object.entries(flags).map(([name, spec]) => {
    let shown: string;
    if (spec.secret) shown = '';
    else if (spec.kind === 'duration') shown = formatDuration(spec.default);
    else if (spec.kind === 'list') shown = spec.default.join('<br>');
    else shown = String(spec.default);
    return `| \`-${name}\` | ${spec.kind} | ${shown === '' ? '' : `\`${shown}\``} | ${spec.description.replace(/\|/g, '\\|')} |`;
  });
  return ['| flag | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

export function flagReference(): string {
  const parts = [
    '# Configuration reference',
    '',
    'Generated from the flag definitions by `npm run docs`; do not edit by hand. Every flag is',
    'accepted as `-name=value`, `--name=value` or `-name value`; booleans may stand alone.',
    'Durations are written as Go writes them (`500ms`, `30s`, `5m`).',
    '',
    '## `ccbridge` (the all-in-one daemon, `npm start`)',
    '',
    ALL_IN_ONE.summary,
    '',
    table(ALL_IN_ONE.flags),
  ];
  for (const [name, command] of Object.entries(COMMANDS)) {
    parts.push('', `## \`ccbridge ${name}\``, '', command.summary, '', table(command.flags));
  }
  return `${parts.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = flagReference();
  if (process.argv.includes('--check')) {
    if (readFileSync(target, 'utf8') !== text) {
      console.error('docs/configuration.md is out of date: run npm run docs');
      process.exit(1);
    }
  } else {
    writeFileSync(target, text);
  }
}
