//! Handlers run tasks in-process. A handler serves one task type; the
//! registry maps types to handlers. Built-ins live in `crate::handlers`; an
//! embedding program registers its own the same way. A handler that needs
//! more than its task (the engine, a directory) is given it when it is
//! built, not through the context.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::model::{Lease, Params, Progress, TaskId};

/// Why an attempt failed, in words that end up in the task's error history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub message: String,
    /// Whether another attempt could succeed. A permanent error (bad params,
    /// say) fails the task at once, retries left or not.
    pub retryable: bool,
}

impl HandlerError {
    /// A failure worth another attempt.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure every attempt would repeat.
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// What a handler's future yields: the task's result, or why it failed.
pub type HandlerResult = Result<Value, HandlerError>;

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

/// Takes the progress a running attempt reports.
pub trait ProgressSink: Send + Sync {
    fn report(&self, progress: Progress);
}

/// What a handler gets to run one attempt: its task, its lease, a way to
/// report progress and a signal to stop.
#[derive(Clone)]
pub struct TaskContext {
    pub task_id: TaskId,
    pub task_type: String,
    pub name: String,
    pub params: Params,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The lease this attempt runs under.
    pub lease: Lease,
    /// Fires when the task is cancelled, the attempt runs out of time or
    /// the server stops; a handler should stop soon after, it is dropped
    /// after a grace period.
    pub cancellation: CancellationToken,
    progress: Arc<dyn ProgressSink>,
}

impl TaskContext {
    pub fn new(
        lease: Lease,
        task_type: String,
        name: String,
        params: Params,
        cancellation: CancellationToken,
        progress: Arc<dyn ProgressSink>,
    ) -> Self {
        TaskContext {
            task_id: lease.task_id,
            attempt: lease.attempt,
            task_type,
            name,
            params,
            lease,
            cancellation,
            progress,
        }
    }

    /// Reports progress, visible in the task and to watchers.
    pub fn report_progress(&self, percent: f32, message: impl Into<String>) {
        self.progress.report(Progress {
            percent: percent.clamp(0.0, 100.0),
            message: message.into(),
        });
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }
}

/// Runs attempts of one task type.
pub trait TaskHandler: Send + Sync + 'static {
    fn run(&self, context: TaskContext) -> HandlerFuture;
}

/// Any `Fn(TaskContext) -> Future` is a handler.
impl<F, Fut> TaskHandler for F
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn run(&self, context: TaskContext) -> HandlerFuture {
        Box::pin(self(context))
    }
}

/// Task types and the handlers that serve them.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: BTreeMap<String, Arc<dyn TaskHandler>>,
    /// The params each type takes, for the types that said: a submit with
    /// any other is refused, naming it.
    params: BTreeMap<String, &'static [&'static str]>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `task_type` with `handler`, replacing any earlier one. Its
    /// tasks may carry any params.
    pub fn register(&mut self, task_type: impl Into<String>, handler: impl TaskHandler) -> &mut Self {
        let task_type = task_type.into();
        self.params.remove(&task_type);
        self.handlers.insert(task_type, Arc::new(handler));
        self
    }

    /// Serves `task_type` with `handler`, whose tasks may carry only the
    /// params named in `params`.
    pub fn register_with_params(
        &mut self,
        task_type: impl Into<String>,
        params: &'static [&'static str],
        handler: impl TaskHandler,
    ) -> &mut Self {
        let task_type = task_type.into();
        self.handlers.insert(task_type.clone(), Arc::new(handler));
        self.params.insert(task_type, params);
        self
    }

    /// Adds every handler of `other`, replacing those of the same types.
    pub fn extend(&mut self, other: HandlerRegistry) -> &mut Self {
        for task_type in other.handlers.keys() {
            self.params.remove(task_type);
        }
        self.handlers.extend(other.handlers);
        self.params.extend(other.params);
        self
    }

    /// The params `task_type` takes, when its handler said.
    pub fn params_of(&self, task_type: &str) -> Option<&'static [&'static str]> {
        self.params.get(task_type).copied()
    }

    pub fn get(&self, task_type: &str) -> Option<Arc<dyn TaskHandler>> {
        self.handlers.get(task_type).cloned()
    }

    pub fn serves(&self, task_type: &str) -> bool {
        self.handlers.contains_key(task_type)
    }

    pub fn task_types(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}
