// Cell presences. Cells of the embedded Diego register in-process and heartbeat with a TTL; a
// cell that stops heartbeating drops out of /v1/cells/list.r1 (and, later, out of placement).
// Presences live in memory only: after a restart cells register again, as reps do with Locket.
import type { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import type { Clock } from './clock.js';

export interface CellRegistry {
  /** Registers or refreshes a cell; it stays present for ttlMs after this call. */
  heartbeat(presence: CellPresence, ttlMs: number): void;
  remove(cellId: string): void;
  /** Present cells, by cell id. */
  list(): CellPresence[];
  find(cellId: string): CellPresence | undefined;
}

export function createCellRegistry(clock: Clock): CellRegistry {
  const cells = new Map<string, { presence: CellPresence; expiresAtMs: number }>();
  const present = (cellId: string) => {
    const entry = cells.get(cellId);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= clock.nowMs()) {
      cells.delete(cellId);
      return undefined;
    }
    return entry.presence;
  };
  return {
    heartbeat(presence, ttlMs) {
      cells.set(presence.cellId, { presence, expiresAtMs: clock.nowMs() + ttlMs });
    },
    remove(cellId) {
      cells.delete(cellId);
    },
    list() {
      return [...cells.keys()]
        .sort()
        .map(present)
        .filter((presence): presence is CellPresence => presence !== undefined);
    },
    find: present,
  };
}
