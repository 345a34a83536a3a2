//! One point of the node's recent history: what the history keeps, the
//! journal saves and the dashboard charts.

use crate::model::Timestamp;

/// One interval of the node's life.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryPoint {
    /// The end of the interval.
    pub time: Timestamp,
    /// Tasks submitted, completed and failed in the interval.
    pub submitted: u64,
    pub completed: u64,
    pub failed: u64,
    pub submitted_per_second: f64,
    pub completed_per_second: f64,
    pub failed_per_second: f64,
    /// Queue wait of the attempts started in the interval, from the latency
    /// histogram's buckets (an upper bound of the true quantile); None when
    /// none started.
    pub queue_wait_p50_seconds: Option<f64>,
    pub queue_wait_p95_seconds: Option<f64>,
    /// Tasks waiting to start (PENDING) and running, at the end.
    pub pending: u64,
    pub running: u64,
    pub effective_concurrency_limit: u64,
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub disk_percent: Option<f64>,
    pub io_wait_percent: Option<f64>,
}
