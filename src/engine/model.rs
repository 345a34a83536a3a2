//! The task model: what a task is, independent of any transport or store.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use uuid::Uuid;

/// JSON object of handler arguments.
pub type Params = Map<String, Value>;

/// A task's server-assigned id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub Uuid);

impl TaskId {
    pub fn new() -> Self {
        TaskId(Uuid::now_v7())
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for TaskId {
    type Err = uuid::Error;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text).map(TaskId)
    }
}

/// Microseconds since the Unix epoch: cheap to compare, store and ship.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(since) => Timestamp(since.as_micros() as i64),
            Err(before) => Timestamp(-(before.duration().as_micros() as i64)),
        }
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    pub fn saturating_add(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration.as_micros() as i64))
    }

    pub fn saturating_sub(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration.as_micros() as i64))
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

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
    pub fn code(self) -> i64 {
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

/// Why a dependent can never run: its dependency ended in another status
/// than the one it requires.
pub fn unmet_dependency_reason(dependency: TaskId, ended: TaskStatus, required: TaskStatus) -> String {
    format!("dependency {dependency} ended {ended}, required {required}")
}

/// Exponential backoff between attempts.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub multiplier: f64,
    pub max_backoff: Duration,
    /// Fraction of the delay drawn at random, in [0, 1].
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(300),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `retry_number` (1-based), before jitter.
    pub fn base_delay(&self, retry_number: u32) -> Duration {
        let exponent = retry_number.saturating_sub(1).min(64) as i32;
        let seconds = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = seconds.min(self.max_backoff.as_secs_f64());
        Duration::from_secs_f64(capped.max(0.0))
    }

    /// The delay before retry `retry_number`, spread by jitter; `unit` is a
    /// random draw in [0, 1).
    pub fn delay(&self, retry_number: u32, unit: f64) -> Duration {
        let base = self.base_delay(retry_number).as_secs_f64();
        let spread = base * self.jitter * (2.0 * unit - 1.0);
        Duration::from_secs_f64((base + spread).max(0.0))
    }
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
    Interrupted,
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
}

/// Where a dependency in a submit points.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DependencyTarget {
    /// An existing task.
    Task(TaskId),
    /// Another member of the same batch, by its batch reference.
    BatchRef(String),
}

/// A dependency as a client submits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDependency {
    pub target: DependencyTarget,
    pub required_status: TaskStatus,
}

/// A task as a client submits it: the seed's `TaskManager.submit` arguments.
/// Unset options take the server's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewTask {
    pub name: String,
    pub task_type: String,
    pub params: Params,
    pub priority: TaskPriority,
    pub dependencies: Vec<NewDependency>,
    pub max_retries: Option<u32>,
    pub timeout: Option<Duration>,
    pub run_at: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
    pub retry_policy: Option<PartialRetryPolicy>,
    pub batch_ref: Option<String>,
}

impl NewTask {
    pub fn new(task_type: impl Into<String>) -> Self {
        NewTask {
            task_type: task_type.into(),
            ..NewTask::default()
        }
    }
}

/// A retry policy with each field optional, filled from server defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PartialRetryPolicy {
    pub initial_backoff: Option<Duration>,
    pub multiplier: Option<f64>,
    pub max_backoff: Option<Duration>,
    pub jitter: Option<f64>,
}

impl PartialRetryPolicy {
    pub fn or_defaults(self, defaults: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: self.initial_backoff.unwrap_or(defaults.initial_backoff),
            multiplier: self.multiplier.unwrap_or(defaults.multiplier),
            max_backoff: self.max_backoff.unwrap_or(defaults.max_backoff),
            jitter: self.jitter.unwrap_or(defaults.jitter),
        }
    }
}

/// Which tasks a list or a watch is about. Empty parts match everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    pub statuses: Vec<TaskStatus>,
    pub task_types: Vec<String>,
    pub priorities: Vec<TaskPriority>,
    pub labels: BTreeMap<String, String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

impl TaskFilter {
    pub fn matches(&self, task: &Task) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&task.status))
            && (self.task_types.is_empty() || self.task_types.contains(&task.task_type))
            && (self.priorities.is_empty() || self.priorities.contains(&task.priority))
            && self
                .labels
                .iter()
                .all(|(key, value)| task.labels.get(key) == Some(value))
            && self.created_after.is_none_or(|after| task.created_at >= after)
            && self.created_before.is_none_or(|before| task.created_at < before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_millis(500),
            jitter: 0.0,
        };
        let delays: Vec<_> = (1..=5).map(|n| policy.base_delay(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_spreads_the_delay_both_ways_within_its_fraction() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(60),
            jitter: 0.5,
        };
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(policy.delay(1, 0.5), Duration::from_secs(1));
        assert!(policy.delay(1, 0.999) < Duration::from_millis(1500));
    }

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
