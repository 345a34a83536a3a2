//! A `report_generation` report as its two files present it: the numbers
//! of one window, and their JSON form (the Markdown layout is `markdown`'s).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::handlers::aggregate::{Percentiles, TaskSummary};
use crate::handlers::timestamps;
use crate::model::{TaskStatus, Timestamp};

/// Most tasks one report reads.
pub const MAX_TASKS: u64 = 1_000_000;

/// Errors listed in a report.
pub const TOP_ERRORS: usize = 10;

/// A finished report, ready to be written as JSON or Markdown.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub generated_at: Timestamp,
    pub window_start: Timestamp,
    pub since: Duration,
    /// Task types reported on; empty for all.
    pub task_types: Vec<String>,
    /// Whether [`MAX_TASKS`] cut the report short.
    pub truncated: bool,
    pub tasks: u64,
    pub by_type: BTreeMap<String, BTreeMap<TaskStatus, u64>>,
    pub by_status: BTreeMap<TaskStatus, u64>,
    pub success_rate: Option<f64>,
    pub queue_wait: Percentiles,
    pub run_time: Percentiles,
    pub top_errors: Vec<(String, u64)>,
    pub untracked_errors: u64,
}

impl Report {
    /// The report of `summary`, the tasks of types `task_types` (all when
    /// empty) created in the `since` before `generated_at`.
    pub fn new(
        mut summary: TaskSummary,
        since: Duration,
        task_types: Vec<String>,
        generated_at: Timestamp,
        truncated: bool,
    ) -> Self {
        Report {
            generated_at,
            window_start: generated_at.saturating_sub(since),
            since,
            task_types,
            truncated,
            tasks: summary.tasks,
            success_rate: summary.success_rate(),
            queue_wait: summary.queue_wait(),
            run_time: summary.run_time(),
            top_errors: summary.top_errors(TOP_ERRORS),
            untracked_errors: summary.untracked_errors,
            by_type: summary.by_type,
            by_status: summary.by_status,
        }
    }

    pub fn top_errors_json(&self) -> Value {
        self.top_errors
            .iter()
            .map(|(error, count)| json!({ "error": error, "count": count }))
            .collect()
    }

    /// The whole report as JSON.
    pub fn to_json(&self) -> Value {
        let by_type: BTreeMap<&str, BTreeMap<&str, u64>> = self
            .by_type
            .iter()
            .map(|(task_type, counts)| (task_type.as_str(), status_names(counts)))
            .collect();
        json!({
            "generated_at": timestamps::rfc3339(self.generated_at),
            "window": {
                "since": humantime::format_duration(self.since).to_string(),
                "from": timestamps::rfc3339(self.window_start),
                "to": timestamps::rfc3339(self.generated_at),
            },
            "task_types": self.task_types,
            "tasks": self.tasks,
            "truncated": self.truncated,
            "counts_by_status": status_names(&self.by_status),
            "counts_by_type": by_type,
            "success_rate": self.success_rate,
            "queue_wait_ms": self.queue_wait.to_json(),
            "run_time_ms": self.run_time.to_json(),
            "top_errors": self.top_errors_json(),
            "untracked_errors": self.untracked_errors,
        })
    }
}

fn status_names(counts: &BTreeMap<TaskStatus, u64>) -> BTreeMap<&'static str, u64> {
    counts.iter().map(|(status, count)| (status.as_str(), *count)).collect()
}
