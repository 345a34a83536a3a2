//! Prometheus text exposition (format 0.0.4) at `/metrics`: task counts,
//! outcome counters, latency histograms, the concurrency limit, resource
//! gauges and active alerts.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::api::rest::ApiError;
use crate::api::rest::RestState;
use crate::engine::EngineStats;
use crate::engine::metrics::{Histogram, LATENCY_BUCKETS, OutcomeCounters};
use crate::model::{TaskPriority, TaskStatus};
use crate::monitor::Resource;

/// Escapes a label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, task_type: &str, histogram: &Histogram) {
    let task_type = label(task_type);
    for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
        let _ = writeln!(out, "{name}_bucket{{task_type=\"{task_type}\",le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{task_type=\"{task_type}\",le=\"+Inf\"}} {}",
        histogram.count
    );
    let _ = writeln!(out, "{name}_sum{{task_type=\"{task_type}\"}} {}", histogram.sum_seconds);
    let _ = writeln!(out, "{name}_count{{task_type=\"{task_type}\"}} {}", histogram.count);
}

/// Renders every metric.
pub fn render(state: &RestState, stats: &EngineStats) -> String {
    let metrics = state.manager.metrics();
    let mut out = String::with_capacity(8 * 1024);

    header(&mut out, "taskd_tasks", "gauge", "Stored tasks by type and status.");
    for by_type in &stats.by_type {
        for status in TaskStatus::ALL {
            let _ = writeln!(
                out,
                "taskd_tasks{{task_type=\"{}\",status=\"{}\"}} {}",
                label(&by_type.task_type),
                status.as_str(),
                by_type.counts[status.index()]
            );
        }
    }

    type Read = fn(&OutcomeCounters) -> u64;
    let counters: [(&str, &str, Read); 5] = [
        ("taskd_tasks_submitted_total", "Tasks accepted.", |c| c.submitted),
        ("taskd_tasks_completed_total", "Tasks that completed.", |c| c.completed),
        (
            "taskd_tasks_failed_total",
            "Tasks that failed after their last attempt.",
            |c| c.failed,
        ),
        (
            "taskd_tasks_cancelled_total",
            "Tasks cancelled, by request or by a dependency.",
            |c| c.cancelled,
        ),
        (
            "taskd_task_retries_total",
            "Retries scheduled after failed attempts.",
            |c| c.retried,
        ),
    ];
    for (name, help, read) in counters {
        header(&mut out, name, "counter", help);
        for (task_type, by_priority) in &metrics.outcomes {
            for (priority, outcome) in TaskPriority::ALL.iter().zip(by_priority) {
                if *outcome == OutcomeCounters::default() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{name}{{task_type=\"{}\",priority=\"{}\"}} {}",
                    label(task_type),
                    priority.as_str(),
                    read(outcome)
                );
            }
        }
    }

    header(
        &mut out,
        "taskd_queue_wait_seconds",
        "histogram",
        "Time from runnable to started, per attempt.",
    );
    for (task_type, wait) in &metrics.queue_wait {
        histogram(&mut out, "taskd_queue_wait_seconds", task_type, wait);
    }
    header(
        &mut out,
        "taskd_run_time_seconds",
        "histogram",
        "Duration of finished attempts.",
    );
    for (task_type, run) in &metrics.run_time {
        histogram(&mut out, "taskd_run_time_seconds", task_type, run);
    }

    header(&mut out, "taskd_running_tasks", "gauge", "Tasks running now.");
    let _ = writeln!(out, "taskd_running_tasks {}", stats.running);
    header(
        &mut out,
        "taskd_max_concurrent_tasks",
        "gauge",
        "Configured hard limit on running tasks.",
    );
    let _ = writeln!(out, "taskd_max_concurrent_tasks {}", stats.max_concurrent_tasks);
    header(
        &mut out,
        "taskd_effective_concurrency_limit",
        "gauge",
        "Limit on running tasks in force now (lowered under load).",
    );
    let _ = writeln!(
        out,
        "taskd_effective_concurrency_limit {}",
        stats.effective_concurrency_limit
    );

    let report = state.monitor.report(stats.max_concurrent_tasks);
    header(
        &mut out,
        "taskd_system_load",
        "gauge",
        "Smoothed pressure of the most loaded resource, 0 to 1.",
    );
    let _ = writeln!(out, "taskd_system_load {}", report.load);
    header(
        &mut out,
        "taskd_resource_usage_percent",
        "gauge",
        "Latest resource sample, percent.",
    );
    if let Some(sample) = report.sample {
        for resource in Resource::ALL {
            if let Some(value) = resource.value(&sample) {
                let _ = writeln!(out, "taskd_resource_usage_percent{{resource=\"{resource}\"}} {value}");
            }
        }
    }
    let (active, _) = state.monitor.alerts(0);
    header(&mut out, "taskd_alerts_active", "gauge", "Active resource alerts.");
    for resource in Resource::ALL {
        let count = active.iter().filter(|alert| alert.resource == resource).count();
        let _ = writeln!(out, "taskd_alerts_active{{resource=\"{resource}\"}} {count}");
    }
    out
}

pub async fn metrics(State(state): State<RestState>) -> Result<impl IntoResponse, ApiError> {
    let stats = state.manager.stats().await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        render(&state, &stats),
    ))
}
