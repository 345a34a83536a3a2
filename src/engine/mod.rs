//! The transport-free core: the TaskManager and its scheduler, executor and
//! event bus. Nothing in here knows about gRPC, HTTP or SQL.

pub mod config;
pub mod error;
pub mod events;
mod executor;
pub mod handler;
pub mod manager;
pub mod metrics;
pub mod model;
pub mod queue;
mod recovery;
pub mod scheduler;
pub mod validate;
mod watch;

pub use config::{EngineConfig, Limits, SchedulingWeights};
pub use error::{EngineError, EngineResult};
pub use events::{EventKind, TaskEvent};
pub use handler::{HandlerError, HandlerRegistry, HandlerResult, TaskContext, TaskHandler};
pub use manager::{EngineStats, TaskManager, TaskPage, TypeStats};
pub use model::*;
