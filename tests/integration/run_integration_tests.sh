#!/usr/bin/env bash
# Runs tests/integration/test_taskwired.py (or the test script named by the
# first argument, e.g. test_crash_recovery.py) against the taskwired binary in
# the runfiles, after generating the Python stubs for the wire API into the
# test's temporary directory. Needs /usr/bin/python3 with python3-grpcio and
# python3-grpc-tools (the python3 first on PATH may be another one).
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
script=test_taskwired.py
if [[ "${1:-}" == *.py ]]; then
  script=$1
  shift
fi
exec "$python" "$runfiles/tests/integration/$script" "$@"
