// The BBS reports failures in-band, as Error{type, message} in field 1 of every response. Store
// operations throw a DiegoError carrying that pair; the route layer turns it into the response.
// Messages are the real BBS's (models/errors.go) so clients that match on them keep working.
import { Error_Type, type Error as BbsError } from '../../gen/diego/bbs/v1/error.js';

export class DiegoError extends Error {
  constructor(
    readonly type: Error_Type,
    message: string,
  ) {
    super(message);
    this.name = 'DiegoError';
  }

  toBbsError(): BbsError {
    return { type: this.type, message: this.message };
  }
}

export const resourceNotFound = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_RESOURCE_NOT_FOUND, 'the requested resource could not be found');

export const resourceExists = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_RESOURCE_EXISTS, 'the requested resource already exists');

/** A body that does not decode as the route's request message. */
export const badRequest = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_INVALID_REQUEST, 'the request received is invalid');

/** A decoded request that fails validation; the message names the fields. */
export const invalidRequest = (message: string): DiegoError => new DiegoError(Error_Type.TYPE_INVALID_REQUEST, message);

export const unknownError = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_UNKNOWN_ERROR, 'the request failed for an unknown reason');

export const actualLrpCannotBeClaimed = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_CLAIMED, 'cannot claim actual LRP');

export const actualLrpCannotBeStarted = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_STARTED, 'cannot start actual LRP');

export const actualLrpCannotBeCrashed = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_CRASHED, 'cannot crash actual LRP');

export const actualLrpCannotBeFailed = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_FAILED, 'cannot fail actual LRP');

export const actualLrpCannotBeRemoved = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_REMOVED, 'cannot remove actual LRP');

export const actualLrpCannotBeUnclaimed = (): DiegoError =>
  new DiegoError(Error_Type.TYPE_ACTUAL_LRP_CANNOT_BE_UNCLAIMED, 'cannot unclaim actual LRP');

/** A cell completing a task another cell runs (models.NewRunningOnDifferentCellError). */
export const runningOnDifferentCell = (expectedCellId: string, actualCellId: string): DiegoError =>
  new DiegoError(Error_Type.TYPE_RUNNING_ON_DIFFERENT_CELL, `Running on cell ${actualCellId} not ${expectedCellId}`);

/** Task state names as the BBS prints them in transition errors. */
const TASK_STATE_NAMES = ['Invalid', 'Pending', 'Running', 'Completed', 'Resolving'];

export function taskTransitionError(from: number, to: number): DiegoError {
  const name = (state: number) => TASK_STATE_NAMES[state] ?? String(state);
  return new DiegoError(
    Error_Type.TYPE_INVALID_STATE_TRANSITION,
    `Cannot transition from ${name(from)} to ${name(to)}`,
  );
}
