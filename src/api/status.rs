//! Engine errors as gRPC statuses, through the one table of codes.

use tonic::Status;

use crate::api::error_codes::wire_codes;
use crate::engine::EngineError;

pub fn to_status(error: EngineError) -> Status {
    let codes = wire_codes(error.code());
    if codes.http.is_server_error() {
        tracing::warn!(%error, "request failed on the server side");
    }
    Status::new(codes.grpc, error.to_string())
}
