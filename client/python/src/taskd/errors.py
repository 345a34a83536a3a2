"""What can go wrong, as exceptions named after the server's answer. Every
refusal's message names the field at fault, as the server wrote it."""

from __future__ import annotations

from typing import Dict, Optional

import grpc


class TaskdError(Exception):
    """A request taskd refused or could not answer."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(TaskdError):
    """A field is wrong; the message starts with its name
    (``tasks[1].task_type: unknown task type ...``)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(TaskdError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(TaskdError):
    """An idempotency key used for a different request, or a worker id in
    use."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(TaskdError):
    """The task is past what was asked (cancelling a finished task), or a
    lease no longer counts."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class LeaseLost(FailedPrecondition):
    """A report under a lease taskd no longer honours: nothing changed."""


class Unavailable(TaskdError):
    """The server is stopping or its storage is not taking writes; nothing
    was written, try again."""

    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(TaskdError):
    """The server wants a bearer token and got none, or one it does not
    know: pass `token=` (or set TASKD_TOKEN)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(TaskdError):
    """The token is known but lacks the scope the call needs; the message
    names the scope (``submit``, ``cancel``, ``worker``, ...)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(TaskdError):
    """A limit was hit without a hint to retry (a message too large, say):
    the same request would be refused again. Load shedding, which does
    pass, is the subclass `Overloaded`."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    #: Seconds to wait before retrying, when the server said; see `Overloaded`.
    retry_after: Optional[float] = None


class Overloaded(ResourceExhausted):
    """The server shed the request (its task queue or its submits in flight
    are at their limit) and said when to try again: nothing was written;
    retry after `retry_after` seconds (from the `grpc-retry-pushback-ms`
    trailer, else `retry-after`)."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None, *, retry_after: float):
        super().__init__(message, code)
        self.retry_after = retry_after


_BY_CODE = {
    error.code: error
    for error in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Unavailable,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
    )
}

#: Trailing metadata with the server's retry hint, in milliseconds (what
#: gRPC retry policies read) and seconds (HTTP's `retry-after`).
_PUSHBACK_MS = "grpc-retry-pushback-ms"
_RETRY_AFTER = "retry-after"


def from_rpc_error(error: grpc.RpcError) -> TaskdError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return from_code(code, details or "", retry_after=retry_after_of(error))


def from_code(code: grpc.StatusCode, message: str, *, retry_after: Optional[float] = None) -> TaskdError:
    """The exception for a status; `retry_after` (seconds, the server's
    hint) turns a RESOURCE_EXHAUSTED into an `Overloaded`."""
    if code == grpc.StatusCode.FAILED_PRECONDITION and "lease" in message:
        return LeaseLost(message, code)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None:
        return Overloaded(message, code, retry_after=retry_after)
    kind = _BY_CODE.get(code, TaskdError)
    return kind(message, code)


def retry_after_of(error: grpc.RpcError) -> Optional[float]:
    """Seconds the server asked to wait before retrying, from the error's
    trailing metadata; None when it gave no hint."""
    hints = _trailing(error)
    for key, scale in ((_PUSHBACK_MS, 1000.0), (_RETRY_AFTER, 1.0)):
        try:
            return max(0.0, float(hints[key]) / scale)
        except (KeyError, ValueError):
            continue
    return None


def _trailing(error: grpc.RpcError) -> Dict[str, str]:
    """Trailing metadata as a dict with lower-case keys. Sync and asyncio
    errors both have `trailing_metadata()`; a locally made error may lack
    it or return None."""
    read = getattr(error, "trailing_metadata", None)
    try:
        metadata = read() if callable(read) else None
    except Exception:  # an error that never reached the wire
        return {}
    hints: Dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        hints[str(key).lower()] = value
    return hints


def from_status_number(number: int, message: str) -> TaskdError:
    """A refusal carried inside a stream message (a gRPC code as a number)."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return from_code(code, message)
    return TaskdError(message)
