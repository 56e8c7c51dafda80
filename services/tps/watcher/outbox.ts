// The watcher's durable outbox (SQLite): a report is written here before its event counts as
// handled, and leaves only when CC took it (or refused it for good). Reports of one instance go
// out in the order they came in. Ids already delivered are remembered for a while, so a crash
// found again by a re-list is not sent twice.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { InstanceReport } from '../../../clients/cc/client.js';
import type { PendingReport } from './reports.js';

export const OUTBOX_DATABASE_FILE = 'tps-watcher-outbox.sqlite3';

const MIGRATIONS = [
  `CREATE TABLE reports (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     process_guid TEXT NOT NULL,
     instance_key TEXT NOT NULL,
     report TEXT NOT NULL,
     queued_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL
   );
   CREATE INDEX reports_by_instance ON reports (instance_key, seq);
   CREATE TABLE delivered (
     id TEXT PRIMARY KEY,
     delivered_at INTEGER NOT NULL
   );
   CREATE INDEX delivered_by_time ON delivered (delivered_at);`,
];

export interface QueuedReport extends PendingReport {
  seq: number;
  queuedAt: number;
  attempts: number;
}

export interface Outbox {
  /** Queues the reports not queued or delivered before; returns how many were new. */
  enqueue(reports: readonly PendingReport[], now: number): number;
  /**
   * The oldest report of each instance, if it is due, longest-waiting first, at most `limit`
   * (ordered by due time, so reports that just failed do not starve the ones behind them).
   */
  due(now: number, limit: number): QueuedReport[];
  /** When the next queued report falls due (undefined when the outbox is empty). */
  nextDueAt(): number | undefined;
  delivered(seq: number, id: string, now: number): void;
  /** Refused for good (4xx): removed without being remembered as delivered. */
  dropped(seq: number): void;
  retryAt(seq: number, at: number): void;
  depth(): number;
  /** Forgets delivered ids older than `before` beyond the newest `keep`. */
  prune(before: number, keep: number): void;
  close(): void;
}

export function openOutbox(dataDir: string): Outbox {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, OUTBOX_DATABASE_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) throw new Error(`outbox schema version ${version} is newer than this ccbridge (${MIGRATIONS.length})`);
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }

  const isDelivered = db.prepare<[string], { id: string }>('SELECT id FROM delivered WHERE id = ?');
  const insert = db.prepare(
    'INSERT OR IGNORE INTO reports (id, process_guid, instance_key, report, queued_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const enqueueAll = db.transaction((reports: readonly PendingReport[], now: number) => {
    let added = 0;
    for (const r of reports) {
      if (isDelivered.get(r.id)) continue;
      added += insert.run(r.id, r.processGuid, r.instanceKey, JSON.stringify(r.report), now, now).changes;
    }
    return added;
  });
  const dueHeads = db.prepare<[number, number], Row>(
    `SELECT r.* FROM reports r
       JOIN (SELECT instance_key, MIN(seq) AS seq FROM reports GROUP BY instance_key) head ON head.seq = r.seq
      WHERE r.next_attempt_at <= ?
      ORDER BY r.next_attempt_at, r.seq
      LIMIT ?`,
  );
  const nextDue = db.prepare<[], { at: number | null }>('SELECT MIN(next_attempt_at) AS at FROM reports');
  const remove = db.prepare('DELETE FROM reports WHERE seq = ?');
  const remember = db.prepare('INSERT OR REPLACE INTO delivered (id, delivered_at) VALUES (?, ?)');
  const markDelivered = db.transaction((seq: number, id: string, now: number) => {
    remove.run(seq);
    remember.run(id, now);
  });
  const retry = db.prepare('UPDATE reports SET attempts = attempts + 1, next_attempt_at = ? WHERE seq = ?');
  const count = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM reports');
  const pruneOld = db.prepare(
    'DELETE FROM delivered WHERE delivered_at < ? AND id NOT IN (SELECT id FROM delivered ORDER BY delivered_at DESC LIMIT ?)',
  );

  return {
    enqueue: (reports, now) => (reports.length === 0 ? 0 : enqueueAll(reports, now)),
    due: (now, limit) =>
      dueHeads.all(now, limit).map((row) => ({
        seq: row.seq,
        id: row.id,
        processGuid: row.process_guid,
        instanceKey: row.instance_key,
        report: JSON.parse(row.report) as InstanceReport,
        queuedAt: row.queued_at,
        attempts: row.attempts,
      })),
    nextDueAt: () => nextDue.get()?.at ?? undefined,
    delivered: (seq, id, now) => markDelivered(seq, id, now),
    dropped: (seq) => void remove.run(seq),
    retryAt: (seq, at) => void retry.run(at, seq),
    depth: () => count.get()!.n,
    prune: (before, keep) => void pruneOld.run(before, keep),
    close: () => db.close(),
  };
}

interface Row {
  seq: number;
  id: string;
  process_guid: string;
  instance_key: string;
  report: string;
  queued_at: number;
  attempts: number;
  next_attempt_at: number;
}
