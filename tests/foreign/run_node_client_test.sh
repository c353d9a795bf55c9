#!/usr/bin/env bash
# Runs tests/foreign/node_client_test.js with the node on PATH (18 or later)
# against the taskwired binary in the runfiles, loading proto/ from the
# runfiles. Its npm packages (@grpc/grpc-js, @grpc/proto-loader) come from
# the folder scripts/install-node-deps.sh fills, outside the source tree and
# the sandbox's writable paths, which the sandbox can read: the test itself
# needs no network.
set -euo pipefail

runfiles="${TEST_SRCDIR:?run this with bazel test}/taskwire"

if ! command -v node >/dev/null 2>&1; then
  echo "node_client_test: no node on PATH ($PATH); run scripts/install-deps.sh" >&2
  exit 1
fi
deps=$(bash "$runfiles/tests/foreign/node_deps_dir.sh" "$runfiles/tests/foreign/package-lock.json")
if [[ ! -f "$deps/.installed" ]]; then
  echo "node_client_test: the npm packages are not installed in $deps;" \
    "run scripts/install-node-deps.sh (scripts/test.sh does)" >&2
  exit 1
fi

export NODE_PATH="$deps/node_modules"
export TASKWIRED="$runfiles/server/taskwired"
export TASKWIRE_PROTO_DIR="$runfiles/proto"
exec node "$runfiles/tests/foreign/node_client_test.js" "$@"
