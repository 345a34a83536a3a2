//! Server settings: one struct per subsystem, read from an optional TOML file
//! and overridden by `TASKD_*` environment variables and flags (see `main`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::engine::{EngineConfig, RetentionConfig};
use crate::monitor::MonitorConfig;
use crate::net::NetConfig;
use crate::net::tls::TlsConfig;
use crate::store::StoreConfig;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Everything `taskd serve` needs. Defaults work with no file at all.
#[derive(Clone, Debug, Deserialize, Serialize)]
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
    /// Web origins (`https://ops.example.com`) whose pages may call the REST
    /// API, writes included; the dashboard's own origin always may.
    pub cors_origins: Vec<String>,
    pub engine: EngineConfig,
    pub store: StoreConfig,
    pub monitor: MonitorConfig,
    pub net: NetConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    /// How long ended tasks are kept (a `system_maintenance` schedule).
    pub retention: RetentionConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("taskd-data"),
            shutdown_drain: Duration::from_secs(10),
            log_format: LogFormat::Text,
            cors_origins: Vec::new(),
            engine: EngineConfig::default(),
            store: StoreConfig::default(),
            monitor: MonitorConfig::default(),
            net: NetConfig::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            // A section of settings, not a map-valued setting (those are
            // empty by default and print as `{}`).
            toml::Value::Table(inner) if !inner.is_empty() && !is_map_setting(&key) => flatten(&key, inner, out),
            toml::Value::Table(inner) if inner.is_empty() => out.push((key, "{}".to_string())),
            other => out.push((key, other.to_string())),
        }
    }
}

/// Settings whose value is a map of the user's own keys.
fn is_map_setting(key: &str) -> bool {
    key == "engine.type_concurrency_limits"
}

fn unknown_setting(key: &str, config: &ServerConfig) -> String {
    let keys: Vec<String> = config.settings().into_iter().map(|(key, _)| key).collect();
    let closest = keys
        .iter()
        .min_by_key(|candidate| crate::engine::catalog::edit_distance(candidate, key))
        .filter(|candidate| crate::engine::catalog::edit_distance(candidate, key) <= 4);
    match closest {
        Some(closest) => format!("unknown setting {key:?} (did you mean {closest:?}?)"),
        None => format!("unknown setting {key:?}; `taskd serve --help` lists them"),
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
    /// Every setting as `(dotted key, value)` in TOML syntax, sorted by key:
    /// what `taskd serve --help` and docs/configuration.md list.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut settings = Vec::new();
        if let Ok(toml::Value::Table(table)) = toml::Value::try_from(self) {
            flatten("", &table, &mut settings);
        }
        settings
    }

    /// Sets one setting by its dotted key, the value in TOML syntax (a bare
    /// word reads as a string): `engine.lease_duration=10s`. Errors name the
    /// key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut tree = toml::Value::try_from(&*self).map_err(|error| error.to_string())?;
        let mut slot = &mut tree;
        for part in key.split('.') {
            slot = match slot {
                toml::Value::Table(table) => table.get_mut(part),
                _ => None,
            }
            .ok_or_else(|| unknown_setting(key, self))?;
        }
        if slot.is_table() && !value.trim_start().starts_with('{') {
            return Err(format!(
                "{key}: a section; set one of its keys, or give an inline table {{...}}"
            ));
        }
        *slot = match toml::from_str::<toml::Table>(&format!("value = {value}")) {
            Ok(mut parsed) => parsed.remove("value").unwrap_or(toml::Value::String(value.into())),
            Err(_) => toml::Value::String(value.into()),
        };
        // What settings never hold (secrets given by the environment, the
        // engine's clock) does not go through TOML: keep it.
        let tokens_text = self.auth.tokens_text.take();
        let clock = self.engine.clock.clone();
        let parsed: Result<ServerConfig, _> = tree.try_into();
        let mut parsed = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                self.auth.tokens_text = tokens_text;
                return Err(format!("{key}: {}", error.message()));
            }
        };
        parsed.auth.tokens_text = tokens_text;
        parsed.engine.clock = clock;
        *self = parsed;
        Ok(())
    }

    /// Checks settings that parse but make no sense; the message names the
    /// setting.
    pub fn validate(&self) -> Result<(), String> {
        self.store.backend()?;
        if self.engine.max_concurrent_tasks == 0 {
            return Err("engine.max_concurrent_tasks must be at least 1".into());
        }
        for (index, origin) in self.cors_origins.iter().enumerate() {
            let valid = origin.split_once("://").is_some_and(|(scheme, authority)| {
                matches!(scheme, "http" | "https") && !authority.is_empty() && !authority.contains('/')
            });
            if !valid {
                return Err(format!(
                    "cors_origins[{index}]: {origin:?} is not an origin like https://ops.example.com (scheme and host, no path)"
                ));
            }
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
        if monitor.history_interval < Duration::from_millis(10) {
            return Err("monitor.history_interval must be at least 10ms".into());
        }
        if monitor.history_points == 0 || monitor.history_points > 100_000 {
            return Err(format!(
                "monitor.history_points must be in [1, 100000], got {}",
                monitor.history_points
            ));
        }
        if monitor.alert_for > Duration::from_secs(3600) {
            return Err(format!(
                "monitor.alert_for must be at most 1h, got {}",
                humantime::format_duration(monitor.alert_for)
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

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn a_setting_changed_by_name_keeps_the_tokens_the_environment_gave() {
        let mut config = ServerConfig::default();
        config.auth.tokens_text = Some(crate::auth::Secret("ci submit,read token-0123456789abcdef".into()));
        config.set("retention.enabled", "false").expect("a known setting");
        assert!(!config.retention.enabled);
        assert!(
            config.auth.tokens_text.is_some(),
            "--set must not drop TASKD_AUTH_TOKENS"
        );
    }

    #[test]
    fn every_setting_is_listed_once_by_its_dotted_key() {
        let settings = ServerConfig::default().settings();
        let keys: Vec<&str> = settings.iter().map(|(key, _)| key.as_str()).collect();
        for expected in [
            "shutdown_drain",
            "engine.lease_duration",
            "engine.priority_boost.high",
            "engine.type_concurrency_limits",
            "monitor.alert_for",
            "monitor.thresholds.cpu_percent",
            "store.synchronous",
        ] {
            assert_eq!(
                keys.iter().filter(|key| **key == expected).count(),
                1,
                "{expected} in {keys:?}"
            );
        }
        assert!(settings.contains(&("monitor.alert_for".to_string(), "\"30s\"".to_string())));
    }

    #[test]
    fn a_setting_is_set_by_its_key_with_a_toml_or_bare_value() {
        let mut config = ServerConfig::default();
        config.set("engine.cancel_grace", "2s").unwrap();
        config.set("monitor.thresholds.cpu_percent", "65").unwrap();
        config
            .set("engine.known_task_types", r#"["thumbnails", "ocr"]"#)
            .unwrap();
        config
            .set("engine.type_concurrency_limits", "{ data_export = 2 }")
            .unwrap();
        config.set("store.synchronous", "normal").unwrap();
        assert_eq!(config.engine.cancel_grace, Duration::from_secs(2));
        assert_eq!(config.monitor.thresholds.cpu_percent, 65.0);
        assert_eq!(config.engine.known_task_types, ["thumbnails", "ocr"]);
        assert_eq!(config.engine.type_concurrency_limits.get("data_export"), Some(&2));
        assert_eq!(config.store.synchronous, crate::store::Synchronous::Normal);
    }

    #[test]
    fn a_bad_setting_names_its_key() {
        let mut config = ServerConfig::default();
        let typo = config.set("engine.lease_durations", "10s").unwrap_err();
        assert!(typo.contains("did you mean \"engine.lease_duration\""), "{typo}");
        let bad = config.set("engine.max_concurrent_tasks", "many").unwrap_err();
        assert!(bad.starts_with("engine.max_concurrent_tasks:"), "{bad}");
        let section = config.set("engine.limits", "3").unwrap_err();
        assert!(section.contains("a section"), "{section}");
        assert_eq!(config.engine.max_concurrent_tasks, 10, "nothing half-set");
    }
}
