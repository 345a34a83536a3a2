//! Runs one attempt: calls the handler, enforces the timeout, honours
//! cancellation with a grace period, and turns a panic into a failure.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use crate::engine::handler::{ProgressSink, TaskContext};
use crate::engine::manager::{Inner, TaskManager};
use crate::engine::scheduler::{AttemptResult, StartedAttempt};

pub(crate) async fn run_attempt(inner: Arc<Inner>, started: StartedAttempt) {
    let StartedAttempt {
        task,
        attempt,
        cancellation,
    } = started;
    let Some(handler) = inner.registry.get(&task.task_type) else {
        inner.finish_attempt(
            task.id,
            attempt,
            AttemptResult::Failed(format!("no handler serves task type {}", task.task_type)),
        );
        return;
    };
    let progress: Arc<dyn ProgressSink> = inner.clone();
    let context = TaskContext::new(
        task.id,
        task.task_type.clone(),
        task.name.clone(),
        task.params.clone(),
        attempt,
        cancellation.clone(),
        inner.data_dir.clone(),
        TaskManager::from_inner(inner.clone()),
        progress,
    );
    let timeout = task.timeout;
    let mut running = AssertUnwindSafe(handler.run(context)).catch_unwind();

    let result = tokio::select! {
        outcome = &mut running => from_handler(outcome),
        _ = tokio::time::sleep(timeout) => {
            cancellation.cancel();
            AttemptResult::TimedOut(timeout)
        }
        _ = cancellation.cancelled() => {
            // Cooperative: the handler saw the token and gets a grace period
            // to wind down; after it the future is dropped.
            match tokio::time::timeout(inner.config.cancel_grace, &mut running).await {
                Ok(outcome) => from_handler(outcome),
                Err(_) => AttemptResult::Failed("handler did not stop within the cancel grace period".to_string()),
            }
        }
    };
    drop(running);
    if inner.is_stopping() && matches!(result, AttemptResult::Failed(_)) && cancellation.is_cancelled() {
        // Shutdown signalled this attempt: leave it RUNNING in the store so
        // the next start records it as interrupted and retries it.
        return;
    }
    inner.finish_attempt(task.id, attempt, result);
}

fn from_handler(
    outcome: Result<crate::engine::handler::HandlerResult, Box<dyn std::any::Any + Send>>,
) -> AttemptResult {
    match outcome {
        Ok(Ok(value)) => AttemptResult::Succeeded(value),
        Ok(Err(error)) => AttemptResult::Failed(error.message),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            AttemptResult::Failed(format!("handler panicked: {message}"))
        }
    }
}
