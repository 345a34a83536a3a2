//! `taskd.v1.TaskService` over the engine: decode, call, encode. No logic
//! of its own beyond that.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use std::sync::Arc;

use crate::api::access;
use crate::api::convert;
use crate::api::proto;
use crate::api::proto::task_service_server::TaskService;
use crate::api::status::to_status;
use crate::api::worker_convert;
use crate::auth::Principal;
use crate::engine::{Admin, TaskManager};
use crate::model::TaskEvent;
use crate::net::WatchSlot;

/// The gRPC face of a [`TaskManager`].
pub struct TaskServiceHandler {
    tasks: TaskManager,
    admin: Admin,
    /// Ends every open watch stream when the server stops, so that a
    /// graceful shutdown is not held open by watchers.
    stopping: CancellationToken,
}

impl TaskServiceHandler {
    pub fn new(tasks: TaskManager, admin: Admin, stopping: CancellationToken) -> Self {
        TaskServiceHandler { tasks, admin, stopping }
    }

    fn until_stopping(
        &self,
        events: impl Stream<Item = TaskEvent> + Send + 'static,
        slot: Option<WatchSlot>,
    ) -> EventStream {
        let stopping = self.stopping.clone().cancelled_owned();
        Box::pin(access::holding_slot(
            events
                .map(|event| Ok(convert::event_to_proto(&event)))
                .take_until(stopping),
            slot,
        ))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::TaskEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl TaskService for TaskServiceHandler {
    async fn submit_task(&self, request: Request<proto::SubmitTaskRequest>) -> Result<Response<proto::Task>, Status> {
        let principal = request.extensions().get::<Arc<Principal>>().cloned();
        let request = request.into_inner();
        access::check_task_types(principal.as_ref(), [request.task_type.as_str()])
            .map_err(Status::permission_denied)?;
        let new_task = convert::new_task(request, "").map_err(to_status)?;
        let task = self.tasks.submit(new_task).await.map_err(to_status)?;
        Ok(Response::new(convert::task_to_proto(&task)))
    }

    async fn submit_tasks(
        &self,
        request: Request<proto::SubmitTasksRequest>,
    ) -> Result<Response<proto::SubmitTasksResponse>, Status> {
        let principal = request.extensions().get::<Arc<Principal>>().cloned();
        let request = request.into_inner();
        access::check_task_types(
            principal.as_ref(),
            request.tasks.iter().map(|task| task.task_type.as_str()),
        )
        .map_err(Status::permission_denied)?;
        let new_tasks = convert::new_tasks(request.tasks).map_err(to_status)?;
        let tasks = self.tasks.submit_batch(new_tasks).await.map_err(to_status)?;
        Ok(Response::new(proto::SubmitTasksResponse {
            tasks: tasks.iter().map(convert::task_to_proto).collect(),
        }))
    }

    async fn run_task(&self, request: Request<proto::RunTaskRequest>) -> Result<Response<proto::Task>, Status> {
        let principal = request.extensions().get::<Arc<Principal>>().cloned();
        // Waiting, the call holds a watch place of its connection.
        let _slot = access::open_watch(request.extensions().get()).map_err(Status::resource_exhausted)?;
        let request = request.into_inner();
        if let Some(task) = &request.task {
            access::check_task_types(principal.as_ref(), [task.task_type.as_str()])
                .map_err(Status::permission_denied)?;
        }
        let (new_task, wait) = convert::run_request(request).map_err(to_status)?;
        let task = self
            .tasks
            .run(new_task, wait)
            .await
            .map_err(|error| to_status(convert::within("task", error)))?;
        Ok(Response::new(convert::task_to_proto(&task)))
    }

    async fn get_task(&self, request: Request<proto::GetTaskRequest>) -> Result<Response<proto::Task>, Status> {
        let id = convert::task_id("task_id", &request.get_ref().task_id).map_err(to_status)?;
        let task = self.tasks.get(id).await.map_err(to_status)?;
        Ok(Response::new(convert::task_to_proto(&task)))
    }

    async fn list_tasks(
        &self,
        request: Request<proto::ListTasksRequest>,
    ) -> Result<Response<proto::ListTasksResponse>, Status> {
        let request = request.into_inner();
        let filter = convert::list_filter(&request).map_err(to_status)?;
        let page_size = convert::page_size(request.page_size).map_err(to_status)?;
        let before = convert::decode_page_token(&request.page_token).map_err(to_status)?;
        let page = self.tasks.list(filter, page_size, before).await.map_err(to_status)?;
        Ok(Response::new(proto::ListTasksResponse {
            tasks: page.tasks.iter().map(convert::task_to_proto).collect(),
            next_page_token: page.next_before.map(convert::encode_page_token).unwrap_or_default(),
        }))
    }

    async fn cancel_task(&self, request: Request<proto::CancelTaskRequest>) -> Result<Response<proto::Task>, Status> {
        let request = request.into_inner();
        let id = convert::task_id("task_id", &request.task_id).map_err(to_status)?;
        let task = self.tasks.cancel(id, request.reason).await.map_err(to_status)?;
        Ok(Response::new(convert::task_to_proto(&task)))
    }

    async fn get_task_stats(
        &self,
        _request: Request<proto::GetTaskStatsRequest>,
    ) -> Result<Response<proto::TaskStats>, Status> {
        let stats = self.tasks.stats().await.map_err(to_status)?;
        Ok(Response::new(convert::stats_to_proto(&stats)))
    }

    async fn list_task_types(
        &self,
        _request: Request<proto::ListTaskTypesRequest>,
    ) -> Result<Response<proto::ListTaskTypesResponse>, Status> {
        Ok(Response::new(worker_convert::task_types_to_proto(
            &self.tasks.task_types(),
        )))
    }

    async fn delete_task_type(
        &self,
        request: Request<proto::DeleteTaskTypeRequest>,
    ) -> Result<Response<proto::DeleteTaskTypeResponse>, Status> {
        self.admin
            .delete_task_type(&request.get_ref().task_type)
            .await
            .map_err(to_status)?;
        Ok(Response::new(proto::DeleteTaskTypeResponse {}))
    }

    type WatchTaskStream = EventStream;

    async fn watch_task(&self, request: Request<proto::WatchTaskRequest>) -> Result<Response<EventStream>, Status> {
        let id = convert::task_id("task_id", &request.get_ref().task_id).map_err(to_status)?;
        let slot = access::open_watch(request.extensions().get()).map_err(Status::resource_exhausted)?;
        let events = self.tasks.watch_task(id).await.map_err(to_status)?;
        Ok(Response::new(self.until_stopping(events, slot)))
    }

    type WatchTasksStream = EventStream;

    async fn watch_tasks(&self, request: Request<proto::WatchTasksRequest>) -> Result<Response<EventStream>, Status> {
        let slot = access::open_watch(request.extensions().get()).map_err(Status::resource_exhausted)?;
        let request = request.into_inner();
        let filter = convert::watch_filter(&request).map_err(to_status)?;
        Ok(Response::new(self.until_stopping(self.tasks.watch_tasks(filter), slot)))
    }
}
