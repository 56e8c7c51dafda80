#!/usr/bin/env node
// The one list of Debian packages the project needs on a machine, checked before `npm start`
// and `npm test`. Missing ones are installed with apt-get when running as root; otherwise this
// stops with the exact command to run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Debian package -> what proves it is installed, one of:
 *   command: a program on PATH (`command -v`);
 *   file:    a file the package ships, for packages without a program (headers, .proto files);
 *   check:   a shell command that succeeds once the package is there, for Python modules and
 *            anything else that is neither.
 */
export const PREREQUISITES = [
  // TLS material for the mTLS tests and for generating development certificates.
  { pkg: 'openssl', command: 'openssl' },
  // The embedded cell's containers: bubblewrap sandboxes, networked by pasta.
  { pkg: 'bubblewrap', command: 'bwrap' },
  { pkg: 'passt', command: 'pasta' },
  // diego-sshd, the SSH server of app instances that allow SSH (dropbear, run as the container
  // user), and the system ssh and ssh-keyscan that `ccbridge ssh` runs.
  { pkg: 'dropbear-bin', file: '/usr/sbin/dropbear' },
  { pkg: 'openssh-client', command: 'ssh-keyscan' },
  // Zip archives in Download actions (buildpacks are often zips); tar is always there.
  { pkg: 'unzip', command: 'unzip' },
  // Generating clients in other languages (scripts/python-client.sh and its test): protoc, its
  // gRPC plugins, and the well-known types (timestamp, descriptor...) that our protos import.
  { pkg: 'protobuf-compiler', command: 'protoc' },
  { pkg: 'protobuf-compiler-grpc', command: 'grpc_python_plugin' },
  { pkg: 'libprotobuf-dev', file: '/usr/include/google/protobuf/descriptor.proto' },
  // The Python runtime of the generated client. Checked with Debian's own interpreter: another
  // python3 earlier on PATH (pyenv, a virtualenv) does not see Debian's packages.
  { pkg: 'python3-grpcio', check: '/usr/bin/python3 -c "import grpc"' },
  { pkg: 'python3-protobuf', check: '/usr/bin/python3 -c "import google.protobuf"' },
  // The docker lifecycle's tests: a real registry (the distribution registry) on a loopback
  // port, bcrypt htpasswd files for its Basic auth, and the static busybox the example image
  // is built from.
  { pkg: 'docker-registry', command: 'docker-registry' },
  { pkg: 'apache2-utils', command: 'htpasswd' },
  // (the busybox package has a /bin/busybox too, but linked against the host's libc)
  { pkg: 'busybox-static', check: "dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'" },
];

function succeeds(shell) {
  return spawnSync('sh', ['-c', shell], { stdio: 'ignore' }).status === 0;
}

function installed({ command, file, check }) {
  if (command !== undefined) return succeeds(`command -v ${command}`);
  if (file !== undefined) return existsSync(file);
  if (check !== undefined) return succeeds(check);
  throw new Error('a prerequisite needs a command, file or check');
}

export function missingPackages() {
  return PREREQUISITES.filter((prerequisite) => !installed(prerequisite)).map(({ pkg }) => pkg);
}

function main() {
  const missing = missingPackages();
  if (missing.length === 0) return 0;
  const install = `apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    console.error(`ccbridge needs these Debian packages: ${missing.join(', ')}. Run: sudo apt-get update && sudo ${install}`);
    return 1;
  }
  console.error(`installing Debian packages: ${missing.join(', ')}`);
  const update = spawnSync('sh', ['-c', 'apt-get update -qq'], { stdio: 'inherit' });
  if (update.status !== 0) return update.status ?? 1;
  const result = spawnSync('sh', ['-c', `DEBIAN_FRONTEND=noninteractive ${install}`], { stdio: 'inherit' });
  return result.status ?? 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(main());
