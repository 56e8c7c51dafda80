// Packs the programs containers run into the archives the file server hands out:
// buildpack_app_lifecycle.tgz (builder, launcher, healthcheck and diego-sshd at its top level,
// which the recipes' download actions unpack into /tmp/lifecycle), docker_app_lifecycle.tgz
// (the docker builder, and the launcher, healthcheck and diego-sshd docker apps run) and, on
// request, the example buildpacks as <name>_buildpack.tgz.
//
// The archives are reproducible: the same sources give the same bytes (entries sorted by name,
// mtime 0, owner root, fixed modes, gzip without name or time), so a cell's download cache keyed
// on the lifecycle stays valid until the programs actually change. The system tar and gzip do
// the packing.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIFECYCLES_DIR = dirname(fileURLToPath(import.meta.url));

export const BUILDPACK_LIFECYCLE_ARCHIVE = 'buildpack_app_lifecycle.tgz';
export const DOCKER_LIFECYCLE_ARCHIVE = 'docker_app_lifecycle.tgz';
export const EXAMPLE_BUILDPACKS = ['nodejs', 'staticfile'];

/** The programs the recipes run by name; everything else shipped is a module they load. */
const LIFECYCLE_PROGRAMS = new Set(['builder', 'launcher', 'healthcheck', 'diego-sshd']);

/** Packs lifecycles/buildpack into `<outDir>/buildpack_app_lifecycle.tgz`. */
export function packageBuildpackLifecycle(outDir) {
  const sourceDir = join(LIFECYCLES_DIR, 'buildpack');
  return packDirectory(sourceDir, join(outDir, BUILDPACK_LIFECYCLE_ARCHIVE), (relativePath, isTopLevel) => {
    if (isTopLevel && LIFECYCLE_PROGRAMS.has(relativePath)) return 0o755;
    return relativePath.endsWith('.mjs') ? 0o644 : undefined;
  });
}

/**
 * Packs lifecycles/docker into `<outDir>/docker_app_lifecycle.tgz`: the builder (staging tasks
 * unpack it into /tmp/docker_app_lifecycle) and the programs docker app instances run from
 * /tmp/lifecycle. Everything in the folder ships but type declarations; the programs the
 * recipes name are executable.
 */
export function packageDockerLifecycle(outDir) {
  const sourceDir = join(LIFECYCLES_DIR, 'docker');
  return packDirectory(sourceDir, join(outDir, DOCKER_LIFECYCLE_ARCHIVE), (relativePath, isTopLevel) => {
    if (relativePath.endsWith('.d.mts') || relativePath.endsWith('.d.ts')) return undefined;
    if (isTopLevel && LIFECYCLE_PROGRAMS.has(relativePath)) return 0o755;
    return 0o644;
  });
}

/** Packs lifecycles/buildpacks/<name> into `<outDir>/<name>_buildpack.tgz`; bin/* are executable. */
export function packageBuildpack(name, outDir) {
  if (!EXAMPLE_BUILDPACKS.includes(name)) throw new Error(`no example buildpack named ${JSON.stringify(name)}`);
  const sourceDir = join(LIFECYCLES_DIR, 'buildpacks', name);
  return packDirectory(sourceDir, join(outDir, `${name}_buildpack.tgz`), (relativePath) => (relativePath.startsWith('bin/') ? 0o755 : 0o644));
}

/**
 * Copies the files `modeFor` accepts (it returns their mode, or undefined to leave one out) into
 * a staging directory with exactly those modes, and packs that.
 * @param {string} sourceDir
 * @param {string} archivePath
 * @param {(relativePath: string, isTopLevel: boolean) => number | undefined} modeFor
 */
function packDirectory(sourceDir, archivePath, modeFor) {
  const stageDir = mkdtempSync(join(tmpdir(), 'ccbridge-package-'));
  try {
    const topLevel = new Set();
    for (const relativePath of listFiles(sourceDir)) {
      const mode = modeFor(relativePath, !relativePath.includes('/'));
      if (mode === undefined) continue;
      const target = join(stageDir, relativePath);
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(join(sourceDir, relativePath), target);
      chmodSync(target, mode);
      topLevel.add(relativePath.split('/')[0]);
    }
    // Directories get one mode whatever the umask was.
    for (const dir of listDirectories(stageDir)) chmodSync(join(stageDir, dir), 0o755);

    const tar = spawnSync(
      'tar',
      ['--create', '--format=gnu', '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--directory', stageDir, '--file', '-', ...[...topLevel].sort()],
      { maxBuffer: 256 * 1024 * 1024 },
    );
    if (tar.error || tar.status !== 0) throw new Error(`tar failed: ${tar.error?.message ?? tar.stderr.toString().trim()}`);
    const gzip = spawnSync('gzip', ['-9', '-n', '-c'], { input: tar.stdout, maxBuffer: 256 * 1024 * 1024 });
    if (gzip.error || gzip.status !== 0) throw new Error(`gzip failed: ${gzip.error?.message ?? gzip.stderr.toString().trim()}`);

    // Written beside the target and renamed over it, so the file server never serves half an archive.
    mkdirSync(dirname(archivePath), { recursive: true });
    const partial = `${archivePath}.${process.pid}.partial`;
    writeFileSync(partial, gzip.stdout);
    renameSync(partial, archivePath);
    return { path: archivePath, bytes: gzip.stdout.length, sha256: createHash('sha256').update(gzip.stdout).digest('hex') };
  } finally {
    rmSync(stageDir, { recursive: true, force: true });
  }
}

/** Regular files under `dir`, as sorted relative paths with `/` separators. */
function listFiles(dir, prefix = '') {
  const files = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const relativePath = prefix === '' ? name : `${prefix}/${name}`;
    const stats = statSync(join(dir, relativePath));
    if (stats.isDirectory()) files.push(...listFiles(dir, relativePath));
    else if (stats.isFile()) files.push(relativePath);
  }
  return files;
}

function listDirectories(dir, prefix = '') {
  const dirs = [];
  for (const name of readdirSync(join(dir, prefix))) {
    const relativePath = prefix === '' ? name : `${prefix}/${name}`;
    if (statSync(join(dir, relativePath)).isDirectory()) dirs.push(relativePath, ...listDirectories(dir, relativePath));
  }
  return dirs;
}
