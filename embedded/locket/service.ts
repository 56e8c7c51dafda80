// The models.Locket service on SQLite, with the real Locket's semantics: one owner per key, a TTL
// refreshed by the owner's next Lock, expiry that frees the key, and the real error codes and
// messages. Expiry is applied before every operation and by a periodic sweep, so an expired lock
// is never visible and never blocks a new owner, whether or not the sweep has run yet.
import {
  TypeCode,
  type FetchAllRequest,
  type FetchRequest,
  type LockRequest,
  type LocketServiceImplementation,
  type ReleaseRequest,
  type Resource,
} from '../../gen/locket/locket.js';
import type { Logger } from '../../lib/log.js';
import { LocketError } from './errors.js';
import { createLockTable, openLocketDatabase, type LocketDatabase, type StoredLock } from './store.js';

export const LOCK_TYPE = 'lock';
export const PRESENCE_TYPE = 'presence';

export interface Clock {
  /** Wall-clock milliseconds since the epoch (expiry times are stored and survive restarts). */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface LocketServiceOptions {
  /** An open database (the caller closes it), or a directory where the service opens its own. */
  db?: LocketDatabase;
  dataDir?: string;
  clock?: Clock;
  logger: Logger;
  /** How often expired resources are deleted in the background; 0 turns the sweep off. */
  sweepIntervalMs?: number;
}

export interface LocketService {
  implementation: LocketServiceImplementation;
  /** Deletes every resource whose TTL has run out; returns how many. */
  sweepExpired(): number;
  /** Stops the sweep and closes the database if the service opened it. */
  close(): void;
}

export const DEFAULT_SWEEP_INTERVAL_MS = 1_000;

export function createLocketService(options: LocketServiceOptions): LocketService {
  if ((options.db === undefined) === (options.dataDir === undefined)) {
    throw new TypeError('createLocketService needs exactly one of db or dataDir');
  }
  const ownsDatabase = options.db === undefined;
  const db = options.db ?? openLocketDatabase(options.dataDir!);
  const table = createLockTable(db);
  const clock = options.clock ?? systemClock;
  const log = options.logger.child({ session: 'locket' });

  function deleteExpired(nowMs: number): number {
    const expired = table.deleteExpired(nowMs);
    for (const lock of expired) {
      log.info({ key: lock.key, owner: lock.owner, type: lock.type, ttl_seconds: lock.ttlSeconds }, 'lock-expired');
    }
    return expired.length;
  }

  /** Runs one operation in a transaction, after expiring what ran out. */
  function operate<T>(fn: (nowMs: number) => T): T {
    return table.transaction(() => {
      const nowMs = clock.now();
      deleteExpired(nowMs);
      return fn(nowMs);
    });
  }

  const implementation: LocketServiceImplementation = {
    lock: answeringWithStatus((request: LockRequest) => {
      const resource = request.resource ?? emptyResource();
      const type = resourceType(resource.type, resource.typeCode);
      const ttlSeconds = Number(request.ttlInSeconds);
      if (!(ttlSeconds > 0)) throw new LocketError('invalidTtl');
      if (resource.owner === '') throw new LocketError('invalidOwner');
      const logData = { key: resource.key, owner: resource.owner, type, ttl_seconds: ttlSeconds };
      const acquired = operate((nowMs) => {
        const held = table.find(resource.key);
        if (held && held.owner !== resource.owner) {
          log.debug({ ...logData, holder: held.owner }, 'lock-collision');
          throw new LocketError('lockCollision');
        }
        table.upsert({
          key: resource.key,
          owner: resource.owner,
          value: resource.value,
          type,
          typeCode: typeCodeOf(type),
          ttlSeconds,
          expiresAtMs: Math.min(nowMs + ttlSeconds * 1000, Number.MAX_SAFE_INTEGER),
        });
        return held === undefined;
      });
      if (acquired) log.info(logData, 'lock-acquired');
      else log.debug(logData, 'lock-refreshed');
      return {};
    }),

    fetch: answeringWithStatus((request: FetchRequest) => {
      const held = operate(() => table.find(request.key));
      if (!held) throw new LocketError('resourceNotFound');
      return { resource: resourceFromRow(held) };
    }),

    release: answeringWithStatus((request: ReleaseRequest) => {
      const resource = request.resource ?? emptyResource();
      operate(() => {
        const held = table.find(resource.key);
        if (!held) throw new LocketError('resourceNotFound');
        if (held.owner !== resource.owner) {
          log.warn({ key: resource.key, owner: resource.owner, holder: held.owner }, 'cannot-release-lock');
          throw new LocketError('lockCollision');
        }
        table.remove(resource.key);
      });
      log.info({ key: resource.key, owner: resource.owner }, 'lock-released');
      return {};
    }),

    fetchAll: answeringWithStatus((request: FetchAllRequest) => {
      const type = resourceType(request.type, request.typeCode);
      const rows = operate(() => table.listByType(type));
      return { resources: rows.map(resourceFromRow) };
    }),
  };

  const sweepExpired = () => table.transaction(() => deleteExpired(clock.now()));
  const sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  const sweeper = sweepIntervalMs > 0 ? setInterval(sweepSafely, sweepIntervalMs) : undefined;
  // The sweep only tidies up (every operation expires first), so it must not keep a process alive.
  sweeper?.unref();

  function sweepSafely(): void {
    try {
      sweepExpired();
    } catch (error) {
      log.error({ err: error }, 'failed-to-sweep-expired-locks');
    }
  }

  let closed = false;
  return {
    implementation,
    sweepExpired,
    close() {
      if (closed) return;
      closed = true;
      if (sweeper) clearInterval(sweeper);
      if (ownsDatabase) db.close();
    },
  };
}

/** The one place Locket domain errors become gRPC statuses. */
function answeringWithStatus<Request, Response>(handle: (request: Request) => Response): (request: Request) => Promise<Response> {
  return async (request) => {
    try {
      return handle(request);
    } catch (error) {
      if (error instanceof LocketError) throw error.toServerError();
      throw error;
    }
  };
}

function emptyResource(): Resource {
  return { key: '', owner: '', value: '', type: '', typeCode: TypeCode.UNKNOWN };
}

/**
 * The stored type string of a request, validated as the real Locket does: type_code wins; with
 * UNKNOWN the deprecated string must be "lock" or "presence"; both given must agree.
 */
export function resourceType(type: string, typeCode: TypeCode): string {
  switch (typeCode) {
    case TypeCode.LOCK:
      if (type !== '' && type !== LOCK_TYPE) throw new LocketError('invalidType');
      return LOCK_TYPE;
    case TypeCode.PRESENCE:
      if (type !== '' && type !== PRESENCE_TYPE) throw new LocketError('invalidType');
      return PRESENCE_TYPE;
    case TypeCode.UNKNOWN:
      if (type === LOCK_TYPE || type === PRESENCE_TYPE) return type;
      throw new LocketError('invalidType');
    default:
      throw new LocketError('invalidType');
  }
}

function typeCodeOf(type: string): TypeCode {
  return type === PRESENCE_TYPE ? TypeCode.PRESENCE : TypeCode.LOCK;
}

/** Both the deprecated type string and the type code, so old and new clients read what they expect. */
function resourceFromRow(row: StoredLock): Resource {
  return { key: row.key, owner: row.owner, value: row.value, type: row.type, typeCode: row.typeCode as TypeCode };
}
