//! Server settings: one struct per subsystem, read from an optional TOML file
//! and overridden by `TASKD_*` environment variables and flags (see `main`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::engine::EngineConfig;
use crate::monitor::MonitorConfig;
use crate::store::SqliteStoreConfig;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Everything `taskd serve` needs. Defaults work with no file at all.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Where the database, exports and reports live.
    pub data_dir: PathBuf,
    /// How long running tasks may finish on shutdown before they are
    /// signalled; those still running are retried at the next start.
    #[serde(with = "humantime_serde")]
    pub shutdown_drain: Duration,
    pub log_format: LogFormat,
    pub engine: EngineConfig,
    pub store: SqliteStoreConfig,
    pub monitor: MonitorConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("taskd-data"),
            shutdown_drain: Duration::from_secs(10),
            log_format: LogFormat::Text,
            engine: EngineConfig::default(),
            store: SqliteStoreConfig::default(),
            monitor: MonitorConfig::default(),
        }
    }
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl ServerConfig {
    /// Checks settings that parse but make no sense; the message names the
    /// setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.engine.max_concurrent_tasks == 0 {
            return Err("engine.max_concurrent_tasks must be at least 1".into());
        }
        for (index, task_type) in self.engine.known_task_types.iter().enumerate() {
            crate::engine::validate::validate_task_type(task_type)
                .map_err(|message| format!("engine.known_task_types[{index}]: {message}"))?;
        }
        let monitor = &self.monitor;
        let thresholds = &monitor.thresholds;
        for (name, value) in [
            ("cpu_percent", thresholds.cpu_percent),
            ("memory_percent", thresholds.memory_percent),
            ("disk_percent", thresholds.disk_percent),
            ("io_wait_percent", thresholds.io_wait_percent),
        ] {
            if !(value > 0.0 && value <= 100.0) {
                return Err(format!("monitor.thresholds.{name} must be in (0, 100], got {value}"));
            }
        }
        if !(monitor.smoothing > 0.0 && monitor.smoothing <= 1.0) {
            return Err(format!(
                "monitor.smoothing must be in (0, 1], got {}",
                monitor.smoothing
            ));
        }
        if !(0.0..1.0).contains(&monitor.full_speed_below) {
            return Err(format!(
                "monitor.full_speed_below must be in [0, 1), got {}",
                monitor.full_speed_below
            ));
        }
        if monitor.interval.is_zero() {
            return Err("monitor.interval must be positive".into());
        }
        if !(0.0..=50.0).contains(&monitor.hysteresis_percent) {
            return Err(format!(
                "monitor.hysteresis_percent must be in [0, 50], got {}",
                monitor.hysteresis_percent
            ));
        }
        Ok(())
    }

    /// Reads a TOML config file; unknown keys are errors, missing ones take
    /// their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })
    }
}
