#!/usr/bin/env bash
# Builds and runs the service: installs what is missing
# (scripts/install-deps.sh), then runs taskwired, by default on
# 127.0.0.1:50051 with in-memory task state. Arguments go to taskwired
# (see `scripts/run.sh --help`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

tty_flags=()
if [[ ! -t 1 || -n "${CI:-}" ]]; then
  tty_flags=(--color=no --curses=no)
fi

echo "==> bazel run -c opt //server:taskwired -- $*"
exec bazel run "${tty_flags[@]}" -c opt //server:taskwired -- "$@"
