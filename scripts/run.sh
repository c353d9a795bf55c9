#!/usr/bin/env bash
# Builds and runs the service: installs what is missing
# (scripts/install-deps.sh), then runs taskwired, by default on
# 127.0.0.1:50051, keeping its tasks in
# ${TASKWIRE_DATA_DIR:-$HOME/.local/share/taskwire} so that they survive a
# restart (--in-memory or a --data-dir of your own overrides this).
# Arguments go to taskwired (see `scripts/run.sh --help`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Only what building needs: the container test's podman is not for running.
bash scripts/install-deps.sh --build-only

tty_flags=()
if [[ ! -t 1 || -n "${CI:-}" ]]; then
  tty_flags=(--color=no --curses=no)
fi

# The durable store unless the caller chose a store (flag or environment).
store_flags=(--data-dir "${TASKWIRE_DATA_DIR:-${HOME:-/root}/.local/share/taskwire}")
if [[ -n "${TASKWIRE_IN_MEMORY:-}" ]]; then
  store_flags=()
fi
for arg in "$@"; do
  case $arg in
    --data-dir | --data-dir=* | --in-memory | --in-memory=* | -h | --help) store_flags=() ;;
  esac
done

echo "==> bazel run -c opt //server:taskwired -- ${store_flags[*]} $*"
exec bazel run "${tty_flags[@]}" -c opt //server:taskwired -- "${store_flags[@]}" "$@"
