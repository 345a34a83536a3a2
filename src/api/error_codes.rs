//! The one table from engine errors to wire codes: each [`ErrorCode`]'s
//! gRPC code, HTTP status and name. gRPC (`status`) and REST
//! (`rest::error`) both read it; neither looks at an error any closer.

use axum::http::StatusCode;
use tonic::Code;

use crate::engine::ErrorCode;

/// How one kind of error travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireCodes {
    pub grpc: Code,
    pub http: StatusCode,
    /// The gRPC code's canonical name, used as the REST error `code`.
    pub name: &'static str,
}

pub fn wire_codes(code: ErrorCode) -> WireCodes {
    let (grpc, http, name) = match code {
        ErrorCode::InvalidArgument => (Code::InvalidArgument, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        ErrorCode::NotFound => (Code::NotFound, StatusCode::NOT_FOUND, "NOT_FOUND"),
        ErrorCode::AlreadyExists => (Code::AlreadyExists, StatusCode::CONFLICT, "ALREADY_EXISTS"),
        ErrorCode::FailedPrecondition => (Code::FailedPrecondition, StatusCode::CONFLICT, "FAILED_PRECONDITION"),
        ErrorCode::Unavailable => (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        ErrorCode::DataLoss => (Code::DataLoss, StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        ErrorCode::PermissionDenied => (Code::PermissionDenied, StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        ErrorCode::ResourceExhausted => (
            Code::ResourceExhausted,
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
        ),
    };
    WireCodes { grpc, http, name }
}
