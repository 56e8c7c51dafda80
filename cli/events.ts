// `ccbridge events <name>`: what happened to an app, newest first — crashes, rescheduling,
// readiness changes, builds, starts, stops, updates.
import { int, string } from '../lib/flags.js';
import type { EventJson } from './api.js';
import type { CliCommandSpec } from './command.js';
import { formatTime, table } from './terminal.js';

const eventFlags = {
  limit: int('how many events, newest first (at most 1000)', 50, { check: (v) => (v >= 1 && v <= 1000 ? undefined : 'must be from 1 to 1000') }),
  type: string('only events of these types, comma-separated (e.g. app.crash,audit.app.build.failed)'),
};

const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

/** One line about what the event says, for the types that say most; others as name=value. */
export function describeEvent(event: EventJson): string {
  const m = event.metadata;
  switch (event.type) {
    case 'app.crash':
      return [`index ${text(m.index)}`, m.exit_description ? `${text(m.exit_description)}` : text(m.reason ?? 'crashed'), m.crash_count !== undefined ? `crash count ${text(m.crash_count)}` : '']
        .filter(Boolean)
        .join(', ');
    case 'audit.app.build.failed':
      return `${text(m.error_id)}: ${text(m.error_message)}`;
    case 'app.readiness_changed':
      return `index ${text(m.index)} ${m.ready ? 'ready' : 'not ready'}`;
    case 'app.rescheduling':
      return `index ${text(m.index)}: ${text(m.reason)}`;
    default:
      return Object.entries(m)
        .filter(([key, value]) => value !== null && value !== undefined && !key.endsWith('_guid'))
        .map(([key, value]) => `${key}=${text(value)}`)
        .join(', ');
  }
}

export const events: CliCommandSpec<typeof eventFlags> = {
  usage: 'events <name> [--limit N] [--type T,...]',
  summary: 'show what happened to an app, newest first: crashes, builds, starts, stops, updates',
  flags: eventFlags,
  args: { min: 1, max: 1 },
  async run(context) {
    const { term } = context;
    const types = context.flags.type.split(',').map((t) => t.trim()).filter((t) => t !== '');
    const answer = await context.api.events(context.args[0]!, { types, limit: context.flags.limit });
    if (term.json) return term.printJson(answer);
    if (answer.resources.length === 0) {
      term.info(`No events for ${context.args[0]}.`);
      return;
    }
    const rows = answer.resources.map((event) => [formatTime(event.timestamp), event.type, event.actor, describeEvent(event)]);
    for (const line of table(['time', 'event', 'actor', 'description'], rows)) term.result(line);
  },
};
