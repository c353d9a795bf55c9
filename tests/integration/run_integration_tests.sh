#!/usr/bin/env bash
# Runs one of the Python integration suites (the script named by the first
# argument, test_taskwired.py if none) against the binaries in the runfiles,
# after generating the Python stubs for the wire API into the test's
# temporary directory. Needs /usr/bin/python3 with python3-grpcio and
# python3-grpc-tools (the python3 first on PATH may be another one).
set -euo pipefail

python=/usr/bin/python3
runfiles="${TEST_SRCDIR:?run this with bazel test}/taskwire"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"

script=test_taskwired.py
if [[ "${1:-}" == *.py ]]; then
  script=$1
  shift
fi

stubs="$tmp/stubs"
mkdir -p "$stubs"
"$python" -m grpc_tools.protoc \
  -I"$runfiles/proto" -I/usr/include \
  --python_out="$stubs" --grpc_python_out="$stubs" \
  taskwire/v1/tasks.proto

# The binaries a suite may drive (those it lists in its data).
export TASKWIRED="$runfiles/server/taskwired"
export TASKWIRE="$runfiles/client/cli/taskwire"
export TASKWIRE_EXAMPLES="$runfiles/client/examples"
export TASKWIRE_PY_STUBS="$stubs"
exec "$python" "$runfiles/tests/integration/$script" "$@"
