//! `taskctl`, the command-line client, run as a user runs it: the binary
//! built beside this test, against a real server over TCP.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use taskd_client::worker::Worker;
use taskd_client::{NewTask, TaskStatus};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::TestServer;

const BOUND: Duration = Duration::from_secs(30);

/// `target/<profile>/taskctl`: `cargo test --workspace` builds it beside the
/// test binary's `deps/` directory (for the client crate's own tests of it).
pub(crate) fn taskctl_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("taskctl"))
        .expect("target directory");
    assert!(
        path.is_file(),
        "no taskctl at {}: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

fn address(server: &TestServer) -> String {
    format!("http://{}", server.server.as_ref().expect("running").local_addr())
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.stdout))
    }
}

async fn taskctl(server: &TestServer, args: &[&str]) -> Run {
    let output = tokio::time::timeout(
        BOUND,
        Command::new(taskctl_binary())
            .arg("--server")
            .arg(address(server))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("taskctl finishes within its bound")
    .expect("taskctl runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn submit_get_list_and_cancel_from_the_shell() {
    let server = TestServer::start().await;
    let submitted = taskctl(
        &server,
        &[
            "--json",
            "submit",
            "document_processing",
            "--params",
            r#"{"path": "a.pdf"}"#,
            "--priority",
            "high",
            "--label",
            "team=docs",
        ],
    )
    .await;
    assert_eq!(submitted.code, 0, "{}", submitted.stderr);
    let task = submitted.json();
    let id = task["id"].as_str().expect("an id").to_string();
    assert_eq!(task["priority"], "HIGH");
    assert_eq!(task["params"]["path"], "a.pdf");

    let shown = taskctl(&server, &["get", &id]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    for expected in [
        id.as_str(),
        "document_processing",
        "pending",
        "high",
        "team=docs",
        r#"{"path":"a.pdf"}"#,
    ] {
        assert!(shown.stdout.contains(expected), "{expected:?} in:\n{}", shown.stdout);
    }

    let listed = taskctl(&server, &["list", "--status", "pending", "--label", "team=docs"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let mut lines = listed.stdout.lines();
    let header = lines.next().expect("a header");
    assert!(header.starts_with("ID") && header.contains("STATUS"), "{header}");
    let row = lines.next().expect("a row");
    assert!(row.starts_with(&id) && row.contains("pending"), "{row}");

    let cancelled = taskctl(&server, &["--json", "cancel", &id, "--reason", "not needed"]).await;
    assert_eq!(cancelled.code, 0, "{}", cancelled.stderr);
    assert_eq!(cancelled.json()["status"], "CANCELLED");
    let pending = taskctl(&server, &["--json", "list", "--status", "pending"]).await;
    assert_eq!(pending.json(), serde_json::json!([]));
}

#[tokio::test]
async fn submit_wait_prints_the_finished_task_and_its_exit_code_says_how_it_ended() {
    let server = TestServer::start().await;
    let completed = taskctl(
        &server,
        &["--json", "submit", "diag.echo", "--params", r#"{"n": 7}"#, "--wait"],
    )
    .await;
    assert_eq!(completed.code, 0, "{}", completed.stderr);
    let task = completed.json();
    assert_eq!(task["status"], "COMPLETED");
    assert_eq!(task["result"]["n"], 7);

    let failed = taskctl(
        &server,
        &[
            "submit",
            "diag.fail",
            "--params",
            r#"{"message": "boom"}"#,
            "--max-retries",
            "0",
            "--wait",
        ],
    )
    .await;
    assert_eq!(failed.code, 2, "{}\n{}", failed.stdout, failed.stderr);
    assert!(failed.stdout.contains("failed"), "{}", failed.stdout);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let server = TestServer::start().await;
    let not_json = taskctl(&server, &["submit", "diag.echo", "--params", "{oops"]).await;
    assert_eq!(not_json.code, 1);
    assert!(not_json.stderr.contains("--params"), "{}", not_json.stderr);

    let not_object = taskctl(&server, &["submit", "diag.echo", "--params", "[1]"]).await;
    assert_eq!(not_object.code, 1);
    assert!(
        not_object.stderr.contains("--params: must be a JSON object"),
        "{}",
        not_object.stderr
    );

    let typo = taskctl(&server, &["submit", "report_generaton"]).await;
    assert_eq!(typo.code, 1);
    assert!(
        typo.stderr.contains("task_type") && typo.stderr.contains("report_generation"),
        "{}",
        typo.stderr
    );

    let status = taskctl(&server, &["list", "--status", "done"]).await;
    assert_eq!(status.code, 2, "clap refuses a bad value");
    assert!(status.stderr.contains("--status"), "{}", status.stderr);
}

#[tokio::test]
async fn watch_follows_a_task_live_until_it_finishes() {
    let server = TestServer::start().await;
    let task = server
        .client
        .submit(NewTask::new("document_processing"))
        .await
        .expect("submit");
    let mut watch = Command::new(taskctl_binary())
        .args(["--server", &address(&server), "watch", &task.id])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("taskctl watch starts");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(BOUND, lines.next_line())
        .await
        .expect("a first line in time")
        .expect("reads")
        .expect("a line");
    assert!(first.contains(&task.id) && first.contains("is pending"), "{first}");

    // Printed while taskctl is still running, not at its end.
    server.client.cancel(&task.id, "watched").await.expect("cancel");
    let next = tokio::time::timeout(BOUND, lines.next_line())
        .await
        .expect("the change in time")
        .expect("reads")
        .expect("a line");
    assert!(next.contains("pending -> cancelled"), "{next}");
    let status = tokio::time::timeout(BOUND, watch.wait())
        .await
        .expect("watch ends with the task")
        .expect("exit status");
    assert!(status.success());
}

#[tokio::test]
async fn stats_workers_and_types_read_as_tables_and_as_json() {
    let server = TestServer::start().await;
    let worker = Worker::new(&server.client)
        .worker_id("shell-worker")
        .capacity(3)
        .handle("thumbnails", |_run| async { Ok(serde_json::json!({})) });
    let running = tokio::spawn(worker.run_until(std::future::pending()));
    crate::support::within("the worker to connect", async {
        while server.client.workers().await.expect("workers").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let done = server.client.submit(NewTask::new("thumbnails")).await.expect("submit");
    assert_eq!(server.wait(&done.id).await.status(), TaskStatus::Completed);
    server
        .client
        .submit(NewTask::new("vector_store_update"))
        .await
        .expect("submit");

    let workers = taskctl(&server, &["workers"]).await;
    assert_eq!(workers.code, 0, "{}", workers.stderr);
    let row = workers.stdout.lines().nth(1).expect("a worker row");
    for expected in ["shell-worker", "3", "serving", "thumbnails"] {
        assert!(row.contains(expected), "{expected:?} in {row}");
    }
    let workers_json = taskctl(&server, &["--json", "workers"]).await.json();
    assert_eq!(workers_json[0]["workerId"], "shell-worker");
    assert_eq!(workers_json[0]["finished"], "1", "uint64 is a string in protobuf JSON");

    let stats = taskctl(&server, &["stats"]).await;
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    assert!(
        stats
            .stdout
            .contains("waiting with nothing to run them: vector_store_update"),
        "{}",
        stats.stdout
    );
    let thumbnails = stats
        .stdout
        .lines()
        .find(|line| line.starts_with("thumbnails"))
        .expect("a thumbnails row");
    assert_eq!(
        thumbnails.split_whitespace().collect::<Vec<_>>(),
        ["thumbnails", "0", "0", "1", "0", "0", "1", "yes"]
    );
    let stats_json = taskctl(&server, &["--json", "stats"]).await.json();
    assert_eq!(stats_json["unservedTaskTypes"][0], "vector_store_update");

    let types = taskctl(&server, &["types"]).await;
    assert!(
        types
            .stdout
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["thumbnails", "yes", "1"]),
        "{}",
        types.stdout
    );
    running.abort();
}

#[tokio::test]
async fn an_error_is_said_once() {
    let server = TestServer::start().await;
    let refused = taskctl(&server, &["get", "0193"]).await;
    assert_eq!(refused.code, 1);
    let said = "task_id: \"0193\" is not a task id";
    assert_eq!(refused.stderr.matches(said).count(), 1, "{}", refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    let unknown = taskctl(&server, &["submit", "report_generaton"]).await;
    assert_eq!(unknown.stderr.matches("did you mean").count(), 1, "{}", unknown.stderr);
}

#[tokio::test]
async fn forget_type_removes_a_declared_type_and_refuses_a_built_in() {
    let server = TestServer::start().await;
    let worker = Worker::new(&server.client)
        .worker_id("once")
        .handle("thumbnails", |_run| async { Ok(serde_json::json!({})) });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    crate::support::within("the worker to connect", async {
        while server.client.workers().await.expect("workers").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let _ = stop.send(());
    running.await.expect("joined").expect("drained");
    let forgot = crate::support::within("the type to be forgotten", async {
        loop {
            let run = taskctl(&server, &["forget-type", "thumbnails"]).await;
            // Until the worker's session has closed, it still serves it.
            if !run.stderr.contains("connected workers serve it") {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(forgot.code, 0, "{}", forgot.stderr);
    assert_eq!(forgot.stdout.trim(), "forgot task type thumbnails");
    let types = taskctl(&server, &["--json", "types"]).await.json();
    assert!(
        !types
            .as_array()
            .unwrap()
            .iter()
            .any(|info| info["taskType"] == "thumbnails"),
        "{types}"
    );
    let refused = taskctl(&server, &["forget-type", "data_export"]).await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("taskd serves it"), "{}", refused.stderr);
}

#[tokio::test]
async fn schedules_are_created_listed_paused_triggered_and_deleted_from_the_shell() {
    let server = TestServer::start().await;
    let created = taskctl(
        &server,
        &[
            "--json",
            "schedules",
            "create",
            "nightly-export",
            "data_export",
            "--cron",
            "30 2 * * *",
            "--time-zone",
            "Europe/Paris",
            "--params",
            r#"{"format": "csv"}"#,
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let created = created.json();
    assert_eq!(created["definition"]["name"], "nightly-export");
    assert_eq!(created["nextFireTimes"].as_array().map(Vec::len), Some(5));

    let listed = taskctl(&server, &["schedules", "list"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains("nightly-export"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("cron 30 2 * * * (Europe/Paris)"),
        "{}",
        listed.stdout
    );

    let paused = taskctl(&server, &["schedules", "pause", "nightly-export", "--note", "audit"]).await;
    assert!(paused.stdout.contains("paused: audit"), "{}", paused.stdout);

    let triggered = taskctl(&server, &["--json", "schedules", "trigger", "nightly-export"]).await;
    assert_eq!(triggered.code, 0, "{}", triggered.stderr);
    assert_eq!(triggered.json()["labels"]["schedule"], "nightly-export");

    let updated = taskctl(
        &server,
        &[
            "--json",
            "schedules",
            "update",
            "nightly-export",
            "data_export",
            "--every",
            "6h",
            "--offset",
            "30m",
            "--max-retries",
            "2",
            "--label",
            "team=search",
            "--max-fires",
            "3",
        ],
    )
    .await;
    assert_eq!(updated.code, 0, "{}", updated.stderr);
    let definition = &updated.json()["definition"];
    assert_eq!(definition["spec"]["interval"]["every"], "21600s", "{definition}");
    assert_eq!(definition["spec"]["interval"]["offset"], "1800s", "{definition}");
    assert_eq!(definition["template"]["maxRetries"], 2, "{definition}");
    assert_eq!(definition["template"]["labels"]["team"], "search", "{definition}");
    assert_eq!(
        definition["maxFires"], "3",
        "proto3 JSON writes 64-bit integers as strings"
    );

    let backfilled = taskctl(
        &server,
        &[
            "--json",
            "schedules",
            "backfill",
            "nightly-export",
            "--from",
            "2030-01-01T00:00:00Z",
            "--to",
            "2030-01-02T00:00:00Z",
        ],
    )
    .await;
    assert_eq!(backfilled.code, 0, "{}", backfilled.stderr);
    let fired = backfilled.json();
    let nominal: Vec<&str> = fired
        .as_array()
        .expect("the tasks")
        .iter()
        .filter_map(|task| task["labels"]["team"].as_str())
        .collect();
    assert_eq!(nominal, ["search"; 4], "00:30, 06:30, 12:30 and 18:30: {fired}");

    let bad = taskctl(
        &server,
        &["schedules", "create", "broken", "data_export", "--cron", "61 * * * *"],
    )
    .await;
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("schedule.spec.cron.expression"), "{}", bad.stderr);

    let deleted = taskctl(&server, &["schedules", "delete", "nightly-export"]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let gone = taskctl(&server, &["schedules", "get", "nightly-export"]).await;
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
}
