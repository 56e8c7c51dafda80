// The command line for the development Cloud Controller: `ccbridge push`, `apps`, `logs`, ...
// as subcommands of the ccbridge binary, by name.
import { createInterface } from 'node:readline/promises';
import type { Command } from '../lib/daemon.js';
import { deleteApp, restage, restart, scale, start, stop } from './actions.js';
import { app, apps } from './apps.js';
import { cliCommand, type CliCommandSpec, type CliProcess } from './command.js';
import { env, setEnv, unsetEnv } from './env.js';
import { events } from './events.js';
import { logs } from './logs.js';
import { push } from './push.js';
import { ssh } from './ssh.js';

const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));

/** This process: its streams, environment, Ctrl-C and exit. */
export function nodeProcess(): CliProcess {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    async ask(question) {
      const prompt = createInterface({ input: process.stdin, output: process.stdout });
      try {
        return await prompt.question(question);
      } finally {
        prompt.close();
      }
    },
    onInterrupt(handler) {
      process.on('SIGINT', handler);
    },
    async exit(code) {
      // A pipe may still hold what was written; exit once it is out.
      await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
      process.exit(code);
    },
  };
}

const SPECS: Record<string, CliCommandSpec<any>> = {
  push,
  apps,
  app,
  scale,
  start,
  stop,
  restart,
  restage,
  delete: deleteApp,
  logs,
  events,
  env,
  'set-env': setEnv,
  'unset-env': unsetEnv,
  ssh,
};

export function createCliCommands(host: () => CliProcess = nodeProcess): Record<string, Command> {
  return Object.fromEntries(Object.entries(SPECS).map(([name, spec]) => [name, cliCommand(name, spec, host)]));
}

export const CLI_COMMANDS = createCliCommands();
