//! Engine errors as gRPC statuses: the only place that decides the code.

use tonic::{Code, Status};

use crate::engine::EngineError;
use crate::store::StoreError;

pub fn to_status(error: EngineError) -> Status {
    let code = match &error {
        EngineError::InvalidArgument { .. } => Code::InvalidArgument,
        EngineError::TaskNotFound(_) => Code::NotFound,
        EngineError::AlreadyFinished { .. } => Code::FailedPrecondition,
        EngineError::ShuttingDown => Code::Unavailable,
        EngineError::Store(StoreError::Duplicate(_)) => Code::AlreadyExists,
        EngineError::Store(StoreError::Corrupt(_)) => Code::DataLoss,
        EngineError::Store(StoreError::Database(_) | StoreError::Closed) => Code::Unavailable,
    };
    if code == Code::Unavailable || code == Code::DataLoss {
        tracing::warn!(%error, "request failed on the server side");
    }
    Status::new(code, error.to_string())
}
