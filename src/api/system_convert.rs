//! ResourceMonitor types on the wire: the one place they are converted.

use crate::api::convert::timestamp_to_proto;
use crate::api::proto;
use crate::engine::TaskManager;
use crate::monitor::{Alert, LoadReport, MonitorConfig, Resource, ResourceMonitor, ResourceSample};

pub fn usage_to_proto(sample: &ResourceSample) -> proto::ResourceUsage {
    proto::ResourceUsage {
        time: Some(timestamp_to_proto(sample.time)),
        cpu_percent: sample.cpu_percent,
        memory_percent: sample.memory_percent,
        disk_percent: sample.disk_percent,
        io_wait_percent: sample.io_wait_percent,
    }
}

fn resource_to_proto(resource: Resource) -> proto::alert::Resource {
    match resource {
        Resource::Cpu => proto::alert::Resource::Cpu,
        Resource::Memory => proto::alert::Resource::Memory,
        Resource::Disk => proto::alert::Resource::Disk,
        Resource::IoWait => proto::alert::Resource::IoWait,
    }
}

pub fn alert_to_proto(alert: &Alert) -> proto::Alert {
    proto::Alert {
        id: alert.id,
        resource: resource_to_proto(alert.resource) as i32,
        value: alert.value,
        peak: alert.peak,
        threshold: alert.threshold,
        started_at: Some(timestamp_to_proto(alert.started_at)),
        ended_at: alert.ended_at.map(timestamp_to_proto),
        active: alert.is_active(),
        message: alert.message(),
    }
}

/// The load as the API reports it; `effective` and `reason` come from the
/// scheduler (the limit actually in force), the rest from the monitor.
pub fn load_to_proto(
    report: &LoadReport,
    config: &MonitorConfig,
    max_concurrent_tasks: usize,
    effective: usize,
    reason: &str,
    running: usize,
) -> proto::SystemLoad {
    let thresholds = &config.thresholds;
    proto::SystemLoad {
        usage: report.sample.as_ref().map(usage_to_proto),
        load: report.load,
        pressure: report.pressure,
        most_loaded_resource: report
            .worst_resource
            .map(|resource| resource.name().to_string())
            .unwrap_or_default(),
        max_concurrent_tasks: max_concurrent_tasks as u32,
        recommended_concurrency: report.recommended as u32,
        effective_concurrency_limit: effective as u32,
        concurrency_limit_reason: reason.to_string(),
        throttled: effective < max_concurrent_tasks,
        running_tasks: running as u32,
        thresholds: Some(proto::Thresholds {
            cpu_percent: thresholds.cpu_percent,
            memory_percent: thresholds.memory_percent,
            disk_percent: thresholds.disk_percent,
            io_wait_percent: thresholds.io_wait_percent,
        }),
        monitoring_enabled: config.enabled,
    }
}

/// The load as both transports report it: the monitor's view plus the limit
/// the scheduler actually has in force.
pub fn current_load(monitor: &ResourceMonitor, manager: &TaskManager) -> proto::SystemLoad {
    let scheduling = manager.scheduling();
    let report = monitor.report(scheduling.max_concurrent_tasks);
    load_to_proto(
        &report,
        monitor.config(),
        scheduling.max_concurrent_tasks,
        scheduling.effective_concurrency_limit,
        &scheduling.concurrency_limit_reason,
        scheduling.running,
    )
}
