//! The transport-free core, entered through one facade per capability:
//! [`Engine`] starts and stops it and hands out [`TaskManager`] (tasks),
//! [`Workers`] (the worker protocol), [`Schedules`] and [`Admin`]
//! (administration). Every change is an operation of the store, which
//! decides with the model's rules. Executors run attempts under leases the store hands out; the
//! in-process one ([`executor::LocalExecutor`]) runs the built-in and
//! embedded handlers. Nothing in here knows about gRPC, HTTP or SQL.

mod admin;
pub mod catalog;
mod cluster;
pub mod config;
mod core;
mod dispatch;
mod drafts;
pub mod error;
pub mod executor;
pub mod handler;
mod lifecycle;
pub mod limits;
mod manager;
pub mod metrics;
pub mod retention;
pub mod schedules;
pub mod stats;
mod task_types;
mod timers;
pub mod validate;
mod watch;
mod worker_registry;
mod workers;

pub use admin::{Admin, Purged};
pub use config::{EngineConfig, Limits, SchedulingWeights};
pub use error::{EngineError, EngineResult, ErrorCode};
pub use handler::{HandlerError, HandlerRegistry, HandlerResult, TaskContext, TaskHandler};
pub use lifecycle::Engine;
pub use limits::unthrottled_reason;
pub use manager::{TaskManager, TaskPage};
pub use retention::RetentionConfig;
pub use schedules::{ScheduleView, Schedules};
pub use stats::{EngineStats, Scheduling, StatusCounts, TypeStats};
pub use worker_registry::{TaskTypeInfo, WorkerHello};
pub use workers::Workers;
