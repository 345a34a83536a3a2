"""Python client and worker SDK for taskd, the durable background task
service.

- `Client` / `AsyncClient`: submit (one task, or a DAG atomically), get,
  list, cancel, stats, watch.
- `Client.submitter()` / `AsyncClient.submit_buffered`: coalesce the submits
  of many threads or coroutines into batched calls.
- `Worker`: serve task types from this program, sync or asyncio handlers.

All three take `token=` (a bearer token) and, for TLS, an `https://`
address with `ca_file=` (plus `client_cert_file=`/`client_key_file=` for
mutual TLS); unset, they default from TASKD_TOKEN, TASKD_CA_FILE,
TASKD_CLIENT_CERT and TASKD_CLIENT_KEY.
"""

__version__ = "0.1.0"

from taskd.client import AsyncClient, AsyncWatch, Client, TaskPage, Watch  # noqa: E402
from taskd.errors import (  # noqa: E402
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    LeaseLost,
    NotFound,
    Overloaded,
    PermissionDenied,
    ResourceExhausted,
    TaskdError,
    Unauthenticated,
    Unavailable,
)
from taskd.models import (  # noqa: E402
    After,
    Attempt,
    AttemptOutcome,
    EventKind,
    NewTask,
    Progress,
    Schedule,
    ScheduleFire,
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
    "Overloaded",
    "PermanentFailure",
    "PermissionDenied",
    "Progress",
    "ResourceExhausted",
    "Schedule",
    "ScheduleFire",
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
    "Unauthenticated",
    "Unavailable",
    "Watch",
    "Worker",
    "WorkerInfo",
]
