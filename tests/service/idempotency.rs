use futures::future::join_all;
use serde_json::json;
use taskd_client::{ListTasksRequest, NewTask, TaskStatus, labels};

use crate::support::TestServer;

#[tokio::test]
async fn concurrent_submits_with_the_same_key_create_one_task() {
    let server = TestServer::start().await;
    let batch_label = uuid::Uuid::now_v7().to_string();
    let submits = (0..16).map(|index| {
        let client = server.client.clone();
        // The same request each time; only what the key does not cover
        // (the name) differs.
        let task = NewTask::new("diag.echo")
            .name(format!("submitter {index}"))
            .params(json!({"date": "2024-06-01"}))
            .label("batch", &batch_label)
            .idempotency_key("nightly-import-2024-06-01");
        tokio::spawn(async move { client.submit(task).await })
    });
    let ids: Vec<String> = join_all(submits)
        .await
        .into_iter()
        .map(|joined| joined.expect("submit task did not panic").expect("submit succeeded").id)
        .collect();
    assert_eq!(ids.len(), 16);
    assert!(ids.iter().all(|id| *id == ids[0]), "one id for every submit: {ids:?}");

    let listed = server
        .client
        .list_all(ListTasksRequest {
            labels: labels([("batch", batch_label.as_str())]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "exactly one task was created");
    assert_eq!(listed[0].id, ids[0]);
    assert_eq!(listed[0].idempotency_key, "nightly-import-2024-06-01");
    assert_eq!(server.client.stats().await.unwrap().submitted_since_start, 1);
}

#[tokio::test]
async fn a_repeated_key_after_the_task_completed_returns_the_original_task() {
    let server = TestServer::start().await;
    let original = server
        .client
        .submit(
            NewTask::new("diag.echo")
                .params(json!({"run": "first"}))
                .idempotency_key("report-42"),
        )
        .await
        .unwrap();
    let finished = server.wait(&original.id).await;
    assert_eq!(finished.status(), TaskStatus::Completed);

    let repeated = server
        .client
        .submit(
            NewTask::new("diag.echo")
                .params(json!({"run": "first"}))
                .idempotency_key("report-42"),
        )
        .await
        .unwrap();
    assert_eq!(repeated.id, original.id);
    assert_eq!(repeated.status(), TaskStatus::Completed);
    assert_eq!(repeated.attempts.len(), 1, "the original task did not run again");
    assert_eq!(server.client.stats().await.unwrap().counts.unwrap().total, 1);
}

#[tokio::test]
async fn a_key_reused_for_a_different_request_is_refused_naming_the_key() {
    let server = TestServer::start().await;
    let original = server
        .client
        .submit(
            NewTask::new("data_export")
                .params(json!({"format": "csv"}))
                .run_at(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
                .idempotency_key("export-7"),
        )
        .await
        .unwrap();
    for different in [
        NewTask::new("data_export").params(json!({"format": "jsonl"})),
        NewTask::new("report_generation").params(json!({"since": "1h"})),
        NewTask::new("data_export")
            .params(json!({"format": "csv"}))
            .depends_on(&original.id),
    ] {
        let error = server
            .client
            .submit(different.idempotency_key("export-7"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(tonic::Code::AlreadyExists), "{error}");
        assert!(error.to_string().contains("\"export-7\""), "names the key: {error}");
        assert!(
            error.to_string().contains("idempotency_key"),
            "names the field: {error}"
        );
    }
    let in_a_batch = server
        .client
        .submit_batch([
            NewTask::new("diag.echo"),
            NewTask::new("data_export")
                .params(json!({"format": "xml"}))
                .idempotency_key("export-7"),
        ])
        .await
        .unwrap_err();
    assert_eq!(in_a_batch.code(), Some(tonic::Code::AlreadyExists));
    assert!(
        in_a_batch.to_string().contains("tasks[1].idempotency_key"),
        "{in_a_batch}"
    );
    assert_eq!(
        server.client.stats().await.unwrap().counts.unwrap().total,
        1,
        "nothing of the refused submits was written"
    );
}

#[tokio::test]
async fn a_batch_member_that_repeats_a_key_stands_for_the_original_task_and_its_dependents_wait_for_it() {
    let server = TestServer::start().await;
    let original = server
        .client
        .submit(NewTask::new("test.gate").idempotency_key("shared-step"))
        .await
        .unwrap();
    server.wait_for_status(&original.id, TaskStatus::Running).await;

    let batch = server
        .client
        .submit_batch([
            NewTask::new("test.gate")
                .batch_ref("step")
                .idempotency_key("shared-step"),
            NewTask::new("diag.echo").depends_on_ref("step"),
        ])
        .await
        .unwrap();
    assert_eq!(batch[0].id, original.id, "the repeated key returns the original task");
    let dependent = &batch[1];
    assert_eq!(
        dependent.dependencies[0].task_id, original.id,
        "the dependent depends on the task its batch_ref resolved to"
    );
    let dependent = server.client.get(&dependent.id).await.unwrap();
    assert_eq!(
        dependent.status(),
        TaskStatus::Waiting,
        "the dependent waits while the original is still gated: {}",
        dependent.status_reason
    );

    server.gate.open(1);
    let original = server.wait(&original.id).await;
    let dependent = server.wait(&dependent.id).await;
    assert_eq!(dependent.status(), TaskStatus::Completed);
    let gap = crate::support::millis_between(
        original.completed_at.as_ref().unwrap(),
        dependent.attempts[0].started_at.as_ref().unwrap(),
    );
    assert!(
        gap >= 0.0,
        "the dependent started {gap:.3} ms relative to the original's completion"
    );
}
