//! The README's grpcurl and curl examples, run as a new user runs them: as
//! written, in order, on a fresh server, with only the address and the
//! `<id>` of the task the first example submitted filled in. Each one must
//! succeed and do what the README says it does.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use taskd_client::TaskStatus;

use crate::support::TestServer;

fn readme() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md")
}

/// The commands of the first `sh` block under `heading`, continuation lines
/// (a trailing `\\`, or a single-quoted string still open) joined, comments
/// and blank lines left out.
fn examples(heading: &str) -> Vec<String> {
    let text = readme();
    let section = text
        .split(&format!("\n## {heading}"))
        .nth(1)
        .unwrap_or_else(|| panic!("README has a section {heading:?}"));
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("an sh block");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        if current.is_empty() && (line.trim_start().starts_with('#') || line.trim().is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => current.push_str(start),
            None => {
                current.push_str(line);
                if current.matches('\'').count() % 2 == 1 {
                    current.push('\n');
                } else {
                    commands.push(std::mem::take(&mut current));
                }
            }
        }
    }
    commands
}

/// A command that streams until interrupted: run for a moment, then
/// stopped as Ctrl-C would.
fn streams(command: &str) -> bool {
    command.contains("Ctrl-C")
}

struct Outcome {
    stdout: String,
    stderr: String,
}

fn run(command: &str, address: &str, id: Option<&str>) -> Outcome {
    let mut command = command
        .replace("127.0.0.1:50051", address)
        .replace("localhost:50051", address);
    if command.contains("<id>") {
        let id = id.expect("an example uses <id> before any task was submitted");
        command = command.replace("<id>", id);
    }
    if let Some(rest) = command.strip_prefix("grpcurl ") {
        command = format!("{} {rest}", crate::grpcurl::grpcurl_path().display());
    }
    let seconds = if streams(&command) { "2" } else { "30" };
    let output = Command::new("timeout")
        .args([seconds, "sh", "-c", &command])
        .output()
        .expect("sh runs");
    let outcome = Outcome {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let stopped = output.status.code() == Some(124);
    assert!(
        output.status.success() || (stopped && streams(&command)),
        "`{command}` failed ({:?}):\n{}\n{}",
        output.status,
        outcome.stdout,
        outcome.stderr
    );
    // curl exits 0 on an HTTP error; its body says so.
    if let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&outcome.stdout) {
        assert!(
            !(body.contains_key("code") && body.contains_key("message")),
            "`{command}` answered an error: {}",
            outcome.stdout
        );
    }
    outcome
}

fn id_of(json: &str) -> String {
    let value: Value = serde_json::from_str(json).unwrap_or_else(|error| panic!("not JSON ({error}): {json}"));
    value["id"].as_str().expect("an id").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grpcurl_examples_run_as_written_in_order() {
    let server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").local_addr().to_string();
    let mut id: Option<String> = None;
    for command in examples("Use it with grpcurl") {
        let outcome = run(&command, &address, id.as_deref());
        if command.trim_end().ends_with("TaskService/SubmitTask") && id.is_none() {
            let submitted = id_of(&outcome.stdout);
            // A user reads the answer before typing the next command.
            server.wait_for_status(&submitted, TaskStatus::Running).await;
            id = Some(submitted);
        }
        let id = id.as_deref().unwrap_or("");
        if command.contains("TaskService/ListTasks") {
            assert!(
                outcome.stdout.contains(id),
                "the list finds the running task: {}",
                outcome.stdout
            );
        }
        if command.contains("TaskService/CancelTask") {
            assert!(
                outcome.stdout.contains("\"CANCELLED\""),
                "cancelled while it ran: {}",
                outcome.stdout
            );
        }
        if command.contains("TaskService/WatchTask") {
            assert!(
                outcome.stdout.contains("CANCELLED"),
                "the watch ends with the task: {}",
                outcome.stdout
            );
        }
        if command.ends_with(" list") {
            assert!(outcome.stdout.contains("taskd.v1.TaskService"), "{}", outcome.stdout);
        }
    }
    assert!(id.is_some(), "the examples submit a task");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_curl_examples_run_as_written_in_order() {
    let server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").local_addr().to_string();
    let mut id: Option<String> = None;
    for command in examples("Use it with curl") {
        let outcome = run(&command, &address, id.as_deref());
        if command.contains("-X POST") && command.contains("/api/v1/tasks ") && id.is_none() {
            id = Some(id_of(&outcome.stdout));
        }
        let id = id.as_deref().unwrap_or("");
        if command.contains("/api/v1/tasks?status=PENDING") {
            let listed: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
            assert_eq!(listed["tasks"][0]["id"], id, "the list finds what was submitted");
        }
        if command.contains("/cancel") {
            let cancelled: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
            assert_eq!(cancelled["status"], "CANCELLED");
        }
        if command.contains("/events") && !streams(&command) {
            assert!(outcome.stdout.contains("CANCELLED"), "{}", outcome.stdout);
        }
        if command.contains("healthz") {
            assert!(
                outcome.stdout.contains("\"ok\"") && outcome.stdout.contains("\"ready\""),
                "{}",
                outcome.stdout
            );
        }
    }
    tokio::time::sleep(Duration::ZERO).await;
    assert!(id.is_some(), "the examples submit a task");
}
