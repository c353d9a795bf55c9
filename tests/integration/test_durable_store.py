#!/usr/bin/python3
"""Integration tests of the durable task store: the real taskwired with
--data-dir, stopped with SIGTERM and started again on the same directory.

Run by `bazel test //tests:durable_store_integration_test`. Outside Bazel:

    bazel build //server:taskwired
    TASKWIRED=bazel-bin/server/taskwired /usr/bin/python3 \\
        tests/integration/test_durable_store.py [-k PATTERN]

The process and RPC helpers are test_taskwired.py's; every wait is bounded
the same way (port files polled with deadlines, RPC deadlines, the
server's own Gather rather than sleeps).
"""

import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_taskwired as tw  # noqa: E402
from test_taskwired import (  # noqa: E402
    FAILED, PENDING, RUNNING, SUCCEEDED, TASKWIRED, WORK_DIR, Client, Taskwired, TaskwireTestCase,
    echo_task,
    fail_task, pb, sleep_task)

# A server stopped with SIGTERM and nothing in flight exits well within this.
STOP_GRACE = 5.0


def data_dir(name):
    return tempfile.mkdtemp(prefix=f"data-{name}-", dir=WORK_DIR)


class DurableStoreTest(TaskwireTestCase):

    def start(self, *flags, env=None):
        server = Taskwired(*flags, env=env, name=self._testMethodName)
        self.addCleanup(server.kill)
        return server.start()

    def stop(self, server):
        code, seconds = server.stop(STOP_GRACE)
        self.assertEqual(code, 0, f"exit code after SIGTERM ({seconds:.2f} s):\n"
                         + server.log_tail())

    def log(self, server):
        with open(server.log_path, errors="replace") as f:
            return f.read()

    def run_to_exit(self, *flags, env=None, timeout=20.0):
        """Runs taskwired expecting it to exit by itself: (code, output)."""
        proc = subprocess.run([TASKWIRED, "--listen", "127.0.0.1:0", *flags],
                              env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr

    def test_finished_tasks_and_their_results_survive_a_restart(self):
        directory = data_dir("restart")
        server = self.start("--data-dir", directory, "--drain-grace", "1")
        self.assertIn(f"store: durable, SQLite at {directory}/taskwire.db", self.log(server))
        client = Client(server.stub)
        created = [
            client.CreateTask(echo_task({"a": [1, 2.5, "x"], "b": None}, name="first",
                                        labels={"team": "data"}, idempotency_key="key-1")),
            client.CreateTask(fail_task("no such file", type="FileNotFoundError")),
            client.CreateTask(sleep_task(0.05, timeout=tw.duration(30))),
        ]
        keyed_batch = pb.CreateTasksRequest(idempotency_key="batch-1",
                                            tasks=[echo_task(i) for i in range(50)])
        batch = client.CreateTasks(keyed_batch)
        ids = [t.id for t in created] + [t.id for t in batch.tasks]
        done = client.Gather(pb.GatherRequest(ids=ids, return_exceptions=True))
        before = {t.id: t for t in done.tasks}
        self.assertState(before[ids[0]], SUCCEEDED)
        self.assertState(before[ids[1]], FAILED)
        self.stop(server)

        server = self.start("--data-dir", directory)
        self.assertIn(f"({len(ids)} task(s) loaded in", self.log(server))
        client = Client(server.stub)
        for task_id in ids:
            after = client.GetTask(pb.GetTaskRequest(id=task_id))
            self.assertEqual(after, before[task_id],
                             f"task {task_id} before the restart:\n{before[task_id]}\n"
                             f"after:\n{after}")
        self.assertEqual(tw.from_value(before[ids[0]].result), {"a": [1, 2.5, "x"], "b": None})
        self.assertEqual(before[ids[1]].error.type, "FileNotFoundError")
        listed = client.ListTasks(pb.ListTasksRequest(page_size=100))
        self.assertEqual([t.id for t in listed.tasks], sorted(ids))
        # The idempotency key still finds the task made before the restart.
        again = client.CreateTask(echo_task("other", idempotency_key="key-1"))
        self.assertEqual(again.id, ids[0])
        # So does the key of the CreateTasks call, for all of its tasks.
        batch_again = client.CreateTasks(keyed_batch)
        self.assertEqual([t.id for t in batch_again.tasks], [t.id for t in batch.tasks])
        # New tasks are kept too, next to the old ones.
        new = client.RunTask(pb.RunTaskRequest(task=echo_task("after restart")))
        self.stop(server)

        server = self.start("--data-dir", directory)
        self.assertIn(f"({len(ids) + 1} task(s) loaded in", self.log(server))
        kept = Client(server.stub).GetTask(pb.GetTaskRequest(id=new.task.id))
        self.assertState(kept, SUCCEEDED)
        self.assertEqual(tw.from_value(kept.result), "after restart")
        self.stop(server)

    def test_tasks_unfinished_at_a_clean_stop_run_again_at_the_next_start(self):
        directory = data_dir("clean-stop")
        server = self.start("--data-dir", directory, "--drain-grace", "1")
        client = Client(server.stub)
        long = client.CreateTask(sleep_task(30))
        short = client.CreateTask(sleep_task(1.5))
        queued = client.CreateTask(tw.task_request("resize", {"n": 1}))  # No worker runs it.
        self.assertState(client.AwaitTask(pb.AwaitTaskRequest(id=long.id,
                                                              wait_timeout=tw.duration(0.2))).task,
                         RUNNING)
        self.stop(server)
        self.assertIn("3 unfinished task(s) stop here and run again at the next start",
                      self.log(server))

        server = self.start("--data-dir", directory)
        self.assertIn("recovered 3 tasks: 0 finished, 1 pending again, 2 running again",
                      self.log(server))
        client = Client(server.stub)
        again = client.GetTask(pb.GetTaskRequest(id=long.id))
        self.assertState(again, RUNNING)
        self.assertEqual(again.attempt, 2)
        self.assertState(client.GetTask(pb.GetTaskRequest(id=queued.id)), PENDING)
        done = client.AwaitTask(pb.AwaitTaskRequest(id=short.id))
        self.assertState(done.task, SUCCEEDED)
        self.assertEqual(done.task.attempt, 2)
        ran = (done.task.finish_time.ToNanoseconds() - done.task.create_time.ToNanoseconds()) / 1e9
        self.assertGreaterEqual(ran, 1.5)
        self.stop(server)

    def test_the_data_directory_comes_from_the_environment_too(self):
        directory = os.path.join(data_dir("env"), "made", "by", "taskwired")
        server = self.start(env={"TASKWIRE_DATA_DIR": directory})
        self.assertIn(f"store: durable, SQLite at {directory}/taskwire.db", self.log(server))
        self.stop(server)
        self.assertTrue(os.path.isfile(os.path.join(directory, "taskwire.db")))

    def test_in_memory_is_the_default_and_both_flags_are_refused(self):
        server = self.start()
        self.assertIn("store: in-memory", self.log(server))
        self.stop(server)
        code, output = self.run_to_exit("--in-memory", "--data-dir", data_dir("both"))
        self.assertEqual(code, 2, output)
        self.assertIn("--data-dir (TASKWIRE_DATA_DIR) and --in-memory (TASKWIRE_IN_MEMORY) "
                      "exclude each other", output)
        code, output = self.run_to_exit("--in-memory",
                                        env={"TASKWIRE_DATA_DIR": data_dir("both-env")})
        self.assertEqual(code, 2, output)

    def test_a_file_that_is_not_a_database_stops_the_server(self):
        directory = data_dir("garbage")
        path = os.path.join(directory, "taskwire.db")
        with open(path, "wb") as f:
            f.write(b"this is not a database" * 400)
        code, output = self.run_to_exit("--data-dir", directory)
        self.assertEqual(code, 1, output)
        self.assertIn(f"cannot open the task store: {path}: is not a SQLite database", output)
        self.assertNotIn("listening", output)

    def test_a_schema_newer_than_the_server_stops_it(self):
        directory = data_dir("newer")
        self.stop(self.start("--data-dir", directory))
        path = os.path.join(directory, "taskwire.db")
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 99")
        db.close()  # An open connection would hold the file.
        code, output = self.run_to_exit("--data-dir", directory)
        self.assertEqual(code, 1, output)
        self.assertIn(f"{path}: schema version 99 is newer than this taskwired knows", output)

    def test_a_second_server_on_the_same_directory_is_refused(self):
        directory = data_dir("shared")
        first = self.start("--data-dir", directory)
        code, output = self.run_to_exit("--data-dir", directory)
        self.assertEqual(code, 1, output)
        self.assertIn("is in use by another process", output)
        # The first one is unharmed.
        task = Client(first.stub).RunTask(pb.RunTaskRequest(task=echo_task(7)))
        self.assertState(task.task, SUCCEEDED)
        self.stop(first)


def main(argv):
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", dest="patterns", action="append", default=[],
                        help="only tests whose name contains this (repeatable)")
    options = parser.parse_args(argv)
    if not os.access(TASKWIRED, os.X_OK):
        sys.exit(f"no taskwired binary at {TASKWIRED} (set TASKWIRED)")
    loader = unittest.TestLoader()
    if options.patterns:
        loader.testNamePatterns = [f"*{p}*" for p in options.patterns]
    started = time.monotonic()
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(
        loader.loadTestsFromTestCase(DurableStoreTest))
    failed = len(result.failures) + len(result.errors)
    print(f"\n{result.testsRun - failed - len(result.skipped)} passed, {failed} failed"
          f" in {time.monotonic() - started:.1f} s; server logs: {tw.LOG_DIR}")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
