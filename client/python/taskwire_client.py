"""taskwire from Python: asyncio's task model over the wire, with grpc.aio.

    import asyncio
    import taskwire_client as taskwire

    async def main():
        async with taskwire.Client() as tw:            # $TASKWIRE_SERVER
            a = tw.create_task("sleep", seconds=2)
            b = tw.create_task("wait_random", max_delay=1)
            print(await tw.gather(a, b))               # about 2 s: [None, 0.42]

    asyncio.run(main())

What maps to what (each name behaves as its asyncio namesake, with the
differences stated on it):

    asyncio.create_task(coro)      Client.create_task(kind, **args) -> RemoteTask
    await task                     await remote_task   (the TaskService's AwaitTask)
    asyncio.gather(*tasks)         Client.gather(*tasks)  (one Gather RPC)
    asyncio.wait(tasks)            Client.wait(tasks)     (one Wait RPC)
    asyncio.as_completed(tasks)    Client.as_completed(tasks)  (one AsCompleted stream)
    asyncio.wait_for(task, t)      Client.wait_for(task, t)
    task.cancel()                  remote_task.cancel()   (CancelTask)

A task that fails on the server raises RemoteTaskError (its remote type and
message); a cancelled one raises asyncio.CancelledError, as a cancelled
asyncio task does. A call the server refuses (bad input, unknown id, a
limit) raises TaskwireRpcError with the gRPC status code and the server's
message, which names the field and the rule.

Needs grpcio and grpcio-tools (Debian: python3-grpcio, python3-grpc-tools,
for /usr/bin/python3). The Python stubs are generated from the repository's
proto/ folder when this module is imported (about 0.2 s), unless a folder of
stubs is named by $TASKWIRE_PY_STUBS; to generate them once instead:

    python3 -m grpc_tools.protoc -Iproto -I/usr/include \
        --python_out=STUBS --grpc_python_out=STUBS taskwire/v1/tasks.proto
"""

import asyncio
import os
import sys
import tempfile

__all__ = [
    "ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "Client", "RemoteTask",
    "RemoteTaskError", "TaskOptions", "TaskwireError", "TaskwireRpcError",
]

DEFAULT_SERVER = "127.0.0.1:50051"
# asyncio's return_when constants are these strings.
FIRST_COMPLETED = asyncio.FIRST_COMPLETED
FIRST_EXCEPTION = asyncio.FIRST_EXCEPTION
ALL_COMPLETED = asyncio.ALL_COMPLETED


def _proto_dir():
    """$TASKWIRE_PROTO_DIR, else the repository's proto/ next to client/python/."""
    explicit = os.environ.get("TASKWIRE_PROTO_DIR")
    if explicit:
        return explicit
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "proto")


def _load_stubs():
    """Puts the generated stubs on sys.path, generating them if needed."""
    stubs = os.environ.get("TASKWIRE_PY_STUBS")
    if not stubs:
        import grpc_tools
        from grpc_tools import protoc

        # grpc_tools carries the well-known types; Debian also has them in
        # /usr/include.
        includes = [os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"), "/usr/include"]
        stubs = tempfile.mkdtemp(prefix="taskwire-py-stubs-")
        status = protoc.main(["protoc", f"-I{_proto_dir()}"]
                             + [f"-I{i}" for i in includes if os.path.isdir(i)]
                             + [f"--python_out={stubs}", f"--grpc_python_out={stubs}",
                                "taskwire/v1/tasks.proto"])
        if status != 0:
            raise ImportError(f"taskwire_client: protoc failed ({status}) on {_proto_dir()}; "
                              "set TASKWIRE_PROTO_DIR to the repository's proto/ folder")
    if stubs not in sys.path:
        sys.path.insert(0, stubs)


_load_stubs()

import grpc  # noqa: E402
from google.protobuf import duration_pb2, json_format, struct_pb2  # noqa: E402
from taskwire.v1 import tasks_pb2 as pb  # noqa: E402
from taskwire.v1 import tasks_pb2_grpc as pb_grpc  # noqa: E402

_SUCCEEDED = pb.TASK_STATE_SUCCEEDED
_FAILED = pb.TASK_STATE_FAILED
_CANCELLED = pb.TASK_STATE_CANCELLED
_FINAL = (_SUCCEEDED, _FAILED, _CANCELLED)
_OUTCOME = pb.TASK_VIEW_OUTCOME
_RETURN_WHEN = {
    FIRST_COMPLETED: pb.RETURN_WHEN_FIRST_COMPLETED,
    FIRST_EXCEPTION: pb.RETURN_WHEN_FIRST_EXCEPTION,
    ALL_COMPLETED: pb.RETURN_WHEN_ALL_COMPLETED,
}


# --------------------------------------------------------------------------
# Errors.


class TaskwireError(Exception):
    """Base of this module's errors."""


class RemoteTaskError(TaskwireError):
    """A task failed on the server: `type` is its error type (such as
    "ValueError" or "TimeoutError"), `message` its message, `details` any
    JSON-like details it reported, `task_id` which task."""

    def __init__(self, type, message, details=None, task_id=""):
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message
        self.details = details
        self.task_id = task_id


class TaskwireRpcError(TaskwireError):
    """The server refused a call: `code` is the grpc.StatusCode (such as
    INVALID_ARGUMENT or NOT_FOUND), `message` the server's explanation."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def _rpc_error(error):
    return TaskwireRpcError(error.code(), error.details() or "")


async def _call(awaitable):
    """Awaits one RPC, turning a grpc error into TaskwireRpcError."""
    try:
        return await awaitable
    except grpc.RpcError as e:
        raise _rpc_error(e) from None


# --------------------------------------------------------------------------
# Values.


def to_value(obj):
    """A google.protobuf.Value for a JSON-like Python object."""
    value = struct_pb2.Value()
    json_format.ParseDict(obj, value)
    return value


def from_value(value):
    """The Python object a google.protobuf.Value holds (numbers as floats)."""
    return json_format.MessageToDict(value)


def _duration(seconds):
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


class TaskOptions:
    """What CreateTaskRequest takes beside kind and args: a name, labels, a
    time limit in seconds (the task fails with TimeoutError past it), an
    idempotency key."""

    def __init__(self, name="", labels=None, timeout=None, idempotency_key=""):
        self.name = name
        self.labels = dict(labels or {})
        self.timeout = timeout
        self.idempotency_key = idempotency_key

    def apply(self, request):
        request.name = self.name
        request.labels.update(self.labels)
        if self.timeout is not None:
            request.timeout.CopyFrom(_duration(self.timeout))
        request.idempotency_key = self.idempotency_key


# --------------------------------------------------------------------------
# Remote tasks.


def _outcome_error(task):
    """The exception a finished, unsuccessful task raises when awaited."""
    if task.state == _CANCELLED:
        return asyncio.CancelledError(task.error.message or "cancelled")
    details = from_value(task.error.details) if task.error.HasField("details") else None
    return RemoteTaskError(task.error.type, task.error.message, details, task.id)


class RemoteTask:
    """A task on the server, awaitable like an asyncio.Task: `await task`
    gives its result, or raises RemoteTaskError / asyncio.CancelledError.
    Awaiting it again answers from what the first await learnt."""

    def __init__(self, client, task_id=None):
        self._client = client
        self._id = client._loop.create_future()
        if task_id is not None:
            self._id.set_result(task_id)
        self._finished = None  # The final pb.Task, once known.
        self._awaiting = None  # The asyncio.Task running AwaitTask, if any.

    # The task's identity -------------------------------------------------

    @property
    def id(self):
        """The server's id; None until the create call has answered."""
        return self._id.result() if self._id.done() and not self._id.exception() else None

    async def created(self):
        """The task's id once the server has created it (raises
        TaskwireRpcError if it refused to)."""
        return await asyncio.shield(self._id)

    # asyncio.Task's questions ---------------------------------------------

    def done(self):
        """Whether this client knows the task has finished (no RPC)."""
        return self._finished is not None

    def cancelled(self):
        return self._finished is not None and self._finished.state == _CANCELLED

    def result(self):
        """The result of a finished task (asyncio.Future.result)."""
        if self._finished is None:
            raise asyncio.InvalidStateError("result is not set")
        if self._finished.state != _SUCCEEDED:
            raise _outcome_error(self._finished)
        return from_value(self._finished.result)

    def exception(self):
        """The exception a finished task raises, or None if it succeeded."""
        if self._finished is None:
            raise asyncio.InvalidStateError("exception is not set")
        return None if self._finished.state == _SUCCEEDED else _outcome_error(self._finished)

    # Awaiting ---------------------------------------------------------------

    def __await__(self):
        return self._result().__await__()

    async def _result(self):
        await self.finished()
        return self.result()

    async def finished(self):
        """The final pb.Task (in the OUTCOME view), whatever its outcome."""
        if self._finished is None:
            if self._awaiting is None:
                self._awaiting = self._client._loop.create_task(self._await_remote())
            # Shielded: cancelling one awaiter neither cancels the remote
            # task (as in the C++ client) nor the other awaiters' wait.
            await asyncio.shield(self._awaiting)
        return self._finished

    async def _await_remote(self):
        task_id = await self.created()
        try:
            response = await _call(self._client._stub.AwaitTask(
                pb.AwaitTaskRequest(id=task_id, view=_OUTCOME)))
        finally:
            self._awaiting = None
        self._learn(response.task)

    def _learn(self, task):
        if task.state in _FINAL and self._finished is None:
            self._finished = task

    # Cancelling -------------------------------------------------------------

    def cancel(self, msg=None):
        """Asks the server to cancel the task. Returns at once with an
        asyncio.Task that may be awaited for the answer: True if the task
        ended cancelled, False if it had already finished otherwise. (asyncio
        answers True/False at once; a remote answer takes a round trip.)
        Awaiters of the task then get asyncio.CancelledError."""
        return self._client._background(self._cancel_remote())

    async def _cancel_remote(self):
        task_id = await self.created()
        task = await _call(self._client._stub.CancelTask(pb.CancelTaskRequest(id=task_id)))
        self._learn(task)
        return task.state == _CANCELLED

    def __repr__(self):
        state = pb.TaskState.Name(self._finished.state) if self._finished else "unknown"
        return f"<RemoteTask id={self.id} {state}>"


# --------------------------------------------------------------------------
# The client.


class Client:
    """A connection to taskwired, used from one asyncio event loop.

    `target` is host:port (default $TASKWIRE_SERVER, else 127.0.0.1:50051);
    `channel` an existing grpc.aio channel instead. Use it as an async
    context manager, or call close()."""

    def __init__(self, target=None, *, channel=None):
        self.target = target or os.environ.get("TASKWIRE_SERVER") or DEFAULT_SERVER
        self._owns_channel = channel is None
        self._channel = channel or grpc.aio.insecure_channel(self.target)
        self._stub = pb_grpc.TaskServiceStub(self._channel)
        self._loop = asyncio.get_running_loop()
        self._batch = []  # [(request, RemoteTask)] to create in the next pass.
        self._tasks = set()  # Background asyncio tasks, kept alive here.

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        """Closes the channel (if this client opened it)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_channel:
            await self._channel.close()

    def _background(self, coro):
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # Creating ---------------------------------------------------------------

    def create_task(self, kind, args=None, /, *, options=None, **kwargs):
        """Starts a task of `kind` on the server, with `args` (a dict) and
        keyword arguments as its arguments: create_task("sleep", seconds=2).
        Returns a RemoteTask at once; the tasks created in one pass of the
        event loop go to the server in one CreateTasks call. `options` is a
        TaskOptions. If the server refuses the task, awaiting it raises
        TaskwireRpcError."""
        fields = dict(args or {}, **kwargs)
        request = pb.CreateTaskRequest(kind=kind, args=to_value(fields))
        if options is not None:
            options.apply(request)
        task = RemoteTask(self)
        if not self._batch:
            self._loop.call_soon(self._send_batch)
        self._batch.append((request, task))
        return task

    def task(self, task_id):
        """A RemoteTask for a task that exists already (by its id)."""
        return RemoteTask(self, task_id)

    def _send_batch(self):
        batch, self._batch = self._batch, []
        self._background(self._create(batch))

    async def _create(self, batch):
        try:
            if len(batch) == 1:
                # CreateTask, whose errors name the field without "tasks[0].".
                response = pb.CreateTasksResponse(tasks=[await self._stub.CreateTask(batch[0][0])])
            else:
                response = await self._stub.CreateTasks(
                    pb.CreateTasksRequest(tasks=[r for r, _ in batch], view=_OUTCOME))
        except grpc.RpcError as e:
            if len(batch) > 1 and e.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                               grpc.StatusCode.RESOURCE_EXHAUSTED):
                # The server refuses a whole batch for one bad entry; each
                # task gets its own answer instead.
                await asyncio.gather(*(self._create([entry]) for entry in batch))
                return
            for _, task in batch:
                task._id.set_exception(_rpc_error(e))
            return
        for (_, task), created in zip(batch, response.tasks):
            task._id.set_result(created.id)
            task._learn(created)

    # Waiting on many --------------------------------------------------------

    async def _ids(self, tasks):
        return list(await asyncio.gather(*(t.created() for t in tasks)))

    async def gather(self, *tasks, return_exceptions=False):
        """asyncio.gather over remote tasks, in one Gather RPC: their results
        in argument order. Without return_exceptions the first task to fail
        raises its error (the others keep running); with it, errors take
        their place in the list."""
        ids = await self._ids(tasks)
        response = await _call(self._stub.Gather(pb.GatherRequest(
            ids=ids, return_exceptions=return_exceptions, view=_OUTCOME)))
        for task, answer in zip(tasks, response.tasks):
            task._learn(answer)
        if response.first_failure_id:
            failed = next(a for a in response.tasks if a.id == response.first_failure_id)
            raise _outcome_error(failed)
        return [(from_value(t.result) if t.state == _SUCCEEDED else _outcome_error(t))
                for t in response.tasks]

    async def wait(self, tasks, *, timeout=None, return_when=ALL_COMPLETED):
        """asyncio.wait over remote tasks, in one Wait RPC: (done, pending),
        two sets of the RemoteTasks given. Cancels nothing."""
        tasks = list(tasks)
        ids = await self._ids(tasks)
        request = pb.WaitRequest(ids=ids, return_when=_RETURN_WHEN[return_when], view=_OUTCOME)
        if timeout is not None:
            request.timeout.CopyFrom(_duration(timeout))
        response = await _call(self._stub.Wait(request))
        finished = {t.id: t for t in response.done}
        done, pending = set(), set()
        for task in tasks:
            if task.id in finished:
                task._learn(finished[task.id])
                done.add(task)
            else:
                pending.add(task)
        return done, pending

    async def as_completed(self, tasks, *, timeout=None):
        """asyncio.as_completed over remote tasks, on one AsCompleted stream:
        an async iterator of the RemoteTasks given, each as it finishes
        (already finished ones first); each is done, so `await task` answers
        at once. Past the timeout raises TimeoutError (tasks keep running)."""
        tasks = list(tasks)
        by_id = {}
        for task, task_id in zip(tasks, await self._ids(tasks)):
            by_id.setdefault(task_id, []).append(task)
        request = pb.AsCompletedRequest(ids=list(by_id), view=_OUTCOME)
        if timeout is not None:
            request.timeout.CopyFrom(_duration(timeout))
        stream = self._stub.AsCompleted(request)
        try:
            async for answer in stream:
                for task in by_id.get(answer.id, []):
                    task._learn(answer)
                    yield task
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(e.details()) from None
            raise _rpc_error(e) from None
        finally:
            stream.cancel()

    async def wait_for(self, task, timeout):
        """asyncio.wait_for: the task's result, or, once `timeout` seconds
        pass, the remote task is cancelled and TimeoutError raised."""
        task_id = await task.created()
        request = pb.AwaitTaskRequest(id=task_id, wait_timeout=_duration(timeout), view=_OUTCOME)
        response = await _call(self._stub.AwaitTask(request))
        task._learn(response.task)
        if not response.done:
            await task.cancel()
            raise TimeoutError(f"task {task_id} took longer than {timeout} s; cancelled")
        return task.result()
