//! Alerts: raised once a resource has stayed above its threshold for the
//! hold time, cleared once it has stayed below the threshold minus the
//! hysteresis margin for as long (Prometheus' `for:`), never repeated while
//! active. A busy machine's load crosses a threshold back and forth every
//! few seconds; only a sustained state is worth an operator's attention.
//! A bounded history keeps the recent ones.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use crate::model::Timestamp;
use crate::monitor::config::Thresholds;
use crate::monitor::sample::ResourceSample;

/// A monitored resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Resource {
    Cpu,
    Memory,
    Disk,
    IoWait,
}

impl Resource {
    pub const ALL: [Resource; 4] = [Resource::Cpu, Resource::Memory, Resource::Disk, Resource::IoWait];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Disk => "disk",
            Resource::IoWait => "io_wait",
        }
    }

    pub fn value(self, sample: &ResourceSample) -> Option<f64> {
        match self {
            Resource::Cpu => Some(sample.cpu_percent),
            Resource::Memory => Some(sample.memory_percent),
            Resource::Disk => Some(sample.disk_percent),
            Resource::IoWait => sample.io_wait_percent,
        }
    }

    pub fn threshold(self, thresholds: &Thresholds) -> f64 {
        match self {
            Resource::Cpu => thresholds.cpu_percent,
            Resource::Memory => thresholds.memory_percent,
            Resource::Disk => thresholds.disk_percent,
            Resource::IoWait => thresholds.io_wait_percent,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One episode of a resource above its threshold.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    pub id: u64,
    pub resource: Resource,
    /// The value that raised it.
    pub value: f64,
    /// The highest value seen while it was active.
    pub peak: f64,
    pub threshold: f64,
    pub started_at: Timestamp,
    /// Set once cleared.
    pub ended_at: Option<Timestamp>,
}

impl Alert {
    pub fn is_active(&self) -> bool {
        self.ended_at.is_none()
    }

    pub fn message(&self) -> String {
        format!(
            "{} at {:.1}% is above its threshold of {:.1}%",
            self.resource, self.value, self.threshold
        )
    }
}

/// A change in the set of active alerts.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertChange {
    Raised(Alert),
    Cleared(Alert),
}

/// A resource over its threshold, not yet for long enough to alert.
#[derive(Clone, Copy, Debug)]
struct Pending {
    since: Timestamp,
    peak: f64,
}

/// Active alerts, the ones pending either way, and the recent history.
pub struct AlertBook {
    /// Newest last; active alerts are in here too.
    history: VecDeque<Alert>,
    capacity: usize,
    next_id: u64,
    /// Resources above their threshold with no alert yet: since when.
    rising: HashMap<Resource, Pending>,
    /// Resources with an active alert that are back below the clearing
    /// level: since when.
    falling: HashMap<Resource, Timestamp>,
}

impl AlertBook {
    pub fn new(capacity: usize) -> Self {
        AlertBook {
            history: VecDeque::new(),
            capacity: capacity.max(1),
            next_id: 1,
            rising: HashMap::new(),
            falling: HashMap::new(),
        }
    }

    /// Applies a sample; returns the alerts it raised or cleared. A state
    /// counts once it has lasted `hold` (zero: at once).
    pub fn observe(
        &mut self,
        sample: &ResourceSample,
        thresholds: &Thresholds,
        hysteresis: f64,
        hold: Duration,
    ) -> Vec<AlertChange> {
        let hold_micros = i64::try_from(hold.as_micros()).unwrap_or(i64::MAX);
        let lasted = |since: Timestamp| sample.time.0.saturating_sub(since.0) >= hold_micros;
        let mut changes = Vec::new();
        for resource in Resource::ALL {
            let Some(value) = resource.value(sample) else { continue };
            let threshold = resource.threshold(thresholds);
            if let Some(alert) = self
                .history
                .iter_mut()
                .rev()
                .find(|alert| alert.resource == resource && alert.is_active())
            {
                alert.peak = alert.peak.max(value);
                if value >= threshold - hysteresis {
                    self.falling.remove(&resource);
                    continue;
                }
                let since = *self.falling.entry(resource).or_insert(sample.time);
                if lasted(since) {
                    self.falling.remove(&resource);
                    alert.ended_at = Some(since);
                    changes.push(AlertChange::Cleared(alert.clone()));
                }
                continue;
            }
            if value <= threshold {
                self.rising.remove(&resource);
                continue;
            }
            let pending = self.rising.entry(resource).or_insert(Pending {
                since: sample.time,
                peak: value,
            });
            pending.peak = pending.peak.max(value);
            if lasted(pending.since) {
                let alert = Alert {
                    id: self.next_id,
                    resource,
                    value,
                    peak: pending.peak,
                    threshold,
                    started_at: pending.since,
                    ended_at: None,
                };
                self.rising.remove(&resource);
                self.next_id += 1;
                changes.push(AlertChange::Raised(alert.clone()));
                self.history.push_back(alert);
            }
        }
        self.trim();
        changes
    }

    /// Drops the oldest cleared alerts beyond the capacity; active ones stay.
    fn trim(&mut self) {
        while self.history.len() > self.capacity {
            match self.history.iter().position(|alert| !alert.is_active()) {
                Some(oldest_cleared) => {
                    self.history.remove(oldest_cleared);
                }
                None => break,
            }
        }
    }

    /// Takes back a history kept across a restart (oldest first); ids go
    /// on from `next_id`. Alerts active then are active again: if the
    /// resource has recovered meanwhile, they clear as usual.
    pub fn restore(&mut self, alerts: Vec<Alert>, next_id: u64) {
        let next_id = alerts.iter().map(|alert| alert.id + 1).fold(next_id, u64::max);
        self.history = alerts.into();
        self.next_id = self.next_id.max(next_id);
        self.trim();
    }

    /// The whole history, oldest first, and the next alert's id.
    pub fn recorded(&self) -> (Vec<Alert>, u64) {
        (self.history.iter().cloned().collect(), self.next_id)
    }

    pub fn active(&self) -> Vec<Alert> {
        self.history.iter().filter(|alert| alert.is_active()).cloned().collect()
    }

    /// Up to `limit` alerts, newest first, active and cleared.
    pub fn recent(&self, limit: usize) -> Vec<Alert> {
        self.history.iter().rev().take(limit).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_at(percent: f64, second: i64) -> ResourceSample {
        ResourceSample {
            time: Timestamp(second * 1_000_000),
            cpu_percent: percent,
            memory_percent: 10.0,
            disk_percent: 10.0,
            io_wait_percent: Some(0.0),
        }
    }

    fn observe(book: &mut AlertBook, percent: f64, second: i64) -> Vec<AlertChange> {
        book.observe(&cpu_at(percent, second), &Thresholds::default(), 5.0, Duration::ZERO)
    }

    fn observe_held(book: &mut AlertBook, percent: f64, second: i64) -> Vec<AlertChange> {
        book.observe(
            &cpu_at(percent, second),
            &Thresholds::default(),
            5.0,
            Duration::from_secs(30),
        )
    }

    #[test]
    fn a_spike_shorter_than_the_hold_raises_nothing() {
        let mut book = AlertBook::new(10);
        for second in 0..29 {
            assert!(observe_held(&mut book, 95.0, second).is_empty());
        }
        assert!(observe_held(&mut book, 60.0, 29).is_empty());
        assert!(observe_held(&mut book, 95.0, 30).is_empty(), "the hold starts again");
        assert!(book.recent(10).is_empty());
    }

    #[test]
    fn a_sustained_excess_raises_one_alert_dated_from_when_it_began() {
        let mut book = AlertBook::new(10);
        observe_held(&mut book, 70.0, 0);
        for second in 1..31 {
            assert!(observe_held(&mut book, 85.0 + (second % 3) as f64, second).is_empty());
        }
        let raised = observe_held(&mut book, 90.0, 31);
        let [AlertChange::Raised(alert)] = &raised[..] else {
            panic!("one alert raised: {raised:?}")
        };
        assert_eq!(alert.started_at, Timestamp(1_000_000));
        assert_eq!(alert.peak, 90.0);
        assert!(observe_held(&mut book, 95.0, 32).is_empty());
    }

    #[test]
    fn a_flapping_resource_stays_one_incident_until_it_is_calm_for_the_hold() {
        let mut book = AlertBook::new(10);
        for second in 0..=30 {
            observe_held(&mut book, 95.0, second);
        }
        assert_eq!(book.active().len(), 1);
        // Dipping below the clearing level for less than the hold, again
        // and again, neither clears nor raises anything new.
        for second in 31..200 {
            let value = if second % 10 < 5 { 60.0 } else { 90.0 };
            assert!(observe_held(&mut book, value, second).is_empty(), "second {second}");
        }
        // Back within the hysteresis margin does not count as calm either.
        for second in 200..240 {
            assert!(observe_held(&mut book, 78.0, second).is_empty());
        }
        for second in 240..270 {
            assert!(observe_held(&mut book, 50.0, second).is_empty());
        }
        let cleared = observe_held(&mut book, 50.0, 270);
        assert!(
            matches!(&cleared[..], [AlertChange::Cleared(alert)] if alert.ended_at == Some(Timestamp(240_000_000))),
            "{cleared:?}"
        );
        assert_eq!(book.recent(10).len(), 1, "one incident");
    }

    #[test]
    fn crossing_a_threshold_raises_one_alert_and_staying_above_does_not_repeat_it() {
        let mut book = AlertBook::new(10);
        assert!(observe(&mut book, 70.0, 1).is_empty());
        let raised = observe(&mut book, 93.0, 2);
        assert!(matches!(&raised[..], [AlertChange::Raised(alert)] if alert.resource == Resource::Cpu));
        assert!(observe(&mut book, 97.0, 3).is_empty());
        assert_eq!(book.active().len(), 1);
        assert_eq!(book.active()[0].peak, 97.0);
    }

    #[test]
    fn an_alert_clears_only_below_the_hysteresis_margin() {
        let mut book = AlertBook::new(10);
        observe(&mut book, 90.0, 1);
        assert!(
            observe(&mut book, 78.0, 2).is_empty(),
            "within 5 points of 80: still active"
        );
        let cleared = observe(&mut book, 74.0, 3);
        assert!(matches!(&cleared[..], [AlertChange::Cleared(alert)] if alert.ended_at == Some(Timestamp(3_000_000))));
        assert!(book.active().is_empty());
        assert_eq!(book.recent(10).len(), 1);
    }

    #[test]
    fn the_history_is_bounded_but_keeps_active_alerts() {
        let mut book = AlertBook::new(3);
        for round in 0..10 {
            observe(&mut book, 95.0, round * 2);
            observe(&mut book, 10.0, round * 2 + 1);
        }
        observe(&mut book, 95.0, 100);
        let recent = book.recent(100);
        assert_eq!(recent.len(), 3);
        assert!(recent[0].is_active());
    }

    #[test]
    fn a_restored_history_keeps_its_active_alerts_and_never_reuses_an_id() {
        let mut before = AlertBook::new(10);
        observe(&mut before, 95.0, 0);
        let (alerts, next_id) = before.recorded();
        let mut after = AlertBook::new(10);
        after.restore(alerts.clone(), next_id);
        assert_eq!(after.active(), alerts, "active again after the restart");
        assert!(observe(&mut after, 96.0, 1).is_empty(), "not raised twice");
        let cleared = observe(&mut after, 50.0, 2);
        assert!(matches!(&cleared[..], [AlertChange::Cleared(alert)] if alert.id == alerts[0].id));
        observe(&mut after, 50.0, 3);
        let raised = observe(&mut after, 50.0, 4);
        assert!(raised.is_empty());
        let memory = after.observe(
            &ResourceSample {
                memory_percent: 99.0,
                ..cpu_at(10.0, 5)
            },
            &Thresholds::default(),
            5.0,
            Duration::ZERO,
        );
        assert!(matches!(&memory[..], [AlertChange::Raised(alert)] if alert.id > alerts[0].id));
    }
}
