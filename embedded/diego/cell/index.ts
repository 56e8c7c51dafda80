// The embedded cell: the embedded Diego's rep, running tasks and app instances in bubblewrap
// containers and reporting through the BBS's cell-side routes.
export {
  DEFAULT_CELL_TIMING,
  startEmbeddedCell,
  type CellCloseOptions,
  type CellCloseResult,
  type CellDiego,
  type CellSnapshot,
  type CellTiming,
  type EmbeddedCell,
  type EmbeddedCellOptions,
} from './cell.js';
export {
  actualNetInfoFor,
  cellPresenceFor,
  defaultCellId,
  DEFAULT_MAX_CONTAINERS,
  DEFAULT_ROOTFS_PROVIDERS,
  instanceTags,
  machineCapacity,
  metricsSourceOf,
  rootfsProvidersFrom,
  taskTags,
  type CellCapacity,
} from './presence.js';
/** Thrown when the host lacks what containers need (bubblewrap, passt, root). */
export { ExecutorPrerequisiteError } from '../executor/index.js';
