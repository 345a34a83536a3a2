//! Counters and histograms of task outcomes, counted from the transitions
//! the store reports (so only durable changes count) and rendered by the
//! API layer.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{AttemptOutcome, TaskPriority, TaskStatus};
use crate::store::Transition;

/// Upper bounds of the latency histograms, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];

/// A cumulative histogram in the Prometheus sense.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Count of observations at or below each bucket of `LATENCY_BUCKETS`.
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        for (bucket, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }
}

/// Outcome counters of one task type and priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounters {
    pub submitted: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub retried: u64,
}

/// Everything counted since the server started.
#[derive(Clone, Debug, Default)]
pub struct EngineMetrics {
    pub submitted: u64,
    /// Attempts that ended in a failure (retried or not).
    pub failed_attempts: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Per task type, per priority (indexed by `TaskPriority::ALL`).
    pub outcomes: BTreeMap<String, [OutcomeCounters; 4]>,
    /// Time from runnable to started, per task type.
    pub queue_wait: BTreeMap<String, Histogram>,
    /// Duration of finished attempts, per task type.
    pub run_time: BTreeMap<String, Histogram>,
    /// Fires run by the scheduler, per schedule.
    pub schedule_fires: BTreeMap<String, u64>,
    /// Fires skipped, per schedule and reason (`overlap`, `late`).
    pub schedule_skips: BTreeMap<(String, &'static str), u64>,
    /// How late after its nominal time each fire was submitted, per
    /// schedule.
    pub fire_lateness: BTreeMap<String, Histogram>,
}

impl EngineMetrics {
    pub fn outcome(&mut self, task_type: &str, priority: TaskPriority) -> &mut OutcomeCounters {
        // Looked up before inserted: the type is known but for its first
        // transition, and counting runs on every commit.
        if !self.outcomes.contains_key(task_type) {
            self.outcomes.insert(task_type.to_string(), Default::default());
        }
        let by_priority = self.outcomes.get_mut(task_type).expect("inserted above");
        &mut by_priority[(priority.code() - 1) as usize]
    }

    pub fn observe_queue_wait(&mut self, task_type: &str, wait: Duration) {
        histogram(&mut self.queue_wait, task_type).observe(wait);
    }

    pub fn observe_run_time(&mut self, task_type: &str, run: Duration) {
        histogram(&mut self.run_time, task_type).observe(run);
    }

    /// Counts one look at a schedule: fires run (each `late` after its
    /// nominal time) and fires skipped.
    pub fn observe_fires(&mut self, schedule: &str, lateness: &[Duration], skipped_overlap: u64, skipped_late: u64) {
        if !lateness.is_empty() {
            *self.schedule_fires.entry(schedule.to_string()).or_default() += lateness.len() as u64;
            let histogram = histogram(&mut self.fire_lateness, schedule);
            for late in lateness {
                histogram.observe(*late);
            }
        }
        for (reason, count) in [("overlap", skipped_overlap), ("late", skipped_late)] {
            if count > 0 {
                *self.schedule_skips.entry((schedule.to_string(), reason)).or_default() += count;
            }
        }
    }

    /// Counts what one store answer changed.
    pub fn observe(&mut self, transitions: &[Transition]) {
        for transition in transitions {
            let outcome = self.outcome(&transition.task_type, transition.priority);
            match transition.to {
                TaskStatus::Completed => outcome.completed += 1,
                TaskStatus::Failed => outcome.failed += 1,
                TaskStatus::Cancelled => outcome.cancelled += 1,
                _ => {}
            }
            let retried = transition.from == Some(TaskStatus::Running)
                && matches!(transition.to, TaskStatus::Scheduled | TaskStatus::Pending);
            if retried {
                outcome.retried += 1;
                self.retries += 1;
            }
            if transition.from.is_none() {
                self.outcome(&transition.task_type, transition.priority).submitted += 1;
                self.submitted += 1;
            }
            if let Some(waited) = transition.waited {
                self.observe_queue_wait(&transition.task_type, waited);
            }
            if let Some((outcome, ran)) = transition.closed_attempt {
                self.observe_run_time(&transition.task_type, ran);
                if outcome.is_failure() {
                    self.failed_attempts += 1;
                }
                debug_assert!(outcome != AttemptOutcome::Running);
            }
        }
    }
}

fn histogram<'a>(map: &'a mut BTreeMap<String, Histogram>, task_type: &str) -> &'a mut Histogram {
    if !map.contains_key(task_type) {
        map.insert(task_type.to_string(), Histogram::default());
    }
    map.get_mut(task_type).expect("inserted above")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_every_bucket_at_or_above_it() {
        let mut histogram = Histogram::default();
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(2));
        assert_eq!(histogram.buckets[0], 0);
        assert_eq!(histogram.buckets[2], 1, "5ms bucket holds the 3ms one");
        assert_eq!(histogram.buckets[LATENCY_BUCKETS.len() - 1], 2);
        assert_eq!(histogram.count, 2);
        assert!((histogram.sum_seconds - 2.003).abs() < 1e-9);
    }
}
