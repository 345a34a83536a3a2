"""Clients of taskd's TaskService: `Client` for threads, `AsyncClient` for
asyncio. Both speak gRPC to the server's one port."""

from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import grpc

from taskd import _channel, errors
from taskd._channel import CHANNEL_OPTIONS, PathLike, target_of  # noqa: F401 (re-exported)
from taskd.models import (
    NewTask,
    Task,
    TaskEvent,
    TaskPriority,
    TaskStats,
    TaskStatus,
    TaskTypeInfo,
    Schedule,
    WorkerInfo,
    _utc,
    new_task_of,
    schedule_definition,
)
from taskd.submitter import AsyncSubmitter, BufferedSubmitter
from taskd.v1 import (
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    task_service_pb2,
    task_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)

StatusFilter = Union[None, TaskStatus, str, Iterable[Union[TaskStatus, str]]]
TypeFilter = Union[None, str, Iterable[str]]

@dataclass(frozen=True)
class TaskPage:
    tasks: List[Task]
    #: Pass as `page_token` for the next page; empty on the last.
    next_page_token: str


def _statuses(statuses: StatusFilter) -> List[int]:
    if statuses is None:
        return []
    if isinstance(statuses, (TaskStatus, str)):
        statuses = [statuses]
    return [int(TaskStatus[status.upper()]) if isinstance(status, str) else int(status) for status in statuses]


def _types(task_types: TypeFilter) -> List[str]:
    if task_types is None:
        return []
    if isinstance(task_types, str):
        return [task_types]
    return list(task_types)


def _batch(tasks: Sequence[NewTask]) -> task_service_pb2.SubmitTasksRequest:
    refs = {task.ref for task in tasks if task.ref}
    return task_service_pb2.SubmitTasksRequest(tasks=[task.to_proto(refs) for task in tasks])


def _run_request(
    task: Union[str, NewTask], params: Optional[Mapping[str, Any]], fields: dict, wait: float
) -> task_service_pb2.RunTaskRequest:
    if not 0 < wait <= 3600:
        raise ValueError("wait: more than 0 and at most 3600 seconds")
    request = task_service_pb2.RunTaskRequest(task=new_task_of(task, params, fields).to_proto())
    request.wait.FromTimedelta(_dt.timedelta(seconds=wait))
    return request


def _run_timeout(wait: float, timeout: Optional[float]) -> float:
    """A RunTask call's deadline: the wait, and the client's usual time for
    a call on top (the server answers when the wait passes)."""
    return wait + (timeout if timeout is not None else 10.0)


def _list_request(
    status: StatusFilter,
    task_type: TypeFilter,
    priority: Union[None, TaskPriority, Iterable[TaskPriority]],
    labels: Optional[Mapping[str, str]],
    created_after: Optional[_dt.datetime],
    created_before: Optional[_dt.datetime],
    page_size: int,
    page_token: str,
    name_contains: str = "",
    depends_on: Union[None, str, Task] = None,
) -> task_service_pb2.ListTasksRequest:
    request = task_service_pb2.ListTasksRequest(
        statuses=_statuses(status),
        task_types=_types(task_type),
        page_size=page_size,
        page_token=page_token,
        name_contains=name_contains,
        depends_on=depends_on.id if isinstance(depends_on, Task) else (depends_on or ""),
    )
    if priority is not None:
        priorities = [priority] if isinstance(priority, TaskPriority) else list(priority)
        request.priorities.extend(int(p) for p in priorities)
    for key, value in (labels or {}).items():
        request.labels[key] = value
    if created_after is not None:
        request.created_after.FromDatetime(_utc(created_after))
    if created_before is not None:
        request.created_before.FromDatetime(_utc(created_before))
    return request


def _watch_request(
    status: StatusFilter, task_type: TypeFilter, labels: Optional[Mapping[str, str]]
) -> task_service_pb2.WatchTasksRequest:
    request = task_service_pb2.WatchTasksRequest(statuses=_statuses(status), task_types=_types(task_type))
    for key, value in (labels or {}).items():
        request.labels[key] = value
    return request


class Watch:
    """Events of a watch stream, as an iterator. Close it (or use it as a
    context manager) to stop watching early."""

    def __init__(self, call):
        self._call = call

    def __iter__(self) -> Iterator[TaskEvent]:
        return self

    def __next__(self) -> TaskEvent:
        try:
            return TaskEvent(next(self._call))
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise errors.from_rpc_error(error) from None

    def close(self) -> None:
        self._call.cancel()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


class Client:
    """A connection to taskd, safe to share between threads.

    >>> client = Client("127.0.0.1:50051")
    >>> task = client.submit("report_generation", {"since": "1h"})
    >>> client.wait(task.id).status
    <TaskStatus.COMPLETED: 4>

    A server with authentication wants a token, one behind TLS an
    `https://` address (and the CA that signed its certificate, unless the
    system trusts it); mutual TLS adds a client certificate:

    >>> client = Client("https://taskd.internal:50051", token=token, ca_file="ca.pem")
    """

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        timeout: Optional[float] = None,
        token: Optional[str] = None,
        ca_file: Optional[PathLike] = None,
        client_cert_file: Optional[PathLike] = None,
        client_key_file: Optional[PathLike] = None,
    ):
        """`address` is `host:port`, `http://host:port` (plaintext) or
        `https://host:port` (TLS). `timeout` bounds every call (seconds);
        None waits as long as it takes.

        `token` is sent as `authorization: Bearer <token>` on every call.
        `ca_file` (PEM) verifies the server's certificate instead of the
        system's roots; `client_cert_file` and `client_key_file` (PEM) are
        this client's identity for mutual TLS. Any TLS file means TLS. Each
        left None defaults from TASKD_TOKEN, TASKD_CA_FILE,
        TASKD_CLIENT_CERT and TASKD_CLIENT_KEY."""
        self._settings = _channel.resolve(
            address, token=token, ca_file=ca_file, client_cert_file=client_cert_file, client_key_file=client_key_file
        )
        self.address = self._settings.target
        self.timeout = timeout
        self._channel = _channel.sync_channel(self._settings)
        self._tasks = task_service_pb2_grpc.TaskServiceStub(self._channel)
        self._workers = worker_service_pb2_grpc.WorkerServiceStub(self._channel)
        self._schedules = schedule_service_pb2_grpc.ScheduleServiceStub(self._channel)
        self._submitter: Optional[BufferedSubmitter] = None
        self._submitter_lock = threading.Lock()

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs.
        return f"{type(self).__name__}({self.address!r}, tls={self._settings.tls})"

    def close(self) -> None:
        """Sends what `submit_buffered` has queued, then closes the channel."""
        with self._submitter_lock:
            submitter, self._submitter = self._submitter, None
        if submitter is not None:
            submitter.close()
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None

    def submit(self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields) -> Task:
        """Submits one task; it is durable when this returns.

        `task` is a task type (with `params` and any field of `NewTask` as
        keywords) or a `NewTask`."""
        request = new_task_of(task, params, fields).to_proto()
        return Task(self._call(self._tasks.SubmitTask, request), self)

    def run(
        self,
        task: Union[str, NewTask],
        params: Optional[Mapping[str, Any]] = None,
        *,
        wait: float = 60.0,
        **fields,
    ) -> Task:
        """Submits one task and returns it once it has ended (its `result`,
        or its `error`), in one call; after `wait` seconds (at most 3600) it
        returns the task as it is. Takes what `submit` takes."""
        request = _run_request(task, params, fields, wait)
        try:
            return Task(self._tasks.RunTask(request, timeout=_run_timeout(wait, self.timeout)), self)
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None

    def wait_for(self, task: Task, timeout: Optional[float] = None) -> Task:
        """`task` once it has ended: itself when it had, else `wait`."""
        if task.status.is_terminal:
            return task
        return self.wait(task.id, timeout)

    def submit_many(self, tasks: Sequence[NewTask]) -> List[Task]:
        """Submits tasks atomically, all or none, in one call. Members may
        depend on each other by `ref`: a whole DAG in one request."""
        response = self._call(self._tasks.SubmitTasks, _batch(tasks))
        return [Task(task) for task in response.tasks]

    def get(self, task_id: str) -> Task:
        return Task(self._call(self._tasks.GetTask, task_service_pb2.GetTaskRequest(task_id=task_id)), self)

    def list(
        self,
        status: StatusFilter = None,
        task_type: TypeFilter = None,
        *,
        priority=None,
        labels: Optional[Mapping[str, str]] = None,
        created_after: Optional[_dt.datetime] = None,
        created_before: Optional[_dt.datetime] = None,
        name_contains: str = "",
        depends_on: Union[None, str, Task] = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> TaskPage:
        """One page of tasks, newest first. `name_contains` matches part of a
        name, ignoring case; `depends_on` keeps the direct dependents of a
        task (an id or a Task)."""
        request = _list_request(
            status, task_type, priority, labels, created_after, created_before, page_size, page_token,
            name_contains, depends_on,
        )
        response = self._call(self._tasks.ListTasks, request)
        return TaskPage([Task(task) for task in response.tasks], response.next_page_token)

    def iter_tasks(self, status: StatusFilter = None, task_type: TypeFilter = None, **filters) -> Iterator[Task]:
        """Every matching task, newest first, a page at a time."""
        token = ""
        while True:
            page = self.list(status, task_type, page_token=token, **filters)
            yield from page.tasks
            if not page.next_page_token:
                return
            token = page.next_page_token

    def cancel(self, task_id: str, reason: str = "") -> Task:
        request = task_service_pb2.CancelTaskRequest(task_id=task_id, reason=reason)
        return Task(self._call(self._tasks.CancelTask, request))

    def stats(self) -> TaskStats:
        return TaskStats.from_proto(self._call(self._tasks.GetTaskStats, task_service_pb2.GetTaskStatsRequest()))

    def task_types(self) -> List[TaskTypeInfo]:
        response = self._call(self._tasks.ListTaskTypes, task_service_pb2.ListTaskTypesRequest())
        return [TaskTypeInfo(info.task_type, info.handler_available, info.workers) for info in response.task_types]

    def delete_task_type(self, task_type: str) -> None:
        """Forgets a task type workers declared (needs scope admin)."""
        self._call(self._tasks.DeleteTaskType, task_service_pb2.DeleteTaskTypeRequest(task_type=task_type))

    def workers(self) -> List[WorkerInfo]:
        response = self._call(self._workers.ListWorkers, worker_service_pb2.ListWorkersRequest())
        return [WorkerInfo.from_proto(worker) for worker in response.workers]

    def create_schedule(self, name: str, task_type: str, **definition) -> Schedule:
        """Creates a schedule submitting `task_type` on a clock: `cron=`
        (with `time_zone=`) or `every=` seconds; `params`, `priority`,
        `labels`, `overlap` ("skip", "buffer_one", "allow_all",
        "cancel_running"), `catch_up_window`, `latest_only`, `jitter`;
        the template's `max_retries`, `timeout`, `retry_backoff`,
        `retry_multiplier`, `retry_max_backoff`; `start_time`, `end_time`,
        `max_fires`. See docs/schedules.md."""
        request = schedule_service_pb2.CreateScheduleRequest(
            schedule=schedule_definition(name, task_type, **definition)
        )
        return Schedule.from_proto(self._call(self._schedules.CreateSchedule, request))

    def get_schedule(self, name: str) -> Schedule:
        request = schedule_service_pb2.GetScheduleRequest(name=name)
        return Schedule.from_proto(self._call(self._schedules.GetSchedule, request))

    def schedules(self) -> List[Schedule]:
        """Every schedule, by name."""
        response = self._call(self._schedules.ListSchedules, schedule_service_pb2.ListSchedulesRequest())
        return [Schedule.from_proto(schedule) for schedule in response.schedules]

    def pause_schedule(self, name: str, note: str = "") -> Schedule:
        request = schedule_service_pb2.PauseScheduleRequest(name=name, note=note)
        return Schedule.from_proto(self._call(self._schedules.PauseSchedule, request))

    def resume_schedule(self, name: str) -> Schedule:
        request = schedule_service_pb2.ResumeScheduleRequest(name=name)
        return Schedule.from_proto(self._call(self._schedules.ResumeSchedule, request))

    def trigger_schedule(self, name: str) -> Task:
        """Fires the schedule now; the task of the fire."""
        request = schedule_service_pb2.TriggerScheduleRequest(name=name)
        return Task(self._call(self._schedules.TriggerSchedule, request))

    def delete_schedule(self, name: str) -> None:
        self._call(self._schedules.DeleteSchedule, schedule_service_pb2.DeleteScheduleRequest(name=name))

    def update_schedule(self, name: str, task_type: str, **definition) -> Schedule:
        """Replaces what `name` does (the arguments of `create_schedule`);
        what it has done stays, and its next fire is computed again."""
        request = schedule_service_pb2.UpdateScheduleRequest(
            schedule=schedule_definition(name, task_type, **definition)
        )
        return Schedule.from_proto(self._call(self._schedules.UpdateSchedule, request))

    def backfill_schedule(self, name: str, start: _dt.datetime, end: _dt.datetime) -> List[Task]:
        """Fires `name` at every time its spec names after `start` up to
        `end` (at most 1000), beside whatever runs; the tasks, oldest
        first. Asking for a range twice submits nothing new."""
        request = schedule_service_pb2.BackfillScheduleRequest(name=name)
        request.start_time.FromDatetime(_utc(start))
        request.end_time.FromDatetime(_utc(end))
        response = self._call(self._schedules.BackfillSchedule, request)
        return [Task(task) for task in response.tasks]

    def watch(self, task_id: str) -> Watch:
        """The task's current state, then each change; ends after a terminal
        status."""
        try:
            call = self._tasks.WatchTask(task_service_pb2.WatchTaskRequest(task_id=task_id))
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None
        return Watch(call)

    def watch_all(
        self, status: StatusFilter = None, task_type: TypeFilter = None, labels: Optional[Mapping[str, str]] = None
    ) -> Watch:
        """Events of every matching task, until closed."""
        return Watch(self._tasks.WatchTasks(_watch_request(status, task_type, labels)))

    def wait(self, task_id: str, timeout: Optional[float] = None) -> Task:
        """Blocks until the task ends; returns it. `TimeoutError` after
        `timeout` seconds."""
        watch = Watch(self._tasks.WatchTask(task_service_pb2.WatchTaskRequest(task_id=task_id), timeout=timeout))
        last = None
        try:
            for event in watch:
                if event.task is not None:
                    last = event.task
        except errors.TaskdError as error:
            raise _waited_out(error, task_id, timeout) from None
        return _ended(task_id, last, self)

    def submitter(self, *, max_batch: int = 500, linger: float = 0.0, max_in_flight: int = 1) -> BufferedSubmitter:
        """A submitter that coalesces the submits of many threads into
        `SubmitTasks` calls; see `BufferedSubmitter`."""
        return BufferedSubmitter(self, max_batch=max_batch, linger=linger, max_in_flight=max_in_flight)

    def submit_buffered(self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields) -> Task:
        """Like `submit`, but coalesced with the submits of other threads
        made meanwhile into one `SubmitTasks` call; see `BufferedSubmitter`."""
        with self._submitter_lock:
            if self._submitter is None:
                self._submitter = BufferedSubmitter(self)
            submitter = self._submitter
        return submitter.submit(new_task_of(task, params, fields))

    # For the submitter: the raw batch call and the single one.
    def _submit_batch_proto(self, request: task_service_pb2.SubmitTasksRequest):
        return self._tasks.SubmitTasks(request, timeout=self.timeout)

    def _submit_proto(self, request: task_service_pb2.SubmitTaskRequest):
        return self._tasks.SubmitTask(request, timeout=self.timeout)


def _waited_out(error: errors.TaskdError, task_id: str, timeout: Optional[float]) -> Exception:
    """What a wait raises when its watch failed: `TimeoutError` past its
    deadline, else the server's error."""
    if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return TimeoutError(f"task {task_id} did not end within {timeout}s")
    return error


def _ended(task_id: str, last: Optional[Task], client) -> Task:
    """The task a finished watch saw last, which must have ended, as one
    `client` returned."""
    if last is None or not last.status.is_terminal:
        raise errors.Unavailable(f"the watch of task {task_id} ended before the task did")
    return Task(last.proto, client)


class AsyncWatch:
    """Events of a watch stream, as an async iterator."""

    def __init__(self, call):
        self._call = call

    def __aiter__(self) -> AsyncIterator[TaskEvent]:
        return self

    async def __anext__(self) -> TaskEvent:
        try:
            message = await self._call.read()
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:
                raise StopAsyncIteration from None
            raise errors.from_rpc_error(error) from None
        if message is grpc.aio.EOF:
            raise StopAsyncIteration
        return TaskEvent(message)

    def close(self) -> None:
        self._call.cancel()

    async def __aenter__(self) -> "AsyncWatch":
        return self

    async def __aexit__(self, *_exc) -> None:
        self.close()


class AsyncClient:
    """`Client` for asyncio: the same calls, awaited. Create it inside the
    running event loop."""

    def __init__(
        self,
        address: str = "127.0.0.1:50051",
        *,
        timeout: Optional[float] = None,
        token: Optional[str] = None,
        ca_file: Optional[PathLike] = None,
        client_cert_file: Optional[PathLike] = None,
        client_key_file: Optional[PathLike] = None,
    ):
        """The arguments of `Client`: address forms, token and TLS files
        (with their environment defaults) mean the same."""
        self._settings = _channel.resolve(
            address, token=token, ca_file=ca_file, client_cert_file=client_cert_file, client_key_file=client_key_file
        )
        self.address = self._settings.target
        self.timeout = timeout
        self._channel = _channel.aio_channel(self._settings)
        self._tasks = task_service_pb2_grpc.TaskServiceStub(self._channel)
        self._workers = worker_service_pb2_grpc.WorkerServiceStub(self._channel)
        self._schedules = schedule_service_pb2_grpc.ScheduleServiceStub(self._channel)
        self._submitter = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r}, tls={self._settings.tls})"

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.close()

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None

    async def submit(self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields) -> Task:
        request = new_task_of(task, params, fields).to_proto()
        return Task(await self._call(self._tasks.SubmitTask, request), self)

    async def run(
        self,
        task: Union[str, NewTask],
        params: Optional[Mapping[str, Any]] = None,
        *,
        wait: float = 60.0,
        **fields,
    ) -> Task:
        """Submits one task and returns it once it has ended, in one call;
        see `Client.run`."""
        request = _run_request(task, params, fields, wait)
        try:
            return Task(await self._tasks.RunTask(request, timeout=_run_timeout(wait, self.timeout)), self)
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None

    async def wait_for(self, task: Task, timeout: Optional[float] = None) -> Task:
        """`task` once it has ended: itself when it had, else `wait`."""
        if task.status.is_terminal:
            return task
        return await self.wait(task.id, timeout)

    async def submit_many(self, tasks: Sequence[NewTask]) -> List[Task]:
        response = await self._call(self._tasks.SubmitTasks, _batch(tasks))
        return [Task(task) for task in response.tasks]

    async def get(self, task_id: str) -> Task:
        return Task(await self._call(self._tasks.GetTask, task_service_pb2.GetTaskRequest(task_id=task_id)), self)

    async def list(
        self,
        status: StatusFilter = None,
        task_type: TypeFilter = None,
        *,
        priority=None,
        labels: Optional[Mapping[str, str]] = None,
        created_after: Optional[_dt.datetime] = None,
        created_before: Optional[_dt.datetime] = None,
        name_contains: str = "",
        depends_on: Union[None, str, Task] = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> TaskPage:
        request = _list_request(
            status, task_type, priority, labels, created_after, created_before, page_size, page_token,
            name_contains, depends_on,
        )
        response = await self._call(self._tasks.ListTasks, request)
        return TaskPage([Task(task) for task in response.tasks], response.next_page_token)

    async def iter_tasks(self, status: StatusFilter = None, task_type: TypeFilter = None, **filters):
        token = ""
        while True:
            page = await self.list(status, task_type, page_token=token, **filters)
            for task in page.tasks:
                yield task
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def cancel(self, task_id: str, reason: str = "") -> Task:
        request = task_service_pb2.CancelTaskRequest(task_id=task_id, reason=reason)
        return Task(await self._call(self._tasks.CancelTask, request))

    async def stats(self) -> TaskStats:
        response = await self._call(self._tasks.GetTaskStats, task_service_pb2.GetTaskStatsRequest())
        return TaskStats.from_proto(response)

    async def task_types(self) -> List[TaskTypeInfo]:
        response = await self._call(self._tasks.ListTaskTypes, task_service_pb2.ListTaskTypesRequest())
        return [TaskTypeInfo(info.task_type, info.handler_available, info.workers) for info in response.task_types]

    async def delete_task_type(self, task_type: str) -> None:
        """Forgets a task type workers declared (needs scope admin)."""
        await self._call(self._tasks.DeleteTaskType, task_service_pb2.DeleteTaskTypeRequest(task_type=task_type))

    async def workers(self) -> List[WorkerInfo]:
        response = await self._call(self._workers.ListWorkers, worker_service_pb2.ListWorkersRequest())
        return [WorkerInfo.from_proto(worker) for worker in response.workers]

    async def create_schedule(self, name: str, task_type: str, **definition) -> Schedule:
        """Creates a schedule; see `Client.create_schedule`."""
        request = schedule_service_pb2.CreateScheduleRequest(
            schedule=schedule_definition(name, task_type, **definition)
        )
        return Schedule.from_proto(await self._call(self._schedules.CreateSchedule, request))

    async def get_schedule(self, name: str) -> Schedule:
        request = schedule_service_pb2.GetScheduleRequest(name=name)
        return Schedule.from_proto(await self._call(self._schedules.GetSchedule, request))

    async def schedules(self) -> List[Schedule]:
        """Every schedule, by name."""
        response = await self._call(self._schedules.ListSchedules, schedule_service_pb2.ListSchedulesRequest())
        return [Schedule.from_proto(schedule) for schedule in response.schedules]

    async def pause_schedule(self, name: str, note: str = "") -> Schedule:
        request = schedule_service_pb2.PauseScheduleRequest(name=name, note=note)
        return Schedule.from_proto(await self._call(self._schedules.PauseSchedule, request))

    async def resume_schedule(self, name: str) -> Schedule:
        request = schedule_service_pb2.ResumeScheduleRequest(name=name)
        return Schedule.from_proto(await self._call(self._schedules.ResumeSchedule, request))

    async def trigger_schedule(self, name: str) -> Task:
        """Fires the schedule now; the task of the fire."""
        request = schedule_service_pb2.TriggerScheduleRequest(name=name)
        return Task(await self._call(self._schedules.TriggerSchedule, request))

    async def delete_schedule(self, name: str) -> None:
        await self._call(self._schedules.DeleteSchedule, schedule_service_pb2.DeleteScheduleRequest(name=name))

    async def update_schedule(self, name: str, task_type: str, **definition) -> Schedule:
        """Replaces what `name` does (the arguments of `create_schedule`);
        what it has done stays, and its next fire is computed again."""
        request = schedule_service_pb2.UpdateScheduleRequest(
            schedule=schedule_definition(name, task_type, **definition)
        )
        return Schedule.from_proto(await self._call(self._schedules.UpdateSchedule, request))

    async def backfill_schedule(self, name: str, start: _dt.datetime, end: _dt.datetime) -> List[Task]:
        """Fires `name` at every time its spec names after `start` up to
        `end` (at most 1000), beside whatever runs; the tasks, oldest
        first. Asking for a range twice submits nothing new."""
        request = schedule_service_pb2.BackfillScheduleRequest(name=name)
        request.start_time.FromDatetime(_utc(start))
        request.end_time.FromDatetime(_utc(end))
        response = await self._call(self._schedules.BackfillSchedule, request)
        return [Task(task) for task in response.tasks]

    def watch(self, task_id: str) -> AsyncWatch:
        return AsyncWatch(self._tasks.WatchTask(task_service_pb2.WatchTaskRequest(task_id=task_id)))

    def watch_all(
        self, status: StatusFilter = None, task_type: TypeFilter = None, labels: Optional[Mapping[str, str]] = None
    ) -> AsyncWatch:
        return AsyncWatch(self._tasks.WatchTasks(_watch_request(status, task_type, labels)))

    async def wait(self, task_id: str, timeout: Optional[float] = None) -> Task:
        """Waits until the task ends; returns it. `TimeoutError` after
        `timeout` seconds."""
        last = None
        call = self._tasks.WatchTask(task_service_pb2.WatchTaskRequest(task_id=task_id), timeout=timeout)
        try:
            async with AsyncWatch(call) as events:
                async for event in events:
                    if event.task is not None:
                        last = event.task
        except errors.TaskdError as error:
            raise _waited_out(error, task_id, timeout) from None
        return _ended(task_id, last, self)

    def submitter(self, *, max_batch: int = 500, linger: float = 0.0, max_in_flight: int = 1) -> AsyncSubmitter:
        """A submitter that coalesces the submits of many coroutines into
        `SubmitTasks` calls; see `AsyncSubmitter`."""
        return AsyncSubmitter(self, max_batch=max_batch, linger=linger, max_in_flight=max_in_flight)

    async def submit_buffered(
        self, task: Union[str, NewTask], params: Optional[Mapping[str, Any]] = None, **fields
    ) -> Task:
        """Like `submit`, but coalesced with the submits of other coroutines
        made meanwhile into one `SubmitTasks` call; see `AsyncSubmitter`."""
        if self._submitter is None:
            self._submitter = AsyncSubmitter(self)
        return await self._submitter.submit(new_task_of(task, params, fields))

    def _submit_batch_proto(self, request):
        return self._tasks.SubmitTasks(request, timeout=self.timeout)

    def _submit_proto(self, request):
        return self._tasks.SubmitTask(request, timeout=self.timeout)

