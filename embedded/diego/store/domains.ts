// Domains and their freshness. A consumer (Cloud Controller's sync) upserts its domain with a TTL
// after each clean pass; convergence stops extra instances only in fresh domains. TTL 0 means the
// domain stays fresh forever. Expiry is an absolute wall-clock time so it survives a restart.
import type { DiegoDatabase } from './schema.js';

export interface DomainTable {
  /** Marks domain fresh until expiresAtMs; undefined keeps it fresh forever. */
  upsert(domain: string, expiresAtMs: number | undefined): void;
  /** Domains still fresh at nowMs, by name. */
  fresh(nowMs: number): string[];
}

export function createDomainTable(db: DiegoDatabase): DomainTable {
  const upsert = db.prepare(
    `INSERT INTO domains (domain, expires_at_ms) VALUES (?, ?)
     ON CONFLICT (domain) DO UPDATE SET expires_at_ms = excluded.expires_at_ms`,
  );
  const fresh = db
    .prepare('SELECT domain FROM domains WHERE expires_at_ms IS NULL OR expires_at_ms > ? ORDER BY domain')
    .pluck();
  return {
    upsert: (domain, expiresAtMs) => void upsert.run(domain, expiresAtMs ?? null),
    fresh: (nowMs) => fresh.all(nowMs) as string[],
  };
}
