//! Claiming: order, types and caps, promotion, concurrency.

use std::collections::HashMap;
use std::sync::Arc;

use crate::{at, claim, claim_request, draft, finish, stored, submit, submit_one, success};
use taskd::model::{TaskId, TaskPriority, TaskStatus};
use taskd::store::Store;

/// With the default weights (LOW 0, NORMAL 1m, HIGH 5m, CRITICAL 15m).
pub async fn claims_follow_priority_and_age_together(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for (seconds, priority) in [
        (0.0, TaskPriority::Low),
        (10.0, TaskPriority::Normal),
        (20.0, TaskPriority::High),
        (30.0, TaskPriority::Critical),
    ] {
        let mut request = draft("a");
        request.priority = priority;
        ids.push(submit_one(&store, request, at(seconds)).await.id);
    }
    let mut order = Vec::new();
    for _ in 0..4 {
        let claimed = claim(&store, "x", &["a"], 1, at(40.0)).await;
        order.push(claimed[0].task.id);
    }
    assert_eq!(
        order,
        vec![ids[3], ids[2], ids[1], ids[0]],
        "fresh tasks go by priority"
    );

    // A LOW task that waited longer than HIGH's head start goes first.
    let mut old_low = draft("b");
    old_low.priority = TaskPriority::Low;
    let old_low = submit_one(&store, old_low, at(100.0)).await;
    let mut new_high = draft("b");
    new_high.priority = TaskPriority::High;
    submit_one(&store, new_high, at(401.0)).await;
    let claimed = claim(&store, "x", &["b"], 1, at(402.0)).await;
    assert_eq!(claimed[0].task.id, old_low.id, "nothing starves");

    // Equal keys go first in, first out.
    let batch = submit(&store, (0..5).map(|_| draft("c")).collect(), at(500.0)).await;
    let claimed = claim(&store, "x", &["c"], 5, at(501.0)).await;
    let claimed: Vec<TaskId> = claimed.iter().map(|claimed| claimed.task.id).collect();
    let submitted: Vec<TaskId> = batch.iter().map(|task| task.id).collect();
    assert_eq!(claimed, submitted);
}

pub async fn claims_take_only_requested_types_within_each_cap(store: Arc<dyn Store>) {
    let mut drafts = Vec::new();
    for task_type in ["a", "b", "c"] {
        for _ in 0..3 {
            drafts.push(draft(task_type));
        }
    }
    submit(&store, drafts, at(0.0)).await;
    let mut request = claim_request("x", &[], 3, at(1.0));
    request.task_types = vec![("a".into(), 1), ("b".into(), 5)];
    let claimed = store.claim(request).await.unwrap().tasks;
    let mut by_type: HashMap<String, usize> = HashMap::new();
    for claimed in &claimed {
        assert_eq!(claimed.task.status, TaskStatus::Running);
        assert_eq!(claimed.lease.attempt, 1);
        assert_eq!(claimed.lease.executor.as_str(), "x");
        assert_eq!(claimed.task.attempts.len(), 1);
        assert_eq!(claimed.task.attempts[0].worker, "x");
        *by_type.entry(claimed.task.task_type.clone()).or_default() += 1;
    }
    assert_eq!(by_type, HashMap::from([("a".to_string(), 1), ("b".to_string(), 2)]));
    assert!(
        claim(&store, "x", &["d"], 10, at(2.0)).await.is_empty(),
        "no task of that type"
    );
}

pub async fn a_claim_promotes_due_tasks_first(store: Arc<dyn Store>) {
    let mut later = draft("a");
    later.run_at = Some(at(10.0));
    let later = submit_one(&store, later, at(0.0)).await;
    assert!(claim(&store, "x", &["a"], 1, at(5.0)).await.is_empty());
    assert_eq!(stored(&store, later.id).await.status, TaskStatus::Scheduled);
    let promoted = store.promote_due(at(6.0)).await.unwrap();
    assert!(promoted.transitions.is_empty());
    assert_eq!(promoted.next_due, Some(at(10.0)));

    let claimed = claim(&store, "x", &["a"], 1, at(10.5)).await;
    assert_eq!(claimed[0].task.id, later.id);
    assert_eq!(store.promote_due(at(11.0)).await.unwrap().next_due, None);
}

pub async fn eight_concurrent_claimers_take_each_task_exactly_once(store: Arc<dyn Store>) {
    const TASKS: usize = 10_000;
    for _ in 0..TASKS / 500 {
        submit(&store, (0..500).map(|_| draft("a")).collect(), at(0.0)).await;
    }
    let mut claimers = Vec::new();
    for claimer in 0..8 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let name = format!("claimer-{claimer}");
            let mut taken = Vec::new();
            loop {
                let claimed = claim(&store, &name, &["a"], 16, at(1.0)).await;
                if claimed.is_empty() {
                    return taken;
                }
                for claimed in claimed {
                    finish(&store, &claimed.lease, success(), at(2.0))
                        .await
                        .expect("the only lease on this attempt finishes");
                    taken.push((claimed.task.id, claimed.lease.attempt));
                }
            }
        }));
    }
    let mut taken = Vec::new();
    for claimer in claimers {
        taken.extend(claimer.await.expect("claimer"));
    }
    assert_eq!(taken.len(), TASKS, "every task claimed");
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), TASKS, "and none twice");
    assert!(taken.iter().all(|(_, attempt)| *attempt == 1));
    let counts = store.counts().await.unwrap();
    let completed: u64 = counts
        .iter()
        .filter(|count| count.status == TaskStatus::Completed)
        .map(|count| count.count)
        .sum();
    assert_eq!(completed, TASKS as u64);
}

/// Submits `drafts` and claims up to `limit` of type `task_type` for
/// executor `x`, in one commit.
async fn submit_and_claim(
    store: &Arc<dyn Store>,
    drafts: Vec<taskd::store::TaskDraft>,
    task_type: &str,
    limit: usize,
    now: taskd::model::Timestamp,
) -> (Vec<taskd::model::Task>, Vec<taskd::store::ClaimedTask>) {
    let mut drafts = drafts;
    for (position, draft) in drafts.iter_mut().enumerate() {
        draft.position = position;
    }
    let (submitted, claimed) = store
        .submit_and_claim(
            taskd::store::SubmitBatch { drafts, now },
            claim_request("x", &[task_type], limit, now),
        )
        .await
        .expect("submitted and claimed");
    let tasks = submitted
        .outcomes
        .into_iter()
        .map(|outcome| outcome.into_task())
        .collect();
    (tasks, claimed.tasks)
}

pub async fn a_submit_hands_the_new_task_to_a_claimer_in_its_own_commit(store: Arc<dyn Store>) {
    let mut events = store.subscribe();
    let (submitted, claimed) = submit_and_claim(&store, vec![draft("a")], "a", 1, at(0.0)).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].task.id, submitted[0].id);
    assert_eq!(claimed[0].task.status, TaskStatus::Running);
    assert_eq!(
        claimed[0].task.attempts.len(),
        1,
        "the started run is counted in that commit"
    );
    let now = stored(&store, submitted[0].id).await;
    assert_eq!(now.status, TaskStatus::Running, "durable as answered");
    assert!(
        claim(&store, "y", &["a"], 1, at(1.0)).await.is_empty(),
        "nobody else can take it"
    );
    // Watchers see it made, then leased.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = events.recv().await.expect("an event");
        seen.push((event.kind, event.task.as_ref().map(|task| task.status)));
    }
    assert_eq!(
        seen,
        vec![
            (taskd::model::EventKind::Submitted, Some(TaskStatus::Pending)),
            (taskd::model::EventKind::StatusChanged, Some(TaskStatus::Running)),
        ]
    );
    finish(&store, &claimed[0].lease, success(), at(2.0))
        .await
        .expect("finished");
}

pub async fn a_submit_that_hands_off_still_takes_the_best_ready_task_first(store: Arc<dyn Store>) {
    let mut urgent = draft("a");
    urgent.priority = TaskPriority::Critical;
    let waiting = submit_one(&store, urgent, at(0.0)).await;
    let mut routine = draft("a");
    routine.priority = TaskPriority::Low;
    let (submitted, claimed) = submit_and_claim(&store, vec![routine], "a", 1, at(1.0)).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].task.id, waiting.id,
        "the CRITICAL task that waited goes first"
    );
    assert_eq!(stored(&store, submitted[0].id).await.status, TaskStatus::Pending);
}
