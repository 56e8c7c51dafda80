// Unpacks image layers into a root filesystem: the program the cell runs, as its unprivileged
// container user, to turn an image's layers into the directory a sandbox uses as its root.
//
//   CCBRIDGE_UNPACK_LAYERS=1 CCBRIDGE_LAYER_COUNT=<n> CCBRIDGE_UNPACK_UID=<uid> CCBRIDGE_UNPACK_GID=<gid> node unpack-layers.mjs
//       (working directory: the root being built; layers on fds 3, 4, ...)
//
// The parent opens each layer blob (the cache is root-only), hands them over as file descriptors
// in order, lowest layer first, and starts this program as root in the root directory; before
// reading a layer it becomes the given uid and gid (no supplementary groups), so nothing here
// needs a path the container user may not walk (the cell's data directory, node or this
// checkout under /root), and nothing it writes can go where that user may not write. Layers are
// tar archives, gzipped or not (the gzip magic decides).
//
// Layer semantics (the OCI image layer specification, as Docker wrote it):
//   - `<dir>/.wh.<name>` deletes <name> as the lower layers left it;
//   - `<dir>/.wh..wh..opq` makes <dir> opaque: what lower layers put in it goes, what this
//     layer puts in it stays;
//   - a later entry replaces an earlier one of the same path (a directory over a directory
//     keeps its contents).
// Safety: every path is relative to the root and walked one component at a time without
// following symlinks, so no entry (nor a hardlink target) reaches outside the root through
// `..`, an absolute name or a symlink an earlier entry planted. Device nodes and FIFOs are
// skipped (an unprivileged user could not make them, and the sandbox gives the container its
// own /dev). Owners are not kept: everything belongs to the user running this.
//
// When the layers are in, the mount points a container needs (/tmp, /home/vcap, /proc, /dev)
// are made, replacing anything else an image has at those paths.
//
// Exit status 0 on success; otherwise one line on stderr says what went wrong.
import { closeSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, chmodSync, writeSync, lutimesSync, utimesSync, createReadStream, constants } from 'node:fs';
import { createGunzip } from 'node:zlib';

const BLOCK = 512;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** Directories every container root must have, with their modes. */
const MOUNT_POINTS = [
  ['tmp', 0o1777],
  ['home', 0o755],
  ['home/vcap', 0o755],
  ['proc', 0o755],
  ['dev', 0o755],
];

export class LayerError extends Error {}

/**
 * Reads exactly n bytes at a time from an async iterable of buffers.
 * @param {AsyncIterable<Buffer>} source
 */
function byteReader(source) {
  const iterator = source[Symbol.asyncIterator]();
  /** @type {Buffer[]} */
  let pending = [];
  let buffered = 0;
  let ended = false;
  async function fill(n) {
    while (buffered < n && !ended) {
      const next = await iterator.next();
      if (next.done) ended = true;
      else {
        pending.push(next.value);
        buffered += next.value.length;
      }
    }
  }
  return {
    /** @returns {Promise<Buffer | undefined>} exactly n bytes, or undefined at the end */
    async read(n) {
      await fill(n);
      if (buffered < n) {
        if (buffered === 0) return undefined;
        throw new LayerError('layer archive is truncated');
      }
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending);
      const out = all.subarray(0, n);
      const rest = all.subarray(n);
      pending = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      return out;
    },
    /** Up to max bytes (at least 1 unless the stream ended). */
    async readSome(max) {
      await fill(1);
      if (buffered === 0) throw new LayerError('layer archive is truncated');
      const first = pending[0];
      const n = Math.min(max, first.length);
      const out = first.subarray(0, n);
      if (n === first.length) pending.shift();
      else pending[0] = first.subarray(n);
      buffered -= n;
      return out;
    },
  };
}

function cString(buffer) {
  const end = buffer.indexOf(0);
  return buffer.subarray(0, end < 0 ? buffer.length : end).toString('utf8');
}

function octal(buffer) {
  // GNU base-256 for large values: the high bit of the first byte.
  if (buffer[0] & 0x80) {
    let value = 0;
    for (let i = 1; i < buffer.length; i += 1) value = value * 256 + buffer[i];
    return value;
  }
  const text = cString(buffer).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** PAX extended header records: "<len> <key>=<value>\n". */
function paxRecords(data) {
  /** @type {Record<string, string>} */
  const records = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return records;
}

/**
 * The path's components relative to the root; undefined for the root itself. Leading `/` and
 * `./` are dropped as tar does; `..` anywhere is refused.
 */
export function entryComponents(name) {
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.some((part) => part === '..')) throw new LayerError(`layer entry ${JSON.stringify(name)} climbs out of the root`);
  return parts.length === 0 ? undefined : parts;
}

/**
 * Makes sure every directory above the entry exists as a real directory (never a symlink), and
 * returns the path relative to the working directory.
 */
function parentsOf(parts) {
  let path = '.';
  for (const part of parts.slice(0, -1)) {
    path += `/${part}`;
    const info = lstatOrUndefined(path);
    if (info === undefined) mkdirSync(path, { mode: 0o755 });
    else if (!info.isDirectory()) {
      // A lower layer's file or symlink where this layer has a directory: the directory wins,
      // as an overlay mount would show it; following a symlink here could leave the root.
      rmSync(path, { recursive: true, force: true });
      mkdirSync(path, { mode: 0o755 });
    }
  }
  return `${path}/${parts[parts.length - 1]}`;
}

function lstatOrUndefined(path) {
  try {
    return lstatSync(path);
  } catch (error) {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Walks to an existing path without following symlinks in its parents; undefined when absent. */
function existingPath(parts) {
  let path = '.';
  for (const [index, part] of parts.entries()) {
    path += `/${part}`;
    const info = lstatOrUndefined(path);
    if (info === undefined) return undefined;
    if (index < parts.length - 1 && !info.isDirectory()) return undefined;
  }
  return path;
}

/** Removes whatever is at path (a directory with its contents), unless a directory is to stay one. */
function clearFor(path, keepDirectory) {
  const info = lstatOrUndefined(path);
  if (info === undefined) return;
  if (keepDirectory && info.isDirectory()) return;
  rmSync(path, { recursive: true, force: true });
}

async function writeFileEntry(reader, path, size, mode) {
  clearFor(path, false);
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    let left = size;
    while (left > 0) {
      const chunk = await reader.readSome(Math.min(left, 1 << 20));
      writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  chmodSync(path, mode & 0o7777);
  const padding = (BLOCK - (size % BLOCK)) % BLOCK;
  if (padding > 0) await reader.read(padding);
}

async function skip(reader, size) {
  let left = size + ((BLOCK - (size % BLOCK)) % BLOCK);
  while (left > 0) left -= (await reader.readSome(Math.min(left, 1 << 20))).length;
}

/**
 * Applies one layer (a tar stream) to the root in the working directory.
 * @param {AsyncIterable<Buffer>} tarStream
 * @returns {Promise<{ entries: number, skipped: number }>}
 */
export async function applyLayer(tarStream) {
  const reader = byteReader(tarStream);
  /** Paths this layer made, which its own opaque markers must not remove. */
  const made = new Set();
  /** @type {Array<{ path: string, mtime: number }>} directory times are set last, after their contents */
  const directoryTimes = [];
  let pax = {};
  let globalPax = {};
  let longName;
  let longLink;
  let entries = 0;
  let skipped = 0;

  for (;;) {
    const header = await reader.read(BLOCK);
    if (header === undefined || header.every((byte) => byte === 0)) break;
    const size = octal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156] || 0x30);
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      const data = size > 0 ? await reader.read(size + ((BLOCK - (size % BLOCK)) % BLOCK)) : Buffer.alloc(0);
      const body = data.subarray(0, size);
      if (type === 'x') pax = paxRecords(body);
      else if (type === 'g') globalPax = { ...globalPax, ...paxRecords(body) };
      else if (type === 'L') longName = cString(body);
      else longLink = cString(body);
      continue;
    }
    const attributes = { ...globalPax, ...pax };
    // Only POSIX ustar has a name prefix there; GNU tar's "ustar  " keeps other fields in those bytes.
    const prefix = header.subarray(257, 263).toString('latin1') === 'ustar\0' ? cString(header.subarray(345, 500)) : '';
    const shortName = cString(header.subarray(0, 100));
    const name = attributes.path ?? longName ?? (prefix !== '' ? `${prefix}/${shortName}` : shortName);
    const linkName = attributes.linkpath ?? longLink ?? cString(header.subarray(157, 257));
    const realSize = attributes.size !== undefined ? Number(attributes.size) : size;
    const mode = octal(header.subarray(100, 108));
    const mtime = attributes.mtime !== undefined ? Number(attributes.mtime) : octal(header.subarray(136, 148));
    pax = {};
    longName = undefined;
    longLink = undefined;
    entries += 1;

    const parts = entryComponents(name);
    if (parts === undefined) {
      await skip(reader, type === '0' || type === '7' ? realSize : 0);
      continue;
    }
    const base = parts[parts.length - 1];
    if (base === OPAQUE_MARKER) {
      const dirParts = parts.slice(0, -1);
      const dir = dirParts.length === 0 ? '.' : existingPath(dirParts);
      if (dir !== undefined && lstatSync(dir).isDirectory()) {
        for (const child of readdirSync(dir)) {
          const childPath = `${dir}/${child}`;
          if (!made.has(childPath)) rmSync(childPath, { recursive: true, force: true });
        }
      }
      await skip(reader, realSize);
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const target = existingPath([...parts.slice(0, -1), base.slice(WHITEOUT_PREFIX.length)]);
      if (target !== undefined && !made.has(target)) rmSync(target, { recursive: true, force: true });
      await skip(reader, realSize);
      continue;
    }

    const path = parentsOf(parts);
    switch (type) {
      case '0':
      case '7':
        await writeFileEntry(reader, path, realSize, mode);
        utimesSync(path, mtime, mtime);
        break;
      case '1': {
        const targetParts = entryComponents(linkName);
        const target = targetParts && existingPath(targetParts);
        if (target === undefined || lstatSync(target).isDirectory()) throw new LayerError(`hard link ${JSON.stringify(name)} names ${JSON.stringify(linkName)}, which is not a file of the root`);
        if (target !== path) {
          clearFor(path, false);
          linkSync(target, path);
        }
        await skip(reader, realSize);
        break;
      }
      case '2':
        clearFor(path, false);
        // The target is stored as it is: inside a sandbox it resolves against the image's root.
        symlinkSync(linkName, path);
        lutimesSync(path, mtime, mtime);
        await skip(reader, realSize);
        break;
      case '5':
        clearFor(path, true);
        if (lstatOrUndefined(path) === undefined) mkdirSync(path);
        // The owner needs to write into it while later layers arrive; the mode is set at the end.
        chmodSync(path, (mode & 0o7777) | 0o700);
        directoryTimes.push({ path, mtime, mode: mode & 0o7777 });
        break;
      default:
        // Character and block devices, FIFOs, and anything this program does not know.
        skipped += 1;
        await skip(reader, type === '3' || type === '4' || type === '6' ? 0 : realSize);
        continue;
    }
    made.add(path);
  }
  // Modes without the owner's write bit would stop the next layer from writing there; they are
  // applied after the last layer, so here they are only remembered.
  for (const { path, mtime } of directoryTimes.reverse()) {
    try {
      utimesSync(path, mtime, mtime);
    } catch {
      // Removed by a later entry of the same layer.
    }
  }
  return { entries, skipped, directoryModes: directoryTimes };
}

/** Makes the container's mount points, replacing anything that is not a directory there. */
export function finishRoot() {
  for (const [relative, mode] of MOUNT_POINTS) {
    const parts = String(relative).split('/');
    const path = parentsOf(parts);
    const info = lstatOrUndefined(path);
    if (info !== undefined && !info.isDirectory()) rmSync(path, { recursive: true, force: true });
    if (lstatOrUndefined(path) === undefined) mkdirSync(path);
    chmodSync(path, Number(mode));
  }
}

/** @param {number} fd */
function layerStream(fd) {
  const stream = createReadStream('', { fd, autoClose: true });
  // gzip is told by its magic; the media type is not trusted to say it.
  return (async function* () {
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) return;
    /** @type {Buffer} */
    const head = first.value;
    const rest = (async function* () {
      yield head;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    })();
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const gunzip = createGunzip();
      (async () => {
        try {
          for await (const chunk of rest) if (!gunzip.write(chunk)) await new Promise((resolve) => gunzip.once('drain', resolve));
          gunzip.end();
        } catch (error) {
          gunzip.destroy(error);
        }
      })();
      yield* gunzip;
    } else if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
      throw new LayerError('zstd-compressed layers are not supported');
    } else {
      yield* rest;
    }
  })();
}

/** Becomes the container user for good: groups first, then gid, then uid. */
function dropPrivileges() {
  const uid = Number(process.env.CCBRIDGE_UNPACK_UID);
  const gid = Number(process.env.CCBRIDGE_UNPACK_GID);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid < 0 || gid < 0) throw new LayerError('CCBRIDGE_UNPACK_UID and CCBRIDGE_UNPACK_GID must name the user to unpack as');
  if (process.getuid?.() === 0) {
    process.setgroups?.([]);
    process.setgid?.(gid);
    process.setuid?.(uid);
  }
  if (process.getuid?.() !== uid || process.getgid?.() !== gid) throw new LayerError(`could not become uid ${uid} gid ${gid}`);
}

async function main() {
  dropPrivileges();
  const count = Number(process.env.CCBRIDGE_LAYER_COUNT ?? '0');
  if (!Number.isInteger(count) || count < 0) throw new LayerError('CCBRIDGE_LAYER_COUNT must be the number of layer fds');
  /** @type {Array<{ path: string, mode: number }>} */
  const modes = [];
  for (let index = 0; index < count; index += 1) {
    const fd = 3 + index;
    fstatSync(fd);
    try {
      const { directoryModes } = await applyLayer(layerStream(fd));
      modes.push(...directoryModes);
    } catch (error) {
      throw new LayerError(`layer ${index + 1} of ${count}: ${error.message}`);
    }
  }
  // The last layer's mode of a directory wins; the deepest directories go first, so a parent
  // without search permission cannot hide its children from this.
  const finalModes = new Map(modes.map(({ path, mode }) => [path, mode]));
  const deepestFirst = [...finalModes].sort(([a], [b]) => b.split('/').length - a.split('/').length);
  for (const [path, mode] of deepestFirst) {
    try {
      if (lstatSync(path).isDirectory()) chmodSync(path, mode);
    } catch {
      // Removed by a later layer.
    }
  }
  finishRoot();
}

if (process.env.CCBRIDGE_UNPACK_LAYERS === '1') {
  main().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error instanceof LayerError ? error.message : error.stack ?? error}\n`);
      process.exit(1);
    },
  );
}
