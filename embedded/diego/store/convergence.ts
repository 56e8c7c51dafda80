// The reads convergence makes, as single SQL queries over the indexed columns (the BBS's
// db/sqldb/lrp_convergence.go and task_convergence.go do the same), so a pass over many records
// decodes only the few that need work.
import { ActualLRP, ActualLRP_Presence } from '../../../gen/diego/bbs/v1/actual_lrp.js';
import { Task_State } from '../../../gen/diego/bbs/v1/task.js';
import type { DiegoDatabase } from './schema.js';

export interface InstanceCount {
  processGuid: string;
  instances: number;
  domain: string;
  /** Indices of the ordinary records that exist. */
  indices: number[];
}

export interface CrashedInstance {
  processGuid: string;
  index: number;
  since: bigint;
  crashCount: number;
}

export interface ConvergenceQueries {
  evacuatingLrps(): ActualLRP[];
  staleUnclaimedLrps(beforeNs: bigint): { processGuid: string; index: number }[];
  /** Ordinary CLAIMED / RUNNING instances on cells not in presentCellIds. */
  lrpsOnMissingCells(presentCellIds: readonly string[]): ActualLRP[];
  /** Desired LRPs whose ordinary instances are not exactly indices 0..instances-1. */
  instanceCountMismatches(): InstanceCount[];
  /** Ordinary instances with no desired LRP, in the given domains. */
  orphanedLrps(domains: readonly string[]): ActualLRP[];
  crashedLrps(): CrashedInstance[];

  tasksCreatedBefore(state: Task_State, beforeNs: bigint): string[];
  pendingTasksToKick(updatedBeforeNs: bigint, createdSinceNs: bigint): string[];
  runningTasksOnMissingCells(presentCellIds: readonly string[]): string[];
  tasksUpdatedBefore(state: Task_State, beforeNs: bigint): string[];
  completedTasksFirstCompletedBefore(beforeNs: bigint): string[];
}

export function createConvergenceQueries(db: DiegoDatabase): ConvergenceQueries {
  const ORDINARY = ActualLRP_Presence.PRESENCE_ORDINARY;
  const evacuating = db.prepare('SELECT record FROM actual_lrps WHERE presence = ?').pluck();
  const staleUnclaimed = db.prepare(
    `SELECT process_guid AS processGuid, instance_index AS "index" FROM actual_lrps
     WHERE presence = ${ORDINARY} AND state = 'UNCLAIMED' AND since < ? ORDER BY process_guid, instance_index`,
  );
  const onMissingCells = db
    .prepare(
      `SELECT record FROM actual_lrps
       WHERE presence = ${ORDINARY} AND state IN ('CLAIMED', 'RUNNING')
         AND cell_id NOT IN (SELECT value FROM json_each(?)) ORDER BY process_guid, instance_index`,
    )
    .pluck();
  const counts = db.prepare(
    `SELECT d.process_guid AS processGuid, d.instances AS instances, d.domain AS domain,
            group_concat(a.instance_index) AS indices
     FROM desired_lrps d
     LEFT JOIN actual_lrps a ON a.process_guid = d.process_guid AND a.presence = ${ORDINARY}
     GROUP BY d.process_guid
     HAVING COUNT(a.instance_index) <> d.instances OR MAX(a.instance_index) >= d.instances
     ORDER BY d.process_guid`,
  );
  const orphans = db
    .prepare(
      `SELECT a.record FROM actual_lrps a
       WHERE a.presence = ${ORDINARY}
         AND a.domain IN (SELECT value FROM json_each(?))
         AND NOT EXISTS (SELECT 1 FROM desired_lrps d WHERE d.process_guid = a.process_guid)
       ORDER BY a.process_guid, a.instance_index`,
    )
    .pluck();
  const crashed = db
    .prepare(
      `SELECT process_guid AS processGuid, instance_index AS "index", since, crash_count AS crashCount
       FROM actual_lrps WHERE presence = ${ORDINARY} AND state = 'CRASHED' ORDER BY process_guid, instance_index`,
    )
    .safeIntegers(true);

  const taskGuids = (sql: string) => db.prepare(sql).pluck();
  const createdBefore = taskGuids('SELECT guid FROM tasks WHERE state = ? AND created_at < ? ORDER BY created_at');
  const pendingToKick = taskGuids(
    `SELECT guid FROM tasks WHERE state = ${Task_State.STATE_PENDING} AND updated_at < ? AND created_at >= ? ORDER BY created_at`,
  );
  const runningOnMissing = taskGuids(
    `SELECT guid FROM tasks WHERE state = ${Task_State.STATE_RUNNING}
     AND cell_id NOT IN (SELECT value FROM json_each(?)) ORDER BY created_at`,
  );
  const updatedBefore = taskGuids('SELECT guid FROM tasks WHERE state = ? AND updated_at < ? ORDER BY created_at');
  const firstCompletedBefore = taskGuids(
    `SELECT guid FROM tasks WHERE state = ${Task_State.STATE_COMPLETED} AND first_completed_at < ? ORDER BY created_at`,
  );

  const decode = (records: unknown[]) => (records as Buffer[]).map((record) => ActualLRP.decode(record));

  return {
    evacuatingLrps: () => decode(evacuating.all(ActualLRP_Presence.PRESENCE_EVACUATING)),
    staleUnclaimedLrps: (beforeNs) => staleUnclaimed.all(beforeNs) as { processGuid: string; index: number }[],
    lrpsOnMissingCells: (present) => decode(onMissingCells.all(JSON.stringify(present))),
    instanceCountMismatches: () =>
      (counts.all() as { processGuid: string; instances: number; domain: string; indices: string | null }[]).map((row) => ({
        ...row,
        indices: row.indices === null ? [] : row.indices.split(',').map(Number),
      })),
    orphanedLrps: (domains) => decode(orphans.all(JSON.stringify(domains))),
    crashedLrps: () =>
      (crashed.all() as { processGuid: string; index: bigint; since: bigint; crashCount: bigint }[]).map((row) => ({
        processGuid: row.processGuid,
        index: Number(row.index),
        since: row.since,
        crashCount: Number(row.crashCount),
      })),

    tasksCreatedBefore: (state, beforeNs) => createdBefore.all(state, beforeNs) as string[],
    pendingTasksToKick: (updatedBeforeNs, createdSinceNs) => pendingToKick.all(updatedBeforeNs, createdSinceNs) as string[],
    runningTasksOnMissingCells: (present) => runningOnMissing.all(JSON.stringify(present)) as string[],
    tasksUpdatedBefore: (state, beforeNs) => updatedBefore.all(state, beforeNs) as string[],
    completedTasksFirstCompletedBefore: (beforeNs) => firstCompletedBefore.all(beforeNs) as string[],
  };
}
