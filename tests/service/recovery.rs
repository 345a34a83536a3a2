use std::time::{Duration, SystemTime};

use serde_json::json;
use taskd_client::proto::attempt::Outcome;
use taskd_client::{ListTasksRequest, NewTask, TaskStatus, labels};

use crate::support::TestServer;

#[tokio::test]
async fn a_restart_brings_back_every_unfinished_task() {
    let mut server = TestServer::start().await;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let scheduled = server
        .client
        .submit(NewTask::new("diag.echo").run_at(later))
        .await
        .unwrap();
    let gate = server
        .client
        .submit(NewTask::new("test.gate").run_at(later))
        .await
        .unwrap();
    let waiting = server
        .client
        .submit(NewTask::new("diag.echo").depends_on(&gate.id))
        .await
        .unwrap();
    let unserved = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    let done = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    server.wait(&done.id).await;

    server.restart().await;

    for (task, status) in [
        (&scheduled, TaskStatus::Scheduled),
        (&gate, TaskStatus::Scheduled),
        (&waiting, TaskStatus::Waiting),
        (&unserved, TaskStatus::Pending),
        (&done, TaskStatus::Completed),
    ] {
        let restored = server.client.get(&task.id).await.unwrap();
        assert_eq!(restored.status(), status, "{}", task.id);
    }
    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.counts.unwrap().total, 5);

    // Dependencies are wired up again: cancelling the root cascades.
    server.client.cancel(&gate.id, "").await.unwrap();
    assert_eq!(
        server.client.get(&waiting.id).await.unwrap().status(),
        TaskStatus::Cancelled
    );
}

#[tokio::test]
async fn a_task_interrupted_by_a_stop_is_retried_and_the_attempt_counted() {
    let mut server = TestServer::start().await;
    let task = server
        .client
        .submit(
            NewTask::new("diag.sleep")
                .params(json!({"duration_ms": 60_000}))
                .max_retries(2),
        )
        .await
        .unwrap();
    server.wait_for_status(&task.id, TaskStatus::Running).await;

    server.restart().await;

    let restored = server.wait_for_status(&task.id, TaskStatus::Running).await;
    assert_eq!(restored.attempts.len(), 2);
    assert_eq!(
        restored.attempts[0].outcome(),
        taskd_client::proto::attempt::Outcome::Interrupted
    );
    assert_eq!(restored.retry_count, 1);
    server.client.cancel(&task.id, "done testing").await.unwrap();
}

#[tokio::test]
async fn many_acknowledged_submits_survive_a_restart() {
    let mut server = TestServer::start().await;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let mut handles = Vec::new();
    for _ in 0..8 {
        let client = server.client.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..25 {
                client
                    .submit(NewTask::new("diag.echo").run_at(later).label("run", "durable"))
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    server.restart().await;
    let tasks = server
        .client
        .list_all(ListTasksRequest {
            labels: labels([("run", "durable")]),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tasks.len(), 200);
    assert!(tasks.iter().all(|task| task.status() == TaskStatus::Scheduled));
    let _ = Outcome::Succeeded;
}
