#!/usr/bin/env bash
# Builds the core benchmarks optimized (--config=opt), runs them and the
# asyncio equivalents one after the other in this one invocation, and prints
# one table: C++ figure, asyncio figure, ratio, target, PASS/FAIL. The
# machine is noisy, so only figures from the same run are compared.
#
# Usage: bench/run_core_bench.sh [--quick]
#   --quick     fewer repetitions and 100K instead of 1M tasks: a smoke test,
#               not figures to publish.
# Environment:
#   PYTHON      interpreter for the asyncio side (default: python3)
#   OUT_DIR     where the raw JSON results go (default: a new temp dir)
# Exits 1 if a target is missed.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t taskwire-bench.XXXXXX)}
mkdir -p "$OUT_DIR"

REPS=5
TASKS=1000000
MIN_TIME=0.5
PY_ARGS=()
if [[ "${1:-}" == "--quick" ]]; then
  REPS=2
  TASKS=100000
  MIN_TIME=0.1
  PY_ARGS=(--quick)
fi

echo "== Machine" >&2
lscpu | head -n 15 >&2
echo "kernel: $(uname -r)" >&2
echo "compiler: $(g++ --version | head -n 1)" >&2
echo "python: $("$PYTHON" -c 'import sys; print(sys.version.split()[0], sys.executable)')" >&2

echo "== Building (--config=opt)" >&2
bazel build --config=opt //bench:core_bench //bench:task_memory >&2
# Copy the binaries out at once: bazel-bin is shared with whoever builds next
# (possibly with other flags), and the outputs must be the ones just built.
BIN=$(bazel info --config=opt bazel-bin 2>/dev/null)
cp -f "$BIN/bench/core_bench" "$BIN/bench/task_memory" "$OUT_DIR/"

echo "== core_bench (a, b, d)" >&2
"$OUT_DIR/core_bench" \
  --benchmark_repetitions="$REPS" \
  --benchmark_report_aggregates_only=true \
  --benchmark_min_time="$MIN_TIME" \
  --benchmark_out="$OUT_DIR/core_bench.json" \
  --benchmark_out_format=json >&2

echo "== task_memory (c)" >&2
"$OUT_DIR/task_memory" --tasks="$TASKS" --json >"$OUT_DIR/task_memory.json"
cat "$OUT_DIR/task_memory.json" >&2

echo "== asyncio_bench.py (a, b, c, d)" >&2
"$PYTHON" bench/asyncio_bench.py --json --repeat="$REPS" --tasks="$TASKS" "${PY_ARGS[@]}" \
  >"$OUT_DIR/asyncio.json"

echo "== Results (raw JSON in $OUT_DIR)" >&2
"$PYTHON" bench/compare_bench.py "$OUT_DIR"
