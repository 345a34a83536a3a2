//! What can go wrong in the engine, in terms a client can act on, and the
//! one table of codes every transport maps from.

use crate::model::{LeaseLost, TaskId, TaskStatus};
use crate::store::StoreError;

/// What kind of failure an error is: each transport maps these, and only
/// these, to its own codes (`api::error_codes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed; the error names the field.
    InvalidArgument,
    NotFound,
    /// A different request already used this idempotency key.
    AlreadyExists,
    /// The task is past the point where the request could apply (a cancel
    /// after the end, a report under a lost lease).
    FailedPrecondition,
    /// Try again later: the server is stopping or its storage failed.
    Unavailable,
    /// Stored data cannot be read.
    DataLoss,
    /// The server is over a configured load limit; retry later.
    ResourceExhausted,
    /// The caller may not do this, whoever it is.
    PermissionDenied,
}

/// An engine error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `field` names the offending field as the client spelled it, e.g.
    /// `tasks[1].dependencies[0].task_id`.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },

    #[error("task {0} not found")]
    TaskNotFound(TaskId),

    #[error("task {task_id} is already {status}")]
    AlreadyFinished { task_id: TaskId, status: TaskStatus },

    #[error("{field}: idempotency key {key:?} was already used for a different request (type, params or dependencies)")]
    IdempotencyConflict { field: String, key: String },

    #[error("lease on task {task_id} lost: {reason}")]
    LeaseLost { task_id: TaskId, reason: LeaseLost },

    /// Not allowed to anyone who asks this way; `field` names what.
    #[error("{field}: {message}")]
    PermissionDenied { field: String, message: String },

    /// Something other than a task is not there; the message names it.
    #[error("{0}")]
    NotFound(String),

    /// The request cannot apply in the current state; the message says why.
    #[error("{0}")]
    FailedPrecondition(String),

    /// What the request would create exists already, or changed under it.
    #[error("{0}")]
    AlreadyExists(String),

    /// A configured bound would be passed; the message names it.
    #[error("{0}")]
    LimitReached(String),

    #[error("worker_id: a worker named {worker_id:?} is connected already")]
    WorkerConnected { worker_id: String },

    #[error("the server is shutting down")]
    ShuttingDown,

    #[error("storage unavailable: {0}")]
    Unavailable(String),

    #[error("stored data is corrupt: {0}")]
    DataLoss(String),

    /// Shed for load: `message` names the limit; a client should retry
    /// after `retry_after`.
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after: std::time::Duration,
    },
}

impl EngineError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            EngineError::TaskNotFound(_) | EngineError::NotFound(_) => ErrorCode::NotFound,
            EngineError::AlreadyFinished { .. }
            | EngineError::LeaseLost { .. }
            | EngineError::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            EngineError::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            EngineError::LimitReached(_) => ErrorCode::ResourceExhausted,
            EngineError::IdempotencyConflict { .. }
            | EngineError::WorkerConnected { .. }
            | EngineError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            EngineError::ShuttingDown | EngineError::Unavailable(_) => ErrorCode::Unavailable,
            EngineError::DataLoss(_) => ErrorCode::DataLoss,
            EngineError::Overloaded { .. } => ErrorCode::ResourceExhausted,
        }
    }

    /// How long a client should wait before retrying, when the server
    /// says.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            EngineError::Overloaded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The field a client got wrong, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            EngineError::InvalidArgument { field, .. }
            | EngineError::IdempotencyConflict { field, .. }
            | EngineError::PermissionDenied { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<StoreError> for EngineError {
    /// Store errors outside a submit; a submit names its fields itself
    /// (see `engine::drafts`).
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(message) => EngineError::Unavailable(message),
            StoreError::Corrupt(message) => EngineError::DataLoss(message),
            StoreError::NotFound(id) => EngineError::TaskNotFound(id),
            StoreError::AlreadyFinished { task_id, status } => EngineError::AlreadyFinished { task_id, status },
            StoreError::LeaseLost { task_id, reason } => EngineError::LeaseLost { task_id, reason },
            StoreError::LimitReached(message) => EngineError::LimitReached(message),
            StoreError::Conflict(message) => EngineError::AlreadyExists(message),
            StoreError::ScheduleNotFound(name) => EngineError::NotFound(format!("schedule {name:?} not found")),
            StoreError::UnknownDependency { task_id, .. } => {
                EngineError::invalid("dependencies", format!("task {task_id} does not exist"))
            }
            StoreError::IdempotencyConflict { key, .. } => EngineError::IdempotencyConflict {
                field: "idempotency_key".to_string(),
                key,
            },
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
