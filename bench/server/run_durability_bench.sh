#!/usr/bin/env bash
# The durable store's cost, in one invocation, against the in-memory store:
#   1. CreateTask(echo) throughput, 64 creators in flight (each call answers
#      once its task is committed), durable vs in-memory;
#   2. RunTask(echo) latency p50/p99 with 1 and 64 calls in flight (two
#      commits waited for per task: created and finished; the start is
#      written without waiting);
#   3. start-up: 1,000,000 finished tasks retained, SIGTERM, and the time a
#      restarted taskwired takes to load them and serve.
# Both servers run side by side and the load runs alternate between them,
# round by round; figures are medians over the rounds. Prints one table
# (ratios durable / in-memory, the target, PASS/FAIL).
#
# Usage: bench/server/run_durability_bench.sh [--quick]
#   --quick     one round of 2 s and 200,000 tasks for the start-up: a smoke
#               test, not figures to publish.
# Environment:
#   ROUNDS      rounds (default 3)        DURATION  measured seconds (default 5)
#   WARMUP      seconds before each (1)   OUT_DIR   binaries, logs, data, JSON
#   PYTHON      for the report (python3)  START_TASKS  tasks for part 3 (1000000)
# Exits 1 if the target is missed, 2 if something failed to run.
set -euo pipefail

cd "$(dirname "$0")/../.."
fail() {
  echo "$*" >&2
  exit 2
}
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t taskwire-durability-bench.XXXXXX)}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
START_TASKS=${START_TASKS:-1000000}
if [[ "${1:-}" == "--quick" ]]; then
  ROUNDS=1
  DURATION=2
  WARMUP=0.5
  START_TASKS=200000
fi
mkdir -p "$OUT_DIR/bin" "$OUT_DIR/log"
rm -rf "$OUT_DIR"/*.jsonl "$OUT_DIR"/data-*

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "model: $(lscpu | sed -n 's/^Model name: *//p')"
  echo "cpus: $(nproc)"
  echo "kernel: $(uname -r)"
  echo "sqlite: $(pkg-config --modversion sqlite3 2>/dev/null || echo unknown)"
  echo "disk: $(df -h "$OUT_DIR" | awk 'NR==2 {print $1 " (" $2 ")"}')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- core server 2>/dev/null || echo ' + uncommitted changes in core/server')"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, at start)"
  echo "rounds: $ROUNDS x ${DURATION} s measured after ${WARMUP} s warm-up"
} >"$OUT_DIR/machine.txt"
echo "== Machine" >&2
cat "$OUT_DIR/machine.txt" >&2

echo "== Building (--config=opt)" >&2
bazel build --config=opt //server:taskwired //bench/server:load_client //bench/server:task_load >&2 ||
  fail "build failed"
BIN=$(bazel info --config=opt bazel-bin 2>/dev/null)
cp -f "$BIN/server/taskwired" "$BIN/bench/server/load_client" "$BIN/bench/server/task_load" \
  "$OUT_DIR/bin/"

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

# start_server NAME ARGS...: taskwired on a free port; sets PORT and
# STARTED_S (seconds from exec to the port file).
start_server() {
  local name=$1
  shift
  local port_file="$OUT_DIR/$name.port"
  rm -f "$port_file"
  local t0
  t0=$(date +%s.%N)
  "$OUT_DIR/bin/taskwired" --listen 127.0.0.1:0 --port-file "$port_file" "$@" \
    2>"$OUT_DIR/log/$name.log" &
  PIDS[$name]=$!
  for _ in $(seq 6000); do
    [[ -s "$port_file" ]] && break
    kill -0 "${PIDS[$name]}" 2>/dev/null || fail "$name exited at start; see $OUT_DIR/log/$name.log"
    sleep 0.01
  done
  [[ -s "$port_file" ]] || fail "$name never wrote its port"
  STARTED_S=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')
  PORT=$(cat "$port_file")
}

echo "== 1-2. CreateTask and RunTask(echo): durable vs in-memory" >&2
# As in run_server_bench.sh: finished tasks are evicted after 5 s or past
# 10,000, so both stores stay small and the durable one deletes as it goes.
common=(--max-retained-tasks 10000 --retention 5 --log-level warn)
start_server memory --in-memory "${common[@]}"
MEMORY_PORT=$PORT
start_server durable --data-dir "$OUT_DIR/data-load" "${common[@]}"
DURABLE_PORT=$PORT
for round in $(seq "$ROUNDS"); do
  for case in "createtask 64" "runtask 1" "runtask 64"; do
    read -r rpc in_flight <<<"$case"
    for store in memory durable; do
      port=$MEMORY_PORT
      [[ $store == durable ]] && port=$DURABLE_PORT
      "$OUT_DIR/bin/load_client" --target "127.0.0.1:$port" --rpc "$rpc" \
        --in-flight "$in_flight" --duration "$DURATION" --warmup "$WARMUP" \
        --label "$store" --server-pid "${PIDS[$store]}" >"$OUT_DIR/one.json" ||
        fail "load_client $rpc against $store failed; see $OUT_DIR/log/$store.log"
      sed "s/^{/{\"round\": $round, /" "$OUT_DIR/one.json" | tee -a "$OUT_DIR/load.jsonl" >&2
    done
  done
done
rm -f "$OUT_DIR/one.json"
stop_server memory
stop_server durable

echo "== 3. Start-up with $START_TASKS finished tasks retained" >&2
start_server fill --data-dir "$OUT_DIR/data-startup" --max-retained-tasks 2000000 \
  --retention 86400 --max-pending-tasks 2000000 --max-ids-per-request 100000 --log-level warn
"$OUT_DIR/bin/task_load" memory --target "127.0.0.1:$PORT" --server-pid "${PIDS[fill]}" \
  --tasks "$START_TASKS" --batch 100000 --seconds 0 >"$OUT_DIR/fill.json" ||
  fail "task_load memory failed"
cat "$OUT_DIR/fill.json" >&2
t0=$(date +%s.%N)
stop_server fill
STOP_S=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.3f", a - b}')
DB_BYTES=$(du -cb "$OUT_DIR/data-startup" | tail -n 1 | cut -f1)
start_server restarted --data-dir "$OUT_DIR/data-startup" --max-retained-tasks 2000000 \
  --retention 86400 --log-level info
RSS_KB=$(awk '/^VmRSS/ {print $2}' "/proc/${PIDS[restarted]}/status")
LOADED=$(sed -n 's/.*(\([0-9]*\) task(s) loaded in \([0-9.]*\) s).*/\1 \2/p' \
  "$OUT_DIR/log/restarted.log")
stop_server restarted
echo "{\"tasks\": $START_TASKS, \"stop_s\": $STOP_S, \"db_bytes\": $DB_BYTES, \"serving_s\": $STARTED_S, \"loaded\": ${LOADED%% *}, \"load_s\": ${LOADED##* }, \"rss_kb\": $RSS_KB}" |
  tee "$OUT_DIR/startup.json" >&2

echo "== Results (raw JSON in $OUT_DIR)" >&2
"$PYTHON" - "$OUT_DIR" <<'PY'
import json, statistics, sys
out = sys.argv[1]
print(open(f"{out}/machine.txt").read())
runs = [json.loads(line) for line in open(f"{out}/load.jsonl")]
def median(rpc, in_flight, store, key):
    values = [r[key] for r in runs
              if r["rpc"] == rpc and r["in_flight"] == in_flight and r["label"] == store]
    return statistics.median(values), values
rows, misses = [], 0
def line(*cells):
    print("| " + " | ".join(cells) + " |")
line("Figure", "in-memory", "durable", "durable / in-memory", "target", "result")
line(*["---"] * 6)
mem, _ = median("createtask", 64, "memory", "rps")
dur, rounds = median("createtask", 64, "durable", "rps")
ratio = dur / mem
misses += ratio < 0.5
line("CreateTask(echo), 64 creators: tasks/s", f"{mem:,.0f}", f"{dur:,.0f}",
     f"{ratio:.2f}x (durable rounds: {', '.join(f'{v:,.0f}' for v in rounds)})", ">= 0.50x",
     "PASS" if ratio >= 0.5 else "**FAIL**")
for key, name in (("p50_us", "p50"), ("p99_us", "p99")):
    mem, _ = median("createtask", 64, "memory", key)
    dur, _ = median("createtask", 64, "durable", key)
    line(f"CreateTask, 64 creators: {name} latency", f"{mem:,.0f} µs", f"{dur:,.0f} µs",
         f"{dur / mem:.2f}x", "", "")
for in_flight in (1, 64):
    for key, name in (("p50_us", "p50"), ("p99_us", "p99")):
        mem, _ = median("runtask", in_flight, "memory", key)
        dur, _ = median("runtask", in_flight, "durable", key)
        line(f"RunTask(echo), {in_flight} in flight: {name} latency", f"{mem:,.0f} µs",
             f"{dur:,.0f} µs", f"{dur / mem:.2f}x", "", "")
    mem, _ = median("runtask", in_flight, "memory", "rps")
    dur, _ = median("runtask", in_flight, "durable", "rps")
    line(f"RunTask(echo), {in_flight} in flight: calls/s", f"{mem:,.0f}", f"{dur:,.0f}",
         f"{dur / mem:.2f}x", "", "")
for rpc, in_flight in (("createtask", 64), ("runtask", 64)):
    cpu = {}
    for store in ("memory", "durable"):
        per = [r["window_server_cpu_s"] / r["requests"] * 1e6 for r in runs
               if r["rpc"] == rpc and r["in_flight"] == in_flight and r["label"] == store]
        cpu[store] = statistics.median(per)
    line(f"{rpc}, {in_flight} in flight: server CPU per call", f"{cpu['memory']:.0f} µs",
         f"{cpu['durable']:.0f} µs", f"{cpu['durable'] / cpu['memory']:.2f}x", "", "")
s = json.load(open(f"{out}/startup.json"))
line(f"Start-up with {s['tasks']:,} finished tasks", "", f"loaded {s['loaded']:,} in "
     f"{s['load_s']:.2f} s; serving {s['serving_s']:.2f} s after exec; RSS "
     f"{s['rss_kb'] / 1024:.0f} MiB; files {s['db_bytes'] / 1e6:.0f} MB", "", "", "")
line("SIGTERM → exit after filling", "", f"{s['stop_s']:.2f} s", "", "", "")
print(f"\nMisses: {misses}.")
sys.exit(1 if misses else 0)
PY
