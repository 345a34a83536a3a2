//! The statistics the seed's `get_status` and the dashboard show: counts by
//! status and type from the store, and the state of the node's scheduling.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::TaskStatus;
use crate::store::StatusCount;

/// Number of tasks per status, indexed by `TaskStatus::index`.
pub type StatusCounts = [u64; 7];

/// Counts of tasks of one type.
#[derive(Clone, Debug, Default)]
pub struct TypeStats {
    pub task_type: String,
    pub counts: StatusCounts,
    /// Whether something here runs the type: a handler, or a worker.
    pub handler_available: bool,
    /// Workers connected here that serve the type.
    pub workers: usize,
    pub concurrency_limit: usize,
}

/// A snapshot of the engine's statistics.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub counts: StatusCounts,
    pub by_type: Vec<TypeStats>,
    pub running: usize,
    pub max_concurrent_tasks: usize,
    pub effective_concurrency_limit: usize,
    pub concurrency_limit_reason: String,
    pub unserved_task_types: Vec<String>,
    pub submitted_since_start: u64,
    pub failed_attempts_since_start: u64,
    pub retries_since_start: u64,
    /// None while no task has ended.
    pub success_rate: Option<f64>,
    pub uptime: Duration,
}

/// This node's scheduling at one moment.
#[derive(Clone, Debug)]
pub struct Scheduling {
    pub max_concurrent_tasks: usize,
    /// The limit in force and why.
    pub effective_concurrency_limit: usize,
    pub concurrency_limit_reason: String,
    /// Attempts this node runs now.
    pub running: usize,
}

/// Counts per type, with every served type present even when it has no
/// tasks.
pub fn counts_by_type<'a>(
    rows: Vec<StatusCount>,
    served: impl Iterator<Item = &'a str>,
) -> BTreeMap<String, StatusCounts> {
    let mut by_type: BTreeMap<String, StatusCounts> = BTreeMap::new();
    for row in rows {
        by_type.entry(row.task_type).or_default()[row.status.index()] += row.count;
    }
    for task_type in served {
        by_type.entry(task_type.to_string()).or_default();
    }
    by_type
}

/// Tasks of this type wait for something to run them.
pub fn has_waiting_work(counts: &StatusCounts) -> bool {
    counts[TaskStatus::Pending.index()] + counts[TaskStatus::Scheduled.index()] + counts[TaskStatus::Waiting.index()]
        > 0
}

/// Completed over all that ended; `None` when nothing ended (a rate of 0
/// would say every task failed).
pub fn success_rate(counts: &StatusCounts) -> Option<f64> {
    let completed = counts[TaskStatus::Completed.index()];
    let ended = completed + counts[TaskStatus::Failed.index()] + counts[TaskStatus::Cancelled.index()];
    (ended > 0).then(|| completed as f64 / ended as f64)
}
