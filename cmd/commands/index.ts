// Every subcommand of `ccbridge`, by name, and the all-in-one daemon.
import type { Command } from '../../lib/daemon.js';
import { CLI_COMMANDS } from '../../cli/index.js';

/** The daemons' subcommands, in the order --help lists them. */
const DAEMONS: Record<string, () => Promise<{ default: unknown }>> = {
  gateway: () => import('./gateway.js'),
  stager: () => import('./stager.js'),
  'nsync-listener': () => import('./nsync-listener.js'),
  'nsync-bulker': () => import('./nsync-bulker.js'),
  'tps-listener': () => import('./tps-listener.js'),
  'tps-watcher': () => import('./tps-watcher.js'),
  'file-server': () => import('./file-server.js'),
  uploader: () => import('./uploader.js'),
  diego: () => import('./diego.js'),
  'cloud-controller': () => import('./cloud-controller.js'),
  router: () => import('./router.js'),
  locket: () => import('./locket.js'),
};

// A subcommand of the command line (push, apps, logs, ...) loads the command line alone: the
// daemons' modules (gRPC, SQLite, the embedded Diego) take seconds to load, which every
// `ccbridge apps` would otherwise pay. Anything else — the all-in-one, a daemon, --help, the
// reference generator — loads every daemon. Should a name clash, the daemon keeps it.
const requested = process.argv[2];
const commandLineOnly = requested !== undefined && Object.hasOwn(CLI_COMMANDS, requested) && !Object.hasOwn(DAEMONS, requested);

const notLoaded: Command = {
  summary: 'not loaded',
  flags: {},
  start: () => Promise.reject(new Error('the daemons are not loaded for a command-line subcommand')),
};

export const ALL_IN_ONE: Command = commandLineOnly ? notLoaded : ((await import('./all-in-one.js')).default as unknown as Command);

export const COMMANDS: Record<string, Command> = commandLineOnly
  ? {}
  : Object.fromEntries(await Promise.all(Object.entries(DAEMONS).map(async ([name, load]) => [name, (await load()).default as unknown as Command] as const)));

for (const [name, command] of Object.entries(CLI_COMMANDS)) if (!Object.hasOwn(COMMANDS, name)) COMMANDS[name] = command;
