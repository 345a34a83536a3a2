//! Executors run attempts under leases. The in-process one ([`local`]) is
//! one executor among others: it claims, renews and finishes through the
//! same store operations a remote worker's do.

mod attempt;
pub mod local;
mod progress;
pub mod remote;

pub use local::LocalExecutor;
