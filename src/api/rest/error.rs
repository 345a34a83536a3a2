//! Engine errors as HTTP responses, through the one table of codes. Bodies
//! are `{"code": "...", "message": "...", "field": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::error_codes::wire_codes;
use crate::engine::{EngineError, ErrorCode};

/// An error a REST handler returns.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// A client mistake in `field`.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::with_code(ErrorCode::InvalidArgument, format!("{field}: {message}"), Some(field))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::with_code(ErrorCode::NotFound, message.into(), None)
    }

    fn with_code(code: ErrorCode, message: String, field: Option<String>) -> Self {
        let codes = wire_codes(code);
        ApiError {
            status: codes.http,
            code: codes.name,
            message,
            field,
            retry_after: None,
        }
    }

    /// A per-connection or server limit reached; retry later.
    pub fn overloaded(message: String) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "RESOURCE_EXHAUSTED",
            message,
            field: None,
            retry_after: Some(std::time::Duration::from_secs(1)),
        }
    }

    /// The caller's token does not allow this.
    pub fn permission_denied(message: String) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "PERMISSION_DENIED",
            message,
            field: None,
            retry_after: None,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        if wire_codes(error.code()).http.is_server_error() {
            tracing::warn!(%error, "request failed on the server side");
        }
        let mut api_error = Self::with_code(error.code(), error.to_string(), error.field().map(str::to_string));
        api_error.retry_after = error.retry_after();
        api_error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            body["field"] = serde_json::Value::String(field);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(retry_after) = self.retry_after {
            crate::api::access::insert_retry_hint(response.headers_mut(), retry_after.as_millis() as u64);
        }
        response
    }
}
