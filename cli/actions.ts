// What changes an app's running state: `start`, `stop`, `restart`, `restage`, `scale`, `delete`.
// Start, restart and restage follow staging and the instances as push does, unless --no-wait.
import { bool } from '../lib/flags.js';
import type { AppAction } from './api.js';
import type { CliCommandSpec } from './command.js';
import { CliError } from './errors.js';
import { scaleFlags, scaleFrom } from './push.js';
import { formatMb } from './terminal.js';
import { instancesSummary, watchApp, watchFlags } from './watch.js';

const waitingFlags = { ...watchFlags, 'no-wait': bool('answer once the request is taken, without waiting for staging and instances') };

const verbs: Record<Exclude<AppAction, 'stop'>, { doing: string; summary: string }> = {
  start: { doing: 'Starting', summary: 'start an app (staging it first when it has new bits), and wait until it runs' },
  restart: { doing: 'Restarting', summary: 'stop an app\'s instances and start new ones, and wait until they run' },
  restage: { doing: 'Restaging', summary: 'stage an app again and wait until its new droplet runs' },
};

function waitingAction(action: Exclude<AppAction, 'stop'>): CliCommandSpec<typeof waitingFlags> {
  return {
    usage: `${action} <name> [--no-wait]`,
    summary: verbs[action].summary,
    flags: waitingFlags,
    args: { min: 1, max: 1 },
    async run(context) {
      const { term, api } = context;
      const name = context.args[0]!;
      term.info(`${verbs[action].doing} ${name}...`);
      const since = Date.now();
      const answer = await api.action(name, action);
      if (context.flags['no-wait']) {
        for (const warning of answer.warnings ?? []) term.warn(warning);
        if (term.json) return term.printJson(answer);
        const building = answer.build?.state === 'STAGING' ? ' (staging)' : '';
        term.result(`${answer.name} is ${answer.state}${building}`);
        return;
      }
      const { app, running } = await watchApp(context, answer, since);
      if (term.json) return term.printJson(app);
      const url = context.appUrl(app.routes[0] ?? app.name);
      if (running) term.result(`${app.name} is running at ${url}`);
      else term.result(`${app.name} is ${app.state} (${instancesSummary(app)})`);
    },
  };
}

export const start = waitingAction('start');
export const restart = waitingAction('restart');
export const restage = waitingAction('restage');

export const stop: CliCommandSpec<{}> = {
  usage: 'stop <name>',
  summary: 'stop an app (its instances go; it stays, with its droplet)',
  flags: {},
  args: { min: 1, max: 1 },
  async run(context) {
    const { term } = context;
    const answer = await context.api.action(context.args[0]!, 'stop');
    for (const warning of answer.warnings ?? []) term.warn(warning);
    if (term.json) return term.printJson(answer);
    term.result(`${answer.name} is stopped`);
  },
};

export const scale: CliCommandSpec<typeof scaleFlags> = {
  usage: 'scale <name> [-i N] [-m 256M] [-k 1G]',
  summary: 'change an app\'s instances, memory or disk (without flags: show them)',
  flags: scaleFlags,
  args: { min: 1, max: 1 },
  async run(context) {
    const { term, api } = context;
    const name = context.args[0]!;
    const body = scaleFrom(context.flags);
    const answer = Object.keys(body).length === 0 ? await api.app(name) : await api.scale(name, body);
    for (const warning of answer.warnings ?? []) term.warn(warning);
    if (term.json) return term.printJson(answer);
    term.result(`${answer.name}: ${answer.instances} instances, ${formatMb(answer.memory_mb)} memory, ${formatMb(answer.disk_mb)} disk`);
  },
};

const deleteFlags = {
  f: bool('delete without asking'),
  force: bool('the same as -f'),
};

export const deleteApp: CliCommandSpec<typeof deleteFlags> = {
  usage: 'delete <name> [-f]',
  summary: 'delete an app: its instances, bits and droplets (its events stay)',
  flags: deleteFlags,
  args: { min: 1, max: 1 },
  async run(context) {
    const { term, api } = context;
    const name = context.args[0]!;
    if (!context.flags.f && !context.flags.force) {
      if (!context.stdinInteractive) throw new CliError(`not deleting ${name} without a confirmation: give -f`);
      const answer = await context.ask(`Really delete the app ${name}? [y/N] `);
      if (!/^y(es)?$/i.test(answer.trim())) {
        term.info('Nothing deleted.');
        return;
      }
    }
    const answer = await api.deleteApp(name);
    for (const warning of answer.warnings) term.warn(warning);
    if (term.json) return term.printJson(answer);
    term.result(`${answer.name} is deleted`);
  },
};
