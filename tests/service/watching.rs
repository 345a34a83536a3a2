use futures::StreamExt;
use serde_json::json;
use taskd_client::proto::task_event::Kind;
use taskd_client::{NewTask, TaskStatus, WatchTasksRequest, labels};

use crate::support::{TestServer, within};

#[tokio::test]
async fn watching_a_task_sends_its_state_first_then_each_change_and_ends_at_the_terminal_one() {
    let server = TestServer::start().await;
    let task = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    let mut events = Box::pin(server.client.watch(&task.id).await.unwrap());
    let first = within("the first event", events.next()).await.unwrap().unwrap();
    assert_eq!(first.kind(), Kind::Snapshot);
    server.gate.open(1);

    let mut statuses = vec![first.task.unwrap().status()];
    while let Some(event) = within("the next event", events.next()).await {
        let event = event.unwrap();
        let status = event.task.unwrap().status();
        if statuses.last() != Some(&status) {
            statuses.push(status);
        }
    }
    assert_eq!(statuses.last(), Some(&TaskStatus::Completed), "{statuses:?}");
    assert!(
        statuses.contains(&TaskStatus::Running) || statuses[0] == TaskStatus::Running,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn watching_a_finished_task_sends_one_snapshot_and_ends() {
    let server = TestServer::start().await;
    let task = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    server.wait(&task.id).await;
    let events: Vec<_> = server.client.watch(&task.id).await.unwrap().collect().await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].as_ref().unwrap().task.as_ref().unwrap().status(),
        TaskStatus::Completed
    );
}

#[tokio::test]
async fn watching_many_tasks_delivers_only_matching_events() {
    let server = TestServer::start().await;
    let mut events = Box::pin(
        server
            .client
            .watch_all(WatchTasksRequest {
                statuses: vec![TaskStatus::Completed as i32],
                labels: labels([("watch", "yes")]),
                ..Default::default()
            })
            .await
            .unwrap(),
    );
    server
        .client
        .submit(NewTask::new("diag.echo").label("watch", "no"))
        .await
        .unwrap();
    let wanted = server
        .client
        .submit(NewTask::new("diag.echo").label("watch", "yes"))
        .await
        .unwrap();
    let event = within("an event", events.next()).await.unwrap().unwrap();
    let task = event.task.unwrap();
    assert_eq!(task.id, wanted.id);
    assert_eq!(task.status(), TaskStatus::Completed);
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_told_it_lagged_and_goes_on() {
    let server = TestServer::start_with(|config| config.engine.event_buffer = 16).await;
    let mut events = Box::pin(server.client.watch_all(WatchTasksRequest::default()).await.unwrap());
    // Far more events than the buffer holds, while nobody reads.
    let tasks: Vec<NewTask> = (0..100).map(|_| NewTask::new("diag.echo").params(json!({}))).collect();
    let submitted = server.client.submit_batch(tasks).await.unwrap();
    for task in &submitted {
        server.wait(&task.id).await;
    }
    let mut lagged = None;
    while let Some(event) = within("the next event", events.next()).await {
        let event = event.unwrap();
        if event.kind() == Kind::Lagged {
            lagged = Some(event.missed);
            break;
        }
    }
    assert!(lagged.unwrap() > 0);
    // The stream goes on with current events.
    let after = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    loop {
        let event = within("an event", events.next()).await.unwrap().unwrap();
        if event
            .task
            .as_ref()
            .is_some_and(|task| task.id == after.id && task.status() == TaskStatus::Completed)
        {
            break;
        }
    }
    // And the engine was never slowed: every task completed.
    assert_eq!(server.client.stats().await.unwrap().counts.unwrap().completed, 101);
}
