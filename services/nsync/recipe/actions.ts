// Small constructors for BBS actions, so recipes read like the 2015 action trees
// (serial(download, download), codependent(run, run), timeout(run)). Each returns the canonical
// ts-proto shape (every field present) through fromPartial, so results compare and encode
// like decoded messages.
import {
  Action,
  type DeepPartial,
  type DownloadAction,
  type RunAction,
} from '../../../gen/diego/bbs/v1/actions.js';

export function download(fields: DeepPartial<DownloadAction>): Action {
  return Action.fromPartial({ downloadAction: fields });
}

export function run(fields: DeepPartial<RunAction>): Action {
  return Action.fromPartial({ runAction: fields });
}

export function serial(...actions: Action[]): Action {
  return Action.fromPartial({ serialAction: { actions } });
}

export function codependent(...actions: Action[]): Action {
  return Action.fromPartial({ codependentAction: { actions } });
}

export function timeout(action: Action, timeoutMs: number): Action {
  return Action.fromPartial({ timeoutAction: { action, timeoutMs: String(timeoutMs) } });
}
