// SQLite storage of Locket resources: the schema (versioned, migrated forward at open) and the
// few statements the service needs. Expiry is an absolute wall-clock time per row, so a lock
// keeps its remaining TTL across a restart.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { LocketSchemaError } from './errors.js';

export type LocketDatabase = Database.Database;

export const LOCKET_DATABASE_FILE = 'locket.sqlite3';

/** Migration n (1-based) brings the schema from version n-1 to n. Never edit a released step. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE locks (
     key            TEXT    PRIMARY KEY,
     owner          TEXT    NOT NULL,
     value          TEXT    NOT NULL,
     type           TEXT    NOT NULL,
     type_code      INTEGER NOT NULL,
     ttl_seconds    INTEGER NOT NULL,
     expires_at_ms  INTEGER NOT NULL,
     modified_index INTEGER NOT NULL
   );
   CREATE INDEX locks_by_expiry ON locks (expires_at_ms);
   CREATE INDEX locks_by_type ON locks (type);`,
];

export const LOCKET_SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating when absent) the Locket database under dataDir and migrates it. */
export function openLocketDatabase(dataDir: string): LocketDatabase {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, LOCKET_DATABASE_FILE));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    migrateLocketSchema(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

export function migrateLocketSchema(db: LocketDatabase): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  const current = row?.version ?? 0;
  if (current > LOCKET_SCHEMA_VERSION) {
    throw new LocketSchemaError(
      `locket database schema version ${current} is newer than this build supports (${LOCKET_SCHEMA_VERSION})`,
    );
  }
  db.transaction(() => {
    for (let version = current + 1; version <= LOCKET_SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version - 1]!);
    if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(LOCKET_SCHEMA_VERSION);
    else db.prepare('UPDATE schema_version SET version = ?').run(LOCKET_SCHEMA_VERSION);
  })();
}

export interface StoredLock {
  key: string;
  owner: string;
  value: string;
  /** 'lock' or 'presence'. */
  type: string;
  typeCode: number;
  ttlSeconds: number;
  expiresAtMs: number;
  modifiedIndex: number;
}

const COLUMNS = `key, owner, value, type, type_code AS typeCode, ttl_seconds AS ttlSeconds,
                 expires_at_ms AS expiresAtMs, modified_index AS modifiedIndex`;

export interface LockTable {
  /** Runs fn in one SQLite transaction (IMMEDIATE, so concurrent writers queue instead of failing). */
  transaction<T>(fn: () => T): T;
  /** Deletes the rows whose TTL ran out at nowMs and returns them. */
  deleteExpired(nowMs: number): StoredLock[];
  find(key: string): StoredLock | undefined;
  /** Inserts the row, or replaces it and bumps its modified index. */
  upsert(lock: Omit<StoredLock, 'modifiedIndex'>): void;
  remove(key: string): void;
  /** Every row of one type ('lock' or 'presence'), by key. */
  listByType(type: string): StoredLock[];
}

export function createLockTable(db: LocketDatabase): LockTable {
  const deleteExpired = db.prepare(`DELETE FROM locks WHERE expires_at_ms <= ? RETURNING ${COLUMNS}`);
  const find = db.prepare(`SELECT ${COLUMNS} FROM locks WHERE key = ?`);
  const upsert = db.prepare(
    `INSERT INTO locks (key, owner, value, type, type_code, ttl_seconds, expires_at_ms, modified_index)
     VALUES (@key, @owner, @value, @type, @typeCode, @ttlSeconds, @expiresAtMs, 1)
     ON CONFLICT (key) DO UPDATE SET
       owner = excluded.owner, value = excluded.value, type = excluded.type, type_code = excluded.type_code,
       ttl_seconds = excluded.ttl_seconds, expires_at_ms = excluded.expires_at_ms,
       modified_index = modified_index + 1`,
  );
  const remove = db.prepare('DELETE FROM locks WHERE key = ?');
  const listByType = db.prepare(`SELECT ${COLUMNS} FROM locks WHERE type = ? ORDER BY key`);

  return {
    transaction: (fn) => db.transaction(fn).immediate(),
    deleteExpired: (nowMs) => deleteExpired.all(nowMs) as StoredLock[],
    find: (key) => find.get(key) as StoredLock | undefined,
    upsert: (lock) => void upsert.run(lock),
    remove: (key) => void remove.run(key),
    listByType: (type) => listByType.all(type) as StoredLock[],
  };
}
