"""Python client and worker SDK for taskd, the durable background task
service.

- `Client` / `AsyncClient`: submit (one task, or a DAG atomically), get,
  list, cancel, stats, watch.
- `Client.submitter()` / `AsyncClient.submit_buffered`: coalesce the submits
  of many threads or coroutines into batched calls.
- `Worker`: serve task types from this program, sync or asyncio handlers.
"""

__version__ = "0.1.0"

from taskd.client import AsyncClient, AsyncWatch, Client, TaskPage, Watch  # noqa: E402
from taskd.errors import (  # noqa: E402
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LeaseLost,
    NotFound,
    TaskdError,
    Unavailable,
)
from taskd.models import (  # noqa: E402
    After,
    Attempt,
    AttemptOutcome,
    EventKind,
    NewTask,
    Progress,
    Task,
    TaskEvent,
    TaskPriority,
    TaskStats,
    TaskStatus,
    TaskTypeInfo,
    WorkerInfo,
)
from taskd.submitter import AsyncSubmitter, BufferedSubmitter  # noqa: E402
from taskd.worker import PermanentFailure, TaskFailure, TaskRun, Worker  # noqa: E402

__all__ = [
    "After",
    "AlreadyExists",
    "AsyncClient",
    "AsyncSubmitter",
    "AsyncWatch",
    "Attempt",
    "AttemptOutcome",
    "BufferedSubmitter",
    "Client",
    "EventKind",
    "FailedPrecondition",
    "InvalidArgument",
    "LeaseLost",
    "NewTask",
    "NotFound",
    "PermanentFailure",
    "Progress",
    "Task",
    "TaskEvent",
    "TaskFailure",
    "TaskPage",
    "TaskPriority",
    "TaskRun",
    "TaskStats",
    "TaskStatus",
    "TaskTypeInfo",
    "TaskdError",
    "Unavailable",
    "Watch",
    "Worker",
    "WorkerInfo",
]
