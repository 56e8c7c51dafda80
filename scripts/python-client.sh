#!/usr/bin/env bash
# Generates a Python gRPC client of ccbridge's services (stager, nsync, tps) into OUT_DIR, with
# Debian's protoc and grpc_python_plugin (`node scripts/prerequisites.mjs` installs them).
#
#   scripts/python-client.sh OUT_DIR
#   scripts/python-client.sh --list    # the .proto files it compiles, for another language's protoc
#
# OUT_DIR then holds importable packages (cloudfoundry.ccbridge.tps.v1.tps_pb2_grpc, ...): put it
# on PYTHONPATH. The runtime is Debian's python3-grpcio and python3-protobuf, which ship the
# well-known types (google.protobuf.*), so those are not generated. GRPC_PYTHON_PLUGIN names
# another plugin binary than /usr/bin/grpc_python_plugin. docs/clients.md has the recipe.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR | --list" >&2
  exit 2
fi
out=$1
proto_dir="$(cd "$(dirname "$0")/../proto" && pwd)"
# protoc -I /usr/include finds the well-known types there (libprotobuf-dev).
well_known=/usr/include
plugin=${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}

for need in protoc "$plugin"; do
  if ! command -v "$need" >/dev/null; then
    echo "$need not found: run 'node scripts/prerequisites.mjs' (as root it installs it)" >&2
    exit 1
  fi
done
if [ ! -f "$well_known/google/protobuf/descriptor.proto" ]; then
  echo "$well_known/google/protobuf/*.proto not found: run 'node scripts/prerequisites.mjs'" >&2
  exit 1
fi

# The services, plus google.rpc's Status and ErrorInfo: a failed call's trailer carries them
# (grpc-status-details-bin), with the stable reason a client can match.
roots=(
  cloudfoundry/ccbridge/stager/v1/stager.proto
  cloudfoundry/ccbridge/nsync/v1/nsync.proto
  cloudfoundry/ccbridge/tps/v1/tps.proto
  google/rpc/status.proto
  google/rpc/error_details.proto
)

# Everything they import from proto/, found by following the import lines rather than listed by
# hand, so a new import (the stager's diego/bbs/v1 messages grow) cannot leave a module missing.
# Imports that are not under proto/ are the well-known types.
declare -A seen=()
files=()
queue=("${roots[@]}")
while [ ${#queue[@]} -gt 0 ]; do
  file=${queue[0]}
  queue=("${queue[@]:1}")
  [ -n "${seen[$file]:-}" ] && continue
  seen[$file]=1
  files+=("$file")
  while IFS= read -r imported; do
    if [ -f "$proto_dir/$imported" ]; then
      queue+=("$imported")
    elif [ ! -f "$well_known/$imported" ]; then
      echo "$file imports $imported, found neither in $proto_dir nor in $well_known" >&2
      exit 1
    fi
  done < <(sed -n -E 's/^[[:space:]]*import[[:space:]]+(public[[:space:]]+|weak[[:space:]]+)?"([^"]+)";.*/\2/p' "$proto_dir/$file")
done

# Sorted so the command, and so the output, does not depend on the walk's order.
mapfile -t files < <(printf '%s\n' "${files[@]}" | sort)
if [ "$out" = --list ]; then
  printf '%s\n' "${files[@]}"
  exit 0
fi

mkdir -p "$out"
# --pyi_out writes type stubs next to the modules, for editors and type checkers.
protoc -I "$proto_dir" -I "$well_known" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$plugin" \
  "${files[@]}"
echo "generated the Python client of ${#files[@]} proto files into $out" >&2
