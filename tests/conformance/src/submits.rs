//! Creating tasks, reading them back, idempotency, listing, counting,
//! purging.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::{at, claim, draft, failure, finish, on_draft, on_task, stored, submit, submit_one, success, try_submit};
use taskd::model::{Fingerprint, TaskFilter, TaskId, TaskPriority, TaskStatus};
use taskd::store::{ForgetTaskTypes, ListQuery, Store, StoreError, SubmitBatch};

pub async fn a_submitted_task_reads_back_as_it_was_answered(store: Arc<dyn Store>) {
    let mut first = draft("data_export");
    first.run_at = Some(at(60.0));
    first.priority = TaskPriority::High;
    first.idempotency_key = Some("export-1".into());
    first.fingerprint = Some(Fingerprint(7));
    let task = submit_one(&store, first.clone(), at(0.0)).await;
    assert_eq!(task.id, first.id);
    assert_eq!(task.status, TaskStatus::Scheduled);
    assert_eq!(task.params, first.params);
    assert_eq!(task.labels, first.labels);
    assert_eq!(task.retry_policy, first.retry_policy);
    assert_eq!(task.created_at, at(0.0));
    assert_eq!(task.status_reason, "scheduled for run_at");
    assert_eq!(stored(&store, task.id).await, task);
    assert_eq!(store.get(TaskId::new()).await.unwrap(), None);
}

pub async fn a_batch_with_an_unknown_dependency_is_refused_whole(store: Arc<dyn Store>) {
    let existing = submit_one(&store, draft("a"), at(0.0)).await;
    let missing = TaskId::new();
    let mut dependent = draft("b");
    dependent.dependencies = vec![
        on_task(existing.id, TaskStatus::Completed),
        on_task(missing, TaskStatus::Completed),
    ];
    let fine = draft("c");
    let fine_id = fine.id;
    let refused = try_submit(&store, vec![fine, dependent], at(1.0)).await;
    assert_eq!(
        refused,
        Err(StoreError::UnknownDependency {
            position: 1,
            dependency: 1,
            task_id: missing
        })
    );
    assert_eq!(store.get(fine_id).await.unwrap(), None, "nothing half-written");
    let total: u64 = store.counts().await.unwrap().iter().map(|count| count.count).sum();
    assert_eq!(total, 1);
}

pub async fn a_repeated_idempotency_key_returns_the_first_task(store: Arc<dyn Store>) {
    let mut first = draft("data_export");
    first.idempotency_key = Some("order-42".into());
    first.fingerprint = Some(Fingerprint(42));
    let original = submit_one(&store, first.clone(), at(0.0)).await;
    let mut again = first.clone();
    again.id = TaskId::new();
    let repeated = store
        .submit(SubmitBatch {
            drafts: vec![again],
            now: at(5.0),
        })
        .await
        .unwrap();
    assert!(matches!(repeated.outcomes[0], taskd::store::SubmitOutcome::Existing(_)));
    assert_eq!(repeated.outcomes[0].task(), &original);
    assert!(repeated.transitions.is_empty(), "nothing changed");
}

pub async fn a_key_reused_for_a_different_request_is_refused_naming_it(store: Arc<dyn Store>) {
    let mut first = draft("data_export");
    first.idempotency_key = Some("order-43".into());
    first.fingerprint = Some(Fingerprint(1));
    submit_one(&store, first.clone(), at(0.0)).await;
    let other = draft("unrelated");
    let other_id = other.id;
    let mut different = first.clone();
    different.id = TaskId::new();
    different.fingerprint = Some(Fingerprint(2));
    let refused = try_submit(&store, vec![other, different], at(1.0)).await;
    assert_eq!(
        refused,
        Err(StoreError::IdempotencyConflict {
            position: 1,
            key: "order-43".into()
        })
    );
    assert_eq!(store.get(other_id).await.unwrap(), None, "nothing half-written");
}

pub async fn one_hundred_concurrent_submits_of_one_key_make_one_task(store: Arc<dyn Store>) {
    let mut submits = Vec::new();
    for _ in 0..100 {
        let store = store.clone();
        submits.push(tokio::spawn(async move {
            let mut request = draft("data_export");
            request.idempotency_key = Some("once".into());
            request.fingerprint = Some(Fingerprint(99));
            submit_one(&store, request, at(0.0)).await.id
        }));
    }
    let mut ids = Vec::new();
    for submit in submits {
        ids.push(submit.await.expect("submit task"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every submit answered with the same task");
    let total: u64 = store.counts().await.unwrap().iter().map(|count| count.count).sum();
    assert_eq!(total, 1);
}

pub async fn list_filters_and_pages_newest_first(store: Arc<dyn Store>) {
    let mut drafts = Vec::new();
    for index in 0..6 {
        let mut task = draft(if index < 3 { "data_export" } else { "report_generation" });
        task.priority = if index == 5 {
            TaskPriority::Low
        } else {
            TaskPriority::High
        };
        task.labels.insert("index".into(), index.to_string());
        drafts.push(task);
    }
    let tasks = submit(&store, drafts, at(0.0)).await;
    // Tasks 0, 2 and 4 complete; 1 and 3 run.
    let mut claimed = claim(&store, "x", &["data_export"], 3, at(1.0)).await;
    claimed.extend(claim(&store, "x", &["report_generation"], 2, at(1.0)).await);
    for claimed in claimed {
        let index = tasks.iter().position(|task| task.id == claimed.task.id).unwrap();
        if index % 2 == 0 {
            finish(&store, &claimed.lease, success(), at(2.0)).await.unwrap();
        }
    }
    let ids = |found: Vec<taskd::model::Task>| found.into_iter().map(|task| task.id).collect::<Vec<_>>();
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

    let later = TaskFilter {
        created_after: Some(at(60.0)),
        ..TaskFilter::default()
    };
    assert!(store.list(&query(later, None, 100)).await.unwrap().is_empty());

    // Ended before a time: the three that completed at 2s, none still
    // running (they have no end), and none of them before they ended.
    let ended = |before: f64| TaskFilter {
        finished_before: Some(at(before)),
        ..TaskFilter::default()
    };
    assert_eq!(
        ids(store.list(&query(ended(2.5), None, 100)).await.unwrap()),
        vec![tasks[4].id, tasks[2].id, tasks[0].id]
    );
    assert!(store.list(&query(ended(2.0), None, 100)).await.unwrap().is_empty());
}

pub async fn list_finds_by_name_and_by_the_task_depended_on(store: Arc<dyn Store>) {
    let mut root = draft("data_export");
    root.name = "Nightly Export".into();
    let mut report = draft("report_generation");
    report.name = "weekly report".into();
    report.dependencies = vec![on_draft(0, TaskStatus::Completed)];
    let mut other = draft("report_generation");
    other.name = "export audit".into();
    let tasks = submit(&store, vec![root, report, other], at(0.0)).await;
    let found = |filter: TaskFilter| {
        let store = store.clone();
        async move {
            let query = ListQuery {
                filter,
                before_id: None,
                limit: 100,
            };
            store
                .list(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|task| task.id)
                .collect::<Vec<_>>()
        }
    };
    let export = TaskFilter {
        name_contains: Some("EXPORT".into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        found(export).await,
        vec![tasks[2].id, tasks[0].id],
        "any case, anywhere in the name"
    );
    let wildcard = TaskFilter {
        name_contains: Some("%".into()),
        ..TaskFilter::default()
    };
    assert!(found(wildcard).await.is_empty(), "what users type is not a pattern");
    let dependents = TaskFilter {
        depends_on: Some(tasks[0].id),
        ..TaskFilter::default()
    };
    assert_eq!(found(dependents).await, vec![tasks[1].id]);
    let none = TaskFilter {
        depends_on: Some(tasks[2].id),
        ..TaskFilter::default()
    };
    assert!(found(none).await.is_empty());
}

pub async fn counts_follow_every_transition(store: Arc<dyn Store>) {
    let tasks = submit(
        &store,
        vec![draft("a"), draft("a"), draft("b"), {
            let mut waiting = draft("b");
            waiting.dependencies = vec![on_draft(0, TaskStatus::Completed)];
            waiting
        }],
        at(0.0),
    )
    .await;
    let count = |counts: &[taskd::store::StatusCount], task_type: &str, status: TaskStatus| {
        counts
            .iter()
            .find(|count| count.task_type == task_type && count.status == status)
            .map_or(0, |count| count.count)
    };
    let counts = store.counts().await.unwrap();
    assert_eq!(count(&counts, "a", TaskStatus::Pending), 2);
    assert_eq!(count(&counts, "b", TaskStatus::Pending), 1);
    assert_eq!(count(&counts, "b", TaskStatus::Waiting), 1);

    let claimed = claim(&store, "x", &["a"], 2, at(1.0)).await;
    let counts = store.counts().await.unwrap();
    assert_eq!(count(&counts, "a", TaskStatus::Running), 2);
    assert_eq!(count(&counts, "a", TaskStatus::Pending), 0);

    let first = claimed.iter().find(|claimed| claimed.task.id == tasks[0].id).unwrap();
    let second = claimed.iter().find(|claimed| claimed.task.id == tasks[1].id).unwrap();
    finish(&store, &first.lease, success(), at(2.0)).await.unwrap();
    finish(
        &store,
        &second.lease,
        taskd::model::rules::attempts::AttemptEnd::Failed {
            error: "no".into(),
            retryable: false,
        },
        at(2.0),
    )
    .await
    .unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(count(&counts, "a", TaskStatus::Completed), 1);
    assert_eq!(count(&counts, "a", TaskStatus::Failed), 1);
    assert_eq!(count(&counts, "b", TaskStatus::Waiting), 0, "its dependency completed");
    assert_eq!(count(&counts, "b", TaskStatus::Pending), 2);
    let _ = failure;
}

pub async fn purge_deletes_only_old_finished_tasks(store: Arc<dyn Store>) {
    let long_ago = at(0.0);
    let old = submit(&store, vec![draft("a"), draft("a"), draft("a")], long_ago).await;
    for claimed in claim(&store, "x", &["a"], 2, long_ago).await {
        finish(&store, &claimed.lease, success(), long_ago).await.unwrap();
    }
    let recent_day = 30.0 * 86_400.0;
    let recent = submit_one(&store, draft("a"), at(recent_day)).await;
    let claimed = claim(&store, "x", &["a"], 2, at(recent_day)).await;
    assert_eq!(claimed.len(), 2, "the old pending task and the recent one");
    for claimed in claimed {
        finish(&store, &claimed.lease, success(), at(recent_day)).await.unwrap();
    }
    let cutoff = at(recent_day - 86_400.0);

    let first = store.purge_finished_before(None, cutoff, 1).await.unwrap();
    assert!(first.more, "one purged, one more old one left");
    let second = store.purge_finished_before(None, cutoff, 100).await.unwrap();
    assert!(!second.more);
    let purged: u64 = first.counts.iter().chain(&second.counts).map(|count| count.count).sum();
    assert_eq!(purged, 2);
    let still_there: Vec<TaskId> = vec![old[2].id, recent.id];
    for task in &old[..2] {
        assert_eq!(store.get(task.id).await.unwrap(), None);
    }
    for id in still_there {
        assert!(store.get(id).await.unwrap().is_some());
    }
    let total: u64 = store.counts().await.unwrap().iter().map(|count| count.count).sum();
    assert_eq!(total, 2, "counts follow the purge");
    assert!(!store.optimize().await.unwrap().is_empty());
    let _ = (json!(null), Duration::ZERO);
}

pub async fn declared_task_types_are_remembered_once_each(store: Arc<dyn Store>) {
    assert_eq!(store.declared_task_types().await.unwrap(), Vec::<String>::new());
    store
        .declare_task_types(vec!["b.type".into(), "a.type".into()], at(0.0), 10)
        .await
        .unwrap();
    store
        .declare_task_types(vec!["a.type".into(), "c.type".into()], at(1.0), 10)
        .await
        .unwrap();
    assert_eq!(
        store.declared_task_types().await.unwrap(),
        vec!["a.type".to_string(), "b.type".to_string(), "c.type".to_string()],
        "sorted, each once"
    );
}

pub async fn declared_task_types_are_bounded_and_forgotten_unless_renewed(store: Arc<dyn Store>) {
    store
        .declare_task_types(vec!["a".into(), "b".into(), "c".into()], at(0.0), 4)
        .await
        .unwrap();
    let refused = store
        .declare_task_types(vec!["a".into(), "d".into(), "e".into()], at(1.0), 4)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::LimitReached(message) if message.contains("max_declared_task_types (4)")),
        "{refused}"
    );
    assert_eq!(
        store.declared_task_types().await.unwrap(),
        ["a", "b", "c"],
        "a refused declaration renews nothing and adds nothing"
    );
    // Renewing what is declared passes the bound.
    store
        .declare_task_types(vec!["a".into(), "b".into(), "c".into()], at(10.0), 3)
        .await
        .unwrap();
    store.declare_task_types(vec!["d".into()], at(10.0), 4).await.unwrap();
    // "b" was renewed at 10, "c" is kept though older than the cutoff.
    store.declare_task_types(vec!["a".into()], at(20.0), 4).await.unwrap();
    let forgotten = store
        .forget_task_types(ForgetTaskTypes::DeclaredBefore {
            cutoff: at(15.0),
            keep: vec!["c".into()],
        })
        .await
        .unwrap();
    assert_eq!(forgotten, ["b", "d"]);
    assert_eq!(store.declared_task_types().await.unwrap(), ["a", "c"]);
    assert_eq!(
        store
            .forget_task_types(ForgetTaskTypes::Named("c".into()))
            .await
            .unwrap(),
        ["c"]
    );
    assert!(
        store
            .forget_task_types(ForgetTaskTypes::Named("c".into()))
            .await
            .unwrap()
            .is_empty(),
        "a type forgotten is not there to forget again"
    );
    assert_eq!(store.declared_task_types().await.unwrap(), ["a"]);
}

pub async fn purge_of_one_status_leaves_the_others(store: Arc<dyn Store>) {
    let done = submit_one(&store, draft("keep"), at(0.0)).await;
    let broken = submit_one(&store, draft("drop"), at(0.0)).await;
    for claimed in claim(&store, "x", &["keep", "drop"], 2, at(1.0)).await {
        let end = if claimed.task.id == broken.id {
            taskd::model::rules::attempts::AttemptEnd::Failed {
                error: "no".into(),
                retryable: false,
            }
        } else {
            success()
        };
        finish(&store, &claimed.lease, end, at(2.0)).await.unwrap();
    }
    let purged = store
        .purge_finished_before(Some(TaskStatus::Failed), at(100.0), 10)
        .await
        .unwrap();
    assert_eq!(
        purged
            .counts
            .iter()
            .map(|count| (count.status, count.count))
            .collect::<Vec<_>>(),
        vec![(TaskStatus::Failed, 1)]
    );
    assert_eq!(store.get(broken.id).await.unwrap(), None);
    assert!(
        store.get(done.id).await.unwrap().is_some(),
        "a completed task is not a failed one"
    );
}
