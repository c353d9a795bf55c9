#!/usr/bin/env python3
"""Builds the client benchmark table from one run of run_client_bench.sh.

Usage: report.py OUT_DIR   (reads load.jsonl, rpcs.json, gather.json,
gather_raw.json if present, machine.txt there). Prints a Markdown table; exits 1 if a target is missed.
"""
import json
import statistics
import sys
from pathlib import Path

NAMES = {
    "library": "library: `co_await client.create_task(\"echo\", ...)`",
    "raw-batched": "raw stubs (CQ API), the library's calls: CreateTasks + AsCompletedBatches",
    "raw": "raw stubs (CQ API): CreateTask + AwaitTask",
    "raw-runtask": "raw stubs (CQ API): RunTask",
}
REFERENCE = "raw-batched"
RATIO_TARGET = 0.8
MEMORY_TARGET = 200  # Bytes per awaited task.
TIME_FACTOR = 1.2    # Of the longest sleep.


def median(values):
    return statistics.median(values) if values else float("nan")


def main(out_dir: Path) -> int:
    runs = [json.loads(line) for line in (out_dir / "load.jsonl").read_text().splitlines() if line]
    counted = json.loads((out_dir / "rpcs.json").read_text())
    g = json.loads((out_dir / "gather.json").read_text())
    raw_path = out_dir / "gather_raw.json"
    raw = json.loads(raw_path.read_text()) if raw_path.exists() else None
    rounds = sorted({r["round"] for r in runs})
    in_flight = runs[0]["in_flight"]

    def pick(api):
        return [r for r in runs if r["api"] == api]

    def med(api, key):
        return median([r[key] for r in pick(api)])

    def per_task_us(api, key):
        return median([r[key] / r["tasks"] * 1e6 for r in pick(api) if r["tasks"] and r[key] >= 0])

    rows = []  # (measure, figure, reference, ratio, target, result)
    misses = []

    def verdict(ok, shortfall):
        if ok:
            return "PASS"
        misses.append(shortfall)
        return "**FAIL** (" + shortfall + ")"

    # 1. Overhead against raw stubs.
    for api in NAMES:
        rows.append((
            f"1. {NAMES[api]}, {in_flight} in flight",
            f"{med(api, 'tasks_per_s'):,.0f} tasks/s (p50 {med(api, 'p50_us'):,.0f} µs, "
            f"p99 {med(api, 'p99_us'):,.0f} µs)",
            "", "", "", ""))
    lib = med("library", "tasks_per_s")
    ref = med(REFERENCE, "tasks_per_s")
    ratio = lib / ref
    per_round = []
    for n in rounds:
        a = [r["tasks_per_s"] for r in runs if r["round"] == n and r["api"] == "library"]
        b = [r["tasks_per_s"] for r in runs if r["round"] == n and r["api"] == REFERENCE]
        per_round.append(f"{a[0] / b[0]:.2f}")
    rows.append((
        f"1. library / raw stubs making the same calls, tasks/s at {in_flight} in flight",
        f"{lib:,.0f} tasks/s",
        f"raw CreateTasks + AsCompletedBatches: {ref:,.0f} tasks/s",
        f"{ratio:.2f}x (rounds: {', '.join(per_round)})",
        f"≥ {RATIO_TARGET:.2f}x",
        verdict(ratio >= RATIO_TARGET,
                f"{ratio:.2f}x, {RATIO_TARGET - ratio:.2f} short: needs "
                f"{RATIO_TARGET * ref:,.0f} tasks/s")))
    for api, what in (("raw", "CreateTask + AwaitTask"), ("raw-runtask", "RunTask")):
        rows.append((
            f"1. library / raw {what}, one task per call",
            f"{lib:,.0f} tasks/s",
            f"raw {what}: {med(api, 'tasks_per_s'):,.0f} tasks/s",
            f"{lib / med(api, 'tasks_per_s'):.2f}x", "", ""))
    rows.append((
        "1. client CPU per task (getrusage, all threads)",
        ", ".join(f"{api}: {per_task_us(api, 'window_client_cpu_s'):.1f} µs" for api in NAMES),
        "", "", "", ""))
    rows.append((
        "1. server CPU per task",
        ", ".join(f"{api}: {per_task_us(api, 'window_server_cpu_s'):.1f} µs" for api in NAMES),
        "", "", "", ""))
    both_lib = per_task_us("library", "window_client_cpu_s") + per_task_us(
        "library", "window_server_cpu_s")
    both_ref = per_task_us(REFERENCE, "window_client_cpu_s") + per_task_us(
        REFERENCE, "window_server_cpu_s")
    rows.append((
        "1. same ratio from CPU per task (client + server)",
        f"library: {both_lib:.1f} µs",
        f"raw, same calls: {both_ref:.1f} µs",
        f"{both_ref / both_lib:.2f}x", f"(≥ {RATIO_TARGET:.2f}x)", ""))
    calls = counted["rpcs_started"]
    n = counted["tasks_total"]
    call_text = ", ".join(f"{m} {c:,} ({c / n:.3f}/task)" for m, c in sorted(calls.items()))
    rows.append((
        "1. calls the library starts (interceptor, 1 s run)",
        f"{n:,} tasks: {call_text}",
        "", "", "", ""))
    for api in ("library", "raw-batched"):
        batches = sum(r["batches_in_window"] for r in pick(api))
        created = sum(r["tasks_created_in_window"] for r in pick(api))
        rows.append((
            f"1. tasks per CreateTasks call and AsCompletedBatches stream, {api}",
            f"{created / batches:.1f} ({created:,} tasks in {batches:,} calls)" if batches else "-",
            "", "", "", ""))

    # 2. Gather of remote sleeps.
    limit = TIME_FACTOR * g["sleep_s"]
    rows.append((
        f"2. gather of {g['tasks']:,} remote sleep tasks: first create_task → result",
        f"{g['total_s']:.3f} s",
        f"longest sleep {g['sleep_s']:.1f} s",
        f"{g['total_s'] / g['sleep_s']:.2f}x",
        f"≤ {limit:.1f} s ({TIME_FACTOR}x)",
        verdict(g["total_s"] <= limit, f"{g['total_s']:.3f} s, {g['total_s'] - limit:.3f} s over")))
    if raw:
        rows.append((
            f"2. the same with raw stubs (sync): {raw['tasks']:,} sleep tasks in CreateTasks of "
            f"{raw['batch']:,}, one after another, then one Gather",
            f"{raw['first_create_to_gather_answer_s']:.3f} s (first CreateTasks sent → Gather answer; "
            f"creation {raw['create_s']:.3f} s; server CPU {raw['server_cpu_total_s']:.2f} s)",
            "", f"library / raw: {g['total_s'] / raw['first_create_to_gather_answer_s']:.2f}x the time",
            "", ""))
    rows.append((
        "2. where the time goes (from the first create_task)",
        f"create_task calls {g['create_calls_s'] * 1e3:.0f} ms; every id known at "
        f"{g['all_created_s'] * 1e3:.0f} ms; server create_time of the first task "
        f"{g['first_create_time_s'] * 1e3:.0f} ms, of the last {g['last_create_time_s'] * 1e3:.0f} ms; "
        f"the last one's finish_time {g['last_finish_time_s'] * 1e3:.0f} ms; result {g['total_s'] * 1e3:.0f} ms "
        f"(its finish → result {(g['total_s'] - g['last_finish_time_s']) * 1e3:.0f} ms); "
        f"lateness (finish − create − sleep), the worse of those two {g['max_lateness_ms']:.0f} ms",
        "", "", "", ""))
    rows.append((
        "2. CPU for the whole gather",
        f"client {g['client_cpu_s']:.2f} s ({g['client_cpu_s'] / g['tasks'] * 1e6:.1f} µs/task), "
        f"server {g['server_cpu_s']:.2f} s ({g['server_cpu_s'] / g['tasks'] * 1e6:.1f} µs/task)",
        "", "", "", ""))
    held = g["awaited_malloc_bytes_per_task"]
    rows.append((
        f"2. client memory per awaited task: malloc'd, not freed, all arenas "
        f"({g['tasks']:,} awaited, {g['finished_at_awaited_sample']} finished)",
        f"{held:,.0f} B/task",
        "", "", f"≤ {MEMORY_TARGET} B/task",
        verdict(held <= MEMORY_TARGET,
                f"{held:,.0f} B, {held - MEMORY_TARGET:,.0f} B ({held / MEMORY_TARGET:.1f}x) over")))
    rows.append((
        "2. ... of which C++ heap (operator new, live bytes)",
        f"{g['awaited_heap_bytes_per_task']:,.0f} B/task "
        f"({g['awaited_new_calls_per_task']:.1f} operator new calls/task so far)",
        "", "", "", ""))
    rows.append((
        "2. ... RSS growth (also counts freed buffers still mapped)",
        f"{g['awaited_rss_bytes_per_task']:,.0f} B/task ({g['rss_base_kb'] / 1024:,.1f} → "
        f"{g['rss_awaited_kb'] / 1024:,.1f} MiB)",
        "", "", "", ""))
    rows.append((
        "2. after gather's result (with the results)",
        f"malloc {g['results_malloc_bytes_per_task']:,.0f} B/task, C++ heap "
        f"{g['results_heap_bytes_per_task']:,.0f} B/task, RSS "
        f"{g['results_rss_bytes_per_task']:,.0f} B/task",
        "", "", "", ""))

    machine = (out_dir / "machine.txt").read_text().strip()
    print("```")
    print(machine)
    print("```")
    print()
    print("| Measure | Figure | Compared with | Ratio / difference | Target | Result |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("Load figures are medians of", len(rounds), "round(s);",
          f"the caller's own vectors ({g['caller_vectors_bytes_per_task']} B/task) are not counted.",
          f"Misses: {len(misses)}." if misses else "All targets met.")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
