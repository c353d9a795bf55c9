#!/usr/bin/env python3
"""asyncio's side of the core benchmarks (bench/core_bench.cc, task_memory.cc).

Measures the same things with plain Python 3 and the standard library only:

  a  create + run + await of a trivial task: sequential
     (`await asyncio.create_task(trivial())` in a loop) and batched (create N
     tasks, then await each);
  b  a chain of nested `await coro()` 1000 deep: ns per level;
  c  one million `asyncio.create_task(asyncio.sleep(d))`: creation rate, rate
     until all are asleep, RSS growth per task (in a fresh child process, so
     that memory freed by a and b is not reused);
  d  `loop.call_later(d, f).cancel()` with 1K..1M timers pending, for
     reference (asyncio cancels lazily: the handle stays in the heap until the
     loop purges it, so this is not the same operation as TimerHeap::cancel).

Times are this process's CPU time (time.process_time), as Google Benchmark's
items_per_second and task_memory's rates are: on a shared, noisy machine, time
spent running someone else's process is not ours to count. Each timed figure
is the median of --repeat runs, as run_core_bench.sh asks Google Benchmark for
medians. Prints a table, or JSON with --json.
"""

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time

CHAIN_DEPTH = 1000


def rss_bytes():
    """Current resident set size: statm on Linux, else the high-water mark."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        # ru_maxrss is in KiB on Linux; only a fallback, as it never falls.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def median_of(repeat, measure):
    return statistics.median(measure() for _ in range(repeat))


# --- a) create + run + await -------------------------------------------------


async def trivial():
    return 1


async def sequential(n):
    create_task = asyncio.create_task
    start = time.process_time()
    for _ in range(n):
        await create_task(trivial())
    return n / (time.process_time() - start)


async def batched(batch, rounds):
    create_task = asyncio.create_task
    start = time.process_time()
    for _ in range(rounds):
        tasks = [create_task(trivial()) for _ in range(batch)]
        for task in tasks:
            await task
    return batch * rounds / (time.process_time() - start)


# --- b) nested await chain ---------------------------------------------------


async def nested(depth):
    if depth == 0:
        return 0
    return 1 + await nested(depth - 1)


async def chain(chains):
    start = time.process_time_ns()
    for _ in range(chains):
        await nested(CHAIN_DEPTH)
    return (time.process_time_ns() - start) / (chains * CHAIN_DEPTH)


# --- c) a million sleeping tasks ---------------------------------------------


async def sleep_many(n):
    rnd = random.Random(42)
    # 1-2 s in whole milliseconds, as task_memory's real-clock run.
    delays = [rnd.randint(1000, 2000) / 1000 for _ in range(n)]
    # The task list is filled in place, so keeping references (to check that
    # every task finished) allocates nothing per task.
    tasks = [None] * n
    gc.collect()
    create_task = asyncio.create_task
    sleep = asyncio.sleep

    rss0 = rss_bytes()
    t0 = time.process_time()
    for i, delay in enumerate(delays):
        tasks[i] = create_task(sleep(delay))
    t1 = time.process_time()
    rss1 = rss_bytes()
    # Queued behind the n first steps: when this resumes, all are asleep.
    await asyncio.sleep(0)
    t2 = time.process_time()
    rss2 = rss_bytes()
    woke_early = any(task.done() for task in tasks)

    await asyncio.sleep(max(delays) + 0.01)
    pending = [task for task in tasks if not task.done()]
    if pending:  # Waking a million tasks takes Python a while.
        await asyncio.wait(pending)
    woken = sum(1 for task in tasks if task.done() and not task.cancelled())
    return {
        "tasks": n,
        "created_bytes_per_task": (rss1 - rss0) / n,
        "sleeping_bytes_per_task": (rss2 - rss0) / n,
        "create_rate": n / (t1 - t0),
        "start_rate": n / (t2 - t0),
        "woken": woken,
        "ok": woken == n and not woke_early,
    }


# --- d) call_later + cancel with N pending -----------------------------------


def noop():
    pass


async def arm_cancel(pending, iterations):
    loop = asyncio.get_running_loop()
    rnd = random.Random(1)
    handles = [loop.call_later(rnd.uniform(1, 1000), noop) for _ in range(pending)]
    delays = [rnd.uniform(1, 1000) for _ in range(1 << 14)]
    mask = (1 << 14) - 1
    call_later = loop.call_later
    start = time.process_time_ns()
    for i in range(iterations):
        call_later(delays[i & mask], noop).cancel()
        # Let the loop run now and then, as it would in an application: that
        # is when asyncio purges cancelled handles from its heap.
        if i & 1023 == 1023:
            await asyncio.sleep(0)
    elapsed = time.process_time_ns() - start
    for handle in handles:
        handle.cancel()
    return elapsed / iterations


# --- driver ------------------------------------------------------------------


def run_c_in_child(tasks):
    """Runs part c in a fresh interpreter and returns its result."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--only-c", f"--tasks={tasks}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def measure(args):
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * CHAIN_DEPTH))
    scale = 10 if args.quick else 1
    results = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "repeat": args.repeat,
    }
    results["a_sequential_tasks_per_s"] = median_of(
        args.repeat, lambda: asyncio.run(sequential(100_000 // scale))
    )
    results["a_batched_tasks_per_s"] = {
        str(batch): median_of(
            args.repeat, lambda: asyncio.run(batched(batch, 100_000 // scale // batch))
        )
        for batch in (100, 1000)
    }
    results["b_chain_ns_per_level"] = median_of(
        args.repeat, lambda: asyncio.run(chain(300 // scale))
    )
    results["d_call_later_cancel_ns"] = {
        str(pending): median_of(
            min(args.repeat, 3), lambda: asyncio.run(arm_cancel(pending, 200_000 // scale))
        )
        for pending in (1_000, 10_000, 100_000, 1_000_000)
    }
    results["c_sleeping_tasks"] = run_c_in_child(args.tasks)
    return results


def print_table(r):
    print(f"asyncio ({r['implementation']} {r['python']}), median of {r['repeat']}")
    print(f"a  create+run+await, sequential  {r['a_sequential_tasks_per_s']:14,.0f} tasks/s")
    for batch, rate in r["a_batched_tasks_per_s"].items():
        print(f"a  create+run+await, batch {batch:>5}  {rate:14,.0f} tasks/s")
    print(f"b  nested await chain, depth {CHAIN_DEPTH} {r['b_chain_ns_per_level']:14,.1f} ns/level")
    c = r["c_sleeping_tasks"]
    print(f"c  {c['tasks']:,} sleeping tasks:")
    print(f"     create_task rate             {c['create_rate']:14,.0f} tasks/s")
    print(f"     create+start rate            {c['start_rate']:14,.0f} tasks/s")
    print(f"     RSS growth, created          {c['created_bytes_per_task']:14,.1f} B/task")
    print(f"     RSS growth, all asleep       {c['sleeping_bytes_per_task']:14,.1f} B/task")
    print(f"     all woken, none early        {'OK' if c['ok'] else 'FAIL':>14}")
    for pending, ns in r["d_call_later_cancel_ns"].items():
        print(f"d  call_later+cancel, {int(pending):>9,} pending {ns:8,.1f} ns")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks for part c")
    parser.add_argument("--quick", action="store_true", help="a tenth of the work: a smoke test")
    parser.add_argument("--only-c", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.only_c:
        print(json.dumps(asyncio.run(sleep_many(args.tasks))))
        return
    results = measure(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
