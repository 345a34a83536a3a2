//! Leasing an attempt and deciding what follows its end: completed, retried
//! after a backoff, or failed for good.

use std::time::Duration;

use serde_json::Value;

use crate::model::rules::placement::{Placement, place_ready};
use crate::model::{AttemptOutcome, RetryPolicy, TaskStatus, Timestamp};

/// What the rules need to know about a task to end its current attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptFacts {
    /// The attempt that is ending, 1-based.
    pub attempt: u32,
    /// Retries used before this attempt.
    pub retry_count: u32,
    pub max_retries: u32,
    pub retry_policy: RetryPolicy,
    pub timeout: Duration,
    /// When the attempt started.
    pub started_at: Timestamp,
}

/// The deadline of a lease taken or renewed at `now` for `lease_duration`:
/// never past the attempt's timeout, so a hung executor cannot hold a task
/// longer than the task allows.
pub fn lease_deadline(now: Timestamp, lease_duration: Duration, started_at: Timestamp, timeout: Duration) -> Timestamp {
    now.saturating_add(lease_duration)
        .min(started_at.saturating_add(timeout))
}

/// Why a COMPLETED task is where it is.
pub fn completed_reason(attempt: u32) -> String {
    format!("completed on attempt {attempt}")
}

/// The progress a completed task shows.
pub fn completed_progress() -> crate::model::Progress {
    crate::model::Progress {
        percent: 100.0,
        message: "done".to_string(),
    }
}

/// Why a task handed back by its executor is ready again.
pub fn released_reason(attempt: u32, why: &str) -> String {
    format!("attempt {attempt} handed back unfinished ({why}); ready to run again")
}

/// Why a RUNNING task is where it is.
pub fn running_reason(attempt: u32) -> String {
    format!("attempt {attempt} running")
}

/// How an attempt ended, as its executor reported it or as the store found
/// it when the lease was taken back.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptEnd {
    Succeeded(Value),
    /// The handler failed; `retryable: false` fails the task at once.
    Failed {
        error: String,
        retryable: bool,
    },
    /// The attempt ran past the task's timeout.
    TimedOut,
    /// The executor stopped renewing its lease.
    LeaseExpired,
    /// The executor went away; `why` says how.
    Interrupted {
        why: String,
    },
    /// The executor handed the task back unfinished; `why` says why. The
    /// task is ready again at once and keeps its retries: nothing failed.
    Released {
        why: String,
    },
}

impl AttemptEnd {
    pub fn outcome(&self) -> AttemptOutcome {
        match self {
            AttemptEnd::Succeeded(_) => AttemptOutcome::Succeeded,
            AttemptEnd::Failed { .. } => AttemptOutcome::Failed,
            AttemptEnd::TimedOut => AttemptOutcome::TimedOut,
            AttemptEnd::LeaseExpired => AttemptOutcome::LeaseExpired,
            AttemptEnd::Interrupted { .. } => AttemptOutcome::Interrupted,
            AttemptEnd::Released { .. } => AttemptOutcome::Released,
        }
    }
}

/// How the store finds an attempt whose lease deadline passed at `now`: it
/// timed out if the task's timeout is what ended the lease.
pub fn end_of_expired_lease(facts: &AttemptFacts, now: Timestamp) -> AttemptEnd {
    if now >= facts.started_at.saturating_add(facts.timeout) {
        AttemptEnd::TimedOut
    } else {
        AttemptEnd::LeaseExpired
    }
}

/// What follows the end of an attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// COMPLETED, FAILED, or SCHEDULED / PENDING for a retry.
    pub status: TaskStatus,
    pub outcome: AttemptOutcome,
    /// The attempt's error; also the task's `error`.
    pub error: Option<String>,
    pub result: Option<Value>,
    /// Retries used, this one included if it is a retry.
    pub retry_count: u32,
    /// Where a retry goes: SCHEDULED until its backoff ends, or PENDING.
    pub retry: Option<Placement>,
    pub completed_at: Option<Timestamp>,
    pub reason: String,
}

/// Decides what follows the end of an attempt at `now`; `unit` is a random
/// draw in [0, 1) that spreads the retry backoff by the policy's jitter.
pub fn end_attempt(facts: &AttemptFacts, end: AttemptEnd, now: Timestamp, unit: f64) -> Verdict {
    let outcome = end.outcome();
    let (error, retryable) = match end {
        AttemptEnd::Succeeded(result) => {
            return Verdict {
                status: TaskStatus::Completed,
                outcome,
                error: None,
                result: Some(result),
                retry_count: facts.retry_count,
                retry: None,
                completed_at: Some(now),
                reason: completed_reason(facts.attempt),
            };
        }
        AttemptEnd::Released { why } => {
            let placement = place_ready(None, now);
            return Verdict {
                status: placement.status(),
                outcome,
                error: None,
                result: None,
                retry_count: facts.retry_count,
                retry: Some(placement),
                completed_at: None,
                reason: released_reason(facts.attempt, &why),
            };
        }
        AttemptEnd::Failed { error, retryable } => (error, retryable),
        AttemptEnd::TimedOut => (format!("timed out after {:.3}s", facts.timeout.as_secs_f64()), true),
        AttemptEnd::LeaseExpired => ("lease expired: its executor stopped renewing it".to_string(), true),
        AttemptEnd::Interrupted { why } => (format!("interrupted: {why}"), true),
    };
    if retryable && facts.retry_count < facts.max_retries {
        let retry = facts.retry_count + 1;
        let delay = facts.retry_policy.delay(retry, unit);
        let placement = place_ready(Some(now.saturating_add(delay)), now);
        return Verdict {
            status: placement.status(),
            outcome,
            reason: format!(
                "retry {retry} of {} in {:.3}s after: {error}",
                facts.max_retries,
                delay.as_secs_f64()
            ),
            error: Some(error),
            result: None,
            retry_count: retry,
            retry: Some(placement),
            completed_at: None,
        };
    }
    let reason = if !retryable {
        "failed; the error is not retryable".to_string()
    } else if facts.max_retries == 0 {
        "failed; no retries allowed".to_string()
    } else {
        format!("failed after {} attempts", facts.attempt)
    };
    Verdict {
        status: TaskStatus::Failed,
        outcome,
        error: Some(error),
        result: None,
        retry_count: facts.retry_count,
        retry: None,
        completed_at: Some(now),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn facts(retry_count: u32, max_retries: u32) -> AttemptFacts {
        AttemptFacts {
            attempt: retry_count + 1,
            retry_count,
            max_retries,
            retry_policy: RetryPolicy {
                initial_backoff: Duration::from_millis(100),
                multiplier: 2.0,
                max_backoff: Duration::from_secs(10),
                jitter: 0.0,
            },
            timeout: Duration::from_secs(60),
            started_at: Timestamp(0),
        }
    }

    fn failure(retryable: bool) -> AttemptEnd {
        AttemptEnd::Failed {
            error: "boom".into(),
            retryable,
        }
    }

    #[test]
    fn success_completes_the_task_with_its_result_and_no_error() {
        let verdict = end_attempt(
            &facts(1, 3),
            AttemptEnd::Succeeded(json!({"rows": 2})),
            Timestamp(9),
            0.5,
        );
        assert_eq!(verdict.status, TaskStatus::Completed);
        assert_eq!(verdict.result, Some(json!({"rows": 2})));
        assert_eq!(verdict.error, None);
        assert_eq!(verdict.completed_at, Some(Timestamp(9)));
        assert_eq!(verdict.reason, "completed on attempt 2");
    }

    #[test]
    fn a_failure_with_retries_left_is_scheduled_after_the_backoff() {
        let now = Timestamp(1_000_000);
        let verdict = end_attempt(&facts(1, 3), failure(true), now, 0.5);
        assert_eq!(verdict.status, TaskStatus::Scheduled);
        assert_eq!(verdict.retry_count, 2);
        assert_eq!(
            verdict.retry.and_then(|placement| placement.due()),
            Some(now.saturating_add(Duration::from_millis(200)))
        );
        assert_eq!(verdict.reason, "retry 2 of 3 in 0.200s after: boom");
    }

    #[test]
    fn the_last_failure_and_a_permanent_one_fail_the_task() {
        let last = end_attempt(&facts(3, 3), failure(true), Timestamp(5), 0.5);
        assert_eq!((last.status, last.retry_count), (TaskStatus::Failed, 3));
        assert_eq!(last.reason, "failed after 4 attempts");
        let permanent = end_attempt(&facts(0, 3), failure(false), Timestamp(5), 0.5);
        assert_eq!(permanent.status, TaskStatus::Failed);
        assert_eq!(permanent.error.as_deref(), Some("boom"));
    }

    #[test]
    fn a_lease_that_ran_into_the_timeout_timed_out_and_an_earlier_one_expired() {
        let facts = facts(0, 0);
        let at_timeout = facts.started_at.saturating_add(facts.timeout);
        assert_eq!(end_of_expired_lease(&facts, at_timeout), AttemptEnd::TimedOut);
        assert_eq!(end_of_expired_lease(&facts, Timestamp(10)), AttemptEnd::LeaseExpired);
        let verdict = end_attempt(&facts, AttemptEnd::TimedOut, at_timeout, 0.0);
        assert_eq!(verdict.error.as_deref(), Some("timed out after 60.000s"));
        assert_eq!(verdict.outcome, AttemptOutcome::TimedOut);
    }

    #[test]
    fn a_lease_never_outlasts_the_attempts_timeout() {
        let started = Timestamp(0);
        let timeout = Duration::from_secs(10);
        let early = lease_deadline(Timestamp(1_000_000), Duration::from_secs(3), started, timeout);
        assert_eq!(early, Timestamp(4_000_000));
        let late = lease_deadline(Timestamp(9_000_000), Duration::from_secs(3), started, timeout);
        assert_eq!(late, Timestamp(10_000_000));
    }

    #[test]
    fn a_handed_back_task_is_ready_at_once_and_keeps_its_retries() {
        let verdict = end_attempt(
            &facts(3, 3),
            AttemptEnd::Released {
                why: "worker draining".into(),
            },
            Timestamp(5),
            0.5,
        );
        assert_eq!(verdict.status, TaskStatus::Pending);
        assert_eq!(verdict.outcome, AttemptOutcome::Released);
        assert_eq!(verdict.retry_count, 3, "no retry used, even the last");
        assert_eq!(verdict.error, None);
        assert!(verdict.reason.contains("worker draining"), "{}", verdict.reason);
    }
}
