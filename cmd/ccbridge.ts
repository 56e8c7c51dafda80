// The ccbridge command. With no subcommand it runs the all-in-one daemon; a subcommand runs one
// component alone (a split daemon).
import type { Command } from '../lib/daemon.js';
import { runCommand } from '../lib/daemon.js';
import allInOne from './commands/all-in-one.js';
import cloudController from './commands/cloud-controller.js';
import fileServer from './commands/file-server.js';
import gateway from './commands/gateway.js';
import locket from './commands/locket.js';
import nsyncBulker from './commands/nsync-bulker.js';
import nsyncListener from './commands/nsync-listener.js';
import router from './commands/router.js';
import stager from './commands/stager.js';
import tpsListener from './commands/tps-listener.js';
import tpsWatcher from './commands/tps-watcher.js';
import uploader from './commands/uploader.js';

const COMMANDS: Record<string, Command> = {
  gateway: gateway as unknown as Command,
  stager: stager as unknown as Command,
  'nsync-listener': nsyncListener as unknown as Command,
  'nsync-bulker': nsyncBulker as unknown as Command,
  'tps-listener': tpsListener as unknown as Command,
  'tps-watcher': tpsWatcher as unknown as Command,
  'file-server': fileServer as unknown as Command,
  'cloud-controller': cloudController as unknown as Command,
  router: router as unknown as Command,
  uploader: uploader as unknown as Command,
  locket: locket as unknown as Command,
};

const [first, ...rest] = process.argv.slice(2);
if (first === undefined || first.startsWith('-')) {
  if (first === '--help' || first === '-help' || first === '-h') {
    process.stdout.write('usage: ccbridge [subcommand] [flags]\n\nWith no subcommand: the all-in-one daemon.\n\nSubcommands:\n');
    for (const [name, command] of Object.entries(COMMANDS)) process.stdout.write(`  ${name.padEnd(16)} ${command.summary}\n`);
    process.stdout.write('\nccbridge <subcommand> --help lists its flags.\n\nFlags of the all-in-one daemon:\n');
  }
  await runCommand('', allInOne as unknown as Command, process.argv.slice(2));
} else if (COMMANDS[first]) {
  await runCommand(first, COMMANDS[first], rest);
} else {
  process.stderr.write(`ccbridge: unknown subcommand ${first} (see ccbridge --help)\n`);
  process.exit(2);
}
