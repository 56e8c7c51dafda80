// A cell's graceful shutdown, as a rep drains: the cell stops taking work, then asks the BBS about
// each container it holds — evacuate_running for running instances (the BBS keeps the instance as
// an EVACUATING copy and places its replacement elsewhere), evacuate_claimed for ones not started
// yet — and stops a container once the BBS answers keep_container=false (the replacement runs,
// or the instance is no longer wanted). Whatever is still held when the deadline passes is
// stopped and reported with evacuate_stopped, so the BBS places it again.
import type { ActualLRPInstanceKey, ActualLRPKey, ActualLRPNetInfo } from '../../gen/diego/bbs/v1/actual_lrp.js';
import type { Logger } from '../../lib/log.js';
import type { RunningInstanceDetails } from './actual-lrp-lifecycle.js';
import type { CellClient } from './cell-client.js';

/** One container the cell holds. */
export interface HeldInstance {
  key: ActualLRPKey;
  instanceKey: ActualLRPInstanceKey;
  /** Set once the instance runs (and was reported with start). */
  netInfo?: ActualLRPNetInfo;
  details?: Partial<RunningInstanceDetails>;
}

export interface CellEvacuationOptions {
  client: CellClient;
  /** The containers the cell holds now (read again on every round). */
  instances(): HeldInstance[];
  /** Destroys one container; afterwards instances() no longer lists it. */
  stopContainer(instance: HeldInstance): Promise<void>;
  /** Pause between rounds of asking. */
  pollIntervalMs: number;
  /** After this the remaining containers are stopped anyway (rep: evacuation_timeout). */
  timeoutMs: number;
  logger: Logger;
}

export interface CellEvacuationResult {
  /** Containers stopped because the BBS no longer needed them. */
  handedOver: number;
  /** Containers stopped at the deadline. */
  abandoned: number;
}

export async function evacuateCell(options: CellEvacuationOptions): Promise<CellEvacuationResult> {
  const { client } = options;
  const logger = options.logger.child({ session: 'cell-evacuation' });
  const deadline = Date.now() + options.timeoutMs;
  let handedOver = 0;

  // Bounded by the deadline; each round asks once per held container.
  while (Date.now() < deadline) {
    const held = options.instances();
    if (held.length === 0) return { handedOver, abandoned: 0 };
    for (const instance of held) {
      let keep: boolean;
      try {
        keep =
          instance.netInfo === undefined
            ? await client.evacuateClaimed(instance.key, instance.instanceKey)
            : await client.evacuateRunning(instance.key, instance.instanceKey, instance.netInfo, instance.details);
      } catch (err) {
        // The BBS no longer knows the instance as this cell's: nothing to keep it for.
        logger.info({ err, process_guid: instance.key.processGuid, index: instance.key.index }, 'evacuation-answer-failed');
        keep = false;
      }
      if (!keep) {
        await options.stopContainer(instance);
        handedOver++;
      }
    }
    if (options.instances().length === 0) return { handedOver, abandoned: 0 };
    await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs));
  }

  const remaining = options.instances();
  for (const instance of remaining) {
    await options.stopContainer(instance);
    await client.evacuateStopped(instance.key, instance.instanceKey).catch((err: unknown) => {
      logger.info({ err, process_guid: instance.key.processGuid, index: instance.key.index }, 'evacuate-stopped-failed');
    });
  }
  if (remaining.length > 0) logger.info({ abandoned: remaining.length }, 'evacuation-timed-out');
  return { handedOver, abandoned: remaining.length };
}
