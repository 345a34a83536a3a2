//! One reading of the machine's resources, and where readings come from.

use crate::model::Timestamp;

/// Resource usage at one moment, each in percent (0 to 100).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResourceSample {
    pub time: Timestamp,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    /// Usage of the filesystem that holds the data dir.
    pub disk_percent: f64,
    /// Share of CPU time spent waiting for I/O since the previous sample;
    /// `None` where the platform does not report it (anything but Linux).
    pub io_wait_percent: Option<f64>,
}

/// Produces samples. The real one reads the machine (`SystemSource`); tests
/// inject scripted ones. Called from a blocking thread, once per interval.
pub trait SampleSource: Send + 'static {
    fn sample(&mut self) -> ResourceSample;
}
