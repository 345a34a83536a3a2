use serde_json::json;
use taskd_client::json::struct_to_json;
use taskd_client::proto::attempt::Outcome;
use taskd_client::{ListTasksRequest, NewTask, TaskPriority, TaskStatus, labels};

use crate::support::TestServer;

#[tokio::test]
async fn a_submitted_task_runs_to_completion_and_keeps_its_result() {
    let server = TestServer::start().await;
    let submitted = server
        .client
        .submit(
            NewTask::new("diag.echo")
                .name("echo")
                .params(json!({"document_id": "123", "pages": 3}))
                .priority(TaskPriority::High)
                .label("team", "search"),
        )
        .await
        .unwrap();
    assert!(!submitted.id.is_empty());
    assert_eq!(submitted.name, "echo");
    assert_eq!(submitted.priority(), TaskPriority::High);

    let finished = server.wait(&submitted.id).await;
    assert_eq!(finished.status(), TaskStatus::Completed);
    let result = taskd_client::json::value_to_json(finished.result.as_ref().unwrap()).unwrap();
    assert_eq!(result, json!({"document_id": "123", "pages": 3}));
    assert_eq!(finished.attempts.len(), 1);
    assert_eq!(finished.attempts[0].outcome(), Outcome::Succeeded);
    assert!(finished.started_at.is_some() && finished.completed_at.is_some());

    let fetched = server.client.get(&submitted.id).await.unwrap();
    assert_eq!(fetched.status(), TaskStatus::Completed);
    assert_eq!(
        struct_to_json(fetched.params.as_ref().unwrap()).unwrap()["pages"],
        json!(3)
    );
}

#[tokio::test]
async fn the_name_defaults_to_the_task_type() {
    let server = TestServer::start().await;
    let task = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    assert_eq!(task.name, "diag.echo");
}

#[tokio::test]
async fn list_filters_by_status_type_and_labels_and_pages_newest_first() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for index in 0..5 {
        let task = server
            .client
            .submit(
                NewTask::new("diag.echo")
                    .label("batch", "list-test")
                    .label("n", index.to_string()),
            )
            .await
            .unwrap();
        ids.push(task.id);
    }
    server
        .client
        .submit(NewTask::new("document_processing").label("batch", "list-test"))
        .await
        .unwrap();
    for id in &ids {
        server.wait(id).await;
    }

    let mut request = ListTasksRequest {
        task_types: vec!["diag.echo".into()],
        statuses: vec![TaskStatus::Completed as i32],
        labels: labels([("batch", "list-test")]),
        page_size: 2,
        ..Default::default()
    };
    let first = server.client.list(request.clone()).await.unwrap();
    assert_eq!(first.tasks.len(), 2);
    assert!(!first.next_page_token.is_empty());
    request.page_token = first.next_page_token.clone();
    let rest = server.client.list_all(request).await.unwrap();
    let listed: Vec<String> = first.tasks.into_iter().chain(rest).map(|task| task.id).collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);

    let one = server
        .client
        .list(ListTasksRequest {
            labels: labels([("batch", "list-test"), ("n", "3")]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one.tasks.len(), 1);
    assert_eq!(one.tasks[0].id, ids[3]);
}

#[tokio::test]
async fn stats_count_tasks_by_status_and_type_and_name_unserved_types() {
    let server = TestServer::start().await;
    let done = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    server.wait(&done.id).await;
    server.client.submit(NewTask::new("vector_store_update")).await.unwrap();

    let stats = server.client.stats().await.unwrap();
    let counts = stats.counts.unwrap();
    assert_eq!(counts.completed, 1);
    assert_eq!(counts.pending, 1);
    assert_eq!(counts.total, 2);
    assert_eq!(stats.unserved_task_types, vec!["vector_store_update".to_string()]);
    assert_eq!(stats.max_concurrent_tasks, 4);
    assert_eq!(stats.effective_concurrency_limit, 4);
    let vector = stats
        .by_type
        .iter()
        .find(|t| t.task_type == "vector_store_update")
        .unwrap();
    assert!(!vector.handler_available);
    let echo = stats.by_type.iter().find(|t| t.task_type == "diag.echo").unwrap();
    assert!(echo.handler_available);
    assert_eq!(echo.counts.unwrap().completed, 1);
    assert_eq!(stats.success_rate, Some(1.0));
}

#[tokio::test]
async fn a_task_without_a_handler_waits_pending_and_says_why() {
    let server = TestServer::start().await;
    let task = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    assert_eq!(task.status(), TaskStatus::Pending);
    assert!(task.status_reason.contains("no handler"), "{}", task.status_reason);
}
