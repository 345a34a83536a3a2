//! `taskd.v1.ScheduleService`: decode, hand to [`ScheduleCalls`], encode.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::api::convert::within;
use crate::api::proto;
use crate::api::proto::schedule_service_server::ScheduleService;
use crate::api::schedule_calls::ScheduleCalls;
use crate::api::schedule_convert::required;
use crate::api::status::to_status;
use crate::auth::Principal;

/// The gRPC face of the engine's schedules.
pub struct ScheduleServiceHandler {
    calls: ScheduleCalls,
}

impl ScheduleServiceHandler {
    pub fn new(calls: ScheduleCalls) -> Self {
        ScheduleServiceHandler { calls }
    }
}

fn caller<T>(request: &Request<T>) -> Option<Arc<Principal>> {
    request.extensions().get::<Arc<Principal>>().cloned()
}

#[tonic::async_trait]
impl ScheduleService for ScheduleServiceHandler {
    async fn create_schedule(
        &self,
        request: Request<proto::CreateScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let caller = caller(&request);
        let written = required(request.into_inner().schedule, "schedule").map_err(to_status)?;
        let created = self
            .calls
            .create(caller.as_ref(), written)
            .await
            .map_err(|error| to_status(within("schedule", error)))?;
        Ok(Response::new(created))
    }

    async fn get_schedule(
        &self,
        request: Request<proto::GetScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let schedule = self.calls.get(&request.get_ref().name).await.map_err(to_status)?;
        Ok(Response::new(schedule))
    }

    async fn list_schedules(
        &self,
        _request: Request<proto::ListSchedulesRequest>,
    ) -> Result<Response<proto::ListSchedulesResponse>, Status> {
        Ok(Response::new(self.calls.list().await.map_err(to_status)?))
    }

    async fn update_schedule(
        &self,
        request: Request<proto::UpdateScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let caller = caller(&request);
        let written = required(request.into_inner().schedule, "schedule").map_err(to_status)?;
        let updated = self
            .calls
            .update(caller.as_ref(), written)
            .await
            .map_err(|error| to_status(within("schedule", error)))?;
        Ok(Response::new(updated))
    }

    async fn pause_schedule(
        &self,
        request: Request<proto::PauseScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let caller = caller(&request);
        let request = request.into_inner();
        let paused = self
            .calls
            .pause(caller.as_ref(), &request.name, request.note)
            .await
            .map_err(to_status)?;
        Ok(Response::new(paused))
    }

    async fn resume_schedule(
        &self,
        request: Request<proto::ResumeScheduleRequest>,
    ) -> Result<Response<proto::Schedule>, Status> {
        let caller = caller(&request);
        let resumed = self
            .calls
            .resume(caller.as_ref(), &request.get_ref().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(resumed))
    }

    async fn trigger_schedule(
        &self,
        request: Request<proto::TriggerScheduleRequest>,
    ) -> Result<Response<proto::Task>, Status> {
        let caller = caller(&request);
        let task = self
            .calls
            .trigger(caller.as_ref(), &request.get_ref().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(task))
    }

    async fn backfill_schedule(
        &self,
        request: Request<proto::BackfillScheduleRequest>,
    ) -> Result<Response<proto::BackfillScheduleResponse>, Status> {
        let caller = caller(&request);
        let request = request.into_inner();
        let fired = self
            .calls
            .backfill(caller.as_ref(), &request.name, request.start_time, request.end_time)
            .await
            .map_err(to_status)?;
        Ok(Response::new(fired))
    }

    async fn delete_schedule(
        &self,
        request: Request<proto::DeleteScheduleRequest>,
    ) -> Result<Response<proto::DeleteScheduleResponse>, Status> {
        let caller = caller(&request);
        self.calls
            .delete(caller.as_ref(), &request.get_ref().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(proto::DeleteScheduleResponse {}))
    }
}
