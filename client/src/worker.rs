//! Runs task types in this program for taskd: a worker.
//!
//! Register an async handler per task type and run the worker; it takes
//! tasks as they become ready (never more than its capacity at once),
//! renews their leases while the handlers run, reports their outcomes, and
//! stops a handler whose task was cancelled or timed out. On shutdown it
//! drains: no new tasks, running ones get the drain timeout to finish, and
//! whatever is still running then is handed back to taskd for another
//! worker.
//!
//! ```no_run
//! # async fn example() -> Result<(), taskd_client::ClientError> {
//! use taskd_client::worker::{TaskError, Worker};
//!
//! let client = taskd_client::Client::connect("http://127.0.0.1:50051").await?;
//! Worker::new(&client)
//!     .capacity(8)
//!     .handle("thumbnails", |task| async move {
//!         let path = task.params().get("path").and_then(|path| path.as_str());
//!         let path = path.ok_or_else(|| TaskError::permanent("params.path: a string is required"))?;
//!         task.progress(50.0, "resizing");
//!         Ok(serde_json::json!({"thumbnail": format!("{path}.thumb.png")}))
//!     })
//!     .run_until(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::proto::work_request::Message as Outgoing;
use crate::proto::work_response::Message as Incoming;
use crate::proto::worker_service_client::WorkerServiceClient;
use crate::proto::{self, AttemptResult, Lease, Task, WorkRequest};
use crate::{Client, ClientError, ClientResult, json, system_time};

/// Why a handler failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub message: String,
    /// Whether every attempt would fail the same way (bad params, say): the
    /// task then fails at once, retries left or not.
    pub permanent: bool,
}

impl TaskError {
    /// A failure worth another attempt.
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure every attempt would repeat.
    pub fn permanent(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            permanent: true,
        }
    }
}

/// What a handler returns: the task's result, or why it failed.
pub type TaskResult = Result<serde_json::Value, TaskError>;

type HandlerFuture = Pin<Box<dyn Future<Output = TaskResult> + Send + 'static>>;

trait Handler: Send + Sync + 'static {
    fn run(&self, task: TaskRun) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(TaskRun) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TaskResult> + Send + 'static,
{
    fn run(&self, task: TaskRun) -> HandlerFuture {
        Box::pin(self(task))
    }
}

/// One attempt of one task, as a handler gets it.
pub struct TaskRun {
    task: Task,
    params: serde_json::Map<String, serde_json::Value>,
    lease: Lease,
    requests: mpsc::Sender<WorkRequest>,
    cancelled: CancellationToken,
}

impl TaskRun {
    pub fn id(&self) -> &str {
        &self.task.id
    }

    /// 1 for the first attempt.
    pub fn attempt(&self) -> u32 {
        self.lease.attempt
    }

    /// The task as taskd handed it out.
    pub fn task(&self) -> &Task {
        &self.task
    }

    pub fn params(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.params
    }

    /// The params as `T`; a mismatch is a permanent failure naming the field.
    pub fn params_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_value(serde_json::Value::Object(self.params.clone()))
            .map_err(|error| TaskError::permanent(format!("params: {error}")))
    }

    /// Reports progress, seen by watchers and the dashboard. Reports that
    /// come faster than taskd writes them coalesce.
    pub fn progress(&self, percent: f32, message: impl Into<String>) {
        let report = WorkRequest {
            message: Some(Outgoing::Progress(proto::ProgressReport {
                lease: Some(self.lease.clone()),
                percent,
                message: message.into(),
            })),
        };
        // Progress is advisory: a full queue drops a report, never blocks.
        let _ = self.requests.try_send(report);
    }

    /// Whether the task was cancelled (or timed out, or its lease lost):
    /// the handler should stop; what it returns no longer counts.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    /// Resolves when [`TaskRun::is_cancelled`] becomes true.
    pub async fn cancelled(&self) {
        self.cancelled.cancelled().await;
    }
}

/// Runs registered handlers for taskd. See the module docs.
pub struct Worker {
    channel: crate::Transport,
    handlers: HashMap<String, Arc<dyn Handler>>,
    capacity: u32,
    worker_id: String,
    labels: HashMap<String, String>,
    /// This run's token: a reconnect with it replaces the old stream.
    instance: String,
    drain_timeout: Duration,
    cancel_grace: Duration,
}

impl Worker {
    pub fn new(client: &Client) -> Self {
        let mut labels = HashMap::new();
        labels.insert("sdk".to_string(), format!("rust/{}", env!("CARGO_PKG_VERSION")));
        labels.insert("pid".to_string(), std::process::id().to_string());
        Worker {
            channel: client.channel(),
            handlers: HashMap::new(),
            capacity: 1,
            worker_id: String::new(),
            labels,
            instance: new_instance(),
            drain_timeout: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(5),
        }
    }

    /// Runs tasks of `task_type` with `handler`.
    pub fn handle<F, Fut>(mut self, task_type: impl Into<String>, handler: F) -> Self
    where
        F: Fn(TaskRun) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + Send + 'static,
    {
        self.handlers.insert(task_type.into(), Arc::new(handler));
        self
    }

    /// The most tasks run at once (1 by default).
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// The worker's name, unique among connected workers; taskd makes one
    /// up when it is not set.
    pub fn worker_id(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = worker_id.into();
        self
    }

    /// A fact shown to operators beside the worker.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// How long running tasks get to finish once the worker drains (30s by
    /// default); the rest are handed back.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How long a cancelled handler gets to return before it is dropped (5s
    /// by default).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// Runs until `shutdown` resolves, then drains and returns. A lost
    /// connection is made again (what the worker held is taken back by
    /// taskd and retried); a refusal of the worker itself (a bad task type,
    /// say) is returned.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> ClientResult<()> {
        let stop = CancellationToken::new();
        let watcher = {
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
                std::future::pending::<()>().await;
            }
        };
        let worker = Arc::new(self);
        let running = async {
            let mut delay = Duration::from_millis(100);
            loop {
                let mut welcomed = false;
                let ended = worker.session(&stop, &mut welcomed).await;
                if welcomed {
                    delay = Duration::from_millis(100);
                }
                if stop.is_cancelled() {
                    // Drained as asked, or the connection went while
                    // draining: either way this worker is done.
                    return Ok(());
                }
                match ended {
                    // The server drained this worker (it is stopping):
                    // connect again once it is back.
                    Ok(()) => {}
                    Err(error) if reconnects_after(&error) => {}
                    Err(error) => return Err(error),
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        };
        tokio::select! {
            result = running => result,
            _ = watcher => unreachable!("the watcher never ends"),
        }
    }

    /// One connection: from hello until drained (Ok) or lost (Err).
    async fn session(self: &Arc<Self>, stop: &CancellationToken, welcomed: &mut bool) -> ClientResult<()> {
        let (requests, outgoing) = mpsc::channel::<WorkRequest>(4096);
        let hello = proto::WorkerHello {
            worker_id: self.worker_id.clone(),
            task_types: self.handlers.keys().cloned().collect(),
            capacity: self.capacity,
            labels: self.labels.clone(),
            instance: self.instance.clone(),
        };
        send(&requests, Outgoing::Hello(hello)).await?;
        let mut stub = WorkerServiceClient::new(self.channel.clone());
        let mut responses = stub.work(ReceiverStream::new(outgoing)).await?.into_inner();
        let renew_interval = match responses.message().await? {
            Some(proto::WorkResponse {
                message: Some(Incoming::Welcome(welcome)),
            }) => welcome
                .renew_interval
                .map(|interval| Duration::new(interval.seconds.max(0) as u64, interval.nanos.max(0) as u32))
                .unwrap_or(Duration::from_secs(10)),
            _ => return Err(ClientError::Protocol("the server did not welcome the worker".into())),
        };
        *welcomed = true;

        let mut running: HashMap<String, Running> = HashMap::new();
        let (outcomes, mut finished) = mpsc::unbounded_channel::<(Lease, Outcome)>();
        let mut renew = tokio::time::interval(renew_interval.max(Duration::from_millis(100)));
        renew.reset();
        let mut drain_requested = false;
        let mut drained = false;
        let mut drain_deadline: Option<tokio::time::Instant> = None;
        let ended = loop {
            if drained && running.is_empty() {
                break Ok(());
            }
            tokio::select! {
                message = responses.message() => match message {
                    Ok(Some(proto::WorkResponse { message: Some(message) })) => match message {
                        Incoming::Tasks(assigned) => {
                            for task in assigned.tasks {
                                if let (Some(task), Some(lease)) = (task.task, task.lease) {
                                    let run = self.start(task, lease.clone(), &requests, &outcomes);
                                    running.insert(lease.task_id.clone(), run);
                                }
                            }
                        }
                        Incoming::Revoked(revoked) => {
                            if let Some(lease) = revoked.lease
                                && let Some(run) = running.get(&lease.task_id)
                            {
                                run.cancelled.cancel();
                            }
                        }
                        Incoming::Finished(answer) => {
                            for outcome in answer.outcomes {
                                running.remove(&outcome.task_id);
                            }
                        }
                        Incoming::Renewed(answer) => {
                            for outcome in answer.outcomes {
                                if outcome.refusal.is_some()
                                    && let Some(run) = running.get(&outcome.task_id)
                                {
                                    run.cancelled.cancel();
                                }
                            }
                        }
                        Incoming::Drained(_) => {
                            drained = true;
                            if !drain_requested {
                                // The server is stopping: finish what is held.
                                drain_requested = true;
                                drain_deadline = Some(tokio::time::Instant::now() + self.drain_timeout);
                            }
                        }
                        Incoming::Welcome(_) => {}
                    },
                    Ok(Some(_)) => {}
                    Ok(None) => break Err(ClientError::StreamEnded),
                    Err(status) => break Err(ClientError::Status(status)),
                },
                Some(first) = finished.recv() => {
                    let mut results = vec![result_of(first)];
                    while let Ok(next) = finished.try_recv() {
                        results.push(result_of(next));
                    }
                    for result in &results {
                        if let Some(lease) = &result.lease
                            && let Some(run) = running.get_mut(&lease.task_id)
                        {
                            run.reported = true;
                        }
                    }
                    send(&requests, Outgoing::Finish(proto::FinishAttempts { results })).await?;
                }
                _ = renew.tick() => {
                    let leases: Vec<Lease> = running
                        .values()
                        .filter(|run| !run.reported)
                        .map(|run| run.lease.clone())
                        .collect();
                    if !leases.is_empty() {
                        send(&requests, Outgoing::Renew(proto::RenewLeasesRequest { leases })).await?;
                    }
                }
                _ = stop.cancelled(), if !drain_requested => {
                    drain_requested = true;
                    drain_deadline = Some(tokio::time::Instant::now() + self.drain_timeout);
                    send(&requests, Outgoing::Drain(proto::Drain {})).await?;
                }
                _ = sleep_until(drain_deadline) => {
                    // Out of time: hand back what still runs, for another
                    // worker to run.
                    drain_deadline = None;
                    let mut results = Vec::new();
                    for run in running.values_mut().filter(|run| !run.reported) {
                        run.reported = true;
                        run.cancelled.cancel();
                        results.push(AttemptResult {
                            lease: Some(run.lease.clone()),
                            outcome: Some(proto::attempt_result::Outcome::Released(
                                "the worker stopped before the task finished".into(),
                            )),
                        });
                    }
                    if !results.is_empty() {
                        send(&requests, Outgoing::Finish(proto::FinishAttempts { results })).await?;
                    }
                }
            }
        };
        // Whatever still runs lost its lease with the connection.
        for run in running.values() {
            run.cancelled.cancel();
        }
        ended
    }

    /// Starts the handler of one assigned task.
    fn start(
        self: &Arc<Self>,
        task: Task,
        lease: Lease,
        requests: &mpsc::Sender<WorkRequest>,
        outcomes: &mpsc::UnboundedSender<(Lease, Outcome)>,
    ) -> Running {
        let cancelled = CancellationToken::new();
        let deadline = attempt_deadline(&task);
        let handler = self.handlers.get(&task.task_type).cloned();
        let params = task
            .params
            .as_ref()
            .and_then(|params| json::struct_to_json(params).ok())
            .unwrap_or_default();
        let run = TaskRun {
            task,
            params,
            lease: lease.clone(),
            requests: requests.clone(),
            cancelled: cancelled.clone(),
        };
        let outcomes = outcomes.clone();
        let grace = self.cancel_grace;
        let token = cancelled.clone();
        let reported_lease = lease.clone();
        tokio::spawn(async move {
            let outcome = match handler {
                Some(handler) => run_handler(handler.run(run), deadline, token, grace).await,
                None => Outcome::Failed(TaskError::permanent("this worker has no handler for the task type")),
            };
            let _ = outcomes.send((reported_lease, outcome));
        });
        Running {
            lease,
            cancelled,
            reported: false,
        }
    }
}

/// A task this worker holds.
struct Running {
    lease: Lease,
    cancelled: CancellationToken,
    /// Whether its outcome went out (it is held until taskd answers).
    reported: bool,
}

/// How a handler's run ended.
enum Outcome {
    Succeeded(serde_json::Value),
    Failed(TaskError),
}

async fn run_handler(
    running: HandlerFuture,
    deadline: Option<tokio::time::Instant>,
    cancelled: CancellationToken,
    grace: Duration,
) -> Outcome {
    let mut running = AssertUnwindSafe(running).catch_unwind();
    let finished = tokio::select! {
        finished = &mut running => Some(finished),
        _ = sleep_until(deadline) => {
            // Out of time: told like a revoke, and given the same grace to
            // stop (whatever it returns, the lease has ended).
            cancelled.cancel();
            let _ = tokio::time::timeout(grace, &mut running).await;
            return Outcome::Failed(TaskError::retryable("the attempt ran out of time"));
        }
        _ = cancelled.cancelled() => {
            tokio::time::timeout(grace, &mut running).await.ok()
        }
    };
    match finished {
        Some(Ok(Ok(value))) => Outcome::Succeeded(value),
        Some(Ok(Err(error))) => Outcome::Failed(error),
        Some(Err(panic)) => Outcome::Failed(TaskError::retryable(format!(
            "handler panicked: {}",
            panic_message(&panic)
        ))),
        None => Outcome::Failed(TaskError::retryable("stopped: the task was cancelled")),
    }
}

fn result_of((lease, outcome): (Lease, Outcome)) -> AttemptResult {
    let outcome = match outcome {
        Outcome::Succeeded(value) => proto::attempt_result::Outcome::Result(json::json_to_value(&value)),
        Outcome::Failed(error) => proto::attempt_result::Outcome::Failure(proto::AttemptFailure {
            message: error.message,
            permanent: error.permanent,
        }),
    };
    AttemptResult {
        lease: Some(lease),
        outcome: Some(outcome),
    }
}

/// When the attempt's time runs out: its start plus the task's timeout.
fn attempt_deadline(task: &Task) -> Option<tokio::time::Instant> {
    let started = system_time(task.started_at.as_ref()?);
    let timeout = task.timeout.as_ref()?;
    let timeout = Duration::new(timeout.seconds.max(0) as u64, timeout.nanos.max(0) as u32);
    let left = (started + timeout)
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(tokio::time::Instant::now() + left)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn send(requests: &mpsc::Sender<WorkRequest>, message: Outgoing) -> ClientResult<()> {
    requests
        .send(WorkRequest { message: Some(message) })
        .await
        .map_err(|_| ClientError::StreamEnded)
}

/// Whether a session that ended with `error` is opened again (after the
/// backoff), as `worker_service.proto` states for every status: only a
/// refusal of the worker itself stops it. ALREADY_EXISTS is retried: the id
/// is often held by this worker's own old stream, not yet seen to end.
fn reconnects_after(error: &ClientError) -> bool {
    match error {
        ClientError::Connect(_) | ClientError::StreamEnded => true,
        ClientError::Status(status) => !stops_the_worker(status.code()),
        ClientError::Protocol(_) | ClientError::Config(_) => false,
    }
}

/// The statuses that refuse the worker itself: trying again would only
/// repeat them.
pub fn stops_the_worker(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::InvalidArgument
            | tonic::Code::Unauthenticated
            | tonic::Code::PermissionDenied
            | tonic::Code::FailedPrecondition
            | tonic::Code::NotFound
            | tonic::Code::OutOfRange
            | tonic::Code::Unimplemented
    )
}

/// A token for this run of the worker, different in every process: a
/// reconnect that presents it replaces the worker's old stream.
fn new_instance() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
