//! Handlers run tasks. A handler serves one task type; the registry maps
//! types to handlers. Built-ins live in `crate::handlers`; an embedding
//! program registers its own the same way.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::manager::TaskManager;
use crate::engine::model::{Params, Progress, TaskId};

/// Why an attempt failed, in words that end up in the task's error history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub message: String,
}

impl HandlerError {
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
        }
    }
}

/// What a handler's future yields: the task's result, or why it failed.
pub type HandlerResult = Result<Value, HandlerError>;

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

/// Receives progress reports from a running attempt.
pub trait ProgressSink: Send + Sync {
    fn report(&self, task_id: TaskId, attempt: u32, progress: Progress);
}

/// Everything a handler gets to run one attempt.
#[derive(Clone)]
pub struct TaskContext {
    pub task_id: TaskId,
    pub task_type: String,
    pub name: String,
    pub params: Params,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Fires when the task is cancelled or the attempt timed out; a handler
    /// should stop soon after, it is dropped after a grace period.
    pub cancellation: CancellationToken,
    /// Where a handler may write files (exports, reports).
    pub data_dir: PathBuf,
    /// The engine itself, for handlers that read or manage tasks (reports,
    /// exports, maintenance) or submit follow-up work.
    pub engine: TaskManager,
    progress: Arc<dyn ProgressSink>,
}

impl TaskContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        task_id: TaskId,
        task_type: String,
        name: String,
        params: Params,
        attempt: u32,
        cancellation: CancellationToken,
        data_dir: PathBuf,
        engine: TaskManager,
        progress: Arc<dyn ProgressSink>,
    ) -> Self {
        TaskContext {
            task_id,
            task_type,
            name,
            params,
            attempt,
            cancellation,
            data_dir,
            engine,
            progress,
        }
    }

    /// Reports progress, visible in the task and to watchers.
    pub fn report_progress(&self, percent: f32, message: impl Into<String>) {
        self.progress.report(
            self.task_id,
            self.attempt,
            Progress {
                percent: percent.clamp(0.0, 100.0),
                message: message.into(),
            },
        );
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
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `task_type` with `handler`, replacing any earlier one.
    pub fn register(&mut self, task_type: impl Into<String>, handler: impl TaskHandler) -> &mut Self {
        self.handlers.insert(task_type.into(), Arc::new(handler));
        self
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
}
