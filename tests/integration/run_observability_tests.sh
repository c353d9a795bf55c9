#!/usr/bin/env bash
# Runs tests/integration/test_observability.py (the /metrics endpoint and
# trace ids in the logs) against the taskwired binary in the runfiles, after
# generating the Python stubs for the wire API into the test's temporary
# directory. Needs /usr/bin/python3 with python3-grpcio and
# python3-grpc-tools; the scrape uses only urllib.
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
exec "$python" "$runfiles/tests/integration/test_observability.py" "$@"
