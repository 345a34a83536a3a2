//! The running ResourceMonitor: keeps the latest reading, the smoothed
//! pressure and the alerts, tells the scheduler how many tasks may run, and
//! publishes readings and alert changes to watchers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::model::{NewTask, TaskPriority};
use crate::monitor::alerts::{Alert, AlertBook, AlertChange, Resource};
use crate::monitor::config::MonitorConfig;
use crate::monitor::journal::Recorded;
use crate::monitor::pressure::{pressures, recommended_concurrency};
use crate::monitor::sample::{ResourceSample, SampleSource};

/// What the monitor knows now, for a given pool size.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    pub sample: Option<ResourceSample>,
    /// In [0, 1]: the smoothed pressure of the worst resource, capped.
    pub load: f64,
    /// The smoothed pressure itself (may exceed 1).
    pub pressure: f64,
    pub worst_resource: Option<Resource>,
    pub recommended: usize,
    /// Why the recommendation is what it is, in words.
    pub reason: String,
}

/// Something watchers of the monitor see.
#[derive(Clone, Debug, PartialEq)]
pub enum MonitorEvent {
    Sampled(ResourceSample),
    AlertRaised(Alert),
    AlertCleared(Alert),
}

struct MonitorState {
    latest: Option<ResourceSample>,
    /// Exponentially smoothed pressure of each resource: the one that
    /// limits is the one whose smoothed pressure is highest, which is not
    /// always the one worst in the latest reading.
    smoothed_by: HashMap<Resource, f64>,
    /// The highest of them.
    smoothed: Option<f64>,
    worst: Option<Resource>,
    alerts: AlertBook,
    history: VecDeque<ResourceSample>,
}

/// Cheap to clone; clones share one monitor.
#[derive(Clone)]
pub struct ResourceMonitor {
    config: Arc<MonitorConfig>,
    state: Arc<Mutex<MonitorState>>,
    events: broadcast::Sender<MonitorEvent>,
}

impl ResourceMonitor {
    pub fn new(config: MonitorConfig) -> Self {
        let (events, _) = broadcast::channel(1024);
        ResourceMonitor {
            state: Arc::new(Mutex::new(MonitorState {
                latest: None,
                smoothed_by: HashMap::new(),
                smoothed: None,
                worst: None,
                alerts: AlertBook::new(config.alert_history),
                history: VecDeque::new(),
            })),
            config: Arc::new(config),
            events,
        }
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// Takes in a reading: smooths the pressure, raises and clears alerts,
    /// publishes it all. Returns the alert changes.
    pub fn observe(&self, sample: ResourceSample) -> Vec<AlertChange> {
        let changes = self.take_in(sample);
        self.publish(sample, &changes);
        changes
    }

    /// The state part of [`observe`](Self::observe): nothing is published.
    fn take_in(&self, sample: ResourceSample) -> Vec<AlertChange> {
        let config = &self.config;
        let mut state = self.state.lock();
        let weight = config.smoothing.clamp(0.01, 1.0);
        for pressure in pressures(&sample, &config.thresholds) {
            let smoothed = match state.smoothed_by.get(&pressure.resource) {
                Some(previous) => previous + weight * (pressure.value - previous),
                None => pressure.value,
            };
            state.smoothed_by.insert(pressure.resource, smoothed);
        }
        let worst = Resource::ALL
            .into_iter()
            .filter_map(|resource| state.smoothed_by.get(&resource).map(|value| (resource, *value)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        state.smoothed = Some(worst.map_or(0.0, |(_, value)| value));
        state.worst = worst.map(|(resource, _)| resource);
        state.latest = Some(sample);
        state.history.push_back(sample);
        while state.history.len() > config.sample_history.max(1) {
            state.history.pop_front();
        }
        state
            .alerts
            .observe(&sample, &config.thresholds, config.hysteresis_percent, config.alert_for)
    }

    /// Tells watchers of the sample and of the alerts it raised or cleared.
    fn publish(&self, sample: ResourceSample, changes: &[AlertChange]) {
        let _ = self.events.send(MonitorEvent::Sampled(sample));
        for change in changes {
            match change {
                AlertChange::Raised(alert) => {
                    tracing::warn!(alert_id = alert.id, resource = %alert.resource, value = alert.value, threshold = alert.threshold, "resource alert raised");
                    let _ = self.events.send(MonitorEvent::AlertRaised(alert.clone()));
                }
                AlertChange::Cleared(alert) => {
                    tracing::info!(alert_id = alert.id, resource = %alert.resource, peak = alert.peak, "resource alert cleared");
                    let _ = self.events.send(MonitorEvent::AlertCleared(alert.clone()));
                }
            }
        }
    }

    /// Takes back what a previous run recorded: its alerts and samples.
    pub fn restore(&self, recorded: &Recorded) {
        let mut state = self.state.lock();
        state.alerts.restore(recorded.alerts.clone(), recorded.next_alert_id);
        state.history = recorded.samples.iter().copied().collect();
        while state.history.len() > self.config.sample_history.max(1) {
            state.history.pop_front();
        }
    }

    /// What a later run should take back: alerts, the next alert's id, and
    /// the samples (the points are the history's).
    pub fn recorded(&self) -> Recorded {
        let state = self.state.lock();
        let (alerts, next_alert_id) = state.alerts.recorded();
        Recorded {
            alerts,
            next_alert_id,
            points: Vec::new(),
            samples: state.history.iter().copied().collect(),
        }
    }

    /// The seed's `get_system_load`: the smoothed pressure of the most
    /// loaded resource, in [0, 1] (1 = at or above its threshold).
    pub fn get_system_load(&self) -> f64 {
        self.state.lock().smoothed.unwrap_or(0.0).clamp(0.0, 1.0)
    }

    /// The seed's `get_recommended_concurrency`.
    pub fn get_recommended_concurrency(&self, max_concurrency: usize) -> usize {
        self.report(max_concurrency).recommended
    }

    /// Everything known now, for a pool of `max_concurrency`.
    pub fn report(&self, max_concurrency: usize) -> LoadReport {
        let state = self.state.lock();
        let pressure = state.smoothed.unwrap_or(0.0);
        let recommended = recommended_concurrency(max_concurrency, pressure, self.config.full_speed_below);
        let max = max_concurrency.max(1);
        let reason = match state.worst {
            Some(resource) if recommended < max => {
                // The smoothed usage is what set the limit; the latest
                // reading alone may already be lower (or higher).
                let threshold = resource.threshold(&self.config.thresholds);
                let usage = pressure * threshold;
                if usage > threshold {
                    format!("{resource} {usage:.0}% > {threshold:.0}%: {recommended} of {max} slots")
                } else {
                    format!("{resource} {usage:.0}%, near its {threshold:.0}% threshold: {recommended} of {max} slots")
                }
            }
            _ => crate::engine::unthrottled_reason(max),
        };
        LoadReport {
            sample: state.latest,
            load: pressure.clamp(0.0, 1.0),
            pressure,
            worst_resource: state.worst,
            recommended,
            reason,
        }
    }

    /// Active alerts, and up to `limit` recent ones (newest first).
    pub fn alerts(&self, limit: usize) -> (Vec<Alert>, Vec<Alert>) {
        let state = self.state.lock();
        (state.alerts.active(), state.alerts.recent(limit))
    }

    /// Recent readings, oldest first.
    pub fn history(&self) -> Vec<ResourceSample> {
        self.state.lock().history.iter().copied().collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<MonitorEvent> {
        self.events.subscribe()
    }

    /// Samples `source` every interval until `stopping`, and steers
    /// `manager`'s concurrency limit by the result.
    pub fn spawn(self, source: Box<dyn SampleSource>, manager: Engine, stopping: CancellationToken) {
        let source = Arc::new(std::sync::Mutex::new(source));
        tokio::spawn(async move {
            // The first sample comes one interval after start, not at once:
            // CPU usage and I/O wait are deltas against the source's priming
            // reading, and an immediate sample has no time between them.
            let period = self.config.interval.max(Duration::from_millis(1));
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopping.cancelled() => return,
                }
                let source = source.clone();
                let reading = tokio::task::spawn_blocking(move || match source.lock() {
                    Ok(mut source) => Some(source.sample()),
                    Err(_) => None,
                })
                .await;
                let Ok(Some(sample)) = reading else {
                    tracing::error!("resource sampling failed; monitor stopped");
                    return;
                };
                self.step(sample, &manager).await;
            }
        });
    }

    /// One monitor step: observe, steer the scheduler, react to disk alerts.
    pub async fn step(&self, sample: ResourceSample, manager: &Engine) {
        let changes = self.take_in(sample);
        let report = self.report(manager.config().max_concurrent_tasks);
        manager.admin().apply_load(
            report.recommended,
            report.reason,
            Some((sample.cpu_percent, sample.memory_percent, sample.io_wait_percent)),
        );
        // Published only now, so that a watcher reading the limit in force
        // on a SAMPLED event reads the one this sample produced.
        self.publish(sample, &changes);
        if !self.config.maintenance_on_disk_alert {
            return;
        }
        for change in changes {
            if let AlertChange::Raised(alert) = change
                && alert.resource == Resource::Disk
            {
                let mut task = NewTask::new("system_maintenance");
                task.name = format!("disk at {:.0}%: purge and optimize", alert.value);
                task.priority = TaskPriority::High;
                task.idempotency_key = Some(format!("disk-alert-{}-{}", alert.id, alert.started_at.as_micros()));
                task.labels.insert("trigger".into(), "disk_alert".into());
                match manager.tasks().submit(task).await {
                    Ok(task) => {
                        tracing::info!(task_id = %task.id, alert_id = alert.id, "maintenance submitted for disk alert")
                    }
                    Err(error) => tracing::warn!(%error, "could not submit maintenance for disk alert"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    fn cpu(percent: f64) -> ResourceSample {
        ResourceSample {
            time: Timestamp::now(),
            cpu_percent: percent,
            memory_percent: 20.0,
            disk_percent: 30.0,
            io_wait_percent: Some(1.0),
        }
    }

    #[test]
    fn the_seeds_load_and_recommendation_follow_the_smoothed_pressure() {
        let monitor = ResourceMonitor::new(MonitorConfig::default());
        assert_eq!(monitor.get_system_load(), 0.0);
        assert_eq!(monitor.get_recommended_concurrency(10), 10);
        monitor.observe(cpu(40.0));
        assert!((monitor.get_system_load() - 0.5).abs() < 1e-9);
        assert_eq!(monitor.get_recommended_concurrency(10), 10);
        for _ in 0..10 {
            monitor.observe(cpu(95.0));
        }
        assert_eq!(monitor.get_system_load(), 1.0);
        assert_eq!(monitor.get_recommended_concurrency(10), 2);
        assert_eq!(monitor.report(10).reason, "cpu 95% > 80%: 2 of 10 slots");
        assert_eq!(monitor.history().len(), 11);
    }

    #[test]
    fn the_reason_names_the_resource_that_limits_and_says_when_nothing_does() {
        let monitor = ResourceMonitor::new(MonitorConfig::default());
        assert_eq!(
            monitor.report(10).reason,
            "nothing limits: all 10 slots (max_concurrent_tasks)"
        );
        // A CPU spike, then a calmer CPU beside a disk at 75% of 90%: the
        // smoothed CPU still limits, and the reason says so, not the disk
        // that is worse in the latest reading.
        monitor.observe(ResourceSample {
            disk_percent: 75.0,
            ..cpu(100.0)
        });
        monitor.observe(ResourceSample {
            disk_percent: 75.0,
            ..cpu(40.0)
        });
        let report = monitor.report(10);
        assert_eq!(report.worst_resource, Some(Resource::Cpu));
        assert_eq!(report.reason, "cpu 70%, near its 80% threshold: 7 of 10 slots");
        for _ in 0..10 {
            monitor.observe(ResourceSample {
                disk_percent: 50.0,
                ..cpu(40.0)
            });
        }
        assert_eq!(
            monitor.report(10).reason,
            "nothing limits: all 10 slots (max_concurrent_tasks)"
        );
    }
}
