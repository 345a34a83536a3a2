//! Alerts: raised when a resource crosses its threshold, cleared once it is
//! back below the threshold by the hysteresis margin, never repeated while
//! active. A bounded history keeps the recent ones.

use std::collections::VecDeque;
use std::fmt;

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
#[derive(Clone, Debug, PartialEq)]
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

/// Active alerts and the recent history.
pub struct AlertBook {
    /// Newest last; active alerts are in here too.
    history: VecDeque<Alert>,
    capacity: usize,
    next_id: u64,
}

impl AlertBook {
    pub fn new(capacity: usize) -> Self {
        AlertBook {
            history: VecDeque::new(),
            capacity: capacity.max(1),
            next_id: 1,
        }
    }

    fn active_mut(&mut self, resource: Resource) -> Option<&mut Alert> {
        self.history
            .iter_mut()
            .rev()
            .find(|alert| alert.resource == resource && alert.is_active())
    }

    /// Applies a sample; returns the alerts it raised or cleared.
    pub fn observe(&mut self, sample: &ResourceSample, thresholds: &Thresholds, hysteresis: f64) -> Vec<AlertChange> {
        let mut changes = Vec::new();
        for resource in Resource::ALL {
            let Some(value) = resource.value(sample) else { continue };
            let threshold = resource.threshold(thresholds);
            match self.active_mut(resource) {
                Some(alert) => {
                    alert.peak = alert.peak.max(value);
                    if value < threshold - hysteresis {
                        alert.ended_at = Some(sample.time);
                        changes.push(AlertChange::Cleared(alert.clone()));
                    }
                }
                None if value > threshold => {
                    let alert = Alert {
                        id: self.next_id,
                        resource,
                        value,
                        peak: value,
                        threshold,
                        started_at: sample.time,
                        ended_at: None,
                    };
                    self.next_id += 1;
                    changes.push(AlertChange::Raised(alert.clone()));
                    self.history.push_back(alert);
                }
                None => {}
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
        book.observe(&cpu_at(percent, second), &Thresholds::default(), 5.0)
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
}
