#!/usr/bin/python3
"""The shipped Python client (client/python/taskwire_client.py) against the
real taskwired: create, await, gather, wait, as_completed, cancel, remote
errors, and the status codes and messages of bad input; then the example
client/python/examples/seed.py as a user runs it.

Run by `bazel test //tests/foreign:python_client_test` (run_python_client_test.sh
generates the stubs and sets TASKWIRED, TASKWIRE_PY_STUBS). Outside Bazel:

    bazel build //server:taskwired
    TASKWIRED=bazel-bin/server/taskwired /usr/bin/python3 tests/foreign/python_client_test.py

Every wait is bounded: each test runs under asyncio.wait_for, and waits on
tasks through the server's own calls, never by sleeping.
"""

import asyncio
import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "client", "python"))

import test_taskwired as harness  # noqa: E402  (the Taskwired process wrapper)
import taskwire_client as taskwire  # noqa: E402
from taskwire_client import RemoteTaskError, TaskOptions, TaskwireRpcError  # noqa: E402

import grpc  # noqa: E402

Code = grpc.StatusCode
SEED_EXAMPLE = os.path.join(REPO, "client", "python", "examples", "seed.py")
# Each test's whole body; generous for a loaded 2-core machine.
TEST_LIMIT = 30.0


class ClientTestCase(unittest.IsolatedAsyncioTestCase):
    """One taskwired for the class; a Client per test."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Taskwired("--drain-grace", "1", name=cls.__name__)
        cls.addClassCleanup(cls.server.kill)
        cls.server.start()
        cls.target = f"127.0.0.1:{cls.server.port}"

    @classmethod
    def tearDownClass(cls):
        code, took = cls.server.stop(1.0)
        if code != 0:
            raise AssertionError(f"taskwired exited with {code}:\n{cls.server.log_tail()}")

    async def asyncSetUp(self):
        self.tw = taskwire.Client(self.target)

    async def asyncTearDown(self):
        await self.tw.close()

    def run_bounded(self, coro):
        return asyncio.wait_for(coro, TEST_LIMIT)

    def server_state(self, task_id):
        """The task's state by name, asked with the harness's own stub."""
        task = self.server.stub.GetTask(harness.pb.GetTaskRequest(id=task_id), timeout=10)
        return harness.state_name(task.state)

    def assertRpcError(self, error, code, *fragments):
        self.assertIsInstance(error, TaskwireRpcError, repr(error))
        self.assertEqual(error.code, code, error.message)
        for fragment in fragments:
            self.assertIn(fragment, error.message)


class CreateAndAwaitTest(ClientTestCase):

    async def test_an_awaited_echo_gives_back_its_json_value(self):
        value = {"a": [1, 2.5, "x", None, True], "b": {"c": "d"}}
        self.assertEqual(await self.run_bounded(self.tw.create_task("echo", value=value)),
                         {"a": [1.0, 2.5, "x", None, True], "b": {"c": "d"}})

    async def test_create_task_returns_at_once_and_the_task_gets_an_id_from_the_server(self):
        task = self.tw.create_task("sleep", seconds=0.2)
        self.assertIsNone(task.id)  # Not sent before the loop runs again.
        self.assertFalse(task.done())
        task_id = await self.run_bounded(task.created())
        self.assertEqual(len(task_id), 26)
        self.assertIsNone(await self.run_bounded(task))
        self.assertTrue(task.done())
        self.assertEqual(self.server_state(task_id), "TASK_STATE_SUCCEEDED")

    async def test_awaiting_twice_answers_the_same_result(self):
        task = self.tw.create_task("wait_random", max_delay=0.1)
        first = await self.run_bounded(task)
        self.assertEqual(await self.run_bounded(task), first)
        self.assertEqual(task.result(), first)

    async def test_args_can_be_a_dict_and_task_options_reach_the_server(self):
        task = self.tw.create_task("echo", {"value": 7},
                                   options=TaskOptions(name="seven", labels={"from": "python"}))
        self.assertEqual(await self.run_bounded(task), 7)
        got = self.server.stub.GetTask(harness.pb.GetTaskRequest(id=task.id), timeout=10)
        self.assertEqual((got.name, dict(got.labels)), ("seven", {"from": "python"}))

    async def test_a_failing_task_raises_remote_task_error_with_its_type_and_message(self):
        task = self.tw.create_task("fail", message="no disk", type="OSError")
        with self.assertRaises(RemoteTaskError) as caught:
            await self.run_bounded(task)
        self.assertEqual((caught.exception.type, caught.exception.message), ("OSError", "no disk"))
        self.assertEqual(caught.exception.task_id, task.id)
        self.assertEqual(str(caught.exception), "OSError: no disk")
        self.assertIsInstance(task.exception(), RemoteTaskError)

    async def test_a_task_past_its_own_timeout_raises_timeout_error_remotely(self):
        task = self.tw.create_task("sleep", seconds=30, options=TaskOptions(timeout=0.2))
        with self.assertRaises(RemoteTaskError) as caught:
            await self.run_bounded(task)
        self.assertEqual(caught.exception.type, "TimeoutError")

    async def test_a_remote_task_runs_alongside_local_coroutines(self):
        async def local():
            await asyncio.sleep(0.1)
            return "local"

        started = time.monotonic()
        results = await self.run_bounded(asyncio.gather(
            local(), self.tw.create_task("sleep", seconds=0.3), local()))
        self.assertEqual(results, ["local", None, "local"])
        self.assertLess(time.monotonic() - started, 2.0)


class GatherWaitAsCompletedTest(ClientTestCase):

    async def test_gather_answers_in_argument_order_and_runs_the_tasks_concurrently(self):
        started = time.monotonic()
        results = await self.run_bounded(self.tw.gather(
            self.tw.create_task("sleep", seconds=0.6),
            self.tw.create_task("echo", value="b"),
            self.tw.create_task("sleep", seconds=0.3)))
        took = time.monotonic() - started
        self.assertEqual(results, [None, "b", None])
        self.assertGreaterEqual(took, 0.55)
        self.assertLess(took, 0.85, "the sleeps ran one after the other")

    async def test_gather_raises_the_first_failure_and_the_others_keep_running(self):
        slow = self.tw.create_task("sleep", seconds=30)
        failing = self.tw.create_task("fail", message="boom", type="ValueError")
        with self.assertRaises(RemoteTaskError) as caught:
            await self.run_bounded(self.tw.gather(slow, failing))
        self.assertEqual((caught.exception.type, caught.exception.message), ("ValueError", "boom"))
        self.assertEqual(self.server_state(slow.id), "TASK_STATE_RUNNING")
        self.assertTrue(await self.run_bounded(slow.cancel()))

    async def test_gather_with_return_exceptions_puts_errors_in_their_place(self):
        results = await self.run_bounded(self.tw.gather(
            self.tw.create_task("echo", value=1),
            self.tw.create_task("fail", message="m"),
            self.tw.create_task("echo", value=3),
            return_exceptions=True))
        self.assertEqual(results[0], 1)
        self.assertIsInstance(results[1], RemoteTaskError)
        self.assertEqual(results[1].message, "m")
        self.assertEqual(results[2], 3)

    async def test_wait_first_completed_splits_done_and_pending(self):
        quick = self.tw.create_task("echo", value="quick")
        slow = self.tw.create_task("sleep", seconds=30)
        done, pending = await self.run_bounded(
            self.tw.wait([quick, slow], return_when=taskwire.FIRST_COMPLETED))
        self.assertEqual((done, pending), ({quick}, {slow}))
        self.assertEqual(quick.result(), "quick")
        await self.run_bounded(slow.cancel())

    async def test_wait_with_a_timeout_answers_what_is_done_and_cancels_nothing(self):
        slow = self.tw.create_task("sleep", seconds=30)
        done, pending = await self.run_bounded(self.tw.wait([slow], timeout=0.2))
        self.assertEqual((done, pending), (set(), {slow}))
        self.assertEqual(self.server_state(slow.id), "TASK_STATE_RUNNING")
        await self.run_bounded(slow.cancel())

    async def test_as_completed_yields_tasks_in_completion_order(self):
        tasks = [self.tw.create_task("sleep", seconds=s) for s in (0.6, 0.2, 0.4)]
        order = [t async for t in self.tw.as_completed(tasks)]
        self.assertEqual(order, [tasks[1], tasks[2], tasks[0]])
        self.assertTrue(all(t.done() for t in order))

    async def test_as_completed_past_its_timeout_raises_timeout_error(self):
        slow = self.tw.create_task("sleep", seconds=30)
        with self.assertRaises(TimeoutError):
            async for _ in self.tw.as_completed([slow], timeout=0.2):
                pass
        self.assertEqual(self.server_state(slow.id), "TASK_STATE_RUNNING")
        await self.run_bounded(slow.cancel())

    async def test_wait_for_cancels_the_remote_task_on_timeout(self):
        slow = self.tw.create_task("sleep", seconds=30)
        with self.assertRaises(TimeoutError):
            await self.run_bounded(self.tw.wait_for(slow, 0.2))
        self.assertEqual(self.server_state(slow.id), "TASK_STATE_CANCELLED")


class CancelTest(ClientTestCase):

    async def test_cancel_stops_the_remote_task_and_its_awaiters_get_cancelled_error(self):
        task = self.tw.create_task("sleep", seconds=30)
        awaiter = asyncio.ensure_future(task)
        await self.run_bounded(task.created())
        self.assertTrue(await self.run_bounded(task.cancel()))
        with self.assertRaises(asyncio.CancelledError):
            await self.run_bounded(awaiter)
        self.assertTrue(task.cancelled())
        self.assertEqual(self.server_state(task.id), "TASK_STATE_CANCELLED")

    async def test_cancelling_a_finished_task_answers_false_and_changes_nothing(self):
        task = self.tw.create_task("echo", value=1)
        await self.run_bounded(task)
        self.assertFalse(await self.run_bounded(task.cancel()))
        self.assertEqual(self.server_state(task.id), "TASK_STATE_SUCCEEDED")

    async def test_cancelling_the_local_awaiter_leaves_the_remote_task_running(self):
        task = self.tw.create_task("sleep", seconds=30)
        await self.run_bounded(task.created())
        with self.assertRaises(TimeoutError):
            await asyncio.wait_for(task, 0.2)  # asyncio's, which cancels the awaiter.
        self.assertEqual(self.server_state(task.id), "TASK_STATE_RUNNING")
        await self.run_bounded(task.cancel())


class BadInputTest(ClientTestCase):

    async def refused(self, awaitable):
        with self.assertRaises(TaskwireRpcError) as caught:
            await self.run_bounded(awaitable)
        return caught.exception

    async def test_invalid_args_are_invalid_argument_naming_the_field(self):
        cases = [
            (self.tw.create_task("sleep", seconds=-1), "args.seconds: must not be negative"),
            (self.tw.create_task("sleep"), "args.seconds: required"),
            (self.tw.create_task("sleep", seconds="1"), "args.seconds: must be a number"),
            (self.tw.create_task("sleep", seconds=1, secs=1), "args.secs: unknown field"),
            (self.tw.create_task("", seconds=1), "kind: required"),
        ]
        for task, message in cases:
            with self.subTest(message=message):
                self.assertRpcError(await self.refused(task), Code.INVALID_ARGUMENT, message)

    async def test_one_bad_task_created_with_good_ones_fails_alone(self):
        good = [self.tw.create_task("echo", value=i) for i in range(3)]
        bad = self.tw.create_task("wait_random", max_delay=-1)
        self.assertRpcError(await self.refused(bad), Code.INVALID_ARGUMENT,
                            "args.max_delay: must not be negative")
        self.assertEqual(await self.run_bounded(self.tw.gather(*good)), [0, 1, 2])

    async def test_a_bad_task_option_is_invalid_argument_naming_it(self):
        task = self.tw.create_task("sleep", seconds=1, options=TaskOptions(timeout=-1))
        self.assertRpcError(await self.refused(task), Code.INVALID_ARGUMENT,
                            "timeout: must be positive")

    async def test_an_unknown_id_is_not_found_naming_it(self):
        error = await self.refused(self.tw.task(harness.UNKNOWN_ID))
        self.assertRpcError(error, Code.NOT_FOUND, "id: no task", harness.UNKNOWN_ID)
        error = await self.refused(self.tw.task(harness.UNKNOWN_ID).cancel())
        self.assertRpcError(error, Code.NOT_FOUND, harness.UNKNOWN_ID)

    async def test_a_malformed_id_is_invalid_argument_naming_id(self):
        self.assertRpcError(await self.refused(self.tw.task("not-an-id")),
                            Code.INVALID_ARGUMENT, "id:")

    async def test_gather_of_an_unknown_id_is_not_found_naming_its_index(self):
        known = self.tw.create_task("echo", value=1)
        error = await self.refused(self.tw.gather(known, self.tw.task(harness.UNKNOWN_ID)))
        self.assertRpcError(error, Code.NOT_FOUND, "ids[1]: no task")

    async def test_a_negative_wait_timeout_is_invalid_argument_naming_timeout(self):
        task = self.tw.create_task("echo", value=1)
        self.assertRpcError(await self.refused(self.tw.wait([task], timeout=-1)),
                            Code.INVALID_ARGUMENT, "timeout: must not be negative")

    async def test_an_unreachable_server_is_unavailable(self):
        port = _closed_port()
        async with taskwire.Client(f"127.0.0.1:{port}") as tw:
            error = await self.refused(tw.create_task("echo", value=1))
        self.assertEqual(error.code, Code.UNAVAILABLE, error.message)


def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SeedExampleTest(ClientTestCase):
    """client/python/examples/seed.py as a user runs it: TASKWIRE_SERVER
    names the server; what it prints and how long it takes."""

    async def test_the_seed_example_prints_the_seed_lines_in_about_the_seed_times(self):
        env = dict(os.environ, TASKWIRE_SERVER=self.target)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, SEED_EXAMPLE, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), TEST_LIMIT)
        out = out.decode()
        seen = f"exit {proc.returncode}\nstdout:\n{out}\nstderr:\n{err.decode()[-2000:]}"
        self.assertEqual(proc.returncode, 0, seen)
        blocks = out.split("== ")[1:]
        self.assertEqual(len(blocks), 3, seen)
        lines = [[line for line in b.splitlines()[1:] if line and not line.startswith(
            ("finished", "wait_n", "gather"))] for b in blocks]
        self.assertEqual(lines, [["hello"], ["task2 (1 s)", "task1 (2 s)"], ["hello", "world"]],
                         seen)
        times = [float(re.search(r"finished in ([0-9.]+) s", b).group(1)) for b in blocks]
        for took, low, high in zip(times, (0.9, 1.9, 1.9), (2.5, 2.9, 2.9)):
            self.assertTrue(low <= took < high, f"took {took} s, want [{low}, {high}):\n{seen}")
        delays = [float(d) for d in re.search(r"wait_n: \[([^\]]*)\]", out).group(1).split(",")]
        self.assertEqual(len(delays), 8, seen)
        self.assertEqual(delays, sorted(delays), "as_completed order is completion order")
        self.assertTrue(all(0 <= d <= 0.5 for d in delays), seen)
        self.assertIn("gather: 5 delays", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)  # -k PATTERN runs some tests only.
