// gRPC status → legacy HTTP status, in one place: the status a service put in the error details
// (an upstream answer passed through) wins, then the route's declared legacy statuses, then
// the generic table.
import { fromBinary } from '@bufbuild/protobuf';
import { Status } from 'nice-grpc';
import { messageDescriptor } from '../lib/descriptors.js';
import type { CallFailure } from '../lib/errors.js';
import { encodeLegacyJson } from '../lib/legacy-json.js';
import type { LegacyRoute } from './routes.js';

/** The generic gRPC → HTTP mapping (as grpc-gateway maps it). */
export const HTTP_STATUS_BY_GRPC_CODE: Record<Status, number> = {
  [Status.OK]: 200,
  [Status.CANCELLED]: 499,
  [Status.UNKNOWN]: 500,
  [Status.INVALID_ARGUMENT]: 400,
  [Status.DEADLINE_EXCEEDED]: 504,
  [Status.NOT_FOUND]: 404,
  [Status.ALREADY_EXISTS]: 409,
  [Status.PERMISSION_DENIED]: 403,
  [Status.RESOURCE_EXHAUSTED]: 429,
  [Status.FAILED_PRECONDITION]: 400,
  [Status.ABORTED]: 409,
  [Status.OUT_OF_RANGE]: 400,
  [Status.UNIMPLEMENTED]: 501,
  [Status.INTERNAL]: 500,
  [Status.UNAVAILABLE]: 503,
  [Status.DATA_LOSS]: 500,
  [Status.UNAUTHENTICATED]: 401,
};

export function httpStatusFor(route: LegacyRoute, failure: CallFailure): number {
  if (failure.httpStatus !== undefined) return failure.httpStatus;
  for (const rule of route.errors) {
    if (rule.reason && rule.reason !== failure.reason) continue;
    if (rule.code && rule.code !== failure.code) continue;
    return rule.httpStatus;
  }
  return HTTP_STATUS_BY_GRPC_CODE[failure.code] ?? 500;
}

/** The legacy body of a failure: the body message a service attached, or none. */
export function errorBodyFor(failure: CallFailure): string | undefined {
  if (!failure.body) return undefined;
  try {
    const message = fromBinary(messageDescriptor(failure.body.typeName), failure.body.value);
    return encodeLegacyJson(failure.body.typeName, message);
  } catch {
    return undefined;
  }
}
