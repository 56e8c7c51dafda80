// Types for lifecycles/package.mjs, which is plain JavaScript so that it runs without a build.

/** An archive written by the packaging functions. */
export interface PackagedArchive {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

export declare const BUILDPACK_LIFECYCLE_ARCHIVE: 'buildpack_app_lifecycle.tgz';
export declare const DOCKER_LIFECYCLE_ARCHIVE: 'docker_app_lifecycle.tgz';
export declare const EXAMPLE_BUILDPACKS: readonly string[];

/** Writes `<outDir>/buildpack_app_lifecycle.tgz`. */
export declare function packageBuildpackLifecycle(outDir: string): PackagedArchive;

/** Writes `<outDir>/<name>_buildpack.tgz` for one of EXAMPLE_BUILDPACKS. */
export declare function packageBuildpack(name: string, outDir: string): PackagedArchive;

/** Writes `<outDir>/docker_app_lifecycle.tgz` (everything in lifecycles/docker but type declarations). */
export declare function packageDockerLifecycle(outDir: string): PackagedArchive;
