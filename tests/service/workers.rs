//! Workers in another program serve task types over the worker protocol:
//! the Rust SDK's `Worker` against a real server over TCP, and the raw
//! stream where the SDK would hide what is checked.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use taskd_client::proto::attempt::Outcome;
use taskd_client::proto::work_request::Message as Outgoing;
use taskd_client::proto::work_response::Message as Incoming;
use taskd_client::proto::worker_service_client::WorkerServiceClient;
use taskd_client::proto::{self, WorkRequest, WorkResponse};
use taskd_client::worker::{TaskError, Worker};
use taskd_client::{Client, NewTask, TaskStatus};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::support::TestServer;

/// A worker running in the background until stopped.
struct RunningWorker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), taskd_client::ClientError>>,
}

impl RunningWorker {
    fn start(worker: Worker) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run_until(async move {
            let _ = stopped.await;
        }));
        RunningWorker { stop: Some(stop), task }
    }

    /// Asks the worker to drain and waits for it to return.
    async fn stop(mut self) -> Result<(), taskd_client::ClientError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("worker task")
    }

    /// Ends the worker as a crash would: the connection drops mid-task.
    fn kill(self) {
        self.task.abort();
    }
}

/// Waits until `worker_id` is connected, so that the types it serves are
/// known.
pub(crate) async fn connected(client: &Client, worker_id: &str) {
    for _ in 0..500 {
        if client
            .workers()
            .await
            .unwrap()
            .iter()
            .any(|worker| worker.worker_id == worker_id)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("worker {worker_id} never connected");
}

#[tokio::test]
async fn a_worker_declares_a_new_type_and_runs_its_tasks_with_progress() {
    let server = TestServer::start().await;
    let client = &server.client;
    let refused = client
        .submit(NewTask::new("thumbnails"))
        .await
        .expect_err("unknown yet");
    assert_eq!(refused.code(), Some(Code::InvalidArgument));

    let worker = RunningWorker::start(Worker::new(client).worker_id("thumbnailer-1").capacity(2).handle(
        "thumbnails",
        |task| async move {
            let width = task.params().get("width").and_then(|width| width.as_u64());
            let width = width.ok_or_else(|| TaskError::permanent("params.width"))?;
            task.progress(50.0, "resizing");
            Ok(json!({"width": width / 2, "attempt": task.attempt()}))
        },
    ));
    connected(client, "thumbnailer-1").await;

    let task = client
        .submit(NewTask::new("thumbnails").params(json!({"width": 640})))
        .await
        .unwrap();
    let done = server.wait(&task.id).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{}", done.status_reason);
    assert_eq!(
        done.result,
        Some(taskd_client::json::json_to_value(&json!({"width": 320, "attempt": 1})))
    );
    assert_eq!(done.attempts.len(), 1);
    assert_eq!(done.attempts[0].worker, "thumbnailer-1", "the attempt names its worker");

    let bad = client.submit(NewTask::new("thumbnails")).await.unwrap();
    let failed = server.wait(&bad.id).await;
    assert_eq!(failed.status(), TaskStatus::Failed, "a permanent error is not retried");
    assert_eq!(failed.error, "params.width");

    let listed = client.workers().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].task_types, vec!["thumbnails".to_string()]);
    assert_eq!(listed[0].capacity, 2);
    assert_eq!(listed[0].finished, 2);
    assert_eq!(
        listed[0].labels.get("sdk").map(|sdk| sdk.starts_with("rust/")),
        Some(true)
    );

    worker.stop().await.unwrap();
    assert!(client.workers().await.unwrap().is_empty(), "a drained worker leaves");
    let later = client.submit(NewTask::new("thumbnails")).await.unwrap();
    assert_eq!(
        later.status(),
        TaskStatus::Pending,
        "a declared type stays known after its worker left"
    );
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.unserved_task_types, vec!["thumbnails".to_string()]);
}

#[tokio::test]
async fn progress_reported_by_a_worker_reaches_watchers() {
    let server = TestServer::start().await;
    let client = &server.client;
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let worker = RunningWorker::start(Worker::new(client).worker_id("p").handle("chunks", move |task| {
        let gate = gate.clone();
        async move {
            task.progress(40.0, "chunk 2 of 5");
            gate.notified().await;
            Ok(json!(null))
        }
    }));
    connected(client, "p").await;
    let task = client.submit(NewTask::new("chunks")).await.unwrap();
    let mut events = Box::pin(client.watch(&task.id).await.unwrap());
    loop {
        let event = events.next().await.expect("event").unwrap();
        let seen = event.task.unwrap();
        if let Some(progress) = seen.progress
            && progress.message == "chunk 2 of 5"
        {
            assert_eq!(progress.percent, 40.0);
            break;
        }
    }
    release.notify_one();
    assert_eq!(server.wait(&task.id).await.status(), TaskStatus::Completed);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_running_task_stops_the_workers_handler() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (saw_cancel, mut cancels) = mpsc::unbounded_channel::<String>();
    let (started, mut starts) = mpsc::unbounded_channel::<String>();
    let worker = RunningWorker::start(Worker::new(client).worker_id("c").handle("long", move |task| {
        let (saw_cancel, started) = (saw_cancel.clone(), started.clone());
        async move {
            let _ = started.send(task.id().to_string());
            task.cancelled().await;
            let _ = saw_cancel.send(task.id().to_string());
            Err(TaskError::retryable("stopped"))
        }
    }));
    connected(client, "c").await;
    let task = client.submit(NewTask::new("long")).await.unwrap();
    assert_eq!(starts.recv().await.as_deref(), Some(task.id.as_str()));
    let cancelled = client.cancel(&task.id, "user changed their mind").await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    let stopped = tokio::time::timeout(Duration::from_secs(5), cancels.recv())
        .await
        .expect("the handler learns of the cancel");
    assert_eq!(stopped.as_deref(), Some(task.id.as_str()));
    let after = client.get(&task.id).await.unwrap();
    assert_eq!(
        after.status(),
        TaskStatus::Cancelled,
        "the handler's late error does not count"
    );
    assert_eq!(after.attempts[0].outcome(), Outcome::Cancelled);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_worker_that_dies_mid_task_loses_it_and_another_worker_runs_it() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (started, mut starts) = mpsc::unbounded_channel::<()>();
    let doomed = RunningWorker::start(Worker::new(client).worker_id("doomed").handle("resize", move |_task| {
        let started = started.clone();
        async move {
            let _ = started.send(());
            std::future::pending::<()>().await;
            Ok(json!(null))
        }
    }));
    connected(client, "doomed").await;
    let task = client
        .submit(NewTask::new("resize").backoff(Duration::from_millis(10), 1.0, Duration::from_millis(10), 0.0))
        .await
        .unwrap();
    starts.recv().await.expect("started on the doomed worker");
    doomed.kill();

    let survivor = RunningWorker::start(
        Worker::new(client)
            .worker_id("survivor")
            .handle("resize", |task| async move { Ok(json!({"attempt": task.attempt()})) }),
    );
    let done = server.wait(&task.id).await;
    assert_eq!(done.status(), TaskStatus::Completed);
    assert_eq!(done.attempts.len(), 2);
    assert_eq!(done.attempts[0].outcome(), Outcome::Interrupted);
    assert_eq!(done.attempts[0].worker, "doomed");
    assert!(
        done.attempts[0].error.contains("worker doomed"),
        "{}",
        done.attempts[0].error
    );
    assert_eq!(done.attempts[1].worker, "survivor");
    assert_eq!(done.retry_count, 1, "the lost attempt counts, per the retry policy");
    survivor.stop().await.unwrap();
}

#[tokio::test]
async fn workers_together_stay_within_the_servers_concurrency_limit() {
    let server = TestServer::start_with(|config| config.engine.max_concurrent_tasks = 2).await;
    let client = &server.client;
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (started, mut starts) = mpsc::unbounded_channel::<()>();
    let mut workers = Vec::new();
    for name in ["a", "b"] {
        let (release, started) = (release.clone(), started.clone());
        workers.push(RunningWorker::start(
            Worker::new(client)
                .worker_id(name)
                .capacity(5)
                .handle("batch", move |_task| {
                    let (release, started) = (release.clone(), started.clone());
                    async move {
                        let _ = started.send(());
                        release
                            .acquire()
                            .await
                            .map_err(|_| TaskError::retryable("closed"))?
                            .forget();
                        Ok(json!(null))
                    }
                }),
        ));
        connected(client, name).await;
    }
    let tasks = client
        .submit_batch((0..6).map(|_| NewTask::new("batch")))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    starts.recv().await.unwrap();
    let held: u32 = client.workers().await.unwrap().iter().map(|worker| worker.held).sum();
    assert_eq!(held, 2, "two workers with room for ten hold only the server's two");
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.counts.unwrap().running, 2);
    release.add_permits(6);
    for task in &tasks {
        assert_eq!(server.wait(&task.id).await.status(), TaskStatus::Completed);
    }
    for worker in workers {
        worker.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_draining_worker_finishes_what_it_holds_and_hands_back_what_outlasts_the_drain() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (started, mut starts) = mpsc::unbounded_channel::<String>();
    let worker = RunningWorker::start(
        Worker::new(client)
            .worker_id("leaving")
            .capacity(2)
            .drain_timeout(Duration::from_millis(300))
            .handle("quick", |_task| async move { Ok(json!("done")) })
            .handle("endless", move |task| {
                let started = started.clone();
                async move {
                    let _ = started.send(task.id().to_string());
                    task.cancelled().await;
                    Err(TaskError::retryable("stopped"))
                }
            }),
    );
    connected(client, "leaving").await;
    let endless = client.submit(NewTask::new("endless").max_retries(0)).await.unwrap();
    starts.recv().await.unwrap();
    worker.stop().await.unwrap();

    let handed_back = client.get(&endless.id).await.unwrap();
    assert_eq!(
        handed_back.status(),
        TaskStatus::Pending,
        "{}",
        handed_back.status_reason
    );
    assert_eq!(handed_back.attempts[0].outcome(), Outcome::Released);
    assert_eq!(
        handed_back.retry_count, 0,
        "handing back uses no retry, even with none allowed"
    );

    let (started, mut starts) = mpsc::unbounded_channel::<String>();
    let next = RunningWorker::start(Worker::new(client).worker_id("next").handle("endless", move |task| {
        let started = started.clone();
        async move {
            let _ = started.send(task.id().to_string());
            Ok(json!("finally"))
        }
    }));
    assert_eq!(starts.recv().await.as_deref(), Some(endless.id.as_str()));
    assert_eq!(server.wait(&endless.id).await.status(), TaskStatus::Completed);
    next.stop().await.unwrap();
}

/// A worker speaking the protocol by hand.
pub(crate) struct RawWorker {
    requests: mpsc::Sender<WorkRequest>,
    responses: tonic::Streaming<WorkResponse>,
}

impl RawWorker {
    pub(crate) async fn connect(
        client: &Client,
        hello: proto::WorkerHello,
    ) -> Result<(Self, proto::Welcome), tonic::Status> {
        let (requests, outgoing) = mpsc::channel(16);
        requests
            .send(WorkRequest {
                message: Some(Outgoing::Hello(hello)),
            })
            .await
            .unwrap();
        let mut stub = WorkerServiceClient::new(client.channel());
        let mut responses = stub.work(ReceiverStream::new(outgoing)).await?.into_inner();
        match responses.message().await? {
            Some(WorkResponse {
                message: Some(Incoming::Welcome(welcome)),
            }) => Ok((RawWorker { requests, responses }, welcome)),
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    pub(crate) async fn send(&self, message: Outgoing) {
        self.requests
            .send(WorkRequest { message: Some(message) })
            .await
            .unwrap();
    }

    pub(crate) async fn next(&mut self) -> Incoming {
        self.responses
            .message()
            .await
            .expect("stream open")
            .expect("a message")
            .message
            .expect("set")
    }
}

pub(crate) fn hello(worker_id: &str, task_types: &[&str]) -> proto::WorkerHello {
    proto::WorkerHello {
        worker_id: worker_id.to_string(),
        task_types: task_types.iter().map(|name| name.to_string()).collect(),
        capacity: 1,
        labels: Default::default(),
        instance: String::new(),
    }
}

#[tokio::test]
async fn a_worker_reconnecting_with_its_instance_replaces_its_old_stream_and_another_process_is_refused() {
    let server = TestServer::start().await;
    let client = &server.client;
    let first_run = proto::WorkerHello {
        instance: "run-1".into(),
        ..hello("steady", &["resize"])
    };
    let (mut old, _) = RawWorker::connect(client, first_run.clone()).await.unwrap();
    let task = client.submit(NewTask::new("resize").max_retries(1)).await.unwrap();
    let Incoming::Tasks(assigned) = old.next().await else {
        panic!("expected tasks")
    };
    assert_eq!(assigned.tasks[0].task.as_ref().unwrap().id, task.id);

    // Another process with the same id is refused; the worker stays.
    let other = RawWorker::connect(
        client,
        proto::WorkerHello {
            instance: "run-2".into(),
            ..hello("steady", &["resize"])
        },
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(other.code(), Code::AlreadyExists);

    // The same process, on a new stream before its old one was seen to
    // end: welcomed at once; the old stream ends and its lease is taken
    // back, so the task runs again on the new stream.
    let (mut new, welcome) = RawWorker::connect(client, first_run).await.unwrap();
    assert_eq!(welcome.worker_id, "steady");
    let ended = old.responses.message().await;
    assert!(matches!(ended, Ok(None) | Err(_)), "the old stream ends: {ended:?}");
    let Incoming::Tasks(again) = new.next().await else {
        panic!("expected the task again")
    };
    let lease = again.tasks[0].lease.clone().unwrap();
    assert_eq!(lease.task_id, task.id);
    assert_eq!(lease.attempt, 2, "the old stream's attempt was taken back");
    assert_eq!(
        client.workers().await.unwrap().len(),
        1,
        "one worker, on its new stream"
    );
}

#[tokio::test]
async fn an_sdk_worker_whose_id_is_taken_keeps_trying_and_connects_once_it_is_free() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (holder, _) = RawWorker::connect(client, hello("shared-name", &["resize"]))
        .await
        .unwrap();
    let worker = RunningWorker::start(
        Worker::new(client)
            .worker_id("shared-name")
            .handle("resize", |_task| async move { Ok(json!({"ran": true})) }),
    );
    let task = client.submit(NewTask::new("resize")).await.unwrap();
    // Refused with ALREADY_EXISTS meanwhile, but not stopped: once the
    // holder is gone, it connects and runs the task.
    drop(holder);
    let done = server.wait(&task.id).await;
    assert_eq!(done.status(), TaskStatus::Completed);
    assert!(!worker.task.is_finished());
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_finish_under_a_lost_lease_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (mut raw, welcome) = RawWorker::connect(client, hello("raw", &["manual"])).await.unwrap();
    assert_eq!(welcome.worker_id, "raw");
    let task = client.submit(NewTask::new("manual")).await.unwrap();
    let Incoming::Tasks(assigned) = raw.next().await else {
        panic!("expected tasks")
    };
    let lease = assigned.tasks[0].lease.clone().unwrap();
    assert_eq!(lease.task_id, task.id);
    assert_eq!(lease.attempt, 1);

    client.cancel(&task.id, "not wanted").await.unwrap();
    let Incoming::Revoked(revoked) = raw.next().await else {
        panic!("expected the lease revoked")
    };
    assert_eq!(revoked.lease.unwrap().token, lease.token);
    assert!(revoked.reason.contains("not wanted"), "{}", revoked.reason);

    let success = proto::AttemptResult {
        lease: Some(lease.clone()),
        outcome: Some(proto::attempt_result::Outcome::Result(
            taskd_client::json::json_to_value(&json!("late")),
        )),
    };
    raw.send(Outgoing::Finish(proto::FinishAttempts {
        results: vec![success.clone()],
    }))
    .await;
    let Incoming::Finished(finished) = raw.next().await else {
        panic!("expected the finish answered")
    };
    let refusal = finished.outcomes[0].refusal.clone().expect("refused");
    assert_eq!(refusal.code, Code::FailedPrecondition as i32);
    assert!(refusal.message.contains("cancelled"), "{}", refusal.message);

    let mut stub = WorkerServiceClient::new(client.channel());
    let unary = stub
        .finish_attempt(proto::FinishAttemptRequest { result: Some(success) })
        .await
        .expect_err("refused");
    assert_eq!(unary.code(), Code::FailedPrecondition);
    let renewed = stub
        .renew_leases(proto::RenewLeasesRequest {
            leases: vec![lease.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(renewed.outcomes[0].refusal.is_some(), "a lost lease is not renewed");
    let after = client.get(&task.id).await.unwrap();
    assert_eq!(after.status(), TaskStatus::Cancelled);
    assert_eq!(after.result, None, "nothing changed");
}

#[tokio::test]
async fn the_unary_calls_serve_a_worker_that_does_not_stream_its_reports() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (mut raw, _) = RawWorker::connect(client, hello("half-raw", &["manual"]))
        .await
        .unwrap();
    let task = client.submit(NewTask::new("manual")).await.unwrap();
    let Incoming::Tasks(assigned) = raw.next().await else {
        panic!("expected tasks")
    };
    let lease = assigned.tasks[0].lease.clone().unwrap();
    let mut stub = WorkerServiceClient::new(client.channel());
    stub.report_progress(proto::ReportProgressRequest {
        report: Some(proto::ProgressReport {
            lease: Some(lease.clone()),
            percent: 75.0,
            message: "almost".into(),
        }),
    })
    .await
    .unwrap();
    let renewed = stub
        .renew_leases(proto::RenewLeasesRequest {
            leases: vec![lease.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(renewed.outcomes[0].deadline.is_some());
    let finished = stub
        .finish_attempt(proto::FinishAttemptRequest {
            result: Some(proto::AttemptResult {
                lease: Some(lease),
                outcome: Some(proto::attempt_result::Outcome::Failure(proto::AttemptFailure {
                    message: "disk full".into(),
                    permanent: true,
                })),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(finished.status(), TaskStatus::Failed);
    let failed = client.get(&task.id).await.unwrap();
    assert_eq!(failed.error, "disk full");
    assert_eq!(failed.progress.unwrap().message, "almost");
    let listed = client.workers().await.unwrap();
    assert_eq!(listed[0].held, 0, "the unary finish freed the worker's room");
}

#[tokio::test]
async fn a_bad_hello_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let client = &server.client;
    let cases = [
        (hello("w", &[]), Code::InvalidArgument, "hello.task_types:"),
        (
            hello("w", &["ok", "Bad Type"]),
            Code::InvalidArgument,
            "hello.task_types[1]:",
        ),
        (hello("local", &["ok"]), Code::InvalidArgument, "hello.worker_id:"),
        (hello("has space", &["ok"]), Code::InvalidArgument, "hello.worker_id:"),
        (
            proto::WorkerHello {
                capacity: 0,
                ..hello("w", &["ok"])
            },
            Code::InvalidArgument,
            "hello.capacity:",
        ),
    ];
    for (hello, code, field) in cases {
        let refused = RawWorker::connect(client, hello).await.err().expect("refused");
        assert_eq!(refused.code(), code, "{}", refused.message());
        assert!(refused.message().starts_with(field), "{}", refused.message());
    }
    let (_first, _) = RawWorker::connect(client, hello("twin", &["ok"])).await.unwrap();
    let twin = RawWorker::connect(client, hello("twin", &["ok"]))
        .await
        .err()
        .expect("refused");
    assert_eq!(twin.code(), Code::AlreadyExists);
    assert!(twin.message().contains("twin"), "{}", twin.message());
    assert_eq!(
        client.stats().await.unwrap().counts.unwrap().total,
        0,
        "no refused hello left anything behind"
    );
}

#[tokio::test]
async fn an_attempt_that_outlives_its_timeout_is_taken_from_the_worker() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (mut raw, _) = RawWorker::connect(client, hello("slow", &["slow"])).await.unwrap();
    let task = client
        .submit(NewTask::new("slow").timeout(Duration::from_millis(200)).max_retries(0))
        .await
        .unwrap();
    let Incoming::Tasks(_) = raw.next().await else {
        panic!("expected tasks")
    };
    // The worker never reports: the lease ends with the timeout.
    let Incoming::Revoked(revoked) = raw.next().await else {
        panic!("expected the lease revoked")
    };
    assert!(revoked.reason.contains("out of time"), "{}", revoked.reason);
    let failed = client.get(&task.id).await.unwrap();
    assert_eq!(failed.status(), TaskStatus::Failed);
    assert_eq!(failed.attempts[0].outcome(), Outcome::TimedOut);
}

#[tokio::test]
async fn task_types_and_workers_are_listed_over_rest() {
    let server = TestServer::start().await;
    let client = &server.client;
    let (_raw, _) = RawWorker::connect(client, hello("rest-visible", &["embeddings"]))
        .await
        .unwrap();
    let base = format!("http://{}", server.server.as_ref().unwrap().local_addr());
    let http = reqwest::Client::new();
    let workers: serde_json::Value = http
        .get(format!("{base}/api/v1/workers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(workers["workers"][0]["worker_id"], "rest-visible");
    assert_eq!(workers["workers"][0]["task_types"], json!(["embeddings"]));
    let types: serde_json::Value = http
        .get(format!("{base}/api/v1/task-types"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let embeddings = types["task_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["task_type"] == "embeddings")
        .cloned()
        .expect("declared type listed");
    assert_eq!(embeddings["handler_available"], true);
    assert_eq!(embeddings["workers"], 1);
    let seed = types["task_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["task_type"] == "vector_store_update")
        .cloned()
        .expect("the design note's types are known");
    assert_eq!(seed["handler_available"], false, "every field is present");
}

#[tokio::test]
async fn a_stopping_server_lets_its_workers_finish_what_they_hold() {
    let mut server = TestServer::start().await;
    let client = server.client.clone();
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let (started, mut starts) = mpsc::unbounded_channel::<()>();
    let worker = RunningWorker::start(Worker::new(&client).worker_id("steady").handle("report", move |_task| {
        let (gate, started) = (gate.clone(), started.clone());
        async move {
            let _ = started.send(());
            gate.notified().await;
            Ok(json!("written"))
        }
    }));
    connected(&client, "steady").await;
    let task = client.submit(NewTask::new("report")).await.unwrap();
    starts.recv().await.unwrap();

    // Watch streams end as soon as the stop begins: that is the signal.
    let mut watching = Box::pin(client.watch_all(Default::default()).await.unwrap());
    let stopping = tokio::spawn({
        let running = server.server.take().expect("running");
        async move { running.stop().await }
    });
    while watching.next().await.is_some() {}
    release.notify_one();
    stopping.await.unwrap();

    server.restart().await;
    let after = server.client.get(&task.id).await.unwrap();
    assert_eq!(
        after.status(),
        TaskStatus::Completed,
        "finished during the stop, not interrupted: {:?}",
        after.attempts
    );
    worker.kill();
}
