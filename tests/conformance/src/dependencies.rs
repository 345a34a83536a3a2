//! The graph: release and cascade in the same step as the end that causes
//! them; retries.

use std::sync::Arc;

use crate::{at, claim, draft, failure, finish, on_draft, on_task, stored, submit, submit_one, success};
use taskd::model::TaskStatus;
use taskd::model::rules::attempts::AttemptEnd;
use taskd::store::Store;

pub async fn a_finish_releases_and_cancels_dependents_in_the_same_step(store: Arc<dyn Store>) {
    let root = submit_one(&store, draft("root"), at(0.0)).await;
    let mut on_success = draft("next");
    on_success.dependencies = vec![on_task(root.id, TaskStatus::Completed)];
    let mut on_failure = draft("cleanup");
    on_failure.dependencies = vec![on_task(root.id, TaskStatus::Failed)];
    let placed = submit(&store, vec![on_success, on_failure], at(0.0)).await;
    assert!(placed.iter().all(|task| task.status == TaskStatus::Waiting));

    let claimed = claim(&store, "x", &["root"], 1, at(1.0)).await.remove(0);
    let finished = finish(&store, &claimed.lease, success(), at(2.0)).await.unwrap();
    let changes: Vec<_> = finished
        .transitions
        .iter()
        .map(|transition| (transition.task_id, transition.from, transition.to))
        .collect();
    assert_eq!(
        changes,
        vec![
            (root.id, Some(TaskStatus::Running), TaskStatus::Completed),
            (placed[0].id, Some(TaskStatus::Waiting), TaskStatus::Pending),
            (placed[1].id, Some(TaskStatus::Waiting), TaskStatus::Cancelled),
        ]
    );
    assert_eq!(stored(&store, placed[0].id).await.status, TaskStatus::Pending);
    let cancelled = stored(&store, placed[1].id).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(
        cancelled.status_reason,
        format!("cancelled: dependency {} ended COMPLETED, required FAILED", root.id)
    );
    assert_eq!(cancelled.completed_at, Some(at(2.0)));
}

pub async fn a_cascade_reaches_every_level_below(store: Arc<dyn Store>) {
    let root = submit_one(&store, draft("a"), at(0.0)).await;
    let mut b = draft("b");
    b.dependencies = vec![on_task(root.id, TaskStatus::Completed)];
    let mut c = draft("c");
    c.dependencies = vec![on_draft(0, TaskStatus::Completed)];
    let mut d = draft("d");
    d.dependencies = vec![on_draft(1, TaskStatus::Completed)];
    let mut after_cancel = draft("e");
    after_cancel.dependencies = vec![on_task(root.id, TaskStatus::Cancelled)];
    let chain = submit(&store, vec![b, c, d, after_cancel], at(0.0)).await;

    let cancelled = store.cancel(root.id, "stop".into(), at(1.0)).await.unwrap();
    assert_eq!(
        cancelled.transitions.len(),
        5,
        "the root, three levels below, and the one that wanted it cancelled"
    );
    for task in &chain[..3] {
        assert_eq!(
            stored(&store, task.id).await.status,
            TaskStatus::Cancelled,
            "{}",
            task.name
        );
    }
    assert_eq!(stored(&store, chain[3].id).await.status, TaskStatus::Pending);
    let deepest = stored(&store, chain[2].id).await;
    assert!(
        deepest.status_reason.contains(&chain[1].id.to_string()),
        "{}",
        deepest.status_reason
    );
}

pub async fn members_of_a_batch_depend_on_each_other(store: Arc<dyn Store>) {
    let mut b = draft("b");
    b.dependencies = vec![on_draft(0, TaskStatus::Completed)];
    let mut c = draft("c");
    c.dependencies = vec![on_draft(0, TaskStatus::Completed)];
    let mut d = draft("d");
    d.dependencies = vec![on_draft(1, TaskStatus::Completed), on_draft(2, TaskStatus::Completed)];
    let tasks = submit(&store, vec![draft("a"), b, c, d], at(0.0)).await;
    let statuses: Vec<_> = tasks.iter().map(|task| task.status).collect();
    assert_eq!(
        statuses,
        vec![
            TaskStatus::Pending,
            TaskStatus::Waiting,
            TaskStatus::Waiting,
            TaskStatus::Waiting
        ]
    );
    assert_eq!(tasks[3].status_reason, "waiting for 2 of 2 dependencies");
    assert_eq!(tasks[3].dependencies.len(), 2);
    assert_eq!(tasks[3].dependencies[0].task_id, tasks[1].id);

    let a = claim(&store, "x", &["a"], 1, at(1.0)).await.remove(0);
    finish(&store, &a.lease, success(), at(2.0)).await.unwrap();
    let b = claim(&store, "x", &["b"], 1, at(3.0)).await.remove(0);
    finish(&store, &b.lease, success(), at(4.0)).await.unwrap();
    let d = stored(&store, tasks[3].id).await;
    assert_eq!(d.status, TaskStatus::Waiting);
    assert_eq!(d.status_reason, "waiting for 1 of 2 dependencies");
    assert!(
        claim(&store, "x", &["d"], 1, at(5.0)).await.is_empty(),
        "not before its requirement"
    );
    let c = claim(&store, "x", &["c"], 1, at(5.0)).await.remove(0);
    finish(&store, &c.lease, success(), at(6.0)).await.unwrap();
    assert_eq!(claim(&store, "x", &["d"], 1, at(7.0)).await.len(), 1);
}

pub async fn a_retry_waits_its_backoff_then_runs_again(store: Arc<dyn Store>) {
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let first = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    let finished = finish(&store, &first.lease, failure("boom"), at(1.0)).await.unwrap();
    assert_eq!(finished.status, TaskStatus::Scheduled);
    let waiting = stored(&store, task.id).await;
    assert_eq!(waiting.retry_count, 1);
    assert_eq!(waiting.run_at, Some(at(2.0)));
    assert_eq!(waiting.status_reason, "retry 1 of 3 in 1.000s after: boom");
    assert_eq!(waiting.error.as_deref(), Some("boom"));
    assert_eq!(waiting.attempts[0].error.as_deref(), Some("boom"));

    assert!(
        claim(&store, "x", &["a"], 1, at(1.5)).await.is_empty(),
        "still backing off"
    );
    let second = claim(&store, "x", &["a"], 1, at(2.5)).await.remove(0);
    assert_eq!(second.lease.attempt, 2);
    finish(&store, &second.lease, failure("boom again"), at(3.0))
        .await
        .unwrap();
    assert_eq!(
        stored(&store, task.id).await.run_at,
        Some(at(5.0)),
        "the backoff doubled"
    );
    let third = claim(&store, "x", &["a"], 1, at(5.0)).await.remove(0);
    finish(&store, &third.lease, success(), at(6.0)).await.unwrap();
    let done = stored(&store, task.id).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.error, None);
    let errors: Vec<_> = done.attempts.iter().map(|attempt| attempt.error.clone()).collect();
    assert_eq!(errors, vec![Some("boom".into()), Some("boom again".into()), None]);
}

pub async fn a_permanent_failure_fails_at_once(store: Arc<dyn Store>) {
    let task = submit_one(&store, draft("a"), at(0.0)).await;
    let claimed = claim(&store, "x", &["a"], 1, at(0.0)).await.remove(0);
    let end = AttemptEnd::Failed {
        error: "params.format: unknown".into(),
        retryable: false,
    };
    assert_eq!(
        finish(&store, &claimed.lease, end, at(1.0)).await.unwrap().status,
        TaskStatus::Failed
    );
    let failed = stored(&store, task.id).await;
    assert_eq!(failed.retry_count, 0);
    assert_eq!(failed.attempts.len(), 1);
}
