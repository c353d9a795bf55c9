#!/usr/bin/python3
"""Integration tests: the real taskwired binary over a real gRPC channel.

Run by `bazel test //tests:taskwired_integration_test`, whose script
generates the Python stubs and sets TASKWIRED (the binary) and
TASKWIRE_PY_STUBS (the stubs' folder). Outside Bazel:

    bazel build //server:taskwired
    TASKWIRED=bazel-bin/server/taskwired /usr/bin/python3 \
        tests/integration/test_taskwired.py [-k PATTERN]

(the stubs are then generated into a temporary folder).

Every wait is bounded: servers are polled with deadlines, RPCs carry gRPC
deadlines, and tests rely on the server's own semantics (AwaitTask, Gather,
Wait) rather than sleeping. Each test class gets its own server process,
started on port 0 and stopped with SIGTERM, which must exit 0 promptly.
"""

import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _load_stubs():
    """Imports the generated stubs, generating them first outside Bazel."""
    stubs = os.environ.get("TASKWIRE_PY_STUBS")
    if not stubs:
        from grpc_tools import protoc

        stubs = tempfile.mkdtemp(prefix="taskwire-stubs-")
        rc = protoc.main([
            "protoc", f"-I{os.path.join(REPO, 'proto')}", "-I/usr/include",
            f"--python_out={stubs}", f"--grpc_python_out={stubs}",
            "taskwire/v1/tasks.proto",
        ])
        if rc != 0:
            sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, stubs)


_load_stubs()

import grpc  # noqa: E402
from google.protobuf import duration_pb2, struct_pb2  # noqa: E402
from taskwire.v1 import tasks_pb2 as pb  # noqa: E402
from taskwire.v1 import tasks_pb2_grpc as pb_grpc  # noqa: E402

TASKWIRED = os.environ.get("TASKWIRED") or os.path.join(REPO, "bazel-bin/server/taskwired")
LOG_DIR = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or tempfile.mkdtemp(prefix="taskwired-logs-")
# Port files go here (Bazel cleans TEST_TMPDIR; outside it, a folder per run).
WORK_DIR = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="taskwired-work-")

# The deadline every RPC gets unless a test says otherwise: long enough for a
# noisy 2-core machine, short enough that a hang fails the test, not Bazel.
RPC_TIMEOUT = 20.0
# How long a SIGTERMed server may take beyond its drain grace.
STOP_SLACK = 3.0
# The drain grace of the servers shared by a test class.
SHARED_DRAIN_GRACE = 1.0

Code = grpc.StatusCode
S = pb.TaskState
PENDING, RUNNING = S.Value("TASK_STATE_PENDING"), S.Value("TASK_STATE_RUNNING")
SUCCEEDED, FAILED = S.Value("TASK_STATE_SUCCEEDED"), S.Value("TASK_STATE_FAILED")
CANCELLED, UNSPECIFIED = S.Value("TASK_STATE_CANCELLED"), S.Value("TASK_STATE_UNSPECIFIED")
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED)
FIRST_COMPLETED = pb.ReturnWhen.Value("RETURN_WHEN_FIRST_COMPLETED")
FIRST_EXCEPTION = pb.ReturnWhen.Value("RETURN_WHEN_FIRST_EXCEPTION")
ALL_COMPLETED = pb.ReturnWhen.Value("RETURN_WHEN_ALL_COMPLETED")

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
# A well-formed id that no server has handed out (the ULID spec's example).
UNKNOWN_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


# --------------------------------------------------------------------------
# Values, durations and requests.


def value(obj):
    """A google.protobuf.Value for a JSON-like Python object (NaN allowed)."""
    v = struct_pb2.Value()
    if obj is None:
        v.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        v.bool_value = obj
    elif isinstance(obj, (int, float)):
        v.number_value = obj
    elif isinstance(obj, str):
        v.string_value = obj
    elif isinstance(obj, dict):
        v.struct_value.SetInParent()
        for key, item in obj.items():
            v.struct_value.fields[key].CopyFrom(value(item))
    elif isinstance(obj, (list, tuple)):
        v.list_value.SetInParent()
        for item in obj:
            v.list_value.values.add().CopyFrom(value(item))
    else:
        raise TypeError(f"not JSON-like: {obj!r}")
    return v


def from_value(v):
    """The Python object a google.protobuf.Value holds (numbers as floats)."""
    kind = v.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "struct_value":
        return {key: from_value(item) for key, item in v.struct_value.fields.items()}
    if kind == "list_value":
        return [from_value(item) for item in v.list_value.values]
    return getattr(v, kind)


def duration(seconds):
    """A google.protobuf.Duration, negative ones in their canonical form."""
    nanos = round(seconds * 1e9)
    whole = int(nanos / 1e9)  # Truncated toward zero: nanos share the sign.
    return duration_pb2.Duration(seconds=whole, nanos=nanos - whole * 1_000_000_000)


def task_request(kind, args=None, **fields):
    """A CreateTaskRequest; `args` is a Python dict (or any JSON-like value)."""
    request = pb.CreateTaskRequest(kind=kind, **fields)
    if args is not None:
        request.args.CopyFrom(value(args))
    return request


def sleep_task(seconds, **fields):
    return task_request("sleep", {"seconds": seconds}, **fields)


def echo_task(obj, **fields):
    return task_request("echo", {"value": obj}, **fields)


def fail_task(message, type=None, **fields):
    args = {"message": message}
    if type is not None:
        args["type"] = type
    return task_request("fail", args, **fields)


def wait_random_task(max_delay, **fields):
    return task_request("wait_random", {"max_delay": max_delay}, **fields)


def state_name(state):
    return S.Name(state)


def ids(tasks):
    return [t.id for t in tasks]


# --------------------------------------------------------------------------
# Raw protobuf decoding, for the health and reflection services (Debian has
# no Python stubs for them): enough of the wire format to read their replies.


def decode_fields(data):
    """[(field number, value)] of a serialized message: ints for varints,
    bytes for length-delimited fields."""
    fields, i = [], 0

    def varint():
        nonlocal i
        shift = result = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while i < len(data):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            fields.append((number, varint()))
        elif wire_type == 2:
            length = varint()
            fields.append((number, data[i:i + length]))
            i += length
        elif wire_type == 1:
            fields.append((number, data[i:i + 8]))
            i += 8
        elif wire_type == 5:
            fields.append((number, data[i:i + 4]))
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return fields


SERVING, NOT_SERVING = 1, 2  # grpc.health.v1.HealthCheckResponse.ServingStatus


def health_status(response_bytes):
    """HealthCheckResponse.status (field 1; absent means UNKNOWN = 0)."""
    return dict(decode_fields(response_bytes)).get(1, 0)


def wait_until_refused(port, timeout):
    """Polls until a TCP connect to the port is refused; False past timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def health_check(channel, timeout=RPC_TIMEOUT):
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    return health_status(check(b"", timeout=timeout))  # Empty HealthCheckRequest: service "".


def health_watch(channel, timeout=RPC_TIMEOUT):
    return channel.unary_stream("/grpc.health.v1.Health/Watch")(b"", timeout=timeout)


def reflection_service_names(channel, timeout=RPC_TIMEOUT):
    """The services ServerReflectionInfo lists (grpc.reflection.v1alpha)."""
    call = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    # ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
    responses = call(iter([b"\x3a\x00"]), timeout=timeout)
    first = next(responses)
    responses.cancel()
    # ServerReflectionResponse.list_services_response (6) -> ListServiceResponse.service (1)
    # -> ServiceResponse.name (1).
    names = []
    for number, listing in decode_fields(first):
        if number == 6:
            for inner, service in decode_fields(listing):
                if inner == 1:
                    names.append(dict(decode_fields(service))[1].decode())
    return names


# --------------------------------------------------------------------------
# The server process.


class Taskwired:
    """One taskwired process on 127.0.0.1, port 0, for a test or a class."""

    _count = 0

    def __init__(self, *flags, env=None, name="taskwired", listen=True):
        self.flags = (["--listen", "127.0.0.1:0"] if listen else []) + list(flags)
        self.env = dict(os.environ, **(env or {}))
        Taskwired._count += 1
        self.name = f"{Taskwired._count:02d}-{name}"
        self.workdir = tempfile.mkdtemp(prefix=f"{self.name}-", dir=WORK_DIR)
        self.port_file = os.path.join(self.workdir, "port")
        self.log_path = os.path.join(LOG_DIR, f"{self.name}.log")
        self.proc = None
        self.channel = None
        self.stub = None
        self.port = None

    def start(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [TASKWIRED, "--port-file", self.port_file, *self.flags],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        while self.port is None:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    break
            if self.proc.poll() is not None:
                raise RuntimeError(f"taskwired exited with {self.proc.returncode} before serving:\n"
                                   + self.log_tail())
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"taskwired wrote no port file within {timeout} s:\n"
                                   + self.log_tail())
            time.sleep(0.01)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self.channel).result(timeout=max(0.1, deadline - time.monotonic()))
        self.stub = pb_grpc.TaskServiceStub(self.channel)
        return self

    def terminate(self):
        """Sends SIGTERM; returns the time it was sent (time.monotonic)."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        return sent

    def wait_exit(self, timeout):
        """The exit code, or None (after killing the process) past timeout."""
        try:
            return self.proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def stop(self, grace):
        """SIGTERM, then (exit code, seconds to exit); kills it past grace + slack."""
        if self.channel is not None:
            self.channel.close()
        sent = self.terminate()
        code = self.wait_exit(grace + STOP_SLACK)
        return code, time.monotonic() - sent

    def kill(self):
        if self.channel is not None:
            self.channel.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"


class Client:
    """The TaskService stub with a deadline on every call unless given."""

    def __init__(self, stub):
        self.stub = stub

    def __getattr__(self, name):
        method = getattr(self.stub, name)

        def call(request, timeout=RPC_TIMEOUT, **kwargs):
            return method(request, timeout=timeout, **kwargs)

        return call


class EventStream:
    """A server stream read on a thread into a queue, for bounded reads."""

    ENDED = object()

    def __init__(self, call):
        self.call = call
        self.queue = queue.Queue()
        self.error = None
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        try:
            for message in self.call:
                self.queue.put(message)
        except grpc.RpcError as e:
            self.error = e
        self.queue.put(self.ENDED)

    def next(self, timeout):
        """The next message, ENDED, or queue.Empty after timeout seconds."""
        return self.queue.get(timeout=timeout)

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=10)


# --------------------------------------------------------------------------
# Test cases.


class TaskwireTestCase(unittest.TestCase):
    """Assertions for tasks, RPC errors and timings."""

    def assertRpcError(self, code, *fragments):
        """Context manager: the block raises grpc.RpcError with this code and
        a message containing every fragment. Yields a holder of the error."""
        return _RpcErrorExpectation(self, code, fragments)

    def assertState(self, task, state=SUCCEEDED):
        """The task is in this state (compared by name, for readable failures)."""
        self.assertEqual(state_name(task.state), state_name(state), task)

    def assertTakes(self, seconds, low, high):
        self.assertGreaterEqual(seconds, low, f"took {seconds:.3f} s, want >= {low}")
        self.assertLess(seconds, high, f"took {seconds:.3f} s, want < {high}")


class ServerTestCase(TaskwireTestCase):
    """Starts a taskwired for the class (flags in server_flags) and checks
    that SIGTERM stops it with exit code 0 within its grace plus slack."""

    server_flags = ()
    server_env = None
    drain_grace = SHARED_DRAIN_GRACE

    @classmethod
    def setUpClass(cls):
        cls.server = Taskwired(*cls.server_flags, "--drain-grace", str(cls.drain_grace),
                               env=cls.server_env, name=cls.__name__)
        cls.addClassCleanup(cls.server.kill)
        cls.server.start()
        cls.client = Client(cls.server.stub)

    @classmethod
    def tearDownClass(cls):
        code, took = cls.server.stop(cls.drain_grace)
        if code != 0 or took > cls.drain_grace + STOP_SLACK:
            raise AssertionError(
                f"{cls.__name__}: taskwired exited with {code} after {took:.2f} s "
                f"(want 0 within {cls.drain_grace + STOP_SLACK} s):\n{cls.server.log_tail()}")

    def setUp(self):
        # A label unique to this test, for ListTasks and WatchTasks filters on
        # a server that the class's other tests share.
        self.tag = {"test": f"{self._testMethodName[:200]}-{uuid.uuid4().hex[:8]}"}

    # Helpers ---------------------------------------------------------------

    def create(self, request, **kwargs):
        return self.client.CreateTask(request, **kwargs)

    def create_many(self, *requests):
        return list(self.client.CreateTasks(pb.CreateTasksRequest(tasks=requests)).tasks)

    def background(self, seconds=60, **fields):
        """A long sleep task, cancelled when the test ends."""
        task = self.create(sleep_task(seconds, **fields))
        self.addCleanup(self.cancel_quietly, task.id)
        return task

    def cancel_quietly(self, task_id):
        try:
            self.client.CancelTask(pb.CancelTaskRequest(id=task_id))
        except grpc.RpcError:
            pass

    def get(self, task_id):
        return self.client.GetTask(pb.GetTaskRequest(id=task_id))

    def await_task(self, task_id, wait_timeout=None, **kwargs):
        request = pb.AwaitTaskRequest(id=task_id)
        if wait_timeout is not None:
            request.wait_timeout.CopyFrom(duration(wait_timeout))
        return self.client.AwaitTask(request, **kwargs)

    def run_task(self, task, wait_timeout=None):
        request = pb.RunTaskRequest(task=task)
        if wait_timeout is not None:
            request.wait_timeout.CopyFrom(duration(wait_timeout))
        return self.client.RunTask(request)

    def list_tasks(self, **fields):
        return self.client.ListTasks(pb.ListTasksRequest(**fields))

    def listed_ids(self, **fields):
        """Ids of every task ListTasks returns, following page tokens."""
        found, token = [], ""
        for _ in range(10_000):
            page = self.list_tasks(page_token=token, **fields)
            found += ids(page.tasks)
            token = page.next_page_token
            if not token:
                return found
        self.fail("ListTasks never stopped handing out page tokens")


class _RpcErrorExpectation:
    def __init__(self, test, code, fragments):
        self.test, self.code, self.fragments = test, code, fragments
        self.error = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.test.fail(f"expected {self.code.name}, but the call succeeded")
        if not issubclass(exc_type, grpc.RpcError):
            return False
        self.error = exc
        self.test.assertEqual(exc.code(), self.code, f"details: {exc.details()}")
        for fragment in self.fragments:
            self.test.assertIn(fragment, exc.details())
        return True


# ----------------------------------------------------------------------------
# Service plumbing.


class ServerProcessTest(TaskwireTestCase):
    """The binary itself: flags, environment, logs, exit codes."""

    def start(self, *flags, env=None, listen=True):
        server = Taskwired(*flags, env=env, name=self._testMethodName, listen=listen)
        self.addCleanup(server.kill)
        return server.start()

    def test_refuse_unknown_kinds_makes_an_unknown_kind_invalid_argument_listing_the_known(self):
        server = self.start("--refuse-unknown-kinds")
        with self.assertRpcError(Code.INVALID_ARGUMENT, "kind: unknown kind 'slep'",
                                 "known kinds: echo, fail, sleep, wait_random"):
            server.stub.CreateTask(task_request("slep", {"seconds": 1}))

    def log_lines(self, server):
        with open(server.log_path, errors="replace") as f:
            return [line for line in f.read().splitlines() if line.strip()]

    def test_writes_the_bound_port_to_the_port_file_and_exits_0_on_sigterm(self):
        server = self.start("--drain-grace", "1")
        self.assertGreater(server.port, 0)
        self.assertEqual(health_check(server.channel), SERVING)
        code, took = server.stop(grace=1)
        self.assertEqual(code, 0, server.log_tail())
        self.assertLess(took, 1 + STOP_SLACK)

    def test_sigint_also_stops_the_server_with_exit_code_0(self):
        server = self.start("--drain-grace", "1")
        server.channel.close()
        server.proc.send_signal(signal.SIGINT)
        self.assertEqual(server.wait_exit(1 + STOP_SLACK), 0, server.log_tail())

    def test_limits_can_be_set_through_environment_variables(self):
        server = self.start(env={"TASKWIRE_MAX_IDS_PER_REQUEST": "1"})
        client = Client(server.stub)
        a = client.CreateTask(echo_task(1))
        with self.assertRaises(grpc.RpcError) as raised:
            client.Gather(pb.GatherRequest(ids=[a.id, a.id]))
        self.assertEqual(raised.exception.code(), Code.RESOURCE_EXHAUSTED)
        self.assertIn("ids", raised.exception.details())
        self.assertEqual(server.stop(grace=10)[0], 0)

    def test_the_listen_address_can_come_from_taskwire_listen(self):
        server = self.start(env={"TASKWIRE_LISTEN": "127.0.0.1:0"}, listen=False)
        self.assertEqual(health_check(server.channel), SERVING)
        self.assertEqual(server.stop(grace=10)[0], 0)
        self.assertTrue(any("listening on 127.0.0.1:0" in line for line in self.log_lines(server)))

    def test_log_level_warn_hides_info_lines(self):
        server = self.start("--log-level", "warn")
        Client(server.stub).RunTask(pb.RunTaskRequest(task=echo_task(1)))
        self.assertEqual(server.stop(grace=10)[0], 0)
        self.assertEqual([line for line in self.log_lines(server) if "info" in line], [])

    def test_json_log_format_writes_one_json_object_per_line(self):
        server = self.start("--log-format", "json")
        self.assertEqual(server.stop(grace=10)[0], 0)
        lines = self.log_lines(server)
        self.assertTrue(lines, "no log lines")
        records = [json.loads(line) for line in lines]
        for record in records:
            self.assertEqual({"ts_ms", "level", "message"}, set(record))
        self.assertTrue(any("listening" in r["message"] for r in records), records)

    def test_invalid_flag_values_make_it_exit_nonzero_at_once(self):
        for flags in (["--log-format", "xml"], ["--retention", "-1"],
                      ["--max-pending-tasks", "0"], ["--no-such-flag"]):
            with self.subTest(flags=flags):
                done = subprocess.run([TASKWIRED, "--listen", "127.0.0.1:0", *flags],
                                      stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
                self.assertNotEqual(done.returncode, 0)


class HealthAndReflectionTest(ServerTestCase):

    def test_health_check_reports_serving(self):
        self.assertEqual(health_check(self.server.channel), SERVING)

    def test_reflection_lists_the_task_service(self):
        names = reflection_service_names(self.server.channel)
        self.assertIn("taskwire.v1.TaskService", names)
        self.assertIn("grpc.health.v1.Health", names)


# ----------------------------------------------------------------------------
# CreateTask: the built-in kinds.


class BuiltinKindsTest(ServerTestCase):

    def test_sleep_succeeds_with_a_null_result_after_its_seconds(self):
        started = time.monotonic()
        done = self.run_task(sleep_task(0.3))
        took = time.monotonic() - started
        self.assertTrue(done.done)
        self.assertState(done.task, SUCCEEDED)
        self.assertEqual(done.task.result.WhichOneof("kind"), "null_value")
        self.assertTakes(took, 0.28, 5)
        ran = (done.task.finish_time.ToNanoseconds() - done.task.start_time.ToNanoseconds()) / 1e9
        self.assertGreaterEqual(ran, 0.29)

    def test_wait_random_succeeds_with_its_delay_between_zero_and_max_delay(self):
        tasks = self.create_many(*[wait_random_task(0.2) for _ in range(5)])
        gathered = self.client.Gather(pb.GatherRequest(ids=ids(tasks)))
        self.assertTrue(gathered.done)
        for task in gathered.tasks:
            self.assertState(task, SUCCEEDED)
            self.assertEqual(task.result.WhichOneof("kind"), "number_value")
            self.assertGreaterEqual(task.result.number_value, 0.0)
            self.assertLessEqual(task.result.number_value, 0.2)

    def test_wait_random_with_max_delay_zero_answers_zero(self):
        done = self.run_task(wait_random_task(0))
        self.assertState(done.task, SUCCEEDED)
        self.assertEqual(done.task.result.number_value, 0.0)

    def test_echo_round_trips_arbitrary_json(self):
        payload = {
            "string": "héllo, \"wörld\"\n\u2603",
            "numbers": [0, -1, 1.5, 1e300, -2.5e-300, 9007199254740991],
            "booleans": [True, False],
            "null": None,
            "nested": {"list": [[], {}, [{"deep": [None]}]], "empty": ""},
        }
        done = self.run_task(echo_task(payload))
        self.assertState(done.task, SUCCEEDED)
        self.assertEqual(from_value(done.task.result), payload)
        self.assertEqual(from_value(done.task.args), {"value": payload})

    def test_echo_round_trips_scalars(self):
        for obj in ("text", 42, True, None, []):
            with self.subTest(value=obj):
                done = self.run_task(echo_task(obj))
                self.assertState(done.task, SUCCEEDED)
                self.assertEqual(from_value(done.task.result), obj)

    def test_fail_fails_the_task_with_its_type_and_message_and_the_rpc_succeeds(self):
        done = self.run_task(fail_task("disk on fire", type="IOError"))
        self.assertTrue(done.done)
        self.assertState(done.task, FAILED)
        self.assertEqual(done.task.error.type, "IOError")
        self.assertEqual(done.task.error.message, "disk on fire")
        self.assertFalse(done.task.HasField("result"))

    def test_fail_without_a_type_fails_with_type_task_failure(self):
        done = self.run_task(fail_task("nope"))
        self.assertState(done.task, FAILED)
        self.assertEqual(done.task.error.type, "TaskFailure")
        self.assertEqual(done.task.error.message, "nope")


class CreateTaskTest(ServerTestCase):

    def test_a_created_task_echoes_its_request_and_has_a_create_time(self):
        before = time.time()
        task = self.background(60, name="nightly", labels={"team": "a", **self.tag},
                               timeout=duration(120))
        self.assertIn(task.state, (PENDING, RUNNING))
        self.assertEqual(task.kind, "sleep")
        self.assertEqual(from_value(task.args), {"seconds": 60})
        self.assertEqual(task.name, "nightly")
        self.assertEqual(dict(task.labels), {"team": "a", **self.tag})
        self.assertEqual(task.timeout.ToNanoseconds(), 120 * 10**9)
        self.assertFalse(task.HasField("finish_time"))
        self.assertGreater(task.create_time.ToNanoseconds() / 1e9, before - 5)
        self.assertLess(task.create_time.ToNanoseconds() / 1e9, time.time() + 5)

    def test_a_running_task_has_attempt_1_and_a_start_time(self):
        task = self.background(60)
        running = self.await_task(task.id, wait_timeout=0.1).task
        self.assertState(running, RUNNING)
        self.assertEqual(running.attempt, 1)
        self.assertTrue(running.HasField("start_time"))
        self.assertGreaterEqual(running.start_time.ToNanoseconds(), running.create_time.ToNanoseconds())

    def test_task_ids_are_26_character_crockford_ulids_sorted_in_creation_order(self):
        made = [self.create(echo_task(i)).id for i in range(5)]
        made += ids(self.create_many(*[echo_task(i) for i in range(5)]))
        for task_id in made:
            self.assertEqual(len(task_id), 26, task_id)
            self.assertTrue(set(task_id) <= CROCKFORD, task_id)
        self.assertEqual(made, sorted(made))
        self.assertEqual(len(set(made)), len(made))

    def test_ids_are_accepted_in_lower_case_as_crockford_base32_allows(self):
        task = self.create(echo_task("x"))
        self.assertEqual(self.get(task.id.lower()).id, task.id)

    def test_a_kind_no_worker_runs_is_accepted_and_waits_pending_for_one(self):
        task = self.create(task_request("slep", {"seconds": 1}))
        self.assertEqual(task.state, PENDING)
        self.assertEqual(self.client.CancelTask(pb.CancelTaskRequest(id=task.id)).state, CANCELLED)

    def test_missing_kind_is_invalid_argument_naming_kind(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "kind: required", "known kinds"):
            self.create(task_request("", {"seconds": 1}))

    def test_missing_args_is_invalid_argument_naming_args(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args: must be an object with seconds"):
            self.create(task_request("sleep"))

    def test_args_that_are_not_an_object_are_invalid_argument_naming_args(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args: must be an object"):
            self.create(task_request("sleep", [1]))

    def test_missing_required_arg_is_invalid_argument_naming_it(self):
        cases = [("sleep", "args.seconds"), ("wait_random", "args.max_delay"),
                 ("echo", "args.value"), ("fail", "args.message")]
        for kind, field in cases:
            with self.subTest(kind=kind), \
                    self.assertRpcError(Code.INVALID_ARGUMENT, f"{field}: required"):
                self.create(task_request(kind, {}))

    def test_wrong_typed_args_are_invalid_argument_naming_the_field(self):
        cases = [
            (task_request("sleep", {"seconds": "1"}), "args.seconds: must be a number"),
            (task_request("sleep", {"seconds": None}), "args.seconds: must be a number"),
            (task_request("wait_random", {"max_delay": True}), "args.max_delay: must be a number"),
            (task_request("fail", {"message": 7}), "args.message: must be a string"),
            (task_request("fail", {"message": "m", "type": ["x"]}), "args.type: must be a string"),
        ]
        for request, message in cases:
            with self.subTest(message=message), self.assertRpcError(Code.INVALID_ARGUMENT, message):
                self.create(request)

    def test_negative_seconds_are_invalid_argument(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args.seconds: must not be negative"):
            self.create(sleep_task(-1))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args.max_delay: must not be negative"):
            self.create(wait_random_task(-0.5))

    def test_nan_and_infinite_seconds_are_invalid_argument(self):
        for bad in (math.nan, math.inf, -math.inf):
            with self.subTest(seconds=bad), \
                    self.assertRpcError(Code.INVALID_ARGUMENT, "args.seconds: must be finite"):
                self.create(sleep_task(bad))

    def test_seconds_over_one_year_are_invalid_argument(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args.seconds: must be at most 31536000"):
            self.create(sleep_task(31536000 + 1))

    def test_unknown_args_field_is_invalid_argument_naming_it_and_what_the_kind_takes(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args.secs: unknown field",
                                 "kind 'sleep' takes seconds"):
            self.create(task_request("sleep", {"seconds": 1, "secs": 1}))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args.code: unknown field",
                                 "(optional: type)"):
            self.create(task_request("fail", {"message": "m", "code": 1}))

    def test_name_and_idempotency_key_over_256_bytes_are_invalid_argument(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "name: must be at most 256 bytes"):
            self.create(echo_task(1, name="n" * 257))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "idempotency_key: must be at most 256"):
            self.create(echo_task(1, idempotency_key="k" * 257))
        self.create(echo_task(1, name="n" * 256))  # The limit itself is fine.

    def test_bad_labels_are_invalid_argument_naming_labels(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "labels: at most 64 labels, got 65"):
            self.create(echo_task(1, labels={f"k{i}": "v" for i in range(65)}))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "labels: keys must not be empty"):
            self.create(echo_task(1, labels={"": "v"}))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "labels[k]: must be at most 256 bytes"):
            self.create(echo_task(1, labels={"k": "v" * 257}))

    def test_zero_or_negative_timeout_is_invalid_argument_naming_timeout(self):
        for seconds in (0, -1, -0.5):
            with self.subTest(timeout=seconds), \
                    self.assertRpcError(Code.INVALID_ARGUMENT, "timeout: must be positive"):
                self.create(sleep_task(1, timeout=duration(seconds)))

    def test_malformed_or_huge_timeout_is_invalid_argument_naming_timeout(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "timeout: malformed duration"):
            self.create(sleep_task(1, timeout=duration_pb2.Duration(seconds=1, nanos=-1)))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "timeout: must be at most one year"):
            self.create(sleep_task(1, timeout=duration_pb2.Duration(seconds=31536001)))

    def test_a_rejected_request_creates_nothing(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "args.seconds"):
            self.create(sleep_task(-1, labels=self.tag))
        self.assertEqual(self.listed_ids(labels=self.tag), [])

    def test_an_idempotency_key_seen_before_returns_the_same_task_and_creates_nothing(self):
        key = f"key-{uuid.uuid4().hex}"
        first = self.background(60, idempotency_key=key, labels=self.tag)
        again = self.create(sleep_task(60, idempotency_key=key, labels=self.tag))
        different_args = self.create(echo_task("other", idempotency_key=key))
        self.assertEqual(again.id, first.id)
        self.assertEqual(different_args.id, first.id)
        self.assertEqual(again.idempotency_key, key)
        self.assertEqual(self.listed_ids(labels=self.tag), [first.id])

    def test_an_idempotency_key_returns_the_finished_task_as_it_is(self):
        key = f"key-{uuid.uuid4().hex}"
        first = self.run_task(echo_task("once", idempotency_key=key)).task
        again = self.create(echo_task("twice", idempotency_key=key))
        self.assertEqual(again.id, first.id)
        self.assertState(again, SUCCEEDED)
        self.assertEqual(from_value(again.result), "once")


class CreateTasksTest(ServerTestCase):

    def test_creates_every_task_and_answers_in_request_order(self):
        tasks = self.create_many(echo_task("a", labels=self.tag), sleep_task(0.01, labels=self.tag),
                                 fail_task("c", labels=self.tag))
        self.assertEqual([t.kind for t in tasks], ["echo", "sleep", "fail"])
        self.assertEqual(self.listed_ids(labels=self.tag), ids(tasks))
        gathered = self.client.Gather(pb.GatherRequest(ids=ids(tasks), return_exceptions=True))
        self.assertEqual([t.state for t in gathered.tasks], [SUCCEEDED, SUCCEEDED, FAILED])

    def test_one_invalid_entry_fails_all_with_invalid_argument_naming_its_index(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "tasks[2].args.seconds: must not be negative"):
            self.create_many(echo_task(1, labels=self.tag), sleep_task(1, labels=self.tag),
                             sleep_task(-1, labels=self.tag), echo_task(2, labels=self.tag))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "tasks[1].kind: required"):
            self.create_many(echo_task(1, labels=self.tag), task_request("", labels=self.tag))
        self.assertEqual(self.listed_ids(labels=self.tag), [])

    def test_a_repeated_idempotency_key_within_one_request_creates_one_task(self):
        key = f"key-{uuid.uuid4().hex}"
        tasks = self.create_many(echo_task(1, idempotency_key=key, labels=self.tag),
                                 echo_task(2, idempotency_key=key, labels=self.tag))
        self.assertEqual(tasks[0].id, tasks[1].id)
        self.assertEqual(self.listed_ids(labels=self.tag), [tasks[0].id])

    def test_no_tasks_is_an_empty_answer(self):
        self.assertEqual(self.create_many(), [])

    def test_a_keyed_create_tasks_sent_again_answers_with_its_tasks_and_creates_none(self):
        key = f"batch-{uuid.uuid4().hex}"
        batch = pb.CreateTasksRequest(idempotency_key=key, tasks=[
            sleep_task(60, labels=self.tag), echo_task(1, labels=self.tag),
            sleep_task(60, labels=self.tag)])
        first = self.client.CreateTasks(batch).tasks
        again = self.client.CreateTasks(batch).tasks
        self.assertEqual([t.id for t in again], [t.id for t in first])
        self.assertEqual(self.listed_ids(labels=self.tag), sorted(t.id for t in first))
        with self.assertRpcError(Code.INVALID_ARGUMENT,
                                 "idempotency_key: already used by a CreateTasks call of 3 tasks; "
                                 "this call has 1"):
            self.client.CreateTasks(pb.CreateTasksRequest(idempotency_key=key,
                                                          tasks=[echo_task(2, labels=self.tag)]))
        with self.assertRpcError(Code.INVALID_ARGUMENT,
                                 "tasks[1].idempotency_key: must be empty when the call has an "
                                 "idempotency_key"):
            self.client.CreateTasks(pb.CreateTasksRequest(
                idempotency_key=f"other-{key}",
                tasks=[echo_task(1, labels=self.tag), echo_task(2, idempotency_key="own",
                                                                labels=self.tag)]))
        self.assertEqual(len(self.listed_ids(labels=self.tag)), 3)
        for task in first:
            self.client.CancelTask(pb.CancelTaskRequest(id=task.id))


# ----------------------------------------------------------------------------
# GetTask and ListTasks.


class GetTaskTest(ServerTestCase):

    def test_answers_the_current_state_of_a_task(self):
        task = self.create(echo_task({"k": "v"}))
        self.await_task(task.id)
        got = self.get(task.id)
        self.assertEqual(got.id, task.id)
        self.assertState(got, SUCCEEDED)
        self.assertEqual(from_value(got.result), {"k": "v"})
        self.assertLessEqual(got.create_time.ToNanoseconds(), got.start_time.ToNanoseconds())
        self.assertLessEqual(got.start_time.ToNanoseconds(), got.finish_time.ToNanoseconds())

    def test_a_malformed_id_is_invalid_argument_naming_id(self):
        for bad in ("nope", "0" * 25, "0" * 27, "U" * 26, "8" + "0" * 25, "01ARZ3NDEKTSV4RRFFQ69G5FA!"):
            with self.subTest(id=bad), \
                    self.assertRpcError(Code.INVALID_ARGUMENT, "id: ", "is not a task id"):
                self.get(bad)

    def test_an_empty_id_is_invalid_argument_saying_it_is_required(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "id: required"):
            self.get("")

    def test_an_unknown_id_is_not_found_naming_it(self):
        with self.assertRpcError(Code.NOT_FOUND, "id: no task", UNKNOWN_ID):
            self.get(UNKNOWN_ID)


class ListTasksTest(ServerTestCase):

    def test_lists_matching_tasks_oldest_first(self):
        made = [self.create(echo_task(i, labels=self.tag)).id for i in range(3)]
        listed = self.list_tasks(labels=self.tag)
        self.assertEqual(ids(listed.tasks), made)
        self.assertEqual(listed.next_page_token, "")

    def test_filters_by_state(self):
        done = self.run_task(echo_task(1, labels=self.tag)).task
        failed = self.run_task(fail_task("x", labels=self.tag)).task
        running = self.background(60, labels=self.tag)
        self.await_task(running.id, wait_timeout=0.05)
        self.assertEqual(self.listed_ids(labels=self.tag, states=[SUCCEEDED]), [done.id])
        self.assertEqual(self.listed_ids(labels=self.tag, states=[FAILED, RUNNING]),
                         [failed.id, running.id])
        self.assertEqual(self.listed_ids(labels=self.tag, states=[CANCELLED]), [])

    def test_filters_by_kind(self):
        echo = self.create(echo_task(1, labels=self.tag))
        self.create(fail_task("x", labels=self.tag))
        self.assertEqual(self.listed_ids(labels=self.tag, kind="echo"), [echo.id])
        self.assertEqual(self.listed_ids(labels=self.tag, kind="wait_random"), [])

    def test_filters_by_labels_requiring_all_of_them(self):
        both = self.create(echo_task(1, labels={"color": "red", "size": "xl", **self.tag}))
        self.create(echo_task(2, labels={"color": "red", "size": "s", **self.tag}))
        self.create(echo_task(3, labels=self.tag))
        self.assertEqual(self.listed_ids(labels={"color": "red", "size": "xl", **self.tag}), [both.id])
        self.assertEqual(len(self.listed_ids(labels={"color": "red", **self.tag})), 2)
        self.assertEqual(self.listed_ids(labels={"color": "blue", **self.tag}), [])

    def test_page_size_2_walks_every_task_with_page_tokens(self):
        made = ids(self.create_many(*[echo_task(i, labels=self.tag) for i in range(5)]))
        pages, token = [], ""
        while True:
            page = self.list_tasks(labels=self.tag, page_size=2, page_token=token)
            pages.append(ids(page.tasks))
            token = page.next_page_token
            if not token:
                break
            self.assertLess(len(pages), 10, "too many pages")
        self.assertEqual(pages, [made[0:2], made[2:4], made[4:5]])

    def test_a_page_ending_at_the_last_task_has_no_next_page_token(self):
        made = ids(self.create_many(*[echo_task(i, labels=self.tag) for i in range(4)]))
        first = self.list_tasks(labels=self.tag, page_size=2)
        second = self.list_tasks(labels=self.tag, page_size=2, page_token=first.next_page_token)
        self.assertEqual(ids(first.tasks) + ids(second.tasks), made)
        self.assertEqual(second.next_page_token, "")

    def test_default_page_size_is_100_and_the_largest_is_1000(self):
        made = ids(self.create_many(*[echo_task(i, labels=self.tag) for i in range(1001)]))
        default = self.list_tasks(labels=self.tag)
        self.assertEqual(ids(default.tasks), made[:100])
        self.assertTrue(default.next_page_token)
        biggest = self.list_tasks(labels=self.tag, page_size=5000)
        self.assertEqual(ids(biggest.tasks), made[:1000])
        rest = self.list_tasks(labels=self.tag, page_size=5000, page_token=biggest.next_page_token)
        self.assertEqual(ids(rest.tasks), made[1000:])

    def test_a_bad_page_token_is_invalid_argument_naming_page_token(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "page_token"):
            self.list_tasks(page_token="not-a-token")

    def test_a_negative_page_size_is_invalid_argument_naming_page_size(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "page_size: must not be negative"):
            self.list_tasks(page_size=-1)

    def test_an_unknown_state_is_invalid_argument_naming_its_index(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "states[1]: unknown state 9"):
            self.list_tasks(states=[SUCCEEDED, 9])
        with self.assertRpcError(Code.INVALID_ARGUMENT, "states[0]: unknown state 0"):
            self.list_tasks(states=[UNSPECIFIED])


# ----------------------------------------------------------------------------
# AwaitTask and RunTask.


class AwaitTaskTest(ServerTestCase):

    def test_answers_once_the_task_has_finished(self):
        task = self.create(sleep_task(0.2))
        done = self.await_task(task.id)
        self.assertTrue(done.done)
        self.assertState(done.task, SUCCEEDED)

    def test_a_failed_task_is_an_answer_not_an_rpc_error(self):
        task = self.create(fail_task("bad", type="ValueError"))
        done = self.await_task(task.id)
        self.assertTrue(done.done)
        self.assertState(done.task, FAILED)
        self.assertEqual(done.task.error.type, "ValueError")

    def test_a_passed_wait_timeout_answers_not_done_and_leaves_the_task_running(self):
        task = self.background(60)
        started = time.monotonic()
        answer = self.await_task(task.id, wait_timeout=0.3)
        self.assertTakes(time.monotonic() - started, 0.28, 5)
        self.assertFalse(answer.done)
        self.assertState(answer.task, RUNNING)
        self.assertState(self.get(task.id), RUNNING)

    def test_a_zero_wait_timeout_answers_at_once(self):
        task = self.background(60)
        started = time.monotonic()
        answer = self.await_task(task.id, wait_timeout=0)
        self.assertLess(time.monotonic() - started, 2)
        self.assertFalse(answer.done)
        self.assertIn(answer.task.state, (PENDING, RUNNING))

    def test_a_negative_wait_timeout_is_invalid_argument_naming_wait_timeout(self):
        task = self.background(60)
        with self.assertRpcError(Code.INVALID_ARGUMENT, "wait_timeout: must not be negative"):
            self.await_task(task.id, wait_timeout=-1)

    def test_a_client_deadline_passing_ends_the_call_and_leaves_the_task_alone(self):
        task = self.create(sleep_task(2.0))
        with self.assertRpcError(Code.DEADLINE_EXCEEDED):
            self.await_task(task.id, timeout=0.3)
        self.assertState(self.get(task.id), RUNNING)
        done = self.await_task(task.id)
        self.assertTrue(done.done)
        self.assertState(done.task, SUCCEEDED)

    def test_an_unknown_id_is_not_found_and_a_malformed_one_invalid_argument(self):
        with self.assertRpcError(Code.NOT_FOUND, "id: no task"):
            self.await_task(UNKNOWN_ID)
        with self.assertRpcError(Code.INVALID_ARGUMENT, "id: 'x' is not a task id"):
            self.await_task("x")


class RunTaskTest(ServerTestCase):

    def test_creates_the_task_and_answers_once_it_has_finished(self):
        done = self.run_task(echo_task([1, "two"], labels=self.tag))
        self.assertTrue(done.done)
        self.assertState(done.task, SUCCEEDED)
        self.assertEqual(from_value(done.task.result), [1, "two"])
        self.assertEqual(self.listed_ids(labels=self.tag), [done.task.id])

    def test_a_passed_wait_timeout_answers_not_done_with_the_task_running(self):
        answer = self.run_task(sleep_task(60, labels=self.tag), wait_timeout=0.2)
        self.addCleanup(self.cancel_quietly, answer.task.id)
        self.assertFalse(answer.done)
        self.assertState(answer.task, RUNNING)

    def test_an_invalid_task_is_invalid_argument_naming_the_field_under_task(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "task.args.seconds: must not be negative"):
            self.run_task(sleep_task(-3))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "task.kind: required"):
            self.run_task(pb.CreateTaskRequest())

    def test_a_negative_wait_timeout_is_invalid_argument_naming_wait_timeout(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "wait_timeout: must not be negative"):
            self.run_task(echo_task(1), wait_timeout=-1)

    def test_a_run_task_rejected_for_its_wait_timeout_creates_nothing(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "wait_timeout"):
            self.run_task(echo_task(1, labels=self.tag), wait_timeout=-1)
        self.assertEqual(self.listed_ids(labels=self.tag), [])

    def test_a_client_deadline_passing_leaves_the_created_task_running(self):
        with self.assertRpcError(Code.DEADLINE_EXCEEDED):
            self.client.RunTask(pb.RunTaskRequest(task=sleep_task(2.0, labels=self.tag)), timeout=0.3)
        (task_id,) = self.listed_ids(labels=self.tag)
        self.addCleanup(self.cancel_quietly, task_id)
        self.assertState(self.get(task_id), RUNNING)
        self.assertState(self.await_task(task_id).task, SUCCEEDED)


# ----------------------------------------------------------------------------
# Gather, Wait and AsCompleted.


class GatherTest(ServerTestCase):

    def test_answers_the_tasks_in_request_order_not_completion_order(self):
        tasks = self.create_many(sleep_task(0.3), echo_task("fast"), sleep_task(0.1))
        gathered = self.client.Gather(pb.GatherRequest(ids=ids(tasks)))
        self.assertTrue(gathered.done)
        self.assertEqual(ids(gathered.tasks), ids(tasks))
        self.assertEqual([t.state for t in gathered.tasks], [SUCCEEDED] * 3)
        self.assertEqual(from_value(gathered.tasks[1].result), "fast")
        self.assertEqual(gathered.first_failure_id, "")

    def test_gathering_a_2_s_and_a_1_s_sleep_takes_about_2_s(self):
        started = time.monotonic()
        two, one = self.create_many(sleep_task(2), sleep_task(1))
        gathered = self.client.Gather(pb.GatherRequest(ids=[two.id, one.id]))
        took = time.monotonic() - started
        self.assertTrue(gathered.done)
        self.assertEqual([t.state for t in gathered.tasks], [SUCCEEDED, SUCCEEDED])
        self.assertTakes(took, 1.9, 2.9)

    def test_repeated_ids_answer_once_per_request_entry(self):
        task = self.create(echo_task("same"))
        gathered = self.client.Gather(pb.GatherRequest(ids=[task.id, task.id, task.id]))
        self.assertEqual(ids(gathered.tasks), [task.id] * 3)
        self.assertTrue(gathered.done)

    def test_no_ids_answers_done_at_once(self):
        gathered = self.client.Gather(pb.GatherRequest())
        self.assertTrue(gathered.done)
        self.assertEqual(len(gathered.tasks), 0)

    def test_without_return_exceptions_the_first_failure_answers_and_the_others_keep_running(self):
        slow = self.background(60)
        times_out = self.create(sleep_task(60, timeout=duration(0.3)))
        quick = self.create(sleep_task(0.05))
        started = time.monotonic()
        gathered = self.client.Gather(pb.GatherRequest(ids=[slow.id, times_out.id, quick.id]))
        self.assertTakes(time.monotonic() - started, 0.2, 5)
        self.assertTrue(gathered.done)
        self.assertEqual(gathered.first_failure_id, times_out.id)
        self.assertEqual(ids(gathered.tasks), [slow.id, times_out.id, quick.id])
        self.assertState(gathered.tasks[0], RUNNING)
        self.assertState(gathered.tasks[1], FAILED)
        self.assertState(self.get(slow.id), RUNNING)

    def test_an_already_failed_task_is_the_first_failure_at_once(self):
        failed = self.run_task(fail_task("early")).task
        slow = self.background(60)
        gathered = self.client.Gather(pb.GatherRequest(ids=[slow.id, failed.id], wait_timeout=duration(10)))
        self.assertTrue(gathered.done)
        self.assertEqual(gathered.first_failure_id, failed.id)
        self.assertState(gathered.tasks[0], RUNNING)

    def test_a_cancelled_task_counts_as_a_failure(self):
        slow = self.background(60)
        doomed = self.background(60)
        future = self.server.stub.Gather.future(pb.GatherRequest(ids=[slow.id, doomed.id]),
                                                timeout=RPC_TIMEOUT)
        self.client.CancelTask(pb.CancelTaskRequest(id=doomed.id))
        gathered = future.result(timeout=RPC_TIMEOUT)
        self.assertEqual(gathered.first_failure_id, doomed.id)
        self.assertState(gathered.tasks[1], CANCELLED)
        self.assertState(self.get(slow.id), RUNNING)

    def test_with_return_exceptions_it_waits_for_every_task(self):
        tasks = self.create_many(sleep_task(0.5), fail_task("bad"),
                                 sleep_task(60, timeout=duration(0.2)))
        started = time.monotonic()
        gathered = self.client.Gather(pb.GatherRequest(ids=ids(tasks), return_exceptions=True))
        self.assertTakes(time.monotonic() - started, 0.4, 5)
        self.assertTrue(gathered.done)
        self.assertEqual(gathered.first_failure_id, "")
        self.assertEqual([t.state for t in gathered.tasks], [SUCCEEDED, FAILED, FAILED])
        self.assertEqual(gathered.tasks[2].error.type, "TimeoutError")

    def test_a_passed_wait_timeout_answers_not_done(self):
        slow = self.background(60)
        quick = self.create(echo_task(1))
        gathered = self.client.Gather(pb.GatherRequest(ids=[quick.id, slow.id],
                                                       wait_timeout=duration(0.2)))
        self.assertFalse(gathered.done)
        self.assertState(gathered.tasks[0], SUCCEEDED)
        self.assertState(gathered.tasks[1], RUNNING)

    def test_bad_ids_fail_naming_their_index(self):
        task = self.create(echo_task(1))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "ids[1]: 'bogus' is not a task id"):
            self.client.Gather(pb.GatherRequest(ids=[task.id, "bogus"]))
        with self.assertRpcError(Code.NOT_FOUND, "ids[1]: no task"):
            self.client.Gather(pb.GatherRequest(ids=[task.id, UNKNOWN_ID]))

    def test_a_negative_wait_timeout_is_invalid_argument_naming_wait_timeout(self):
        task = self.create(echo_task(1))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "wait_timeout: must not be negative"):
            self.client.Gather(pb.GatherRequest(ids=[task.id], wait_timeout=duration(-0.1)))


class TaskViewTest(ServerTestCase):

    def test_the_outcome_view_leaves_out_everything_but_id_state_attempt_and_outcome(self):
        ok, failed = self.create_many(echo_task({"a": 1}), fail_task("no"))
        gathered = self.client.Gather(pb.GatherRequest(
            ids=[ok.id, failed.id], return_exceptions=True, view=pb.TASK_VIEW_OUTCOME))
        first, second = gathered.tasks
        self.assertEqual((first.id, first.state, first.attempt), (ok.id, SUCCEEDED, 1))
        self.assertEqual(from_value(first.result), {"a": 1})
        self.assertEqual(first.kind, "")
        self.assertFalse(first.HasField("args"))
        self.assertFalse(first.HasField("create_time"))
        self.assertEqual(second.error.message, "no")

    def test_create_tasks_and_run_task_answer_in_the_view_asked_for(self):
        created = self.client.CreateTasks(pb.CreateTasksRequest(
            tasks=[echo_task(1)], view=pb.TASK_VIEW_OUTCOME))
        self.assertEqual(len(created.tasks[0].id), 26)
        self.assertFalse(created.tasks[0].HasField("args"))
        ran = self.client.RunTask(pb.RunTaskRequest(task=echo_task(2), view=pb.TASK_VIEW_OUTCOME))
        self.assertEqual(from_value(ran.task.result), 2)
        self.assertFalse(ran.task.HasField("create_time"))
        full = self.client.RunTask(pb.RunTaskRequest(task=echo_task(3)))
        self.assertEqual(full.task.kind, "echo")

    def test_an_unknown_view_is_invalid_argument_and_creates_nothing(self):
        before = len(self.client.ListTasks(pb.ListTasksRequest(page_size=1000)).tasks)
        with self.assertRpcError(Code.INVALID_ARGUMENT, "view: unknown value 9"):
            self.client.CreateTasks(pb.CreateTasksRequest(tasks=[echo_task(1)], view=9))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "view: unknown value 9"):
            self.client.RunTask(pb.RunTaskRequest(task=echo_task(1), view=9))
        self.assertEqual(len(self.client.ListTasks(pb.ListTasksRequest(page_size=1000)).tasks),
                         before)


class WaitTest(ServerTestCase):

    def wait(self, tasks, **fields):
        return self.client.Wait(pb.WaitRequest(ids=ids(tasks), **fields))

    def test_first_completed_answers_when_one_task_finishes(self):
        slow = self.background(60)
        quick = self.create(sleep_task(0.1))
        answer = self.wait([slow, quick], return_when=FIRST_COMPLETED)
        self.assertEqual(ids(answer.done), [quick.id])
        self.assertEqual(list(answer.pending_ids), [slow.id])

    def test_first_completed_counts_a_cancellation(self):
        slow = self.background(60)
        doomed = self.background(60)
        future = self.server.stub.Wait.future(
            pb.WaitRequest(ids=[slow.id, doomed.id], return_when=FIRST_COMPLETED), timeout=RPC_TIMEOUT)
        self.client.CancelTask(pb.CancelTaskRequest(id=doomed.id))
        answer = future.result(timeout=RPC_TIMEOUT)
        self.assertEqual(ids(answer.done), [doomed.id])
        self.assertEqual(list(answer.pending_ids), [slow.id])

    def test_first_exception_answers_when_one_task_fails(self):
        slow = self.background(60)
        quick = self.create(sleep_task(0.05))
        times_out = self.create(sleep_task(60, timeout=duration(0.3)))
        answer = self.wait([slow, quick, times_out], return_when=FIRST_EXCEPTION)
        self.assertEqual(ids(answer.done), [quick.id, times_out.id])
        self.assertEqual(list(answer.pending_ids), [slow.id])

    def test_first_exception_does_not_count_a_cancellation(self):
        cancelled = self.background(60)
        self.client.CancelTask(pb.CancelTaskRequest(id=cancelled.id))
        later = self.create(sleep_task(0.3))
        started = time.monotonic()
        answer = self.wait([cancelled, later], return_when=FIRST_EXCEPTION)
        self.assertTakes(time.monotonic() - started, 0.2, 5)
        self.assertEqual(ids(answer.done), [cancelled.id, later.id])
        self.assertEqual(list(answer.pending_ids), [])

    def test_first_exception_without_failures_waits_for_all(self):
        tasks = self.create_many(sleep_task(0.1), sleep_task(0.2))
        answer = self.wait(tasks, return_when=FIRST_EXCEPTION)
        self.assertEqual(ids(answer.done), ids(tasks))

    def test_all_completed_waits_for_every_task_and_answers_in_request_order(self):
        tasks = self.create_many(sleep_task(0.3), sleep_task(0.1), fail_task("x"))
        for when in (ALL_COMPLETED, pb.ReturnWhen.Value("RETURN_WHEN_UNSPECIFIED")):
            with self.subTest(return_when=pb.ReturnWhen.Name(when)):
                answer = self.wait(tasks, return_when=when)
                self.assertEqual(ids(answer.done), ids(tasks))
                self.assertEqual([t.state for t in answer.done], [SUCCEEDED, SUCCEEDED, FAILED])
                self.assertEqual(list(answer.pending_ids), [])

    def test_count_answers_once_that_many_tasks_are_done(self):
        tasks = self.create_many(sleep_task(0.1), sleep_task(60), sleep_task(0.2))
        self.addCleanup(self.cancel_quietly, tasks[1].id)
        answer = self.wait(tasks, return_when=ALL_COMPLETED, count=2)
        self.assertEqual(ids(answer.done), [tasks[0].id, tasks[2].id])
        self.assertEqual(list(answer.pending_ids), [tasks[1].id])

    def test_a_passed_timeout_answers_with_what_is_done_and_cancels_nothing(self):
        slow = self.background(60)
        quick = self.create(sleep_task(0.05))
        started = time.monotonic()
        answer = self.wait([slow, quick], timeout=duration(0.4))
        self.assertTakes(time.monotonic() - started, 0.35, 5)
        self.assertEqual(ids(answer.done), [quick.id])
        self.assertEqual(list(answer.pending_ids), [slow.id])
        self.assertState(self.get(slow.id), RUNNING)

    def test_no_ids_is_invalid_argument_naming_ids(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "ids: must not be empty"):
            self.client.Wait(pb.WaitRequest())

    def test_a_count_over_the_distinct_ids_is_invalid_argument_naming_count(self):
        task = self.create(echo_task(1))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "count: must be at most", "(1)"):
            self.client.Wait(pb.WaitRequest(ids=[task.id, task.id], count=2))

    def test_an_unknown_return_when_is_invalid_argument_naming_return_when(self):
        task = self.create(echo_task(1))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "return_when: unknown value 7"):
            self.client.Wait(pb.WaitRequest(ids=[task.id], return_when=7))

    def test_a_negative_timeout_is_invalid_argument_naming_timeout(self):
        task = self.create(echo_task(1))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "timeout: must not be negative"):
            self.client.Wait(pb.WaitRequest(ids=[task.id], timeout=duration(-1)))

    def test_bad_ids_fail_naming_their_index(self):
        task = self.create(echo_task(1))
        with self.assertRpcError(Code.NOT_FOUND, "ids[1]"):
            self.client.Wait(pb.WaitRequest(ids=[task.id, UNKNOWN_ID]))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "ids[0]"):
            self.client.Wait(pb.WaitRequest(ids=["?", task.id]))


class AsCompletedTest(ServerTestCase):

    def stream(self, task_ids, timeout=None):
        request = pb.AsCompletedRequest(ids=task_ids)
        if timeout is not None:
            request.timeout.CopyFrom(duration(timeout))
        return self.client.AsCompleted(request)

    def test_streams_tasks_in_completion_order_then_ends(self):
        slow, fast, middle = self.create_many(sleep_task(0.3), sleep_task(0.1), sleep_task(0.2))
        streamed = list(self.stream([slow.id, fast.id, middle.id]))
        self.assertEqual(ids(streamed), [fast.id, middle.id, slow.id])
        self.assertEqual([t.state for t in streamed], [SUCCEEDED] * 3)

    def test_streams_already_finished_tasks_first(self):
        pending = self.create(sleep_task(0.2))
        finished = self.run_task(echo_task("done")).task
        streamed = list(self.stream([pending.id, finished.id]))
        self.assertEqual(ids(streamed), [finished.id, pending.id])

    def test_a_passed_timeout_ends_the_stream_with_deadline_exceeded_and_tasks_keep_running(self):
        slow = self.background(60)
        quick = self.create(sleep_task(0.05))
        streamed = []
        with self.assertRpcError(Code.DEADLINE_EXCEEDED, "timeout", "1 task(s) still unfinished"):
            for task in self.stream([slow.id, quick.id], timeout=0.4):
                streamed.append(task)
        self.assertEqual(ids(streamed), [quick.id])
        self.assertState(self.get(slow.id), RUNNING)

    def test_a_negative_timeout_is_invalid_argument_naming_timeout(self):
        task = self.create(echo_task(1))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "timeout: must not be negative"):
            list(self.stream([task.id], timeout=-1))

    def test_an_unknown_id_is_not_found_naming_its_index(self):
        with self.assertRpcError(Code.NOT_FOUND, "ids[0]"):
            list(self.stream([UNKNOWN_ID]))


# ----------------------------------------------------------------------------
# CancelTask and task timeouts.


class CancelTaskTest(ServerTestCase):

    def cancel(self, task_id):
        return self.client.CancelTask(pb.CancelTaskRequest(id=task_id))

    def test_cancelling_a_running_task_answers_it_cancelled(self):
        task = self.create(sleep_task(60))
        self.assertState(self.await_task(task.id, wait_timeout=0.05).task, RUNNING)
        cancelled = self.cancel(task.id)
        self.assertState(cancelled, CANCELLED)
        self.assertEqual(cancelled.error.type, "CancelledError")
        self.assertTrue(cancelled.HasField("finish_time"))
        self.assertState(self.get(task.id), CANCELLED)

    def test_cancelling_a_just_created_task_answers_it_cancelled(self):
        # The server starts a task on its next loop turn, so a task is pending
        # only between CreateTasks and that turn; the last of many is the best
        # chance to cancel one before it starts. Either way it ends CANCELLED.
        tasks = self.create_many(*[sleep_task(60) for _ in range(200)])
        for task in tasks:
            self.addCleanup(self.cancel_quietly, task.id)
        self.assertEqual(tasks[-1].state, PENDING)
        cancelled = self.cancel(tasks[-1].id)
        self.assertState(cancelled, CANCELLED)
        self.assertEqual(cancelled.error.type, "CancelledError")

    def test_cancelling_a_finished_task_changes_nothing(self):
        done = self.run_task(echo_task("kept")).task
        again = self.cancel(done.id)
        self.assertState(again, SUCCEEDED)
        self.assertEqual(from_value(again.result), "kept")
        self.assertEqual(again.finish_time, done.finish_time)

    def test_cancelling_twice_is_idempotent(self):
        task = self.create(sleep_task(60))
        first = self.cancel(task.id)
        second = self.cancel(task.id)
        self.assertState(first, CANCELLED)
        self.assertEqual(second, first)

    def test_awaiters_of_a_cancelled_task_see_it_cancelled(self):
        task = self.create(sleep_task(60))
        awaiting = [self.server.stub.AwaitTask.future(pb.AwaitTaskRequest(id=task.id), timeout=RPC_TIMEOUT)
                    for _ in range(3)]
        self.cancel(task.id)
        for future in awaiting:
            answer = future.result(timeout=RPC_TIMEOUT)
            self.assertTrue(answer.done)
            self.assertState(answer.task, CANCELLED)
            self.assertEqual(answer.task.error.type, "CancelledError")

    def test_an_unknown_id_is_not_found_and_a_malformed_one_invalid_argument(self):
        with self.assertRpcError(Code.NOT_FOUND, "id: no task"):
            self.cancel(UNKNOWN_ID)
        with self.assertRpcError(Code.INVALID_ARGUMENT, "id: required"):
            self.cancel("")


class TaskTimeoutTest(ServerTestCase):

    def test_a_task_past_its_timeout_fails_with_timeout_error(self):
        started = time.monotonic()
        done = self.run_task(sleep_task(60, timeout=duration(0.3)))
        self.assertTakes(time.monotonic() - started, 0.28, 5)
        self.assertState(done.task, FAILED)
        self.assertEqual(done.task.error.type, "TimeoutError")
        self.assertIn("timeout", done.task.error.message)
        self.assertIn("0.3", done.task.error.message)

    def test_a_task_finishing_within_its_timeout_succeeds(self):
        done = self.run_task(sleep_task(0.1, timeout=duration(30)))
        self.assertState(done.task, SUCCEEDED)
        self.assertFalse(done.task.HasField("error"))

    def test_awaiters_of_a_timed_out_task_see_it_failed(self):
        task = self.create(sleep_task(60, timeout=duration(0.2)))
        answer = self.await_task(task.id)
        self.assertState(answer.task, FAILED)
        self.assertEqual(answer.task.error.type, "TimeoutError")


# ----------------------------------------------------------------------------
# WatchTasks.


class WatchTasksTest(ServerTestCase):

    def watch(self, **fields):
        stream = EventStream(self.client.WatchTasks(pb.WatchTasksRequest(**fields), timeout=60))
        self.addCleanup(stream.close)
        return stream

    def sync(self, stream, make_probe, timeout=10.0):
        """Makes probe events until the stream delivers one: from then on the
        server has the watch registered. Probes are named "probe"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            make_probe()
            try:
                event = stream.next(timeout=0.2)
            except queue.Empty:
                continue
            self.assertIsNot(event, EventStream.ENDED, f"stream ended: {stream.error}")
            self.assertEqual(event.task.name, "probe")
            return
        self.fail("the watch delivered no event for its probes")

    def next_event(self, stream, timeout=10.0):
        """The next event that is not about a probe."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = stream.next(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.fail("no event in time")
            self.assertIsNot(event, EventStream.ENDED, f"stream ended: {stream.error}")
            if event.task.name != "probe":
                return event

    def transitions(self, events):
        return [(state_name(e.previous_state), state_name(e.task.state)) for e in events]

    def test_streams_created_started_and_finished_events_for_a_task(self):
        stream = self.watch(labels=self.tag)
        self.sync(stream, lambda: self.create(echo_task(0, name="probe", labels=self.tag)))
        task = self.create(sleep_task(0.1, labels=self.tag))
        events = [self.next_event(stream) for _ in range(3)]
        self.assertEqual([e.task.id for e in events], [task.id] * 3)
        self.assertEqual(self.transitions(events), [
            ("TASK_STATE_UNSPECIFIED", "TASK_STATE_PENDING"),
            ("TASK_STATE_PENDING", "TASK_STATE_RUNNING"),
            ("TASK_STATE_RUNNING", "TASK_STATE_SUCCEEDED"),
        ])
        self.assertEqual(events[2].task.result.WhichOneof("kind"), "null_value")

    def test_an_ids_filter_streams_only_those_tasks(self):
        target = self.background(60)
        other = self.background(60)
        probes = self.create_many(*[sleep_task(60, name="probe") for _ in range(50)])
        for probe in probes:
            self.addCleanup(self.cancel_quietly, probe.id)
        stream = self.watch(ids=[target.id] + ids(probes))
        unused = iter(probes)
        self.sync(stream, lambda: self.client.CancelTask(pb.CancelTaskRequest(id=next(unused).id)))
        self.client.CancelTask(pb.CancelTaskRequest(id=other.id))
        self.client.CancelTask(pb.CancelTaskRequest(id=target.id))
        event = self.next_event(stream)
        self.assertEqual(event.task.id, target.id)
        self.assertEqual(self.transitions([event]), [("TASK_STATE_RUNNING", "TASK_STATE_CANCELLED")])

    def test_a_states_filter_streams_only_changes_into_those_states(self):
        stream = self.watch(labels=self.tag, states=[SUCCEEDED])
        self.sync(stream, lambda: self.create(echo_task(0, name="probe", labels=self.tag)))
        self.run_task(fail_task("no", labels=self.tag))
        ok = self.create(echo_task(1, labels=self.tag))
        event = self.next_event(stream)
        self.assertEqual(event.task.id, ok.id)
        self.assertState(event.task, SUCCEEDED)

    def test_a_kind_filter_streams_only_that_kind(self):
        stream = self.watch(labels=self.tag, kind="fail")
        self.sync(stream, lambda: self.create(fail_task("p", name="probe", labels=self.tag)))
        self.run_task(echo_task(1, labels=self.tag))
        failing = self.create(fail_task("x", labels=self.tag))
        events = [self.next_event(stream) for _ in range(3)]
        self.assertEqual([e.task.id for e in events], [failing.id] * 3)
        self.assertState(events[2].task, FAILED)

    def test_bad_filters_are_invalid_argument_naming_the_field(self):
        with self.assertRpcError(Code.INVALID_ARGUMENT, "ids[0]: 'x' is not a task id"):
            list(self.client.WatchTasks(pb.WatchTasksRequest(ids=["x"])))
        with self.assertRpcError(Code.INVALID_ARGUMENT, "states[0]: unknown state 42"):
            list(self.client.WatchTasks(pb.WatchTasksRequest(states=[42])))


# ----------------------------------------------------------------------------
# Limits.


class RequestLimitsTest(ServerTestCase):
    server_flags = ("--max-args-bytes", "64", "--max-ids-per-request", "3")

    def test_args_over_max_args_bytes_are_resource_exhausted_naming_args(self):
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "args: ", "over the limit of 64"):
            self.create(echo_task("x" * 100, labels=self.tag))
        self.assertEqual(self.listed_ids(labels=self.tag), [])
        self.run_task(echo_task("x" * 10))  # Small args are fine.

    def test_oversized_args_in_create_tasks_name_the_entry(self):
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "tasks[1].args: ", "over the limit of 64"):
            self.create_many(echo_task(1, labels=self.tag), echo_task("y" * 100, labels=self.tag))
        self.assertEqual(self.listed_ids(labels=self.tag), [])

    def test_oversized_args_in_run_task_name_task_args(self):
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "task.args: "):
            self.run_task(echo_task("z" * 100))

    def test_more_tasks_than_max_ids_per_request_is_resource_exhausted_naming_tasks(self):
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "tasks: 4 is over the limit of 3"):
            self.create_many(*[echo_task(i, labels=self.tag) for i in range(4)])
        self.assertEqual(self.listed_ids(labels=self.tag), [])
        self.assertEqual(len(self.create_many(*[echo_task(i) for i in range(3)])), 3)

    def test_more_ids_than_max_ids_per_request_is_resource_exhausted_naming_ids(self):
        task = self.create(echo_task(1))
        four = [task.id] * 4
        calls = {
            "Gather": lambda: self.client.Gather(pb.GatherRequest(ids=four)),
            "Wait": lambda: self.client.Wait(pb.WaitRequest(ids=four)),
            "AsCompleted": lambda: list(self.client.AsCompleted(pb.AsCompletedRequest(ids=four))),
            "WatchTasks": lambda: list(self.client.WatchTasks(pb.WatchTasksRequest(ids=four))),
        }
        for name, call in calls.items():
            with self.subTest(rpc=name), \
                    self.assertRpcError(Code.RESOURCE_EXHAUSTED, "ids: 4 is over the limit of 3"):
                call()
        self.assertTrue(self.client.Gather(pb.GatherRequest(ids=four[:3])).done)


class PendingLimitTest(ServerTestCase):
    server_flags = ("--max-pending-tasks", "2")

    def test_creating_past_max_pending_tasks_is_resource_exhausted_until_one_finishes(self):
        key = f"key-{uuid.uuid4().hex}"
        first = self.background(60, idempotency_key=key, labels=self.tag)
        second = self.background(60, labels=self.tag)
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "--max-pending-tasks"):
            self.create(echo_task(1, labels=self.tag))
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "--max-pending-tasks"):
            self.run_task(echo_task(1, labels=self.tag))
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "tasks: 1 more", "--max-pending-tasks"):
            self.create_many(echo_task(1, labels=self.tag))
        # A key seen before answers with its task even at the limit.
        self.assertEqual(self.create(sleep_task(60, idempotency_key=key)).id, first.id)
        self.assertEqual(self.listed_ids(labels=self.tag), [first.id, second.id])
        self.client.CancelTask(pb.CancelTaskRequest(id=second.id))
        self.assertState(self.run_task(echo_task(1)).task, SUCCEEDED)

    def test_run_task_at_the_limit_names_no_field_that_does_not_exist(self):
        self.background(60)
        self.background(60)
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "--max-pending-tasks") as raised:
            self.run_task(echo_task(1))
        self.assertNotIn("task.tasks", raised.error.details())

    def test_create_tasks_that_would_pass_the_limit_creates_none(self):
        with self.assertRpcError(Code.RESOURCE_EXHAUSTED, "tasks: 3 more would pass"):
            self.create_many(*[sleep_task(60, labels=self.tag) for _ in range(3)])
        self.assertEqual(self.listed_ids(labels=self.tag), [])


class RetentionTest(ServerTestCase):
    server_flags = ("--retention", "0.2")

    def wait_until_evicted(self, task_id, timeout=10.0):
        """Polls GetTask until NOT_FOUND; answers the error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(task_id)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), Code.NOT_FOUND, e.details())
                return e
            time.sleep(0.05)
        self.fail(f"task {task_id} was not evicted within {timeout} s")

    def test_a_finished_task_is_evicted_after_retention_and_then_not_found_saying_so(self):
        task = self.create(echo_task(1))
        self.assertTrue(self.await_task(task.id).done)
        error = self.wait_until_evicted(task.id)
        self.assertIn("id: ", error.details())
        self.assertIn(task.id, error.details())
        self.assertIn("evicted", error.details())
        with self.assertRpcError(Code.NOT_FOUND, "evicted"):
            self.await_task(task.id)
        with self.assertRpcError(Code.NOT_FOUND, "ids[0]", "evicted"):
            self.client.Gather(pb.GatherRequest(ids=[task.id]))

    def test_an_unfinished_task_is_not_evicted(self):
        task = self.background(60)
        finished = self.create(echo_task(1))
        self.wait_until_evicted(finished.id)
        self.assertState(self.get(task.id), RUNNING)

    def test_an_idempotency_key_is_forgotten_once_its_task_is_evicted(self):
        key = f"key-{uuid.uuid4().hex}"
        first = self.run_task(echo_task(1, idempotency_key=key)).task
        self.wait_until_evicted(first.id)
        second = self.create(echo_task(2, idempotency_key=key))
        self.assertNotEqual(second.id, first.id)


class MaxRetainedTasksTest(ServerTestCase):
    server_flags = ("--max-retained-tasks", "2")

    def test_past_max_retained_tasks_the_oldest_finished_task_is_evicted(self):
        oldest = self.run_task(echo_task(1)).task
        self.run_task(echo_task(2))
        newest = self.run_task(echo_task(3)).task
        deadline = time.monotonic() + 10
        while True:
            try:
                self.get(oldest.id)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), Code.NOT_FOUND)
                self.assertIn("evicted", e.details())
                break
            self.assertLess(time.monotonic(), deadline, "oldest task never evicted")
            time.sleep(0.05)
        self.assertState(self.get(newest.id), SUCCEEDED)


# ----------------------------------------------------------------------------
# Graceful shutdown.


class GracefulShutdownTest(TaskwireTestCase):
    GRACE = 1.0

    def start(self, grace):
        server = Taskwired("--drain-grace", str(grace), name=self._testMethodName)
        self.addCleanup(server.kill)
        return server.start()

    def start_draining(self, grace):
        """A server with an AwaitTask (on a 30 s sleep) in flight and a health
        Watch stream, SIGTERMed: answers (server, client, await future, health
        stream, when SIGTERM was sent) once health has turned NOT_SERVING."""
        server = self.start(grace)
        client = Client(server.stub)
        task = client.CreateTask(sleep_task(30))
        health = EventStream(health_watch(server.channel, timeout=30))
        self.addCleanup(health.close)
        self.assertEqual(health_status(health.next(timeout=10)), SERVING)
        awaiting = server.stub.AwaitTask.future(pb.AwaitTaskRequest(id=task.id), timeout=30)
        # A call answered after the await was sent: the await is in flight.
        self.assertState(client.GetTask(pb.GetTaskRequest(id=task.id)), RUNNING)
        self.assertFalse(awaiting.done())
        sent = server.terminate()
        update = health.next(timeout=10)
        self.assertIsNot(update, EventStream.ENDED, f"health watch ended: {health.error}")
        self.assertEqual(health_status(update), NOT_SERVING)
        return server, client, awaiting, health, sent

    def test_sigterm_turns_health_not_serving_and_ends_calls_in_flight_after_the_grace(self):
        server, client, awaiting, health, sent = self.start_draining(self.GRACE)
        health.close()

        error = awaiting.exception(timeout=self.GRACE + STOP_SLACK + 5)
        ended = time.monotonic() - sent
        self.assertIsNotNone(error, "the await answered")
        self.assertIn(error.code(), (Code.CANCELLED, Code.UNAVAILABLE), error.details())
        self.assertGreaterEqual(ended, self.GRACE * 0.8, "the await ended before the grace")
        self.assertLess(ended, self.GRACE + STOP_SLACK)
        code = server.wait_exit(self.GRACE + STOP_SLACK - (time.monotonic() - sent))
        self.assertEqual(code, 0, server.log_tail())
        self.assertLess(time.monotonic() - sent, self.GRACE + STOP_SLACK)

    def test_new_tasks_during_the_drain_are_refused_promptly_with_unavailable(self):
        server, client, awaiting, health, sent = self.start_draining(grace=3)
        with self.assertRpcError(Code.UNAVAILABLE, "shutting down"):
            client.CreateTask(echo_task(1), timeout=1.0)

    def test_a_second_signal_during_the_drain_exits_at_once_with_code_1(self):
        server, client, awaiting, health, sent = self.start_draining(grace=30)
        self.assertIsNone(server.proc.poll())
        server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(server.wait_exit(STOP_SLACK), 1, server.log_tail())

    def test_calls_that_finish_within_the_grace_answer_normally(self):
        server = self.start(grace=10)
        client = Client(server.stub)
        task = client.CreateTask(sleep_task(0.5))
        awaiting = server.stub.AwaitTask.future(pb.AwaitTaskRequest(id=task.id), timeout=30)
        self.assertState(client.GetTask(pb.GetTaskRequest(id=task.id)), RUNNING)
        sent = server.terminate()
        answer = awaiting.result(timeout=10)
        self.assertTrue(answer.done)
        self.assertState(answer.task, SUCCEEDED)
        code = server.wait_exit(STOP_SLACK + 2)
        self.assertEqual(code, 0, server.log_tail())
        self.assertLess(time.monotonic() - sent, 0.5 + STOP_SLACK, "waited for the whole grace")

    def test_sigterm_ends_open_watch_streams_cleanly(self):
        server = self.start(grace=10)
        stream = EventStream(server.stub.WatchTasks(pb.WatchTasksRequest(), timeout=30))
        self.addCleanup(stream.close)
        # Sync: create tasks until the watch reports one.
        deadline = time.monotonic() + 10
        while True:
            server.stub.CreateTask(echo_task(1), timeout=RPC_TIMEOUT)
            try:
                stream.next(timeout=0.2)
                break
            except queue.Empty:
                self.assertLess(time.monotonic(), deadline, "the watch delivered nothing")
        sent = server.terminate()
        while True:
            item = stream.next(timeout=STOP_SLACK + 5)
            if item is EventStream.ENDED:
                break
        self.assertIsNone(stream.error, stream.error and stream.error.details())
        self.assertEqual(server.wait_exit(STOP_SLACK), 0, server.log_tail())
        self.assertLess(time.monotonic() - sent, STOP_SLACK, "the watch held up the drain")


# ----------------------------------------------------------------------------


class _Result(unittest.TextTestResult):
    """Counts passes, for the summary line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main(argv, module=None):
    """Runs the tests of `module` (default: this one); 0 if all passed."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", dest="patterns", action="append", default=[],
                        help="only tests whose name contains this (repeatable)")
    parser.add_argument("-q", dest="verbosity", action="store_const", const=1, default=2)
    options = parser.parse_args(argv)
    if not os.access(TASKWIRED, os.X_OK):
        sys.exit(f"no taskwired binary at {TASKWIRED} (set TASKWIRED)")

    loader = unittest.TestLoader()
    if options.patterns:
        loader.testNamePatterns = [f"*{p}*" for p in options.patterns]
    suite = loader.loadTestsFromModule(module or sys.modules[__name__])
    started = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=options.verbosity,
                                     resultclass=_Result)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    extras = []
    if result.expectedFailures:
        extras.append(f"{len(result.expectedFailures)} expected failures (known server bugs)")
    if result.skipped:
        extras.append(f"{len(result.skipped)} skipped")
    print(f"\n{result.passed} passed, {failed} failed"
          + (f" ({', '.join(extras)})" if extras else "")
          + f" in {time.monotonic() - started:.1f} s")
    if "TEST_UNDECLARED_OUTPUTS_DIR" in os.environ:
        target = os.environ.get("TEST_TARGET", "//tests:taskwired_integration_test")
        print(f"server logs: bazel-testlogs/{target.lstrip('/').replace(':', '/')}/test.outputs/")
    else:
        print(f"server logs: {LOG_DIR}")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
