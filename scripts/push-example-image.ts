#!/usr/bin/env -S node --import tsx
// Builds the example docker image (examples/docker-busybox) from Debian's busybox-static and
// pushes it to a registry over the registry HTTP API, then prints the reference to push as a
// docker app.
//
//   node --import tsx scripts/push-example-image.ts <host:port> [--name <repository>:<tag>]
//       [--tls] [--ca <PEM file>] [--user <name>]   (the password from REGISTRY_PASSWORD)
//       [--whiteouts]
//
// Plain http unless --tls (or --ca) is given. The registry must accept Basic credentials or
// none: Bearer token registries (Docker Hub) are for pulling from, not for this script.
import { readFileSync } from 'node:fs';
import { buildBusyboxImage, pushImage, type PushTarget } from '../test/support/registry.js';

function usage(message?: string): never {
  if (message) console.error(message);
  console.error('usage: node --import tsx scripts/push-example-image.ts <host:port> [--name <repository>:<tag>] [--tls] [--ca <PEM file>] [--user <name>] [--whiteouts]');
  console.error('       the password, with --user, comes from REGISTRY_PASSWORD');
  process.exit(2);
}

const args = process.argv.slice(2);
let address: string | undefined;
let name = 'ccbridge/busybox:latest';
let tls = false;
let caFile: string | undefined;
let user: string | undefined;
let whiteouts = false;
for (let index = 0; index < args.length; index += 1) {
  const arg = args[index]!;
  const value = () => args[++index] ?? usage(`${arg} needs a value`);
  if (arg === '--name') name = value();
  else if (arg === '--tls') tls = true;
  else if (arg === '--ca') caFile = value();
  else if (arg === '--user') user = value();
  else if (arg === '--whiteouts') whiteouts = true;
  else if (arg === '--help' || arg === '-h') usage();
  else if (arg.startsWith('-')) usage(`unknown option ${arg}`);
  else if (address === undefined) address = arg;
  else usage(`unexpected argument ${arg}`);
}
if (address === undefined) usage('the registry (host:port) is required');
const colon = name.lastIndexOf(':');
const [repository, tag] = colon > 0 && !name.slice(colon).includes('/') ? [name.slice(0, colon), name.slice(colon + 1)] : [name, 'latest'];
const password = process.env.REGISTRY_PASSWORD ?? '';
if (user !== undefined && password === '') usage('--user needs REGISTRY_PASSWORD in the environment');

const target: PushTarget = {
  address,
  url: `${tls || caFile ? 'https' : 'http'}://${address}`,
  caPem: caFile ? readFileSync(caFile, 'utf8') : undefined,
  auth: user !== undefined ? { username: user, password } : undefined,
};
try {
  const pushed = await pushImage(target, repository, tag, buildBusyboxImage({ whiteouts }));
  console.log(pushed.reference);
  console.error(`pushed ${pushed.reference} (manifest ${pushed.manifestDigest}, ${pushed.layerDigests.length} layer${pushed.layerDigests.length === 1 ? '' : 's'})`);
} catch (err) {
  console.error(`push failed: ${(err as Error).message}`);
  process.exit(1);
}
