//! The executable contract of [`Store`]: every backend runs these checks.
//!
//! A backend's test file calls [`store_conformance_tests!`](crate::store_conformance_tests)
//! with an async expression that yields a fresh, empty store as
//! `Arc<dyn Store>`; the macro expands to one `#[tokio::test]` per check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::engine::model::{
    Attempt, AttemptOutcome, MachineState, Progress, RetryPolicy, Task, TaskDependency, TaskFilter, TaskId,
    TaskPriority, TaskStatus, Timestamp,
};
use crate::store::{ListQuery, Store, StoreError, WriteOp};

/// A task with every field set, so round trips check every column.
pub fn sample_task(task_type: &str, status: TaskStatus) -> Task {
    let now = Timestamp::now();
    let mut params = serde_json::Map::new();
    params.insert("document_id".into(), json!("123"));
    params.insert("nested".into(), json!({"list": [1, 2.5, null, true]}));
    Task {
        id: TaskId::new(),
        name: "sample".into(),
        task_type: task_type.into(),
        params,
        priority: TaskPriority::High,
        status,
        dependencies: vec![TaskDependency {
            task_id: TaskId::new(),
            required_status: TaskStatus::Failed,
        }],
        max_retries: 3,
        retry_count: 1,
        timeout: Duration::from_millis(1500),
        run_at: Some(now.saturating_add(Duration::from_secs(60))),
        created_at: now,
        started_at: Some(now),
        completed_at: status.is_terminal().then_some(now),
        progress: Some(Progress {
            percent: 42.5,
            message: "halfway".into(),
        }),
        result: Some(json!({"rows": 7})),
        error: Some("boom".into()),
        labels: BTreeMap::from([("team".to_string(), "search".to_string())]),
        idempotency_key: None,
        attempts: vec![Attempt {
            number: 1,
            started_at: now,
            finished_at: Some(now),
            outcome: AttemptOutcome::Failed,
            error: Some("boom".into()),
            worker: "local".into(),
            started_under: Some(MachineState {
                cpu_percent: 93.5,
                memory_percent: 41.0,
                io_wait_percent: None,
                effective_limit: 3,
                throttled: true,
            }),
            finished_under: None,
        }],
        retry_policy: RetryPolicy::default(),
        status_reason: "because".into(),
        updated_at: now,
    }
}

async fn insert(store: &Arc<dyn Store>, tasks: &[&Task]) {
    store
        .write(
            tasks
                .iter()
                .map(|task| WriteOp::Insert(Arc::new((*task).clone())))
                .collect(),
        )
        .await
        .expect("insert is durable");
}

pub async fn an_inserted_task_reads_back_unchanged(store: Arc<dyn Store>) {
    let task = sample_task("data_export", TaskStatus::Pending);
    insert(&store, &[&task]).await;
    assert_eq!(store.get(task.id).await.unwrap(), Some(task));
    assert_eq!(store.get(TaskId::new()).await.unwrap(), None);
}

pub async fn a_write_is_durable_when_its_ticket_resolves(store: Arc<dyn Store>) {
    let task = sample_task("data_export", TaskStatus::Pending);
    let ticket = store.write(vec![WriteOp::Insert(Arc::new(task))]);
    let sequence = ticket.sequence();
    ticket.await.unwrap();
    assert!(store.durable_sequence() >= sequence);
}

pub async fn an_update_replaces_the_mutable_state_and_later_writes_win(store: Arc<dyn Store>) {
    let task = sample_task("data_export", TaskStatus::Pending);
    insert(&store, &[&task]).await;
    let mut running = task.clone();
    running.status = TaskStatus::Running;
    let mut done = running.clone();
    done.status = TaskStatus::Completed;
    done.result = Some(json!("ok"));
    done.completed_at = Some(Timestamp::now());
    done.retry_count = 2;
    store.write(vec![WriteOp::Update(Arc::new(running))]);
    store.write(vec![WriteOp::Update(Arc::new(done.clone()))]);
    store.flush().await.unwrap();
    assert_eq!(store.get(task.id).await.unwrap(), Some(done));
}

pub async fn a_write_with_a_duplicate_fails_whole_and_alone(store: Arc<dyn Store>) {
    let existing = sample_task("data_export", TaskStatus::Pending);
    insert(&store, &[&existing]).await;
    let fresh = sample_task("data_export", TaskStatus::Pending);
    let unrelated = sample_task("data_export", TaskStatus::Pending);
    let failing = store.write(vec![
        WriteOp::Insert(Arc::new(fresh.clone())),
        WriteOp::Insert(Arc::new(existing.clone())),
    ]);
    let passing = store.write(vec![WriteOp::Insert(Arc::new(unrelated.clone()))]);
    assert!(matches!(failing.await, Err(StoreError::Duplicate(_))));
    passing.await.unwrap();
    assert_eq!(store.get(fresh.id).await.unwrap(), None, "nothing half-written");
    assert!(store.get(unrelated.id).await.unwrap().is_some());
}

pub async fn tasks_are_found_by_idempotency_key(store: Arc<dyn Store>) {
    let mut task = sample_task("data_export", TaskStatus::Pending);
    task.idempotency_key = Some("order-42".into());
    insert(&store, &[&task]).await;
    let found = store.find_by_idempotency_key("order-42").await.unwrap();
    assert_eq!(found.map(|task| task.id), Some(task.id));
    assert_eq!(store.find_by_idempotency_key("other").await.unwrap(), None);
}

pub async fn list_filters_and_pages_newest_first(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for index in 0..6 {
        let status = if index % 2 == 0 {
            TaskStatus::Completed
        } else {
            TaskStatus::Pending
        };
        let mut task = sample_task(if index < 3 { "data_export" } else { "report_generation" }, status);
        task.priority = if index == 5 {
            TaskPriority::Low
        } else {
            TaskPriority::High
        };
        task.labels.insert("index".into(), index.to_string());
        tasks.push(task);
    }
    insert(&store, &tasks.iter().collect::<Vec<_>>()).await;
    let ids = |found: Vec<Task>| found.into_iter().map(|task| task.id).collect::<Vec<_>>();
    let query = |filter: TaskFilter, before_id: Option<TaskId>, limit: usize| ListQuery {
        filter,
        before_id,
        limit,
    };

    let all = ids(store.list(&query(TaskFilter::default(), None, 100)).await.unwrap());
    let newest_first: Vec<TaskId> = tasks.iter().rev().map(|task| task.id).collect();
    assert_eq!(all, newest_first);

    let page = ids(store
        .list(&query(TaskFilter::default(), Some(tasks[4].id), 2))
        .await
        .unwrap());
    assert_eq!(page, vec![tasks[3].id, tasks[2].id]);

    let completed_exports = TaskFilter {
        statuses: vec![TaskStatus::Completed],
        task_types: vec!["data_export".into()],
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(store.list(&query(completed_exports, None, 100)).await.unwrap()),
        vec![tasks[2].id, tasks[0].id]
    );

    let low = TaskFilter {
        priorities: vec![TaskPriority::Low],
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(store.list(&query(low, None, 100)).await.unwrap()),
        vec![tasks[5].id]
    );

    let labelled = TaskFilter {
        labels: BTreeMap::from([
            ("index".to_string(), "4".to_string()),
            ("team".to_string(), "search".to_string()),
        ]),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(store.list(&query(labelled, None, 100)).await.unwrap()),
        vec![tasks[4].id]
    );

    let future = TaskFilter {
        created_after: Some(Timestamp::now().saturating_add(Duration::from_secs(60))),
        ..TaskFilter::default()
    };
    assert!(store.list(&query(future, None, 100)).await.unwrap().is_empty());
}

pub async fn recovery_loads_only_unfinished_tasks(store: Arc<dyn Store>) {
    let pending = sample_task("data_export", TaskStatus::Pending);
    let running = sample_task("data_export", TaskStatus::Running);
    let waiting = sample_task("data_export", TaskStatus::Waiting);
    let done = sample_task("data_export", TaskStatus::Completed);
    let failed = sample_task("data_export", TaskStatus::Failed);
    insert(&store, &[&pending, &running, &waiting, &done, &failed]).await;
    let mut loaded: Vec<TaskId> = store
        .load_unfinished()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    loaded.sort();
    let mut expected = vec![pending.id, running.id, waiting.id];
    expected.sort();
    assert_eq!(loaded, expected);

    let statuses = store.statuses(&[done.id, failed.id, TaskId::new()]).await.unwrap();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[&done.id], TaskStatus::Completed);
    assert_eq!(statuses[&failed.id], TaskStatus::Failed);
}

pub async fn counts_group_by_type_and_status(store: Arc<dyn Store>) {
    let a = sample_task("data_export", TaskStatus::Completed);
    let b = sample_task("data_export", TaskStatus::Completed);
    let c = sample_task("report_generation", TaskStatus::Pending);
    insert(&store, &[&a, &b, &c]).await;
    let mut counts = store.count_by_type_and_status().await.unwrap();
    counts.sort_by(|x, y| x.task_type.cmp(&y.task_type));
    assert_eq!(counts.len(), 2);
    assert_eq!(
        (counts[0].task_type.as_str(), counts[0].status, counts[0].count),
        ("data_export", TaskStatus::Completed, 2)
    );
    assert_eq!(
        (counts[1].task_type.as_str(), counts[1].status, counts[1].count),
        ("report_generation", TaskStatus::Pending, 1)
    );
}

pub async fn purge_deletes_only_old_finished_tasks(store: Arc<dyn Store>) {
    let long_ago = Timestamp::now().saturating_sub(Duration::from_secs(30 * 86_400));
    let mut old_done = sample_task("data_export", TaskStatus::Completed);
    old_done.completed_at = Some(long_ago);
    let mut old_failed = sample_task("data_export", TaskStatus::Failed);
    old_failed.completed_at = Some(long_ago);
    let recent_done = sample_task("data_export", TaskStatus::Completed);
    let mut old_but_pending = sample_task("data_export", TaskStatus::Pending);
    old_but_pending.created_at = long_ago;
    insert(&store, &[&old_done, &old_failed, &recent_done, &old_but_pending]).await;

    let cutoff = Timestamp::now().saturating_sub(Duration::from_secs(86_400));
    let purged = store.purge_finished_before(cutoff).await.unwrap();
    let total: u64 = purged.iter().map(|count| count.count).sum();
    assert_eq!(total, 2);
    assert_eq!(store.get(old_done.id).await.unwrap(), None);
    assert_eq!(store.get(old_failed.id).await.unwrap(), None);
    assert!(store.get(recent_done.id).await.unwrap().is_some());
    assert!(store.get(old_but_pending.id).await.unwrap().is_some());
    assert!(!store.optimize().await.unwrap().is_empty());
}

/// Expands to one test per conformance check for the store made by
/// `$make` (an async expression yielding `Arc<dyn Store>`).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@tests $make;
            an_inserted_task_reads_back_unchanged,
            a_write_is_durable_when_its_ticket_resolves,
            an_update_replaces_the_mutable_state_and_later_writes_win,
            a_write_with_a_duplicate_fails_whole_and_alone,
            tasks_are_found_by_idempotency_key,
            list_filters_and_pages_newest_first,
            recovery_loads_only_unfinished_tasks,
            counts_group_by_type_and_status,
            purge_deletes_only_old_finished_tasks,
        );
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = $make;
                $crate::store::conformance::$check(store).await;
            }
        )*
    };
}
