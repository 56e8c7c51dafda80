// The BBS routes a cell (rep) calls: instance claim / start / crash / fail / remove, evacuation,
// and task start / complete / fail / reject. Same framing as every other route: a protobuf
// request, a protobuf response with the error in-band; evacuation answers also say whether the
// cell should keep its container.
import {
  ClaimActualLRPRequest,
  CrashActualLRPRequest,
  FailActualLRPRequest,
  RemoveActualLRPRequest,
  StartActualLRPRequest,
} from '../../gen/diego/bbs/v1/actual_lrp_requests.js';
import {
  EvacuateClaimedActualLRPRequest,
  EvacuateCrashedActualLRPRequest,
  EvacuateRunningActualLRPRequest,
  EvacuateStoppedActualLRPRequest,
  EvacuationResponse,
  RemoveEvacuatingActualLRPRequest,
} from '../../gen/diego/bbs/v1/evacuation.js';
import {
  CompleteTaskRequest,
  FailTaskRequest,
  RejectTaskRequest,
  StartTaskRequest,
  StartTaskResponse,
} from '../../gen/diego/bbs/v1/task_requests.js';
import type { ActualLrpLifecycle, RunningInstanceDetails } from './actual-lrp-lifecycle.js';
import { DiegoError } from './errors.js';
import type { Evacuation } from './evacuation.js';
import { NO_ERROR, unary, type Route } from './routes.js';
import type { TaskLifecycle } from './task-lifecycle.js';
import {
  cellLrpRequestValidator,
  validateClaimActualLrpRequest,
  validateFailTaskRequest,
  validateRejectTaskRequest,
  validateRemoveActualLrpRequest,
  validateStartTaskRequest,
} from './validation.js';

export interface CellRouteDependencies {
  lifecycle: ActualLrpLifecycle;
  evacuation: Evacuation;
  tasks: TaskLifecycle;
}

/** An evacuation answer: keep_container, or the in-band error (the container may go). */
function evacuationAnswer(decide: () => boolean): Uint8Array {
  try {
    return EvacuationResponse.encode({ error: undefined, keepContainer: decide() }).finish();
  } catch (error) {
    if (error instanceof DiegoError) return EvacuationResponse.encode({ error: error.toBbsError(), keepContainer: false }).finish();
    throw error;
  }
}

/** What start and evacuate_running report besides the address (the same fields in both requests). */
function runningDetailsOf(request: StartActualLRPRequest | EvacuateRunningActualLRPRequest): RunningInstanceDetails {
  return {
    internalRoutes: request.actualLrpInternalRoutes,
    metricTags: request.metricTags,
    routable: request.routable,
    availabilityZone: request.availabilityZone,
  };
}

const withKeys = cellLrpRequestValidator({});
const withNetInfo = cellLrpRequestValidator({ netInfo: true });
const withErrorMessage = cellLrpRequestValidator({ errorMessage: true });
const failRequest = cellLrpRequestValidator({ instanceKey: false, errorMessage: true });

export function createCellRoutes({ lifecycle, evacuation, tasks }: CellRouteDependencies): [string, Route][] {
  const start = unary(StartActualLRPRequest, withNetInfo, (request, context) => {
    lifecycle.start(
      request.actualLrpKey!,
      request.actualLrpInstanceKey!,
      request.actualLrpNetInfo!,
      runningDetailsOf(request),
      context.requestId,
    );
    return NO_ERROR;
  });

  const evacuateRunning = unary(EvacuateRunningActualLRPRequest, withNetInfo, (request, context) =>
    evacuationAnswer(() =>
      evacuation.evacuateRunning(
        request.actualLrpKey!,
        request.actualLrpInstanceKey!,
        request.actualLrpNetInfo!,
        runningDetailsOf(request),
        context.requestId,
      ),
    ),
  );

  return [
    // Instances
    [
      '/v1/actual_lrps/claim',
      unary(ClaimActualLRPRequest, validateClaimActualLrpRequest, (request, context) => {
        lifecycle.claim(request.processGuid, request.index, request.actualLrpInstanceKey!, context.requestId);
        return NO_ERROR;
      }),
    ],
    ['/v1/actual_lrps/start.r1', start],
    // The older revision carries the same fields a rep of that age fills.
    ['/v1/actual_lrps/start', start],
    [
      '/v1/actual_lrps/crash',
      unary(CrashActualLRPRequest, withKeys, (request, context) => {
        lifecycle.crash(request.actualLrpKey!, request.actualLrpInstanceKey!, request.errorMessage, context.requestId);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/actual_lrps/fail',
      unary(FailActualLRPRequest, failRequest, (request, context) => {
        lifecycle.fail(request.actualLrpKey!, request.errorMessage, context.requestId);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/actual_lrps/remove',
      unary(RemoveActualLRPRequest, validateRemoveActualLrpRequest, (request, context) => {
        lifecycle.remove(request.processGuid, request.index, request.actualLrpInstanceKey, context.requestId);
        return NO_ERROR;
      }),
    ],

    // Evacuation
    [
      '/v1/actual_lrps/evacuate_claimed',
      unary(EvacuateClaimedActualLRPRequest, withKeys, (request, context) =>
        evacuationAnswer(() => evacuation.evacuateClaimed(request.actualLrpKey!, request.actualLrpInstanceKey!, context.requestId)),
      ),
    ],
    ['/v1/actual_lrps/evacuate_running.r1', evacuateRunning],
    ['/v1/actual_lrps/evacuate_running', evacuateRunning],
    [
      '/v1/actual_lrps/evacuate_crashed',
      unary(EvacuateCrashedActualLRPRequest, withErrorMessage, (request, context) =>
        evacuationAnswer(() => {
          evacuation.evacuateCrashed(request.actualLrpKey!, request.actualLrpInstanceKey!, request.errorMessage, context.requestId);
          return false;
        }),
      ),
    ],
    [
      '/v1/actual_lrps/evacuate_stopped',
      unary(EvacuateStoppedActualLRPRequest, withKeys, (request, context) =>
        evacuationAnswer(() => {
          evacuation.evacuateStopped(request.actualLrpKey!, request.actualLrpInstanceKey!, context.requestId);
          return false;
        }),
      ),
    ],
    [
      '/v1/actual_lrps/remove_evacuating',
      unary(RemoveEvacuatingActualLRPRequest, withKeys, (request, context) => {
        evacuation.removeEvacuating(request.actualLrpKey!, request.actualLrpInstanceKey!, context.requestId);
        return NO_ERROR;
      }),
    ],

    // Tasks
    [
      '/v1/tasks/start',
      unary(StartTaskRequest, validateStartTaskRequest, (request) =>
        StartTaskResponse.encode({ error: undefined, shouldStart: tasks.start(request.taskGuid, request.cellId) }).finish(),
      ),
    ],
    [
      '/v1/tasks/complete',
      unary(CompleteTaskRequest, validateStartTaskRequest, (request) => {
        tasks.complete(request.taskGuid, request.cellId, request.failed, request.failureReason, request.result);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/tasks/fail',
      unary(FailTaskRequest, validateFailTaskRequest, (request) => {
        tasks.fail(request.taskGuid, request.failureReason);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/tasks/reject',
      unary(RejectTaskRequest, validateRejectTaskRequest, (request) => {
        tasks.reject(request.taskGuid, request.rejectionReason);
        return NO_ERROR;
      }),
    ],
  ];
}
