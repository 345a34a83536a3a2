//! Leases: the right to run one attempt of one task, handed out by the store.
//!
//! Whoever runs a task (the in-process executor, a remote worker) holds a
//! lease until a deadline and renews it while it works. Renewing, reporting
//! progress or finishing under a lease the store no longer honours is
//! refused with [`LeaseLost`] and changes nothing, so each attempt has
//! exactly one accepted outcome.

use std::fmt;

use crate::model::{TaskId, Timestamp};

/// Who runs attempts: `local` for the in-process executor, a worker's name
/// for a remote one. Recorded on every attempt.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExecutorId(String);

impl ExecutorId {
    /// The in-process executor of this server.
    pub const LOCAL: &'static str = "local";

    pub fn new(name: impl Into<String>) -> Self {
        ExecutorId(name.into())
    }

    pub fn local() -> Self {
        ExecutorId(Self::LOCAL.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExecutorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ExecutorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A random token that fences one lease: a later claim of the same task
/// gets another, so a stale holder can never pass for the current one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub u64);

impl LeaseToken {
    /// A fresh token from `random` bits; never zero.
    pub fn from_random(random: u64) -> Self {
        LeaseToken(random | 1)
    }

    /// The token as a signed integer, the way SQL columns keep it.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    pub fn from_i64(value: i64) -> Self {
        LeaseToken(value as u64)
    }
}

impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What a lease holder presents to renew, report progress or finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LeaseRef {
    pub task_id: TaskId,
    /// The attempt this lease is for, 1-based.
    pub attempt: u32,
    pub token: LeaseToken,
}

/// A lease as the store handed it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub task_id: TaskId,
    pub attempt: u32,
    pub token: LeaseToken,
    pub executor: ExecutorId,
    /// The lease ends here unless renewed; never later than the attempt's
    /// start plus the task's timeout.
    pub deadline: Timestamp,
}

impl Lease {
    pub fn reference(&self) -> LeaseRef {
        LeaseRef {
            task_id: self.task_id,
            attempt: self.attempt,
            token: self.token,
        }
    }
}

/// Why the store refused a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseLost {
    /// Its deadline passed (the holder stopped renewing, or the attempt ran
    /// out of time).
    Expired,
    /// It was taken back: the task was rescued and retried, failed, or is
    /// held by a later attempt.
    Superseded,
    /// The task was cancelled.
    Cancelled,
    /// No task has this id.
    UnknownTask,
    /// The task's current attempt was never leased with this token (or the
    /// attempt number is ahead of the task's): the lease is not the
    /// presenter's, and its holder keeps it.
    NotIssued,
}

impl fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseLost::Expired => "the lease expired",
            LeaseLost::Superseded => "the lease was taken back and the attempt closed",
            LeaseLost::Cancelled => "the task was cancelled",
            LeaseLost::UnknownTask => "no such task",
            LeaseLost::NotIssued => "not the token this attempt was leased with; the lease stays with its holder",
        })
    }
}

/// A task handed to an executor with its lease.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedTask {
    pub lease: Lease,
    /// The task as it is now (RUNNING), params included.
    pub task: crate::model::Task,
}
