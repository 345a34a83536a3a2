//! Counters and histograms of task outcomes, kept by the scheduler under its
//! lock (no atomics needed) and rendered by the API layer.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::model::TaskPriority;

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
#[derive(Clone, Copy, Debug, Default)]
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
    pub outcomes: BTreeMap<(String, TaskPriority), OutcomeCounters>,
    /// Time from runnable to started, per task type.
    pub queue_wait: BTreeMap<String, Histogram>,
    /// Duration of finished attempts, per task type.
    pub run_time: BTreeMap<String, Histogram>,
}

impl EngineMetrics {
    pub fn outcome(&mut self, task_type: &str, priority: TaskPriority) -> &mut OutcomeCounters {
        self.outcomes.entry((task_type.to_string(), priority)).or_default()
    }

    pub fn observe_queue_wait(&mut self, task_type: &str, wait: Duration) {
        histogram(&mut self.queue_wait, task_type).observe(wait);
    }

    pub fn observe_run_time(&mut self, task_type: &str, run: Duration) {
        histogram(&mut self.run_time, task_type).observe(run);
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
