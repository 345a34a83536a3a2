"""The task model as Python sees it: enums, and light read-only views over
the wire messages (fields are converted when read, not when received, so a
batch of a thousand tasks costs little until it is looked at)."""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from taskd import _json
from taskd.v1 import schedule_service_pb2, task_pb2, task_service_pb2, worker_service_pb2


class _Named(enum.IntEnum):
    """An enum that prints as its name (`COMPLETED`), as the server writes it
    in JSON, not as its number: since Python 3.11 an IntEnum prints `4`."""

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)


class TaskStatus(_Named):
    """Where a task is in its life: WAITING -> SCHEDULED -> PENDING -> RUNNING
    -> COMPLETED | FAILED | CANCELLED."""

    PENDING = 1
    SCHEDULED = 2
    RUNNING = 3
    COMPLETED = 4
    FAILED = 5
    CANCELLED = 6
    WAITING = 7

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class TaskPriority(_Named):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4


class EventKind(_Named):
    SNAPSHOT = 1
    SUBMITTED = 2
    STATUS_CHANGED = 3
    PROGRESS = 4
    LAGGED = 5


class AttemptOutcome(_Named):
    RUNNING = 0
    SUCCEEDED = 1
    FAILED = 2
    TIMED_OUT = 3
    CANCELLED = 4
    INTERRUPTED = 5
    LEASE_EXPIRED = 6
    RELEASED = 7


def _time(message, name: str) -> Optional[_dt.datetime]:
    if not message.HasField(name):
        return None
    return getattr(message, name).ToDatetime(tzinfo=_dt.timezone.utc)


def _seconds(duration) -> float:
    return duration.seconds + duration.nanos / 1e9


@dataclass(frozen=True)
class Progress:
    percent: float
    message: str


@dataclass(frozen=True)
class Attempt:
    """One execution of a task."""

    number: int
    outcome: AttemptOutcome
    started_at: Optional[_dt.datetime]
    finished_at: Optional[_dt.datetime]
    error: str
    worker: str


class Task:
    """A task as the server returned it. Read-only; `proto` is the message.

    One a client returned knows it: `task.wait()` waits for it to end
    (awaitable from an `AsyncClient`)."""

    __slots__ = ("proto", "_params", "_result", "_client")

    def __init__(self, proto: task_pb2.Task, client: Any = None):
        self.proto = proto
        self._params: Optional[dict] = None
        self._result: Any = _UNSET
        self._client = client

    def wait(self, timeout: Optional[float] = None):
        """The task once it has ended, read through the client that returned
        it (`Client.wait`); itself when it already had. From an `AsyncClient`,
        await it."""
        if self._client is None:
            raise TypeError("this Task came from no client; use Client.wait(task.id)")
        return self._client.wait_for(self, timeout)

    @property
    def id(self) -> str:
        return self.proto.id

    @property
    def name(self) -> str:
        return self.proto.name

    @property
    def task_type(self) -> str:
        return self.proto.task_type

    @property
    def status(self) -> TaskStatus:
        return TaskStatus(self.proto.status)

    @property
    def priority(self) -> TaskPriority:
        return TaskPriority(self.proto.priority)

    @property
    def params(self) -> dict:
        if self._params is None:
            self._params = _json.from_struct(self.proto.params)
        return self._params

    @property
    def result(self) -> Any:
        """What the last attempt returned; None unless COMPLETED."""
        if self._result is _UNSET:
            self._result = _json.from_value(self.proto.result) if self.proto.HasField("result") else None
        return self._result

    @property
    def error(self) -> str:
        return self.proto.error

    @property
    def status_reason(self) -> str:
        return self.proto.status_reason

    @property
    def progress(self) -> Optional[Progress]:
        if not self.proto.HasField("progress"):
            return None
        return Progress(self.proto.progress.percent, self.proto.progress.message)

    @property
    def retry_count(self) -> int:
        return self.proto.retry_count

    @property
    def max_retries(self) -> int:
        return self.proto.max_retries

    @property
    def timeout(self) -> float:
        """Seconds an attempt may run."""
        return _seconds(self.proto.timeout)

    @property
    def labels(self) -> Dict[str, str]:
        return dict(self.proto.labels)

    @property
    def dependencies(self) -> List[str]:
        return [dependency.task_id for dependency in self.proto.dependencies]

    @property
    def attempts(self) -> List[Attempt]:
        return [
            Attempt(
                number=attempt.number,
                outcome=AttemptOutcome(attempt.outcome),
                started_at=_time(attempt, "started_at"),
                finished_at=_time(attempt, "finished_at"),
                error=attempt.error,
                worker=attempt.worker,
            )
            for attempt in self.proto.attempts
        ]

    @property
    def created_at(self) -> Optional[_dt.datetime]:
        return _time(self.proto, "created_at")

    @property
    def started_at(self) -> Optional[_dt.datetime]:
        return _time(self.proto, "started_at")

    @property
    def completed_at(self) -> Optional[_dt.datetime]:
        return _time(self.proto, "completed_at")

    @property
    def run_at(self) -> Optional[_dt.datetime]:
        return _time(self.proto, "run_at")

    @property
    def revision(self) -> int:
        return self.proto.revision

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, task_type={self.task_type!r}, status={self.status.name})"


_UNSET = object()


class TaskEvent:
    """One change of one task, as a watch stream delivers it."""

    __slots__ = ("proto", "_task")

    def __init__(self, proto: task_service_pb2.TaskEvent):
        self.proto = proto
        self._task: Optional[Task] = None

    @property
    def kind(self) -> EventKind:
        return EventKind(self.proto.kind)

    @property
    def task(self) -> Optional[Task]:
        if self._task is None and self.proto.HasField("task"):
            self._task = Task(self.proto.task)
        return self._task

    @property
    def previous_status(self) -> Optional[TaskStatus]:
        return TaskStatus(self.proto.previous_status) if self.proto.HasField("previous_status") else None

    @property
    def sequence(self) -> int:
        return self.proto.sequence

    @property
    def missed(self) -> int:
        """For a LAGGED event: how many events the watcher missed."""
        return self.proto.missed

    def __repr__(self) -> str:
        return f"TaskEvent(kind={self.kind.name}, task={self.task!r})"


@dataclass(frozen=True)
class TaskStats:
    """Counts by status (lower-case names) overall and per type, and the
    scheduler's state."""

    counts: Dict[str, int]
    by_type: Dict[str, Dict[str, int]]
    max_concurrent_tasks: int
    effective_concurrency_limit: int
    concurrency_limit_reason: str
    unserved_task_types: List[str]
    #: Completed over ended tasks; None until a task has ended.
    success_rate: Optional[float]

    @classmethod
    def from_proto(cls, stats: task_service_pb2.TaskStats) -> "TaskStats":
        def counts(message) -> Dict[str, int]:
            return {
                name: getattr(message, name)
                for name in ("pending", "scheduled", "running", "completed", "failed", "cancelled", "waiting", "total")
            }

        return cls(
            counts=counts(stats.counts),
            by_type={entry.task_type: counts(entry.counts) for entry in stats.by_type},
            max_concurrent_tasks=stats.max_concurrent_tasks,
            effective_concurrency_limit=stats.effective_concurrency_limit,
            concurrency_limit_reason=stats.concurrency_limit_reason,
            unserved_task_types=list(stats.unserved_task_types),
            success_rate=stats.success_rate if stats.HasField("success_rate") else None,
        )


@dataclass(frozen=True)
class WorkerInfo:
    """A worker connected to the server."""

    worker_id: str
    task_types: List[str]
    capacity: int
    held: int
    labels: Dict[str, str]
    draining: bool
    finished: int
    #: The node it is connected to when several share a database, else "".
    node: str = ""

    @classmethod
    def from_proto(cls, worker: worker_service_pb2.Worker) -> "WorkerInfo":
        return cls(
            worker_id=worker.worker_id,
            task_types=list(worker.task_types),
            capacity=worker.capacity,
            held=worker.held,
            labels=dict(worker.labels),
            draining=worker.draining,
            finished=worker.finished,
            node=worker.node,
        )


@dataclass(frozen=True)
class TaskTypeInfo:
    task_type: str
    handler_available: bool
    workers: int


@dataclass(frozen=True)
class After:
    """A dependency: the task may start once `task` (a task id, a Task, or in
    a batch the `ref` of another member) ends in `status`."""

    task: Union[str, Task]
    status: TaskStatus = TaskStatus.COMPLETED


Dependency = Union[str, Task, After]


@dataclass
class NewTask:
    """A task to submit. In a batch (`Client.submit_many`), `ref` names the
    member so that others can depend on it: `depends_on=["ref-of-other"]`
    refers to a member when such a ref exists in the batch, else to a task
    id."""

    task_type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    priority: TaskPriority = TaskPriority.NORMAL
    depends_on: Sequence[Dependency] = ()
    max_retries: Optional[int] = None
    timeout: Optional[float] = None
    run_at: Optional[_dt.datetime] = None
    labels: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
    ref: str = ""
    retry_backoff: Optional[float] = None
    retry_multiplier: Optional[float] = None
    retry_max_backoff: Optional[float] = None
    retry_jitter: Optional[float] = None

    def to_proto(self, refs: Sequence[str] = ()) -> task_service_pb2.SubmitTaskRequest:
        request = task_service_pb2.SubmitTaskRequest(
            task_type=self.task_type,
            name=self.name,
            priority=int(self.priority),
            idempotency_key=self.idempotency_key,
            batch_ref=self.ref,
        )
        if self.params:
            _json.to_struct(self.params, request.params)
        for dependency in self.depends_on:
            entry = request.dependencies.add()
            after = dependency if isinstance(dependency, After) else After(dependency)
            target = after.task.id if isinstance(after.task, Task) else str(after.task)
            if target in refs:
                entry.batch_ref = target
            else:
                entry.task_id = target
            entry.required_status = int(after.status)
        if self.max_retries is not None:
            request.max_retries = self.max_retries
        if self.timeout is not None:
            request.timeout.FromTimedelta(_dt.timedelta(seconds=self.timeout))
        if self.run_at is not None:
            request.run_at.FromDatetime(_utc(self.run_at))
        for key, value in self.labels.items():
            request.labels[key] = value
        if self.retry_backoff is not None:
            request.retry_policy.initial_backoff.FromTimedelta(_dt.timedelta(seconds=self.retry_backoff))
        if self.retry_multiplier is not None:
            request.retry_policy.multiplier = self.retry_multiplier
        if self.retry_max_backoff is not None:
            request.retry_policy.max_backoff.FromTimedelta(_dt.timedelta(seconds=self.retry_max_backoff))
        if self.retry_jitter is not None:
            request.retry_policy.jitter = self.retry_jitter
        return request


def _utc(moment: _dt.datetime, field: str = "run_at") -> _dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{field} must be timezone-aware (datetime.now(timezone.utc), say)")
    return moment.astimezone(_dt.timezone.utc).replace(tzinfo=None)


def new_task_of(task: Union[str, NewTask], params: Optional[Mapping[str, Any]], fields: dict) -> NewTask:
    """The task a submit call asks for: a `NewTask` as given, or one made of
    a task type, its params and keyword fields (not both)."""
    if isinstance(task, NewTask):
        if params is not None or fields:
            raise TypeError("pass either a NewTask or a task type with its fields, not both")
        return task
    return NewTask(task, params or {}, **fields)


#: The overlap policies a schedule may have, by the name the SDK takes.
_OVERLAPS = {
    "skip": schedule_service_pb2.OVERLAP_POLICY_SKIP,
    "buffer_one": schedule_service_pb2.OVERLAP_POLICY_BUFFER_ONE,
    "allow_all": schedule_service_pb2.OVERLAP_POLICY_ALLOW_ALL,
    "cancel_running": schedule_service_pb2.OVERLAP_POLICY_CANCEL_RUNNING,
}


@dataclass(frozen=True)
class ScheduleFire:
    """One fire of a schedule: the time its spec named, its task, and that
    task's status now (None when the task is gone or was not looked up:
    `get_schedule` looks up every recent fire, `schedules` the latest)."""

    nominal_time: _dt.datetime
    task_id: str
    status: Optional[TaskStatus] = None


@dataclass
class Schedule:
    """A schedule: what it submits and when, and what it has done."""

    name: str
    task_type: str
    #: "cron <expression> (<zone>)" or "every <seconds>s".
    spec: str
    paused: bool
    pause_note: str
    #: The next few fire times; empty when paused or ended.
    next_fire_times: List[_dt.datetime]
    #: The most recent fires, newest first.
    recent_fires: List[ScheduleFire]
    fires: int
    skipped_overlap: int
    skipped_late: int
    #: The message as the server sent it, for anything not above.
    proto: Any = field(repr=False, default=None)

    @classmethod
    def from_proto(cls, schedule: schedule_service_pb2.Schedule) -> "Schedule":
        definition = schedule.definition
        spec = definition.spec
        if spec.WhichOneof("kind") == "cron":
            described = f"cron {spec.cron.expression} ({spec.cron.time_zone or 'UTC'})"
        else:
            described = f"every {_seconds(spec.interval.every):g}s"
        return cls(
            name=definition.name,
            task_type=definition.template.task_type,
            spec=described,
            paused=schedule.paused,
            pause_note=schedule.pause_note,
            next_fire_times=[moment.ToDatetime(_dt.timezone.utc) for moment in schedule.next_fire_times],
            recent_fires=[
                ScheduleFire(
                    fire.nominal_time.ToDatetime(_dt.timezone.utc),
                    fire.task_id,
                    TaskStatus(fire.status) if fire.status else None,
                )
                for fire in schedule.recent_fires
            ],
            fires=schedule.fires,
            skipped_overlap=schedule.skipped_overlap,
            skipped_late=schedule.skipped_late,
            proto=schedule,
        )


def schedule_definition(
    name: str,
    task_type: str,
    *,
    cron: Optional[str] = None,
    time_zone: str = "",
    every: Optional[float] = None,
    offset: float = 0.0,
    params: Optional[Mapping[str, Any]] = None,
    priority: Optional[TaskPriority] = None,
    labels: Optional[Mapping[str, str]] = None,
    overlap: str = "skip",
    catch_up_window: Optional[float] = None,
    latest_only: bool = False,
    jitter: float = 0.0,
    max_retries: Optional[int] = None,
    timeout: Optional[float] = None,
    retry_backoff: Optional[float] = None,
    retry_multiplier: Optional[float] = None,
    retry_max_backoff: Optional[float] = None,
    start_time: Optional[_dt.datetime] = None,
    end_time: Optional[_dt.datetime] = None,
    max_fires: Optional[int] = None,
) -> schedule_service_pb2.ScheduleDefinition:
    """The definition a create or update sends: a cron expression (with
    its IANA `time_zone`) or `every` seconds, not both. The template's
    `max_retries`, `timeout` and `retry_*` are those of `NewTask`;
    `start_time`, `end_time` (timezone-aware) and `max_fires` bound the
    fires."""
    if (cron is None) == (every is None):
        raise ValueError("give either cron or every")
    if overlap not in _OVERLAPS:
        raise ValueError(f"overlap: one of {', '.join(_OVERLAPS)}")
    definition = schedule_service_pb2.ScheduleDefinition(name=name, overlap=_OVERLAPS[overlap])
    if cron is not None:
        definition.spec.cron.expression = cron
        definition.spec.cron.time_zone = time_zone
    else:
        definition.spec.interval.every.FromTimedelta(_dt.timedelta(seconds=every))
        definition.spec.interval.offset.FromTimedelta(_dt.timedelta(seconds=offset))
    if jitter:
        definition.spec.jitter.FromTimedelta(_dt.timedelta(seconds=jitter))
    definition.template.task_type = task_type
    definition.template.params.CopyFrom(_json.to_struct(dict(params or {})))
    if priority is not None:
        definition.template.priority = int(priority)
    for key, value in (labels or {}).items():
        definition.template.labels[key] = value
    if catch_up_window is not None:
        definition.catch_up.window.FromTimedelta(_dt.timedelta(seconds=catch_up_window))
    definition.catch_up.latest_only = latest_only
    template = definition.template
    if max_retries is not None:
        template.max_retries = max_retries
    if timeout is not None:
        template.timeout.FromTimedelta(_dt.timedelta(seconds=timeout))
    if retry_backoff is not None:
        template.retry_policy.initial_backoff.FromTimedelta(_dt.timedelta(seconds=retry_backoff))
    if retry_multiplier is not None:
        template.retry_policy.multiplier = retry_multiplier
    if retry_max_backoff is not None:
        template.retry_policy.max_backoff.FromTimedelta(_dt.timedelta(seconds=retry_max_backoff))
    if start_time is not None:
        definition.start_time.FromDatetime(_utc(start_time, "start_time"))
    if end_time is not None:
        definition.end_time.FromDatetime(_utc(end_time, "end_time"))
    if max_fires is not None:
        definition.max_fires = max_fires
    return definition

