//! The real `taskd` binary, killed with SIGKILL: every acknowledged submit
//! must be there when it starts again on the same data dir.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use taskd_client::{Client, ListTasksRequest, NewTask, TaskStatus, labels};

/// Starts `taskd serve` on port 0 and returns it with its address.
fn spawn_taskd(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("TASKD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("taskd starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let address = line
        .trim()
        .strip_prefix("taskd listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, format!("http://{address}"))
}

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
