//! What a task is: its data, status, priority, dependencies and attempts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::model::{RetryPolicy, TaskId, Timestamp};

/// JSON object of handler arguments.
pub type Params = Map<String, Value>;

/// Where a task is in its life; see `proto/taskd/v1/task.proto` for the
/// status machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Pending,
    Scheduled,
    Running,
    Completed,
    Failed,
    Cancelled,
    Waiting,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Pending,
        TaskStatus::Scheduled,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
        TaskStatus::Waiting,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::Scheduled => "SCHEDULED",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Cancelled => "CANCELLED",
            TaskStatus::Waiting => "WAITING",
        }
    }

    /// Stable small integer used by stores; never reorder.
    pub const fn code(self) -> i64 {
        match self {
            TaskStatus::Pending => 1,
            TaskStatus::Scheduled => 2,
            TaskStatus::Running => 3,
            TaskStatus::Completed => 4,
            TaskStatus::Failed => 5,
            TaskStatus::Cancelled => 6,
            TaskStatus::Waiting => 7,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        TaskStatus::ALL.into_iter().find(|status| status.code() == code)
    }

    pub fn index(self) -> usize {
        (self.code() - 1) as usize
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum TaskPriority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl TaskPriority {
    pub const ALL: [TaskPriority; 4] = [
        TaskPriority::Low,
        TaskPriority::Normal,
        TaskPriority::High,
        TaskPriority::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskPriority::Low => "LOW",
            TaskPriority::Normal => "NORMAL",
            TaskPriority::High => "HIGH",
            TaskPriority::Critical => "CRITICAL",
        }
    }

    /// Stable small integer used by stores; never reorder.
    pub fn code(self) -> i64 {
        match self {
            TaskPriority::Low => 1,
            TaskPriority::Normal => 2,
            TaskPriority::High => 3,
            TaskPriority::Critical => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        TaskPriority::ALL.into_iter().find(|priority| priority.code() == code)
    }
}

impl fmt::Display for TaskPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task that must end in `required_status` before the dependent may run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskDependency {
    pub task_id: TaskId,
    pub required_status: TaskStatus,
}

/// Progress that a running handler reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub percent: f32,
    pub message: String,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptOutcome {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    /// The executor holding the attempt went away (its process stopped, or
    /// it disconnected) and its lease was taken back.
    Interrupted,
    /// The executor stopped renewing its lease before the deadline.
    LeaseExpired,
    /// The executor handed the task back unfinished (it was draining); the
    /// task went back to the queue without using a retry.
    Released,
}

impl AttemptOutcome {
    /// The outcome's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Running => "RUNNING",
            AttemptOutcome::Succeeded => "SUCCEEDED",
            AttemptOutcome::Failed => "FAILED",
            AttemptOutcome::TimedOut => "TIMED_OUT",
            AttemptOutcome::Cancelled => "CANCELLED",
            AttemptOutcome::Interrupted => "INTERRUPTED",
            AttemptOutcome::LeaseExpired => "LEASE_EXPIRED",
            AttemptOutcome::Released => "RELEASED",
        }
    }

    /// Whether the attempt ended as a failure that may be retried.
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            AttemptOutcome::Running | AttemptOutcome::Succeeded | AttemptOutcome::Cancelled | AttemptOutcome::Released
        )
    }
}

/// The machine as the scheduler saw it at one moment: kept on each attempt
/// so that a slow or failed run can be read against the load of the time.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MachineState {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub io_wait_percent: Option<f64>,
    /// The concurrency limit in force.
    pub effective_limit: u32,
    /// Whether the limit was below `max_concurrent_tasks` because of load.
    pub throttled: bool,
}

/// One execution of a task.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    pub worker: String,
    /// The machine when the attempt started; absent when nothing was sampled
    /// yet (or the monitor is off).
    #[serde(default)]
    pub started_under: Option<MachineState>,
    /// The machine when the attempt ended.
    #[serde(default)]
    pub finished_under: Option<MachineState>,
}

/// A unit of background work and everything known about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub name: String,
    pub task_type: String,
    pub params: Params,
    pub priority: TaskPriority,
    pub status: TaskStatus,
    pub dependencies: Vec<TaskDependency>,
    pub max_retries: u32,
    pub retry_count: u32,
    pub timeout: Duration,
    pub run_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub progress: Option<Progress>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
    pub attempts: Vec<Attempt>,
    pub retry_policy: RetryPolicy,
    pub status_reason: String,
    pub updated_at: Timestamp,
    /// Incremented by every stored change: a watcher skips events it has
    /// already seen in a snapshot.
    pub revision: u64,
}

/// Number of stored tasks of one type in one status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCount {
    pub task_type: String,
    pub status: TaskStatus,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip() {
        for status in TaskStatus::ALL {
            assert_eq!(TaskStatus::from_code(status.code()), Some(status));
        }
        for priority in TaskPriority::ALL {
            assert_eq!(TaskPriority::from_code(priority.code()), Some(priority));
        }
    }
}
