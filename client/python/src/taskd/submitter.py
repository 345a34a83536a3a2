"""Coalescing submits. An application submits one task at a time, from many
threads or coroutines; each call on its own pays a round trip and a durable
commit. A submitter gathers the submits made while a call is under way and
sends them together as one `SubmitTasks`; each caller gets its own task
back once it is durable, or its own error.

A `SubmitTasks` is atomic, so one bad member would fail its neighbours: when
a gathered batch is refused as a whole for a bad argument, its members are
submitted one by one instead, and each caller gets the answer its own
request deserves. A refusal of the caller rather than of a member (a token
refused or lacking the submit scope, the server shedding load) reaches
every caller of the batch as it is: `Unauthenticated`, `PermissionDenied`,
or `Overloaded` with the server's `retry_after`."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any, List, Mapping, Optional, Tuple, Union

import grpc

from taskd import errors
from taskd.models import NewTask, Task, new_task_of
from taskd.v1 import task_service_pb2

#: Longest a sender waits for the callers of its last batch to submit again.
_REJOIN = 0.001

#: Refusals of a whole batch that may come from one member alone.
_MEMBER_FAULTS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND)


class _Slot:
    """One queued submit. Its caller blocks on a plain lock that the answer
    releases: the cheapest hand-off between threads CPython has (a
    `concurrent.futures.Future` costs a condition variable and a lock
    allocation per wait, which at thousands of submits a second is most of
    the client's time)."""

    __slots__ = ("request", "done", "task", "error", "future", "next")

    def __init__(self, request: task_service_pb2.SubmitTaskRequest, future: Optional[Future] = None):
        self.request = request
        self.done = threading.Lock()
        self.done.acquire()
        self.task: Optional[Task] = None
        self.error: Optional[BaseException] = None
        self.future = future
        #: The next caller of the same batch to wake, once this one is up.
        self.next: Optional["_Slot"] = None

    def wait(self) -> Task:
        self.done.acquire()
        if self.next is not None:
            self.next.done.release()
        if self.error is not None:
            raise self.error
        return self.task


def _resolve(batch: List[_Slot], answers) -> None:
    """Gives each slot its answer (a Task or an exception) and wakes the
    callers one after another: each woken caller wakes the next. Waking
    them all at once would have them fight over the GIL, each losing
    thread costing more context switches than its whole submit."""
    waiting: List[_Slot] = []
    for slot, answer in zip(batch, answers):
        if isinstance(answer, BaseException):
            slot.error = answer
        else:
            slot.task = answer
        if slot.future is not None:
            if slot.error is not None:
                slot.future.set_exception(slot.error)
            else:
                slot.future.set_result(slot.task)
        else:
            waiting.append(slot)
    for earlier, later in zip(waiting, waiting[1:]):
        earlier.next = later
    if waiting:
        waiting[0].done.release()


def _request(task: NewTask) -> task_service_pb2.SubmitTaskRequest:
    if task.ref:
        raise ValueError("ref names a member of an explicit batch; use Client.submit_many for a DAG")
    return task.to_proto()


class BufferedSubmitter:
    """Coalesces the submits of many threads into `SubmitTasks` calls.

    `submit` blocks like `Client.submit` and returns the task once it is
    durable. Up to `max_in_flight` batches are under way at once (one
    sender thread each), each of up to `max_batch` tasks; a batch goes out
    as soon as a sender is free, after waiting up to `linger` seconds for
    company (0: no waiting; concurrency alone fills batches).

    One batch in flight is the default, and the fastest: a gRPC call costs
    a Python client about 250 µs of CPU whatever it carries, so fewer,
    fuller batches beat more, emptier ones."""

    def __init__(self, client, *, max_batch: int = 500, linger: float = 0.0, max_in_flight: int = 1):
        if not 1 <= max_batch <= 1000:
            raise ValueError("max_batch must be between 1 and 1000 (the server's batch limit)")
        self._client = client
        self._max_batch = max_batch
        self._linger = linger
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)
        self._pending: List[_Slot] = []
        #: The queue length at which a waiting sender wants waking.
        self._wake_at = 1
        self._closed = False
        self._senders = [
            threading.Thread(target=self._send_forever, name=f"taskd-submitter-{index}", daemon=True)
            for index in range(max(1, max_in_flight))
        ]
        for sender in self._senders:
            sender.start()

    def submit(self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields) -> Task:
        """Submits one task; returns it once durable. Raises what
        `Client.submit` would."""
        return self._queue(task, params, fields, None).wait()

    def submit_future(
        self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields
    ) -> "Future[Task]":
        """Queues one task; the future resolves to it once durable."""
        future: Future = Future()
        self._queue(task, params, fields, future)
        return future

    def _queue(self, task, params, fields, future: Optional[Future]) -> _Slot:
        slot = _Slot(_request(new_task_of(task, params, fields)), future)
        with self._lock:
            if self._closed:
                raise RuntimeError("the submitter is closed")
            self._pending.append(slot)
            # Wake a sender only when it has something to do: every wake
            # is a thread switch, and a switch per submit would double the
            # client's cost.
            if len(self._pending) == self._wake_at:
                self._queued.notify()
        return slot

    def close(self) -> None:
        """Sends what is queued, waits for the answers, and stops."""
        with self._lock:
            self._closed = True
            self._queued.notify_all()
        for sender in self._senders:
            sender.join()

    def __enter__(self) -> "BufferedSubmitter":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _send_forever(self) -> None:
        released = 0
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._queued.wait()
                if not self._pending:
                    return  # closed and drained
                # The callers the last batch released usually submit again
                # at once: give them until the pending batch is as large as
                # the last (at most `_REJOIN`), or a batch goes out with
                # half of them, and the other half waits a whole round trip.
                wanted = min(max(released, 1), self._max_batch)
                deadline = None
                while len(self._pending) < wanted and not self._closed:
                    now = time.monotonic()
                    deadline = deadline or now + max(self._linger, _REJOIN)
                    if now >= deadline:
                        break
                    self._wake_at = wanted
                    self._queued.wait(deadline - now)
                self._wake_at = 1
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                if self._pending:
                    # More than one batch's worth: wake another sender.
                    self._queued.notify()
            self._send(batch)
            released = len(batch)

    def _send(self, batch: List[_Slot]) -> None:
        request = task_service_pb2.SubmitTasksRequest(tasks=[slot.request for slot in batch])
        try:
            response = self._client._submit_batch_proto(request)
        except grpc.RpcError as error:
            if error.code() in _MEMBER_FAULTS and len(batch) > 1:
                self._submit_singly(batch)
                return
            failure: BaseException = errors.from_rpc_error(error)
            _resolve(batch, [failure] * len(batch))
            return
        except Exception as error:  # the channel is closed, say
            _resolve(batch, [error] * len(batch))
            return
        _resolve(batch, [Task(task) for task in response.tasks])

    def _submit_singly(self, batch: List[_Slot]) -> None:
        answers: List[Any] = []
        for slot in batch:
            try:
                answers.append(Task(self._client._submit_proto(slot.request)))
            except grpc.RpcError as error:
                answers.append(errors.from_rpc_error(error))
            except Exception as error:
                answers.append(error)
        _resolve(batch, answers)


class AsyncSubmitter:
    """Coalesces the submits of many coroutines of one event loop: every
    submit made while a batch is under way goes out in the next one, after
    waiting up to `linger` seconds for company (0: no waiting)."""

    def __init__(self, client, *, max_batch: int = 500, linger: float = 0.0, max_in_flight: int = 1):
        if not 1 <= max_batch <= 1000:
            raise ValueError("max_batch must be between 1 and 1000 (the server's batch limit)")
        self._client = client
        self._max_batch = max_batch
        self._linger = linger
        self._slots = asyncio.Semaphore(max(1, max_in_flight))
        self._pending: List[Tuple[task_service_pb2.SubmitTaskRequest, asyncio.Future]] = []
        self._flushing = False

    async def submit(self, task: NewTask) -> Task:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((_request(task), future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                await self._slots.acquire()
                if self._linger > 0 and len(self._pending) < self._max_batch:
                    await asyncio.sleep(self._linger)
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                asyncio.get_running_loop().create_task(self._send(batch))
        finally:
            self._flushing = False

    async def _send(self, batch) -> None:
        try:
            request = task_service_pb2.SubmitTasksRequest(tasks=[request for request, _ in batch])
            try:
                response = await self._client._submit_batch_proto(request)
            except grpc.RpcError as error:
                if error.code() in _MEMBER_FAULTS and len(batch) > 1:
                    for request, future in batch:
                        try:
                            future.set_result(Task(await self._client._submit_proto(request)))
                        except grpc.RpcError as single:
                            future.set_exception(errors.from_rpc_error(single))
                    return
                failure = errors.from_rpc_error(error)
                for _, future in batch:
                    future.set_exception(failure)
                return
            for (_, future), task in zip(batch, response.tasks):
                future.set_result(Task(task))
        except Exception as error:  # whatever went wrong, no caller waits forever
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
        finally:
            self._slots.release()
