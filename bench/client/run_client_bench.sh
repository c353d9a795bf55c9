#!/usr/bin/env bash
# Builds taskwired and the client benchmarks optimized (--config=opt), then,
# one after the other in this one invocation:
#   1. remote echo tasks, 64 in flight, through the client library
#      (`co_await client.create_task("echo", ...)`) and through raw generated
#      stubs on the async completion-queue API: the same calls the library
#      makes (CreateTasks + AsCompletedBatches, the target's reference), and for
#      scale CreateTask + AwaitTask and RunTask, one task per call;
#      interleaved round by round; then one short run that counts the calls
#      the library starts;
#   2. 100,000 remote sleep(2 s) tasks gathered through the library: wall
#      time and the client's memory per awaited task; then, on a fresh
#      server, the same tasks made with raw stubs (bench/server's task_load
#      create-gather: CreateTasks of 10,000, then one Gather) for scale;
# and prints one table: figures, ratios, targets, PASS/FAIL. The machine is
# noisy, so only figures from the same run are compared.
#
# Usage: bench/client/run_client_bench.sh [--quick]
#   --quick     one round of 2 s, 20K tasks to gather: a smoke test, not
#               figures to publish.
# Environment:
#   ROUNDS      load rounds per client (default 3; median)
#   DURATION    measured seconds per load run (default 5)
#   WARMUP      warm-up seconds before each (default 1)
#   IN_FLIGHT   tasks in flight (default 64)
#   PYTHON      interpreter for the report (default: python3)
#   OUT_DIR     where binaries, logs and raw JSON go (default: a new temp dir)
# Exits 1 if a target is missed, 2 if something failed to run.
set -euo pipefail

cd "$(dirname "$0")/../.."
fail() {
  echo "$*" >&2
  exit 2
}
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t taskwire-client-bench.XXXXXX)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
IN_FLIGHT=${IN_FLIGHT:-64}
GATHER_TASKS=100000
if [[ "${1:-}" == "--quick" ]]; then
  ROUNDS=1
  DURATION=2
  WARMUP=0.5
  GATHER_TASKS=20000
fi
mkdir -p "$OUT_DIR/bin" "$OUT_DIR/log"
rm -f "$OUT_DIR"/*.json "$OUT_DIR"/*.jsonl

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "model: $(lscpu | sed -n 's/^Model name: *//p')"
  echo "cpus: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "compiler: $(g++ --version | head -n 1)"
  echo "grpc: $(pkg-config --modversion grpc++ 2>/dev/null || echo unknown)"
  echo "protobuf: $(pkg-config --modversion protobuf 2>/dev/null || echo unknown)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- core server client proto 2>/dev/null || echo ' + uncommitted changes in core/server/client/proto')"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, at start)"
  echo "rounds: $ROUNDS x ${DURATION} s measured after ${WARMUP} s warm-up, $IN_FLIGHT in flight"
} >"$OUT_DIR/machine.txt"
echo "== Machine" >&2
cat "$OUT_DIR/machine.txt" >&2

echo "== Building (--config=opt)" >&2
bazel build --config=opt //server:taskwired //bench/client:all //bench/server:task_load >&2 ||
  fail "build failed"
# Copy the binaries out at once: bazel-bin is shared with whoever builds next
# (possibly with other flags), and the outputs must be the ones just built.
BIN=$(bazel info --config=opt bazel-bin 2>/dev/null)
cp -f "$BIN/server/taskwired" "$BIN/bench/client/overhead_client" \
  "$BIN/bench/client/gather_client" "$BIN/bench/server/task_load" "$OUT_DIR/bin/"

# Servers this script started, stopped by their own pid on exit.
declare -A PIDS=()
stop_server() {
  local name=$1
  local pid=${PIDS[$name]:-}
  [[ -z "$pid" ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$name]"
}
cleanup() {
  for name in "${!PIDS[@]}"; do stop_server "$name"; done
}
trap cleanup EXIT

# start_server NAME ARGS...: starts taskwired on a free port; sets PORT.
start_server() {
  local name=$1
  shift
  local port_file="$OUT_DIR/$name.port"
  rm -f "$port_file"
  "$OUT_DIR/bin/taskwired" --listen 127.0.0.1:0 --port-file "$port_file" --log-level warn "$@" \
    2>"$OUT_DIR/log/$name.log" &
  PIDS[$name]=$!
  for _ in $(seq 100); do
    [[ -s "$port_file" ]] && break
    kill -0 "${PIDS[$name]}" 2>/dev/null || fail "$name exited at start; see $OUT_DIR/log/$name.log"
    sleep 0.1
  done
  [[ -s "$port_file" ]] || fail "$name never wrote its port"
  PORT=$(cat "$port_file")
}

echo "== 1. Echo tasks, $IN_FLIGHT in flight: the library vs raw stubs" >&2
# Finished tasks are evicted after 5 s or past 10,000, so the store stays
# small however many tasks a run makes.
start_server taskwired-load --max-retained-tasks 10000 --retention 5
for round in $(seq "$ROUNDS"); do
  for api in library raw-batched raw raw-runtask; do
    "$OUT_DIR/bin/overhead_client" --target "127.0.0.1:$PORT" --api "$api" \
      --in-flight "$IN_FLIGHT" --duration "$DURATION" --warmup "$WARMUP" \
      --server-pid "${PIDS[taskwired-load]}" >"$OUT_DIR/one.json" ||
      fail "overhead_client --api $api failed; see $OUT_DIR/log/taskwired-load.log"
    sed "s/^{/{\"round\": $round, /" "$OUT_DIR/one.json" | tee -a "$OUT_DIR/load.jsonl" >&2
  done
done
rm -f "$OUT_DIR/one.json"
# Which calls the library makes for the same work (an interceptor counts
# them; not part of the timed runs).
"$OUT_DIR/bin/overhead_client" --target "127.0.0.1:$PORT" --api library --count-rpcs \
  --in-flight "$IN_FLIGHT" --duration 1 --warmup 0.2 --label library-counted \
  >"$OUT_DIR/rpcs.json" || fail "overhead_client --count-rpcs failed"
cat "$OUT_DIR/rpcs.json" >&2
stop_server taskwired-load

echo "== 2. $GATHER_TASKS remote sleep(2 s) tasks gathered through the library" >&2
start_server taskwired-gather --max-ids-per-request 100000 --max-pending-tasks 1000000
"$OUT_DIR/bin/gather_client" --target "127.0.0.1:$PORT" --tasks "$GATHER_TASKS" --seconds 2.0 \
  --server-pid "${PIDS[taskwired-gather]}" >"$OUT_DIR/gather.json" ||
  fail "gather_client failed; see $OUT_DIR/log/taskwired-gather.log"
cat "$OUT_DIR/gather.json" >&2
stop_server taskwired-gather

echo "== 2'. The same $GATHER_TASKS tasks with raw stubs: CreateTasks, then one Gather" >&2
start_server taskwired-gather-raw --max-ids-per-request 100000 --max-pending-tasks 1000000
"$OUT_DIR/bin/task_load" create-gather --target "127.0.0.1:$PORT" --tasks "$GATHER_TASKS" \
  --batch 10000 --seconds 2.0 --server-pid "${PIDS[taskwired-gather-raw]}" >"$OUT_DIR/gather_raw.json" ||
  fail "task_load create-gather failed; see $OUT_DIR/log/taskwired-gather-raw.log"
cat "$OUT_DIR/gather_raw.json" >&2
stop_server taskwired-gather-raw

echo "== Results (raw JSON in $OUT_DIR)" >&2
"$PYTHON" bench/client/report.py "$OUT_DIR"
