#!/usr/bin/env bash
# Runs tests/foreign/python_client_test.py against the taskwired binary in
# the runfiles, with the Python stubs generated from proto/ into the test's
# temporary directory by Debian's grpc_tools (python3-grpc-tools belongs to
# /usr/bin/python3; the python3 first on PATH may be another one).
set -euo pipefail

python=/usr/bin/python3
runfiles="${TEST_SRCDIR:?run this with bazel test}/taskwire"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"

stubs="$tmp/stubs"
mkdir -p "$stubs"
"$python" -m grpc_tools.protoc \
  -I"$runfiles/proto" -I/usr/include \
  --python_out="$stubs" --grpc_python_out="$stubs" \
  taskwire/v1/tasks.proto

export TASKWIRED="$runfiles/server/taskwired"
export TASKWIRE_PY_STUBS="$stubs"
exec "$python" "$runfiles/tests/foreign/python_client_test.py" "$@"
