//! Transports over the engine. Thin: they convert, call the engine, and
//! convert back; errors map to wire codes in one place per transport.

pub mod access;
pub mod convert;
pub mod dashboard;
pub mod deadline;
pub mod error_codes;
pub mod grpc_limits;
pub mod guard;
pub use taskd_proto::json;
pub mod metrics;
#[cfg(test)]
mod properties;
pub mod proto;
pub mod rest;
pub mod schedule_calls;
pub mod schedule_convert;
pub mod schedule_service;
pub mod status;
pub mod system_convert;
pub mod system_service;
pub mod task_service;
pub mod worker_convert;
pub mod worker_service;
