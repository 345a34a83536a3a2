use std::time::{Duration, SystemTime};

use taskd::model::{Clock, Timestamp};

use futures::StreamExt;
use serde_json::json;
use taskd_client::proto::task_event::Kind;
use taskd_client::{ListTasksRequest, NewTask, TaskPriority, TaskStatus, WatchTasksRequest, labels};

use crate::support::{TestServer, millis_between, within};

/// Starts of tasks labelled `run`, in the order they started.
async fn start_order(server: &TestServer, run: &str) -> Vec<String> {
    let mut tasks = server
        .client
        .list_all(ListTasksRequest {
            labels: labels([("run", run)]),
            ..Default::default()
        })
        .await
        .unwrap();
    tasks
        .sort_by(|a, b| millis_between(b.started_at.as_ref().unwrap(), a.started_at.as_ref().unwrap()).total_cmp(&0.0));
    tasks.into_iter().map(|task| task.name).collect()
}

#[tokio::test]
async fn higher_priority_runs_first_among_tasks_queued_together() {
    let server = TestServer::start_with(|config| config.engine.max_concurrent_tasks = 1).await;
    let blocker = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    server.wait_for_status(&blocker.id, TaskStatus::Running).await;

    let batch = [
        ("low", TaskPriority::Low),
        ("normal", TaskPriority::Normal),
        ("critical", TaskPriority::Critical),
        ("high", TaskPriority::High),
    ]
    .map(|(name, priority)| {
        NewTask::new("diag.echo")
            .name(name)
            .priority(priority)
            .label("run", "prio")
    });
    let submitted = server.client.submit_batch(batch).await.unwrap();
    server.gate.open(1);
    for task in &submitted {
        server.wait(&task.id).await;
    }
    assert_eq!(
        start_order(&server, "prio").await,
        vec!["critical", "high", "normal", "low"]
    );
}

#[tokio::test]
async fn a_low_task_that_waited_long_enough_runs_before_newer_high_ones() {
    // Test weights: HIGH is 400ms ahead of LOW. A LOW task that has waited
    // longer than that must run before HIGH tasks submitted after the wait.
    // The engine's clock is moved on instead of waited for.
    let clock = Clock::manual(Timestamp::now());
    let server = TestServer::start_with({
        let clock = clock.clone();
        move |config| {
            config.engine.max_concurrent_tasks = 1;
            config.engine.clock = clock;
        }
    })
    .await;
    let blocker = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    server.wait_for_status(&blocker.id, TaskStatus::Running).await;

    let old_low = server
        .client
        .submit(
            NewTask::new("diag.echo")
                .name("old-low")
                .priority(TaskPriority::Low)
                .label("run", "aging"),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_millis(600));
    let mut highs = Vec::new();
    for index in 0..5 {
        let high = NewTask::new("diag.echo")
            .name(format!("new-high-{index}"))
            .priority(TaskPriority::High)
            .label("run", "aging");
        highs.push(server.client.submit(high).await.unwrap());
    }
    let mut watch = Box::pin(
        server
            .client
            .watch_all(WatchTasksRequest {
                labels: labels([("run", "aging")]),
                ..Default::default()
            })
            .await
            .unwrap(),
    );
    server.gate.open(1);
    // The slot frees once: whichever task the scheduler ranks first starts.
    let first = loop {
        let event = within("an event", watch.next()).await.unwrap().unwrap();
        let task = event.task.unwrap();
        if task.status() == TaskStatus::Running {
            break task.name;
        }
    };
    assert_eq!(first, "old-low");
    server.wait(&old_low.id).await;
    for high in &highs {
        server.wait(&high.id).await;
    }
}

#[tokio::test]
async fn running_tasks_never_exceed_max_concurrent_tasks() {
    let server = TestServer::start_with(|config| config.engine.max_concurrent_tasks = 3).await;
    let mut watch = Box::pin(
        server
            .client
            .watch_all(WatchTasksRequest {
                labels: labels([("run", "limit")]),
                ..Default::default()
            })
            .await
            .unwrap(),
    );
    let tasks: Vec<NewTask> = (0..12)
        .map(|_| {
            NewTask::new("diag.sleep")
                .params(json!({"duration_ms": 20}))
                .label("run", "limit")
        })
        .collect();
    server.client.submit_batch(tasks).await.unwrap();

    let mut running = 0i32;
    let mut peak = 0;
    let mut finished = 0;
    while finished < 12 {
        let event = within("an event", watch.next()).await.unwrap().unwrap();
        if event.kind() != Kind::StatusChanged {
            continue;
        }
        let previous = event.previous_status();
        let task = event.task.unwrap();
        if task.status() == TaskStatus::Running {
            running += 1;
            peak = peak.max(running);
        } else if previous == TaskStatus::Running {
            running -= 1;
            if task.status() == TaskStatus::Completed {
                finished += 1;
            }
        }
    }
    assert_eq!(peak, 3, "all three slots were used, and never more");
    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.counts.unwrap().completed, 12);
}

#[tokio::test]
async fn a_per_type_limit_holds_back_only_its_own_type() {
    let server = TestServer::start_with(|config| {
        config.engine.max_concurrent_tasks = 4;
        config.engine.type_concurrency_limits.insert("test.gate".into(), 1);
    })
    .await;
    let first = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    server.wait_for_status(&first.id, TaskStatus::Running).await;
    let second = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    let echo = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    assert_eq!(server.wait(&echo.id).await.status(), TaskStatus::Completed);
    assert_eq!(
        server.client.get(&second.id).await.unwrap().status(),
        TaskStatus::Pending
    );
    server.gate.open(2);
    assert_eq!(server.wait(&second.id).await.status(), TaskStatus::Completed);
}

#[tokio::test]
async fn run_at_delays_a_task_and_it_starts_on_time() {
    let server = TestServer::start().await;
    let due = SystemTime::now() + Duration::from_millis(300);
    let task = server
        .client
        .submit(NewTask::new("diag.echo").run_at(due))
        .await
        .unwrap();
    assert_eq!(task.status(), TaskStatus::Scheduled);
    let finished = server.wait(&task.id).await;
    let started = finished.attempts[0].started_at.as_ref().unwrap();
    let lateness = millis_between(&taskd_client::timestamp(due), started);
    assert!(lateness >= 0.0, "started {lateness}ms before its time");
    // A correctness bound (a timer, not a poll), generous for a loaded
    // 2-core CI machine; the benchmark measures the real lateness.
    assert!(lateness < 500.0, "started {lateness}ms late");
}

#[tokio::test]
async fn a_task_that_finds_a_free_slot_is_leased_in_the_commit_that_creates_it() {
    let server = TestServer::start_with(|config| config.engine.max_concurrent_tasks = 1).await;
    // A free slot: the submit's own commit leases the task (one attempt,
    // RUNNING), saving the commit of a separate claim.
    let first = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    assert_eq!(first.status(), TaskStatus::Running, "{}", first.status_reason);
    assert_eq!(first.attempts.len(), 1);
    // No free slot: it waits, as always, and runs when the slot frees.
    let second = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
    assert_eq!(second.status(), TaskStatus::Pending);
    // Nothing served here: answered PENDING for a worker to claim.
    let parked = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    assert_eq!(parked.status(), TaskStatus::Pending);
    server.gate.open(1);
    assert_eq!(server.wait(&first.id).await.status(), TaskStatus::Completed);
    assert_eq!(server.wait(&second.id).await.status(), TaskStatus::Completed);
}

#[tokio::test]
async fn run_task_answers_the_ended_task_in_one_call_over_grpc_and_rest() {
    let server = TestServer::start().await;
    let done = server
        .client
        .run(
            NewTask::new("diag.echo").params(json!({"n": 7})),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(done.status(), TaskStatus::Completed);
    let result = taskd_client::json::value_to_json(done.result.as_ref().expect("a result")).unwrap();
    assert_eq!(result, json!({"n": 7}));
    // Past its wait, the task as it is; a bad wait names the field.
    let parked = server
        .client
        .run(NewTask::new("document_processing"), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(parked.status(), TaskStatus::Pending);
    let refused = server
        .client
        .run(NewTask::new("diag.echo"), Duration::from_secs(7200))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("wait: at most 1h"), "{refused}");
    let unknown = server
        .client
        .run(NewTask::new("no.such.type"), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(unknown.to_string().contains("task.task_type:"), "{unknown}");

    let address = server.server.as_ref().expect("running").local_addr();
    let response = reqwest::Client::new()
        .post(format!("http://{address}/api/v1/tasks/run"))
        .json(&json!({"task": {"task_type": "diag.echo", "params": {"n": 8}}, "wait": "30s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), &body["result"]),
        (Some("COMPLETED"), &json!({"n": 8}))
    );
    // A task that ended already is answered at once by wait_for.
    let again = server.client.wait_for(done.clone()).await.unwrap();
    assert_eq!(again.revision, done.revision);
}
