#!/usr/bin/python3
"""A client process for tests/integration/test_load_and_failures.py.

  load_client.py load TARGET --clients N --first-client K --tasks-per-client M
      N clients, each on its own grpc.aio channel (and so its own TCP
      connection), in one asyncio loop. Each client creates M tasks: most
      through CreateTasks batches of echo (a value unique to the task) and
      sleep (0-50 ms) tasks, each batch then collected with one Gather; the
      rest one by one with RunTask of echo. Every task's outcome is checked
      (SUCCEEDED, and an echo gives back its own value). Prints one JSON
      object: counts of tasks created, succeeded, wrong, RPC errors by code.

  load_client.py hold TARGET --call await|gather|as_completed|watch
      Connects, prints "ready", reads task ids (one line, space-separated)
      from stdin, starts one long call on them and prints "in-flight" once
      the server is known to have it; then blocks in the call until killed.

Needs the stubs on sys.path (TASKWIRE_PY_STUBS), as the harness does.
"""

import argparse
import asyncio
import json
import os
import queue
import random
import sys
import threading
import time

sys.path.insert(0, os.environ["TASKWIRE_PY_STUBS"])

import grpc  # noqa: E402
from google.protobuf import json_format, struct_pb2  # noqa: E402
from taskwire.v1 import tasks_pb2 as pb  # noqa: E402
from taskwire.v1 import tasks_pb2_grpc as pb_grpc  # noqa: E402

OUTCOME = pb.TASK_VIEW_OUTCOME
BATCH = 96  # Tasks per CreateTasks call.
RUN_TASKS = 20  # Tasks per client through RunTask.
RPC_TIMEOUT = 120.0


def value(obj):
    v = struct_pb2.Value()
    json_format.ParseDict(obj, v)
    return v


def plain(v):
    return json_format.MessageToDict(v)


# --------------------------------------------------------------------------
# load


class Tally:
    def __init__(self):
        self.created = 0
        self.succeeded = 0
        self.wrong = []  # Up to a few descriptions of bad outcomes.
        self.wrong_count = 0
        self.rpc_errors = {}

    def rpc_error(self, error):
        key = f"{error.code().name}: {error.details()}"[:200]
        self.rpc_errors[key] = self.rpc_errors.get(key, 0) + 1

    def check(self, task, expected):
        """expected: the echo's value, or None for a sleep."""
        result = plain(task.result) if task.HasField("result") else None
        if task.state == pb.TASK_STATE_SUCCEEDED and result == expected:
            self.succeeded += 1
            return
        self.wrong_count += 1
        if len(self.wrong) < 5:
            self.wrong.append(f"{task.id} {pb.TaskState.Name(task.state)} result={result!r} "
                              f"want={expected!r} error={task.error.type}: {task.error.message}")


async def one_client(target, number, tasks, tally, rng):
    # A local subchannel pool: a connection of its own, not one shared by
    # every channel to the same target.
    channel = grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    stub = pb_grpc.TaskServiceStub(channel)
    try:
        serial = 0
        remaining = tasks - RUN_TASKS
        while remaining > 0:
            size = min(BATCH, remaining)
            remaining -= size
            requests, expected = [], []
            for _ in range(size):
                serial += 1
                if serial % 2:
                    want = {"client": float(number), "task": float(serial)}
                    requests.append(pb.CreateTaskRequest(kind="echo", args=value({"value": want})))
                else:
                    want = None
                    requests.append(pb.CreateTaskRequest(
                        kind="sleep", args=value({"seconds": rng.uniform(0, 0.05)})))
                expected.append(want)
            try:
                created = await stub.CreateTasks(
                    pb.CreateTasksRequest(tasks=requests, view=OUTCOME), timeout=RPC_TIMEOUT)
                tally.created += len(created.tasks)
                gathered = await stub.Gather(pb.GatherRequest(
                    ids=[t.id for t in created.tasks], return_exceptions=True, view=OUTCOME),
                    timeout=RPC_TIMEOUT)
            except grpc.RpcError as e:
                tally.rpc_error(e)
                continue
            if not gathered.done or len(gathered.tasks) != len(expected):
                tally.wrong_count += len(expected)
                tally.wrong.append(f"gather done={gathered.done} tasks={len(gathered.tasks)}")
                continue
            for task, want in zip(gathered.tasks, expected):
                tally.check(task, want)
        for _ in range(RUN_TASKS):
            serial += 1
            want = {"client": float(number), "task": float(serial), "run": True}
            request = pb.RunTaskRequest(
                task=pb.CreateTaskRequest(kind="echo", args=value({"value": want})), view=OUTCOME)
            try:
                answer = await stub.RunTask(request, timeout=RPC_TIMEOUT)
            except grpc.RpcError as e:
                tally.rpc_error(e)
                continue
            tally.created += 1
            tally.check(answer.task, want)
    finally:
        await channel.close()


async def load(options):
    tally = Tally()
    rng = random.Random(options.first_client)
    started = time.monotonic()
    await asyncio.gather(*(one_client(options.target, options.first_client + i,
                                      options.tasks_per_client, tally, rng)
                           for i in range(options.clients)))
    print(json.dumps({
        "clients": options.clients, "created": tally.created, "succeeded": tally.succeeded,
        "wrong": tally.wrong_count, "wrong_examples": tally.wrong, "rpc_errors": tally.rpc_errors,
        "seconds": round(time.monotonic() - started, 3),
    }), flush=True)


# --------------------------------------------------------------------------
# hold


def hold(options):
    channel = grpc.insecure_channel(options.target)
    stub = pb_grpc.TaskServiceStub(channel)
    grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
    # Connected and started: the ids come on stdin, so that the test can
    # create short tasks once every client is ready.
    print("ready", flush=True)
    ids = sys.stdin.readline().split()
    if options.call in ("await", "gather"):
        if options.call == "await":
            call = stub.AwaitTask.future(pb.AwaitTaskRequest(id=ids[0]), timeout=RPC_TIMEOUT)
        else:
            call = stub.Gather.future(pb.GatherRequest(ids=ids), timeout=RPC_TIMEOUT)
        # A call answered after the long one was sent on the same channel:
        # the long one is in flight (as the harness's drain tests do).
        stub.GetTask(pb.GetTaskRequest(id=ids[0]), timeout=RPC_TIMEOUT)
        if call.done():
            sys.exit(f"the {options.call} answered at once: {call.result()}")
        print("in-flight", flush=True)
        call.result()
    else:
        if options.call == "as_completed":
            # The first id is of a finished task: its message proves the
            # stream is open on the server.
            stream = stub.AsCompleted(pb.AsCompletedRequest(ids=ids), timeout=RPC_TIMEOUT)
            next(stream)
        else:
            stream = stub.WatchTasks(pb.WatchTasksRequest(), timeout=RPC_TIMEOUT)
            # An event of a task created after the call proves it is open;
            # until one arrives, create another.
            events = queue.Queue()
            threading.Thread(target=lambda: [events.put(e) for e in stream], daemon=True).start()
            while True:
                stub.CreateTask(pb.CreateTaskRequest(kind="echo", args=value({"value": 1})))
                try:
                    events.get(timeout=0.2)
                    break
                except queue.Empty:
                    pass
        print("in-flight", flush=True)
        for _ in stream:
            pass
    # Reaching here means the call ended before the test killed us.
    print("call ended", flush=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("load")
    p.add_argument("target")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--first-client", type=int, default=0)
    p.add_argument("--tasks-per-client", type=int, required=True)
    p = sub.add_parser("hold")
    p.add_argument("target")
    p.add_argument("--call", choices=["await", "gather", "as_completed", "watch"], required=True)
    options = parser.parse_args()
    if options.mode == "load":
        asyncio.run(load(options))
    else:
        hold(options)


if __name__ == "__main__":
    main()
