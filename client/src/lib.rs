//! Rust client for taskd.
//!
//! [`proto`] holds the stubs generated from the same `proto/` the server is
//! built from (the `taskd-proto` crate, client side), with proto3 JSON
//! serde support. [`Client`]
//! wraps them for everyday use:
//!
//! ```no_run
//! # async fn example() -> Result<(), taskd_client::ClientError> {
//! use taskd_client::{Client, NewTask, TaskPriority};
//!
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! let task = client
//!     .submit(NewTask::new("report_generation").name("weekly").priority(TaskPriority::High))
//!     .await?;
//! let finished = client.wait(&task.id).await?;
//! println!("{} ended {:?}", finished.id, finished.status());
//! # Ok(())
//! # }
//! ```

pub mod connection;
pub mod worker;

pub use connection::{ConnectOptions, Credentials, Transport};

/// The proto3 JSON mapping of `google.protobuf.Struct` and `Value`.
pub use taskd_proto::json;
/// Generated `taskd.v1` messages and client stubs (the `taskd-proto`
/// crate, which the server is built from too).
pub use taskd_proto::v1 as proto;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use tonic::transport::Channel;

pub use proto::task_service_client::TaskServiceClient;
pub use proto::{
    ListTasksRequest, ListTasksResponse, SubmitTaskRequest, Task, TaskDependency, TaskEvent, TaskPriority, TaskStats,
    TaskStatus, WatchTasksRequest,
};

/// What can go wrong talking to taskd. Each variant's message says all
/// there is to say (the transport's chain of causes included), and none has
/// a `source`: printing an error with its causes (`{:#}` of anyhow) says
/// each thing once.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect: {}", causes(.0))]
    Connect(tonic::transport::Error),
    /// The server answered with an error status; `code()` tells which.
    #[error("{}: {}", .0.code(), .0.message())]
    Status(tonic::Status),
    #[error("the stream ended before it should have")]
    StreamEnded,
    /// The server said something out of turn.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Connection options that cannot be used (a CA file that cannot be
    /// read, TLS options with an http:// address).
    #[error("{0}")]
    Config(String),
}

impl From<tonic::transport::Error> for ClientError {
    fn from(error: tonic::transport::Error) -> Self {
        ClientError::Connect(error)
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        ClientError::Status(status)
    }
}

/// `error` and its causes, each said once: layers of a transport error
/// often repeat the one below ("transport error: transport error: ...").
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let part = next.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = next.source();
    }
    text
}

impl ClientError {
    /// The gRPC code of a server error, if it was one.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status(status) => Some(status.code()),
            _ => None,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// A task to submit, built step by step.
#[derive(Clone, Debug, Default)]
pub struct NewTask {
    request: SubmitTaskRequest,
}

impl NewTask {
    pub fn new(task_type: impl Into<String>) -> Self {
        NewTask {
            request: SubmitTaskRequest {
                task_type: task_type.into(),
                ..Default::default()
            },
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.request.name = name.into();
        self
    }

    /// Handler arguments; anything but a JSON object is ignored.
    pub fn params(mut self, params: serde_json::Value) -> Self {
        if let serde_json::Value::Object(object) = params {
            self.request.params = Some(json::json_to_struct(&object));
        }
        self
    }

    pub fn priority(mut self, priority: TaskPriority) -> Self {
        self.request.priority = priority as i32;
        self
    }

    /// Runs only after `task_id` ends COMPLETED.
    pub fn depends_on(self, task_id: impl Into<String>) -> Self {
        self.depends_on_status(task_id, TaskStatus::Completed)
    }

    /// Runs only after `task_id` ends in `status`.
    pub fn depends_on_status(mut self, task_id: impl Into<String>, status: TaskStatus) -> Self {
        self.request.dependencies.push(TaskDependency {
            task_id: task_id.into(),
            required_status: status as i32,
            batch_ref: String::new(),
        });
        self
    }

    /// In a batch: runs only after the member named `batch_ref` completes.
    pub fn depends_on_ref(mut self, batch_ref: impl Into<String>) -> Self {
        self.request.dependencies.push(TaskDependency {
            task_id: String::new(),
            required_status: TaskStatus::Completed as i32,
            batch_ref: batch_ref.into(),
        });
        self
    }

    /// Names this task within a batch, for `depends_on_ref`.
    pub fn batch_ref(mut self, batch_ref: impl Into<String>) -> Self {
        self.request.batch_ref = batch_ref.into();
        self
    }

    pub fn max_retries(mut self, retries: u32) -> Self {
        self.request.max_retries = Some(retries);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request.timeout = Some(duration(timeout));
        self
    }

    /// Backoff between attempts: `initial`, growing by `multiplier`, capped
    /// at `max`, spread by `jitter` (a fraction).
    pub fn backoff(mut self, initial: Duration, multiplier: f64, max: Duration, jitter: f64) -> Self {
        self.request.retry_policy = Some(proto::RetryPolicy {
            initial_backoff: Some(duration(initial)),
            multiplier,
            max_backoff: Some(duration(max)),
            jitter,
        });
        self
    }

    /// Earliest start time.
    pub fn run_at(mut self, time: SystemTime) -> Self {
        self.request.run_at = Some(timestamp(time));
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.labels.insert(key.into(), value.into());
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.request.idempotency_key = key.into();
        self
    }

    pub fn into_request(self) -> SubmitTaskRequest {
        self.request
    }
}

impl From<NewTask> for SubmitTaskRequest {
    fn from(task: NewTask) -> Self {
        task.request
    }
}

/// Converts a `SystemTime` to the wire timestamp.
pub fn timestamp(time: SystemTime) -> pbjson_types::Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    pbjson_types::Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

/// Converts a wire timestamp to `SystemTime`.
pub fn system_time(timestamp: &pbjson_types::Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::new(timestamp.seconds.max(0) as u64, timestamp.nanos.max(0) as u32)
}

fn duration(value: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: value.as_secs() as i64,
        nanos: value.subsec_nanos() as i32,
    }
}

/// A connection to taskd. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Transport,
    stub: TaskServiceClient<Transport>,
}

impl Client {
    /// Connects to `endpoint`, e.g. `http://127.0.0.1:50051`, with no token
    /// and no TLS.
    pub async fn connect(endpoint: impl Into<String>) -> ClientResult<Self> {
        Self::connect_with(endpoint, &ConnectOptions::default()).await
    }

    /// Connects with a token and TLS options, e.g.
    /// `Client::connect_with("https://taskd:50051", &ConnectOptions::default().token(t).ca_file("ca.pem"))`.
    pub async fn connect_with(endpoint: impl Into<String>, options: &ConnectOptions) -> ClientResult<Self> {
        let transport = options.connect(&endpoint.into()).await?;
        Ok(Self::from_transport(transport))
    }

    /// Over a channel made elsewhere, sending no token.
    pub fn from_channel(channel: Channel) -> Self {
        Self::from_transport(Transport::new(channel, Credentials::default()))
    }

    pub fn from_transport(transport: Transport) -> Self {
        Client {
            stub: TaskServiceClient::new(transport.clone()),
            channel: transport,
        }
    }

    /// The connection with its credentials, for the other services' stubs.
    pub fn channel(&self) -> Transport {
        self.channel.clone()
    }

    /// The generated stub, for anything this wrapper does not cover.
    pub fn stub(&self) -> TaskServiceClient<Transport> {
        self.stub.clone()
    }

    /// Submits one task; it is durable when this returns.
    pub async fn submit(&self, task: impl Into<SubmitTaskRequest>) -> ClientResult<Task> {
        Ok(self.stub.clone().submit_task(task.into()).await?.into_inner())
    }

    /// Submits one task and answers it once it has ended (its result or
    /// its error), in one call; when `wait` (at most an hour) passes first,
    /// the task as it then is.
    pub async fn run(&self, task: impl Into<SubmitTaskRequest>, wait: Duration) -> ClientResult<Task> {
        let request = proto::RunTaskRequest {
            task: Some(task.into()),
            wait: Some(pbjson_types::Duration {
                seconds: wait.as_secs() as i64,
                nanos: wait.subsec_nanos() as i32,
            }),
        };
        Ok(self.stub.clone().run_task(request).await?.into_inner())
    }

    /// `task` once it has ended: itself when it had, else [`Client::wait`].
    pub async fn wait_for(&self, task: Task) -> ClientResult<Task> {
        if is_terminal(task.status()) {
            return Ok(task);
        }
        self.wait(&task.id).await
    }

    /// Submits tasks atomically: all or none.
    pub async fn submit_batch(&self, tasks: impl IntoIterator<Item = NewTask>) -> ClientResult<Vec<Task>> {
        let request = proto::SubmitTasksRequest {
            tasks: tasks.into_iter().map(NewTask::into_request).collect(),
        };
        Ok(self.stub.clone().submit_tasks(request).await?.into_inner().tasks)
    }

    pub async fn get(&self, task_id: &str) -> ClientResult<Task> {
        let request = proto::GetTaskRequest {
            task_id: task_id.to_string(),
        };
        Ok(self.stub.clone().get_task(request).await?.into_inner())
    }

    pub async fn list(&self, request: ListTasksRequest) -> ClientResult<ListTasksResponse> {
        Ok(self.stub.clone().list_tasks(request).await?.into_inner())
    }

    /// Lists tasks with the given labels, following pages to the end.
    pub async fn list_all(&self, mut request: ListTasksRequest) -> ClientResult<Vec<Task>> {
        let mut tasks = Vec::new();
        loop {
            let page = self.list(request.clone()).await?;
            tasks.extend(page.tasks);
            if page.next_page_token.is_empty() {
                return Ok(tasks);
            }
            request.page_token = page.next_page_token;
        }
    }

    pub async fn cancel(&self, task_id: &str, reason: &str) -> ClientResult<Task> {
        let request = proto::CancelTaskRequest {
            task_id: task_id.to_string(),
            reason: reason.to_string(),
        };
        Ok(self.stub.clone().cancel_task(request).await?.into_inner())
    }

    pub async fn stats(&self) -> ClientResult<TaskStats> {
        Ok(self
            .stub
            .clone()
            .get_task_stats(proto::GetTaskStatsRequest {})
            .await?
            .into_inner())
    }

    /// The task types a submit may use, and what runs each.
    pub async fn task_types(&self) -> ClientResult<Vec<proto::TaskTypeInfo>> {
        Ok(self
            .stub
            .clone()
            .list_task_types(proto::ListTaskTypesRequest {})
            .await?
            .into_inner()
            .task_types)
    }

    /// Forgets a task type that workers declared (needs scope admin):
    /// submits of it are refused until a worker declares it again.
    pub async fn delete_task_type(&self, task_type: &str) -> ClientResult<()> {
        self.stub
            .clone()
            .delete_task_type(proto::DeleteTaskTypeRequest {
                task_type: task_type.to_string(),
            })
            .await?;
        Ok(())
    }

    fn schedule_stub(&self) -> proto::schedule_service_client::ScheduleServiceClient<Transport> {
        proto::schedule_service_client::ScheduleServiceClient::new(self.channel.clone())
    }

    /// Creates a schedule (see docs/schedules.md).
    pub async fn create_schedule(&self, definition: proto::ScheduleDefinition) -> ClientResult<proto::Schedule> {
        let request = proto::CreateScheduleRequest {
            schedule: Some(definition),
        };
        Ok(self.schedule_stub().create_schedule(request).await?.into_inner())
    }

    pub async fn get_schedule(&self, name: &str) -> ClientResult<proto::Schedule> {
        let request = proto::GetScheduleRequest { name: name.to_string() };
        Ok(self.schedule_stub().get_schedule(request).await?.into_inner())
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> ClientResult<Vec<proto::Schedule>> {
        let request = proto::ListSchedulesRequest {};
        Ok(self
            .schedule_stub()
            .list_schedules(request)
            .await?
            .into_inner()
            .schedules)
    }

    /// Pauses a schedule, saying why.
    pub async fn pause_schedule(&self, name: &str, note: &str) -> ClientResult<proto::Schedule> {
        let request = proto::PauseScheduleRequest {
            name: name.to_string(),
            note: note.to_string(),
        };
        Ok(self.schedule_stub().pause_schedule(request).await?.into_inner())
    }

    pub async fn resume_schedule(&self, name: &str) -> ClientResult<proto::Schedule> {
        let request = proto::ResumeScheduleRequest { name: name.to_string() };
        Ok(self.schedule_stub().resume_schedule(request).await?.into_inner())
    }

    /// Fires a schedule now; the task of the fire.
    pub async fn trigger_schedule(&self, name: &str) -> ClientResult<Task> {
        let request = proto::TriggerScheduleRequest { name: name.to_string() };
        Ok(self.schedule_stub().trigger_schedule(request).await?.into_inner())
    }

    /// Replaces a schedule's definition; what it has done stays.
    pub async fn update_schedule(&self, definition: proto::ScheduleDefinition) -> ClientResult<proto::Schedule> {
        let request = proto::UpdateScheduleRequest {
            schedule: Some(definition),
        };
        Ok(self.schedule_stub().update_schedule(request).await?.into_inner())
    }

    /// Fires a schedule at every time its spec names in `(start, end]`
    /// (at most 1000); the tasks, oldest first.
    pub async fn backfill_schedule(&self, name: &str, start: SystemTime, end: SystemTime) -> ClientResult<Vec<Task>> {
        let request = proto::BackfillScheduleRequest {
            name: name.to_string(),
            start_time: Some(timestamp(start)),
            end_time: Some(timestamp(end)),
        };
        Ok(self
            .schedule_stub()
            .backfill_schedule(request)
            .await?
            .into_inner()
            .tasks)
    }

    /// Deletes a schedule; the tasks it submitted stay.
    pub async fn delete_schedule(&self, name: &str) -> ClientResult<()> {
        let request = proto::DeleteScheduleRequest { name: name.to_string() };
        self.schedule_stub().delete_schedule(request).await?;
        Ok(())
    }

    /// The workers connected to the server.
    pub async fn workers(&self) -> ClientResult<Vec<proto::Worker>> {
        let mut stub = proto::worker_service_client::WorkerServiceClient::new(self.channel.clone());
        Ok(stub
            .list_workers(proto::ListWorkersRequest {})
            .await?
            .into_inner()
            .workers)
    }

    /// The task's current state, then every change, ending after the last.
    pub async fn watch(&self, task_id: &str) -> ClientResult<impl Stream<Item = ClientResult<TaskEvent>> + use<>> {
        let request = proto::WatchTaskRequest {
            task_id: task_id.to_string(),
        };
        let stream = self.stub.clone().watch_task(request).await?.into_inner();
        Ok(stream.map(|event| event.map_err(ClientError::from)))
    }

    /// Events of every task matching the filter.
    pub async fn watch_all(
        &self,
        filter: WatchTasksRequest,
    ) -> ClientResult<impl Stream<Item = ClientResult<TaskEvent>> + use<>> {
        let stream = self.stub.clone().watch_tasks(filter).await?.into_inner();
        Ok(stream.map(|event| event.map_err(ClientError::from)))
    }

    /// Waits for the task to reach a terminal status and returns it.
    pub async fn wait(&self, task_id: &str) -> ClientResult<Task> {
        let mut events = Box::pin(self.watch(task_id).await?);
        let mut last = None;
        while let Some(event) = events.next().await {
            if let Some(task) = event?.task {
                last = Some(task);
            }
        }
        match last {
            Some(task) if is_terminal(task.status()) => Ok(task),
            _ => Err(ClientError::StreamEnded),
        }
    }
}

/// Whether a status is final.
pub fn is_terminal(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
    )
}

/// Labels as a map, for list and watch filters.
pub fn labels<const N: usize>(pairs: [(&str, &str); N]) -> HashMap<String, String> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}
