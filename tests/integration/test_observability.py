#!/usr/bin/python3
"""Integration tests of taskwired's observability: the Prometheus /metrics
endpoint and trace ids in the JSON logs, against the real binary over a
real gRPC channel and real HTTP.

Run by `bazel test //tests:observability_integration_test`, whose script
generates the Python stubs and sets TASKWIRED and TASKWIRE_PY_STUBS.
Outside Bazel:

    bazel build //server:taskwired
    TASKWIRED=bazel-bin/server/taskwired /usr/bin/python3 \
        tests/integration/test_observability.py [-k PATTERN]

Every wait is bounded (RPC deadlines, polls with deadlines); the metrics are
checked exactly, since each test class has a server of its own.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The stubs, the binary's path and the log and work folders, as the main
# suite has them.
from test_taskwired import (  # noqa: E402
    CANCELLED, FAILED, LOG_DIR, RPC_TIMEOUT, RUNNING, SUCCEEDED, TASKWIRED, WORK_DIR, grpc, pb,
    pb_grpc)
from google.protobuf import struct_pb2  # noqa: E402

START_TIMEOUT = 20.0
TASK_SERVICE = "taskwire.v1.TaskService/"


def args(**fields):
    value = struct_pb2.Value()
    value.struct_value.update(fields)
    return value


def read_port(path, proc, log_path, deadline):
    """The port written to `path`, polling until `deadline`."""
    while True:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        if proc.poll() is not None:
            raise RuntimeError(f"taskwired exited with {proc.returncode}:\n" + tail(log_path))
        if time.monotonic() > deadline:
            raise RuntimeError(f"taskwired wrote no {path} in time:\n" + tail(log_path))
        time.sleep(0.01)


def tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


class Taskwired:
    """One taskwired on 127.0.0.1 port 0, its metrics on another free port."""

    _count = 0

    def __init__(self, *flags, name):
        Taskwired._count += 1
        self.name = f"obs-{Taskwired._count:02d}-{name}"
        self.workdir = tempfile.mkdtemp(prefix=f"{self.name}-", dir=WORK_DIR)
        self.port_file = os.path.join(self.workdir, "port")
        self.metrics_port_file = os.path.join(self.workdir, "metrics-port")
        self.log_path = os.path.join(LOG_DIR, f"{self.name}.log")
        self.flags = ["--listen", "127.0.0.1:0", "--port-file", self.port_file, *flags]
        self.proc = None
        self.channel = None

    def start(self):
        deadline = time.monotonic() + START_TIMEOUT
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([TASKWIRED, *self.flags], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = read_port(self.port_file, self.proc, self.log_path, deadline)
        if "--metrics-listen" in self.flags:
            self.metrics_port = read_port(self.metrics_port_file, self.proc, self.log_path,
                                          deadline)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self.channel).result(timeout=max(0.1, deadline - time.monotonic()))
        self.stub = pb_grpc.TaskServiceStub(self.channel)
        return self

    def stop(self):
        """SIGTERM; the exit code (None if it had to be killed)."""
        if self.channel is not None:
            self.channel.close()
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def get(self, path):
        """(status, content type, body) of GET http://127.0.0.1:<metrics port><path>."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=RPC_TIMEOUT) as response:
                return (response.status, response.headers.get("Content-Type"),
                        response.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """{(name, frozenset(labels.items())): value}, and {name: type}; raises on
    any line that is not HELP, TYPE or a sample."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        if not match:
            raise AssertionError(f"not a sample line: {line!r}")
        name, labels, value = match.groups()
        pairs = frozenset(LABEL.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples, types


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples, self.types = parse_exposition(text)

    def value(self, name, **labels):
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            raise AssertionError(f"no sample {name}{labels} in:\n{self.text}")
        return self.samples[key]


class MetricsTest(unittest.TestCase):
    """Tasks that succeed, fail, time out and are cancelled, then one scrape."""

    @classmethod
    def setUpClass(cls):
        cls.server = Taskwired("--metrics-listen", "127.0.0.1:0", "--metrics-port-file",
                               None, name="metrics")
        cls.server.flags[cls.server.flags.index(None)] = cls.server.metrics_port_file
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"taskwired exited {code}:\n" + tail(cls.server.log_path))

    def scrape(self):
        status, content_type, body = self.server.get("/metrics")
        self.assertEqual(status, 200, body)
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        return Metrics(body)

    def create(self, kind, timeout=None, **fields):
        request = pb.CreateTaskRequest(kind=kind, args=args(**fields))
        if timeout is not None:
            request.timeout.FromMilliseconds(int(timeout * 1000))
        return self.server.stub.CreateTask(request, timeout=RPC_TIMEOUT).id

    def await_done(self, task_id):
        done = self.server.stub.AwaitTask(pb.AwaitTaskRequest(id=task_id), timeout=RPC_TIMEOUT)
        self.assertTrue(done.done)
        return done.task

    def wait_running(self, task_id):
        deadline = time.monotonic() + RPC_TIMEOUT
        while True:
            task = self.server.stub.GetTask(pb.GetTaskRequest(id=task_id), timeout=RPC_TIMEOUT)
            if task.state == RUNNING:
                return
            self.assertLess(time.monotonic(), deadline, f"never RUNNING: {task}")
            time.sleep(0.005)

    def test_counts_gauges_and_histograms_are_exact(self):
        stub = self.server.stub
        echoes = [self.create("echo", value=i) for i in range(2)]
        failing = self.create("fail", message="no")
        timing_out = self.create("sleep", timeout=0.1, seconds=30)
        cancelled = self.create("sleep", seconds=30)
        self.wait_running(cancelled)
        stub.CancelTask(pb.CancelTaskRequest(id=cancelled), timeout=RPC_TIMEOUT)
        ran = stub.RunTask(pb.RunTaskRequest(task=pb.CreateTaskRequest(
            kind="echo", args=args(value="x"))), timeout=RPC_TIMEOUT)
        self.assertEqual(ran.task.state, SUCCEEDED)
        with self.assertRaises(grpc.RpcError) as refused:
            stub.CreateTask(pb.CreateTaskRequest(kind="sleep", args=args(seconds=-1)),
                            timeout=RPC_TIMEOUT)
        self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        states = {task_id: self.await_done(task_id).state
                  for task_id in [*echoes, failing, timing_out, cancelled]}
        self.assertEqual(list(states.values()),
                         [SUCCEEDED, SUCCEEDED, FAILED, FAILED, CANCELLED], states)
        # A task of a kind no worker runs waits in the dispatcher's queue.
        orphan = self.create("no_worker_runs_this")

        m = self.scrape()
        for name, kind in [("taskwire_tasks_created_total", "counter"),
                           ("taskwire_tasks_finished_total", "counter"),
                           ("taskwire_tasks_pending", "gauge"),
                           ("taskwire_tasks_running", "gauge"),
                           ("taskwire_queue_depth", "gauge"),
                           ("taskwire_task_duration_seconds", "histogram"),
                           ("taskwire_task_queue_wait_seconds", "histogram"),
                           ("taskwire_rpc_duration_seconds", "histogram"),
                           ("taskwire_workers_connected", "gauge"),
                           ("process_resident_memory_bytes", "gauge"),
                           ("process_start_time_seconds", "gauge")]:
            self.assertEqual(m.types.get(name), kind, name)
        created = "taskwire_tasks_created_total"
        self.assertEqual(m.value(created, kind="echo"), 3)
        self.assertEqual(m.value(created, kind="fail"), 1)
        self.assertEqual(m.value(created, kind="sleep"), 2)
        self.assertEqual(m.value(created, kind="no_worker_runs_this"), 1)
        finished = "taskwire_tasks_finished_total"
        expected = {("echo", "succeeded"): 3, ("fail", "failed"): 1, ("sleep", "timed_out"): 1,
                    ("sleep", "cancelled"): 1, ("sleep", "succeeded"): 0, ("sleep", "failed"): 0}
        for (kind, outcome), count in expected.items():
            self.assertEqual(m.value(finished, kind=kind, outcome=outcome), count, (kind, outcome))
        self.assertEqual(m.value("taskwire_tasks_pending"), 1)
        self.assertEqual(m.value("taskwire_tasks_running"), 0)
        self.assertEqual(m.value("taskwire_queue_depth", kind="no_worker_runs_this"), 1)
        self.assertEqual(m.value("taskwire_workers_connected"), 0)
        # Every task that started is timed: the two sleeps, the three echoes, the fail.
        duration = "taskwire_task_duration_seconds"
        self.assertEqual(m.value(duration + "_count", kind="sleep"), 2)
        self.assertEqual(m.value(duration + "_count", kind="echo"), 3)
        self.assertEqual(m.value(duration + "_bucket", kind="echo", le="+Inf"), 3)
        # The timed-out sleep ran until its deadline, 0.1 s after its
        # creation (so a little less from its start); neither ran 30 s.
        self.assertGreater(m.value(duration + "_sum", kind="sleep"), 0.05)
        self.assertLess(m.value(duration + "_sum", kind="sleep"), 30)
        self.assertEqual(m.value("taskwire_task_queue_wait_seconds_count", kind="echo"), 3)
        rpc = "taskwire_rpc_duration_seconds_count"
        self.assertEqual(m.value(rpc, method=TASK_SERVICE + "CreateTask", code="OK"), 6)
        self.assertEqual(m.value(rpc, method=TASK_SERVICE + "CreateTask", code="INVALID_ARGUMENT"), 1)
        self.assertEqual(m.value(rpc, method=TASK_SERVICE + "RunTask", code="OK"), 1)
        self.assertEqual(m.value(rpc, method=TASK_SERVICE + "CancelTask", code="OK"), 1)
        self.assertEqual(m.value(rpc, method=TASK_SERVICE + "AwaitTask", code="OK"), 5)
        self.assertGreater(m.value("process_resident_memory_bytes"), 1 << 20)
        started = m.value("process_start_time_seconds")
        self.assertLess(abs(time.time() - started), 600, started)
        # Buckets are cumulative and end at the count.
        for (name, labels), count in m.samples.items():
            if name.endswith("_count"):
                base = name[:-len("_count")]
                self.assertEqual(m.samples[(base + "_bucket", labels | {("le", "+Inf")})], count)

        # Cancelling the waiting task empties the queue and the gauge.
        stub.CancelTask(pb.CancelTaskRequest(id=orphan), timeout=RPC_TIMEOUT)
        m = self.scrape()
        self.assertEqual(m.value("taskwire_tasks_pending"), 0)
        self.assertEqual(m.value("taskwire_queue_depth", kind="no_worker_runs_this"), 0)
        self.assertEqual(m.value(finished, kind="no_worker_runs_this", outcome="cancelled"), 1)
        self.assertEqual(m.value(rpc, method=TASK_SERVICE + "CancelTask", code="OK"), 2)

    def test_other_paths_are_not_found(self):
        status, _, _ = self.server.get("/")
        self.assertEqual(status, 404)


class MetricsOffTest(unittest.TestCase):
    def test_without_the_flag_no_metrics_port_is_opened_or_reported(self):
        server = Taskwired("--metrics-port-file", "unused", name="metrics-off")
        unused = os.path.join(server.workdir, "metrics-port")
        server.flags[server.flags.index("unused")] = unused
        server.start()
        try:
            self.assertFalse(os.path.exists(unused))
            with open(server.log_path) as f:
                self.assertNotIn("metrics on", f.read())
        finally:
            self.assertEqual(server.stop(), 0)

    def test_a_bad_metrics_address_is_refused_naming_the_flag(self):
        proc = subprocess.run([TASKWIRED, "--listen", "127.0.0.1:0",
                               "--metrics-listen", "127.0.0.1:http"],
                              capture_output=True, text=True, timeout=RPC_TIMEOUT)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--metrics-listen: port must be 0 to 65535", proc.stderr)


class TraceLogTest(unittest.TestCase):
    """A traceparent's trace id reaches the JSON log lines its request causes."""

    TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
    CANCEL_TRACE = "0af7651916cd43dd8448eb211c80319c"

    @classmethod
    def setUpClass(cls):
        cls.server = Taskwired("--log-format", "json", "--log-level", "debug", name="trace")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"taskwired exited {code}:\n" + tail(cls.server.log_path))

    @staticmethod
    def traceparent(trace_id):
        return (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),)

    def log_lines(self):
        with open(self.server.log_path) as f:
            return [json.loads(line) for line in f if line.startswith("{")]

    def wait_for_line(self, predicate, what):
        """The first JSON line for which predicate holds, polling the log."""
        deadline = time.monotonic() + RPC_TIMEOUT
        while True:
            lines = self.log_lines()
            for line in lines:
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line {what} in:\n"
                                     + "\n".join(json.dumps(x) for x in lines[-30:]))
            time.sleep(0.01)

    def test_task_lines_carry_the_task_id_and_the_creating_requests_trace_id(self):
        stub = self.server.stub
        task = stub.CreateTask(pb.CreateTaskRequest(kind="fail", args=args(message="boom")),
                               timeout=RPC_TIMEOUT, metadata=self.traceparent(self.TRACE))
        done = stub.AwaitTask(pb.AwaitTaskRequest(id=task.id), timeout=RPC_TIMEOUT)
        self.assertEqual(done.task.state, FAILED)
        created = self.wait_for_line(
            lambda x: x.get("task_id") == task.id and "created" in x["message"], "of creation")
        self.assertEqual(created["trace_id"], self.TRACE, created)
        self.assertEqual(created["level"], "debug")
        failed = self.wait_for_line(
            lambda x: x.get("task_id") == task.id and "failed" in x["message"], "of failure")
        self.assertEqual(failed["trace_id"], self.TRACE, failed)
        self.assertIn("boom", failed["message"])

    def test_a_cancellation_line_carries_the_cancelling_requests_trace_id(self):
        stub = self.server.stub
        task = stub.CreateTask(pb.CreateTaskRequest(kind="sleep", args=args(seconds=30)),
                               timeout=RPC_TIMEOUT, metadata=self.traceparent(self.TRACE))
        stub.CancelTask(pb.CancelTaskRequest(id=task.id), timeout=RPC_TIMEOUT,
                        metadata=self.traceparent(self.CANCEL_TRACE))
        asked = self.wait_for_line(
            lambda x: x.get("task_id") == task.id and "cancellation requested" in x["message"],
            "of the cancellation request")
        self.assertEqual(asked["trace_id"], self.CANCEL_TRACE, asked)
        cancelled = self.wait_for_line(
            lambda x: x.get("task_id") == task.id and "cancelled" in x["message"]
            and "requested" not in x["message"], "of the cancellation")
        self.assertEqual(cancelled["trace_id"], self.TRACE, cancelled)

    def test_a_failed_calls_line_carries_its_trace_id(self):
        with self.assertRaises(grpc.RpcError) as refused:
            self.server.stub.CreateTask(pb.CreateTaskRequest(kind="sleep", args=args(seconds=-1)),
                                        timeout=RPC_TIMEOUT,
                                        metadata=self.traceparent(self.CANCEL_TRACE))
        self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        line = self.wait_for_line(
            lambda x: "INVALID_ARGUMENT" in x["message"] and "seconds" in x["message"],
            "of the refused call")
        self.assertEqual(line["trace_id"], self.CANCEL_TRACE, line)
        self.assertIn(TASK_SERVICE + "CreateTask", line["message"])

    def test_malformed_or_absent_traceparents_give_no_trace_id(self):
        stub = self.server.stub
        for metadata in [(("traceparent", "00-" + self.TRACE.upper() + "-00f067aa0ba902b7-01"),),
                         (("traceparent", "garbage"),), ()]:
            task = stub.CreateTask(pb.CreateTaskRequest(kind="echo", args=args(value=1)),
                                   timeout=RPC_TIMEOUT, metadata=metadata)
            created = self.wait_for_line(
                lambda x: x.get("task_id") == task.id and "created" in x["message"],
                f"of creation with {metadata}")
            self.assertNotIn("trace_id", created)


if __name__ == "__main__":
    unittest.main(verbosity=2)
