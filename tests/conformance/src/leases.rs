//! Leases: renewal, expiry and rescue, timeouts, fencing, revocation.

use std::sync::Arc;
use std::time::Duration;

use crate::{LEASE, at, claim, draft, finish, stored, submit, submit_one, success};
use taskd::model::rules::attempts::AttemptEnd;
use taskd::model::{AttemptOutcome, ExecutorId, LeaseLost, Progress, TaskStatus};
use taskd::store::{RenewRequest, RescueScope, Store, StoreError};

fn lost(reason: LeaseLost) -> impl Fn(&StoreError) -> bool {
    move |error| matches!(error, StoreError::LeaseLost { reason: found, .. } if *found == reason)
}

pub async fn renewing_extends_a_lease_but_never_past_the_timeout(store: Arc<dyn Store>) {
    let mut request = draft("a");
    request.timeout = Duration::from_secs(60);
    submit_one(&store, request, at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    assert_eq!(claimed.lease.deadline, at(LEASE.as_secs_f64()));
    let renew = |seconds: f64| RenewRequest {
        leases: vec![claimed.lease.reference()],
        lease_duration: LEASE,
        now: at(seconds),
    };
    assert_eq!(store.renew(renew(20.0)).await.unwrap(), vec![Ok(at(50.0))]);
    assert_eq!(
        store.renew(renew(40.0)).await.unwrap(),
        vec![Ok(at(60.0))],
        "the timeout bounds the lease"
    );
    assert_eq!(
        store.renew(renew(60.0)).await.unwrap(),
        vec![Err(LeaseLost::Expired)],
        "a lease at its deadline is gone"
    );
}

pub async fn an_expired_lease_is_rescued_and_the_task_retried(store: Arc<dyn Store>) {
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    let early = store.rescue(RescueScope::Expired, at(29.0)).await.unwrap();
    assert!(early.tasks.is_empty(), "the lease still runs");

    let rescued = store.rescue(RescueScope::Expired, at(31.0)).await.unwrap();
    assert_eq!(rescued.tasks, vec![(task.id, AttemptOutcome::LeaseExpired)]);
    let retried = stored(&store, task.id).await;
    assert_eq!(retried.status, TaskStatus::Scheduled);
    assert_eq!(retried.retry_count, 1);
    assert_eq!(retried.run_at, Some(at(32.0)), "after the policy's first backoff");
    assert_eq!(retried.attempts.len(), 1);
    assert_eq!(retried.attempts[0].outcome, AttemptOutcome::LeaseExpired);
    assert_eq!(retried.attempts[0].finished_at, Some(at(31.0)));
    assert!(
        retried
            .error
            .as_deref()
            .is_some_and(|error| error.contains("lease expired"))
    );

    let again = claim(&store, "y", &["a"], 1, at(33.0)).await.remove(0);
    assert_eq!(again.lease.attempt, 2);
    assert_ne!(again.lease.token, claimed.lease.token);
}

pub async fn a_lease_cut_short_by_the_timeout_ends_timed_out(store: Arc<dyn Store>) {
    let mut request = draft("a");
    request.timeout = Duration::from_secs(10);
    request.max_retries = 0;
    let task = submit_one(&store, request, at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    assert_eq!(
        claimed.lease.deadline,
        at(10.0),
        "the timeout comes before the lease's end"
    );
    let rescued = store.rescue(RescueScope::Expired, at(10.0)).await.unwrap();
    assert_eq!(rescued.tasks, vec![(task.id, AttemptOutcome::TimedOut)]);
    let failed = stored(&store, task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("timed out after 10.000s"));
    assert_eq!(failed.completed_at, Some(at(10.0)));
}

pub async fn a_stale_finish_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let first = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    store.rescue(RescueScope::Expired, at(31.0)).await.unwrap();
    let second = claim(&store, "y", &["a"], 1, at(40.0)).await.remove(0);
    let before = stored(&store, task.id).await;

    let stale = finish(&store, &first.lease, success(), at(41.0)).await.unwrap_err();
    assert!(lost(LeaseLost::Superseded)(&stale), "{stale}");
    let renewed = store
        .renew(RenewRequest {
            leases: vec![first.lease.reference()],
            lease_duration: LEASE,
            now: at(41.0),
        })
        .await
        .unwrap();
    assert_eq!(renewed, vec![Err(LeaseLost::Superseded)]);
    assert_eq!(stored(&store, task.id).await, before, "nothing changed");

    let late = finish(&store, &second.lease, success(), at(40.0 + 31.0))
        .await
        .unwrap_err();
    assert!(lost(LeaseLost::Expired)(&late), "{late}");
    assert_eq!(stored(&store, task.id).await, before, "nothing changed");
}

pub async fn each_attempt_has_exactly_one_accepted_outcome(store: Arc<dyn Store>) {
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    let finished = finish(&store, &claimed.lease, success(), at(1.0)).await.unwrap();
    assert_eq!(finished.status, TaskStatus::Completed);
    let after = stored(&store, task.id).await;
    for end in [
        success(),
        AttemptEnd::Failed {
            error: "late".into(),
            retryable: true,
        },
    ] {
        let refused = finish(&store, &claimed.lease, end, at(2.0)).await.unwrap_err();
        assert!(lost(LeaseLost::Superseded)(&refused), "{refused}");
    }
    assert_eq!(stored(&store, task.id).await, after);
    assert_eq!(after.attempts.len(), 1);
    assert_eq!(after.attempts[0].outcome, AttemptOutcome::Succeeded);
    assert_eq!(after.result, Some(serde_json::json!({"ok": true})));
    assert_eq!(after.progress.map(|progress| progress.percent), Some(100.0));
}

pub async fn cancelling_a_running_task_revokes_its_lease(store: Arc<dyn Store>) {
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    let cancelled = store.cancel(task.id, "not needed".into(), at(5.0)).await.unwrap();
    assert_eq!(cancelled.task.status, TaskStatus::Cancelled);
    assert_eq!(cancelled.task.status_reason, "cancelled while running: not needed");
    assert_eq!(cancelled.task.attempts[0].outcome, AttemptOutcome::Cancelled);
    assert_eq!(
        cancelled.revoked,
        Some((ExecutorId::new("x"), claimed.lease.reference())),
        "the holder is named so it can be told"
    );
    let refused = finish(&store, &claimed.lease, success(), at(6.0)).await.unwrap_err();
    assert!(lost(LeaseLost::Cancelled)(&refused), "{refused}");
    assert_eq!(stored(&store, task.id).await, cancelled.task);

    let again = store.cancel(task.id, "twice".into(), at(7.0)).await.unwrap_err();
    assert_eq!(
        again,
        StoreError::AlreadyFinished {
            task_id: task.id,
            status: TaskStatus::Cancelled
        }
    );
    let unknown = taskd::model::TaskId::new();
    assert_eq!(
        store.cancel(unknown, "x".into(), at(7.0)).await.unwrap_err(),
        StoreError::NotFound(unknown)
    );
}

pub async fn progress_is_recorded_only_under_a_live_lease(store: Arc<dyn Store>) {
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    let progress = Progress {
        percent: 40.0,
        message: "page 4 of 10".into(),
    };
    store
        .record_progress(claimed.lease.reference(), progress.clone(), at(1.0))
        .await
        .unwrap();
    assert_eq!(stored(&store, task.id).await.progress, Some(progress.clone()));
    finish(&store, &claimed.lease, success(), at(2.0)).await.unwrap();
    let refused = store
        .record_progress(claimed.lease.reference(), progress, at(3.0))
        .await
        .unwrap_err();
    assert!(lost(LeaseLost::Superseded)(&refused), "{refused}");
}

pub async fn an_executor_that_is_gone_loses_every_lease_it_held(store: Arc<dyn Store>) {
    submit(&store, vec![draft("a"), draft("a"), draft("a")], at(0.0)).await;
    let gone: Vec<_> = claim(&store, "x", &["a"], 2, at(0.0)).await;
    let staying = claim(&store, "y", &["a"], 1, at(0.0)).await.remove(0);
    let rescued = store
        .rescue(
            RescueScope::HeldBy(ExecutorId::new("x"), "its process stopped".into()),
            at(1.0),
        )
        .await
        .unwrap();
    let mut ids: Vec<_> = rescued.tasks.iter().map(|(id, _)| *id).collect();
    ids.sort();
    let mut expected: Vec<_> = gone.iter().map(|claimed| claimed.task.id).collect();
    expected.sort();
    assert_eq!(ids, expected);
    for claimed in &gone {
        let task = stored(&store, claimed.task.id).await;
        assert_eq!(task.attempts[0].outcome, AttemptOutcome::Interrupted);
        assert_eq!(
            task.attempts[0].error.as_deref(),
            Some("interrupted: its process stopped")
        );
        assert_eq!(task.retry_count, 1);
    }
    assert_eq!(stored(&store, staying.task.id).await.status, TaskStatus::Running);
}

pub async fn a_handed_back_task_is_ready_at_once_and_keeps_its_retries(store: Arc<dyn Store>) {
    let mut request = draft("a");
    request.max_retries = 0;
    let task = submit_one(&store, request, at(0.0)).await;
    let first = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    let released = AttemptEnd::Released {
        why: "worker draining".into(),
    };
    let finished = finish(&store, &first.lease, released, at(2.0)).await.unwrap();
    assert_eq!(finished.status, TaskStatus::Pending);
    let back = stored(&store, task.id).await;
    assert_eq!(back.retry_count, 0, "handing back uses no retry");
    assert_eq!(back.attempts[0].outcome, AttemptOutcome::Released);
    assert_eq!(back.attempts[0].error, None);
    assert!(back.status_reason.contains("worker draining"), "{}", back.status_reason);

    let refused = finish(&store, &first.lease, success(), at(3.0)).await.unwrap_err();
    assert!(lost(LeaseLost::Superseded)(&refused), "{refused}");
    let second = claim(&store, "y", &["a"], 1, at(3.0)).await.remove(0);
    assert_eq!(second.lease.attempt, 2, "claimable again at once, by anyone");
    finish(&store, &second.lease, success(), at(4.0)).await.unwrap();
    assert_eq!(stored(&store, task.id).await.status, TaskStatus::Completed);
}
