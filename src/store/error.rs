//! What a store operation can answer besides success.

use crate::model::{LeaseLost, TaskId, TaskStatus};

/// Why a store operation did not happen. Every variant means nothing was
/// written: an operation is applied whole or not at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take the operation now (I/O error, disk full,
    /// closed); the operation may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("task {0} not found")]
    NotFound(TaskId),
    #[error("task {task_id} is already {status}")]
    AlreadyFinished { task_id: TaskId, status: TaskStatus },
    /// A submitted task (the draft at `position` in the request) depends
    /// on a task that does not exist.
    #[error("task {task_id} does not exist")]
    UnknownDependency {
        position: usize,
        dependency: usize,
        task_id: TaskId,
    },
    /// A submitted task (the draft at `position`) repeats an idempotency key
    /// already used for a different request.
    #[error("idempotency key {key:?} was already used for a different request (type, params or dependencies)")]
    IdempotencyConflict { position: usize, key: String },
    /// The operation would pass a configured bound, which the message
    /// names.
    #[error("{0}")]
    LimitReached(String),
    /// The write lost to another: the schedule's name is taken, or the
    /// schedule changed since it was read. The message says which.
    #[error("{0}")]
    Conflict(String),
    #[error("schedule {0:?} not found")]
    ScheduleNotFound(String),
    /// The lease presented is no longer honoured.
    #[error("lease on task {task_id} lost: {reason}")]
    LeaseLost { task_id: TaskId, reason: LeaseLost },
}

pub type StoreResult<T> = Result<T, StoreError>;
