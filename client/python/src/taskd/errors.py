"""What can go wrong, as exceptions named after the server's answer. Every
refusal's message names the field at fault, as the server wrote it."""

from __future__ import annotations

from typing import Optional

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


_BY_CODE = {
    error.code: error
    for error in (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, Unavailable)
}


def from_rpc_error(error: grpc.RpcError) -> TaskdError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return from_code(code, details or "")


def from_code(code: grpc.StatusCode, message: str) -> TaskdError:
    if code == grpc.StatusCode.FAILED_PRECONDITION and "lease" in message:
        return LeaseLost(message, code)
    kind = _BY_CODE.get(code, TaskdError)
    return kind(message, code)


def from_status_number(number: int, message: str) -> TaskdError:
    """A refusal carried inside a stream message (a gRPC code as a number)."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return from_code(code, message)
    return TaskdError(message)
