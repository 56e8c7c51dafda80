// The buildpack builder: what a staging task runs as /tmp/lifecycle/builder (spec §3.3, §10).
//
// It follows the Cloud Foundry buildpack contract:
//   1. detection: each buildpack's `bin/detect <build dir>` in -buildpackOrder, the first to exit
//      0 is chosen and its stdout names it; with -skipDetect=true the order is used as given,
//      every buildpack but the last supplying and the last finalizing;
//   2. build: `bin/supply` + `bin/finalize` when the final buildpack has finalize (multi-buildpack
//      style), else the classic `bin/compile <build dir> <cache dir>`;
//   3. `bin/release <build dir>` (YAML whose default_process_types.web is the start command),
//      unless the final buildpack wrote a launch.yml; a Procfile in the app overrides both;
//   4. the droplet (a tgz of `app/`, `tmp/`, `logs/`, `staging_info.yml`, and `deps/` /
//      `profile.d/` when a buildpack filled them), the build artifacts cache (a tgz of the cache
//      directory) and the result JSON the stager hands to CC.
//
// Exit codes are the contract the stager reads from "Exited with status N": 222 when nothing
// detects, 223 when supply, finalize or compile fails, 224 when release fails, 1 for anything
// else. The later Cloud Foundry builder gave supply and finalize failures codes of their own
// (225, 226); the 2015 stager knows only 222-224, so they stay compile failures (223) here.
//
// Buildpack output is the staging log: it goes to our stdout and stderr as it is written.
import { createHash } from 'node:crypto';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fetchCustomBuildpack, isBuildpackURL } from './lib/custom-buildpack.mjs';
import { FlagError, flagUsage, parseGoFlags } from './lib/flags.mjs';
import { goJson, sortedMap } from './lib/go-json.mjs';
import { describeFailure, run, stopRunning, succeeded } from './lib/run.mjs';
import { isMapping, parseYaml, readStringMap, YamlError } from './lib/yaml.mjs';

const FLAGS = {
  buildDir: { type: 'string', default: '/tmp/app', usage: 'directory containing the application source' },
  buildpacksDir: { type: 'string', default: '/tmp/buildpacks', usage: 'directory containing the buildpacks, one per md5 of its key' },
  buildpackOrder: { type: 'string', default: '', usage: 'comma-separated list of buildpack keys, in the order to detect' },
  buildArtifactsCacheDir: { type: 'string', default: '/tmp/cache', usage: 'directory of the build artifacts cache' },
  outputDroplet: { type: 'string', default: '/tmp/droplet', usage: 'file to write the droplet to' },
  outputMetadata: { type: 'string', default: '/tmp/result.json', usage: 'file to write the staging result JSON to' },
  outputBuildArtifactsCache: { type: 'string', default: '/tmp/output-cache', usage: 'file to write the build artifacts cache to' },
  skipDetect: { type: 'bool', default: false, usage: 'use the buildpacks in -buildpackOrder without detection' },
  skipCertVerify: { type: 'bool', default: false, usage: 'skip TLS certificate verification when fetching buildpacks by URL' },
};

const EXIT_DETECT_FAILED = 222;
const EXIT_COMPILE_FAILED = 223;
const EXIT_RELEASE_FAILED = 224;
const EXIT_OTHER = 1;

// The Cloud Foundry builder's messages, which users and its docs know.
const DETECT_FAIL_MSG = 'None of the buildpacks detected a compatible application';
const COMPILE_FAIL_MSG = 'Failed to compile droplet';
const RELEASE_FAIL_MSG = 'Failed to build droplet release';
const SUPPLY_FAIL_MSG = 'Failed to run all supply scripts';
const NO_SUPPLY_SCRIPT_FAIL_MSG = 'Error: one of the buildpacks chosen to supply dependencies does not support multi-buildpack apps';
const FINALIZE_FAIL_MSG = 'Failed to run finalize script';
const MISSING_FINALIZE_WARN_MSG =
  'Warning: the last buildpack is not compatible with multi-buildpack apps and cannot make use of any dependencies supplied by the buildpacks specified before it';

/** A staging failure with the exit code the stager translates for CC. */
class StagingFailure extends Error {
  constructor(exitCode, message) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * @typedef {{
 *   buildDir: string, buildpacksDir: string, buildpackOrder: string[], buildArtifactsCacheDir: string,
 *   outputDroplet: string, outputMetadata: string, outputBuildArtifactsCache: string,
 *   skipDetect: boolean, skipCertVerify: boolean,
 * }} BuilderConfig
 */

/** @returns {BuilderConfig} */
function readConfig(argv) {
  const { values, rest } = parseGoFlags(argv, FLAGS);
  if (rest.length > 0) throw new FlagError(`unexpected argument: ${rest[0]}`);
  const order = String(values.buildpackOrder);
  return {
    buildDir: String(values.buildDir),
    buildpacksDir: String(values.buildpacksDir),
    buildpackOrder: order === '' ? [] : order.split(','),
    buildArtifactsCacheDir: String(values.buildArtifactsCacheDir),
    outputDroplet: String(values.outputDroplet),
    outputMetadata: String(values.outputMetadata),
    outputBuildArtifactsCache: String(values.outputBuildArtifactsCache),
    skipDetect: values.skipDetect === true,
    skipCertVerify: values.skipCertVerify === true,
  };
}

function md5Hex(text) {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

class Builder {
  /** @param {BuilderConfig} config */
  constructor(config) {
    this.config = config;
    /** Where the droplet is assembled before it is packed. */
    this.contentsDir = '';
    this.depsDir = '';
    this.profileDir = '';
  }

  /** With -skipDetect every buildpack but the last supplies; detection picks one, which supplies nothing before it. */
  get supplyBuildpacks() {
    const order = this.config.buildpackOrder;
    return this.config.skipDetect && order.length > 0 ? order.slice(0, -1) : [];
  }

  /** deps/ subdirectories are numbered, zero-padded to the width of the largest index. */
  depsIndex(index) {
    const width = String(Math.max(this.config.buildpackOrder.length - 1, 0)).length;
    return String(index).padStart(width, '0');
  }

  supplyCachePath(key) {
    return join(this.config.buildArtifactsCacheDir, md5Hex(key));
  }

  get finalCachePath() {
    return join(this.config.buildArtifactsCacheDir, 'final');
  }

  async run() {
    this.setUpDirectories();
    await this.fetchCustomBuildpacks();
    this.cleanCacheDir();

    const chosen = this.config.skipDetect ? await this.supply() : await this.detect();
    await this.finalize(chosen.path);

    const processTypes = await this.processTypes(chosen.path);
    const web = processTypes.web ?? '';
    if (web === '') {
      process.stderr.write('No start command specified by buildpack or via Procfile.\n');
      process.stderr.write('App will not start unless a command is provided at runtime.\n');
    }

    const buildpacks = this.config.skipDetect ? this.buildpacksMetadata(this.config.buildpackOrder) : this.buildpacksMetadata([chosen.key]);
    const last = buildpacks[buildpacks.length - 1];
    // Detection names the buildpack by what bin/detect printed, unless it named itself in config.yml.
    if (!this.config.skipDetect && last.name === '') last.name = chosen.detectOutput;

    writeFileSync(join(this.contentsDir, 'staging_info.yml'), `${goJson({ detected_buildpack: last.name, start_command: web })}\n`);
    await this.writeDroplet();
    await this.writeBuildArtifactsCache();
    writeFileSync(this.config.outputMetadata, stagingResultJson(last, buildpacks, processTypes));
  }

  setUpDirectories() {
    try {
      mkdirSync(dirname(this.config.outputDroplet), { recursive: true });
      mkdirSync(dirname(this.config.outputMetadata), { recursive: true });
      mkdirSync(this.finalCachePath, { recursive: true });
      for (const key of this.supplyBuildpacks) mkdirSync(this.supplyCachePath(key), { recursive: true });
      this.contentsDir = mkdtempSync(join(tmpdir(), 'contents'));
      // mkdtemp makes it private; it becomes the droplet's root, which the app's user must read.
      chmodSync(this.contentsDir, 0o755);
      this.depsDir = join(this.contentsDir, 'deps');
      for (let index = 0; index <= this.supplyBuildpacks.length; index += 1) {
        mkdirSync(join(this.depsDir, this.depsIndex(index)), { recursive: true });
      }
      this.profileDir = join(this.contentsDir, 'profile.d');
      mkdirSync(this.profileDir, { recursive: true });
    } catch (error) {
      throw new StagingFailure(EXIT_OTHER, `Failed to set up filesystem when generating droplet: ${messageOf(error)}`);
    }
  }

  async fetchCustomBuildpacks() {
    for (const key of this.config.buildpackOrder) {
      if (!isBuildpackURL(key)) continue;
      const destination = join(this.config.buildpacksDir, md5Hex(key));
      // Already there: the task downloaded it after all (a buildpack CC did not call `custom`).
      if (existsSync(destination) && readdirSync(destination).length > 0) continue;
      try {
        await fetchCustomBuildpack(key, destination, { skipCertVerify: this.config.skipCertVerify });
      } catch (error) {
        throw new StagingFailure(EXIT_OTHER, messageOf(error));
      }
    }
  }

  /** The cache keeps only what this staging's buildpacks can use: `final/` and one directory per supplying buildpack. */
  cleanCacheDir() {
    const keep = new Set([this.finalCachePath, ...this.supplyBuildpacks.map((key) => this.supplyCachePath(key))]);
    for (const name of readdirSync(this.config.buildArtifactsCacheDir)) {
      const path = join(this.config.buildArtifactsCacheDir, name);
      if (!keep.has(path)) rmSync(path, { recursive: true, force: true });
    }
  }

  /**
   * A buildpack's root: its directory, or the one directory inside it when the archive wrapped
   * everything in a top-level folder (as GitHub's source archives do).
   */
  buildpackPath(key) {
    const path = join(this.config.buildpacksDir, md5Hex(key));
    if (existsSync(join(path, 'bin'))) return path;
    let entries;
    try {
      entries = readdirSync(path);
    } catch {
      throw new Error(`Failed to read buildpack directory '${path}' for buildpack '${key}'`);
    }
    if (entries.length === 1 && existsSync(join(path, entries[0], 'bin'))) return join(path, entries[0]);
    throw new Error(`malformed buildpack does not contain a /bin dir: ${key}`);
  }

  /** @returns {Promise<{ key: string, path: string, detectOutput: string }>} */
  async detect() {
    for (const key of this.config.buildpackOrder) {
      let path;
      try {
        path = this.buildpackPath(key);
      } catch (error) {
        process.stderr.write(`${messageOf(error)}\n`);
        continue;
      }
      const detect = join(path, 'bin', 'detect');
      try {
        accessSync(detect, constants.X_OK);
      } catch {
        process.stderr.write(`WARNING: buildpack script '/bin/detect' is not executable\n`);
        continue;
      }
      const result = await run(detect, [this.config.buildDir], { captureStdout: true });
      if (succeeded(result)) return { key, path, detectOutput: result.stdout.replace(/[\r\n]+$/, '') };
    }
    throw new StagingFailure(EXIT_DETECT_FAILED, DETECT_FAIL_MSG);
  }

  /** -skipDetect: every buildpack but the last runs bin/supply; the last is the final one. */
  async supply() {
    const order = this.config.buildpackOrder;
    if (order.length === 0) throw new StagingFailure(EXIT_DETECT_FAILED, DETECT_FAIL_MSG);
    const supplyPaths = this.supplyBuildpacks.map((key) => {
      try {
        const path = this.buildpackPath(key);
        if (!existsSync(join(path, 'bin', 'supply'))) throw new StagingFailure(EXIT_COMPILE_FAILED, NO_SUPPLY_SCRIPT_FAIL_MSG);
        return { key, path };
      } catch (error) {
        if (error instanceof StagingFailure) throw error;
        process.stderr.write(`${messageOf(error)}\n`);
        throw new StagingFailure(EXIT_COMPILE_FAILED, `${SUPPLY_FAIL_MSG}: ${messageOf(error)}`);
      }
    });
    for (const [index, { key, path }] of supplyPaths.entries()) {
      const result = await run(join(path, 'bin', 'supply'), [this.config.buildDir, this.supplyCachePath(key), this.depsDir, this.depsIndex(index)]);
      if (!succeeded(result)) throw new StagingFailure(EXIT_COMPILE_FAILED, `${SUPPLY_FAIL_MSG}: ${describeFailure(result)}`);
    }
    const key = order[order.length - 1];
    try {
      return { key, path: this.buildpackPath(key), detectOutput: '' };
    } catch (error) {
      throw new StagingFailure(EXIT_COMPILE_FAILED, `${SUPPLY_FAIL_MSG}: ${messageOf(error)}`);
    }
  }

  /** The final buildpack: supply + finalize when it has finalize, else the classic compile. */
  async finalize(path) {
    const index = this.depsIndex(this.supplyBuildpacks.length);
    const buildDir = this.config.buildDir;
    if (existsSync(join(path, 'bin', 'finalize'))) {
      if (existsSync(join(path, 'bin', 'supply'))) {
        const supplied = await run(join(path, 'bin', 'supply'), [buildDir, this.finalCachePath, this.depsDir, index]);
        if (!succeeded(supplied)) throw new StagingFailure(EXIT_COMPILE_FAILED, `${SUPPLY_FAIL_MSG}: ${describeFailure(supplied)}`);
      }
      const finalized = await run(join(path, 'bin', 'finalize'), [buildDir, this.finalCachePath, this.depsDir, index, this.profileDir]);
      if (!succeeded(finalized)) throw new StagingFailure(EXIT_COMPILE_FAILED, `${COMPILE_FAIL_MSG}: ${FINALIZE_FAIL_MSG}: ${describeFailure(finalized)}`);
      return;
    }
    if (this.supplyBuildpacks.length > 0) process.stderr.write(`${MISSING_FINALIZE_WARN_MSG}\n`);
    // A classic buildpack has no deps directory of its own.
    rmSync(join(this.depsDir, index), { recursive: true, force: true });
    const compiled = await run(join(path, 'bin', 'compile'), [buildDir, this.finalCachePath]);
    if (!succeeded(compiled)) throw new StagingFailure(EXIT_COMPILE_FAILED, `${COMPILE_FAIL_MSG}: ${describeFailure(compiled)}`);
  }

  /**
   * Process types: the supplying buildpacks' launch.yml, then the final buildpack's launch.yml or
   * else its bin/release, then the app's Procfile; later sources win per type.
   * @returns {Promise<Record<string, string>>}
   */
  async processTypes(finalPath) {
    /** @type {Record<string, string>} */
    let types = Object.create(null);
    for (let index = 0; index < this.supplyBuildpacks.length; index += 1) {
      types = { ...types, ...this.readLaunchYml(index) };
    }
    const finalIndex = this.supplyBuildpacks.length;
    if (existsSync(join(this.depsDir, this.depsIndex(finalIndex), 'launch.yml'))) {
      types = { ...types, ...this.readLaunchYml(finalIndex) };
    } else {
      types = { ...types, ...(await this.release(finalPath)) };
    }
    return { ...types, ...this.readProcfile() };
  }

  readLaunchYml(index) {
    const path = join(this.depsDir, this.depsIndex(index), 'launch.yml');
    if (!existsSync(path)) return {};
    /** @type {Record<string, string>} */
    const types = Object.create(null);
    try {
      const launch = parseYaml(readFileSync(path, 'utf8'));
      const processes = isMapping(launch) ? launch.processes : undefined;
      if (processes === null || processes === undefined) return types;
      if (!Array.isArray(processes)) throw new YamlError('processes: expected a sequence');
      for (const entry of processes) {
        if (!isMapping(entry) || typeof entry.type !== 'string') throw new YamlError('processes: each entry needs a type');
        types[entry.type] = typeof entry.command === 'string' ? entry.command : '';
      }
    } catch (error) {
      throw new StagingFailure(EXIT_RELEASE_FAILED, `${RELEASE_FAIL_MSG}: invalid launch.yml: ${messageOf(error)}`);
    }
    return types;
  }

  async release(path) {
    const result = await run(join(path, 'bin', 'release'), [this.config.buildDir], { captureStdout: true });
    if (!succeeded(result)) throw new StagingFailure(EXIT_RELEASE_FAILED, `${RELEASE_FAIL_MSG}: ${describeFailure(result)}`);
    try {
      const release = parseYaml(result.stdout);
      if (release !== null && !isMapping(release)) throw new YamlError('expected a mapping');
      return readStringMap(release?.default_process_types, 'default_process_types');
    } catch (error) {
      throw new StagingFailure(EXIT_RELEASE_FAILED, `${RELEASE_FAIL_MSG}: buildpack's release output invalid: ${messageOf(error)}`);
    }
  }

  readProcfile() {
    const path = join(this.config.buildDir, 'Procfile');
    if (!existsSync(path)) return {};
    try {
      return readStringMap(parseYaml(readFileSync(path, 'utf8')), 'Procfile');
    } catch {
      throw new StagingFailure(EXIT_OTHER, 'Failed to read command from Procfile: invalid YAML');
    }
  }

  /** @returns {{ key: string, name: string, version?: string }[]} */
  buildpacksMetadata(keys) {
    return keys.map((key, index) => {
      /** @type {{ key: string, name: string, version?: string }} */
      const metadata = { key, name: '' };
      const configPath = join(this.depsDir, this.depsIndex(index), 'config.yml');
      if (existsSync(configPath)) {
        try {
          const config = parseYaml(readFileSync(configPath, 'utf8'));
          if (isMapping(config)) {
            if (typeof config.name === 'string') metadata.name = config.name;
            if (typeof config.version === 'string' && config.version !== '') metadata.version = config.version;
          }
        } catch {
          // An unreadable config.yml only costs the buildpack its name, as in Cloud Foundry.
        }
      }
      return metadata;
    });
  }

  async writeDroplet() {
    for (const name of ['tmp', 'logs']) mkdirSync(join(this.contentsDir, name), { recursive: true });
    // Directories no buildpack used stay out of the droplet, which then has the classic layout.
    for (const name of ['deps', 'profile.d']) removeIfEmptyTree(join(this.contentsDir, name));

    const appDir = join(this.contentsDir, 'app');
    mkdirSync(appDir);
    const copied = await run('cp', ['-a', `${this.config.buildDir}/.`, appDir], { quiet: true });
    if (!succeeded(copied)) throw new StagingFailure(EXIT_OTHER, `Failed to copy compiled droplet: ${describeFailure(copied)} ${copied.stdout.trim()}`.trim());

    const packed = await run('tar', ['-czf', this.config.outputDroplet, '-C', this.contentsDir, '.'], { quiet: true });
    if (!succeeded(packed)) throw new StagingFailure(EXIT_OTHER, `Failed to compress droplet filesystem: ${describeFailure(packed)} ${packed.stdout.trim()}`.trim());
  }

  async writeBuildArtifactsCache() {
    mkdirSync(dirname(this.config.outputBuildArtifactsCache), { recursive: true });
    const packed = await run('tar', ['-czf', this.config.outputBuildArtifactsCache, '-C', this.config.buildArtifactsCacheDir, '.'], { quiet: true });
    if (!succeeded(packed)) throw new StagingFailure(EXIT_OTHER, `Failed to compress build artifacts: ${describeFailure(packed)} ${packed.stdout.trim()}`.trim());
  }

  cleanUp() {
    if (this.contentsDir !== '') rmSync(this.contentsDir, { recursive: true, force: true });
  }
}

/** Removes a directory tree that holds no files (empty deps/<index> directories included). */
function removeIfEmptyTree(path) {
  if (!existsSync(path) || !statSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) removeIfEmptyTree(join(path, name));
  if (readdirSync(path).length === 0) rmdirSync(path);
}

/**
 * The result file: the 2015 keys the stager reads (buildpack_key, detected_buildpack,
 * execution_metadata as JSON text, detected_start_command), then what later builders add
 * (lifecycle_type, lifecycle_metadata, process_types) for readers that know them.
 */
function stagingResultJson(last, buildpacks, processTypes) {
  const web = processTypes.web ?? '';
  /** @type {Record<string, unknown>} */
  const result = {};
  if (last.key !== '') result.buildpack_key = last.key;
  result.detected_buildpack = last.name;
  result.execution_metadata = goJson({ start_command: web });
  result.detected_start_command = { web };
  result.lifecycle_type = 'buildpack';
  /** @type {Record<string, unknown>} */
  const lifecycleMetadata = {};
  if (last.key !== '') lifecycleMetadata.buildpack_key = last.key;
  lifecycleMetadata.detected_buildpack = last.name;
  lifecycleMetadata.buildpacks = buildpacks;
  result.lifecycle_metadata = lifecycleMetadata;
  result.process_types = sortedMap(processTypes);
  return `${goJson(result)}\n`;
}

function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

async function main(argv) {
  /** @type {BuilderConfig} */
  let config;
  try {
    config = readConfig(argv);
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    process.stderr.write(`${error.message}\n${flagUsage('builder', FLAGS)}`);
    return EXIT_OTHER;
  }

  const builder = new Builder(config);
  // A cancelled staging stops its buildpack too, and leaves no assembled droplet behind.
  for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
    process.on(signal, () => {
      stopRunning(signal);
      builder.cleanUp();
      process.exit(128 + (signal === 'SIGTERM' ? 15 : 2));
    });
  }
  try {
    await builder.run();
    return 0;
  } catch (error) {
    if (error instanceof StagingFailure) {
      process.stderr.write(`${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`${messageOf(error)}\n`);
    return EXIT_OTHER;
  } finally {
    builder.cleanUp();
  }
}

process.exitCode = await main(process.argv.slice(2));
