//! The one mapping between the schedule messages and the schedule model,
//! for every transport.

use std::time::Duration;

use crate::api::convert::{
    duration_from_proto, duration_to_proto, priority_from_proto, priority_to_proto, retry_policy, status_to_proto,
    timestamp_from_proto, timestamp_to_proto,
};
use crate::api::json;
use crate::api::proto;
use crate::api::proto::schedule_spec::Kind as ProtoKind;
use crate::engine::{EngineError, EngineResult, ScheduleView};
use crate::model::schedule::{CatchUp, Overlap, Schedule, ScheduleSpec, ScheduleState, SpecKind, TaskTemplate};
use crate::model::{PartialRetryPolicy, TaskPriority};

pub fn required<T>(value: Option<T>, field: &str) -> EngineResult<T> {
    value.ok_or_else(|| EngineError::invalid(field, "is required"))
}

fn duration_or(value: Option<&pbjson_types::Duration>, field: &str, default: Duration) -> EngineResult<Duration> {
    value.map_or(Ok(default), |value| duration_from_proto(field, value))
}

/// A schedule as a client wrote it; a refusal names the field.
pub fn definition(definition: proto::ScheduleDefinition) -> EngineResult<Schedule> {
    let spec = required(definition.spec, "spec")?;
    let kind = match required(spec.kind, "spec.kind (cron or interval)")? {
        ProtoKind::Cron(cron) => SpecKind::Cron {
            expression: cron.expression,
            time_zone: cron.time_zone,
        },
        ProtoKind::Interval(interval) => SpecKind::Interval {
            every: duration_from_proto("spec.interval.every", &required(interval.every, "spec.interval.every")?)?,
            offset: duration_or(interval.offset.as_ref(), "spec.interval.offset", Duration::ZERO)?,
        },
    };
    let template = required(definition.template, "template")?;
    let params = match template.params {
        Some(params) => json::struct_to_json(&params).map_err(|error| {
            EngineError::invalid(
                format!("template.params{}", error.path),
                "NaN and infinite numbers have no JSON form",
            )
        })?,
        None => Default::default(),
    };
    let priority = priority_from_proto("template.priority", template.priority)?.unwrap_or(TaskPriority::Normal);
    let catch_up = definition.catch_up.unwrap_or_default();
    Ok(Schedule {
        name: definition.name,
        spec: ScheduleSpec {
            kind,
            jitter: duration_or(spec.jitter.as_ref(), "spec.jitter", Duration::ZERO)?,
        },
        template: TaskTemplate {
            task_type: template.task_type,
            params,
            priority: priority.code(),
            labels: template.labels.into_iter().collect(),
            max_retries: template.max_retries,
            timeout: template
                .timeout
                .as_ref()
                .map(|timeout| duration_from_proto("template.timeout", timeout))
                .transpose()?,
            retry_policy: template
                .retry_policy
                .as_ref()
                .map(|policy| retry_policy(policy, "template.retry_policy"))
                .transpose()?,
        },
        overlap: match proto::OverlapPolicy::try_from(definition.overlap) {
            Ok(proto::OverlapPolicy::Unspecified | proto::OverlapPolicy::Skip) => Overlap::Skip,
            Ok(proto::OverlapPolicy::BufferOne) => Overlap::BufferOne,
            Ok(proto::OverlapPolicy::AllowAll) => Overlap::AllowAll,
            Ok(proto::OverlapPolicy::CancelRunning) => Overlap::CancelRunning,
            Err(_) => {
                return Err(EngineError::invalid(
                    "overlap",
                    format!("unknown policy {}", definition.overlap),
                ));
            }
        },
        catch_up: CatchUp {
            window: duration_or(catch_up.window.as_ref(), "catch_up.window", CatchUp::default().window)?,
            latest_only: catch_up.latest_only,
        },
        start_at: definition
            .start_time
            .as_ref()
            .map(|at| timestamp_from_proto("start_time", at))
            .transpose()?,
        end_at: definition
            .end_time
            .as_ref()
            .map(|at| timestamp_from_proto("end_time", at))
            .transpose()?,
        max_fires: definition.max_fires,
        paused: None,
        state: ScheduleState::default(),
    })
}

/// A schedule on the wire.
pub fn schedule_to_proto(view: &ScheduleView) -> proto::Schedule {
    let schedule = &view.schedule;
    let kind = match &schedule.spec.kind {
        SpecKind::Cron { expression, time_zone } => ProtoKind::Cron(proto::CronSpec {
            expression: expression.clone(),
            time_zone: time_zone.clone(),
        }),
        SpecKind::Interval { every, offset } => ProtoKind::Interval(proto::IntervalSpec {
            every: Some(duration_to_proto(*every)),
            offset: Some(duration_to_proto(*offset)),
        }),
    };
    let template = &schedule.template;
    proto::Schedule {
        definition: Some(proto::ScheduleDefinition {
            name: schedule.name.clone(),
            spec: Some(proto::ScheduleSpec {
                kind: Some(kind),
                jitter: Some(duration_to_proto(schedule.spec.jitter)),
            }),
            template: Some(proto::TaskTemplate {
                task_type: template.task_type.clone(),
                params: Some(json::json_to_struct(&template.params)),
                priority: priority_to_proto(TaskPriority::from_code(template.priority).unwrap_or_default()) as i32,
                labels: template.labels.clone().into_iter().collect(),
                max_retries: template.max_retries,
                timeout: template.timeout.map(duration_to_proto),
                retry_policy: template.retry_policy.as_ref().map(retry_policy_to_proto),
            }),
            overlap: match schedule.overlap {
                Overlap::Skip => proto::OverlapPolicy::Skip,
                Overlap::BufferOne => proto::OverlapPolicy::BufferOne,
                Overlap::AllowAll => proto::OverlapPolicy::AllowAll,
                Overlap::CancelRunning => proto::OverlapPolicy::CancelRunning,
            } as i32,
            catch_up: Some(proto::CatchUpPolicy {
                window: Some(duration_to_proto(schedule.catch_up.window)),
                latest_only: schedule.catch_up.latest_only,
            }),
            start_time: schedule.start_at.map(timestamp_to_proto),
            end_time: schedule.end_at.map(timestamp_to_proto),
            max_fires: schedule.max_fires,
        }),
        paused: schedule.paused.is_some(),
        pause_note: schedule.paused.clone().unwrap_or_default(),
        next_fire_times: view.upcoming.iter().copied().map(timestamp_to_proto).collect(),
        recent_fires: schedule
            .state
            .recent
            .iter()
            .enumerate()
            .map(|(index, fire)| proto::ScheduleFire {
                nominal_time: Some(timestamp_to_proto(fire.nominal)),
                task_id: fire.task_id.to_string(),
                status: view
                    .outcomes
                    .get(index)
                    .copied()
                    .flatten()
                    .map_or(proto::TaskStatus::Unspecified, status_to_proto) as i32,
            })
            .collect(),
        fires: schedule.state.fires,
        skipped_overlap: schedule.state.skipped_overlap,
        skipped_late: schedule.state.skipped_late,
        created_at: Some(timestamp_to_proto(schedule.state.created_at)),
        updated_at: Some(timestamp_to_proto(schedule.state.updated_at)),
    }
}

/// A template's retry policy as written: what is unset stays unset.
fn retry_policy_to_proto(policy: &PartialRetryPolicy) -> proto::RetryPolicy {
    proto::RetryPolicy {
        initial_backoff: policy.initial_backoff.map(duration_to_proto),
        multiplier: policy.multiplier.unwrap_or_default(),
        max_backoff: policy.max_backoff.map(duration_to_proto),
        jitter: policy.jitter.unwrap_or_default(),
    }
}
