// What the watcher tells CC, as pure functions: which instance events (or, after a gap, which
// listed instances) become reports, with which body, under which stable id. The id is built
// from fields that both an event and a later listing carry, so a report found twice — by the
// event and by a re-list, or by two watchers around a takeover — is the same report.
import { createHash } from 'node:crypto';
import type { InstanceReport } from '../../../clients/cc/client.js';
import type { LrpInstanceEvent } from '../../../clients/bbs/sse.js';
import { ActualLRP_Presence, type ActualLRP } from '../../../gen/diego/bbs/v1/actual_lrp.js';

/** legacy: the 2015 CC (crashes only, /internal/apps/:guid/crashed); v4: today's CC. */
export type WatcherMode = 'legacy' | 'v4';

export const WATCHED_DOMAIN = 'cf-apps';
export const RESCHEDULING_REASON = 'Cell is being evacuated';

export interface PendingReport {
  /** Stable across restarts, re-lists and takeovers. */
  id: string;
  processGuid: string;
  /** Reports of one instance are delivered in the order they were queued. */
  instanceKey: string;
  report: InstanceReport;
}

function reportId(...parts: (string | number | boolean)[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

interface CrashFacts {
  processGuid: string;
  index: number;
  instanceGuid: string;
  cellId: string;
  crashCount: number;
  crashReason: string;
  since: string;
}

function crashReport(facts: CrashFacts, mode: WatcherMode): PendingReport {
  const base = { processGuid: facts.processGuid, instanceKey: `${facts.processGuid}/${facts.index}` };
  const id = reportId('crashed', facts.processGuid, facts.index, facts.crashCount, facts.since);
  if (mode === 'legacy') {
    return {
      ...base,
      id,
      report: {
        kind: 'crashed-legacy',
        body: { instance: facts.instanceGuid, index: facts.index, reason: 'CRASHED', exitStatus: 0, exitDescription: facts.crashReason, crashCount: facts.crashCount, crashTimestamp: facts.since },
      },
    };
  }
  return {
    ...base,
    id,
    report: {
      kind: 'crashed',
      body: { instance: facts.instanceGuid, index: facts.index, cellId: facts.cellId, reason: 'CRASHED', exitDescription: facts.crashReason, crashCount: facts.crashCount, crashTimestamp: facts.since },
    },
  };
}

/** The reports one event gives (none for events CC is not told about). */
export function reportsForEvent(event: LrpInstanceEvent, mode: WatcherMode): PendingReport[] {
  switch (event.type) {
    case 'actual_lrp_crashed': {
      const e = event.event;
      if (e.actualLrpKey?.domain !== WATCHED_DOMAIN) return [];
      return [
        crashReport(
          {
            processGuid: e.actualLrpKey.processGuid,
            index: e.actualLrpKey.index,
            instanceGuid: e.actualLrpInstanceKey?.instanceGuid ?? '',
            cellId: e.actualLrpInstanceKey?.cellId ?? '',
            crashCount: e.crashCount,
            crashReason: e.crashReason,
            since: e.since,
          },
          mode,
        ),
      ];
    }
    case 'actual_lrp_instance_removed': {
      const actual = event.event.actualLrp;
      if (mode !== 'v4' || !actual || actual.actualLrpKey?.domain !== WATCHED_DOMAIN) return [];
      if (actual.presence !== ActualLRP_Presence.PRESENCE_EVACUATING) return [];
      const { processGuid, index } = actual.actualLrpKey;
      const instance = actual.actualLrpInstanceKey;
      return [
        {
          id: reportId('rescheduling', processGuid, index, instance?.instanceGuid ?? '', actual.since),
          processGuid,
          instanceKey: `${processGuid}/${index}`,
          report: { kind: 'rescheduling', body: { instance: instance?.instanceGuid ?? '', index, cellId: instance?.cellId ?? '', reason: RESCHEDULING_REASON } },
        },
      ];
    }
    case 'actual_lrp_instance_changed': {
      const e = event.event;
      if (mode !== 'v4' || e.actualLrpKey?.domain !== WATCHED_DOMAIN) return [];
      const before = e.before?.routable ?? true;
      const after = e.after?.routable ?? true;
      if (before === after) return [];
      const { processGuid, index } = e.actualLrpKey;
      const instance = e.actualLrpInstanceKey;
      return [
        {
          id: reportId('readiness', processGuid, index, instance?.instanceGuid ?? '', after, e.after?.since ?? ''),
          processGuid,
          instanceKey: `${processGuid}/${index}`,
          report: { kind: 'readiness_changed', body: { instance: instance?.instanceGuid ?? '', index, cellId: instance?.cellId ?? '', ready: after } },
        },
      ];
    }
    default:
      return [];
  }
}

/**
 * Crashes a listing still shows: an instance whose record is the crash itself (CRASHED, or
 * UNCLAIMED again right after a crash that is restarted at once) keeps the crash's `since`, so
 * its report has the id the event's would have had.
 */
export function crashReportsForListing(actuals: readonly ActualLRP[], mode: WatcherMode): PendingReport[] {
  const reports: PendingReport[] = [];
  for (const actual of actuals) {
    const key = actual.actualLrpKey;
    if (!key || key.domain !== WATCHED_DOMAIN || actual.crashCount <= 0) continue;
    if (actual.state !== 'CRASHED' && !(actual.state === 'UNCLAIMED' && actual.crashReason !== '')) continue;
    if (actual.presence !== ActualLRP_Presence.PRESENCE_ORDINARY) continue;
    reports.push(
      crashReport(
        {
          processGuid: key.processGuid,
          index: key.index,
          instanceGuid: actual.actualLrpInstanceKey?.instanceGuid ?? '',
          cellId: actual.actualLrpInstanceKey?.cellId ?? '',
          crashCount: actual.crashCount,
          crashReason: actual.crashReason,
          since: actual.since,
        },
        mode,
      ),
    );
  }
  return reports;
}
