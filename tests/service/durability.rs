//! Nothing a client was shown is undone: not by a kill -9 under load, not
//! by a disk that fills up. Events and answers only ever show durable
//! state.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::json;
use taskd_client::{Client, NewTask, TaskStatus, WatchTasksRequest, labels};
use tonic::Code;

use crate::support::{TestServer, spawn_with};

/// Bounds every wait of these tests: a regression fails, it does not hang.
const PATIENCE: Duration = Duration::from_secs(60);

fn big_params() -> serde_json::Value {
    json!({"blob": "x".repeat(50_000)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_a_watcher_saw_survive_a_kill_9_under_load() {
    let dir = tempfile::tempdir().unwrap();
    // The machine is busy while the suite runs; load must not throttle this
    // test's executor.
    let config = dir.path().join("taskd.toml");
    std::fs::write(
        &config,
        "[monitor]\nenabled = false\n[engine]\nmax_concurrent_tasks = 64\n",
    )
    .unwrap();
    let serve = |data_dir: &Path| spawn_with(data_dir, |command| command.arg("--config").arg(&config));
    let data_dir = dir.path().join("data");
    let (mut server, address) = serve(&data_dir);
    let client = Client::connect(address).await.unwrap();
    let mut completions = Box::pin(
        client
            .watch_all(WatchTasksRequest {
                statuses: vec![TaskStatus::Completed as i32],
                labels: labels([("run", "kill")]),
                ..Default::default()
            })
            .await
            .unwrap(),
    );

    // Eight clients submit batches of 50 tasks with 50 KB params until the
    // server is gone (or they have sent plenty).
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut submitters = Vec::new();
    for _ in 0..8 {
        let (client, acknowledged) = (client.clone(), acknowledged.clone());
        submitters.push(tokio::spawn(async move {
            for _ in 0..12 {
                let batch = (0..50).map(|_| NewTask::new("diag.echo").params(big_params()).label("run", "kill"));
                match client.submit_batch(batch).await {
                    Ok(tasks) => acknowledged.lock().extend(tasks.into_iter().map(|task| task.id)),
                    Err(_) => return,
                }
            }
        }));
    }

    // The watcher kills the server on its 100th COMPLETED event.
    let mut seen = Vec::new();
    while seen.len() < 100 {
        let event = tokio::time::timeout(PATIENCE, completions.next())
            .await
            .expect("completions keep coming")
            .expect("the stream is open")
            .expect("an event");
        let task = event.task.expect("a task");
        assert_eq!(task.status(), TaskStatus::Completed);
        seen.push(task.id);
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    for submitter in submitters {
        tokio::time::timeout(PATIENCE, submitter)
            .await
            .expect("submitters notice the server is gone")
            .expect("submitter");
    }

    let (mut restarted, address) = serve(&data_dir);
    let client = Client::connect(address).await.unwrap();
    for id in &seen {
        let task = client.get(id).await.unwrap();
        assert_eq!(task.status(), TaskStatus::Completed, "task {id} was seen COMPLETED");
        assert_eq!(task.attempts.len(), 1, "task {id} did not run again");
        assert!(task.result.is_some(), "task {id} keeps its result");
    }
    let acknowledged = acknowledged.lock().clone();
    assert!(acknowledged.len() >= 100, "{} acknowledged", acknowledged.len());
    let checks = futures::stream::iter(acknowledged.iter().cloned())
        .map(|id| {
            let client = client.clone();
            async move {
                let task = client
                    .get(&id)
                    .await
                    .unwrap_or_else(|error| panic!("acknowledged task {id} lost: {error}"));
                assert_eq!(task.params.map(|params| params.fields.len()), Some(1), "task {id}");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>();
    tokio::time::timeout(PATIENCE, checks).await.expect("checked in time");
    restarted.kill().expect("SIGKILL");
    let _ = restarted.wait();
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            mounted.success(),
            "the full-disk test mounts a small tmpfs, which needs root (the test command runs as root in CI)"
        );
        Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_nothing_that_was_shown_and_work_goes_on_once_there_is_room() {
    let disk = Tmpfs::mount("12m");
    // Room to give back once the disk is full.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0_u8; 4 << 20]).unwrap();
    let data_dir = disk.path().join("data");
    let mut server = TestServer::start_in(&data_dir, |_| {}).await;
    let client = server.client.clone();

    let completed_seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut completions = Box::pin(
        client
            .watch_all(WatchTasksRequest {
                statuses: vec![TaskStatus::Completed as i32],
                ..Default::default()
            })
            .await
            .unwrap(),
    );
    let watcher = {
        let completed_seen = completed_seen.clone();
        tokio::spawn(async move {
            while let Some(Ok(event)) = completions.next().await {
                if let Some(task) = event.task {
                    completed_seen.lock().insert(task.id);
                }
            }
        })
    };

    // Fill the disk: submits are acknowledged until they cannot be written,
    // then refused as UNAVAILABLE, nothing half-written.
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for _ in 0..2000 {
        let batch = (0..10).map(|_| NewTask::new("diag.echo").params(big_params()));
        match client.submit_batch(batch).await {
            Ok(tasks) => acknowledged.extend(tasks.into_iter().map(|task| task.id)),
            Err(error) => {
                assert_eq!(error.code(), Some(Code::Unavailable), "{error}");
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(
        refused,
        5,
        "the disk never filled up ({} tasks accepted)",
        acknowledged.len()
    );
    // Reads still work while writes fail; readiness says writes fail.
    for id in acknowledged.iter().step_by(25) {
        client.get(id).await.unwrap();
    }
    let readyz = format!("http://{}/readyz", server.server.as_ref().unwrap().local_addr());
    let not_ready = reqwest::get(&readyz).await.unwrap();
    assert_eq!(not_ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert!(
        body["status"].as_str().unwrap().starts_with("store unavailable"),
        "{body}"
    );
    let shown_before_room = completed_seen.lock().clone();

    // Room again: work goes on without a restart.
    std::fs::remove_file(&ballast).unwrap();
    let accepted_again = tokio::time::timeout(PATIENCE, async {
        loop {
            match client.submit(NewTask::new("diag.echo")).await {
                Ok(task) => return task,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("submits are accepted again once there is room");
    acknowledged.push(accepted_again.id);
    let ready_again = tokio::time::timeout(PATIENCE, async {
        loop {
            if reqwest::get(&readyz).await.unwrap().status() == reqwest::StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(ready_again.is_ok(), "ready again once writes succeed");
    for id in &acknowledged {
        let task = tokio::time::timeout(PATIENCE, client.wait(id))
            .await
            .expect("every acknowledged task ends once there is room")
            .unwrap();
        assert_eq!(
            task.status(),
            TaskStatus::Completed,
            "task {id}: {}",
            task.status_reason
        );
    }
    for id in &shown_before_room {
        let task = client.get(id).await.unwrap();
        assert_eq!(task.status(), TaskStatus::Completed, "task {id} was shown COMPLETED");
    }

    // And an ordinary restart changes none of it.
    server.restart().await;
    for id in acknowledged.iter().chain(&shown_before_room) {
        let task = server.client.get(id).await.unwrap();
        assert_eq!(task.status(), TaskStatus::Completed, "task {id} after the restart");
        assert!(task.error.is_empty(), "task {id}: {}", task.error);
    }
    server.stop().await;
    watcher.abort();
}
