#!/usr/bin/env bash
# Builds taskwired and the server benchmarks optimized (--config=opt), then,
# one after the other in this one invocation:
#   0. one cross-thread hand-off (mutex + condition variable), for scale;
#   1. unary load (async CQ client, 1 and 64 calls in flight) on a bare gRPC
#      echo server on the callback API, one on the completion-queue API, and
#      taskwired's RunTask of kind "echo", interleaved round by round;
#   2. 100,000 sleep(2 s) tasks through CreateTasks, then one Gather;
#   3. taskwired's RSS per pending task, 1,000,000 sleep(3600 s) tasks;
# and prints one table: figures, ratios, targets, PASS/FAIL. The machine is
# noisy, so only figures from the same run are compared.
#
# Usage: bench/server/run_server_bench.sh [--quick]
#   --quick     one round of 2 s, 200K tasks for memory: a smoke test, not
#               figures to publish.
# Environment:
#   ROUNDS      load rounds per (server, in-flight) pair (default 3; median)
#   DURATION    measured seconds per load run (default 5)
#   WARMUP      warm-up seconds before each (default 1)
#   PYTHON      interpreter for the report (default: python3)
#   OUT_DIR     where binaries, logs and raw JSON go (default: a new temp dir)
#   GATHER_BATCH  tasks per CreateTasks call in part 2 (default 10000)
# Exits 1 if a target is missed, 2 if something failed to run.
set -euo pipefail

cd "$(dirname "$0")/../.."
fail() {
  echo "$*" >&2
  exit 2
}
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t taskwire-server-bench.XXXXXX)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
GATHER_TASKS=100000
GATHER_BATCH=${GATHER_BATCH:-10000}
MEMORY_TASKS=1000000
MEMORY_BATCH=100000
if [[ "${1:-}" == "--quick" ]]; then
  ROUNDS=1
  DURATION=2
  WARMUP=0.5
  MEMORY_TASKS=200000
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
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- core server proto 2>/dev/null || echo ' + uncommitted changes in core/server/proto')"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, at start)"
  echo "rounds: $ROUNDS x ${DURATION} s measured after ${WARMUP} s warm-up"
} >"$OUT_DIR/machine.txt"
echo "== Machine" >&2
cat "$OUT_DIR/machine.txt" >&2

echo "== Building (--config=opt)" >&2
bazel build --config=opt //server:taskwired //bench/server:all >&2 || fail "build failed"
# Copy the binaries out at once: bazel-bin is shared with whoever builds next
# (possibly with other flags), and the outputs must be the ones just built.
BIN=$(bazel info --config=opt bazel-bin 2>/dev/null)
cp -f "$BIN/server/taskwired" "$BIN/bench/server/echo_callback_server" \
  "$BIN/bench/server/echo_cq_server" "$BIN/bench/server/load_client" \
  "$BIN/bench/server/task_load" "$BIN/bench/server/handoff_bench" "$OUT_DIR/bin/"

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

# start_server NAME BINARY ARGS...: starts it on a free port; sets PORT.
start_server() {
  local name=$1 binary=$2
  shift 2
  local port_file="$OUT_DIR/$name.port"
  rm -f "$port_file"
  "$OUT_DIR/bin/$binary" --listen 127.0.0.1:0 --port-file "$port_file" "$@" \
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

echo "== 0. One cross-thread hand-off (mutex + condition variable)" >&2
"$OUT_DIR/bin/handoff_bench" >"$OUT_DIR/handoff.json" || fail "handoff_bench failed"
cat "$OUT_DIR/handoff.json" >&2

echo "== 1. Unary load: echo servers vs taskwired RunTask(echo)" >&2
start_server echo-callback echo_callback_server
CB_PORT=$PORT
start_server echo-cq echo_cq_server
CQ_PORT=$PORT
# Finished tasks are evicted after 5 s or past 10,000, so the store stays
# small however many calls a run makes.
start_server taskwired-load taskwired --max-retained-tasks 10000 --retention 5 --log-level warn
TW_PORT=$PORT
for round in $(seq "$ROUNDS"); do
  for in_flight in 1 64; do
    for server in echo-callback echo-cq taskwired-load; do
      case $server in
        echo-callback) port=$CB_PORT rpc=echo ;;
        echo-cq) port=$CQ_PORT rpc=echo ;;
        taskwired-load) port=$TW_PORT rpc=runtask ;;
      esac
      "$OUT_DIR/bin/load_client" --target "127.0.0.1:$port" --rpc "$rpc" \
        --in-flight "$in_flight" --duration "$DURATION" --warmup "$WARMUP" \
        --label "$server" --server-pid "${PIDS[$server]}" >"$OUT_DIR/one.json" ||
        fail "load_client against $server failed; see $OUT_DIR/log/$server.log"
      sed "s/^{/{\"round\": $round, /" "$OUT_DIR/one.json" | tee -a "$OUT_DIR/load.jsonl" >&2
    done
  done
done
rm -f "$OUT_DIR/one.json"
stop_server echo-callback
stop_server echo-cq
stop_server taskwired-load

echo "== 2. $GATHER_TASKS sleep(2 s) tasks: CreateTasks x $GATHER_BATCH, then Gather" >&2
start_server taskwired-gather taskwired --max-ids-per-request 100000 --log-level warn
"$OUT_DIR/bin/task_load" create-gather --target "127.0.0.1:$PORT" --tasks "$GATHER_TASKS" \
  --batch "$GATHER_BATCH" --seconds 2.0 --server-pid "${PIDS[taskwired-gather]}" \
  >"$OUT_DIR/gather.json" || fail "task_load create-gather failed"
cat "$OUT_DIR/gather.json" >&2
stop_server taskwired-gather

echo "== 3. RSS per pending task: $MEMORY_TASKS sleep(3600 s) tasks" >&2
start_server taskwired-memory taskwired --max-pending-tasks 2000000 \
  --max-ids-per-request 100000 --log-level warn
"$OUT_DIR/bin/task_load" memory --target "127.0.0.1:$PORT" --server-pid "${PIDS[taskwired-memory]}" \
  --tasks "$MEMORY_TASKS" --batch "$MEMORY_BATCH" --seconds 3600 >"$OUT_DIR/memory.json" ||
  fail "task_load memory failed"
cat "$OUT_DIR/memory.json" >&2
stop_server taskwired-memory

echo "== Results (raw JSON in $OUT_DIR)" >&2
"$PYTHON" bench/server/report.py "$OUT_DIR"
