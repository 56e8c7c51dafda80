// Filtered SELECTs over optional equality filters. Each combination of present filters gets its
// own prepared statement (so SQLite can use the matching index), prepared on first use; the
// combinations are few and fixed by the callers, so the cache stays small.
import type { Statement } from 'better-sqlite3';
import type { DiegoDatabase } from './schema.js';

export interface Condition {
  /** SQL for one condition with one or more '?' placeholders, e.g. 'domain = ?'. */
  sql: string;
  params: unknown[];
}

export type SelectBuilder = (conditions: readonly (Condition | undefined)[]) => { statement: Statement; params: unknown[] };

/**
 * select is the part before WHERE; orderBy (may be '') follows it. When pluck is set, rows are the
 * first column's value alone.
 */
export function selectBuilder(db: DiegoDatabase, select: string, orderBy: string, pluck: boolean): SelectBuilder {
  const cache = new Map<string, Statement>();
  return (conditions) => {
    const present = conditions.filter((condition): condition is Condition => condition !== undefined);
    const where = present.length === 0 ? '' : ` WHERE ${present.map((condition) => condition.sql).join(' AND ')}`;
    const sql = `${select}${where}${orderBy === '' ? '' : ` ${orderBy}`}`;
    let statement = cache.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      if (pluck) statement.pluck();
      cache.set(sql, statement);
    }
    return { statement, params: present.flatMap((condition) => condition.params) };
  };
}

/** An equality condition, absent when value is '' or undefined (the BBS's "no filter"). */
export function equals(column: string, value: string | number | undefined): Condition | undefined {
  return value === undefined || value === '' ? undefined : { sql: `${column} = ?`, params: [value] };
}

/** A membership condition over a list passed as one JSON parameter; absent for an empty list. */
export function within(column: string, values: readonly string[] | undefined): Condition | undefined {
  return values === undefined || values.length === 0
    ? undefined
    : { sql: `${column} IN (SELECT value FROM json_each(?))`, params: [JSON.stringify(values)] };
}
