//! The real `taskd` binary: killed with SIGKILL, every acknowledged submit
//! is there when it starts again on the same data dir; stopped with SIGTERM,
//! it exits cleanly; configured by file, environment and flags, in that
//! order of precedence.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use taskd_client::{Client, ListTasksRequest, NewTask, TaskStatus, labels};

use crate::support::{spawn_taskd, spawn_with};

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_loses_no_acknowledged_task() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, address) = spawn_taskd(dir.path());
    let client = Client::connect(address).await.unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    let mut submitters = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        submitters.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..25 {
                let task = NewTask::new("diag.echo").run_at(later).label("run", "crash");
                ids.push(client.submit(task).await.unwrap().id);
            }
            ids
        }));
    }
    let mut acknowledged = Vec::new();
    for submitter in submitters {
        acknowledged.extend(submitter.await.unwrap());
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    let (mut second, address) = spawn_taskd(dir.path());
    let client = Client::connect(address).await.unwrap();
    let tasks = client
        .list_all(ListTasksRequest {
            labels: labels([("run", "crash")]),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut found: Vec<String> = tasks.iter().map(|task| task.id.clone()).collect();
    found.sort();
    acknowledged.sort();
    assert_eq!(found, acknowledged);
    assert!(tasks.iter().all(|task| task.status() == TaskStatus::Scheduled));
    second.kill().expect("SIGKILL");
    let _ = second.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = spawn_taskd(dir.path());
    let client = Client::connect(address).await.unwrap();
    client.submit(NewTask::new("diag.echo")).await.unwrap();
    tokio::task::block_in_place(|| crate::support::terminate(&mut child));
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_the_file_then_the_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("taskd.toml");
    std::fs::write(
        &config,
        "[engine]\nmax_concurrent_tasks = 7\ntype_concurrency_limits = { data_export = 2 }\n",
    )
    .unwrap();

    let stats = |address: String| async move { Client::connect(address).await.unwrap().stats().await.unwrap() };

    let (mut from_file, address) = spawn_with(dir.path(), |command| command.arg("--config").arg(&config));
    let from_file_stats = stats(address).await;
    assert_eq!(from_file_stats.max_concurrent_tasks, 7);
    let export = from_file_stats
        .by_type
        .iter()
        .find(|t| t.task_type == "data_export")
        .unwrap();
    assert_eq!(export.concurrency_limit, 2);
    from_file.kill().unwrap();
    let _ = from_file.wait();

    let (mut from_env, address) = spawn_with(dir.path(), |command| {
        command
            .arg("--config")
            .arg(&config)
            .env("TASKD_MAX_CONCURRENT_TASKS", "5")
    });
    assert_eq!(stats(address).await.max_concurrent_tasks, 5);
    from_env.kill().unwrap();
    let _ = from_env.wait();

    let (mut from_flag, address) = spawn_with(dir.path(), |command| {
        command
            .arg("--config")
            .arg(&config)
            .env("TASKD_MAX_CONCURRENT_TASKS", "5")
            .args(["--max-concurrent-tasks", "3"])
    });
    assert_eq!(stats(address).await.max_concurrent_tasks, 3);
    from_flag.kill().unwrap();
    let _ = from_flag.wait();
}

#[test]
fn an_unknown_config_key_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("taskd.toml");
    std::fs::write(&config, "[engine]\nmax_concurent_tasks = 7\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_concurent_tasks"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_thresholds_come_from_flags_and_the_environment() {
    use taskd_client::proto::GetSystemLoadRequest;
    use taskd_client::proto::system_service_client::SystemServiceClient;

    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = spawn_with(dir.path(), |command| {
        command
            .args(["--cpu-threshold", "70", "--monitor-interval", "250ms"])
            .env("TASKD_MEMORY_THRESHOLD", "60")
    });
    let mut system = SystemServiceClient::connect(address).await.unwrap();
    let load = system
        .get_system_load(GetSystemLoadRequest {})
        .await
        .unwrap()
        .into_inner();
    let thresholds = load.thresholds.unwrap();
    assert_eq!((thresholds.cpu_percent, thresholds.memory_percent), (70.0, 60.0));
    assert_eq!((thresholds.disk_percent, thresholds.io_wait_percent), (90.0, 30.0));
    assert!(load.monitoring_enabled);
    child.kill().unwrap();
    let _ = child.wait();

    let output = Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cpu-threshold",
            "150",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--cpu-threshold"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_task_id_as_a_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(dir.path())
        .env("TASKD_LOG", "taskd=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let address = format!("http://{}", line.trim().trim_start_matches("taskd listening on "));
    let client = Client::connect(address).await.unwrap();
    let task = client.submit(NewTask::new("diag.echo")).await.unwrap();
    client.wait(&task.id).await.unwrap();
    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    let records: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert!(
        records
            .iter()
            .any(|record| record["fields"]["task_id"] == task.id.as_str()),
        "no record names task {}: {logs}",
        task.id
    );
}
