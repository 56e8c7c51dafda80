// SQLite storage of the development Cloud Controller (a development stand-in, not Cloud
// Controller): apps, packages, builds, droplets, events, the event ids already received, droplet
// upload jobs and the key that signs blobstore URLs. The schema is versioned and migrated forward
// at open; the blobs themselves are files beside the database (see blobstore.ts).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type CcDatabase = Database.Database;

export const CC_DATABASE_FILE = 'cloud-controller.sqlite3';

/** Raised when the database was written by a newer build. */
export class CcSchemaError extends Error {
  override name = 'CcSchemaError';
}

/** Migration n (1-based) brings the schema from version n-1 to n. Never edit a released step. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE settings (
     key   TEXT PRIMARY KEY,
     value TEXT NOT NULL
   );
   -- id orders the bulk pages (the fingerprint token is {"id": <last id>}), as CC's own table does.
   CREATE TABLE apps (
     id                         INTEGER PRIMARY KEY AUTOINCREMENT,
     guid                       TEXT    NOT NULL UNIQUE,
     name                       TEXT    NOT NULL UNIQUE,
     state                      TEXT    NOT NULL,
     lifecycle                  TEXT    NOT NULL,
     buildpack                  TEXT,
     docker_image               TEXT,
     docker_username            TEXT,
     docker_password            TEXT,
     memory_mb                  INTEGER NOT NULL,
     disk_mb                    INTEGER NOT NULL,
     instances                  INTEGER NOT NULL,
     file_descriptors           INTEGER NOT NULL,
     health_check_type          TEXT    NOT NULL,
     health_check_timeout       INTEGER NOT NULL,
     health_check_http_endpoint TEXT    NOT NULL,
     allow_ssh                  INTEGER NOT NULL,
     environment                TEXT    NOT NULL,
     version                    TEXT    NOT NULL,
     etag                       TEXT    NOT NULL,
     current_droplet_guid       TEXT,
     desired_process_guid       TEXT,
     created_at_ms              INTEGER NOT NULL,
     updated_at_ms              INTEGER NOT NULL
   );
   CREATE INDEX apps_runnable ON apps (state, id);
   CREATE TABLE packages (
     guid          TEXT    PRIMARY KEY,
     app_guid      TEXT    NOT NULL,
     type          TEXT    NOT NULL,
     size          INTEGER NOT NULL,
     sha256        TEXT    NOT NULL,
     created_at_ms INTEGER NOT NULL
   );
   CREATE INDEX packages_by_app ON packages (app_guid, created_at_ms);
   CREATE TABLE builds (
     guid           TEXT    PRIMARY KEY,
     app_guid       TEXT    NOT NULL,
     package_guid   TEXT,
     lifecycle      TEXT    NOT NULL,
     state          TEXT    NOT NULL,
     error_id       TEXT,
     error_message  TEXT,
     droplet_size   INTEGER,
     droplet_md5    TEXT,
     created_at_ms  INTEGER NOT NULL,
     updated_at_ms  INTEGER NOT NULL
   );
   CREATE INDEX builds_by_app ON builds (app_guid, created_at_ms);
   CREATE TABLE droplets (
     guid                   TEXT    PRIMARY KEY,
     app_guid               TEXT    NOT NULL,
     build_guid             TEXT    NOT NULL,
     package_guid           TEXT,
     lifecycle              TEXT    NOT NULL,
     execution_metadata     TEXT    NOT NULL,
     detected_start_command TEXT    NOT NULL,
     start_command          TEXT    NOT NULL,
     buildpack_key          TEXT,
     detected_buildpack     TEXT,
     docker_image           TEXT,
     has_file               INTEGER NOT NULL,
     size                   INTEGER,
     md5                    TEXT,
     created_at_ms          INTEGER NOT NULL
   );
   CREATE INDEX droplets_by_app ON droplets (app_guid, created_at_ms);
   CREATE TABLE events (
     id           INTEGER PRIMARY KEY AUTOINCREMENT,
     guid         TEXT    NOT NULL UNIQUE,
     app_guid     TEXT    NOT NULL,
     app_name     TEXT    NOT NULL,
     type         TEXT    NOT NULL,
     actor        TEXT    NOT NULL,
     metadata     TEXT    NOT NULL,
     timestamp_ms INTEGER NOT NULL
   );
   CREATE INDEX events_by_app ON events (app_guid, id);
   CREATE INDEX events_by_time ON events (timestamp_ms);
   CREATE TABLE received_event_ids (
     id             TEXT    PRIMARY KEY,
     received_at_ms INTEGER NOT NULL
   );
   CREATE INDEX received_event_ids_by_time ON received_event_ids (received_at_ms);
   CREATE TABLE jobs (
     guid          TEXT    PRIMARY KEY,
     status        TEXT    NOT NULL,
     created_at_ms INTEGER NOT NULL
   );
   CREATE INDEX jobs_by_time ON jobs (created_at_ms);`,
];

export const CC_SCHEMA_VERSION = MIGRATIONS.length;

export function openCcDatabase(dataDir: string): CcDatabase {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, CC_DATABASE_FILE));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    migrateCcSchema(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

export function migrateCcSchema(db: CcDatabase): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  const current = row?.version ?? 0;
  if (current > CC_SCHEMA_VERSION) {
    throw new CcSchemaError(`development cloud controller database schema version ${current} is newer than this build supports (${CC_SCHEMA_VERSION})`);
  }
  db.transaction(() => {
    for (let version = current + 1; version <= CC_SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version - 1]!);
    if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(CC_SCHEMA_VERSION);
    else db.prepare('UPDATE schema_version SET version = ?').run(CC_SCHEMA_VERSION);
  })();
}

// ---------------------------------------------------------------------------------------------
// Records

export type AppState = 'STARTED' | 'STOPPED';
export type Lifecycle = 'buildpack' | 'docker';
export type BuildState = 'STAGING' | 'STAGED' | 'FAILED' | 'CANCELED';

export interface AppRecord {
  id: number;
  guid: string;
  name: string;
  state: AppState;
  lifecycle: Lifecycle;
  /** A configured buildpack's name or a custom buildpack URL; null: detect among all configured. */
  buildpack: string | null;
  dockerImage: string | null;
  dockerUsername: string | null;
  /** A secret: sent to the bridge, never logged, never answered. */
  dockerPassword: string | null;
  memoryMb: number;
  diskMb: number;
  instances: number;
  fileDescriptors: number;
  healthCheckType: string;
  healthCheckTimeout: number;
  healthCheckHttpEndpoint: string;
  allowSsh: boolean;
  environment: Record<string, string>;
  /** Changes whenever what runs changes (droplet, environment, limits, start); part of the process guid. */
  version: string;
  /** CC's `updated_at` stamp of the desired state; the bulker compares it with the LRP annotation. */
  etag: string;
  currentDropletGuid: string | null;
  /** The process guid last desired at the bridge, to stop it when another replaces it. */
  desiredProcessGuid: string | null;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface PackageRecord {
  guid: string;
  appGuid: string;
  type: 'zip' | 'tgz';
  size: number;
  sha256: string;
  createdAtMs: number;
}

export interface BuildRecord {
  guid: string;
  appGuid: string;
  packageGuid: string | null;
  lifecycle: Lifecycle;
  state: BuildState;
  errorId: string | null;
  errorMessage: string | null;
  /** Set once the droplet of this build has been uploaded. */
  dropletSize: number | null;
  dropletMd5: string | null;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface DropletRecord {
  guid: string;
  appGuid: string;
  buildGuid: string;
  packageGuid: string | null;
  lifecycle: Lifecycle;
  executionMetadata: string;
  detectedStartCommand: Record<string, string>;
  startCommand: string;
  buildpackKey: string | null;
  detectedBuildpack: string | null;
  dockerImage: string | null;
  /** Docker droplets have no file. */
  hasFile: boolean;
  size: number | null;
  md5: string | null;
  createdAtMs: number;
}

export interface EventRecord {
  id: number;
  guid: string;
  appGuid: string;
  appName: string;
  type: string;
  actor: string;
  metadata: Record<string, unknown>;
  timestampMs: number;
}

// ---------------------------------------------------------------------------------------------
// Queries

interface AppRow {
  id: number;
  guid: string;
  name: string;
  state: string;
  lifecycle: string;
  buildpack: string | null;
  docker_image: string | null;
  docker_username: string | null;
  docker_password: string | null;
  memory_mb: number;
  disk_mb: number;
  instances: number;
  file_descriptors: number;
  health_check_type: string;
  health_check_timeout: number;
  health_check_http_endpoint: string;
  allow_ssh: number;
  environment: string;
  version: string;
  etag: string;
  current_droplet_guid: string | null;
  desired_process_guid: string | null;
  created_at_ms: number;
  updated_at_ms: number;
}

function appFromRow(row: AppRow): AppRecord {
  return {
    id: row.id,
    guid: row.guid,
    name: row.name,
    state: row.state as AppState,
    lifecycle: row.lifecycle as Lifecycle,
    buildpack: row.buildpack,
    dockerImage: row.docker_image,
    dockerUsername: row.docker_username,
    dockerPassword: row.docker_password,
    memoryMb: row.memory_mb,
    diskMb: row.disk_mb,
    instances: row.instances,
    fileDescriptors: row.file_descriptors,
    healthCheckType: row.health_check_type,
    healthCheckTimeout: row.health_check_timeout,
    healthCheckHttpEndpoint: row.health_check_http_endpoint,
    allowSsh: row.allow_ssh !== 0,
    environment: JSON.parse(row.environment) as Record<string, string>,
    version: row.version,
    etag: row.etag,
    currentDropletGuid: row.current_droplet_guid,
    desiredProcessGuid: row.desired_process_guid,
    createdAtMs: row.created_at_ms,
    updatedAtMs: row.updated_at_ms,
  };
}

function appToRow(app: Omit<AppRecord, 'id'>): Omit<AppRow, 'id'> {
  return {
    guid: app.guid,
    name: app.name,
    state: app.state,
    lifecycle: app.lifecycle,
    buildpack: app.buildpack,
    docker_image: app.dockerImage,
    docker_username: app.dockerUsername,
    docker_password: app.dockerPassword,
    memory_mb: app.memoryMb,
    disk_mb: app.diskMb,
    instances: app.instances,
    file_descriptors: app.fileDescriptors,
    health_check_type: app.healthCheckType,
    health_check_timeout: app.healthCheckTimeout,
    health_check_http_endpoint: app.healthCheckHttpEndpoint,
    allow_ssh: app.allowSsh ? 1 : 0,
    environment: JSON.stringify(app.environment),
    version: app.version,
    etag: app.etag,
    current_droplet_guid: app.currentDropletGuid,
    desired_process_guid: app.desiredProcessGuid,
    created_at_ms: app.createdAtMs,
    updated_at_ms: app.updatedAtMs,
  };
}

const PACKAGE_COLUMNS = 'guid, app_guid AS appGuid, type, size, sha256, created_at_ms AS createdAtMs';
const BUILD_COLUMNS = `guid, app_guid AS appGuid, package_guid AS packageGuid, lifecycle, state, error_id AS errorId,
  error_message AS errorMessage, droplet_size AS dropletSize, droplet_md5 AS dropletMd5,
  created_at_ms AS createdAtMs, updated_at_ms AS updatedAtMs`;

interface DropletRow extends Omit<DropletRecord, 'detectedStartCommand' | 'hasFile'> {
  detectedStartCommand: string;
  hasFile: number;
}
const DROPLET_COLUMNS = `guid, app_guid AS appGuid, build_guid AS buildGuid, package_guid AS packageGuid, lifecycle,
  execution_metadata AS executionMetadata, detected_start_command AS detectedStartCommand, start_command AS startCommand,
  buildpack_key AS buildpackKey, detected_buildpack AS detectedBuildpack, docker_image AS dockerImage,
  has_file AS hasFile, size, md5, created_at_ms AS createdAtMs`;
const dropletFromRow = (row: DropletRow): DropletRecord => ({
  ...row,
  detectedStartCommand: JSON.parse(row.detectedStartCommand) as Record<string, string>,
  hasFile: row.hasFile !== 0,
});

interface EventRow extends Omit<EventRecord, 'metadata'> {
  metadata: string;
}
const EVENT_COLUMNS = 'id, guid, app_guid AS appGuid, app_name AS appName, type, actor, metadata, timestamp_ms AS timestampMs';
const eventFromRow = (row: EventRow): EventRecord => ({ ...row, metadata: JSON.parse(row.metadata) as Record<string, unknown> });

export interface EventQuery {
  appGuid?: string;
  types?: readonly string[];
  /** Newest first; at most this many. */
  limit: number;
}

export interface CcStore {
  transaction<T>(fn: () => T): T;
  /** The key that signs blobstore URLs: made once, kept so URLs handed out stay valid across restarts. */
  signingKey(): Buffer;

  insertApp(app: Omit<AppRecord, 'id'>): AppRecord;
  updateApp(app: AppRecord): void;
  deleteApp(guid: string): void;
  appByGuid(guid: string): AppRecord | undefined;
  appByName(name: string): AppRecord | undefined;
  listApps(): AppRecord[];
  /** STARTED apps with a current droplet, in id order after `afterId`: the bulk pages. */
  runnableApps(afterId: number, limit: number): AppRecord[];

  insertPackage(pkg: PackageRecord): void;
  packageByGuid(guid: string): PackageRecord | undefined;
  latestPackage(appGuid: string): PackageRecord | undefined;
  packagesOf(appGuid: string): PackageRecord[];
  deletePackage(guid: string): void;

  insertBuild(build: BuildRecord): void;
  updateBuild(build: BuildRecord): void;
  buildByGuid(guid: string): BuildRecord | undefined;
  /** Newest first; a negative limit is no limit. */
  buildsOf(appGuid: string, limit?: number): BuildRecord[];
  /** Forgets all but the newest `keep` builds of the app. */
  pruneBuilds(appGuid: string, keep: number): void;
  stagingBuildOf(appGuid: string): BuildRecord | undefined;

  insertDroplet(droplet: DropletRecord): void;
  dropletByGuid(guid: string): DropletRecord | undefined;
  /** Newest first. */
  dropletsOf(appGuid: string): DropletRecord[];
  deleteDroplet(guid: string): void;

  insertEvent(event: Omit<EventRecord, 'id'>): void;
  /** Forgets events older than the given time. */
  pruneEvents(beforeMs: number): void;
  events(query: EventQuery): EventRecord[];

  /** Records a report's event id; false when it was seen already. Ids older than `forgetBeforeMs` are forgotten. */
  rememberEventId(id: string, nowMs: number, forgetBeforeMs: number): boolean;
  eventIdSeen(id: string): boolean;

  insertJob(guid: string, status: string, nowMs: number, forgetBeforeMs: number): void;
  jobStatus(guid: string): { status: string; createdAtMs: number } | undefined;

  /** Removes the app's packages, builds and droplets rows (its files are the blobstore's). */
  deleteAppData(appGuid: string): void;
}

export function createCcStore(db: CcDatabase): CcStore {
  const s = {
    getSetting: db.prepare('SELECT value FROM settings WHERE key = ?'),
    putSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?)'),
    insertApp: db.prepare(`INSERT INTO apps (guid, name, state, lifecycle, buildpack, docker_image, docker_username, docker_password,
        memory_mb, disk_mb, instances, file_descriptors, health_check_type, health_check_timeout, health_check_http_endpoint,
        allow_ssh, environment, version, etag, current_droplet_guid, desired_process_guid, created_at_ms, updated_at_ms)
      VALUES (@guid, @name, @state, @lifecycle, @buildpack, @docker_image, @docker_username, @docker_password,
        @memory_mb, @disk_mb, @instances, @file_descriptors, @health_check_type, @health_check_timeout, @health_check_http_endpoint,
        @allow_ssh, @environment, @version, @etag, @current_droplet_guid, @desired_process_guid, @created_at_ms, @updated_at_ms)`),
    updateApp: db.prepare(`UPDATE apps SET name = @name, state = @state, lifecycle = @lifecycle, buildpack = @buildpack,
        docker_image = @docker_image, docker_username = @docker_username, docker_password = @docker_password,
        memory_mb = @memory_mb, disk_mb = @disk_mb, instances = @instances, file_descriptors = @file_descriptors,
        health_check_type = @health_check_type, health_check_timeout = @health_check_timeout,
        health_check_http_endpoint = @health_check_http_endpoint, allow_ssh = @allow_ssh, environment = @environment,
        version = @version, etag = @etag, current_droplet_guid = @current_droplet_guid,
        desired_process_guid = @desired_process_guid, updated_at_ms = @updated_at_ms
      WHERE guid = @guid`),
    deleteApp: db.prepare('DELETE FROM apps WHERE guid = ?'),
    appByGuid: db.prepare('SELECT * FROM apps WHERE guid = ?'),
    appByName: db.prepare('SELECT * FROM apps WHERE name = ?'),
    listApps: db.prepare('SELECT * FROM apps ORDER BY name'),
    runnableApps: db.prepare(`SELECT * FROM apps WHERE state = 'STARTED' AND current_droplet_guid IS NOT NULL AND id > ? ORDER BY id LIMIT ?`),

    insertPackage: db.prepare('INSERT INTO packages (guid, app_guid, type, size, sha256, created_at_ms) VALUES (@guid, @appGuid, @type, @size, @sha256, @createdAtMs)'),
    packageByGuid: db.prepare(`SELECT ${PACKAGE_COLUMNS} FROM packages WHERE guid = ?`),
    latestPackage: db.prepare(`SELECT ${PACKAGE_COLUMNS} FROM packages WHERE app_guid = ? ORDER BY created_at_ms DESC, rowid DESC LIMIT 1`),
    packagesOf: db.prepare(`SELECT ${PACKAGE_COLUMNS} FROM packages WHERE app_guid = ? ORDER BY created_at_ms DESC, rowid DESC`),
    deletePackage: db.prepare('DELETE FROM packages WHERE guid = ?'),

    insertBuild: db.prepare(`INSERT INTO builds (guid, app_guid, package_guid, lifecycle, state, error_id, error_message, droplet_size, droplet_md5, created_at_ms, updated_at_ms)
      VALUES (@guid, @appGuid, @packageGuid, @lifecycle, @state, @errorId, @errorMessage, @dropletSize, @dropletMd5, @createdAtMs, @updatedAtMs)`),
    updateBuild: db.prepare(`UPDATE builds SET state = @state, error_id = @errorId, error_message = @errorMessage, droplet_size = @dropletSize,
        droplet_md5 = @dropletMd5, updated_at_ms = @updatedAtMs WHERE guid = @guid`),
    buildByGuid: db.prepare(`SELECT ${BUILD_COLUMNS} FROM builds WHERE guid = ?`),
    buildsOf: db.prepare(`SELECT ${BUILD_COLUMNS} FROM builds WHERE app_guid = ? ORDER BY created_at_ms DESC, rowid DESC LIMIT ?`),
    pruneBuilds: db.prepare(`DELETE FROM builds WHERE app_guid = ? AND guid NOT IN
        (SELECT guid FROM builds WHERE app_guid = ? ORDER BY created_at_ms DESC, rowid DESC LIMIT ?)`),
    stagingBuildOf: db.prepare(`SELECT ${BUILD_COLUMNS} FROM builds WHERE app_guid = ? AND state = 'STAGING' ORDER BY created_at_ms DESC, rowid DESC LIMIT 1`),

    insertDroplet: db.prepare(`INSERT INTO droplets (guid, app_guid, build_guid, package_guid, lifecycle, execution_metadata, detected_start_command,
        start_command, buildpack_key, detected_buildpack, docker_image, has_file, size, md5, created_at_ms)
      VALUES (@guid, @appGuid, @buildGuid, @packageGuid, @lifecycle, @executionMetadata, @detectedStartCommand,
        @startCommand, @buildpackKey, @detectedBuildpack, @dockerImage, @hasFile, @size, @md5, @createdAtMs)`),
    dropletByGuid: db.prepare(`SELECT ${DROPLET_COLUMNS} FROM droplets WHERE guid = ?`),
    dropletsOf: db.prepare(`SELECT ${DROPLET_COLUMNS} FROM droplets WHERE app_guid = ? ORDER BY created_at_ms DESC, rowid DESC`),
    deleteDroplet: db.prepare('DELETE FROM droplets WHERE guid = ?'),

    pruneEvents: db.prepare('DELETE FROM events WHERE timestamp_ms < ?'),
    insertEvent: db.prepare(`INSERT INTO events (guid, app_guid, app_name, type, actor, metadata, timestamp_ms)
      VALUES (@guid, @appGuid, @appName, @type, @actor, @metadata, @timestampMs)`),

    forgetEventIds: db.prepare('DELETE FROM received_event_ids WHERE received_at_ms < ?'),
    rememberEventId: db.prepare('INSERT OR IGNORE INTO received_event_ids (id, received_at_ms) VALUES (?, ?)'),
    eventIdSeen: db.prepare('SELECT 1 FROM received_event_ids WHERE id = ?'),

    forgetJobs: db.prepare('DELETE FROM jobs WHERE created_at_ms < ?'),
    insertJob: db.prepare('INSERT INTO jobs (guid, status, created_at_ms) VALUES (?, ?, ?)'),
    jobStatus: db.prepare('SELECT status, created_at_ms AS createdAtMs FROM jobs WHERE guid = ?'),

    deletePackagesOf: db.prepare('DELETE FROM packages WHERE app_guid = ?'),
    deleteBuildsOf: db.prepare('DELETE FROM builds WHERE app_guid = ?'),
    deleteDropletsOf: db.prepare('DELETE FROM droplets WHERE app_guid = ?'),
  };

  let key: Buffer | undefined;

  return {
    transaction: (fn) => db.transaction(fn).immediate(),

    signingKey() {
      if (key) return key;
      const row = s.getSetting.get('blobstore_signing_key') as { value: string } | undefined;
      if (row) return (key = Buffer.from(row.value, 'hex'));
      const made = randomBytes(32);
      s.putSetting.run('blobstore_signing_key', made.toString('hex'));
      return (key = made);
    },

    insertApp(app) {
      const info = s.insertApp.run(appToRow(app));
      return { ...app, id: Number(info.lastInsertRowid) };
    },
    updateApp: (app) => void s.updateApp.run(appToRow(app)),
    deleteApp: (guid) => void s.deleteApp.run(guid),
    appByGuid(guid) {
      const row = s.appByGuid.get(guid) as AppRow | undefined;
      return row && appFromRow(row);
    },
    appByName(name) {
      const row = s.appByName.get(name) as AppRow | undefined;
      return row && appFromRow(row);
    },
    listApps: () => (s.listApps.all() as AppRow[]).map(appFromRow),
    runnableApps: (afterId, limit) => (s.runnableApps.all(afterId, limit) as AppRow[]).map(appFromRow),

    insertPackage: (pkg) => void s.insertPackage.run(pkg),
    packageByGuid: (guid) => s.packageByGuid.get(guid) as PackageRecord | undefined,
    latestPackage: (appGuid) => s.latestPackage.get(appGuid) as PackageRecord | undefined,
    packagesOf: (appGuid) => s.packagesOf.all(appGuid) as PackageRecord[],
    deletePackage: (guid) => void s.deletePackage.run(guid),

    insertBuild: (build) => void s.insertBuild.run(build),
    updateBuild: (build) => void s.updateBuild.run(build),
    buildByGuid: (guid) => s.buildByGuid.get(guid) as BuildRecord | undefined,
    buildsOf: (appGuid, limit = 50) => s.buildsOf.all(appGuid, limit) as BuildRecord[],
    pruneBuilds: (appGuid, keep) => void s.pruneBuilds.run(appGuid, appGuid, keep),
    stagingBuildOf: (appGuid) => s.stagingBuildOf.get(appGuid) as BuildRecord | undefined,

    insertDroplet: (droplet) =>
      void s.insertDroplet.run({ ...droplet, detectedStartCommand: JSON.stringify(droplet.detectedStartCommand), hasFile: droplet.hasFile ? 1 : 0 }),
    dropletByGuid(guid) {
      const row = s.dropletByGuid.get(guid) as DropletRow | undefined;
      return row && dropletFromRow(row);
    },
    dropletsOf: (appGuid) => (s.dropletsOf.all(appGuid) as DropletRow[]).map(dropletFromRow),
    deleteDroplet: (guid) => void s.deleteDroplet.run(guid),

    insertEvent: (event) => void s.insertEvent.run({ ...event, metadata: JSON.stringify(event.metadata) }),
    pruneEvents: (beforeMs) => void s.pruneEvents.run(beforeMs),
    events(query) {
      const where: string[] = [];
      const params: unknown[] = [];
      if (query.appGuid !== undefined) {
        where.push('app_guid = ?');
        params.push(query.appGuid);
      }
      if (query.types && query.types.length > 0) {
        where.push(`type IN (${query.types.map(() => '?').join(', ')})`);
        params.push(...query.types);
      }
      const sql = `SELECT ${EVENT_COLUMNS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
      return (db.prepare(sql).all(...params, query.limit) as EventRow[]).map(eventFromRow);
    },

    rememberEventId(id, nowMs, forgetBeforeMs) {
      s.forgetEventIds.run(forgetBeforeMs);
      return s.rememberEventId.run(id, nowMs).changes === 1;
    },
    eventIdSeen: (id) => s.eventIdSeen.get(id) !== undefined,

    insertJob(guid, status, nowMs, forgetBeforeMs) {
      s.forgetJobs.run(forgetBeforeMs);
      s.insertJob.run(guid, status, nowMs);
    },
    jobStatus: (guid) => s.jobStatus.get(guid) as { status: string; createdAtMs: number } | undefined,

    deleteAppData(appGuid) {
      s.deletePackagesOf.run(appGuid);
      s.deleteBuildsOf.run(appGuid);
      s.deleteDropletsOf.run(appGuid);
    },
  };
}
