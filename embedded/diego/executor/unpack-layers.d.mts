export class LayerError extends Error {}
export function entryComponents(name: string): string[] | undefined;
/** Applies one layer (a tar stream) to the root in the working directory. */
export function applyLayer(tarStream: AsyncIterable<Buffer>): Promise<{ entries: number; skipped: number; directoryModes: Array<{ path: string; mtime: number; mode: number }> }>;
/** Makes the container's mount points (/tmp, /home/vcap, /proc, /dev) in the working directory. */
export function finishRoot(): void;
