//! Engine errors as HTTP responses: the only place that decides the status.
//! Bodies are `{"code": "...", "message": "...", "field": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::engine::EngineError;
use crate::store::StoreError;

/// An error a REST handler returns.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    /// A client mistake in `field`.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_ARGUMENT",
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: message.into(),
            field: None,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let (status, code) = match &error {
            EngineError::InvalidArgument { .. } => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            EngineError::TaskNotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            EngineError::AlreadyFinished { .. } => (StatusCode::CONFLICT, "FAILED_PRECONDITION"),
            EngineError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            EngineError::Store(StoreError::Duplicate(_)) => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
            EngineError::Store(StoreError::Corrupt(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
            EngineError::Store(StoreError::Database(_) | StoreError::Closed) => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
            }
        };
        if status.is_server_error() {
            tracing::warn!(%error, "request failed on the server side");
        }
        let field = match &error {
            EngineError::InvalidArgument { field, .. } => Some(field.clone()),
            _ => None,
        };
        ApiError {
            status,
            code,
            message: error.to_string(),
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            body["field"] = serde_json::Value::String(field);
        }
        (self.status, axum::Json(body)).into_response()
    }
}
