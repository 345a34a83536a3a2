//! The ResourceMonitor: samples CPU, memory, disk and I/O wait, turns them
//! into a load figure and a recommended concurrency, and raises and clears
//! alerts. Transport-free, like the engine it advises.
//!
//! - [`sample`]: one reading and the `SampleSource` trait (injectable).
//! - [`system_source`]: the real machine, through `sysinfo`, statvfs and /proc/stat.
//! - [`cgroup`]: the memory limit of the process's cgroup, in a container.
//! - [`pressure`]: load and recommended concurrency from a reading.
//! - [`alerts`]: threshold crossings held for a while, with hysteresis, and their history.
//! - [`resource_monitor`]: the running monitor that ties them to the scheduler.
//! - [`history`]: a bounded history of task rates, queue and resources.
//! - [`journal`]: alerts and history kept across restarts, in the data dir.

pub mod alerts;
pub mod cgroup;
pub mod config;
pub mod history;
pub mod history_point;
pub mod journal;
pub mod pressure;
pub mod resource_monitor;
pub mod sample;
pub mod system_source;

pub use alerts::{Alert, AlertBook, Resource};
pub use config::{MonitorConfig, Thresholds};
pub use history::History;
pub use history_point::HistoryPoint;
pub use journal::Journal;
pub use pressure::Pressure;
pub use resource_monitor::{LoadReport, MonitorEvent, ResourceMonitor};
pub use sample::{ResourceSample, SampleSource};
