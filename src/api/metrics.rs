//! `/metrics` in the OpenMetrics text format, written by `prometheus-client`:
//! task counts, outcome counters, latency histograms, the concurrency
//! limit, resource gauges and active alerts.
//!
//! The engine counts on its own (from the store's durable transitions);
//! each scrape takes a snapshot of it and encodes the snapshot through a
//! `Collector`, so the numbers in one scrape are consistent with each other
//! and nothing is counted twice.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::engine::metrics::{EngineMetrics, Histogram, LATENCY_BUCKETS, OutcomeCounters};
use crate::engine::{Admin, EngineStats};
use crate::model::{TaskPriority, TaskStatus};
use crate::monitor::{Alert, LoadReport, Resource, ResourceMonitor};

/// The content type of the OpenMetrics text format, which Prometheus asks
/// for and reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one scrape reports, taken at once.
struct Snapshot {
    stats: EngineStats,
    metrics: EngineMetrics,
    load: LoadReport,
    active_alerts: Vec<Alert>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Snapshot {
    fn gauge<'a>(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Labels<'a>, f64)>,
    ) -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, value) in series {
            if labels.is_empty() {
                family.encode_gauge(&value)?;
            } else {
                family.encode_family(&labels)?.encode_gauge(&value)?;
            }
        }
        Ok(())
    }

    fn histograms<'a>(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        by_type: impl IntoIterator<Item = (&'a String, &'a Histogram)>,
    ) -> fmt::Result {
        Self::histograms_by(encoder, name, help, "task_type", by_type)
    }

    fn histograms_by<'a>(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        label: &'static str,
        by_type: impl IntoIterator<Item = (&'a String, &'a Histogram)>,
    ) -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (task_type, histogram) in by_type {
            // The engine keeps cumulative counts; the encoder wants each
            // bucket's own, and accumulates them again as it writes.
            let mut buckets = Vec::with_capacity(LATENCY_BUCKETS.len() + 1);
            let mut below = 0;
            for (bound, cumulative) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                buckets.push((*bound, cumulative - below));
                below = cumulative;
            }
            buckets.push((f64::MAX, histogram.count - below));
            let labels: Labels<'_> = vec![(label, task_type.as_str())];
            family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                histogram.sum_seconds,
                histogram.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let stats = &self.stats;
        Self::gauge(
            &mut encoder,
            "taskd_tasks",
            "Stored tasks by type and status.",
            stats.by_type.iter().flat_map(|by_type| {
                TaskStatus::ALL.into_iter().map(move |status| {
                    (
                        vec![("task_type", by_type.task_type.as_str()), ("status", status.as_str())],
                        by_type.counts[status.index()] as f64,
                    )
                })
            }),
        )?;

        type Read = fn(&OutcomeCounters) -> u64;
        // OpenMetrics names a counter's family without `_total` and its
        // samples with it: these read taskd_tasks_submitted_total{...}.
        let counters: [(&str, &str, Read); 5] = [
            ("taskd_tasks_submitted", "Tasks accepted.", |c| c.submitted),
            ("taskd_tasks_completed", "Tasks that completed.", |c| c.completed),
            (
                "taskd_tasks_failed",
                "Tasks that failed after their last attempt.",
                |c| c.failed,
            ),
            (
                "taskd_tasks_cancelled",
                "Tasks cancelled, by request or by a dependency.",
                |c| c.cancelled,
            ),
            ("taskd_task_retries", "Retries scheduled after failed attempts.", |c| {
                c.retried
            }),
        ];
        for (name, help, read) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (task_type, by_priority) in &self.metrics.outcomes {
                for (priority, outcome) in TaskPriority::ALL.iter().zip(by_priority) {
                    if *outcome == OutcomeCounters::default() {
                        continue;
                    }
                    let labels: Labels<'_> = vec![("task_type", task_type.as_str()), ("priority", priority.as_str())];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&read(outcome), None)?;
                }
            }
        }

        Self::histograms(
            &mut encoder,
            "taskd_queue_wait_seconds",
            "Time from runnable to started, per attempt.",
            &self.metrics.queue_wait,
        )?;
        Self::histograms(
            &mut encoder,
            "taskd_run_time_seconds",
            "Duration of finished attempts.",
            &self.metrics.run_time,
        )?;

        let mut fires = encoder.encode_descriptor(
            "taskd_schedule_fires",
            "Fires the scheduler ran, per schedule.",
            None,
            MetricType::Counter,
        )?;
        for (schedule, count) in &self.metrics.schedule_fires {
            let labels: Labels<'_> = vec![("schedule", schedule.as_str())];
            fires
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(count, None)?;
        }
        let mut skips = encoder.encode_descriptor(
            "taskd_schedule_skips",
            "Fires skipped, per schedule and reason (overlap: the last fire's task had not ended; late: \
             older than the catch-up window).",
            None,
            MetricType::Counter,
        )?;
        for ((schedule, reason), count) in &self.metrics.schedule_skips {
            let labels: Labels<'_> = vec![("schedule", schedule.as_str()), ("reason", reason)];
            skips
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(count, None)?;
        }
        Self::histograms_by(
            &mut encoder,
            "taskd_schedule_fire_lateness_seconds",
            "How long after its nominal time each fire was submitted.",
            "schedule",
            &self.metrics.fire_lateness,
        )?;

        Self::gauge(
            &mut encoder,
            "taskd_running_tasks",
            "Tasks running now.",
            [(vec![], stats.running as f64)],
        )?;
        Self::gauge(
            &mut encoder,
            "taskd_max_concurrent_tasks",
            "Configured hard limit on running tasks.",
            [(vec![], stats.max_concurrent_tasks as f64)],
        )?;
        Self::gauge(
            &mut encoder,
            "taskd_effective_concurrency_limit",
            "Limit on running tasks in force now (lowered under load).",
            [(vec![], stats.effective_concurrency_limit as f64)],
        )?;
        Self::gauge(
            &mut encoder,
            "taskd_system_load",
            "Smoothed pressure of the most loaded resource, 0 to 1.",
            [(vec![], self.load.load)],
        )?;
        let usage: Vec<(Labels<'_>, f64)> = self
            .load
            .sample
            .iter()
            .flat_map(|sample| {
                Resource::ALL
                    .into_iter()
                    .filter_map(move |resource| Some((vec![("resource", resource.name())], resource.value(sample)?)))
            })
            .collect();
        Self::gauge(
            &mut encoder,
            "taskd_resource_usage_percent",
            "Latest resource sample, percent.",
            usage,
        )?;
        Self::gauge(
            &mut encoder,
            "taskd_alerts_active",
            "Active resource alerts.",
            Resource::ALL.into_iter().map(|resource| {
                let count = self
                    .active_alerts
                    .iter()
                    .filter(|alert| alert.resource == resource)
                    .count();
                (vec![("resource", resource.name())], count as f64)
            }),
        )?;
        Ok(())
    }
}

/// Renders every metric.
pub fn render(admin: &Admin, monitor: &ResourceMonitor, stats: EngineStats) -> String {
    let load = monitor.report(stats.max_concurrent_tasks);
    let (active_alerts, _) = monitor.alerts(0);
    let snapshot = Snapshot {
        metrics: admin.metrics(),
        stats,
        load,
        active_alerts,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail; the encoder's signature allows
    // for other writers.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(%error, "metrics encoding failed");
    }
    out
}
