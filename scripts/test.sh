#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/install-deps.sh,
# scripts/install-node-deps.sh), then
# `bazel test //...`. Extra arguments go to bazel, e.g.
#   scripts/test.sh --config=asan
#   scripts/test.sh --test_output=all
# Exits with bazel's status.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
# The npm packages of the Node.js client test, outside the source tree.
bash scripts/install-node-deps.sh

# Without a terminal (CI, pipes) Bazel's progress bar and colours only add noise.
tty_flags=()
if [[ ! -t 1 || -n "${CI:-}" ]]; then
  tty_flags=(--color=no --curses=no)
fi

echo "==> bazel test //... $*"
status=0
bazel test "${tty_flags[@]}" "$@" //... || status=$?
if ((status == 0)); then
  echo "==> all tests passed"
else
  echo "==> bazel test failed (exit status $status)" >&2
fi
exit "$status"
