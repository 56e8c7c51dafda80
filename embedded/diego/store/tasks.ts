// Task rows: the encoded Task (and its .r2 form when that differs) beside the columns tasks are
// filtered by. Reads for the routes return the stored bytes; reads for code decode them.
import { Task } from '../../../gen/diego/bbs/v1/task.js';
import { needsDowngrade, taskToR2 } from '../downgrade.js';
import { equals, selectBuilder } from './query.js';
import type { DiegoDatabase } from './schema.js';

export interface TaskFilter {
  domain?: string;
  cellId?: string;
}

/** Which encoding a reader gets: .r3 routes see image layers, .r2 routes their rewrite. */
export type TaskFormat = 'r3' | 'r2';

export interface TaskTable {
  /** Inserts a new task; false when the guid is taken. */
  insert(task: Task): boolean;
  find(guid: string): Task | undefined;
  findRecord(guid: string, format: TaskFormat): Buffer | undefined;
  /** Rewrites an existing task (state changes). */
  replace(task: Task): void;
  remove(guid: string): boolean;
  records(filter: TaskFilter, format: TaskFormat): Buffer[];
  list(filter: TaskFilter): Task[];
}

interface TaskColumns {
  guid: string;
  domain: string;
  cellId: string;
  state: number;
  createdAt: bigint;
  updatedAt: bigint;
  firstCompletedAt: bigint;
  record: Uint8Array;
  recordR2: Uint8Array | null;
}

function columnsOf(task: Task): TaskColumns {
  const definition = task.taskDefinition;
  return {
    guid: task.taskGuid,
    domain: task.domain,
    cellId: task.cellId,
    state: task.state,
    createdAt: BigInt(task.createdAt || '0'),
    updatedAt: BigInt(task.updatedAt || '0'),
    firstCompletedAt: BigInt(task.firstCompletedAt || '0'),
    record: Task.encode(task).finish(),
    recordR2: definition !== undefined && needsDowngrade(definition.imageLayers) ? Task.encode(taskToR2(task)).finish() : null,
  };
}

export function createTaskTable(db: DiegoDatabase): TaskTable {
  const insert = db.prepare(
    `INSERT INTO tasks (guid, domain, cell_id, state, created_at, updated_at, first_completed_at, record, record_r2)
     VALUES (@guid, @domain, @cellId, @state, @createdAt, @updatedAt, @firstCompletedAt, @record, @recordR2)
     ON CONFLICT (guid) DO NOTHING`,
  );
  const replace = db.prepare(
    `UPDATE tasks SET domain = @domain, cell_id = @cellId, state = @state, created_at = @createdAt,
       updated_at = @updatedAt, first_completed_at = @firstCompletedAt, record = @record, record_r2 = @recordR2
     WHERE guid = @guid`,
  );
  const findRecord = db.prepare('SELECT record FROM tasks WHERE guid = ?').pluck();
  const findRecordR2 = db.prepare('SELECT coalesce(record_r2, record) FROM tasks WHERE guid = ?').pluck();
  const remove = db.prepare('DELETE FROM tasks WHERE guid = ?');
  const selectR3 = selectBuilder(db, 'SELECT record FROM tasks', 'ORDER BY created_at, guid', true);
  const selectR2 = selectBuilder(db, 'SELECT coalesce(record_r2, record) FROM tasks', 'ORDER BY created_at, guid', true);

  const conditions = (filter: TaskFilter) => [equals('domain', filter.domain), equals('cell_id', filter.cellId)];
  const records = (filter: TaskFilter, format: TaskFormat): Buffer[] => {
    const { statement, params } = (format === 'r2' ? selectR2 : selectR3)(conditions(filter));
    return statement.all(...params) as Buffer[];
  };

  return {
    insert: (task) => insert.run(columnsOf(task)).changes === 1,
    find(guid) {
      const record = findRecord.get(guid) as Buffer | undefined;
      return record === undefined ? undefined : Task.decode(record);
    },
    findRecord: (guid, format) => (format === 'r2' ? findRecordR2 : findRecord).get(guid) as Buffer | undefined,
    replace: (task) => void replace.run(columnsOf(task)),
    remove: (guid) => remove.run(guid).changes === 1,
    records,
    list: (filter) => records(filter, 'r3').map((record) => Task.decode(record)),
  };
}
