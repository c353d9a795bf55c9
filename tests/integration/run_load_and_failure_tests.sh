#!/usr/bin/env bash
# Runs tests/integration/test_load_and_failures.py against the binaries in
# the runfiles (taskwired, the taskwire CLI, the client examples and the
# example worker), after generating the Python stubs for the wire API into
# the test's temporary directory. Needs /usr/bin/python3 with python3-grpcio
# and python3-grpc-tools (the python3 first on PATH may be another one).
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
export TASKWIRE="$runfiles/client/cli/taskwire"
export TASKWIRE_EXAMPLES="$runfiles/client/examples"
export TASKWIRE_PY_STUBS="$stubs"
exec "$python" "$runfiles/tests/integration/test_load_and_failures.py" "$@"
