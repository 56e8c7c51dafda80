// The rep-like port: how work reaches a cell. The real BBS and auctioneer talk to a cell's rep
// over HTTP (Perform, StopLRPInstance, CancelTask); the embedded Diego's cells implement the same
// three calls in-process. A cell reports back only through the BBS's cell-side routes over HTTP
// (claim, start, crash, task start / complete ...), never through this port, so the state rules
// live in one place and tests can play a cell with plain HTTP requests.
import type { ActualLRPInstanceKey, ActualLRPKey } from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { DesiredLRP } from '../../gen/diego/bbs/v1/desired_lrp.js';
import type { Task } from '../../gen/diego/bbs/v1/task.js';

/** One instance the auctioneer placed on a cell; the cell claims it with exactly this instance key. */
export interface LrpPlacement {
  desired: DesiredLRP;
  key: ActualLRPKey;
  instanceKey: ActualLRPInstanceKey;
}

/** What the auctioneer hands a cell in one go (the rep's Work). */
export interface Work {
  lrps: LrpPlacement[];
  /** Pending tasks; the cell starts each through /v1/tasks/start before running it. */
  tasks: Task[];
}

export interface RepClient {
  /**
   * Takes work. Resolves with the part the cell could not take (it left nothing behind for it);
   * that work stays UNCLAIMED or Pending and is placed again later. The cell claims what it took
   * through the BBS; until then the auctioneer counts it against the cell.
   */
  perform(work: Work): Promise<Work>;
  /** Stop the container of this instance (retire, scale down, removal); the cell then removes it. */
  stopLrpInstance(key: ActualLRPKey, instanceKey: ActualLRPInstanceKey): Promise<void>;
  /** Stop a running task's container (the task is already Completed with "task was cancelled"). */
  cancelTask(taskGuid: string): Promise<void>;
}

export const emptyWork = (): Work => ({ lrps: [], tasks: [] });
