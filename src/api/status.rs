//! Engine errors as gRPC statuses, through the one table of codes.

use tonic::Status;

use crate::api::error_codes::wire_codes;
use crate::engine::EngineError;

pub fn to_status(error: EngineError) -> Status {
    let codes = wire_codes(error.code());
    if codes.http.is_server_error() {
        tracing::warn!(%error, "request failed on the server side");
    }
    let retry_after = error.retry_after();
    let mut status = Status::new(codes.grpc, error.to_string());
    if let Some(retry_after) = retry_after {
        let mut headers = axum::http::HeaderMap::new();
        crate::api::access::insert_retry_hint(&mut headers, retry_after.as_millis() as u64);
        *status.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
    }
    status
}
