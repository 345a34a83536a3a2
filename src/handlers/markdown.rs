//! The Markdown form of a `report_generation` report: the same numbers as
//! the JSON file, laid out as tables for a person reading it in a browser,
//! a wiki or a terminal.
//!
//! Task types and error messages come from clients and handlers, so every
//! table cell is escaped ([`cell`]): a `|` or a line break in an error must
//! not break the table, and `*`, `_` or `<` must not turn into formatting
//! or HTML.

use std::fmt::Write;

use crate::handlers::aggregate::Percentiles;
use crate::handlers::report_contents::{MAX_TASKS, Report};
use crate::handlers::timestamps;
use crate::model::TaskStatus;

/// `text` safe to put in a Markdown table cell: line breaks become spaces
/// and characters Markdown would act on are backslash-escaped.
pub fn cell(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        match character {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                escaped.push(' ');
            }
            '\n' => escaped.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' => {
                escaped.push('\\');
                escaped.push(character);
            }
            other => escaped.push(other),
        }
    }
    escaped
}

/// A millisecond figure, or "n/a" without samples.
fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_string(), |ms| format!("{ms:.1}"))
}

/// A share as a percentage, or "n/a".
fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "n/a".to_string(), |share| format!("{:.1}%", share * 100.0))
}

fn timing_row(out: &mut String, label: &str, percentiles: &Percentiles) {
    let _ = writeln!(
        out,
        "| {label} | {} | {} | {} | {} |",
        millis(percentiles.p50),
        millis(percentiles.p90),
        millis(percentiles.p99),
        percentiles.samples
    );
}

/// `report` as a Markdown document.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Task report\n");
    let _ = writeln!(
        out,
        "Generated {}, covering tasks created in the last {} (since {}).\n",
        timestamps::rfc3339(report.generated_at),
        humantime::format_duration(report.since),
        timestamps::rfc3339(report.window_start),
    );
    if report.task_types.is_empty() {
        let _ = writeln!(out, "Task types: all.\n");
    } else {
        let types: Vec<String> = report.task_types.iter().map(|task_type| cell(task_type)).collect();
        let _ = writeln!(out, "Task types: {}.\n", types.join(", "));
    }
    if report.truncated {
        let _ = writeln!(
            out,
            "**Truncated:** only the newest {MAX_TASKS} tasks of the window are included.\n"
        );
    }

    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| Measure | Value |\n|---|---:|");
    let _ = writeln!(out, "| Tasks | {} |", report.tasks);
    let _ = writeln!(
        out,
        "| Success rate (completed / finished) | {} |\n",
        percent(report.success_rate)
    );

    let _ = writeln!(out, "## Tasks by type and status\n");
    if report.by_type.is_empty() {
        let _ = writeln!(out, "No tasks were created in this window.\n");
    } else {
        // Only the statuses that occur, in status-machine order.
        let statuses: Vec<TaskStatus> = TaskStatus::ALL
            .into_iter()
            .filter(|status| report.by_status.contains_key(status))
            .collect();
        let names: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
        let _ = writeln!(out, "| Task type | {} | Total |", names.join(" | "));
        let _ = writeln!(out, "|---|{}---:|", "---:|".repeat(statuses.len()));
        let row = |label: String, counts: &std::collections::BTreeMap<TaskStatus, u64>| {
            let cells: Vec<String> = statuses
                .iter()
                .map(|status| counts.get(status).copied().unwrap_or(0).to_string())
                .collect();
            format!(
                "| {label} | {} | {} |\n",
                cells.join(" | "),
                counts.values().sum::<u64>()
            )
        };
        for (task_type, counts) in &report.by_type {
            out.push_str(&row(cell(task_type), counts));
        }
        out.push_str(&row("**All**".to_string(), &report.by_status));
        out.push('\n');
    }

    let _ = writeln!(out, "## Timing (ms)\n");
    let _ = writeln!(
        out,
        "| Measure | p50 | p90 | p99 | Samples |\n|---|---:|---:|---:|---:|"
    );
    timing_row(&mut out, "Queue wait (created to first attempt)", &report.queue_wait);
    timing_row(&mut out, "Run time (per finished attempt)", &report.run_time);
    out.push('\n');

    let _ = writeln!(out, "## Top errors\n");
    if report.top_errors.is_empty() {
        let _ = writeln!(out, "No attempt failed with an error.");
    } else {
        let _ = writeln!(out, "| # | Count | Error |\n|---:|---:|---|");
        for (rank, (error, count)) in report.top_errors.iter().enumerate() {
            let _ = writeln!(out, "| {} | {count} | {} |", rank + 1, cell(error));
        }
        if report.untracked_errors > 0 {
            let _ = writeln!(
                out,
                "\n{} more errors had messages too varied to group.",
                report.untracked_errors
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::model::Timestamp;

    fn report() -> Report {
        let by_status = BTreeMap::from([(TaskStatus::Completed, 3), (TaskStatus::Failed, 1)]);
        Report {
            generated_at: Timestamp(1_500_000_000_000_000),
            window_start: Timestamp(1_499_913_600_000_000),
            since: Duration::from_secs(86_400),
            task_types: Vec::new(),
            truncated: false,
            tasks: 4,
            by_type: BTreeMap::from([
                ("diag.echo".to_string(), BTreeMap::from([(TaskStatus::Completed, 3)])),
                ("diag.fail".to_string(), BTreeMap::from([(TaskStatus::Failed, 1)])),
            ]),
            by_status,
            success_rate: Some(0.75),
            queue_wait: Percentiles {
                samples: 4,
                p50: Some(1.5),
                p90: Some(2.0),
                p99: Some(2.0),
            },
            run_time: Percentiles::default(),
            top_errors: vec![("bad | input\nline two".to_string(), 2)],
            untracked_errors: 0,
        }
    }

    #[test]
    fn a_cell_escapes_pipes_and_markdown_and_flattens_line_breaks() {
        assert_eq!(cell("a | b"), "a \\| b");
        assert_eq!(cell("one\r\ntwo\nthree"), "one two three");
        assert_eq!(cell("*bold* _it_ <b>"), "\\*bold\\* \\_it\\_ \\<b\\>");
        assert_eq!(cell("diag.echo"), "diag.echo");
    }

    #[test]
    fn the_report_has_a_row_per_type_a_total_row_and_escaped_errors() {
        let text = render(&report());
        assert!(text.contains("| Task type | COMPLETED | FAILED | Total |"), "{text}");
        assert!(text.contains("| diag.echo | 3 | 0 | 3 |"), "{text}");
        assert!(text.contains("| **All** | 3 | 1 | 4 |"), "{text}");
        assert!(
            text.contains("| Success rate (completed / finished) | 75.0% |"),
            "{text}"
        );
        assert!(
            text.contains("| Queue wait (created to first attempt) | 1.5 | 2.0 | 2.0 | 4 |"),
            "{text}"
        );
        assert!(
            text.contains("| Run time (per finished attempt) | n/a | n/a | n/a | 0 |"),
            "{text}"
        );
        assert!(text.contains("| 1 | 2 | bad \\| input line two |"), "{text}");
    }

    #[test]
    fn an_empty_report_says_so_instead_of_printing_empty_tables() {
        let mut empty = report();
        empty.by_type.clear();
        empty.by_status.clear();
        empty.top_errors.clear();
        empty.success_rate = None;
        let text = render(&empty);
        assert!(text.contains("No tasks were created in this window."), "{text}");
        assert!(text.contains("No attempt failed with an error."), "{text}");
        assert!(text.contains("| Success rate (completed / finished) | n/a |"), "{text}");
    }
}
