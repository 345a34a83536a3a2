use std::time::{Duration, SystemTime};

use serde_json::json;
use taskd_client::proto::attempt::Outcome;
use taskd_client::{NewTask, TaskStatus};
use tonic::Code;

use crate::support::TestServer;

#[tokio::test]
async fn cancelling_a_scheduled_task_ends_it_at_once() {
    let server = TestServer::start().await;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let task = server
        .client
        .submit(NewTask::new("diag.echo").run_at(later))
        .await
        .unwrap();
    let cancelled = server.client.cancel(&task.id, "no longer needed").await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    assert!(
        cancelled.status_reason.contains("no longer needed"),
        "{}",
        cancelled.status_reason
    );
    assert!(cancelled.attempts.is_empty());
}

#[tokio::test]
async fn cancelling_a_waiting_task_ends_it_and_its_dependents() {
    let server = TestServer::start().await;
    let root = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    let waiting = server
        .client
        .submit(NewTask::new("diag.echo").depends_on(&root.id))
        .await
        .unwrap();
    let downstream = server
        .client
        .submit(NewTask::new("diag.echo").depends_on(&waiting.id))
        .await
        .unwrap();
    assert_eq!(waiting.status(), TaskStatus::Waiting);

    let cancelled = server.client.cancel(&waiting.id, "").await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    let downstream = server.client.get(&downstream.id).await.unwrap();
    assert_eq!(downstream.status(), TaskStatus::Cancelled);
    assert!(
        downstream.status_reason.contains(&waiting.id),
        "{}",
        downstream.status_reason
    );
    server.gate.open(1);
}

#[tokio::test]
async fn cancelling_a_running_task_signals_its_handler_and_ends_it_cancelled() {
    let server = TestServer::start().await;
    let task = server
        .client
        .submit(NewTask::new("diag.sleep").params(json!({"duration_ms": 60_000})))
        .await
        .unwrap();
    server.wait_for_status(&task.id, TaskStatus::Running).await;
    let cancelled = server.client.cancel(&task.id, "user asked").await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    assert_eq!(cancelled.attempts.len(), 1);
    assert_eq!(cancelled.attempts[0].outcome(), Outcome::Cancelled);
    // Cancelled is final: no retry even though retries were allowed.
    assert_eq!(
        server.client.get(&task.id).await.unwrap().status(),
        TaskStatus::Cancelled
    );
}

#[tokio::test]
async fn cancelling_a_finished_task_is_refused_and_an_unknown_one_is_not_found() {
    let server = TestServer::start().await;
    let task = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    server.wait(&task.id).await;
    let error = server.client.cancel(&task.id, "").await.unwrap_err();
    assert_eq!(error.code(), Some(Code::FailedPrecondition));
    assert!(error.to_string().contains("COMPLETED"), "{error}");

    let unknown = "01900000-0000-7000-8000-000000000000";
    let error = server.client.cancel(unknown, "").await.unwrap_err();
    assert_eq!(error.code(), Some(Code::NotFound));
}
