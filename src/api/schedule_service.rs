//! `taskd.v1.ScheduleService` over the engine's `Schedules`, with the one
//! mapping between its messages and the schedule model.

use std::time::Duration;

use tonic::{Request, Response, Status};

use crate::api::convert::{
    duration_from_proto, duration_to_proto, priority_from_proto, priority_to_proto, task_to_proto,
    timestamp_from_proto, timestamp_to_proto,
};
use crate::api::json;
use crate::api::proto;
use crate::api::proto::schedule_service_server::ScheduleService;
use crate::api::proto::schedule_spec::Kind as ProtoKind;
use crate::api::status::to_status;
use crate::engine::{EngineError, EngineResult, ScheduleView, Schedules};
use crate::model::TaskPriority;
use crate::model::schedule::{CatchUp, Overlap, Schedule, ScheduleSpec, ScheduleState, SpecKind, TaskTemplate};

/// The gRPC face of the engine's schedules.
pub struct ScheduleServiceHandler {
    schedules: Schedules,
}

impl ScheduleServiceHandler {
    pub fn new(schedules: Schedules) -> Self {
        ScheduleServiceHandler { schedules }
    }
}

fn required<T>(value: Option<T>, field: &str) -> EngineResult<T> {
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
            .map(|fire| proto::ScheduleFire {
                nominal_time: Some(timestamp_to_proto(fire.nominal)),
                task_id: fire.task_id.to_string(),
            })
            .collect(),
        fires: schedule.state.fires,
        skipped_overlap: schedule.state.skipped_overlap,
        skipped_late: schedule.state.skipped_late,
        created_at: Some(timestamp_to_proto(schedule.state.created_at)),
        updated_at: Some(timestamp_to_proto(schedule.state.updated_at)),
    }
}

fn within(field: &str, error: EngineError) -> EngineError {
    match error {
        EngineError::InvalidArgument { field: inner, message } => EngineError::InvalidArgument {
            field: format!("{field}.{inner}"),
            message,
        },
        other => other,
    }
}

#[tonic::async_trait]
impl ScheduleService for ScheduleServiceHandler {
    async fn create_schedule(
        &self,
        request: Request<proto::CreateScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let written = required(request.into_inner().schedule, "schedule").map_err(to_status)?;
        let draft = definition(written).map_err(|error| to_status(within("schedule", error)))?;
        let created = self
            .schedules
            .create(draft)
            .await
            .map_err(|error| to_status(within("schedule", error)))?;
        Ok(Response::new(schedule_to_proto(&created)))
    }

    async fn get_schedule(
        &self,
        request: Request<proto::GetScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let view = self.schedules.get(&request.get_ref().name).await.map_err(to_status)?;
        Ok(Response::new(schedule_to_proto(&view)))
    }

    async fn list_schedules(
        &self,
        _request: Request<proto::ListSchedulesRequest>,
    ) -> Result<Response<proto::ListSchedulesResponse>, Status> {
        let views = self.schedules.list().await.map_err(to_status)?;
        Ok(Response::new(proto::ListSchedulesResponse {
            schedules: views.iter().map(schedule_to_proto).collect(),
        }))
    }

    async fn update_schedule(
        &self,
        request: Request<proto::UpdateScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let written = required(request.into_inner().schedule, "schedule").map_err(to_status)?;
        let draft = definition(written).map_err(|error| to_status(within("schedule", error)))?;
        let updated = self
            .schedules
            .update(draft)
            .await
            .map_err(|error| to_status(within("schedule", error)))?;
        Ok(Response::new(schedule_to_proto(&updated)))
    }

    async fn pause_schedule(
        &self,
        request: Request<proto::PauseScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let request = request.into_inner();
        let view = self
            .schedules
            .pause(&request.name, request.note)
            .await
            .map_err(to_status)?;
        Ok(Response::new(schedule_to_proto(&view)))
    }

    async fn resume_schedule(
        &self,
        request: Request<proto::ResumeScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let view = self
            .schedules
            .resume(&request.get_ref().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(schedule_to_proto(&view)))
    }

    async fn trigger_schedule(
        &self,
        request: Request<proto::TriggerScheduleRequest>,
    ) -> Result<Response<proto::Task>, Status> {
        let task = self
            .schedules
            .trigger(&request.get_ref().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(task_to_proto(&task)))
    }

    async fn backfill_schedule(
        &self,
        request: Request<proto::BackfillScheduleRequest>,
    ) -> Result<Response<proto::BackfillScheduleResponse>, Status> {
        let request = request.into_inner();
        let from = timestamp_from_proto(
            "start_time",
            &required(request.start_time, "start_time").map_err(to_status)?,
        )
        .map_err(to_status)?;
        let to = timestamp_from_proto("end_time", &required(request.end_time, "end_time").map_err(to_status)?)
            .map_err(to_status)?;
        let tasks = self
            .schedules
            .backfill(&request.name, from, to)
            .await
            .map_err(to_status)?;
        Ok(Response::new(proto::BackfillScheduleResponse {
            tasks: tasks.iter().map(task_to_proto).collect(),
        }))
    }

    async fn delete_schedule(
        &self,
        request: Request<proto::DeleteScheduleRequest>,
    ) -> Result<Response<proto::DeleteScheduleResponse>, Status> {
        self.schedules
            .delete(&request.get_ref().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(proto::DeleteScheduleResponse {}))
    }
}
