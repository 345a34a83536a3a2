//! The arithmetic of `report_generation`, kept apart from reading tasks and
//! writing files so that it can be tested on plain values: counts by type
//! and status, success rate, percentiles of queue wait and run time, and the
//! most frequent errors.
//!
//! Tasks are folded in one at a time ([`TaskSummary::add`]), so a report
//! over many tasks holds two numbers per attempt and the distinct error
//! messages, never the tasks themselves. Error messages are grouped by
//! their first [`ERROR_KEY_CHARS`] characters, and at most
//! [`MAX_DISTINCT_ERRORS`] distinct ones are tracked: occurrences of
//! messages first seen after that are counted as `untracked_errors`, which
//! bounds memory when every error is unique.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::model::{AttemptOutcome, Task, TaskStatus};

/// Characters of an error message that identify it in the top errors.
pub const ERROR_KEY_CHARS: usize = 200;

/// Most distinct error messages tracked.
pub const MAX_DISTINCT_ERRORS: usize = 50_000;

/// The percentiles a report gives, in milliseconds; `None` with no samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub samples: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    /// p50, p90 and p99 of durations given in microseconds, reported in
    /// milliseconds. Sorts `samples`.
    pub fn of_micros(samples: &mut [u64]) -> Self {
        samples.sort_unstable();
        let millis = |micros: Option<u64>| micros.map(|micros| micros as f64 / 1000.0);
        Percentiles {
            samples: samples.len(),
            p50: millis(percentile(samples, 50.0)),
            p90: millis(percentile(samples, 90.0)),
            p99: millis(percentile(samples, 99.0)),
        }
    }

    pub fn to_json(self) -> Value {
        json!({ "p50": self.p50, "p90": self.p90, "p99": self.p99, "samples": self.samples })
    }
}

/// The `p`th percentile (0 < p <= 100) of ascending `sorted` by the
/// nearest-rank method: the smallest sample with at least p% of the samples
/// at or below it. `None` when there are no samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Completed tasks as a share of terminal ones; `None` when none finished.
pub fn success_rate(by_status: &BTreeMap<TaskStatus, u64>) -> Option<f64> {
    let count = |status| by_status.get(&status).copied().unwrap_or(0);
    let completed = count(TaskStatus::Completed);
    let terminal = completed + count(TaskStatus::Failed) + count(TaskStatus::Cancelled);
    (terminal > 0).then(|| completed as f64 / terminal as f64)
}

/// `counts` as (key, count) pairs, most frequent first, ties by key; at
/// most `n` of them.
pub fn most_frequent(counts: &HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut pairs: Vec<(String, u64)> = counts.iter().map(|(key, count)| (key.clone(), *count)).collect();
    pairs.sort_unstable_by(|(key_a, count_a), (key_b, count_b)| count_b.cmp(count_a).then_with(|| key_a.cmp(key_b)));
    pairs.truncate(n);
    pairs
}

/// An error message shortened to its grouping key.
pub fn error_key(message: &str) -> String {
    match message.char_indices().nth(ERROR_KEY_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

/// Everything a report computes, folded over tasks.
#[derive(Clone, Debug, Default)]
pub struct TaskSummary {
    pub tasks: u64,
    pub by_type: BTreeMap<String, BTreeMap<TaskStatus, u64>>,
    pub by_status: BTreeMap<TaskStatus, u64>,
    /// First attempt start minus creation, in microseconds.
    pub queue_wait_micros: Vec<u64>,
    /// Finish minus start of each finished attempt, in microseconds.
    pub run_time_micros: Vec<u64>,
    pub errors: HashMap<String, u64>,
    pub untracked_errors: u64,
}

impl TaskSummary {
    /// Folds one task in.
    ///
    /// Queue wait runs from creation to the start of the first attempt, so
    /// it includes any time the task spent scheduled (`run_at`) or waiting
    /// for dependencies. Run times leave out interrupted attempts: their end
    /// is when the next start noticed them, not when they stopped.
    pub fn add(&mut self, task: &Task) {
        self.tasks += 1;
        *self
            .by_type
            .entry(task.task_type.clone())
            .or_default()
            .entry(task.status)
            .or_insert(0) += 1;
        *self.by_status.entry(task.status).or_insert(0) += 1;
        if let Some(first) = task.attempts.iter().min_by_key(|attempt| attempt.number) {
            self.queue_wait_micros
                .push(duration_micros(first.started_at.duration_since(task.created_at)));
        }
        for attempt in &task.attempts {
            if let Some(finished_at) = attempt.finished_at
                && attempt.outcome != AttemptOutcome::Interrupted
            {
                self.run_time_micros
                    .push(duration_micros(finished_at.duration_since(attempt.started_at)));
            }
            if let Some(error) = &attempt.error {
                self.count_error(error);
            }
        }
    }

    fn count_error(&mut self, message: &str) {
        let key = error_key(message);
        if let Some(count) = self.errors.get_mut(&key) {
            *count += 1;
        } else if self.errors.len() < MAX_DISTINCT_ERRORS {
            self.errors.insert(key, 1);
        } else {
            self.untracked_errors += 1;
        }
    }

    pub fn success_rate(&self) -> Option<f64> {
        success_rate(&self.by_status)
    }

    /// Percentiles of queue wait, in milliseconds.
    pub fn queue_wait(&mut self) -> Percentiles {
        Percentiles::of_micros(&mut self.queue_wait_micros)
    }

    /// Percentiles of attempt run time, in milliseconds.
    pub fn run_time(&mut self) -> Percentiles {
        Percentiles::of_micros(&mut self.run_time_micros)
    }

    /// The `n` most frequent errors with their counts.
    pub fn top_errors(&self, n: usize) -> Vec<(String, u64)> {
        most_frequent(&self.errors, n)
    }
}

fn duration_micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attempt, Params, TaskId, TaskPriority, Timestamp};

    fn attempt(
        number: u32,
        started: i64,
        finished: Option<i64>,
        outcome: AttemptOutcome,
        error: Option<&str>,
    ) -> Attempt {
        Attempt {
            number,
            started_at: Timestamp(started),
            finished_at: finished.map(Timestamp),
            outcome,
            error: error.map(str::to_string),
            worker: String::new(),
            started_under: None,
            finished_under: None,
        }
    }

    fn task(task_type: &str, status: TaskStatus, created: i64, attempts: Vec<Attempt>) -> Task {
        Task {
            id: TaskId::new(),
            name: task_type.into(),
            task_type: task_type.into(),
            params: Params::new(),
            priority: TaskPriority::Normal,
            status,
            dependencies: Vec::new(),
            max_retries: 3,
            retry_count: 0,
            timeout: std::time::Duration::from_secs(60),
            run_at: None,
            created_at: Timestamp(created),
            started_at: None,
            completed_at: None,
            progress: None,
            result: None,
            error: None,
            labels: BTreeMap::new(),
            idempotency_key: None,
            attempts,
            retry_policy: Default::default(),
            status_reason: String::new(),
            updated_at: Timestamp(created),
            revision: 1,
        }
    }

    #[test]
    fn percentiles_of_no_samples_are_none() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(Percentiles::of_micros(&mut []), Percentiles::default());
    }

    #[test]
    fn a_single_sample_is_every_percentile() {
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50));
        assert_eq!(percentile(&samples, 90.0), Some(90));
        assert_eq!(percentile(&samples, 99.0), Some(99));
        assert_eq!(percentile(&samples, 100.0), Some(100));
        assert_eq!(percentile(&[10, 20, 30, 40], 50.0), Some(20));
        assert_eq!(percentile(&[10, 20, 30, 40], 90.0), Some(40));
    }

    #[test]
    fn percentiles_sort_unsorted_microseconds_and_report_milliseconds() {
        let mut samples = vec![3_000, 1_000, 2_500, 500];
        let percentiles = Percentiles::of_micros(&mut samples);
        assert_eq!(percentiles.p50, Some(1.0));
        assert_eq!(percentiles.p99, Some(3.0));
        assert_eq!(
            percentiles.to_json(),
            json!({"p50": 1.0, "p90": 3.0, "p99": 3.0, "samples": 4})
        );
    }

    #[test]
    fn success_rate_is_completed_over_terminal_and_ignores_unfinished_tasks() {
        let by_status = BTreeMap::from([
            (TaskStatus::Completed, 3),
            (TaskStatus::Failed, 1),
            (TaskStatus::Cancelled, 0),
            (TaskStatus::Running, 10),
        ]);
        assert_eq!(success_rate(&by_status), Some(0.75));
    }

    #[test]
    fn success_rate_is_none_when_nothing_finished() {
        assert_eq!(success_rate(&BTreeMap::from([(TaskStatus::Pending, 4)])), None);
    }

    #[test]
    fn most_frequent_sorts_by_count_then_by_text_and_keeps_n() {
        let counts = HashMap::from([
            ("b".to_string(), 2),
            ("a".to_string(), 2),
            ("c".to_string(), 5),
            ("d".to_string(), 1),
        ]);
        assert_eq!(
            most_frequent(&counts, 3),
            vec![("c".to_string(), 5), ("a".to_string(), 2), ("b".to_string(), 2)]
        );
    }

    #[test]
    fn a_long_error_is_grouped_by_its_beginning() {
        let long = "x".repeat(ERROR_KEY_CHARS + 50);
        assert_eq!(error_key(&long), format!("{}…", "x".repeat(ERROR_KEY_CHARS)));
        assert_eq!(error_key("short"), "short");
        let multibyte = "é".repeat(ERROR_KEY_CHARS + 1);
        assert_eq!(error_key(&multibyte).chars().count(), ERROR_KEY_CHARS + 1);
    }

    #[test]
    fn a_summary_counts_types_statuses_waits_run_times_and_errors() {
        let mut summary = TaskSummary::default();
        summary.add(&task(
            "echo",
            TaskStatus::Completed,
            0,
            vec![
                attempt(2, 9_000, Some(10_000), AttemptOutcome::Succeeded, None),
                attempt(1, 2_000, Some(5_000), AttemptOutcome::Failed, Some("boom")),
            ],
        ));
        summary.add(&task(
            "echo",
            TaskStatus::Failed,
            1_000,
            vec![attempt(1, 1_500, Some(1_700), AttemptOutcome::Failed, Some("boom"))],
        ));
        summary.add(&task(
            "sleep",
            TaskStatus::Running,
            0,
            vec![
                attempt(
                    1,
                    4_000,
                    Some(900_000),
                    AttemptOutcome::Interrupted,
                    Some("interrupted"),
                ),
                attempt(2, 950_000, None, AttemptOutcome::Running, None),
            ],
        ));
        summary.add(&task("sleep", TaskStatus::Pending, 0, Vec::new()));

        assert_eq!(summary.tasks, 4);
        assert_eq!(
            summary.by_type["echo"],
            BTreeMap::from([(TaskStatus::Completed, 1), (TaskStatus::Failed, 1)])
        );
        assert_eq!(summary.by_status[&TaskStatus::Pending], 1);
        assert_eq!(summary.success_rate(), Some(0.5));
        // First attempts started 2, 0.5 and 4 ms after creation.
        assert_eq!(summary.queue_wait_micros, vec![2_000, 500, 4_000]);
        // Finished, not interrupted: 1, 3 and 0.2 ms.
        assert_eq!(summary.run_time_micros, vec![1_000, 3_000, 200]);
        assert_eq!(
            summary.top_errors(10),
            vec![("boom".to_string(), 2), ("interrupted".to_string(), 1)]
        );
        assert_eq!(summary.queue_wait().p50, Some(2.0));
        assert_eq!(summary.run_time().p99, Some(3.0));
    }

    #[test]
    fn errors_beyond_the_distinct_limit_are_counted_as_untracked() {
        let mut summary = TaskSummary::default();
        for index in 0..MAX_DISTINCT_ERRORS {
            summary.count_error(&format!("error {index}"));
        }
        summary.count_error("error 0");
        summary.count_error("a new one");
        assert_eq!(summary.errors.len(), MAX_DISTINCT_ERRORS);
        assert_eq!(summary.errors["error 0"], 2);
        assert_eq!(summary.untracked_errors, 1);
    }
}
