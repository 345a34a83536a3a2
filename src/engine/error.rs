//! What can go wrong in the engine, in terms a client can act on.

use crate::engine::model::{TaskId, TaskStatus};
use crate::store::StoreError;

/// An engine error. Each variant maps to one gRPC code and one HTTP status in
/// the API layer (`api::status`), and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed; `field` names the offending field as the
    /// client spelled it, e.g. `dependencies[1].task_id`.
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },

    #[error("task {0} not found")]
    TaskNotFound(TaskId),

    /// The task is past the point where the request could apply.
    #[error("task {task_id} is already {status}")]
    AlreadyFinished { task_id: TaskId, status: TaskStatus },

    #[error("the server is shutting down")]
    ShuttingDown,

    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

impl EngineError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
