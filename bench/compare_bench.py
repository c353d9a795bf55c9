#!/usr/bin/env python3
"""Turns one run's results into the table of docs/benchmarks.md.

Usage: compare_bench.py DIR
DIR holds core_bench.json (Google Benchmark JSON, with repetitions),
task_memory.json (task_memory --json) and asyncio.json (asyncio_bench.py
--json), all from the same run of run_core_bench.sh. Prints a Markdown table:
C++ figure, asyncio figure, ratio (how many times better C++ is), target and
PASS/FAIL. Exits 1 if any target is missed.
"""

import json
import os
import sys

# "Flat" for arm+cancel: the slowest of 1K..1M pending within this factor of
# the fastest. Noise on this machine alone moves single figures by ~20%.
FLATNESS = 1.5
PENDING = ("1000", "10000", "100000", "1000000")


def load(directory):
    with open(os.path.join(directory, "core_bench.json")) as f:
        bench = json.load(f)
    with open(os.path.join(directory, "task_memory.json")) as f:
        memory = {r["run"]: r for r in map(json.loads, filter(str.strip, f))}
    with open(os.path.join(directory, "asyncio.json")) as f:
        py = json.load(f)
    return bench, memory, py


def medians(bench):
    """items_per_second by benchmark name: the median aggregate if there are
    repetitions, else the single run."""
    rates = {}
    for b in bench["benchmarks"]:
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("run_type") == "aggregate" or name not in rates:
            rates[name] = b["items_per_second"]
    return rates


def fmt_rate(x):
    return f"{x / 1e6:.2f} M/s" if x >= 1e6 else f"{x / 1e3:.1f} K/s"


def fmt_ratio(ratio):
    if ratio is None:
        return ""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def shortfall(value, target, higher_is_better):
    """'PASS', or 'FAIL' with how far off the target the value is."""
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else f"**FAIL** ({(value - target) / target:+.0%})"


def build_rows(cpp, memory, py):
    """(measure, C++, asyncio, ratio, target, result) rows; ratio is how many
    times better C++ is, result is '' for rows that only inform."""
    rows = []

    # a) tasks/s, higher is better; both the rate and the ratio must hold.
    cases = [("sequential", cpp["BM_CreateAwaitSequential"], py["a_sequential_tasks_per_s"])]
    for batch in ("100", "1000"):
        cases.append(
            (
                f"batch of {batch}",
                cpp[f"BM_CreateAwaitBatched/{batch}"],
                py["a_batched_tasks_per_s"][batch],
            )
        )
    for label, rate, py_rate in cases:
        results = [shortfall(rate, 10e6, True), shortfall(rate / py_rate, 50, True)]
        result = "PASS" if results == ["PASS", "PASS"] else " / ".join(results)
        rows.append(
            (
                f"a. create+run+await, {label}",
                fmt_rate(rate),
                fmt_rate(py_rate),
                fmt_ratio(rate / py_rate),
                "≥ 10 M/s / ≥ 50x",
                result,
            )
        )

    # b) ns per level, lower is better.
    ns = 1e9 / cpp["BM_NestedAwaitChain/1000"]
    py_ns = py["b_chain_ns_per_level"]
    rows.append(
        (
            "b. nested co_await chain, depth 1000",
            f"{ns:.1f} ns/level",
            f"{py_ns:.1f} ns/level",
            fmt_ratio(py_ns / ns),
            "≤ 60 ns/level",
            shortfall(ns, 60, False),
        )
    )

    # c) compared on the real-clock run, whose tasks are bare sleeps like
    # asyncio's; the virtual-clock run is the deadline-order check.
    real, virt, pyc = memory["real"], memory["virtual"], py["c_sleeping_tasks"]
    rss, py_rss = real["sleeping_bytes_per_task"], pyc["sleeping_bytes_per_task"]
    create, py_create = real["create_rate"], pyc["create_rate"]
    start, py_start = real["start_rate"], pyc["start_rate"]
    rows += [
        (
            f"c. RSS growth, {real['tasks']:,} tasks asleep",
            f"{rss:.0f} B/task",
            f"{py_rss:.0f} B/task",
            fmt_ratio(py_rss / rss),
            "≤ 300 B/task",
            shortfall(rss, 300, False),
        ),
        (
            "c. ... of which runtime heap (operator new)",
            f"{real['live_heap_bytes_per_task']:.0f} B/task",
            "",
            "",
            "",
            "",
        ),
        (
            f"c. create_task rate, {real['tasks']:,} tasks, fresh memory",
            fmt_rate(create),
            fmt_rate(py_create),
            fmt_ratio(create / py_create),
            "≥ 20x",
            shortfall(create / py_create, 20, True),
        ),
        (
            "c. ... again on reused memory (no page faults)",
            fmt_rate(real["warm_create_rate"]),
            "",
            "",
            "",
            "",
        ),
        (
            "c. create + start until all asleep",
            fmt_rate(start),
            fmt_rate(py_start),
            fmt_ratio(start / py_start),
            "",
            "",
        ),
        (
            f"c. wake-ups in deadline order, {virt['tasks']:,} tasks, virtual clock",
            "OK" if virt["ok"] else "FAIL",
            "all woke: " + ("OK" if pyc["ok"] else "FAIL"),
            "",
            "sorted, exact",
            "PASS" if virt["ok"] and real["ok"] else "**FAIL**",
        ),
    ]

    # d) ns per arm+cancel pair, lower is better; the target is flatness.
    # The random re-arm has no target: it shows the cache, not the heap.
    for bench_name, label, py_key, has_target in (
        ("BM_TimerHeapArmCancel", "TimerHeap arm+cancel", None, True),
        ("BM_CallLaterCancel", "call_later+cancel", "d_call_later_cancel_ns", True),
        ("BM_TimerHeapRearmRandom", "TimerHeap re-arm a random pending timer", None, False),
    ):
        figures = [1e9 / cpp[f"{bench_name}/{n}"] for n in PENDING]
        spread = max(figures) / min(figures)
        for n, ns in zip(PENDING, figures):
            py_ns = py[py_key][n] if py_key else None
            first = n == PENDING[0] and has_target
            rows.append(
                (
                    f"d. {label}, {int(n):,} pending",
                    f"{ns:.1f} ns",
                    f"{py_ns:.0f} ns" if py_ns else "",
                    fmt_ratio(py_ns / ns) if py_ns else "",
                    f"flat: max/min ≤ {FLATNESS}" if first else "",
                    f"{shortfall(spread, FLATNESS, False)} (max/min {spread:.2f})" if first else "",
                )
            )
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    bench, memory, py = load(sys.argv[1])
    rows = build_rows(medians(bench), memory, py)
    print(
        f"asyncio: {py['implementation']} {py['python']}. Rates are per CPU second; "
        f"a, b, d are medians of {py['repeat']} repetitions on both sides.\n"
    )
    print("| Measure | C++ (taskwire) | asyncio | Ratio | Target | Result |")
    print("|---|---:|---:|---:|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    missed = [f"{row[0]}: {row[5]}" for row in rows if "FAIL" in row[5]]
    if missed:
        print("\nMissed targets:\n" + "\n".join(f"- {m}" for m in missed))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
