// The ccbridge command. With no subcommand it runs the all-in-one daemon; a subcommand runs one
// component alone (a split daemon).
import { runCommand } from '../lib/daemon.js';
import { ALL_IN_ONE, COMMANDS } from './commands/index.js';

// Output piped into a reader that stops early (`ccbridge --help | head`) ends quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const [first, ...rest] = process.argv.slice(2);
if (first === undefined || first.startsWith('-')) {
  if (first === '--help' || first === '-help' || first === '-h') {
    process.stdout.write('usage: ccbridge [subcommand] [flags]\n\nWith no subcommand: the all-in-one daemon.\n\nSubcommands:\n');
    for (const [name, command] of Object.entries(COMMANDS)) process.stdout.write(`  ${name.padEnd(16)} ${command.summary}\n`);
    process.stdout.write('\nccbridge <subcommand> --help lists its flags.\n\nFlags of the all-in-one daemon:\n');
  }
  await runCommand('', ALL_IN_ONE, process.argv.slice(2));
} else if (COMMANDS[first]) {
  await runCommand(first, COMMANDS[first], rest);
} else {
  process.stderr.write(`ccbridge: unknown subcommand ${first} (see ccbridge --help)\n`);
  process.exit(2);
}
