// Desired LRP rows. Besides the encoded DesiredLRP (and its .r2 form when image layers make it
// differ) each row keeps its scheduling info and routing info already encoded, because those are
// what the bulk readers fetch for every LRP at once (Cloud Controller's sync reads all scheduling
// infos of cf-apps every 30 s; the route-emitter reads all routing infos).
import { DesiredLRP, DesiredLRPSchedulingInfo } from '../../../gen/diego/bbs/v1/desired_lrp.js';
import { desiredLrpToR2, needsDowngrade } from '../downgrade.js';
import { equals, selectBuilder, within } from './query.js';
import type { DiegoDatabase } from './schema.js';

export interface DesiredLrpFilter {
  domain?: string;
  processGuids?: readonly string[];
}

/** The encodings a desired LRP is read in. */
export type DesiredLrpFormat = 'r3' | 'r2' | 'scheduling-info' | 'routing-info';

export interface DesiredLrpTable {
  /** Inserts a new desired LRP; false when the process guid is taken. */
  insert(lrp: DesiredLRP): boolean;
  find(processGuid: string): DesiredLRP | undefined;
  findRecord(processGuid: string, format: DesiredLrpFormat): Buffer | undefined;
  replace(lrp: DesiredLRP): void;
  remove(processGuid: string): boolean;
  records(filter: DesiredLrpFilter, format: DesiredLrpFormat): Buffer[];
  list(filter: DesiredLrpFilter): DesiredLRP[];
  schedulingInfos(filter: DesiredLrpFilter): DesiredLRPSchedulingInfo[];
}

/** The cheap projection the auctioneer and Cloud Controller's sync read. */
export function schedulingInfoOf(lrp: DesiredLRP): DesiredLRPSchedulingInfo {
  return {
    desiredLrpKey: { processGuid: lrp.processGuid, domain: lrp.domain, logGuid: lrp.logGuid },
    annotation: lrp.annotation,
    instances: lrp.instances,
    desiredLrpResource: { memoryMb: lrp.memoryMb, diskMb: lrp.diskMb, rootFs: lrp.rootFs, maxPids: lrp.maxPids },
    // The BBS always sends these three, empty or not.
    routes: lrp.routes ?? { routes: {} },
    modificationTag: lrp.modificationTag ?? { epoch: '', index: 0 },
    volumePlacement: { driverNames: lrp.volumeMounts.map((mount) => mount.driver) },
    placementTags: lrp.placementTags,
  };
}

/** The routing subset (models.NewDesiredLRPRoutingInfo): a DesiredLRP with only these fields. */
export function routingInfoOf(lrp: DesiredLRP): DesiredLRP {
  return DesiredLRP.fromPartial({
    processGuid: lrp.processGuid,
    domain: lrp.domain,
    logGuid: lrp.logGuid,
    instances: lrp.instances,
    routes: lrp.routes ?? { routes: {} },
    modificationTag: lrp.modificationTag ?? { epoch: '', index: 0 },
    metricTags: lrp.metricTags,
  });
}

function columnsOf(lrp: DesiredLRP) {
  return {
    processGuid: lrp.processGuid,
    domain: lrp.domain,
    instances: lrp.instances,
    annotation: lrp.annotation,
    epoch: lrp.modificationTag?.epoch ?? '',
    index: lrp.modificationTag?.index ?? 0,
    record: DesiredLRP.encode(lrp).finish(),
    recordR2: needsDowngrade(lrp.imageLayers) ? DesiredLRP.encode(desiredLrpToR2(lrp)).finish() : null,
    schedulingInfo: DesiredLRPSchedulingInfo.encode(schedulingInfoOf(lrp)).finish(),
    routingInfo: DesiredLRP.encode(routingInfoOf(lrp)).finish(),
  };
}

const FORMAT_COLUMNS: Record<DesiredLrpFormat, string> = {
  r3: 'record',
  r2: 'coalesce(record_r2, record)',
  'scheduling-info': 'scheduling_info',
  'routing-info': 'routing_info',
};

export function createDesiredLrpTable(db: DiegoDatabase): DesiredLrpTable {
  const insert = db.prepare(
    `INSERT INTO desired_lrps (process_guid, domain, instances, annotation, modification_tag_epoch,
       modification_tag_index, record, record_r2, scheduling_info, routing_info)
     VALUES (@processGuid, @domain, @instances, @annotation, @epoch, @index, @record, @recordR2,
       @schedulingInfo, @routingInfo)
     ON CONFLICT (process_guid) DO NOTHING`,
  );
  const replace = db.prepare(
    `UPDATE desired_lrps SET domain = @domain, instances = @instances, annotation = @annotation,
       modification_tag_epoch = @epoch, modification_tag_index = @index, record = @record,
       record_r2 = @recordR2, scheduling_info = @schedulingInfo, routing_info = @routingInfo
     WHERE process_guid = @processGuid`,
  );
  const remove = db.prepare('DELETE FROM desired_lrps WHERE process_guid = ?');
  const findRecord = Object.fromEntries(
    Object.entries(FORMAT_COLUMNS).map(([format, column]) => [
      format,
      db.prepare(`SELECT ${column} FROM desired_lrps WHERE process_guid = ?`).pluck(),
    ]),
  ) as Record<DesiredLrpFormat, ReturnType<DiegoDatabase['prepare']>>;
  // Rowid order (insertion order) needs no sort, which matters for 250k-row bulk reads.
  const selects = Object.fromEntries(
    Object.entries(FORMAT_COLUMNS).map(([format, column]) => [
      format,
      selectBuilder(db, `SELECT ${column} FROM desired_lrps`, '', true),
    ]),
  ) as Record<DesiredLrpFormat, ReturnType<typeof selectBuilder>>;

  const records = (filter: DesiredLrpFilter, format: DesiredLrpFormat): Buffer[] => {
    const { statement, params } = selects[format]([equals('domain', filter.domain), within('process_guid', filter.processGuids)]);
    return statement.all(...params) as Buffer[];
  };

  return {
    insert: (lrp) => insert.run(columnsOf(lrp)).changes === 1,
    find(processGuid) {
      const record = findRecord.r3.get(processGuid) as Buffer | undefined;
      return record === undefined ? undefined : DesiredLRP.decode(record);
    },
    findRecord: (processGuid, format) => findRecord[format].get(processGuid) as Buffer | undefined,
    replace: (lrp) => void replace.run(columnsOf(lrp)),
    remove: (processGuid) => remove.run(processGuid).changes === 1,
    records,
    list: (filter) => records(filter, 'r3').map((record) => DesiredLRP.decode(record)),
    schedulingInfos: (filter) =>
      records(filter, 'scheduling-info').map((record) => DesiredLRPSchedulingInfo.decode(record)),
  };
}
