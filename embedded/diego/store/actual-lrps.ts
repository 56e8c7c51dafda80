// Actual LRP rows: one per (process guid, index, presence). Presence lets an evacuating instance
// and its ordinary replacement share an index, as in the BBS. The record is the encoded ActualLRP;
// state, cell, instance guid, crash count and since are columns too, for the queries cells,
// convergence and the auctioneer will make.
import { ActualLRP, type ActualLRP_Presence } from '../../../gen/diego/bbs/v1/actual_lrp.js';
import { equals, selectBuilder, within } from './query.js';
import type { DiegoDatabase } from './schema.js';

export interface ActualLrpFilter {
  domain?: string;
  cellId?: string;
  processGuid?: string;
  /** An index filter only applies when set; 0 is a real index. */
  index?: number;
  processGuids?: readonly string[];
}

export interface ActualLrpTable {
  /** Inserts a new record; false when that (process guid, index, presence) exists. */
  insert(lrp: ActualLRP): boolean;
  find(processGuid: string, index: number, presence: ActualLRP_Presence): ActualLRP | undefined;
  /** Rewrites an existing record, identified by its key and presence. */
  replace(lrp: ActualLRP): void;
  remove(processGuid: string, index: number, presence: ActualLRP_Presence): boolean;
  records(filter: ActualLrpFilter): Buffer[];
  list(filter: ActualLrpFilter): ActualLRP[];
}

function columnsOf(lrp: ActualLRP) {
  return {
    processGuid: lrp.actualLrpKey?.processGuid ?? '',
    index: lrp.actualLrpKey?.index ?? 0,
    presence: lrp.presence,
    domain: lrp.actualLrpKey?.domain ?? '',
    state: lrp.state,
    cellId: lrp.actualLrpInstanceKey?.cellId ?? '',
    instanceGuid: lrp.actualLrpInstanceKey?.instanceGuid ?? '',
    crashCount: lrp.crashCount,
    since: BigInt(lrp.since || '0'),
    record: ActualLRP.encode(lrp).finish(),
  };
}

export function createActualLrpTable(db: DiegoDatabase): ActualLrpTable {
  const insert = db.prepare(
    `INSERT INTO actual_lrps (process_guid, instance_index, presence, domain, state, cell_id, instance_guid,
       crash_count, since, record)
     VALUES (@processGuid, @index, @presence, @domain, @state, @cellId, @instanceGuid, @crashCount, @since, @record)
     ON CONFLICT (process_guid, instance_index, presence) DO NOTHING`,
  );
  const replace = db.prepare(
    `UPDATE actual_lrps SET domain = @domain, state = @state, cell_id = @cellId, instance_guid = @instanceGuid,
       crash_count = @crashCount, since = @since, record = @record
     WHERE process_guid = @processGuid AND instance_index = @index AND presence = @presence`,
  );
  const find = db
    .prepare('SELECT record FROM actual_lrps WHERE process_guid = ? AND instance_index = ? AND presence = ?')
    .pluck();
  const remove = db.prepare('DELETE FROM actual_lrps WHERE process_guid = ? AND instance_index = ? AND presence = ?');
  const select = selectBuilder(
    db,
    'SELECT record FROM actual_lrps',
    'ORDER BY process_guid, instance_index, presence',
    true,
  );

  const records = (filter: ActualLrpFilter): Buffer[] => {
    const { statement, params } = select([
      equals('domain', filter.domain),
      equals('cell_id', filter.cellId),
      equals('process_guid', filter.processGuid),
      filter.index === undefined ? undefined : { sql: 'instance_index = ?', params: [filter.index] },
      within('process_guid', filter.processGuids),
    ]);
    return statement.all(...params) as Buffer[];
  };

  return {
    insert: (lrp) => insert.run(columnsOf(lrp)).changes === 1,
    find(processGuid, index, presence) {
      const record = find.get(processGuid, index, presence) as Buffer | undefined;
      return record === undefined ? undefined : ActualLRP.decode(record);
    },
    replace: (lrp) => void replace.run(columnsOf(lrp)),
    remove: (processGuid, index, presence) => remove.run(processGuid, index, presence).changes === 1,
    records,
    list: (filter) => records(filter).map((record) => ActualLRP.decode(record)),
  };
}

