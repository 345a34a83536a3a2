//! The schedule calls, whatever the transport: gRPC's `ScheduleService` and
//! the REST bridge's `/api/v1/schedules` both come here, so they decode,
//! check and answer alike.
//!
//! A schedule submits tasks in its own name later on, so a caller may only
//! write or run a schedule whose tasks it could submit itself: one of an
//! admin task type (`system_maintenance`, the retention schedule) needs
//! scope admin, before and after an update.

use std::sync::Arc;

use crate::api::access;
use crate::api::convert::{task_to_proto, timestamp_from_proto};
use crate::api::proto;
use crate::api::schedule_convert::{definition, required, schedule_to_proto};
use crate::auth::Principal;
use crate::engine::{EngineError, EngineResult, Schedules};

/// Who asks; `None` when the server has no tokens.
pub type Caller<'a> = Option<&'a Arc<Principal>>;

/// The schedule calls over the engine's [`Schedules`].
#[derive(Clone)]
pub struct ScheduleCalls {
    schedules: Schedules,
}

impl ScheduleCalls {
    pub fn new(schedules: Schedules) -> Self {
        ScheduleCalls { schedules }
    }

    pub async fn create(
        &self,
        caller: Caller<'_>,
        written: proto::ScheduleDefinition,
    ) -> EngineResult<proto::Schedule> {
        let draft = definition(written)?;
        may_submit(caller, &draft.template.task_type)?;
        Ok(schedule_to_proto(&self.schedules.create(draft).await?))
    }

    pub async fn get(&self, name: &str) -> EngineResult<proto::Schedule> {
        Ok(schedule_to_proto(&self.schedules.get(name).await?))
    }

    pub async fn list(&self) -> EngineResult<proto::ListSchedulesResponse> {
        let views = self.schedules.list().await?;
        Ok(proto::ListSchedulesResponse {
            schedules: views.iter().map(schedule_to_proto).collect(),
        })
    }

    pub async fn update(
        &self,
        caller: Caller<'_>,
        written: proto::ScheduleDefinition,
    ) -> EngineResult<proto::Schedule> {
        let draft = definition(written)?;
        may_submit(caller, &draft.template.task_type)?;
        self.may_run(caller, &draft.name).await?;
        Ok(schedule_to_proto(&self.schedules.update(draft).await?))
    }

    pub async fn pause(&self, caller: Caller<'_>, name: &str, note: String) -> EngineResult<proto::Schedule> {
        self.may_run(caller, name).await?;
        Ok(schedule_to_proto(&self.schedules.pause(name, note).await?))
    }

    pub async fn resume(&self, caller: Caller<'_>, name: &str) -> EngineResult<proto::Schedule> {
        self.may_run(caller, name).await?;
        Ok(schedule_to_proto(&self.schedules.resume(name).await?))
    }

    pub async fn trigger(&self, caller: Caller<'_>, name: &str) -> EngineResult<proto::Task> {
        self.may_run(caller, name).await?;
        Ok(task_to_proto(&self.schedules.trigger(name).await?))
    }

    /// Fires at every time of the spec from `start_time` to `end_time`.
    pub async fn backfill(
        &self,
        caller: Caller<'_>,
        name: &str,
        start_time: Option<pbjson_types::Timestamp>,
        end_time: Option<pbjson_types::Timestamp>,
    ) -> EngineResult<proto::BackfillScheduleResponse> {
        let from = timestamp_from_proto("start_time", &required(start_time, "start_time")?)?;
        let to = timestamp_from_proto("end_time", &required(end_time, "end_time")?)?;
        self.may_run(caller, name).await?;
        let tasks = self.schedules.backfill(name, from, to).await?;
        Ok(proto::BackfillScheduleResponse {
            tasks: tasks.iter().map(task_to_proto).collect(),
        })
    }

    pub async fn delete(&self, caller: Caller<'_>, name: &str) -> EngineResult<()> {
        self.may_run(caller, name).await?;
        self.schedules.delete(name).await
    }

    /// Whether the caller may act on the schedule `name` as it stands.
    async fn may_run(&self, caller: Caller<'_>, name: &str) -> EngineResult<()> {
        if caller.is_none_or(|principal| principal.allows(crate::auth::Scope::Admin)) {
            return Ok(());
        }
        let view = self.schedules.get(name).await?;
        may_submit(caller, &view.schedule.template.task_type)
    }
}

/// Whether the caller may submit tasks of `task_type` itself.
fn may_submit(caller: Caller<'_>, task_type: &str) -> EngineResult<()> {
    access::check_task_types(caller, [task_type]).map_err(|message| EngineError::PermissionDenied {
        field: "template.task_type".to_string(),
        message,
    })
}
