// The embedded Diego's SQLite database: one file under the data directory, WAL mode, a versioned
// schema migrated forward at open. Each record is stored as its encoded protobuf bytes — what
// list responses are assembled from — beside the columns queries filter and sort on.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type DiegoDatabase = Database.Database;

export const DIEGO_DATABASE_FILE = 'diego.sqlite3';

export class DiegoSchemaError extends Error {
  override name = 'DiegoSchemaError';
}

/** Migration n (1-based) brings the schema from version n-1 to n. Never edit a released step. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE domains (
     domain        TEXT PRIMARY KEY,
     -- NULL: the domain never goes stale (upserted with ttl 0).
     expires_at_ms INTEGER
   );

   CREATE TABLE tasks (
     guid               TEXT    PRIMARY KEY,
     domain             TEXT    NOT NULL,
     cell_id            TEXT    NOT NULL DEFAULT '',
     state              INTEGER NOT NULL,
     created_at         INTEGER NOT NULL,
     updated_at         INTEGER NOT NULL,
     first_completed_at INTEGER NOT NULL DEFAULT 0,
     -- The encoded Task as .r3 readers get it.
     record             BLOB    NOT NULL,
     -- The encoded Task as .r2 readers get it; NULL when it equals record (no image layers).
     record_r2          BLOB
   );
   CREATE INDEX tasks_by_domain ON tasks (domain);
   CREATE INDEX tasks_by_cell ON tasks (cell_id);
   CREATE INDEX tasks_by_state ON tasks (state, updated_at);

   CREATE TABLE desired_lrps (
     process_guid           TEXT    PRIMARY KEY,
     domain                 TEXT    NOT NULL,
     instances              INTEGER NOT NULL,
     annotation             TEXT    NOT NULL,
     modification_tag_epoch TEXT    NOT NULL,
     modification_tag_index INTEGER NOT NULL,
     record                 BLOB    NOT NULL,
     record_r2              BLOB,
     -- Encoded DesiredLRPSchedulingInfo and routing-info DesiredLRP, kept ready for bulk reads.
     scheduling_info        BLOB    NOT NULL,
     routing_info           BLOB    NOT NULL
   );
   CREATE INDEX desired_lrps_by_domain ON desired_lrps (domain);

   CREATE TABLE actual_lrps (
     process_guid   TEXT    NOT NULL,
     instance_index INTEGER NOT NULL,
     -- ActualLRP.Presence: 0 ordinary, 1 evacuating, 2 suspect.
     presence       INTEGER NOT NULL,
     domain         TEXT    NOT NULL,
     state          TEXT    NOT NULL,
     cell_id        TEXT    NOT NULL DEFAULT '',
     instance_guid  TEXT    NOT NULL DEFAULT '',
     crash_count    INTEGER NOT NULL DEFAULT 0,
     since          INTEGER NOT NULL,
     record         BLOB    NOT NULL,
     PRIMARY KEY (process_guid, instance_index, presence)
   );
   CREATE INDEX actual_lrps_by_domain ON actual_lrps (domain);
   CREATE INDEX actual_lrps_by_cell ON actual_lrps (cell_id);
   CREATE INDEX actual_lrps_by_state ON actual_lrps (state, since);`,
];

export const DIEGO_SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating when absent) the database under dataDir and migrates it to this build's schema. */
export function openDiegoDatabase(dataDir: string): DiegoDatabase {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, DIEGO_DATABASE_FILE));
  try {
    // Records of a few KB (an LRP with an SSH key in its routes) fit a 16 KB page without
    // overflow chains; only takes effect when the file is new.
    db.pragma('page_size = 16384');
    db.pragma('journal_mode = WAL');
    // WAL makes NORMAL durable against application crashes; only a power loss can drop the
    // last transactions, which a single-machine development Diego accepts for the speed.
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    // Bulk reads (every scheduling info at once) copy straight from the mapped file instead of
    // through the page cache, about twice as fast at 100k+ rows.
    db.pragma('mmap_size = 1073741824');
    migrateDiegoSchema(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

export function diegoSchemaVersion(db: DiegoDatabase): number {
  const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
  if (exists === undefined) return 0;
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  return row?.version ?? 0;
}

export function migrateDiegoSchema(db: DiegoDatabase): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const current = diegoSchemaVersion(db);
  if (current > DIEGO_SCHEMA_VERSION) {
    throw new DiegoSchemaError(
      `diego database schema version ${current} is newer than this build supports (${DIEGO_SCHEMA_VERSION})`,
    );
  }
  db.transaction(() => {
    for (let version = current + 1; version <= DIEGO_SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version - 1]!);
    db.prepare('DELETE FROM schema_version').run();
    db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(DIEGO_SCHEMA_VERSION);
  }).immediate();
}
