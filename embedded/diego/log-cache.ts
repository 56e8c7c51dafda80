// Logs and container metrics, read the way log-cache serves them: `GET /api/v1/read/<source_id>`
// answers `{"envelopes":{"batch":[...]}}` with loggregator v2 envelopes as JSON (int64 values as
// strings, snake_case keys), filtered by [start_time, end_time), envelope_types, limit (default
// 100, at most 1000) and descending. `GET /api/v1/meta` lists the source ids held.
//
// The cell feeds it in-process (appendLog, appendContainerMetrics, appendEnvelope). Each source id
// keeps its newest envelopes in memory, bounded; log lines are also written, bounded per source,
// to a small SQLite file beside the BBS's, so `cf logs --recent` survives a restart. Metrics are
// only ever recent, so they stay in memory.
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../../lib/log.js';
import type { Clock } from './clock.js';

export const LOG_CACHE_DATABASE_FILE = 'log-cache.sqlite3';
export const DEFAULT_READ_LIMIT = 100;
export const MAX_READ_LIMIT = 1000;

export type EnvelopeType = 'LOG' | 'COUNTER' | 'GAUGE' | 'TIMER' | 'EVENT';

/** A loggregator v2 envelope as log-cache's JSON gateway writes it. */
export interface LogEnvelope {
  /** Nanoseconds since the epoch, as a decimal string. */
  timestamp: string;
  source_id: string;
  instance_id: string;
  deprecated_tags?: Record<string, unknown>;
  tags: Record<string, string>;
  log?: { payload: string; type: 'OUT' | 'ERR' };
  counter?: { name: string; delta?: string; total: string };
  gauge?: { metrics: Record<string, { unit: string; value: number }> };
  timer?: { name: string; start: string; stop: string };
  event?: { title: string; body: string };
}

export interface ContainerMetrics {
  sourceId: string;
  /** The instance index, as log-cache's instance_id carries it. */
  instanceId: string;
  cpuPercentage: number;
  memoryBytes: number;
  diskBytes: number;
  memoryQuotaBytes?: number;
  diskQuotaBytes?: number;
  /** The instance's metric tags (process_id, app_id, ...), resolved. */
  tags?: Record<string, string>;
}

export interface ReadQuery {
  startTime?: bigint;
  endTime?: bigint;
  envelopeTypes?: readonly EnvelopeType[];
  limit?: number;
  descending?: boolean;
}

export interface LogCacheOptions {
  clock: Clock;
  logger: Logger;
  /** Newest envelopes kept in memory per source id (log-cache's max_per_source). */
  maxEnvelopesPerSource: number;
  /** Source ids held at once; the one written least recently goes first. */
  maxSources: number;
  /** Where log lines are kept across restarts; memory only when absent. */
  dataDir?: string;
  /** Log lines kept on disk per source id. */
  maxPersistedLogsPerSource: number;
  /** How long appended log lines may wait before they are written in one transaction. */
  flushIntervalMs: number;
}

export interface LogCache {
  appendEnvelope(envelope: Partial<LogEnvelope> & { source_id: string }): void;
  appendLog(sourceId: string, instanceId: string, line: string | Buffer, stream?: 'OUT' | 'ERR', tags?: Record<string, string>): void;
  appendContainerMetrics(metrics: ContainerMetrics): void;
  read(sourceId: string, query?: ReadQuery): LogEnvelope[];
  /** Answers GET /api/v1/read/... and /api/v1/meta; false when the path is not the log-cache API's. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Writes what is pending and closes the file. */
  close(): void;
}

interface Held {
  at: bigint;
  type: EnvelopeType;
  envelope: LogEnvelope;
}

interface Source {
  envelopes: Held[];
  expired: number;
  lastWriteMs: number;
}

const ENVELOPE_TYPES: readonly EnvelopeType[] = ['LOG', 'COUNTER', 'GAUGE', 'TIMER', 'EVENT'];

function typeOf(envelope: Partial<LogEnvelope>): EnvelopeType | undefined {
  if (envelope.log) return 'LOG';
  if (envelope.counter) return 'COUNTER';
  if (envelope.gauge) return 'GAUGE';
  if (envelope.timer) return 'TIMER';
  if (envelope.event) return 'EVENT';
  return undefined;
}

/** The index of the first held envelope at or after `at` (binary search; envelopes are sorted). */
function lowerBound(held: readonly Held[], at: bigint): number {
  let low = 0;
  let high = held.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (held[middle]!.at < at) low = middle + 1;
    else high = middle;
  }
  return low;
}

export function createLogCache(options: LogCacheOptions): LogCache {
  const { clock } = options;
  const logger = options.logger.child({ session: 'log-cache' });
  const sources = new Map<string, Source>();
  const store = options.dataDir === undefined ? undefined : openLogStore(options.dataDir, options.maxPersistedLogsPerSource);
  const pendingLogs: LogEnvelope[] = [];
  let flushTimer: NodeJS.Timeout | undefined;

  function sourceFor(sourceId: string): Source {
    let source = sources.get(sourceId);
    if (source === undefined) {
      if (sources.size >= options.maxSources) evictOldestSource();
      source = { envelopes: [], expired: 0, lastWriteMs: clock.nowMs() };
      sources.set(sourceId, source);
    }
    return source;
  }

  function evictOldestSource(): void {
    let oldest: string | undefined;
    let oldestMs = Infinity;
    for (const [sourceId, source] of sources) {
      if (source.lastWriteMs < oldestMs) {
        oldest = sourceId;
        oldestMs = source.lastWriteMs;
      }
    }
    if (oldest !== undefined) sources.delete(oldest);
  }

  function hold(envelope: LogEnvelope, type: EnvelopeType): void {
    const source = sourceFor(envelope.source_id);
    const at = BigInt(envelope.timestamp);
    const held = source.envelopes;
    // Appends are nearly always in time order; an older one is slotted in place.
    if (held.length === 0 || held[held.length - 1]!.at <= at) held.push({ at, type, envelope });
    else held.splice(lowerBound(held, at + 1n), 0, { at, type, envelope });
    source.lastWriteMs = clock.nowMs();
    // Trimmed in slices of a tenth, so a full source does not shift its array on every append;
    // reads only ever see the newest maxEnvelopesPerSource.
    const overflow = held.length - options.maxEnvelopesPerSource;
    if (overflow >= Math.max(1, Math.ceil(options.maxEnvelopesPerSource / 10))) {
      held.splice(0, overflow);
      source.expired += overflow;
    }
  }

  function visible(sourceId: string): Held[] {
    const held = sources.get(sourceId)?.envelopes ?? [];
    const overflow = held.length - options.maxEnvelopesPerSource;
    return overflow > 0 ? held.slice(overflow) : held;
  }

  function scheduleFlush(): void {
    if (store === undefined) return;
    if (pendingLogs.length >= 1000) {
      flush();
      return;
    }
    if (flushTimer !== undefined) return;
    flushTimer = setTimeout(flush, options.flushIntervalMs);
    flushTimer.unref();
  }

  function flush(): void {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (store === undefined || pendingLogs.length === 0) return;
    try {
      store.write(pendingLogs.splice(0));
    } catch (err) {
      logger.error({ err }, 'failed-to-persist-logs');
    }
  }

  function append(input: Partial<LogEnvelope> & { source_id: string }): void {
    const type = typeOf(input);
    if (!input.source_id || type === undefined) {
      logger.debug({ source_id: input.source_id }, 'envelope-dropped');
      return;
    }
    const envelope: LogEnvelope = {
      ...input,
      timestamp: input.timestamp && /^\d+$/.test(input.timestamp) ? input.timestamp : clock.nowNs().toString(),
      source_id: input.source_id,
      instance_id: input.instance_id ?? '',
      deprecated_tags: input.deprecated_tags ?? {},
      tags: input.tags ?? {},
    };
    hold(envelope, type);
    if (type === 'LOG' && store !== undefined) {
      pendingLogs.push(envelope);
      scheduleFlush();
    }
  }

  function read(sourceId: string, query: ReadQuery = {}): LogEnvelope[] {
    const held = visible(sourceId);
    const start = query.startTime ?? 0n;
    const end = query.endTime ?? clock.nowNs() + 1n;
    const limit = query.limit ?? DEFAULT_READ_LIMIT;
    const types = query.envelopeTypes !== undefined && query.envelopeTypes.length > 0 ? new Set(query.envelopeTypes) : undefined;
    const out: LogEnvelope[] = [];
    const first = lowerBound(held, start);
    const last = lowerBound(held, end) - 1;
    const wanted = (item: Held) => types === undefined || types.has(item.type);
    if (query.descending) {
      for (let i = last; i >= first && out.length < limit; i--) if (wanted(held[i]!)) out.push(held[i]!.envelope);
    } else {
      for (let i = first; i <= last && out.length < limit; i++) if (wanted(held[i]!)) out.push(held[i]!.envelope);
    }
    return out;
  }

  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://log-cache');
    if (url.pathname === '/api/v1/meta') {
      if (!answerGetOnly(req, res)) return true;
      const meta: Record<string, { count: string; expired: string; oldestTimestamp: string; newestTimestamp: string }> = {};
      for (const sourceId of [...sources.keys()].sort()) {
        const held = visible(sourceId);
        if (held.length === 0) continue;
        const source = sources.get(sourceId)!;
        meta[sourceId] = {
          count: String(held.length),
          expired: String(source.expired + source.envelopes.length - held.length),
          oldestTimestamp: held[0]!.at.toString(),
          newestTimestamp: held[held.length - 1]!.at.toString(),
        };
      }
      writeJson(res, 200, { meta });
      return true;
    }
    if (!url.pathname.startsWith('/api/v1/read/')) return false;
    if (!answerGetOnly(req, res)) return true;
    let sourceId: string;
    try {
      sourceId = decodeURIComponent(url.pathname.slice('/api/v1/read/'.length));
    } catch {
      writeJson(res, 400, gatewayError('source_id is not valid'));
      return true;
    }
    const query = parseReadQuery(url.searchParams);
    if (typeof query === 'string') {
      writeJson(res, 400, gatewayError(query));
      return true;
    }
    writeJson(res, 200, { envelopes: { batch: read(sourceId, query) } });
    return true;
  }

  if (store !== undefined) {
    for (const envelope of store.load()) hold(envelope, 'LOG');
  }

  return {
    appendEnvelope: append,
    appendLog(sourceId, instanceId, line, stream = 'OUT', tags = {}) {
      const payload = (typeof line === 'string' ? Buffer.from(line, 'utf8') : line).toString('base64');
      append({ source_id: sourceId, instance_id: instanceId, tags, log: { payload, type: stream } });
    },
    appendContainerMetrics(metrics) {
      const gauges: Record<string, { unit: string; value: number }> = {
        cpu: { unit: 'percentage', value: metrics.cpuPercentage },
        memory: { unit: 'bytes', value: metrics.memoryBytes },
        disk: { unit: 'bytes', value: metrics.diskBytes },
      };
      if (metrics.memoryQuotaBytes !== undefined) gauges.memory_quota = { unit: 'bytes', value: metrics.memoryQuotaBytes };
      if (metrics.diskQuotaBytes !== undefined) gauges.disk_quota = { unit: 'bytes', value: metrics.diskQuotaBytes };
      append({ source_id: metrics.sourceId, instance_id: metrics.instanceId, tags: metrics.tags ?? {}, gauge: { metrics: gauges } });
    },
    read,
    handle,
    close() {
      flush();
      store?.close();
    },
  };
}

/** Query parameters as log-cache's gateway reads them; a string is the 400 message. */
export function parseReadQuery(params: URLSearchParams): ReadQuery | string {
  const int64 = (name: string): bigint | undefined | string => {
    const value = params.get(name);
    if (value === null || value === '') return undefined;
    return /^-?\d+$/.test(value) ? BigInt(value) : `${name} must be an integer`;
  };
  const startTime = int64('start_time');
  const endTime = int64('end_time');
  const limit = int64('limit');
  for (const value of [startTime, endTime, limit]) if (typeof value === 'string') return value;
  if (typeof limit === 'bigint' && limit > BigInt(MAX_READ_LIMIT)) return `Limit (${limit}) must be ${MAX_READ_LIMIT} or less`;
  if (typeof limit === 'bigint' && limit < 0n) return 'Limit must be positive';
  const types: EnvelopeType[] = [];
  for (const raw of [...params.getAll('envelope_types'), ...params.getAll('envelope_type')]) {
    const name = raw.toUpperCase();
    if (name === 'ANY') continue;
    if (!ENVELOPE_TYPES.includes(name as EnvelopeType)) return `invalid envelope type ${raw}`;
    types.push(name as EnvelopeType);
  }
  const descending = params.get('descending');
  if (descending !== null && !['true', 'false', '1', '0', ''].includes(descending)) return 'descending must be a boolean';
  return {
    startTime: startTime as bigint | undefined,
    // An end_time of 0 is proto's "unset": now.
    endTime: endTime === 0n ? undefined : (endTime as bigint | undefined),
    envelopeTypes: types,
    limit: limit === undefined || limit === 0n ? DEFAULT_READ_LIMIT : Number(limit),
    descending: descending === 'true' || descending === '1',
  };
}

/** grpc-gateway's error body for INVALID_ARGUMENT. */
function gatewayError(message: string) {
  return { code: 3, message, details: [] };
}

function answerGetOnly(req: IncomingMessage, res: ServerResponse): boolean {
  req.resume();
  if (req.method === 'GET') return true;
  writeJson(res, 405, { code: 12, message: 'Method Not Allowed', details: [] });
  return false;
}

function writeJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

// ------------------------------------------------------------------ the log file

interface LogStore {
  write(envelopes: LogEnvelope[]): void;
  /** The newest persisted lines of every source, oldest first per source. */
  load(): LogEnvelope[];
  close(): void;
}

function openLogStore(dataDir: string, maxPerSource: number): LogStore {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, LOG_CACHE_DATABASE_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS log_envelopes (
             source_id TEXT NOT NULL,
             timestamp INTEGER NOT NULL,
             envelope  TEXT NOT NULL
           );
           CREATE INDEX IF NOT EXISTS log_envelopes_by_source ON log_envelopes (source_id, timestamp);`);
  const insert = db.prepare('INSERT INTO log_envelopes (source_id, timestamp, envelope) VALUES (?, ?, ?)');
  const count = db.prepare('SELECT COUNT(*) FROM log_envelopes WHERE source_id = ?').pluck();
  const trim = db.prepare(
    `DELETE FROM log_envelopes WHERE source_id = ? AND rowid IN (
       SELECT rowid FROM log_envelopes WHERE source_id = ? ORDER BY timestamp LIMIT ?)`,
  );
  const sourceIds = db.prepare('SELECT DISTINCT source_id FROM log_envelopes').pluck();
  const newest = db
    .prepare('SELECT envelope FROM (SELECT envelope, timestamp FROM log_envelopes WHERE source_id = ? ORDER BY timestamp DESC LIMIT ?) ORDER BY timestamp')
    .pluck();
  const write = db.transaction((envelopes: LogEnvelope[]) => {
    const touched = new Set<string>();
    for (const envelope of envelopes) {
      insert.run(envelope.source_id, BigInt(envelope.timestamp), JSON.stringify(envelope));
      touched.add(envelope.source_id);
    }
    for (const sourceId of touched) {
      const overflow = (count.get(sourceId) as number) - maxPerSource;
      if (overflow > 0) trim.run(sourceId, sourceId, overflow);
    }
  });
  return {
    write: (envelopes) => write(envelopes),
    load() {
      const loaded: LogEnvelope[] = [];
      for (const sourceId of sourceIds.all() as string[]) {
        for (const text of newest.all(sourceId, maxPerSource) as string[]) {
          try {
            loaded.push(JSON.parse(text) as LogEnvelope);
          } catch {
            // A damaged line is skipped; the rest of the source still loads.
          }
        }
      }
      return loaded;
    },
    close: () => db.close(),
  };
}
