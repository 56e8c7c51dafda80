// Types for registry.mjs (plain JavaScript, so that the lifecycle runs without a build).
import type { Readable } from 'node:stream';

export declare const DOCKER_HUB_REGISTRY: 'registry-1.docker.io';

export declare const MEDIA_TYPES: Readonly<{
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json';
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json';
  dockerConfig: 'application/vnd.docker.container.image.v1+json';
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
  ociIndex: 'application/vnd.oci.image.index.v1+json';
  ociManifest: 'application/vnd.oci.image.manifest.v1+json';
  ociConfig: 'application/vnd.oci.image.config.v1+json';
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip';
  ociLayerUncompressed: 'application/vnd.oci.image.layer.v1.tar';
}>;

/** What went wrong, for callers to switch on. */
export type RegistryErrorCode =
  | 'INVALID_REFERENCE'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'NOT_FOUND'
  | 'NO_MATCHING_PLATFORM'
  | 'UNSUPPORTED_MANIFEST'
  | 'DIGEST_MISMATCH'
  | 'TOO_MANY_REQUESTS'
  | 'TIMEOUT'
  | 'TLS'
  | 'CONNECTION'
  | 'PROTOCOL'
  | 'IO';

/** A registry failure. Its message never contains the password or a token. */
export declare class RegistryError extends Error {
  constructor(code: RegistryErrorCode, message: string, details?: { status?: number; cause?: unknown });
  readonly code: RegistryErrorCode;
  /** The HTTP status, when the failure was an answer. */
  readonly status: number | undefined;
}

/** A parsed image reference. */
export interface ImageReference {
  /** The host[:port] dialled; Docker Hub is `registry-1.docker.io`. */
  readonly registry: string;
  /** The repository in the registry, `library/`-prefixed for official Docker Hub images. */
  readonly repository: string;
  /** The tag (`latest` when neither a tag nor a digest was given; undefined for a bare digest). */
  readonly tag: string | undefined;
  /** `sha256:<hex>` when the reference names a digest. */
  readonly digest: string | undefined;
  /** What the registry is asked for: the digest if any, else the tag. */
  readonly reference: string;
  /** The name as written, without tag or digest (`busybox`, `host:5000/team/app`). */
  readonly name: string;
  /** `<name>:<tag>` or `<name>@<digest>`. */
  readonly familiar: string;
  /** `<registry>/<repository>:<tag>` or `…@<digest>`. */
  readonly canonical: string;
}

/** `busybox`, `user/image:tag`, `host:port/repo:tag`, `repo@sha256:…`. */
export declare function parseImageReference(text: string): ImageReference;

/** `docker://<index>/<remote>[#<tag or digest>]`, as the nsync recipe writes rootfs URIs. */
export declare function parseDockerRootfsUri(uri: string): ImageReference;

/** A registry host as dialled: Docker Hub aliases become `registry-1.docker.io`, schemes and paths are dropped. */
export declare function normalizeRegistryHost(server: string): string;

export interface ExposedPort {
  readonly port: number;
  readonly protocol: string;
}

/** The parts of an image config a lifecycle uses; absent values are empty. */
export interface ImageMetadata {
  readonly entrypoint: string[];
  readonly cmd: string[];
  /** `NAME=value` entries. */
  readonly env: string[];
  /** Sorted by port, tcp first on the same port. */
  readonly exposedPorts: ExposedPort[];
  readonly user: string;
  readonly workdir: string;
}

export declare function imageMetadataOf(config: unknown): ImageMetadata;

export interface LayerDescriptor {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  /** Foreign layers' download URLs, when the manifest gives them. */
  readonly urls?: string[];
}

export interface ResolvedImage {
  readonly reference: ImageReference;
  /** The manifest list / OCI index digest when the reference named one. */
  readonly indexDigest: string | undefined;
  /** The platform image manifest's digest. */
  readonly manifestDigest: string;
  readonly mediaType: string;
  readonly configDigest: string;
  /** The image config blob as parsed JSON. */
  readonly config: any;
  readonly metadata: ImageMetadata;
  /** The config's rootfs.diff_ids: each layer's uncompressed digest, in layer order. */
  readonly diffIds: string[];
  /** Bottom layer first. */
  readonly layers: LayerDescriptor[];
  /** The platform image manifest, parsed, and its bytes as received (their sha256 is manifestDigest). */
  readonly manifest: any;
  readonly manifestBytes: Buffer;
}

export interface RegistryClientOptions {
  /** A PEM file of CAs trusted in addition to node's default store (and NODE_EXTRA_CA_CERTS). */
  caFile?: string;
  /** PEM text of extra CAs, as caFile. */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * Registries (`host:port`, or `host` for every port) spoken to as docker speaks to insecure
   * ones: https without verifying the certificate if they answer TLS, else plain http. A
   * comma-separated string is accepted.
   */
  insecureRegistries?: readonly string[] | string;
  username?: string;
  password?: string;
  /** The registry the credentials are for; when absent they are offered to every registry. */
  loginServer?: string;
  /** Per request: connecting, waiting for headers, and between body chunks. Default 60 s. */
  timeoutMs?: number;
  /** The platform chosen from manifest lists; default linux/amd64. */
  platform?: { os?: string; architecture?: string; variant?: string };
  userAgent?: string;
}

export interface FetchedBlob {
  readonly digest: string;
  readonly size: number;
  readonly path: string;
}

export interface RegistryClient {
  /** Manifest (through a manifest list or OCI index when there is one), config and layers. */
  resolveImage(ref: string | ImageReference): Promise<ResolvedImage>;
  /** Downloads a blob to `toPath` (written beside it, renamed once the digest matched). */
  fetchBlob(ref: string | ImageReference, digest: string, toPath: string): Promise<FetchedBlob>;
  /** A blob as a stream; it errors with DIGEST_MISMATCH instead of ending when the content does not match. */
  openBlob(ref: string | ImageReference, digest: string): Promise<Readable & { readonly bytesRead: number }>;
  /** A small blob (up to 8 MiB) in memory, verified. */
  readBlob(ref: string | ImageReference, digest: string): Promise<Buffer>;
  /** Uploads a blob in one piece unless the repository has it; content is a Buffer or opens a stream of `size` bytes. */
  pushBlob(
    ref: string | ImageReference,
    digest: string,
    content: Buffer | (() => Promise<Readable>),
    size?: number,
  ): Promise<{ digest: string; uploaded: boolean }>;
  /** PUTs manifest bytes under a tag or digest; returns their digest. */
  pushManifest(ref: string | ImageReference, reference: string, bytes: Buffer, mediaType: string): Promise<string>;
  /** Copies a resolved image that `source` can read into `target` (same manifest bytes, so the same digest). */
  copyImage(source: RegistryClient, image: ResolvedImage, target: string | ImageReference): Promise<{ reference: ImageReference; manifestDigest: string }>;
  /** `https://host:port`, or for an insecure registry whichever of https and http it speaks (probed once). */
  registryURL(registry: string): Promise<string>;
  /** Closes kept-alive connections. */
  close(): void;
}

export declare function createRegistryClient(options?: RegistryClientOptions): RegistryClient;

/** The first challenge of a WWW-Authenticate header, scheme lower-cased, parameters by lower-cased name. */
export declare function parseChallenge(header: string | undefined): ({ scheme: string } & Record<string, string>) | undefined;
