//! Diagnostic task types, for smoke tests and benchmarks only: they do no
//! real work, so that a test or a benchmark measures the engine (queueing,
//! progress, cancellation, retries, panic isolation) and nothing else.
//!
//! - `diag.echo` returns its params: the cheapest possible task.
//! - `diag.sleep` waits `duration_ms`, reporting progress, and stops early
//!   when cancelled or timed out.
//! - `diag.fail` fails until a given attempt, to exercise retries.
//! - `diag.panic` panics, to check that a panicking handler becomes a failed
//!   attempt and not a dead worker.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::engine::handler::{HandlerError, HandlerResult, TaskContext};
use crate::handlers::params;

pub const ECHO: &str = "diag.echo";
pub const SLEEP: &str = "diag.sleep";
pub const FAIL: &str = "diag.fail";
pub const PANIC: &str = "diag.panic";

/// Longest `diag.sleep`: 24 hours.
pub const MAX_SLEEP_MS: u64 = 24 * 60 * 60 * 1000;

/// Progress is reported at most this often, and otherwise every 10%.
const MIN_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// `diag.echo`: returns its params as the result.
pub async fn echo(context: TaskContext) -> HandlerResult {
    Ok(Value::Object(context.params))
}

/// `diag.sleep`: sleeps `duration_ms` (required, at most 24h); returns
/// `{"slept_ms": n}`, or fails with "cancelled" once the task is cancelled.
pub async fn sleep(context: TaskContext) -> HandlerResult {
    let duration_ms = params::required_u64(&context.params, "duration_ms", MAX_SLEEP_MS)?;
    let total = Duration::from_millis(duration_ms);
    let interval = progress_interval(total);
    let started = Instant::now();
    let deadline = started + total;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wake = (now + interval).min(deadline);
        tokio::select! {
            biased;
            _ = context.cancellation.cancelled() => return Err(HandlerError::new("cancelled")),
            _ = tokio::time::sleep_until(wake) => {}
        }
        let elapsed = started.elapsed().min(total);
        let percent = (elapsed.as_secs_f64() / total.as_secs_f64() * 100.0) as f32;
        context.report_progress(percent, format!("slept {} of {duration_ms} ms", elapsed.as_millis()));
    }
    if context.is_cancelled() {
        return Err(HandlerError::new("cancelled"));
    }
    Ok(json!({ "slept_ms": duration_ms }))
}

/// Time between progress reports of a sleep of `total`: a tenth of it, but
/// no less than [`MIN_PROGRESS_INTERVAL`].
fn progress_interval(total: Duration) -> Duration {
    (total / 10).max(MIN_PROGRESS_INTERVAL)
}

/// `diag.fail`: fails with `message` (default "diag.fail") unless
/// `succeed_on_attempt` is set and this attempt is at least that; then
/// returns `{"attempt": n}`.
pub async fn fail(context: TaskContext) -> HandlerResult {
    let message = params::optional_str(&context.params, "message")?.unwrap_or(FAIL);
    let succeed_on = params::optional_u64(&context.params, "succeed_on_attempt", u64::from(u32::MAX))?;
    match succeed_on {
        Some(first_success) if u64::from(context.attempt) >= first_success => Ok(json!({ "attempt": context.attempt })),
        _ => Err(HandlerError::new(message)),
    }
}

/// `diag.panic`: panics with `message` (default "diag.panic").
pub async fn panic(context: TaskContext) -> HandlerResult {
    let message = params::optional_str(&context.params, "message")?.unwrap_or(PANIC);
    panic!("{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_reported_every_tenth_of_a_long_sleep() {
        assert_eq!(progress_interval(Duration::from_secs(10)), Duration::from_secs(1));
    }

    #[test]
    fn progress_of_a_short_sleep_is_reported_no_more_than_every_100_ms() {
        assert_eq!(
            progress_interval(Duration::from_millis(200)),
            Duration::from_millis(100)
        );
        assert_eq!(progress_interval(Duration::ZERO), Duration::from_millis(100));
    }
}
