// The image store's registry: the docker lifecycle's registry HTTP API v2 client (manifest lists,
// schema 2 and OCI manifests, token and basic auth, TLS with the cell's CA, plain http for the
// registries the cell calls insecure), one client per pull, since credentials belong to the work.
import { createRegistryClient, parseDockerRootfsUri, type RegistryClientOptions } from '../../../lifecycles/docker/lib/registry.mjs';
import type { ImageCredentials, ImageRegistry } from './images.js';

export interface ImageRegistryOptions {
  /** A PEM file of CAs the cell trusts for registries, beside the system's. */
  caFile?: string;
  /** `host:port` (or `host`) of registries spoken to over plain http. */
  insecureRegistries?: readonly string[];
  /** Per request (connect, headers, between body chunks). */
  requestTimeoutMs?: number;
}

export function createImageRegistry(options: ImageRegistryOptions = {}): ImageRegistry {
  const clientFor = (credentials: ImageCredentials | undefined) => {
    const clientOptions: RegistryClientOptions = {
      caFile: options.caFile || undefined,
      insecureRegistries: options.insecureRegistries ?? [],
      timeoutMs: options.requestTimeoutMs,
      ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
    };
    return createRegistryClient(clientOptions);
  };
  return {
    async resolve(rootFs, credentials) {
      const client = clientFor(credentials);
      try {
        const image = await client.resolveImage(parseDockerRootfsUri(rootFs));
        return {
          digest: image.manifestDigest,
          layers: image.layers.map((layer) => ({ digest: layer.digest, size: layer.size })),
          env: image.metadata.env,
        };
      } finally {
        client.close();
      }
    },
    async fetchBlob(rootFs, credentials, digest, destination) {
      const client = clientFor(credentials);
      try {
        await client.fetchBlob(parseDockerRootfsUri(rootFs), digest, destination);
      } finally {
        client.close();
      }
    },
  };
}
