// The BBS reports failures in-band (field 1 of every response) as a numeric type plus a message.
// Callers branch on meaning, not on numbers: one class per meaning a caller acts on, all of them
// BbsError, so `instanceof BbsResourceNotFoundError` reads like Cloud Controller's own triage
// (ResourceExists on desire is success, ResourceNotFound on stop is a no-op, InvalidRequest is
// counted and skipped, anything transport-shaped is "try again later").
import { Error_Type, error_TypeToJSON, type Error as BbsWireError } from '../../gen/diego/bbs/v1/error.js';

export { Error_Type as BbsErrorType };

/** Any failure of a BBS call: an in-band BBS error, or one the client produced with a BBS type. */
export class BbsError extends Error {
  override name = 'BbsError';
  constructor(
    /** The BBS's numeric error type (diego.bbs.v1.Error.Type). */
    readonly type: Error_Type,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The type's name as the proto declares it, e.g. TYPE_RESOURCE_NOT_FOUND. */
  get typeName(): string {
    return error_TypeToJSON(this.type);
  }
}

export class BbsResourceNotFoundError extends BbsError {
  override name = 'BbsResourceNotFoundError';
}

export class BbsResourceExistsError extends BbsError {
  override name = 'BbsResourceExistsError';
}

export class BbsResourceConflictError extends BbsError {
  override name = 'BbsResourceConflictError';
}

export class BbsInvalidRequestError extends BbsError {
  override name = 'BbsInvalidRequestError';
}

/** Why the BBS could not be used; every reason means "nothing was learned, try again later". */
export type BbsUnavailableReason =
  /** No connection, or the connection failed before or while the answer arrived. */
  | 'transport'
  /** The call's deadline passed. */
  | 'timeout'
  /** HTTP 503: the BBS is up but not serving yet (it answers so until its migrations finish). */
  | 'not-serving'
  /** The event stream ended or broke. */
  | 'stream-closed';

/** The BBS could not be reached, did not answer in time, or is not serving yet. */
export class BbsUnavailableError extends BbsError {
  override name = 'BbsUnavailableError';
  constructor(
    readonly reason: BbsUnavailableReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    // The Go client reports its own network timeouts as Timeout; other transport failures have
    // no BBS type of their own, so they travel as UnknownError.
    super(reason === 'timeout' ? Error_Type.TYPE_TIMEOUT : reason === 'not-serving' ? Error_Type.TYPE_INVALID_RESPONSE : Error_Type.TYPE_UNKNOWN_ERROR, message, options);
  }
}

/** The BBS (or something in front of it) answered outside the protocol: a status other than 200. */
export class BbsInvalidResponseError extends BbsError {
  override name = 'BbsInvalidResponseError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(Error_Type.TYPE_INVALID_RESPONSE, message);
  }
}

/** The typed error for an in-band BBS error. */
export function bbsErrorFromWire(error: BbsWireError): BbsError {
  const message = error.message || error_TypeToJSON(error.type);
  switch (error.type) {
    case Error_Type.TYPE_RESOURCE_NOT_FOUND:
      return new BbsResourceNotFoundError(error.type, message);
    case Error_Type.TYPE_RESOURCE_EXISTS:
      return new BbsResourceExistsError(error.type, message);
    case Error_Type.TYPE_RESOURCE_CONFLICT:
      return new BbsResourceConflictError(error.type, message);
    case Error_Type.TYPE_INVALID_REQUEST:
      return new BbsInvalidRequestError(error.type, message);
    default:
      return new BbsError(error.type, message);
  }
}

/** True for errors after which the same call may succeed later without any change. */
export function isBbsUnavailable(error: unknown): error is BbsUnavailableError {
  return error instanceof BbsUnavailableError;
}
