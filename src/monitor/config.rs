//! ResourceMonitor settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Usage levels above which a resource counts as overloaded, in percent.
/// Defaults are the seed's: CPU 80, memory 80, disk 90, I/O wait 30.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    pub io_wait_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            cpu_percent: 80.0,
            memory_percent: 80.0,
            disk_percent: 90.0,
            io_wait_percent: 30.0,
        }
    }
}

/// How the monitor samples and reacts.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Whether to sample at all; when off the concurrency limit is always
    /// `max_concurrent_tasks`.
    pub enabled: bool,
    /// Time between samples.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub thresholds: Thresholds,
    /// An alert clears once its resource is this many points below the
    /// threshold, so a value hovering at the threshold does not flap.
    pub hysteresis_percent: f64,
    /// How long a resource must stay above its threshold before an alert
    /// is raised, and below the clearing level before it clears.
    #[serde(with = "humantime_serde")]
    pub alert_for: Duration,
    /// Weight of the newest reading in the smoothed pressure, in (0, 1]:
    /// 0.5 means one spike moves the pool halfway, two in a row nearly all
    /// the way.
    pub smoothing: f64,
    /// Pressure (usage / threshold) below which the pool runs at full size.
    pub full_speed_below: f64,
    /// Alerts kept in the history, active ones included.
    pub alert_history: usize,
    /// Samples kept for the recent-history view.
    pub sample_history: usize,
    /// Time between points of the node's history (rates, queue, resources).
    #[serde(with = "humantime_serde")]
    pub history_interval: Duration,
    /// Points of history kept: 720 at 5 s is the last hour.
    pub history_points: usize,
    /// Submit a `system_maintenance` task when a disk alert is raised.
    pub maintenance_on_disk_alert: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            enabled: true,
            interval: Duration::from_secs(1),
            thresholds: Thresholds::default(),
            hysteresis_percent: 5.0,
            alert_for: Duration::from_secs(30),
            smoothing: 0.5,
            full_speed_below: 0.75,
            alert_history: 1000,
            sample_history: 300,
            history_interval: Duration::from_secs(5),
            history_points: 720,
            maintenance_on_disk_alert: true,
        }
    }
}
