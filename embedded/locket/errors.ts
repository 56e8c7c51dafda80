// The errors a real Locket answers with: the gRPC code and the message are both part of the
// contract (clients such as Diego's lock runner match on them).
import { ServerError, Status } from 'nice-grpc';

export const LOCKET_ERRORS = {
  lockCollision: { code: Status.ALREADY_EXISTS, message: 'lock-collision' },
  invalidTtl: { code: Status.INVALID_ARGUMENT, message: 'invalid-ttl' },
  invalidOwner: { code: Status.INVALID_ARGUMENT, message: 'invalid-owner' },
  resourceNotFound: { code: Status.NOT_FOUND, message: 'resource-not-found' },
  // NOT_FOUND (not INVALID_ARGUMENT) is what the real Locket answers for a bad type.
  invalidType: { code: Status.NOT_FOUND, message: 'invalid-type' },
} as const;

export type LocketErrorKind = keyof typeof LOCKET_ERRORS;

/** A Locket domain error; the service turns it into its gRPC status once, at the edge. */
export class LocketError extends Error {
  override readonly name = 'LocketError';
  constructor(readonly kind: LocketErrorKind) {
    super(LOCKET_ERRORS[kind].message);
  }

  toServerError(): ServerError {
    const { code, message } = LOCKET_ERRORS[this.kind];
    return new ServerError(code, message);
  }
}

/** The store found a database written by a newer schema than this code knows. */
export class LocketSchemaError extends Error {
  override readonly name = 'LocketSchemaError';
}
