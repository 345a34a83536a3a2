//! `data_export`: writes tasks to a file for analysis outside taskd.
//!
//! The API serves tasks a page at a time; an export hands over many of them
//! at once in a format other tools read directly: JSON Lines with every
//! field that matters, or CSV with the scalar columns for spreadsheets.
//!
//! The file is `<data_dir>/exports/<task_id>.<jsonl|csv>`. It is written
//! under a temporary name and renamed when complete (see the `files`
//! module), so a reader never sees half an export. Pages are read newest
//! first; cancellation is checked between pages.
//!
//! Params:
//! - `format`: "jsonl" (default) or "csv".
//! - `status`: array of status names, e.g. `["COMPLETED", "FAILED"]`.
//! - `task_type`: array of task types.
//! - `labels`: object of labels a task must all carry.
//! - `limit`: most rows, default 100,000, at most 1,000,000.

use std::borrow::Cow;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::engine::handler::{HandlerError, HandlerResult, TaskContext};
use crate::engine::{EngineStats, TaskManager};
use crate::handlers::files::AtomicFile;
use crate::handlers::{params, timestamps};
use crate::model::{Params, Task, TaskFilter, TaskStatus};

pub const TASK_TYPE: &str = "data_export";

/// The params it takes; a submit with any other is refused.
pub const PARAMS: &[&str] = &["format", "status", "task_type", "labels", "limit"];

/// Rows when the params do not say.
pub const DEFAULT_LIMIT: u64 = 100_000;

/// Most rows one export may ask for.
pub const MAX_LIMIT: u64 = 1_000_000;

/// Tasks read per page, if the engine's page limit allows.
const PAGE_SIZE: usize = 1000;

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 10] = [
    "id",
    "name",
    "task_type",
    "priority",
    "status",
    "created_at",
    "started_at",
    "completed_at",
    "retry_count",
    "error",
];

/// The file formats an export can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header row and CRLF line ends.
    Csv,
}

impl ExportFormat {
    /// The format named by param `field`, if given.
    pub fn param(params: &Params, field: &str) -> Result<Option<Self>, HandlerError> {
        match params::optional_str(params, field)? {
            None => Ok(None),
            Some("jsonl") => Ok(Some(ExportFormat::Jsonl)),
            Some("csv") => Ok(Some(ExportFormat::Csv)),
            Some(other) => Err(params::invalid(
                field,
                format!("must be \"jsonl\" or \"csv\", got {other:?}"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// What an export was asked for.
#[derive(Clone, Debug, PartialEq)]
struct ExportParams {
    format: ExportFormat,
    filter: TaskFilter,
    limit: u64,
}

fn parse_params(params: &Params) -> Result<ExportParams, HandlerError> {
    params::only(params, PARAMS)?;
    let format = ExportFormat::param(params, "format")?.unwrap_or(ExportFormat::Jsonl);
    let statuses = params::string_list(params, "status")?
        .iter()
        .enumerate()
        .map(|(index, name)| parse_status(name).ok_or_else(|| unknown_status(index, name)))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = TaskFilter {
        statuses,
        task_types: params::string_list(params, "task_type")?,
        labels: params::string_map(params, "labels")?,
        ..TaskFilter::default()
    };
    let limit = params::optional_u64(params, "limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 {
        return Err(params::invalid("limit", "must be at least 1"));
    }
    Ok(ExportParams { format, filter, limit })
}

/// A status by its name, ignoring case.
fn parse_status(name: &str) -> Option<TaskStatus> {
    TaskStatus::ALL
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(name.trim()))
}

fn unknown_status(index: usize, name: &str) -> HandlerError {
    let known: Vec<&str> = TaskStatus::ALL.iter().map(|status| status.as_str()).collect();
    params::invalid(
        &format!("status[{index}]"),
        format!("{name:?} is not a task status; expected one of {}", known.join(", ")),
    )
}

/// One task as a JSON Lines record.
pub fn task_record(task: &Task) -> Value {
    json!({
        "id": task.id.to_string(),
        "name": task.name,
        "task_type": task.task_type,
        "priority": task.priority.as_str(),
        "status": task.status.as_str(),
        "created_at": timestamps::rfc3339(task.created_at),
        "started_at": timestamps::json_or_null(task.started_at),
        "completed_at": timestamps::json_or_null(task.completed_at),
        "retry_count": task.retry_count,
        "error": task.error,
        "labels": task.labels,
        "params": task.params,
        "result": task.result,
        "attempt_count": task.attempts.len(),
    })
}

/// The CSV header row, with its line end.
pub fn csv_header() -> String {
    let mut line = CSV_COLUMNS.join(",");
    line.push_str("\r\n");
    line
}

/// One task as a CSV row in [`CSV_COLUMNS`] order, with its line end.
pub fn csv_row(task: &Task) -> String {
    let optional_time = |time: Option<_>| time.map(timestamps::rfc3339).unwrap_or_default();
    let fields = [
        task.id.to_string(),
        task.name.clone(),
        task.task_type.clone(),
        task.priority.as_str().to_string(),
        task.status.as_str().to_string(),
        timestamps::rfc3339(task.created_at),
        optional_time(task.started_at),
        optional_time(task.completed_at),
        task.retry_count.to_string(),
        task.error.clone().unwrap_or_default(),
    ];
    let mut line = fields
        .iter()
        .map(|field| csv_field(field))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// `text` as one CSV field: quoted when it holds a comma, a quote, CR or
/// LF, with quotes doubled inside.
pub fn csv_field(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(text)
    }
}

/// Roughly how many tasks match `filter`, from the engine's counts by type
/// and status (labels are not counted, so this may be high). Used only to
/// scale progress.
fn estimate_matching(stats: &EngineStats, filter: &TaskFilter) -> u64 {
    stats
        .by_type
        .iter()
        .filter(|by_type| filter.task_types.is_empty() || filter.task_types.contains(&by_type.task_type))
        .flat_map(|by_type| {
            TaskStatus::ALL
                .into_iter()
                .filter(|status| filter.statuses.is_empty() || filter.statuses.contains(status))
                .map(|status| by_type.counts[status.index()])
        })
        .sum()
}

/// The export file of the task `context` runs, `<task_id>.<format>` in
/// `exports_dir` (under a temporary name until committed), headed as
/// `format` wants.
pub(crate) async fn create_output(
    exports_dir: &std::path::Path,
    format: ExportFormat,
    context: &TaskContext,
) -> Result<AtomicFile, HandlerError> {
    let file_name = format!("{}.{}", context.task_id, format.name());
    let mut output = AtomicFile::create(exports_dir, &file_name, context.attempt).await?;
    if format == ExportFormat::Csv {
        output.write_all(csv_header().as_bytes()).await?;
    }
    Ok(output)
}

/// Writes up to `limit` tasks matching `filter` to `output`, newest first,
/// a page at a time (cancellation is checked between pages); how many it
/// wrote. `on_page` is told the running count after each page.
pub(crate) async fn write_matching(
    engine: &TaskManager,
    filter: &TaskFilter,
    limit: u64,
    format: ExportFormat,
    output: &mut AtomicFile,
    context: &TaskContext,
    mut on_page: impl FnMut(u64),
) -> Result<u64, HandlerError> {
    let page_size = engine.config().limits.max_page_size.clamp(1, PAGE_SIZE);
    let mut rows: u64 = 0;
    let mut before = None;
    loop {
        if context.is_cancelled() {
            return Err(HandlerError::new(format!("cancelled after {rows} rows")));
        }
        let wanted = usize::try_from(limit - rows).map_or(page_size, |left| left.min(page_size));
        let page = engine
            .list(filter.clone(), wanted, before)
            .await
            .map_err(|error| HandlerError::new(format!("listing tasks failed after {rows} rows: {error}")))?;
        let mut chunk = String::new();
        for task in &page.tasks {
            match format {
                ExportFormat::Jsonl => {
                    chunk.push_str(&task_record(task).to_string());
                    chunk.push('\n');
                }
                ExportFormat::Csv => chunk.push_str(&csv_row(task)),
            }
        }
        output.write_all(chunk.as_bytes()).await?;
        rows += page.tasks.len() as u64;
        on_page(rows);
        match page.next_before {
            Some(next) if rows < limit => before = Some(next),
            _ => return Ok(rows),
        }
    }
}

/// Runs one export into `exports_dir`, reading tasks from `engine`; see the
/// module docs.
pub async fn run(engine: TaskManager, exports_dir: PathBuf, context: TaskContext) -> HandlerResult {
    let ExportParams { format, filter, limit } = parse_params(&context.params)?;
    let stats = engine
        .stats()
        .await
        .map_err(|error| HandlerError::new(format!("reading the task counts failed: {error}")))?;
    let expected = estimate_matching(&stats, &filter).min(limit);
    let mut output = create_output(&exports_dir, format, &context).await?;
    let rows = write_matching(&engine, &filter, limit, format, &mut output, &context, |rows| {
        let percent = (rows as f64 / expected.max(rows).max(1) as f64 * 100.0).min(99.0) as f32;
        context.report_progress(percent, format!("exported {rows} tasks"));
    })
    .await?;

    let path = output.commit().await?;
    context.report_progress(100.0, format!("exported {rows} tasks"));
    Ok(json!({
        "path": path.display().to_string(),
        "format": format.name(),
        "rows": rows,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::engine::TypeStats;
    use crate::model::{TaskId, TaskPriority, Timestamp};

    fn parse(value: Value) -> Result<ExportParams, String> {
        match value {
            Value::Object(map) => parse_params(&map).map_err(|error| error.message),
            _ => Err("not an object".into()),
        }
    }

    fn task() -> Task {
        Task {
            id: TaskId::new(),
            name: "nightly, \"full\"".into(),
            task_type: "data_export".into(),
            params: Params::new(),
            priority: TaskPriority::High,
            status: TaskStatus::Failed,
            dependencies: Vec::new(),
            max_retries: 3,
            retry_count: 2,
            timeout: std::time::Duration::from_secs(60),
            run_at: None,
            created_at: Timestamp(1_500_000_000_000_000),
            started_at: Some(Timestamp(1_500_000_001_000_000)),
            completed_at: None,
            progress: None,
            result: None,
            error: Some("line one\nline two".into()),
            labels: BTreeMap::from([("team".into(), "data".into())]),
            idempotency_key: None,
            attempts: Vec::new(),
            retry_policy: Default::default(),
            status_reason: String::new(),
            updated_at: Timestamp(1_500_000_001_000_000),
            revision: 1,
        }
    }

    #[test]
    fn empty_params_export_everything_as_jsonl_up_to_the_default_limit() {
        let parsed = parse(json!({}));
        assert_eq!(
            parsed,
            Ok(ExportParams {
                format: ExportFormat::Jsonl,
                filter: TaskFilter::default(),
                limit: DEFAULT_LIMIT
            })
        );
    }

    #[test]
    fn filters_are_read_from_status_task_type_and_labels() {
        let parsed = parse(json!({
            "format": "csv",
            "status": ["COMPLETED", "failed"],
            "task_type": ["diag.echo"],
            "labels": {"team": "data"},
            "limit": 10,
        }));
        let filter = TaskFilter {
            statuses: vec![TaskStatus::Completed, TaskStatus::Failed],
            task_types: vec!["diag.echo".into()],
            labels: BTreeMap::from([("team".into(), "data".into())]),
            ..TaskFilter::default()
        };
        assert_eq!(
            parsed,
            Ok(ExportParams {
                format: ExportFormat::Csv,
                filter,
                limit: 10
            })
        );
    }

    #[test]
    fn an_unknown_format_is_an_error_naming_the_param() {
        assert_eq!(
            parse(json!({"format": "xml"})),
            Err("params.format: must be \"jsonl\" or \"csv\", got \"xml\"".into())
        );
    }

    #[test]
    fn an_unknown_status_is_an_error_naming_its_position_and_the_known_ones() {
        let error = parse(json!({"status": ["COMPLETED", "DONE"]}))
            .err()
            .unwrap_or_default();
        assert!(
            error.starts_with("params.status[1]: \"DONE\" is not a task status; expected one of PENDING,"),
            "{error}"
        );
    }

    #[test]
    fn a_limit_of_zero_or_above_a_million_is_an_error() {
        assert_eq!(
            parse(json!({"limit": 0})),
            Err("params.limit: must be at least 1".into())
        );
        assert_eq!(
            parse(json!({"limit": 1_000_001})),
            Err("params.limit: must be at most 1000000, got 1000001".into())
        );
    }

    #[test]
    fn a_plain_csv_field_is_written_as_is() {
        assert_eq!(csv_field("diag.echo"), "diag.echo");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn a_csv_field_with_a_comma_quote_or_line_break_is_quoted_with_quotes_doubled() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("one\ntwo"), "\"one\ntwo\"");
        assert_eq!(csv_field("one\rtwo"), "\"one\rtwo\"");
    }

    #[test]
    fn a_csv_row_has_one_field_per_column_in_order() {
        let task = task();
        let row = csv_row(&task);
        let expected = format!(
            "{},\"nightly, \"\"full\"\"\",data_export,HIGH,FAILED,2017-07-14T02:40:00.000000Z,\
             2017-07-14T02:40:01.000000Z,,2,\"line one\nline two\"\r\n",
            task.id
        );
        assert_eq!(row, expected);
        assert_eq!(csv_header(), format!("{}\r\n", CSV_COLUMNS.join(",")));
    }

    #[test]
    fn a_jsonl_record_has_text_timestamps_null_for_missing_ones_and_an_attempt_count() {
        let record = task_record(&task());
        assert_eq!(record["created_at"], "2017-07-14T02:40:00.000000Z");
        assert_eq!(record["completed_at"], Value::Null);
        assert_eq!(record["priority"], "HIGH");
        assert_eq!(record["labels"], json!({"team": "data"}));
        assert_eq!(record["attempt_count"], 0);
        assert!(!record.to_string().contains('\n'), "one record is one line");
    }

    #[test]
    fn the_progress_estimate_counts_matching_types_and_statuses_only() {
        let mut echo = [0; 7];
        echo[TaskStatus::Completed.index()] = 5;
        echo[TaskStatus::Failed.index()] = 2;
        let mut sleep = [0; 7];
        sleep[TaskStatus::Completed.index()] = 7;
        let stats = EngineStats {
            by_type: vec![
                TypeStats {
                    task_type: "diag.echo".into(),
                    counts: echo,
                    ..TypeStats::default()
                },
                TypeStats {
                    task_type: "diag.sleep".into(),
                    counts: sleep,
                    ..TypeStats::default()
                },
            ],
            ..EngineStats::default()
        };
        assert_eq!(estimate_matching(&stats, &TaskFilter::default()), 14);
        let completed_echo = TaskFilter {
            statuses: vec![TaskStatus::Completed],
            task_types: vec!["diag.echo".into()],
            ..TaskFilter::default()
        };
        assert_eq!(estimate_matching(&stats, &completed_echo), 5);
    }
}
