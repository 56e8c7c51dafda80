// Constructors for the BBS action tree, so the recipes read like the trees in spec §3.3–3.4.
// Every action is complete (fromPartial fills the fields a recipe leaves at their zero value).
import {
  Action,
  type DownloadAction,
  type EmitProgressAction,
  type RunAction,
  type UploadAction,
} from '../../../gen/diego/bbs/v1/actions.js';

type DownloadFields = Pick<DownloadAction, 'from' | 'to' | 'cacheKey' | 'user'> & Partial<Pick<DownloadAction, 'artifact'>>;
type UploadFields = Pick<UploadAction, 'artifact' | 'from' | 'to' | 'user'>;
type RunFields = Pick<RunAction, 'path' | 'args' | 'env' | 'user'> & { nofile: string };
type ProgressMessages = Pick<EmitProgressAction, 'startMessage' | 'successMessage' | 'failureMessagePrefix'>;

export function download(fields: DownloadFields): Action {
  return Action.fromPartial({ downloadAction: fields });
}

export function upload(fields: UploadFields): Action {
  return Action.fromPartial({ uploadAction: fields });
}

export function run({ nofile, ...fields }: RunFields): Action {
  return Action.fromPartial({ runAction: { ...fields, resourceLimits: { nofile } } });
}

export function emitProgress(messages: ProgressMessages, action: Action): Action {
  return Action.fromPartial({ emitProgressAction: { ...messages, action } });
}

export function tryAction(action: Action): Action {
  return Action.fromPartial({ tryAction: { action } });
}

export function parallel(...actions: Action[]): Action {
  return Action.fromPartial({ parallelAction: { actions } });
}

export function serial(...actions: Action[]): Action {
  return Action.fromPartial({ serialAction: { actions } });
}

/** Only timeout_ms is set: see the note on deprecated fields in index.ts. */
export function timeout(timeoutMs: number, action: Action): Action {
  return Action.fromPartial({ timeoutAction: { action, timeoutMs: String(timeoutMs) } });
}
