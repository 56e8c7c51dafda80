// The route table: every BBS path this Diego answers, each with its request message, its
// validation and its handler. Unary routes turn a request body into a response body; failures go
// in-band as Error{type, message} in field 1, as the BBS does. List and get responses are built
// from stored record bytes (see wire.ts). Event routes hand the connection to the event stream.
import { ActualLRPsByProcessGuidsRequest, ActualLRPsRequest, RetireActualLRPRequest } from '../../gen/diego/bbs/v1/actual_lrp_requests.js';
import { CellsResponse } from '../../gen/diego/bbs/v1/cells.js';
import {
  DesireLRPRequest,
  DesiredLRPByProcessGuidRequest,
  DesiredLRPsRequest,
  RemoveDesiredLRPRequest,
  UpdateDesiredLRPRequest,
} from '../../gen/diego/bbs/v1/desired_lrp_requests.js';
import { DomainsResponse, UpsertDomainRequest } from '../../gen/diego/bbs/v1/domain.js';
import { PingResponse } from '../../gen/diego/bbs/v1/ping.js';
import { DesireTaskRequest, TaskByGuidRequest, TaskGuidRequest, TasksRequest } from '../../gen/diego/bbs/v1/task_requests.js';
import type { Logger } from '../../lib/log.js';
import type { Bbs } from './bbs.js';
import { badRequest, DiegoError, invalidRequest } from './errors.js';
import type { DesiredLrpFormat } from './store/desired-lrps.js';
import type { TaskFormat } from './store/tasks.js';
import {
  validateDesireLrpRequest,
  validateDesireTaskRequest,
  validateProcessGuidRequest,
  validateRetireActualLrpRequest,
  validateTaskGuidRequest,
  validateUpdateDesiredLrpRequest,
  validateUpsertDomainRequest,
} from './validation.js';
import { errorOnlyResponse, messageField, repeatedMessageField } from './wire.js';

export interface RouteContext {
  /** X-Vcap-Request-Id; also the trace id carried by the events the request causes. */
  requestId: string;
  logger: Logger;
}

export interface UnaryRoute {
  kind: 'unary';
  handle(body: Buffer, context: RouteContext): Uint8Array;
}

export interface EventStreamRoute {
  kind: 'events';
  stream: 'lrp-instances' | 'tasks';
  /** The request body filters instance events by cell (EventsByCellId), or is ignored. */
  filtersByCell: boolean;
}

export type Route = UnaryRoute | EventStreamRoute;

export interface Decoder<T> {
  decode(input: Uint8Array): T;
}

/** A success whose response message has only its (unset) error: zero bytes on the wire. */
export const NO_ERROR = new Uint8Array(0);

/** Decode, validate, handle; a DiegoError from the handler becomes the in-band error. */
export function unary<T>(
  decoder: Decoder<T>,
  validate: ((request: T) => string | undefined) | undefined,
  handle: (request: T, context: RouteContext) => Uint8Array,
): UnaryRoute {
  return {
    kind: 'unary',
    handle(body, context) {
      let request: T;
      try {
        request = decoder.decode(body);
      } catch {
        return errorOnlyResponse(badRequest().toBbsError());
      }
      const invalid = validate?.(request);
      if (invalid !== undefined) {
        context.logger.info({ error: invalid }, 'invalid-request');
        return errorOnlyResponse(invalidRequest(invalid).toBbsError());
      }
      try {
        return handle(request, context);
      } catch (error) {
        if (error instanceof DiegoError) return errorOnlyResponse(error.toBbsError());
        throw error;
      }
    },
  };
}

/** For routes whose request is empty: the body is not read at all. */
function bodyless(handle: () => Uint8Array): UnaryRoute {
  return { kind: 'unary', handle: () => handle() };
}

export function createRoutes(bbs: Bbs): Map<string, Route> {
  const taskByGuid = (format: TaskFormat) =>
    unary(TaskByGuidRequest, validateTaskGuidRequest, (request) =>
      messageField(2, bbs.taskRecord(request.taskGuid, format)),
    );
  const tasks = (format: TaskFormat) =>
    unary(TasksRequest, undefined, (request) =>
      repeatedMessageField(2, bbs.taskRecords({ domain: request.domain, cellId: request.cellId }, format)),
    );
  const desiredLrpByProcessGuid = (format: DesiredLrpFormat) =>
    unary(DesiredLRPByProcessGuidRequest, validateProcessGuidRequest, (request) =>
      messageField(2, bbs.desiredLrpRecord(request.processGuid, format)),
    );
  const desiredLrps = (format: DesiredLrpFormat) =>
    unary(DesiredLRPsRequest, undefined, (request) =>
      repeatedMessageField(
        2,
        bbs.desiredLrpRecords({ domain: request.domain, processGuids: request.processGuids }, format),
      ),
    );

  const table: [string, Route][] = [
    ['/v1/ping', bodyless(() => PingResponse.encode({ available: true }).finish())],

    // Domains
    [
      '/v1/domains/upsert',
      unary(UpsertDomainRequest, validateUpsertDomainRequest, (request) => {
        bbs.upsertDomain(request.domain, request.ttl);
        return NO_ERROR;
      }),
    ],
    ['/v1/domains/list', bodyless(() => DomainsResponse.encode({ error: undefined, domains: bbs.freshDomains() }).finish())],

    // Tasks
    [
      '/v1/tasks/desire.r2',
      unary(DesireTaskRequest, validateDesireTaskRequest, (request) => {
        bbs.desireTask(request.taskDefinition!, request.taskGuid, request.domain);
        return NO_ERROR;
      }),
    ],
    ['/v1/tasks/get_by_task_guid.r3', taskByGuid('r3')],
    ['/v1/tasks/get_by_task_guid.r2', taskByGuid('r2')],
    ['/v1/tasks/list.r3', tasks('r3')],
    ['/v1/tasks/list.r2', tasks('r2')],
    [
      '/v1/tasks/cancel',
      unary(TaskGuidRequest, validateTaskGuidRequest, (request) => {
        bbs.cancelTask(request.taskGuid);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/tasks/resolving',
      unary(TaskGuidRequest, validateTaskGuidRequest, (request) => {
        bbs.resolvingTask(request.taskGuid);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/tasks/delete',
      unary(TaskGuidRequest, validateTaskGuidRequest, (request) => {
        bbs.deleteTask(request.taskGuid);
        return NO_ERROR;
      }),
    ],

    // Desired LRPs
    [
      '/v1/desired_lrp/desire.r2',
      unary(DesireLRPRequest, validateDesireLrpRequest, (request, context) => {
        bbs.desireLrp(request.desiredLrp!, context.requestId);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/desired_lrp/update',
      unary(UpdateDesiredLRPRequest, validateUpdateDesiredLrpRequest, (request, context) => {
        const update = request.update ?? { metricTags: {} };
        bbs.updateDesiredLrp(request.processGuid, update, context.requestId);
        return NO_ERROR;
      }),
    ],
    [
      '/v1/desired_lrp/remove',
      unary(RemoveDesiredLRPRequest, validateProcessGuidRequest, (request, context) => {
        bbs.removeDesiredLrp(request.processGuid, context.requestId);
        return NO_ERROR;
      }),
    ],
    ['/v1/desired_lrps/get_by_process_guid.r3', desiredLrpByProcessGuid('r3')],
    ['/v1/desired_lrps/get_by_process_guid.r2', desiredLrpByProcessGuid('r2')],
    ['/v1/desired_lrps/list.r3', desiredLrps('r3')],
    ['/v1/desired_lrps/list.r2', desiredLrps('r2')],
    ['/v1/desired_lrp_scheduling_infos/list', desiredLrps('scheduling-info')],
    ['/v1/desired_lrp_scheduling_infos/get_by_process_guid', desiredLrpByProcessGuid('scheduling-info')],
    ['/v1/desired_lrp_routing_infos/list', desiredLrps('routing-info')],

    // Actual LRPs
    [
      '/v1/actual_lrps/list',
      unary(ActualLRPsRequest, undefined, (request) =>
        repeatedMessageField(
          2,
          bbs.actualLrpRecords({
            domain: request.domain,
            cellId: request.cellId,
            processGuid: request.processGuid,
            index: request.index,
          }),
        ),
      ),
    ],
    [
      '/v1/actual_lrps/list_by_process_guids',
      unary(ActualLRPsByProcessGuidsRequest, undefined, (request) =>
        repeatedMessageField(2, bbs.actualLrpRecords({ processGuids: request.processGuids })),
      ),
    ],
    [
      '/v1/actual_lrps/retire',
      unary(RetireActualLRPRequest, validateRetireActualLrpRequest, (request, context) => {
        bbs.retireActualLrp(request.actualLrpKey!, context.requestId);
        return NO_ERROR;
      }),
    ],

    // Cells
    ['/v1/cells/list.r1', bodyless(() => CellsResponse.encode({ error: undefined, cells: bbs.cellPresences() }).finish())],

    // Events
    ['/v1/events/lrp_instances.r1', { kind: 'events', stream: 'lrp-instances', filtersByCell: true }],
    ['/v1/events/tasks.r1', { kind: 'events', stream: 'tasks', filtersByCell: false }],
  ];
  return new Map(table);
}
