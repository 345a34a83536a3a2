//! The transport-free core. The [`TaskManager`] is its face; every change
//! it makes is an operation of the store, which decides with the model's
//! rules. Executors run attempts under leases the store hands out; the
//! in-process one ([`executor::LocalExecutor`]) runs the built-in and
//! embedded handlers. Nothing in here knows about gRPC, HTTP or SQL.

pub mod catalog;
mod cluster;
pub mod config;
mod core;
mod dispatch;
mod drafts;
pub mod error;
pub mod executor;
pub mod handler;
pub mod limits;
pub mod manager;
pub mod metrics;
pub mod stats;
mod task_types;
mod timers;
pub mod validate;
mod watch;
pub mod workers;

pub use config::{EngineConfig, Limits, SchedulingWeights};
pub use error::{EngineError, EngineResult, ErrorCode};
pub use handler::{HandlerError, HandlerRegistry, HandlerResult, TaskContext, TaskHandler};
pub use limits::unthrottled_reason;
pub use manager::{TaskManager, TaskPage};
pub use stats::{EngineStats, Scheduling, StatusCounts, TypeStats};
