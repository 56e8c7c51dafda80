// Types for builder.mjs (plain JavaScript, so that the lifecycle runs without a build).
import type { ImageMetadata, ImageReference } from './lib/registry.mjs';

export declare class BuilderFailure extends Error {}

export interface BuilderConfig {
  outputMetadata: string;
  image: ImageReference;
  insecureRegistries: string[];
  caFile: string | undefined;
  cache: { host: string; port: number } | undefined;
  loginServer: string | undefined;
  username: string;
  password: string;
  timeoutMs: number;
}

/** The builder's flags as the staging task passes them (Go flag syntax; -insecureDockerRegistries may repeat). */
export declare function readConfig(argv: readonly string[]): BuilderConfig;

/** execution_metadata as the 2015 builder wrote it: cmd, entrypoint, workdir, ports ({Port, Protocol}), user; empty ones left out. */
export declare function executionMetadataOf(metadata: ImageMetadata): string;

/** Entrypoint then cmd, joined by spaces. */
export declare function startCommandOf(metadata: ImageMetadata): string;

export interface DockerStagingResult {
  execution_metadata: string;
  detected_start_command: { web: string };
  docker_image: string;
  lifecycle_type: 'docker';
  lifecycle_metadata: { docker_image: string };
  process_types: { web: string };
}

export declare function stagingResultOf(metadata: ImageMetadata, dockerImage: string): DockerStagingResult;

/** Resolves the image, writes the result file and returns the result; progress lines go to `out` (default stdout). */
export declare function build(argv: readonly string[], io?: { out?: (line: string) => void }): Promise<DockerStagingResult>;
