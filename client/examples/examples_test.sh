#!/usr/bin/env bash
# Runs the examples against a real taskwired and checks what they print:
# the seed's lines in order, their timings (generous bounds, real time), and
# wait_n's delays in ascending completion order.
set -euo pipefail

root="$TEST_SRCDIR/taskwire"
port_file="$TEST_TMPDIR/port"
"$root/server/taskwired" --listen 127.0.0.1:0 --port-file "$port_file" --log-level warn &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do [[ -s "$port_file" ]] && break; sleep 0.05; done
target="127.0.0.1:$(cat "$port_file")"

seed=$("$root/client/examples/seed_over_the_wire" --server "$target")
waits=$("$root/client/examples/wait_n" --server "$target" 8 0.5)
echo "$seed"
echo "$waits"

SEED="$seed" WAITS="$waits" /usr/bin/python3 - <<'PY'
import os, re, sys
seed, waits = os.environ["SEED"], os.environ["WAITS"]
failures, checks = [], []
def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    checks.append(what)
    if not ok: failures.append(what)

blocks = [b for b in seed.split("== ")[1:]]
check(len(blocks) == 3, "three seed programs ran")
lines = [[l for l in b.splitlines()[1:] if l and not l.startswith("finished")] for b in blocks]
times = [float(re.search(r"finished in ([0-9.]+) s", b).group(1)) for b in blocks]
check(lines[0] == ["hello"], "one remote task prints hello")
check(0.9 <= times[0] < 2.5, f"it takes about 1 s ({times[0]})")
check(lines[1] == ["task2 (1 s)", "task1 (2 s)"], "the gather prints the 1 s task first")
check(1.9 <= times[1] < 2.9, f"the gather takes about 2 s, not 3 ({times[1]})")
check(lines[2] == ["hello", "world"], "create_task then await prints hello, world")
check(1.9 <= times[2] < 2.9, f"it takes about 2 s ({times[2]})")

for name in ("wait_n", "task_wait_n"):
    m = re.search(name + r": \[([^\]]*)\]", waits)
    delays = [float(x) for x in m.group(1).split(",")] if m else []
    check(len(delays) == 8, f"{name} returns 8 delays")
    check(all(0 <= d <= 0.5 for d in delays), f"{name}'s delays are within [0, max_delay]")
    check(delays == sorted(delays), f"{name}'s delays come in ascending (completion) order")
m = re.search(r"measure_time: ([0-9.]+) s per task", waits)
check(m is not None and 0 < float(m.group(1)) <= 0.5, "measure_time gives a plausible average")
print(f"{len(checks) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
PY
