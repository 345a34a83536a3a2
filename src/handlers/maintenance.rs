//! `system_maintenance`: keeps the store from growing without bound.
//!
//! Finished tasks stay in the store until something deletes them; this task
//! type is that something, meant to be submitted on a schedule. It purges
//! terminal tasks that finished longer than `retention` ago, a bounded step
//! at a time so that submits keep flowing meanwhile, and then lets the
//! backend do its housekeeping. It works through the engine like any other
//! client: the store keeps its own counts right.
//!
//! Params:
//! - `retention`: how long finished tasks are kept, e.g. "7d" (default), or
//!   `retention_seconds` as a number; not both.
//! - `completed`, `failed`, `cancelled`: how long tasks that ended so are
//!   kept (e.g. "30d"), each in place of `retention` for its status.
//! - `optimize`: whether to run the store's housekeeping (default true).
//! - `export`: "jsonl" or "csv" to write the tasks it is about to purge to
//!   `<data_dir>/exports/<task_id>.<format>` first (as `data_export`
//!   writes them); the purge starts only once that file is complete.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::json;

use crate::engine::handler::{HandlerError, HandlerResult, TaskContext};
use crate::engine::{Admin, EngineError, EngineResult, TaskManager};
use crate::handlers::export::{self, ExportFormat};
use crate::handlers::{params, timestamps};
use crate::model::StatusCount;
use crate::model::{Params, TaskFilter, TaskStatus, Timestamp};

pub const TASK_TYPE: &str = "system_maintenance";

/// The params it takes; a submit with any other is refused.
pub const PARAMS: &[&str] = &[
    "retention",
    "retention_seconds",
    "completed",
    "failed",
    "cancelled",
    "optimize",
    "export",
];

/// Retention when the params do not say: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Longest retention accepted: 100 years, well inside timestamp arithmetic.
pub const MAX_RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Tasks deleted per store step: a few milliseconds of work, so that
/// submits queued behind a step wait little (`cargo bench --bench
/// retention`: 1000 made them wait three times longer, for no faster purge).
const PURGE_STEP: usize = 500;

/// Tries of a store call that fails because the store is unavailable.
const STORE_TRIES: u32 = 4;

/// Wait before the first retry of a store call; doubles after each.
const FIRST_STORE_RETRY_DELAY: Duration = Duration::from_millis(50);

/// What a maintenance run was asked to do.
#[derive(Clone, Debug, PartialEq)]
struct MaintenanceParams {
    retention: Duration,
    /// Retention of one ended status, in place of `retention`.
    by_status: Vec<(TaskStatus, Duration)>,
    optimize: bool,
    /// Export what is purged, first, in this format.
    export: Option<ExportFormat>,
}

fn parse_params(params: &Params) -> Result<MaintenanceParams, HandlerError> {
    params::only(params, PARAMS)?;
    let as_text = params::optional_duration(params, "retention", MAX_RETENTION)?;
    let as_seconds = params::optional_u64(params, "retention_seconds", MAX_RETENTION.as_secs())?;
    let retention = match (as_text, as_seconds) {
        (Some(_), Some(_)) => {
            return Err(params::invalid(
                "retention_seconds",
                "give either retention or retention_seconds, not both",
            ));
        }
        (Some(retention), None) => retention,
        (None, Some(seconds)) => Duration::from_secs(seconds),
        (None, None) => DEFAULT_RETENTION,
    };
    let mut by_status = Vec::new();
    for (name, status) in [
        ("completed", TaskStatus::Completed),
        ("failed", TaskStatus::Failed),
        ("cancelled", TaskStatus::Cancelled),
    ] {
        if let Some(kept) = params::optional_duration(params, name, MAX_RETENTION)? {
            by_status.push((status, kept));
        }
    }
    let optimize = params::optional_bool(params, "optimize")?.unwrap_or(true);
    Ok(MaintenanceParams {
        retention,
        by_status,
        optimize,
        export: ExportFormat::param(params, "export")?,
    })
}

impl MaintenanceParams {
    /// What to purge: each ended status with its cutoff, or all of them
    /// with one.
    fn cutoffs(&self, now: Timestamp) -> Vec<(Option<TaskStatus>, Timestamp)> {
        if self.by_status.is_empty() {
            return vec![(None, now.saturating_sub(self.retention))];
        }
        [TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Cancelled]
            .into_iter()
            .map(|status| {
                let kept = self
                    .by_status
                    .iter()
                    .find(|(of, _)| *of == status)
                    .map_or(self.retention, |(_, kept)| *kept);
                (Some(status), now.saturating_sub(kept))
            })
            .collect()
    }
}

/// Purged counts: the total and the count per status name.
fn totals_by_status(purged: &[StatusCount]) -> (u64, BTreeMap<&'static str, u64>) {
    let mut by_status = BTreeMap::new();
    let mut total = 0;
    for count in purged {
        *by_status.entry(count.status.as_str()).or_insert(0) += count.count;
        total += count.count;
    }
    (total, by_status)
}

/// Purged counts per task type.
fn totals_by_type(purged: &[StatusCount]) -> BTreeMap<&str, u64> {
    let mut by_type = BTreeMap::new();
    for count in purged {
        *by_type.entry(count.task_type.as_str()).or_insert(0) += count.count;
    }
    by_type
}

/// Runs `call` until it succeeds, retrying a few times while the store is
/// unavailable (it wrote nothing then, so trying again is safe).
async fn with_retries<T, F, Fut>(context: &TaskContext, what: &str, mut call: F) -> Result<T, HandlerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = EngineResult<T>>,
{
    let mut delay = FIRST_STORE_RETRY_DELAY;
    let mut tries = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(EngineError::Unavailable(message)) if tries < STORE_TRIES => {
                tracing::debug!(task_id = %context.task_id, tries, %message, "{what} failed; retrying");
                tokio::select! {
                    _ = context.cancellation.cancelled() => {
                        return Err(HandlerError::new(format!("cancelled while retrying {what}")));
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                delay *= 2;
                tries += 1;
            }
            Err(error) => return Err(HandlerError::new(format!("{what} failed: {error}"))),
        }
    }
}

/// Adds one step's counts to the running totals.
fn add_counts(totals: &mut Vec<StatusCount>, step: Vec<StatusCount>) {
    for count in step {
        match totals
            .iter_mut()
            .find(|total| total.task_type == count.task_type && total.status == count.status)
        {
            Some(total) => total.count += count.count,
            None => totals.push(count),
        }
    }
}

/// What a maintenance pass works through.
#[derive(Clone)]
pub struct Maintenance {
    pub admin: Admin,
    /// Reads the tasks an export writes.
    pub tasks: TaskManager,
    pub exports_dir: std::path::PathBuf,
}

/// The ended tasks a cutoff purges.
fn purged_by(status: Option<TaskStatus>, cutoff: Timestamp) -> TaskFilter {
    TaskFilter {
        statuses: status.map_or_else(
            || TaskStatus::ALL.into_iter().filter(|s| s.is_terminal()).collect(),
            |status| vec![status],
        ),
        finished_before: Some(cutoff),
        ..TaskFilter::default()
    }
}

/// Writes every task the cutoffs purge to one export file; its path and
/// how many rows it holds.
async fn export_first(
    maintenance: &Maintenance,
    format: ExportFormat,
    cutoffs: &[(Option<TaskStatus>, Timestamp)],
    context: &TaskContext,
) -> Result<(std::path::PathBuf, u64), HandlerError> {
    let mut output = export::create_output(&maintenance.exports_dir, format, context).await?;
    let mut rows = 0;
    for (status, cutoff) in cutoffs {
        let before = rows;
        rows += export::write_matching(
            &maintenance.tasks,
            &purged_by(*status, *cutoff),
            u64::MAX,
            format,
            &mut output,
            context,
            |written| context.report_progress(0.0, format!("exported {} tasks to purge", before + written)),
        )
        .await?;
    }
    Ok((output.commit().await?, rows))
}

/// Runs one maintenance pass; see the module docs.
pub async fn run(maintenance: Maintenance, context: TaskContext) -> HandlerResult {
    let engine = &maintenance.admin;
    let params = parse_params(&context.params)?;
    let cutoffs = params.cutoffs(engine.now());
    let cutoff_text = timestamps::rfc3339(
        cutoffs
            .iter()
            .map(|(_, cutoff)| *cutoff)
            .max()
            .unwrap_or_else(|| engine.now()),
    );
    let exported = match params.export {
        Some(format) => {
            context.report_progress(0.0, format!("exporting tasks finished before {cutoff_text}"));
            let (path, rows) = export_first(&maintenance, format, &cutoffs, &context).await?;
            Some(json!({"path": path.display().to_string(), "format": format.name(), "rows": rows}))
        }
        None => None,
    };
    context.report_progress(0.0, format!("purging tasks finished before {cutoff_text}"));

    let mut purged: Vec<StatusCount> = Vec::new();
    for (status, cutoff) in cutoffs {
        loop {
            if context.is_cancelled() {
                let (total, _) = totals_by_status(&purged);
                return Err(HandlerError::new(format!("cancelled after purging {total} tasks")));
            }
            let step = with_retries(&context, "purge", || {
                engine.purge_finished_before(status, cutoff, PURGE_STEP)
            })
            .await?;
            add_counts(&mut purged, step.counts);
            if !step.more {
                break;
            }
            let (total, _) = totals_by_status(&purged);
            context.report_progress(25.0, format!("purged {total} tasks so far"));
        }
    }
    let (total, by_status) = totals_by_status(&purged);
    let by_type = totals_by_type(&purged);

    let optimize = if !params.optimize {
        "skipped: params.optimize is false".to_string()
    } else if context.is_cancelled() {
        return Err(HandlerError::new(format!(
            "cancelled after purging {total} tasks, before optimizing"
        )));
    } else {
        context.report_progress(50.0, format!("purged {total} tasks; optimizing the store"));
        with_retries(&context, "optimize", || engine.optimize_store())
            .await
            .map_err(|error| HandlerError::new(format!("purged {total} tasks, then {error}")))?
    };
    context.report_progress(100.0, format!("purged {total} tasks"));
    Ok(json!({
        "purged": total,
        "purged_by_status": by_status,
        "purged_by_type": by_type,
        "cutoff": cutoff_text,
        "retention_seconds": params.retention.as_secs(),
        "optimize": optimize,
        "export": exported,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::model::TaskStatus;

    fn parse(value: Value) -> Result<MaintenanceParams, HandlerError> {
        match value {
            Value::Object(map) => parse_params(&map),
            _ => parse_params(&Params::new()),
        }
    }

    #[test]
    fn empty_params_keep_seven_days_and_optimize() {
        assert_eq!(
            parse(json!({})),
            Ok(MaintenanceParams {
                retention: DEFAULT_RETENTION,
                by_status: Vec::new(),
                optimize: true,
                export: None,
            })
        );
    }

    #[test]
    fn retention_may_be_a_duration_or_a_number_of_seconds() {
        let text = parse(json!({"retention": "36h", "optimize": false}));
        assert_eq!(
            text,
            Ok(MaintenanceParams {
                retention: Duration::from_secs(36 * 3600),
                by_status: Vec::new(),
                optimize: false,
                export: None,
            })
        );
        let seconds = parse(json!({"retention_seconds": 60.0}));
        assert_eq!(seconds.map(|params| params.retention), Ok(Duration::from_secs(60)));
    }

    #[test]
    fn each_ended_status_may_have_its_own_retention() {
        let params = parse(json!({"retention": "7d", "failed": "30d"})).expect("valid");
        let now = Timestamp(100 * 86_400 * 1_000_000);
        let day = |days: u64| now.saturating_sub(Duration::from_secs(days * 86_400));
        assert_eq!(
            params.cutoffs(now),
            vec![
                (Some(TaskStatus::Completed), day(7)),
                (Some(TaskStatus::Failed), day(30)),
                (Some(TaskStatus::Cancelled), day(7)),
            ]
        );
        let all = parse(json!({"retention": "7d"})).expect("valid");
        assert_eq!(all.cutoffs(now), vec![(None, day(7))]);
    }

    #[test]
    fn giving_both_retention_forms_is_an_error_naming_the_param() {
        let error = parse(json!({"retention": "1d", "retention_seconds": 60})).err();
        assert_eq!(
            error.map(|error| error.message),
            Some("params.retention_seconds: give either retention or retention_seconds, not both".to_string())
        );
    }

    #[test]
    fn a_bad_retention_or_optimize_flag_is_an_error_naming_the_param() {
        let bad_retention = parse(json!({"retention": "a week"})).err().map(|error| error.message);
        assert!(bad_retention.is_some_and(|message| message.starts_with("params.retention: ")));
        let bad_flag = parse(json!({"optimize": "yes"})).err().map(|error| error.message);
        assert_eq!(
            bad_flag,
            Some("params.optimize: must be true or false, got a string".to_string())
        );
    }

    #[test]
    fn purged_counts_add_up_per_status_across_task_types() {
        let purged = vec![
            StatusCount {
                task_type: "a".into(),
                status: TaskStatus::Completed,
                count: 3,
            },
            StatusCount {
                task_type: "b".into(),
                status: TaskStatus::Completed,
                count: 2,
            },
            StatusCount {
                task_type: "b".into(),
                status: TaskStatus::Failed,
                count: 1,
            },
        ];
        let (total, by_status) = totals_by_status(&purged);
        assert_eq!(total, 6);
        assert_eq!(by_status, BTreeMap::from([("COMPLETED", 5), ("FAILED", 1)]));
        assert_eq!(totals_by_type(&purged), BTreeMap::from([("a", 3), ("b", 3)]));
    }
}
