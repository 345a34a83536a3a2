//! Properties of the rules over arbitrary inputs: whatever happens to a
//! task, the rules never step outside the status machine.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use crate::model::rules::attempts::{AttemptEnd, AttemptFacts, end_attempt, end_of_expired_lease, lease_deadline};
use crate::model::rules::dependencies::{DependencyState, dependency_state};
use crate::model::rules::placement::{DependencyAtPlacement, Placement, place_new};
use crate::model::rules::{may_enter, may_follow};
use crate::model::{RetryPolicy, SchedulingWeights, TaskId, TaskPriority, TaskStatus, Timestamp};

fn status() -> impl Strategy<Value = TaskStatus> {
    prop::sample::select(TaskStatus::ALL.to_vec())
}

fn terminal() -> impl Strategy<Value = TaskStatus> {
    prop::sample::select(vec![TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Cancelled])
}

fn facts() -> impl Strategy<Value = AttemptFacts> {
    (
        0_u32..10,
        0_u32..10,
        0_u64..5_000,
        1.0_f64..4.0,
        0_u64..60_000,
        0.0_f64..1.0,
        1_u64..100_000,
    )
        .prop_map(|(retries_used, extra, initial, multiplier, max, jitter, timeout)| {
            let max_retries = retries_used + extra;
            AttemptFacts {
                attempt: retries_used + 1,
                retry_count: retries_used,
                max_retries,
                retry_policy: RetryPolicy {
                    initial_backoff: Duration::from_millis(initial),
                    multiplier,
                    max_backoff: Duration::from_millis(max),
                    jitter,
                },
                timeout: Duration::from_millis(timeout),
                started_at: Timestamp(1_000_000),
            }
        })
}

fn end() -> impl Strategy<Value = AttemptEnd> {
    prop_oneof![
        Just(AttemptEnd::Succeeded(json!({"ok": true}))),
        any::<bool>().prop_map(|retryable| AttemptEnd::Failed {
            error: "boom".into(),
            retryable
        }),
        Just(AttemptEnd::TimedOut),
        Just(AttemptEnd::LeaseExpired),
        Just(AttemptEnd::Interrupted { why: "gone".into() }),
        Just(AttemptEnd::Released { why: "draining".into() }),
    ]
}

proptest! {
    #[test]
    fn an_attempts_end_leads_only_where_the_machine_allows(
        facts in facts(),
        end in end(),
        later in 0_i64..1_000_000_000,
        unit in 0.0_f64..1.0,
    ) {
        let now = Timestamp(facts.started_at.0 + later);
        let succeeded = matches!(end, AttemptEnd::Succeeded(_));
        let released = matches!(end, AttemptEnd::Released { .. });
        let retryable = !matches!(end, AttemptEnd::Failed { retryable: false, .. });
        let verdict = end_attempt(&facts, end, now, unit);
        prop_assert!(may_follow(TaskStatus::Running, verdict.status));
        prop_assert_eq!(verdict.status == TaskStatus::Completed, succeeded);
        prop_assert!(verdict.retry_count <= facts.max_retries);
        let again = matches!(verdict.status, TaskStatus::Scheduled | TaskStatus::Pending);
        if released {
            // Handed back: ready again at once, no retry used.
            prop_assert_eq!(verdict.status, TaskStatus::Pending);
            prop_assert_eq!(verdict.retry_count, facts.retry_count);
            prop_assert!(verdict.error.is_none());
            return Ok(());
        }
        prop_assert_eq!(again, !succeeded && retryable && facts.retry_count < facts.max_retries);
        prop_assert_eq!(verdict.retry_count, facts.retry_count + u32::from(again));
        prop_assert_eq!(verdict.completed_at.is_some(), verdict.status.is_terminal());
        prop_assert_eq!(verdict.error.is_some(), !succeeded);
        if let Some(due) = verdict.retry.as_ref().and_then(Placement::due) {
            let delay = due.duration_since(now);
            let ceiling = facts.retry_policy.max_backoff.mul_f64(1.0 + facts.retry_policy.jitter);
            prop_assert!(due > now);
            prop_assert!(delay <= ceiling + Duration::from_micros(1), "{delay:?} > {ceiling:?}");
        }
    }

    #[test]
    fn an_expired_lease_timed_out_exactly_when_its_time_ran_out(facts in facts(), later in 0_i64..200_000_000) {
        let now = Timestamp(facts.started_at.0 + later);
        let timed_out = now >= facts.started_at.saturating_add(facts.timeout);
        prop_assert_eq!(end_of_expired_lease(&facts, now) == AttemptEnd::TimedOut, timed_out);
    }

    #[test]
    fn a_lease_never_outlasts_its_duration_or_the_attempts_time(
        started in 0_i64..1_000_000,
        elapsed in 0_i64..100_000_000,
        lease in 1_u64..60_000,
        timeout in 1_u64..600_000,
    ) {
        let (started, now) = (Timestamp(started), Timestamp(started + elapsed));
        let (lease, timeout) = (Duration::from_millis(lease), Duration::from_millis(timeout));
        let deadline = lease_deadline(now, lease, started, timeout);
        prop_assert!(deadline <= now.saturating_add(lease));
        prop_assert!(deadline <= started.saturating_add(timeout));
        prop_assert!(deadline == now.saturating_add(lease) || deadline == started.saturating_add(timeout));
    }

    #[test]
    fn a_new_task_enters_where_its_dependencies_put_it(
        dependencies in prop::collection::vec((status(), terminal()), 0..6),
        run_at in prop::option::of(0_i64..2_000_000),
    ) {
        let now = Timestamp(1_000_000);
        let dependencies: Vec<DependencyAtPlacement> = dependencies
            .into_iter()
            .map(|(status, required_status)| DependencyAtPlacement { task_id: TaskId::new(), status, required_status })
            .collect();
        let placement = place_new(&dependencies, run_at.map(Timestamp), now);
        prop_assert!(may_enter(placement.status()));
        let states: Vec<DependencyState> = dependencies
            .iter()
            .map(|dependency| dependency_state(dependency.task_id, dependency.status, dependency.required_status))
            .collect();
        let broken = states.iter().any(|state| matches!(state, DependencyState::Broken { .. }));
        let unmet = states.iter().filter(|state| **state == DependencyState::Unmet).count();
        match placement {
            Placement::Cancelled { .. } => prop_assert!(broken),
            Placement::Waiting { unmet: counted, total } => {
                prop_assert!(!broken);
                prop_assert_eq!(counted, unmet);
                prop_assert_eq!(total, dependencies.len());
            }
            Placement::Scheduled { at } => prop_assert!(!broken && unmet == 0 && at > now),
            Placement::Pending { ready_since } => prop_assert!(!broken && unmet == 0 && ready_since <= now),
        }
    }

    #[test]
    fn claim_order_rises_with_priority_and_with_waiting(
        at in 0_i64..1_000_000_000,
        waited in 1_i64..1_000_000_000,
    ) {
        let weights = SchedulingWeights::default();
        let priorities = TaskPriority::ALL;
        for pair in priorities.windows(2) {
            prop_assert!(weights.queue_key(pair[1], Timestamp(at)) <= weights.queue_key(pair[0], Timestamp(at)));
        }
        for priority in priorities {
            prop_assert!(weights.queue_key(priority, Timestamp(at)) < weights.queue_key(priority, Timestamp(at + waited)));
        }
    }
}
