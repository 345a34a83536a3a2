//! Retention: how long ended tasks are kept, applied by a
//! `system_maintenance` schedule that the engine creates at its first start
//! (when none exists). The schedule is an ordinary one: visible, and
//! editable or pausable like any other.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::error::EngineResult;
use crate::engine::schedules::Schedules;
use crate::model::schedule::{CatchUp, Overlap, Schedule, ScheduleSpec, ScheduleState, SpecKind, TaskTemplate};

/// The name of the schedule that applies retention.
pub const SCHEDULE_NAME: &str = "system_maintenance";

/// How long ended tasks are kept, and when the purge runs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "snake_case")]
pub struct RetentionConfig {
    /// Whether the engine creates the maintenance schedule when none
    /// exists. It never changes or deletes one that does.
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub completed: Duration,
    #[serde(with = "humantime_serde")]
    pub failed: Duration,
    #[serde(with = "humantime_serde")]
    pub cancelled: Duration,
    /// When the purge runs: a cron expression in `time_zone`.
    pub schedule: String,
    pub time_zone: String,
    /// Write what each purge deletes to a file under `<data_dir>/exports`
    /// first, in this format; unset: no export.
    pub export: Option<RetentionExport>,
}

/// The file format of a retention export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionExport {
    Jsonl,
    Csv,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            enabled: true,
            completed: Duration::from_secs(7 * 24 * 3600),
            failed: Duration::from_secs(30 * 24 * 3600),
            cancelled: Duration::from_secs(7 * 24 * 3600),
            schedule: "17 3 * * *".to_string(),
            time_zone: "UTC".to_string(),
            export: None,
        }
    }
}

/// Creates the maintenance schedule from `config` unless one exists.
pub async fn ensure_schedule(schedules: &Schedules, config: &RetentionConfig) -> EngineResult<()> {
    if !config.enabled || schedules.get(SCHEDULE_NAME).await.is_ok() {
        return Ok(());
    }
    let text = |duration: Duration| serde_json::Value::String(humantime::format_duration(duration).to_string());
    let mut params = crate::model::Params::new();
    params.insert("completed".into(), text(config.completed));
    params.insert("failed".into(), text(config.failed));
    params.insert("cancelled".into(), text(config.cancelled));
    if let Some(format) = config.export {
        let name = match format {
            RetentionExport::Jsonl => "jsonl",
            RetentionExport::Csv => "csv",
        };
        params.insert("export".into(), name.into());
    }
    let schedule = Schedule {
        name: SCHEDULE_NAME.to_string(),
        spec: ScheduleSpec {
            kind: SpecKind::Cron {
                expression: config.schedule.clone(),
                time_zone: config.time_zone.clone(),
            },
            jitter: Duration::ZERO,
        },
        template: TaskTemplate {
            task_type: "system_maintenance".to_string(),
            params,
            ..TaskTemplate::default()
        },
        overlap: Overlap::Skip,
        catch_up: CatchUp {
            window: Duration::from_secs(6 * 3600),
            latest_only: true,
        },
        start_at: None,
        end_at: None,
        max_fires: None,
        paused: None,
        state: ScheduleState::default(),
    };
    match schedules.create(schedule).await {
        Ok(_) => {
            tracing::info!(schedule = SCHEDULE_NAME, "created the retention schedule");
            Ok(())
        }
        // Another node created it first.
        Err(crate::engine::EngineError::AlreadyExists(_)) => Ok(()),
        Err(error) => Err(error),
    }
}
