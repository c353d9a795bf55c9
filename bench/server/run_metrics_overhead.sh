#!/usr/bin/env bash
# What --metrics-listen costs taskwired: in one run, alternating round by
# round (and which goes first), the same optimized binary without metrics
# and with metrics, scraped once a second over HTTP while measured:
#   1. RunTask(echo) at 64 calls in flight (load_client): calls/s and the
#      server's CPU per call;
#   2. 100,000 sleep(0.5 s) tasks through CreateTasks x 10,000, then a
#      Gather (task_load create-gather, a fresh server each time): tasks/s.
# Prints the medians and the ratios on/off, of rates and of the server's
# CPU per unit of work (steadier on a shared machine, where rates move
# with whatever else runs). Only figures from the same run are compared.
#
# Usage: bench/server/run_metrics_overhead.sh
# Environment: ROUNDS (default 5), DURATION (5 s), WARMUP (1 s), PYTHON
# (python3), OUT_DIR (a new temp dir).
set -euo pipefail

cd "$(dirname "$0")/../.."
fail() {
  echo "$*" >&2
  exit 2
}
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT_DIR:-$(mktemp -d -t taskwire-metrics-bench.XXXXXX)}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
mkdir -p "$OUT_DIR/bin" "$OUT_DIR/log"
rm -f "$OUT_DIR"/*.jsonl

echo "== Building (--config=opt)" >&2
bazel build --config=opt //server:taskwired //bench/server:load_client //bench/server:task_load >&2 ||
  fail "build failed"
BIN=$(bazel info --config=opt bazel-bin 2>/dev/null)
cp -f "$BIN/server/taskwired" "$BIN/bench/server/load_client" "$BIN/bench/server/task_load" \
  "$OUT_DIR/bin/"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "model: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cpus"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
  echo "rounds: $ROUNDS x ${DURATION} s after ${WARMUP} s warm-up"
} | tee "$OUT_DIR/machine.txt" >&2

declare -A PIDS=()
stop() {
  local name=$1
  local pid=${PIDS[$name]:-}
  [[ -z "$pid" ]] && return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PIDS[$name]"
}
cleanup() {
  for name in "${!PIDS[@]}"; do stop "$name"; done
}
trap cleanup EXIT

# start NAME MODE FLAGS...: taskwired on free ports; sets PORT. MODE "on"
# adds the metrics endpoint and a scraper that GETs /metrics every second
# (over bash's /dev/tcp: nothing to install).
start() {
  local name=$1 mode=$2
  shift 2
  local port_file="$OUT_DIR/$name.port" metrics_file="$OUT_DIR/$name.metrics-port"
  rm -f "$port_file" "$metrics_file"
  local extra=()
  [[ $mode == on ]] && extra=(--metrics-listen 127.0.0.1:0 --metrics-port-file "$metrics_file")
  "$OUT_DIR/bin/taskwired" --listen 127.0.0.1:0 --port-file "$port_file" --log-level warn \
    "${extra[@]}" "$@" 2>"$OUT_DIR/log/$name.log" &
  PIDS[$name]=$!
  for _ in $(seq 100); do
    [[ -s "$port_file" ]] && break
    kill -0 "${PIDS[$name]}" 2>/dev/null || fail "$name exited at start; see $OUT_DIR/log/$name.log"
    sleep 0.1
  done
  [[ -s "$port_file" ]] || fail "$name never wrote its port"
  PORT=$(cat "$port_file")
  if [[ $mode == on ]]; then
    local metrics_port server=${PIDS[$name]}
    metrics_port=$(cat "$metrics_file")
    (
      while kill -0 "$server" 2>/dev/null; do
        if exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"; then
          printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
          cat <&3 >"$OUT_DIR/$name.last-scrape" || true
          exec 3>&-
        fi
        sleep 1
      done
    ) 2>/dev/null &
    PIDS[$name-scraper]=$!
  fi
}

echo "== 1. RunTask(echo), 64 in flight" >&2
start load-off off --max-retained-tasks 10000 --retention 5
OFF_PORT=$PORT
start load-on on --max-retained-tasks 10000 --retention 5
ON_PORT=$PORT
for round in $(seq "$ROUNDS"); do
  order=(off on)
  ((round % 2 == 0)) && order=(on off)
  for mode in "${order[@]}"; do
    port=$OFF_PORT
    [[ $mode == on ]] && port=$ON_PORT
    "$OUT_DIR/bin/load_client" --target "127.0.0.1:$port" --rpc runtask --in-flight 64 \
      --duration "$DURATION" --warmup "$WARMUP" --label "$mode" \
      --server-pid "${PIDS[load-$mode]}" | tee -a "$OUT_DIR/runtask.jsonl" >&2 ||
      fail "load_client failed"
  done
done
grep -q taskwire_rpc_duration_seconds_count "$OUT_DIR/load-on.last-scrape" ||
  fail "the scrapes of load-on saw no RPC metrics"
cleanup

echo "== 2. CreateTasks: 100,000 sleep(0.5 s) tasks x 10,000 per call" >&2
for round in $(seq "$ROUNDS"); do
  order=(off on)
  ((round % 2 == 0)) && order=(on off)
  for mode in "${order[@]}"; do
    start "create-$mode" "$mode" --max-ids-per-request 100000
    "$OUT_DIR/bin/task_load" create-gather --target "127.0.0.1:$PORT" --tasks 100000 \
      --batch 10000 --seconds 0.5 --server-pid "${PIDS[create-$mode]}" |
      sed "s/^{/{\"label\": \"$mode\", /" | tee -a "$OUT_DIR/create.jsonl" >&2 ||
      fail "task_load failed"
    cleanup
  done
done

echo "== Results (raw JSON in $OUT_DIR)" >&2
"$PYTHON" - "$OUT_DIR" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def load(name):
    rows = [json.loads(line) for line in open(f"{out}/{name}")]
    return {m: [r for r in rows if r["label"] == m] for m in ("off", "on")}
run, create = load("runtask.jsonl"), load("create.jsonl")
med = lambda rows, f: statistics.median(f(r) for r in rows)
cpu = lambda r: r["window_server_cpu_s"] / r["requests"] * 1e6
rows = [
    ("RunTask(echo) calls/s, 64 in flight", lambda r: r["rps"], run, "{:,.0f}"),
    ("RunTask p50 latency, µs", lambda r: r["p50_us"], run, "{:.0f}"),
    ("taskwired CPU per RunTask, µs", cpu, run, "{:.2f}"),
    ("CreateTasks tasks/s", lambda r: r["create_tasks_per_s"], create, "{:,.0f}"),
    ("taskwired CPU per created task, µs",
     lambda r: r["server_cpu_create_s"] / r["tasks"] * 1e6, create, "{:.2f}"),
]
print(open(f"{out}/machine.txt").read())
print("| Figure (median of %d) | metrics off | metrics on | on / off |" % len(run["off"]))
print("|---|---|---|---|")
for label, f, data, fmt in rows:
    off, on = med(data["off"], f), med(data["on"], f)
    print(f"| {label} | {fmt.format(off)} | {fmt.format(on)} | {on / off:.3f} |")
PY
