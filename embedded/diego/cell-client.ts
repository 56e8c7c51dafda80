// The cell side of the BBS protocol, as a rep speaks it: protobuf POSTs to the cell routes
// (claim, start, crash, evacuate, task start / complete ...). The embedded Diego's cells report
// through this client over HTTP, never by calling the store, so the BBS applies one set of rules
// whoever the cell is. A failure in the response comes back as a DiegoError with the BBS's type.
import type { ActualLRP, ActualLRPInstanceKey, ActualLRPKey, ActualLRPNetInfo } from '../../gen/diego/bbs/v1/actual_lrp.js';
import {
  ActualLRPLifecycleResponse,
  ActualLRPsRequest,
  ActualLRPsResponse,
  ClaimActualLRPRequest,
  CrashActualLRPRequest,
  FailActualLRPRequest,
  RemoveActualLRPRequest,
  StartActualLRPRequest,
} from '../../gen/diego/bbs/v1/actual_lrp_requests.js';
import type { Error as BbsError } from '../../gen/diego/bbs/v1/error.js';
import {
  EvacuateClaimedActualLRPRequest,
  EvacuateCrashedActualLRPRequest,
  EvacuateRunningActualLRPRequest,
  EvacuateStoppedActualLRPRequest,
  EvacuationResponse,
  RemoveEvacuatingActualLRPRequest,
  RemoveEvacuatingActualLRPResponse,
} from '../../gen/diego/bbs/v1/evacuation.js';
import type { Task } from '../../gen/diego/bbs/v1/task.js';
import {
  CompleteTaskRequest,
  FailTaskRequest,
  RejectTaskRequest,
  StartTaskRequest,
  StartTaskResponse,
  TaskLifecycleResponse,
  TasksRequest,
  TasksResponse,
} from '../../gen/diego/bbs/v1/task_requests.js';
import type { RunningInstanceDetails } from './actual-lrp-lifecycle.js';
import { DiegoError } from './errors.js';
import { tlsFetch, type ClientTls } from '../../lib/tls-fetch.js';

export interface CellClientOptions {
  /** The BBS base URL, e.g. the embedded Diego's url. */
  url: string;
  timeoutMs?: number;
  /** For an https BBS: its CA and the cell's client certificate. */
  tls?: ClientTls;
}

export interface CellClient {
  claim(processGuid: string, index: number, instanceKey: ActualLRPInstanceKey): Promise<void>;
  start(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, netInfo: ActualLRPNetInfo, details?: Partial<RunningInstanceDetails>): Promise<void>;
  crash(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, reason: string): Promise<void>;
  fail(key: ActualLRPKey, placementError: string): Promise<void>;
  remove(processGuid: string, index: number, instanceKey?: ActualLRPInstanceKey): Promise<void>;
  /** The evacuation calls answer keep_container. */
  evacuateClaimed(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey): Promise<boolean>;
  evacuateRunning(
    key: ActualLRPKey,
    instanceKey: ActualLRPInstanceKey,
    netInfo: ActualLRPNetInfo,
    details?: Partial<RunningInstanceDetails>,
  ): Promise<boolean>;
  evacuateCrashed(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey, reason: string): Promise<boolean>;
  evacuateStopped(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey): Promise<boolean>;
  removeEvacuating(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey): Promise<void>;
  /** True when the cell should run the task (false: it already runs there). */
  startTask(taskGuid: string, cellId: string): Promise<boolean>;
  completeTask(taskGuid: string, cellId: string, failed: boolean, failureReason: string, result: string): Promise<void>;
  failTask(taskGuid: string, failureReason: string): Promise<void>;
  rejectTask(taskGuid: string, rejectionReason: string): Promise<void>;
  /** Every instance record naming this cell (ordinary and evacuating). */
  actualLrpsOnCell(cellId: string): Promise<ActualLRP[]>;
  tasksOnCell(cellId: string): Promise<Task[]>;
}

interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
}
interface Decoder<T> {
  decode(input: Uint8Array): T;
}

const details = (given: Partial<RunningInstanceDetails> = {}) => ({
  actualLrpInternalRoutes: given.internalRoutes ?? [],
  metricTags: given.metricTags ?? {},
  routable: given.routable,
  availabilityZone: given.availabilityZone ?? '',
});

export function createCellClient(options: CellClientOptions): CellClient {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const fetch = tlsFetch(options.tls);

  async function call<Q, R extends { error?: BbsError | undefined }>(
    path: string,
    codec: Codec<Q>,
    request: Q,
    decoder: Decoder<R>,
  ): Promise<R> {
    const response = await fetch(`${base}${path}`, {
      method: 'POST',
      body: codec.encode(request).finish(),
      headers: { 'Content-Type': 'application/x-protobuf' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status !== 200) throw new Error(`BBS answered ${path} with ${response.status}`);
    const answer = decoder.decode(new Uint8Array(await response.arrayBuffer()));
    if (answer.error !== undefined) throw new DiegoError(answer.error.type, answer.error.message);
    return answer;
  }

  const lifecycle = async <Q>(path: string, codec: Codec<Q>, request: Q) => {
    await call(path, codec, request, ActualLRPLifecycleResponse);
  };
  const evacuation = async <Q>(path: string, codec: Codec<Q>, request: Q) =>
    (await call(path, codec, request, EvacuationResponse)).keepContainer;
  const task = async <Q>(path: string, codec: Codec<Q>, request: Q) => {
    await call(path, codec, request, TaskLifecycleResponse);
  };

  return {
    claim: (processGuid, index, instanceKey) =>
      lifecycle('/v1/actual_lrps/claim', ClaimActualLRPRequest, { processGuid, index, actualLrpInstanceKey: instanceKey }),
    start: (key, instanceKey, netInfo, given) =>
      lifecycle('/v1/actual_lrps/start.r1', StartActualLRPRequest, {
        actualLrpKey: key,
        actualLrpInstanceKey: instanceKey,
        actualLrpNetInfo: netInfo,
        ...details(given),
      }),
    crash: (key, instanceKey, reason) =>
      lifecycle('/v1/actual_lrps/crash', CrashActualLRPRequest, { actualLrpKey: key, actualLrpInstanceKey: instanceKey, errorMessage: reason }),
    fail: (key, placementError) =>
      lifecycle('/v1/actual_lrps/fail', FailActualLRPRequest, { actualLrpKey: key, errorMessage: placementError }),
    remove: (processGuid, index, instanceKey) =>
      lifecycle('/v1/actual_lrps/remove', RemoveActualLRPRequest, { processGuid, index, actualLrpInstanceKey: instanceKey }),
    evacuateClaimed: (key, instanceKey) =>
      evacuation('/v1/actual_lrps/evacuate_claimed', EvacuateClaimedActualLRPRequest, { actualLrpKey: key, actualLrpInstanceKey: instanceKey }),
    evacuateRunning: (key, instanceKey, netInfo, given) =>
      evacuation('/v1/actual_lrps/evacuate_running.r1', EvacuateRunningActualLRPRequest, {
        actualLrpKey: key,
        actualLrpInstanceKey: instanceKey,
        actualLrpNetInfo: netInfo,
        ...details(given),
      }),
    evacuateCrashed: (key, instanceKey, reason) =>
      evacuation('/v1/actual_lrps/evacuate_crashed', EvacuateCrashedActualLRPRequest, {
        actualLrpKey: key,
        actualLrpInstanceKey: instanceKey,
        errorMessage: reason,
      }),
    evacuateStopped: (key, instanceKey) =>
      evacuation('/v1/actual_lrps/evacuate_stopped', EvacuateStoppedActualLRPRequest, { actualLrpKey: key, actualLrpInstanceKey: instanceKey }),
    removeEvacuating: async (key, instanceKey) => {
      await call(
        '/v1/actual_lrps/remove_evacuating',
        RemoveEvacuatingActualLRPRequest,
        { actualLrpKey: key, actualLrpInstanceKey: instanceKey },
        RemoveEvacuatingActualLRPResponse,
      );
    },
    startTask: async (taskGuid, cellId) =>
      (await call('/v1/tasks/start', StartTaskRequest, { taskGuid, cellId }, StartTaskResponse)).shouldStart,
    completeTask: (taskGuid, cellId, failed, failureReason, result) =>
      task('/v1/tasks/complete', CompleteTaskRequest, { taskGuid, cellId, failed, failureReason, result }),
    failTask: (taskGuid, failureReason) => task('/v1/tasks/fail', FailTaskRequest, { taskGuid, failureReason }),
    rejectTask: (taskGuid, rejectionReason) => task('/v1/tasks/reject', RejectTaskRequest, { taskGuid, rejectionReason }),
    actualLrpsOnCell: async (cellId) =>
      (await call('/v1/actual_lrps/list', ActualLRPsRequest, { domain: '', cellId, processGuid: '' }, ActualLRPsResponse)).actualLrps,
    tasksOnCell: async (cellId) => (await call('/v1/tasks/list.r3', TasksRequest, { domain: '', cellId }, TasksResponse)).tasks,
  };
}
