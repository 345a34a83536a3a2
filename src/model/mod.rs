//! The task model and its rules: plain data and pure functions, no I/O.
//!
//! Everything else stands on this module. The engine builds tasks and asks
//! the store to apply transitions; every store backend decides those
//! transitions with the same functions in [`rules`], so SQLite and
//! PostgreSQL cannot disagree about what follows what.
//!
//! - [`task`]: what a task is ([`Task`], its status, priority, attempts).
//! - [`submit`]: what a client asks for ([`NewTask`]) and its fingerprint.
//! - [`lease`]: the right to run one attempt ([`Lease`]).
//! - [`event`]: what watchers are told ([`TaskEvent`]).
//! - [`rules`]: the status machine.
//! - [`worker`]: a connected worker as operators and other nodes see it.

mod clock;
pub mod event;
mod filter;
mod id;
pub mod lease;
mod micros;
pub mod retry;
pub mod rules;
pub mod schedule;
pub mod scheduling;
pub mod submit;
pub mod task;
mod time;
pub mod worker;

pub use clock::Clock;
pub use event::{EventKind, TaskEvent};
pub use filter::TaskFilter;
pub use id::TaskId;
pub use lease::{ClaimedTask, ExecutorId, Lease, LeaseLost, LeaseRef, LeaseToken};
pub use retry::{PartialRetryPolicy, RetryPolicy};
pub use scheduling::SchedulingWeights;
pub use submit::{DependencyTarget, Fingerprint, NewDependency, NewTask};
pub use task::{
    Attempt, AttemptOutcome, MachineState, Params, Progress, StatusCount, Task, TaskDependency, TaskPriority,
    TaskStatus,
};
pub use time::Timestamp;
pub use worker::WorkerInfo;
