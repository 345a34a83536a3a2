//! Every transition a task can take, written once for every backend: what
//! it reads and locks, what it decides (with the pure rules of
//! [`crate::model::rules`] and [`crate::store::decide`]), what it writes
//! and what it publishes. A transition runs inside one transaction of a
//! driver ([`crate::store::driver::Tx`]) and only calls its statements;
//! adding an operation means one transition here and a few statements per
//! driver.

pub mod attempt;
pub mod cancel;
pub mod cascade;
pub mod claim;
pub mod lease;
pub mod promote;
pub mod purge;
pub mod rescue;
pub mod schedules;
pub mod submit;
pub mod task_types;

pub use attempt::finish_many;
pub use cancel::cancel;
pub use claim::claim;
pub use lease::{record_progress, renew};
pub use promote::promote;
pub use purge::purge;
pub use rescue::rescue;
pub use schedules::{create_schedule, delete_schedule, update_schedule};
pub use submit::{submit, submit_and_claim};
pub use task_types::{declare_task_types, forget_task_types};
