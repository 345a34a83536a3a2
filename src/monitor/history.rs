//! A bounded history of what the node did and how the machine fared: every
//! `history_interval` one point with the task rates of the interval
//! (submitted, completed, failed per second), its queue wait, the queue and
//! the running count, the limit in force and the latest resource sample.
//! An hour of points by default, so a dashboard opened now shows what
//! happened before it was opened.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::engine::metrics::{EngineMetrics, Histogram, LATENCY_BUCKETS};
use crate::model::Timestamp;
use crate::monitor::history_point::HistoryPoint;
use crate::monitor::journal::Journal;
use crate::monitor::{MonitorEvent, ResourceMonitor};

/// The counters a point is the difference of.
#[derive(Clone, Default)]
struct Totals {
    submitted: u64,
    completed: u64,
    failed: u64,
    queue_wait: Histogram,
}

impl Totals {
    fn of(metrics: &EngineMetrics) -> Self {
        let mut totals = Totals::default();
        for by_priority in metrics.outcomes.values() {
            for outcome in by_priority {
                totals.submitted += outcome.submitted;
                totals.completed += outcome.completed;
                totals.failed += outcome.failed;
            }
        }
        for histogram in metrics.queue_wait.values() {
            for (total, count) in totals.queue_wait.buckets.iter_mut().zip(histogram.buckets) {
                *total += count;
            }
            totals.queue_wait.count += histogram.count;
            totals.queue_wait.sum_seconds += histogram.sum_seconds;
        }
        totals
    }
}

/// The smallest bucket bound below which `fraction` of the observations
/// between two cumulative histograms fall.
fn quantile(before: &Histogram, after: &Histogram, fraction: f64) -> Option<f64> {
    let count = after.count.checked_sub(before.count).filter(|count| *count > 0)?;
    let wanted = (count as f64 * fraction).ceil() as u64;
    LATENCY_BUCKETS
        .iter()
        .zip(before.buckets.iter().zip(after.buckets))
        .find(|(_, (below, now))| now.saturating_sub(**below) >= wanted)
        .map(|(bound, _)| *bound)
        // Beyond the last bucket: say at least that much.
        .or(LATENCY_BUCKETS.last().copied())
}

/// The points, newest last; cheap to clone, clones share them.
#[derive(Clone)]
pub struct History {
    points: Arc<Mutex<VecDeque<HistoryPoint>>>,
    capacity: usize,
    interval: Duration,
}

impl History {
    pub fn new(interval: Duration, capacity: usize) -> Self {
        History {
            points: Arc::new(Mutex::new(VecDeque::new())),
            capacity: capacity.max(1),
            interval,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Every point kept, oldest first.
    pub fn points(&self) -> Vec<HistoryPoint> {
        self.points.lock().iter().cloned().collect()
    }

    /// Takes back points a previous run recorded (oldest first).
    pub fn restore(&self, points: Vec<HistoryPoint>) {
        let mut kept = self.points.lock();
        *kept = points.into();
        while kept.len() > self.capacity {
            kept.pop_front();
        }
    }

    /// Writes the monitor's alerts and samples and these points to
    /// `journal`, off the async threads; a failure is logged.
    async fn save(&self, monitor: &ResourceMonitor, journal: &Journal) {
        let mut recorded = monitor.recorded();
        recorded.points = self.points();
        let journal = journal.clone();
        match tokio::task::spawn_blocking(move || journal.save(&recorded)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot keep the monitor's history; it restarts empty after a crash")
            }
            Err(error) => tracing::warn!(%error, "keeping the monitor's history failed"),
        }
    }

    fn push(&self, point: HistoryPoint) {
        let mut points = self.points.lock();
        points.push_back(point);
        while points.len() > self.capacity {
            points.pop_front();
        }
    }

    /// Records a point every interval until `stopping`, and keeps the
    /// points, alerts and samples in `journal` (at every point, every
    /// alert raised or cleared, and at the stop).
    pub fn spawn(
        self,
        manager: Engine,
        monitor: ResourceMonitor,
        journal: Journal,
        stopping: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let period = self.interval.max(Duration::from_millis(10));
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut previous = (Totals::of(&manager.admin().metrics()), tokio::time::Instant::now());
            let mut events = monitor.subscribe();
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    event = events.recv() => {
                        let alert_changed = matches!(
                            event,
                            Ok(MonitorEvent::AlertRaised(_) | MonitorEvent::AlertCleared(_))
                                | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))
                        );
                        if alert_changed {
                            self.save(&monitor, &journal).await;
                        }
                        continue;
                    }
                    _ = stopping.cancelled() => {
                        self.save(&monitor, &journal).await;
                        return;
                    }
                }
                let now = tokio::time::Instant::now();
                let totals = Totals::of(&manager.admin().metrics());
                let seconds = now.duration_since(previous.1).as_secs_f64().max(1e-3);
                let (before, _) = &previous;
                let rate = |after: u64, before: u64| after.saturating_sub(before) as f64 / seconds;
                let stats = match manager.tasks().stats().await {
                    Ok(stats) => stats,
                    Err(error) => {
                        tracing::debug!(%error, "history point skipped: stats unavailable");
                        continue;
                    }
                };
                let sample = monitor.report(stats.max_concurrent_tasks).sample;
                self.push(HistoryPoint {
                    time: Timestamp::now(),
                    submitted: totals.submitted.saturating_sub(before.submitted),
                    completed: totals.completed.saturating_sub(before.completed),
                    failed: totals.failed.saturating_sub(before.failed),
                    submitted_per_second: rate(totals.submitted, before.submitted),
                    completed_per_second: rate(totals.completed, before.completed),
                    failed_per_second: rate(totals.failed, before.failed),
                    queue_wait_p50_seconds: quantile(&before.queue_wait, &totals.queue_wait, 0.5),
                    queue_wait_p95_seconds: quantile(&before.queue_wait, &totals.queue_wait, 0.95),
                    pending: stats.counts[crate::model::TaskStatus::Pending.index()],
                    running: stats.running as u64,
                    effective_concurrency_limit: stats.effective_concurrency_limit as u64,
                    cpu_percent: sample.map(|sample| sample.cpu_percent),
                    memory_percent: sample.map(|sample| sample.memory_percent),
                    disk_percent: sample.map(|sample| sample.disk_percent),
                    io_wait_percent: sample.and_then(|sample| sample.io_wait_percent),
                });
                previous = (totals, now);
                self.save(&monitor, &journal).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(observations: &[f64]) -> Histogram {
        let mut histogram = Histogram::default();
        for seconds in observations {
            histogram.observe(Duration::from_secs_f64(*seconds));
        }
        histogram
    }

    #[test]
    fn the_quantile_is_read_from_the_observations_of_the_interval_alone() {
        let before = histogram(&[30.0, 30.0, 30.0]);
        let mut after = before.clone();
        for seconds in [0.0005, 0.0008, 0.002, 0.004] {
            after.observe(Duration::from_secs_f64(seconds));
        }
        assert_eq!(quantile(&before, &after, 0.5), Some(0.001));
        assert_eq!(quantile(&before, &after, 0.95), Some(0.005));
        assert_eq!(quantile(&after, &after, 0.5), None, "nothing started in between");
    }

    #[test]
    fn waits_beyond_the_last_bucket_read_as_at_least_its_bound() {
        let before = Histogram::default();
        let after = histogram(&[5000.0]);
        assert_eq!(quantile(&before, &after, 0.5), Some(600.0));
    }

    #[test]
    fn the_history_keeps_its_newest_points() {
        let history = History::new(Duration::from_secs(5), 2);
        for second in 0..5 {
            history.push(HistoryPoint {
                time: Timestamp(second),
                submitted: 0,
                completed: 0,
                failed: 0,
                submitted_per_second: 0.0,
                completed_per_second: 0.0,
                failed_per_second: 0.0,
                queue_wait_p50_seconds: None,
                queue_wait_p95_seconds: None,
                pending: 0,
                running: 0,
                effective_concurrency_limit: 1,
                cpu_percent: None,
                memory_percent: None,
                disk_percent: None,
                io_wait_percent: None,
            });
        }
        let kept: Vec<i64> = history.points().iter().map(|point| point.time.0).collect();
        assert_eq!(kept, [3, 4]);
    }
}
