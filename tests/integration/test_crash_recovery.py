#!/usr/bin/python3
"""Crash test: nothing taskwired acknowledged is lost when it is killed.

Run by `bazel test //tests:crash_recovery_test`. CRASH_ITERATIONS times
(default 20), on one data directory: several clients load a durable
taskwired, which is killed with SIGKILL at a random moment, then restarted
on the same directory. After each restart every task whose creation was
acknowledged, in this round or an earlier one, must exist and reach its
final state with the right result; a task a client saw finished must be
unchanged (it did not run a second time); a task run again after a restart
must say so in its attempt; a `sleep` must end no earlier than its creation
plus its seconds; idempotency keys must still find their tasks. Prints the
counts, and the seed to replay a failing run (CRASH_SEED).
"""

import os
import random
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_taskwired import (  # noqa: E402
    ALL_COMPLETED, FINAL_STATES, SUCCEEDED, WORK_DIR, Client, Taskwired, echo_task, from_value,
    duration, grpc, pb, pb_grpc, sleep_task, state_name)

ITERATIONS = int(os.environ.get("CRASH_ITERATIONS", "20"))
CLIENTS = 4
# How long load runs before the kill, at most (the moment is random).
MAX_LOAD_SECONDS = 1.5
# Ids per Gather when checking (well under the server's per-request limit).
CHUNK = 1000
# How long every acknowledged task may take to finish after a restart.
SETTLE_SECONDS = 60.0


class Acked:
    """What a client knows of one task it was told was created."""

    __slots__ = ("id", "key", "expected", "sleep_seconds", "seen")

    def __init__(self, task_id, key, expected, sleep_seconds=None):
        self.id = task_id
        self.key = key
        self.expected = expected
        self.sleep_seconds = sleep_seconds
        self.seen = None  # (state, attempt, result) once a client saw it finished.


class LoadClient(threading.Thread):
    """One client on its own channel: creates tasks (alone, in batches, with
    and without idempotency keys), runs some, and looks at earlier ones,
    until the server goes away."""

    def __init__(self, port, name, seed, acked, lock):
        super().__init__(daemon=True)
        self.port = port
        self.name = name
        self.rng = random.Random(seed)
        self.acked = acked
        self.lock = lock
        self.sequence = 0

    def key(self):
        self.sequence += 1
        return f"{self.name}-{self.sequence}"

    def add(self, entry):
        with self.lock:
            self.acked[entry.id] = entry

    def run(self):
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        client = Client(pb_grpc.TaskServiceStub(channel))
        try:
            while True:
                self.step(client)
        except grpc.RpcError:
            pass  # The server was killed: what was acknowledged is recorded.
        finally:
            channel.close()

    def step(self, client):
        op = self.rng.random()
        if op < 0.4:
            keys = [self.key() for _ in range(20)]
            request = pb.CreateTasksRequest(
                tasks=[echo_task({"key": k}, idempotency_key=k) for k in keys])
            response = client.CreateTasks(request, timeout=10)
            for k, task in zip(keys, response.tasks):
                self.add(Acked(task.id, k, {"key": k}))
        elif op < 0.65:
            seconds = round(self.rng.uniform(0.05, 1.0), 3)
            k = self.key()
            task = client.CreateTask(sleep_task(seconds, idempotency_key=k), timeout=10)
            self.add(Acked(task.id, k, None, sleep_seconds=seconds))
        elif op < 0.9:
            k = self.key()
            response = client.RunTask(pb.RunTaskRequest(task=echo_task(k)), timeout=10)
            entry = Acked(response.task.id, None, k)
            if response.done:
                entry.seen = (response.task.state, response.task.attempt,
                              from_value(response.task.result))
            self.add(entry)
        else:
            with self.lock:
                if not self.acked:
                    return
                entry = self.acked[self.rng.choice(list(self.acked))]
            response = client.AwaitTask(pb.AwaitTaskRequest(id=entry.id, wait_timeout=duration(0)),
                                        timeout=10)
            if response.done and entry.seen is None:
                entry.seen = (response.task.state, response.task.attempt,
                              from_value(response.task.result))


class Counts:
    def __init__(self):
        self.acknowledged = 0
        self.recovered = 0
        self.rerun = 0
        self.lost = 0
        self.ran_twice = 0
        self.keys_checked = 0

    def line(self):
        return (f"acknowledged {self.acknowledged}, recovered {self.recovered}, "
                f"re-run {self.rerun}, lost {self.lost}, ran twice {self.ran_twice}, "
                f"idempotency keys rechecked {self.keys_checked}")


def check(server, acked, counts, problems, rng):
    """Waits for every acknowledged task to finish and checks it."""
    client = Client(server.stub)
    entries = list(acked.values())
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start:start + CHUNK]
        ids = [e.id for e in chunk]
        try:
            client.Wait(pb.WaitRequest(ids=ids, return_when=ALL_COMPLETED), timeout=SETTLE_SECONDS)
            tasks = client.Gather(pb.GatherRequest(ids=ids, return_exceptions=True),
                                  timeout=SETTLE_SECONDS).tasks
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            tasks = [get_or_none(client, task_id) for task_id in ids]
        for entry, task in zip(chunk, tasks):
            if task is None:
                counts.lost += 1
                problems.append(f"{entry.id}: acknowledged, missing after the restart")
                continue
            counts.recovered += 1
            if task.state not in FINAL_STATES:
                problems.append(f"{entry.id}: {state_name(task.state)} after waiting")
                continue
            result = from_value(task.result)
            if task.state != SUCCEEDED or result != entry.expected:
                problems.append(f"{entry.id}: {state_name(task.state)} {result!r} "
                                f"{task.error.type} {task.error.message}; want {entry.expected!r}")
            if entry.seen is not None and entry.seen != (task.state, task.attempt, result):
                counts.ran_twice += 1
                problems.append(f"{entry.id}: seen finished as {entry.seen}, now "
                                f"{(state_name(task.state), task.attempt, result)}")
            if task.attempt > 1:
                counts.rerun += 1
            if entry.sleep_seconds is not None:
                ran = (task.finish_time.ToNanoseconds() - task.create_time.ToNanoseconds()) / 1e9
                if ran < entry.sleep_seconds - 0.002:
                    problems.append(f"{entry.id}: a {entry.sleep_seconds} s sleep finished "
                                    f"{ran:.3f} s after its creation")
    keyed = [e for e in entries if e.key is not None]
    for entry in rng.sample(keyed, min(200, len(keyed))):
        request = (sleep_task(entry.sleep_seconds, idempotency_key=entry.key)
                   if entry.sleep_seconds is not None else
                   echo_task(entry.expected, idempotency_key=entry.key))
        task = client.CreateTask(request)
        counts.keys_checked += 1
        if task.id != entry.id:
            problems.append(f"idempotency key {entry.key}: now task {task.id}, was {entry.id}")


def get_or_none(client, task_id):
    try:
        return client.GetTask(pb.GetTaskRequest(id=task_id))
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def main():
    seed = int(os.environ.get("CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    data_dir = tempfile.mkdtemp(prefix="crash-data-", dir=WORK_DIR)
    print(f"crash test: {ITERATIONS} rounds, {CLIENTS} clients, seed {seed}, data in {data_dir}",
          flush=True)
    acked, lock = {}, threading.Lock()
    problems = []
    server = None
    started = time.monotonic()
    try:
        for round_number in range(1, ITERATIONS + 1):
            server = Taskwired("--data-dir", data_dir, name=f"crash-{round_number}").start()
            before = len(acked)
            clients = [LoadClient(server.port, f"r{round_number}c{c}", rng.randrange(1 << 30),
                                  acked, lock) for c in range(CLIENTS)]
            for c in clients:
                c.start()
            time.sleep(rng.uniform(0.1, MAX_LOAD_SECONDS))
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=10)
            for c in clients:
                c.join(timeout=30)
                if c.is_alive():
                    problems.append(f"round {round_number}: client {c.name} still running")
            killed_with = len(acked) - before

            server = Taskwired("--data-dir", data_dir, name=f"crash-{round_number}-after").start()
            counts = Counts()
            counts.acknowledged = len(acked)
            check(server, acked, counts, problems, rng)
            print(f"round {round_number:2d}: killed after {killed_with} new acknowledgements; "
                  f"{counts.line()}", flush=True)
            if problems:
                break
            code, _ = server.stop(grace=5)
            if code != 0:
                problems.append(f"round {round_number}: SIGTERM exit code {code}\n"
                                + server.log_tail())
                break
            server = None
    except Exception as e:  # Print what was seen, then fail.
        problems.append(f"{type(e).__name__}: {e}")
        if server is not None:
            problems.append("server log tail:\n" + server.log_tail())
    finally:
        if server is not None:
            server.kill()
    print(f"total: {len(acked)} acknowledged tasks, lost 0 required; "
          f"{time.monotonic() - started:.1f} s", flush=True)
    if problems:
        print(f"FAILED (seed {seed}):", *problems[:50], sep="\n  ")
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
