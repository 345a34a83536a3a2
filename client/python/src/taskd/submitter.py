"""Coalescing submits. An application submits one task at a time, from many
threads or coroutines; each call on its own pays a round trip and a durable
commit. A submitter gathers the submits made while a call is under way and
sends them together as one `SubmitTasks`; each caller gets its own task
back once it is durable, or its own error.

A `SubmitTasks` is atomic, so one bad member would fail its neighbours: when
a gathered batch is refused as a whole for a bad argument, its members are
submitted one by one instead, and each caller gets the answer its own
request deserves."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, List, Mapping, Optional, Tuple, Union

import grpc

from taskd import errors
from taskd.models import NewTask, Task
from taskd.v1 import task_service_pb2

#: Refusals of a whole batch that may come from one member alone.
_MEMBER_FAULTS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND)


def _request(task: NewTask) -> task_service_pb2.SubmitTaskRequest:
    if task.ref:
        raise ValueError("ref names a member of an explicit batch; use Client.submit_many for a DAG")
    return task.to_proto()


class BufferedSubmitter:
    """Coalesces the submits of many threads into `SubmitTasks` calls.

    `submit` blocks like `Client.submit` and returns the task once it is
    durable. Up to `max_in_flight` batches are under way at once, each of up
    to `max_batch` tasks; a batch goes out as soon as a slot is free, after
    waiting up to `linger` seconds for company (0: no waiting; concurrency
    alone fills batches)."""

    def __init__(self, client, *, max_batch: int = 500, linger: float = 0.0, max_in_flight: int = 2):
        if not 1 <= max_batch <= 1000:
            raise ValueError("max_batch must be between 1 and 1000 (the server's batch limit)")
        self._client = client
        self._max_batch = max_batch
        self._linger = linger
        self._max_in_flight = max(1, max_in_flight)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: List[Tuple[task_service_pb2.SubmitTaskRequest, Future]] = []
        self._in_flight = 0
        self._closed = False
        self._singly = ThreadPoolExecutor(max_workers=4, thread_name_prefix="taskd-submit-singly")
        self._flusher = threading.Thread(target=self._flush_forever, name="taskd-submitter", daemon=True)
        self._flusher.start()

    def submit(self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields) -> Task:
        """Submits one task; returns it once durable. Raises what
        `Client.submit` would."""
        return self.submit_future(task, params, **fields).result()

    def submit_future(
        self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields
    ) -> "Future[Task]":
        """Queues one task; the future resolves to it once durable."""
        from taskd.client import _new_task

        request = _request(_new_task(task, params, fields))
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the submitter is closed")
            self._pending.append((request, future))
            self._changed.notify()
        return future

    def close(self) -> None:
        """Sends what is queued, waits for the answers, and stops."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        self._flusher.join()
        with self._lock:
            while self._in_flight:
                self._changed.wait()
        self._singly.shutdown(wait=True)

    def __enter__(self) -> "BufferedSubmitter":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _flush_forever(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (not self._pending or self._in_flight >= self._max_in_flight):
                    self._changed.wait()
                if not self._pending:
                    return  # closed and drained
                if self._linger and len(self._pending) < self._max_batch and not self._closed:
                    self._changed.wait(self._linger)
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._in_flight += 1
            request = task_service_pb2.SubmitTasksRequest(tasks=[request for request, _ in batch])
            try:
                call = self._client._submit_batch_proto(request)
            except Exception as error:  # the channel is closed, say
                self._answer_failure(batch, error)
                continue
            call.add_done_callback(lambda done, batch=batch: self._answer(batch, done))

    def _answer(self, batch, call) -> None:
        try:
            response = call.result()
        except grpc.RpcError as error:
            if error.code() in _MEMBER_FAULTS and len(batch) > 1:
                self._singly.submit(self._submit_singly, batch)
                return
            self._answer_failure(batch, errors.from_rpc_error(error))
            return
        except Exception as error:
            self._answer_failure(batch, error)
            return
        for (_, future), task in zip(batch, response.tasks):
            future.set_result(Task(task))
        self._batch_done()

    def _submit_singly(self, batch) -> None:
        for request, future in batch:
            try:
                future.set_result(Task(self._client._submit_proto(request)))
            except grpc.RpcError as error:
                future.set_exception(errors.from_rpc_error(error))
            except Exception as error:
                future.set_exception(error)
        self._batch_done()

    def _answer_failure(self, batch, error: BaseException) -> None:
        for _, future in batch:
            future.set_exception(error)
        self._batch_done()

    def _batch_done(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._changed.notify_all()


class AsyncSubmitter:
    """Coalesces the submits of many coroutines of one event loop: every
    submit made while a batch is under way goes out in the next one."""

    def __init__(self, client, *, max_batch: int = 500, max_in_flight: int = 2):
        self._client = client
        self._max_batch = max_batch
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
        finally:
            self._slots.release()
