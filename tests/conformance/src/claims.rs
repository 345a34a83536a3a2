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
