#!/usr/bin/env bash
# Builds and runs the service: installs what is missing
# (scripts/install-deps.sh), then `bazel run //server:taskwired -- "$@"`.
# Until the server exists it runs the core runtime demo instead.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

tty_flags=()
if [[ ! -t 1 || -n "${CI:-}" ]]; then
  tty_flags=(--color=no --curses=no)
fi

if bazel query "${tty_flags[@]}" //server:taskwired >/dev/null 2>&1; then
  echo "==> bazel run //server:taskwired -- $*"
  exec bazel run "${tty_flags[@]}" //server:taskwired -- "$@"
fi

echo "==> //server:taskwired does not exist yet; running the core runtime demo"
exec bazel run "${tty_flags[@]}" //core/examples:seed_demo -- "$@"
