//! `report_generation`: how the service has been doing lately.
//!
//! Statistics say how many tasks are in each status now; a report says how
//! the tasks created in a recent window fared: counts by type and status,
//! success rate, how long tasks waited for a slot and how long attempts ran
//! (p50/p90/p99), and the most frequent errors. The arithmetic lives in
//! the `aggregate` module and the Markdown layout in `markdown`; this module
//! reads the tasks and writes the files.
//!
//! Output: `<data_dir>/reports/<task_id>.json` (machine-readable) and
//! `<task_id>.md` (for people), each written under a temporary name and
//! renamed when complete. At most [`MAX_TASKS`] tasks are read, newest
//! first; a report that hit the bound says `"truncated": true`.
//!
//! Params:
//! - `since`: the window, e.g. "24h" (default) or "7d".
//! - `task_type`: array of task types to report on; all when absent.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::engine::TaskManager;
use crate::engine::handler::{HandlerError, HandlerResult, TaskContext};
use crate::handlers::aggregate::TaskSummary;
use crate::handlers::files::AtomicFile;
use crate::handlers::report_contents::{MAX_TASKS, Report};
use crate::handlers::{markdown, params};
use crate::model::{Params, TaskFilter, Timestamp};

pub const TASK_TYPE: &str = "report_generation";

/// The params it takes; a submit with any other is refused.
pub const PARAMS: &[&str] = &["since", "task_type"];

/// Window when the params do not say: 24 hours.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 60 * 60);

/// Longest window: 10 years.
pub const MAX_SINCE: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// Tasks read per page, if the engine's page limit allows.
const PAGE_SIZE: usize = 1000;

/// What a report was asked to cover.
#[derive(Clone, Debug, PartialEq)]
struct ReportParams {
    since: Duration,
    task_types: Vec<String>,
}

fn parse_params(params: &Params) -> Result<ReportParams, HandlerError> {
    params::only(params, PARAMS)?;
    Ok(ReportParams {
        since: params::optional_duration(params, "since", MAX_SINCE)?.unwrap_or(DEFAULT_SINCE),
        task_types: params::string_list(params, "task_type")?,
    })
}

/// How far back through the window reading has come, 0 to 1: tasks arrive
/// newest first, so the oldest one read so far says.
fn window_progress(now: Timestamp, window_start: Timestamp, oldest_read: Timestamp) -> f64 {
    let window = now.duration_since(window_start).as_secs_f64();
    if window <= 0.0 {
        return 1.0;
    }
    (now.duration_since(oldest_read).as_secs_f64() / window).clamp(0.0, 1.0)
}

/// Writes `text` to `dir/file_name` whole; returns the file, not yet
/// committed.
async fn stage(dir: &std::path::Path, file_name: &str, attempt: u32, text: &str) -> Result<AtomicFile, HandlerError> {
    let mut file = AtomicFile::create(dir, file_name, attempt).await?;
    file.write_all(text.as_bytes()).await?;
    Ok(file)
}

/// Generates one report into `reports_dir`, reading tasks from `engine`;
/// see the module docs.
pub async fn run(engine: TaskManager, reports_dir: PathBuf, context: TaskContext) -> HandlerResult {
    let params = parse_params(&context.params)?;
    let now = Timestamp::now();
    let window_start = now.saturating_sub(params.since);
    let filter = TaskFilter {
        task_types: params.task_types.clone(),
        created_after: Some(window_start),
        ..TaskFilter::default()
    };
    let page_size = engine.config().limits.max_page_size.clamp(1, PAGE_SIZE);

    let mut summary = TaskSummary::default();
    let mut before = None;
    let truncated = loop {
        if context.is_cancelled() {
            return Err(HandlerError::new(format!(
                "cancelled after reading {} tasks",
                summary.tasks
            )));
        }
        let wanted = usize::try_from(MAX_TASKS - summary.tasks).map_or(page_size, |left| left.min(page_size));
        let page = engine
            .list(filter.clone(), wanted, before)
            .await
            .map_err(|error| HandlerError::new(format!("listing tasks failed after {}: {error}", summary.tasks)))?;
        for task in &page.tasks {
            summary.add(task);
        }
        if let Some(oldest) = page.tasks.last() {
            let percent = window_progress(now, window_start, oldest.created_at) * 90.0;
            context.report_progress(percent as f32, format!("read {} tasks", summary.tasks));
        }
        match page.next_before {
            Some(next) if summary.tasks < MAX_TASKS => before = Some(next),
            Some(_) => break true,
            None => break false,
        }
    };

    context.report_progress(90.0, format!("writing the report on {} tasks", summary.tasks));
    let report = Report::new(summary, params.since, params.task_types, now, truncated);
    let json_text = serde_json::to_string_pretty(&report.to_json())
        .map_err(|error| HandlerError::new(format!("cannot serialize the report: {error}")))?;
    let markdown_text = markdown::render(&report);
    let dir = reports_dir;
    let json_file = stage(&dir, &format!("{}.json", context.task_id), context.attempt, &json_text).await?;
    let markdown_file = stage(
        &dir,
        &format!("{}.md", context.task_id),
        context.attempt,
        &markdown_text,
    )
    .await?;
    let json_path = json_file.commit().await?;
    let markdown_path = markdown_file.commit().await?;
    context.report_progress(100.0, format!("reported on {} tasks", report.tasks));

    Ok(json!({
        "json_path": json_path.display().to_string(),
        "markdown_path": markdown_path.display().to_string(),
        "tasks": report.tasks,
        "truncated": report.truncated,
        "success_rate": report.success_rate,
        "queue_wait_ms": report.queue_wait.to_json(),
        "run_time_ms": report.run_time.to_json(),
        "top_errors": report.top_errors_json(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use serde_json::Value;

    use crate::model::TaskStatus;

    fn parse(value: Value) -> Result<ReportParams, String> {
        match value {
            Value::Object(map) => parse_params(&map).map_err(|error| error.message),
            _ => Err("not an object".into()),
        }
    }

    #[test]
    fn empty_params_cover_the_last_24_hours_of_every_type() {
        assert_eq!(
            parse(json!({})),
            Ok(ReportParams {
                since: DEFAULT_SINCE,
                task_types: Vec::new()
            })
        );
    }

    #[test]
    fn since_and_task_types_are_read_from_params() {
        assert_eq!(
            parse(json!({"since": "7d", "task_type": ["diag.echo"]})),
            Ok(ReportParams {
                since: Duration::from_secs(7 * 86_400),
                task_types: vec!["diag.echo".into()]
            })
        );
    }

    #[test]
    fn a_bad_since_or_task_type_is_an_error_naming_the_param() {
        let since = parse(json!({"since": "yesterday"})).err().unwrap_or_default();
        assert!(
            since.starts_with("params.since: \"yesterday\" is not a duration"),
            "{since}"
        );
        assert_eq!(
            parse(json!({"task_type": "diag.echo"})),
            Err("params.task_type: must be an array of strings, got a string".into())
        );
        let too_long = parse(json!({"since": "20years"})).err().unwrap_or_default();
        assert!(too_long.starts_with("params.since: must be at most"), "{too_long}");
    }

    #[test]
    fn progress_follows_the_oldest_task_read_back_through_the_window() {
        let now = Timestamp(1_000_000);
        let start = Timestamp(0);
        assert_eq!(window_progress(now, start, Timestamp(1_000_000)), 0.0);
        assert_eq!(window_progress(now, start, Timestamp(750_000)), 0.25);
        assert_eq!(window_progress(now, start, Timestamp(-5)), 1.0);
        assert_eq!(window_progress(now, now, now), 1.0);
    }

    #[test]
    fn the_report_json_names_statuses_and_lists_errors_with_counts() {
        let mut summary = TaskSummary::default();
        summary.tasks = 3;
        summary.by_status = BTreeMap::from([(TaskStatus::Completed, 2), (TaskStatus::Failed, 1)]);
        summary.by_type = BTreeMap::from([("diag.echo".to_string(), summary.by_status.clone())]);
        summary.errors.insert("boom".into(), 4);
        let params = ReportParams {
            since: DEFAULT_SINCE,
            task_types: Vec::new(),
        };
        let report = Report::new(
            summary,
            params.since,
            params.task_types,
            Timestamp(1_500_000_000_000_000),
            false,
        );
        let value = report.to_json();
        assert_eq!(value["counts_by_status"], json!({"COMPLETED": 2, "FAILED": 1}));
        assert_eq!(value["counts_by_type"]["diag.echo"]["COMPLETED"], 2);
        assert_eq!(value["top_errors"], json!([{"error": "boom", "count": 4}]));
        assert_eq!(value["window"]["since"], "1day");
        assert_eq!(value["window"]["from"], "2017-07-13T02:40:00.000000Z");
        assert_eq!(value["queue_wait_ms"]["p50"], Value::Null);
        let rate = value["success_rate"].as_f64().unwrap_or_default();
        assert!((rate - 2.0 / 3.0).abs() < 1e-9);
    }
}
