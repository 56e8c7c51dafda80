// After a start, restart, restage or push: the staging log streamed while the build runs, then
// the instances watched until they all run. Both are bounded by their own timeouts; a failed
// build ends with its error id and message, instances that all crash end with why.
import { setTimeout as sleep } from 'node:timers/promises';
import { duration } from '../lib/flags.js';
import type { AppJson, BuildJson, InstanceJson } from './api.js';
import type { CliContext } from './command.js';
import { CliError } from './errors.js';
import { formatMs } from './http.js';
import { followLogs, formatLogLines, isStagingLine, linesOf, nanosOf } from './log-cache.js';

/** The flags of every command that waits for an app to stage and start. */
export const watchFlags = {
  'staging-timeout': duration('how long to wait for staging to finish', 15 * 60_000, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
  'start-timeout': duration('how long to wait for every instance to run once staged', 5 * 60_000, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
  'poll-interval': duration('how often the build, the instances and the logs are read while waiting', 1_000, {
    check: (v) => (v >= 10 ? undefined : 'must be at least 10ms'),
  }),
};

type WatchContext = CliContext<typeof watchFlags>;

/** Slack on the staging log's start time: log lines are stamped by another process's clock. */
const LOG_START_SLACK_MS = 1_000;

export interface WatchOutcome {
  app: AppJson;
  /** The instances all run (false: the app is stopped, or has none). */
  running: boolean;
}

/**
 * Follows what an action set going: `answer` is the action's answer, `since` (ms) when it was
 * sent, for the staging log's start.
 */
export async function watchApp(context: WatchContext, answer: AppJson, since: number): Promise<WatchOutcome> {
  for (const warning of answer.warnings ?? []) context.term.warn(warning);
  if (answer.build?.state === 'STAGING') await watchStaging(context, answer, answer.build, since);
  const app = await context.api.app(answer.guid);
  if (app.state !== 'STARTED' || app.instances === 0) return { app, running: false };
  return { app: await watchInstances(context, app), running: true };
}

async function watchStaging(context: WatchContext, app: AppJson, build: BuildJson, since: number): Promise<BuildJson> {
  const { term, api } = context;
  const step = term.step(`Staging ${app.name}...`);
  const logs = await api.logs(app.guid);
  const follower = followLogs({
    reader: context.logCache,
    sourceId: logs.log_guid,
    startTime: nanosOf(since - LOG_START_SLACK_MS),
    intervalMs: context.flags['poll-interval'],
    deliver(envelope) {
      if (!isStagingLine(envelope)) return;
      // In --json mode the lines go with the progress, to stderr, formatted as `logs` shows them.
      for (const line of term.json ? formatLogLines(envelope) : linesOf(envelope)) step.log(term.json ? line : `   ${line}`);
    },
    onError(error) {
      term.warn(`the staging log cannot be read (staging goes on): ${(error as Error).message}`);
    },
  });
  let finished: BuildJson;
  try {
    finished = await until(context, context.flags['staging-timeout'], async () => {
      const current = (await api.builds(app.guid)).resources.find((b) => b.guid === build.guid);
      if (!current) throw new CliError(`the build ${build.guid} of ${app.name} is gone (was the app deleted?)`);
      return current.state === 'STAGING' ? undefined : current;
    });
  } catch (error) {
    await follower.stop();
    step.clear();
    if (error instanceof TimedOut) {
      throw new CliError(`staging of ${app.name} did not finish within ${formatMs(context.flags['staging-timeout'])} (see ccbridge logs ${app.name} --recent)`);
    }
    throw error;
  }
  await follower.stop();
  if (finished.state === 'FAILED') {
    step.clear();
    const id = finished.error?.id || 'StagingError';
    throw new CliError(`staging of ${app.name} failed: ${id}: ${finished.error?.message || 'no message'}`);
  }
  if (finished.state === 'CANCELED') {
    step.clear();
    throw new CliError(`staging of ${app.name} was cancelled: a stop, restage or newer push replaced it`);
  }
  step.done(`Staged ${app.name}.`);
  return finished;
}

const countByState = (instances: readonly InstanceJson[]) => {
  const counts = new Map<string, number>();
  for (const instance of instances) counts.set(instance.state, (counts.get(instance.state) ?? 0) + 1);
  return counts;
};

export function instancesSummary(app: AppJson): string {
  const instances = app.instance_details ?? [];
  const counts = countByState(instances);
  const running = counts.get('RUNNING') ?? 0;
  const others = [...counts].filter(([state]) => state !== 'RUNNING').map(([state, n]) => `${n} ${state.toLowerCase()}`);
  return `${running} of ${app.instances} instances running${others.length > 0 ? ` (${others.join(', ')})` : ''}`;
}

async function watchInstances(context: WatchContext, first: AppJson): Promise<AppJson> {
  const { term, api } = context;
  const step = term.step(`Starting ${first.name}...`);
  let latest = first;
  // Warnings (the bridge cannot say how the instances are) are normal for a moment after staging,
  // before the new process is desired; only the last one matters, should the wait time out.
  let lastWarning: string | undefined;
  try {
    return await until(context, context.flags['start-timeout'], async (round) => {
      const app = round === 0 ? first : await api.app(first.guid);
      latest = app;
      lastWarning = app.warnings?.at(-1) ?? lastWarning;
      if (app.state !== 'STARTED') throw new CliError(`${app.name} was stopped while it started`);
      const instances = app.instance_details ?? [];
      const counts = countByState(instances);
      step.update(`Starting ${app.name}: ${instancesSummary(app)}`);
      if ((counts.get('RUNNING') ?? 0) >= app.instances) return app;
      if (instances.length > 0 && counts.get('CRASHED') === instances.length) {
        const reason = instances.find((i) => i.details)?.details;
        throw new CliError(`${app.name} crashed: every instance is CRASHED${reason ? ` (${reason})` : ''} (see ccbridge logs ${app.name} --recent, ccbridge events ${app.name})`);
      }
      return undefined;
    }).then((app) => {
      step.done(`Started ${app.name}: ${instancesSummary(app)}.`);
      return app;
    });
  } catch (error) {
    step.clear();
    if (error instanceof TimedOut) {
      const said = lastWarning ? `; the API said: ${lastWarning}` : '';
      throw new CliError(`${first.name} did not start within ${formatMs(context.flags['start-timeout'])}: ${instancesSummary(latest)}${said} (see ccbridge logs ${first.name} --recent)`);
    }
    throw error;
  }
}

class TimedOut extends Error {}

/** Polls `check` every poll interval until it gives a value, or the bound passes. */
async function until<T>(context: WatchContext, boundMs: number, check: (round: number) => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (let round = 0; ; round++) {
    const found = await check(round);
    if (found !== undefined) return found;
    const left = deadline - Date.now();
    if (left <= 0) throw new TimedOut();
    await sleep(Math.min(context.flags['poll-interval'], left));
  }
}
