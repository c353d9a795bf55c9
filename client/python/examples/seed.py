#!/usr/bin/python3
"""The seed's asyncio programs with every sleep a remote task on taskwired.

    TASKWIRE_SERVER=127.0.0.1:50051 /usr/bin/python3 client/python/examples/seed.py

Prints what the seed prints and how long each program took, as the C++
client/examples/seed_over_the_wire does, then wait_n: the delays of n
remote wait_random tasks in the order they finish (ascending, unsorted).
"""

import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import taskwire_client as taskwire  # noqa: E402


async def say_after(tw, seconds, what):
    await tw.create_task("sleep", seconds=seconds)
    print(what)


async def one_remote_task(tw):
    await say_after(tw, 1, "hello")


async def gather_two(tw):
    await asyncio.gather(say_after(tw, 2, "task1 (2 s)"), say_after(tw, 1, "task2 (1 s)"))


async def create_then_await(tw):
    task1 = asyncio.create_task(say_after(tw, 1, "hello"))
    task2 = asyncio.create_task(say_after(tw, 2, "world"))
    await task1
    await task2


async def wait_n(tw, n, max_delay):
    tasks = [tw.create_task("wait_random", max_delay=max_delay) for _ in range(n)]
    return [task.result() async for task in tw.as_completed(tasks)]


async def main():
    async with taskwire.Client() as tw:
        for title, program in [
                ("one remote task awaited (sleep 1 s)", one_remote_task),
                ("gather of remote sleeps of 2 s and 1 s (about 2 s, not 3)", gather_two),
                ("create_task, then await", create_then_await)]:
            print(f"== {title}")
            start = time.monotonic()
            await program(tw)
            print(f"finished in {time.monotonic() - start:.3f} s\n", flush=True)
        delays = await wait_n(tw, 8, 0.5)
        print(f"wait_n: [{', '.join(f'{d:.3f}' for d in delays)}]")
        gathered = await tw.gather(*(tw.create_task("wait_random", max_delay=0.5)
                                     for _ in range(5)))
        print(f"gather: {len(gathered)} delays, max {max(gathered):.3f} s")


if __name__ == "__main__":
    asyncio.run(main())
