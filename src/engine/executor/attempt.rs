//! Runs one handler: stops it at the attempt's time limit, lets it wind
//! down when told to stop, and turns a panic into a failure.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::engine::handler::{HandlerResult, TaskContext, TaskHandler};

/// How a handler's run ended.
pub enum Ran {
    /// It returned.
    Returned(HandlerResult),
    /// It panicked, saying this.
    Panicked(String),
    /// It ran into its time limit and was dropped.
    TimedOut,
    /// It was told to stop (cancelled, lease lost, server stopping); what it
    /// returned, if anything, no longer counts.
    Stopped,
}

/// Runs `handler` until it returns, `time_limit` passes, or `stop` fires
/// (then it gets `grace` to return before it is dropped).
pub async fn run(
    handler: Arc<dyn TaskHandler>,
    context: TaskContext,
    time_limit: Duration,
    stop: CancellationToken,
    grace: Duration,
) -> Ran {
    let mut running = AssertUnwindSafe(handler.run(context)).catch_unwind();
    tokio::select! {
        outcome = &mut running => match outcome {
            // A handler that failed after being told to stop failed
            // because it was told to: that is not its outcome.
            Ok(Err(_)) if stop.is_cancelled() => Ran::Stopped,
            Ok(result) => Ran::Returned(result),
            Err(panic) => Ran::Panicked(panic_message(panic)),
        },
        _ = tokio::time::sleep(time_limit) => {
            stop.cancel();
            Ran::TimedOut
        }
        _ = stop.cancelled() => {
            // Cooperative: the handler saw the token and gets a grace period
            // to wind down; after it the future is dropped.
            let _ = tokio::time::timeout(grace, &mut running).await;
            Ran::Stopped
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}
