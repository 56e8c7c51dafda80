// `ccbridge logs <name> [--recent]`: the app's recent log lines (staging, app, health checks,
// cell) from log-cache; without --recent it then follows new lines until Ctrl-C.
import { bool } from '../lib/flags.js';
import type { CliCommandSpec } from './command.js';
import { followLogs, formatLogLines, MAX_READ, nanosOf, type Envelope } from './log-cache.js';
import { watchFlags } from './watch.js';

const logFlags = {
  recent: bool('print the recent lines and end, instead of following'),
  'poll-interval': watchFlags['poll-interval'],
};

export const logs: CliCommandSpec<typeof logFlags> = {
  usage: 'logs <name> [--recent]',
  summary: 'show an app\'s recent log lines, then follow new ones until Ctrl-C (--recent: only the recent ones)',
  flags: logFlags,
  args: { min: 1, max: 1 },
  endsOnInterrupt: true,
  async run(context) {
    const { term, api, logCache } = context;
    const where = await api.logs(context.args[0]!);
    const since = Date.now();
    // Newest first from log-cache, shown oldest first.
    const recent = (await logCache.read(where.log_guid, { descending: true, limit: MAX_READ })).reverse();
    const show = (envelope: Envelope) => {
      // --json: one envelope per line while following, so a script can read them as they come.
      if (term.json) term.result(JSON.stringify(envelope));
      else for (const line of formatLogLines(envelope)) term.result(line);
    };
    if (context.flags.recent) {
      if (term.json) return term.printJson({ envelopes: { batch: recent } });
      for (const envelope of recent) show(envelope);
      return;
    }
    for (const envelope of recent) show(envelope);
    const last = recent.at(-1);
    const follower = followLogs({
      reader: logCache,
      sourceId: where.log_guid,
      startTime: last ? BigInt(last.timestamp!) : nanosOf(since),
      alreadySeen: recent,
      intervalMs: context.flags['poll-interval'],
      deliver: show,
      onError: (error) => term.warn(`${(error as Error).message} (still trying)`),
    });
    await new Promise<void>((resolve) => {
      if (context.signal.aborted) resolve();
      context.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await follower.stop();
  },
};
