// Cell presences. Cells of the embedded Diego register in-process with their rep port and
// heartbeat with a TTL, as reps keep a Locket presence; a cell that stops heartbeating drops out
// of /v1/cells/list.r1 and out of placement, and convergence treats its work as lost (tasks fail
// with "cell disappeared before completion", instances are unclaimed and placed again).
// Presences live in memory only: after a restart cells register again, as reps do with Locket.
import type { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import type { Clock } from './clock.js';
import type { RepClient } from './rep.js';

export interface RegisteredCell {
  presence: CellPresence;
  /** Absent for a presence registered without a rep (it is listed, but nothing is placed on it). */
  rep: RepClient | undefined;
  /** An evacuating cell keeps its presence but takes no new work. */
  evacuating: boolean;
}

export interface CellRegistry {
  /**
   * Registers or refreshes a cell; it stays present for ttlMs after this call. A refresh without a
   * rep keeps the rep the cell registered with.
   */
  heartbeat(presence: CellPresence, ttlMs: number, rep?: RepClient): void;
  remove(cellId: string): void;
  /** Marks a cell as evacuating (graceful shutdown): present, but no longer placed on. */
  setEvacuating(cellId: string, evacuating: boolean): void;
  /** Present cells, by cell id. */
  list(): CellPresence[];
  find(cellId: string): CellPresence | undefined;
  /** The rep of a present cell. */
  repFor(cellId: string): RepClient | undefined;
  /** Present cells that take work: not evacuating, with a rep. */
  placeable(): (RegisteredCell & { rep: RepClient })[];
  /** Some cell's TTL ran out and it has not been forgotten yet. */
  hasStale(): boolean;
  /** Forgets cells whose TTL ran out and returns their ids (for the log and convergence). */
  expireStale(): string[];
}

export function createCellRegistry(clock: Clock): CellRegistry {
  const cells = new Map<string, RegisteredCell & { expiresAtMs: number }>();
  const present = (cellId: string) => {
    const entry = cells.get(cellId);
    return entry !== undefined && entry.expiresAtMs > clock.nowMs() ? entry : undefined;
  };
  const presentEntries = () =>
    [...cells.keys()]
      .sort()
      .map(present)
      .filter((entry): entry is RegisteredCell & { expiresAtMs: number } => entry !== undefined);
  return {
    heartbeat(presence, ttlMs, rep) {
      const held = cells.get(presence.cellId);
      cells.set(presence.cellId, {
        presence,
        rep: rep ?? held?.rep,
        evacuating: held?.evacuating ?? false,
        expiresAtMs: clock.nowMs() + ttlMs,
      });
    },
    remove(cellId) {
      cells.delete(cellId);
    },
    setEvacuating(cellId, evacuating) {
      const entry = cells.get(cellId);
      if (entry !== undefined) entry.evacuating = evacuating;
    },
    list: () => presentEntries().map((entry) => entry.presence),
    find: (cellId) => present(cellId)?.presence,
    repFor: (cellId) => present(cellId)?.rep,
    placeable: () =>
      presentEntries().filter(
        (entry): entry is RegisteredCell & { expiresAtMs: number; rep: RepClient } =>
          !entry.evacuating && entry.rep !== undefined,
      ),
    hasStale() {
      const now = clock.nowMs();
      for (const entry of cells.values()) if (entry.expiresAtMs <= now) return true;
      return false;
    },
    expireStale() {
      const now = clock.nowMs();
      const gone: string[] = [];
      for (const [cellId, entry] of cells) {
        if (entry.expiresAtMs <= now) {
          cells.delete(cellId);
          gone.push(cellId);
        }
      }
      return gone.sort();
    },
  };
}
