"""Runs task types in this Python program for taskd: a worker.

    import taskd

    worker = taskd.Worker("127.0.0.1:50051", capacity=8)

    @worker.task("document_processing")
    def process(task: taskd.TaskRun):
        for index, chunk in enumerate(split(task.params["path"])):
            if task.cancelled:
                return None          # what a cancelled task returns does not count
            index_chunk(chunk)
            task.progress(100 * (index + 1) / total, f"chunk {index + 1}")
        return {"chunks": total}

    @worker.task("response_quality_evaluation")
    async def evaluate(task: taskd.TaskRun):
        ...                           # asyncio: cancellation arrives as CancelledError

    worker.run()                      # until SIGTERM or SIGINT, then drains

Plain functions run in a thread pool as wide as the capacity; coroutine
functions run on the worker's event loop. The worker takes tasks as they
become ready, never more than its capacity, renews their leases while the
handlers run, reports outcomes, and stops a handler whose task was cancelled
or ran out of time. On SIGTERM (or `stop()`) it drains: no new tasks, the
running ones get `drain_timeout` seconds to finish, and what still runs then
is handed back for another worker, without using a retry.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Tuple

import grpc

from taskd import __version__, _channel, _json, errors
from taskd._channel import PathLike
from taskd.models import Task
from taskd.v1 import worker_service_pb2 as pb
from taskd.v1 import worker_service_pb2_grpc

log = logging.getLogger("taskd.worker")


def _log_somewhere() -> None:
    """Lets a worker say what it does when the program configured no
    logging: one line each on stderr for connecting, serving, losing the
    connection and stopping. A program that configured logging decides."""
    package = logging.getLogger("taskd")
    if logging.getLogger().handlers or package.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("taskd worker: %(message)s"))
    package.addHandler(handler)
    if package.level == logging.NOTSET:
        package.setLevel(logging.INFO)


class TaskFailure(Exception):
    """Raise from a handler to fail the attempt with this message. It is
    retried per the task's policy unless `permanent`."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class PermanentFailure(TaskFailure):
    """A failure every attempt would repeat (bad params, say): the task
    fails now, retries left or not."""

    def __init__(self, message: str):
        super().__init__(message, permanent=True)


class TaskRun:
    """One attempt of one task, as a handler gets it."""

    def __init__(self, task: Task, lease: pb.Lease, worker: "Worker"):
        self.task = task
        self.lease = lease
        self._worker = worker
        self._cancelled = threading.Event()

    @property
    def id(self) -> str:
        return self.task.id

    @property
    def task_type(self) -> str:
        return self.task.task_type

    @property
    def attempt(self) -> int:
        """1 for the first attempt."""
        return self.lease.attempt

    @property
    def params(self) -> dict:
        return self.task.params

    @property
    def cancelled(self) -> bool:
        """Whether the task was cancelled, ran out of time or lost its
        lease: the handler should stop; what it returns no longer counts."""
        return self._cancelled.is_set()

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Blocks until cancelled (True) or `timeout` passes (False)."""
        return self._cancelled.wait(timeout)

    def progress(self, percent: float, message: str = "") -> None:
        """Reports progress, seen by watchers and the dashboard. Safe from
        any thread; reports faster than taskd writes them coalesce."""
        report = pb.ProgressReport(lease=self.lease, percent=float(percent), message=message)
        self._worker._send_threadsafe(pb.WorkRequest(progress=report))

    def __repr__(self) -> str:
        return f"TaskRun(id={self.id!r}, task_type={self.task_type!r}, attempt={self.attempt})"


Handler = Callable[[TaskRun], Any]


class _Running:
    __slots__ = ("run", "future", "reported", "timed_out")

    def __init__(self, run: TaskRun, future: "asyncio.Future[Any]"):
        self.run = run
        self.future = future
        self.reported = False
        self.timed_out = False


class _Drained(Exception):
    pass


#: The statuses that refuse the worker itself (a bad hello, a missing or
#: insufficient token, a server without the worker service): reconnecting
#: would only repeat them, so the worker stops. Every other status ends the
#: stream, not the worker: it reconnects after a backoff, as
#: worker_service.proto states. ALREADY_EXISTS among them: the worker id is
#: often held by this worker's own old stream, not yet seen to end.
_STOPS_THE_WORKER = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED,
)


class Worker:
    """Serves task types for taskd. See the module docs.

    `address`, `token`, `ca_file`, `client_cert_file` and `client_key_file`
    mean what they mean for `Client` (environment defaults included); on a
    server with authentication the token needs the `worker` scope. A
    refused token is not retried: `run` raises `Unauthenticated` or
    `PermissionDenied`."""

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        worker_id: str = "",
        capacity: int = 1,
        labels: Optional[Dict[str, str]] = None,
        drain_timeout: float = 30.0,
        cancel_grace: float = 5.0,
        token: Optional[str] = None,
        ca_file: Optional[PathLike] = None,
        client_cert_file: Optional[PathLike] = None,
        client_key_file: Optional[PathLike] = None,
    ):
        # Resolved (and the files read) now, so that a bad path fails here
        # rather than in `run`; the channel itself belongs to run's loop.
        self._settings = _channel.resolve(
            address, token=token, ca_file=ca_file, client_cert_file=client_cert_file, client_key_file=client_key_file
        )
        self.address = self._settings.target
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.capacity = capacity
        self.labels = {
            "sdk": f"python/{__version__}",
            "host": socket.gethostname(),
            "pid": str(os.getpid()),
            **(labels or {}),
        }
        self.drain_timeout = drain_timeout
        self.cancel_grace = cancel_grace
        #: This run's token: a reconnect with it replaces the old stream.
        self._instance = uuid.uuid4().hex
        self._welcomed = False
        self._handlers: Dict[str, Handler] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._outgoing: Optional[asyncio.Queue] = None
        self._stop: Optional[asyncio.Event] = None
        self._stop_requested = False

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs.
        return f"Worker({self.address!r}, worker_id={self.worker_id!r}, tls={self._settings.tls})"

    def task(self, task_type: str) -> Callable[[Handler], Handler]:
        """Registers the decorated function as the handler of `task_type`."""

        def register(handler: Handler) -> Handler:
            self.handle(task_type, handler)
            return handler

        return register

    def handle(self, task_type: str, handler: Handler) -> None:
        """Runs tasks of `task_type` with `handler`: a function or a
        coroutine function taking a `TaskRun` and returning a JSON value."""
        self._handlers[task_type] = handler

    def stop(self) -> None:
        """Asks the worker to drain and return from `run`; safe from any
        thread or a signal handler."""
        self._stop_requested = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    def run(self, *, handle_signals: bool = True) -> None:
        """Serves until SIGTERM or SIGINT (or `stop()`), then drains."""
        asyncio.run(self.run_async(handle_signals=handle_signals))

    async def run_async(self, *, handle_signals: bool = False) -> None:
        """`run`, on the running event loop."""
        if not self._handlers:
            raise ValueError("register at least one handler first")
        _log_somewhere()
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self._stop.set)
        # The server checks the capacity (and names the field when it refuses it).
        pool = ThreadPoolExecutor(max_workers=max(1, self.capacity), thread_name_prefix="taskd-handler")
        delay = 0.1
        log.info(
            "%s connecting to %s to serve %s (capacity %d)",
            self.worker_id,
            self.address,
            ", ".join(sorted(self._handlers)),
            self.capacity,
        )
        try:
            async with _channel.aio_channel(self._settings) as channel:
                stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
                while True:
                    self._welcomed = False
                    try:
                        await self._session(stub, pool)
                    except grpc.RpcError as error:
                        if error.code() in _STOPS_THE_WORKER:
                            log.error("refused by taskd: %s", error.details())
                            raise errors.from_rpc_error(error) from None
                        if self._welcomed:
                            delay = 0.1
                        log.warning(
                            "connection to taskd at %s lost (%s: %s); reconnecting in %.1f s",
                            self.address,
                            error.code().name,
                            error.details(),
                            delay,
                        )
                    except _Drained:
                        delay = 0.1
                        log.info("taskd asked this worker to drain (it is stopping); reconnecting")
                    if self._stop.is_set():
                        log.info("%s stopped", self.worker_id)
                        return
                    try:
                        await asyncio.wait_for(self._stop.wait(), delay)
                        log.info("%s stopped", self.worker_id)
                        return
                    except asyncio.TimeoutError:
                        delay = min(delay * 2, 5.0)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    self._loop.remove_signal_handler(signum)

    def _send_threadsafe(self, request: pb.WorkRequest) -> None:
        loop, outgoing = self._loop, self._outgoing
        if loop is None or outgoing is None:
            return
        try:
            loop.call_soon_threadsafe(outgoing.put_nowait, request)
        except RuntimeError:
            pass  # the loop is closed: the worker is gone

    async def _session(self, stub, pool: ThreadPoolExecutor) -> None:
        """One connection, from hello until drained (returns) or lost
        (raises)."""
        hello = pb.WorkerHello(
            worker_id=self.worker_id,
            task_types=sorted(self._handlers),
            capacity=self.capacity,
            labels=self.labels,
            instance=self._instance,
        )
        call = stub.Work()
        outgoing: asyncio.Queue = asyncio.Queue()
        self._outgoing = outgoing
        await call.write(pb.WorkRequest(hello=hello))
        first = await call.read()
        if first is grpc.aio.EOF or first.WhichOneof("message") != "welcome":
            await call.code()  # raises the server's refusal, if there was one
            raise errors.Unavailable("taskd did not welcome the worker")
        self._welcomed = True
        renew_every = first.welcome.renew_interval.seconds + first.welcome.renew_interval.nanos / 1e9
        log.info(
            "%s connected to %s, serving %s",
            first.welcome.worker_id,
            self.address,
            ", ".join(sorted(self._handlers)),
        )

        running: Dict[str, _Running] = {}
        done: List[Tuple[pb.Lease, pb.AttemptResult]] = []
        done_ready = asyncio.Event()
        state = {"drain_sent": False, "drained": False, "server_drained": False, "deadline": None}

        def finished(entry: _Running, result: pb.AttemptResult) -> None:
            done.append((entry.run.lease, result))
            done_ready.set()

        async def write_forever() -> None:
            while True:
                request = await outgoing.get()
                await call.write(request)

        async def flush_finishes() -> None:
            while True:
                await done_ready.wait()
                done_ready.clear()
                batch = done[:]
                del done[:]
                for lease, _ in batch:
                    entry = running.get(lease.task_id)
                    if entry is not None:
                        entry.reported = True
                outgoing.put_nowait(pb.WorkRequest(finish=pb.FinishAttempts(results=[result for _, result in batch])))

        async def renew_forever() -> None:
            while True:
                await asyncio.sleep(max(renew_every, 0.1))
                leases = [entry.run.lease for entry in running.values() if not entry.reported]
                if leases:
                    outgoing.put_nowait(pb.WorkRequest(renew=pb.RenewLeasesRequest(leases=leases)))

        async def drain_when_asked() -> None:
            await self._stop.wait()
            if not state["drain_sent"]:
                state["drain_sent"] = True
                state["deadline"] = time.monotonic() + self.drain_timeout
                log.info(
                    "draining: no new tasks; %d running get %.0f s to finish",
                    len(running),
                    self.drain_timeout,
                )
                outgoing.put_nowait(pb.WorkRequest(drain=pb.Drain()))
            await hand_back_at_deadline()

        async def hand_back_at_deadline() -> None:
            await asyncio.sleep(max(0.0, state["deadline"] - time.monotonic()))
            results = []
            for entry in running.values():
                if entry.reported:
                    continue
                entry.reported = True
                entry.run._cancelled.set()
                entry.future.cancel()
                results.append(
                    pb.AttemptResult(lease=entry.run.lease, released="the worker stopped before the task finished")
                )
            if results:
                outgoing.put_nowait(pb.WorkRequest(finish=pb.FinishAttempts(results=results)))

        helpers = [
            asyncio.ensure_future(write_forever()),
            asyncio.ensure_future(flush_finishes()),
            asyncio.ensure_future(renew_forever()),
            asyncio.ensure_future(drain_when_asked()),
        ]
        try:
            while True:
                if state["drained"] and not running:
                    await call.done_writing()
                    if state["server_drained"] and not self._stop.is_set():
                        raise _Drained()
                    return
                response = await call.read()
                if response is grpc.aio.EOF:
                    await call.code()
                    raise errors.Unavailable("taskd closed the worker's stream")
                kind = response.WhichOneof("message")
                if kind == "tasks":
                    for assigned in response.tasks.tasks:
                        run = TaskRun(Task(assigned.task), assigned.lease, self)
                        entry = self._start(run, pool, finished)
                        running[run.id] = entry
                elif kind == "finished":
                    for outcome in response.finished.outcomes:
                        running.pop(outcome.task_id, None)
                        if outcome.HasField("refusal"):
                            log.info("outcome of task %s not recorded: %s", outcome.task_id, outcome.refusal.message)
                elif kind == "revoked":
                    entry = running.get(response.revoked.lease.task_id)
                    if entry is not None:
                        log.info("task %s: %s; stopping its handler", entry.run.id, response.revoked.reason)
                        self._cancel(entry)
                elif kind == "renewed":
                    for outcome in response.renewed.outcomes:
                        entry = running.get(outcome.task_id)
                        if entry is not None and outcome.HasField("refusal"):
                            self._cancel(entry)
                elif kind == "drained":
                    state["drained"] = True
                    if not state["drain_sent"]:
                        # The server is stopping: finish what is held.
                        state["server_drained"] = True
                        state["drain_sent"] = True
                        state["deadline"] = time.monotonic() + self.drain_timeout
                        helpers.append(asyncio.ensure_future(hand_back_at_deadline()))
        finally:
            for helper in helpers:
                helper.cancel()
            for entry in running.values():
                # Their leases went with the connection.
                entry.run._cancelled.set()
                entry.future.cancel()
            self._outgoing = None

    def _start(self, run: TaskRun, pool: ThreadPoolExecutor, finished) -> _Running:
        handler = self._handlers.get(run.task_type)
        loop = asyncio.get_running_loop()
        timeout = run.task.timeout
        started = run.task.started_at
        left = timeout - (time.time() - started.timestamp()) if started is not None else timeout
        if handler is None:
            future = loop.create_future()
            future.set_exception(PermanentFailure(f"this worker has no handler for {run.task_type}"))
        elif inspect.iscoroutinefunction(handler):
            future = asyncio.ensure_future(handler(run))
        else:
            future = loop.run_in_executor(pool, handler, run)
        entry = _Running(run, future)
        timer = loop.call_later(max(left, 0.0), self._time_out, entry)

        def report(done: "asyncio.Future[Any]") -> None:
            if timer is not None:
                timer.cancel()
            if entry.reported:
                return
            finished(entry, self._result_of(entry, done))

        future.add_done_callback(report)
        return entry

    def _time_out(self, entry: _Running) -> None:
        """The attempt ran out of time: its lease ends with it. The handler
        is told as for a revoke, and given the same cancel grace."""
        entry.timed_out = True
        self._cancel(entry)

    def _cancel(self, entry: _Running) -> None:
        """Tells the handler its lease no longer counts, and gives it
        `cancel_grace` seconds to return before it is no longer waited for
        (a coroutine is cancelled; a thread runs on, its result ignored)."""
        entry.run._cancelled.set()
        asyncio.get_running_loop().call_later(self.cancel_grace, self._give_up, entry)

    @staticmethod
    def _give_up(entry: _Running) -> None:
        if not entry.future.done():
            entry.future.cancel()

    def _result_of(self, entry: _Running, done: "asyncio.Future[Any]") -> pb.AttemptResult:
        lease = entry.run.lease
        if entry.timed_out:
            return pb.AttemptResult(
                lease=lease, failure=pb.AttemptFailure(message=f"timed out after {entry.run.task.timeout:g}s")
            )
        if done.cancelled():
            return pb.AttemptResult(lease=lease, failure=pb.AttemptFailure(message="stopped: the task was cancelled"))
        error = done.exception()
        if error is None:
            try:
                value = _json.to_value(done.result())
            except (TypeError, ValueError) as bad:
                return pb.AttemptResult(
                    lease=lease,
                    failure=pb.AttemptFailure(message=f"the handler's result is not JSON: {bad}", permanent=True),
                )
            return pb.AttemptResult(lease=lease, result=value)
        if isinstance(error, TaskFailure):
            failure = pb.AttemptFailure(message=error.message, permanent=error.permanent)
        else:
            failure = pb.AttemptFailure(message=f"{type(error).__name__}: {error}")
        return pb.AttemptResult(lease=lease, failure=failure)
