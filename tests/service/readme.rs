//! The documentation's shell examples, run as a new user runs them: as
//! written, in order, on a fresh server, with only the address and the
//! `<id>` of the task the first example submitted filled in. Each one must
//! succeed and do what the text says it does; and each check below must
//! find the command it checks, so rewording the docs cannot quietly leave
//! a command unchecked. (The Python blocks are run by the Python suite:
//! `client/python/tests/test_docs.py`.)

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use taskd_client::TaskStatus;

use crate::support::TestServer;

fn document(path: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The commands of the first `sh` block under the heading `heading` (a
/// whole line, `## ...` or `### ...`) of `path`, continuation lines (a
/// trailing `\\`, or a single-quoted string still open) joined, comments
/// and blank lines left out.
fn examples(path: &str, heading: &str) -> Vec<String> {
    let text = document(path);
    let section = text
        .split(&format!("\n{heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("{path} has a heading {heading:?}"));
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .unwrap_or_else(|| panic!("an sh block under {heading:?} in {path}"));
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

/// The checks a walk through examples made, to compare with those it must.
#[derive(Default)]
struct Checked(BTreeSet<&'static str>);

impl Checked {
    fn done(&mut self, check: &'static str) {
        self.0.insert(check);
    }

    fn all_of(&self, expected: &[&'static str]) {
        let missing: Vec<_> = expected.iter().filter(|check| !self.0.contains(*check)).collect();
        assert!(missing.is_empty(), "no example was found for the checks {missing:?}");
    }
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

/// Runs the grpcurl commands of `path` under `heading` against `server`,
/// checking what each says it does; the checks made.
async fn run_grpcurl_examples(server: &TestServer, path: &str, heading: &str) -> Checked {
    let address = server.server.as_ref().expect("running").local_addr().to_string();
    let mut checked = Checked::default();
    let mut id: Option<String> = None;
    for command in examples(path, heading) {
        let outcome = run(&command, &address, id.as_deref());
        if command.trim_end().ends_with("TaskService/SubmitTask") && id.is_none() {
            let submitted = id_of(&outcome.stdout);
            // A user reads the answer before typing the next command.
            server.wait_for_status(&submitted, TaskStatus::Running).await;
            id = Some(submitted);
            checked.done("submit");
        }
        let id = id.as_deref().unwrap_or("");
        if command.contains("TaskService/ListTasks") {
            assert!(
                outcome.stdout.contains(id),
                "the list finds the running task: {}",
                outcome.stdout
            );
            checked.done("list");
        }
        if command.contains("TaskService/CancelTask") {
            assert!(
                outcome.stdout.contains("\"CANCELLED\""),
                "cancelled while it ran: {}",
                outcome.stdout
            );
            checked.done("cancel");
        }
        if command.contains("TaskService/WatchTask") {
            let ending = if checked.0.contains("cancel") {
                "CANCELLED"
            } else {
                "COMPLETED"
            };
            assert!(
                outcome.stdout.contains(ending),
                "the watch ends with the task, {ending}: {}",
                outcome.stdout
            );
            checked.done("watch");
        }
        if command.ends_with(" list") {
            assert!(outcome.stdout.contains("taskd.v1.TaskService"), "{}", outcome.stdout);
            checked.done("services");
        }
        if command.contains("TaskService/SubmitTasks") {
            assert_eq!(
                id_list(&outcome.stdout).len(),
                4,
                "the DAG's four tasks: {}",
                outcome.stdout
            );
            checked.done("dag");
        }
        if command.contains("Health/Check") {
            assert!(outcome.stdout.contains("SERVING"), "{}", outcome.stdout);
            checked.done("health");
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_pages_grpcurl_examples_run_as_written_in_order() {
    let server = TestServer::start().await;
    let checked = run_grpcurl_examples(&server, "docs/api.md", "## gRPC with grpcurl").await;
    checked.all_of(&["services", "submit", "list", "cancel", "watch", "dag", "health"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstarts_grpcurl_examples_run_as_written_in_order() {
    let server = TestServer::start().await;
    let checked = run_grpcurl_examples(&server, "README.md", "### grpcurl").await;
    checked.all_of(&["services", "submit", "watch"]);
}

/// The ids of the tasks a SubmitTasks or batch answer holds.
fn id_list(json: &str) -> Vec<String> {
    let value: Value = serde_json::from_str(json).unwrap_or_else(|error| panic!("not JSON ({error}): {json}"));
    value["tasks"]
        .as_array()
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|task| task["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_pages_curl_examples_run_as_written_in_order() {
    let server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").local_addr().to_string();
    let mut checked = Checked::default();
    let mut id: Option<String> = None;
    for command in examples("docs/api.md", "## REST with curl") {
        let outcome = run(&command, &address, id.as_deref());
        if command.contains("-X POST") && command.contains("/api/v1/tasks ") && id.is_none() {
            id = Some(id_of(&outcome.stdout));
            checked.done("submit");
        }
        let id = id.as_deref().unwrap_or("");
        if command.contains("/api/v1/tasks?status=PENDING") {
            let listed: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
            assert_eq!(listed["tasks"][0]["id"], id, "the list finds what was submitted");
            checked.done("list");
        }
        if command.contains("/cancel") {
            let cancelled: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
            assert_eq!(cancelled["status"], "CANCELLED");
            checked.done("cancel");
        }
        if command.contains("/api/v1/tasks/batch") {
            assert_eq!(id_list(&outcome.stdout).len(), 2, "{}", outcome.stdout);
            checked.done("batch");
        }
        if command.contains("/events") && !streams(&command) {
            assert!(outcome.stdout.contains("CANCELLED"), "{}", outcome.stdout);
            checked.done("events");
        }
        if command.contains("healthz") {
            assert!(
                outcome.stdout.contains("\"ok\"") && outcome.stdout.contains("\"ready\""),
                "{}",
                outcome.stdout
            );
            checked.done("health");
        }
    }
    checked.all_of(&["submit", "list", "cancel", "batch", "events", "health"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstarts_curl_examples_run_as_written_in_order() {
    let server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").local_addr().to_string();
    let mut checked = Checked::default();
    let mut id: Option<String> = None;
    for command in examples("README.md", "### Submit a task and watch it") {
        let outcome = run(&command, &address, id.as_deref());
        if command.contains("-X POST") && id.is_none() {
            id = Some(id_of(&outcome.stdout));
            checked.done("submit");
        }
        let id = id.as_deref().unwrap_or("");
        let gets_the_task = command
            .split_whitespace()
            .any(|word| word.ends_with("/api/v1/tasks/<id>"));
        if gets_the_task {
            assert_eq!(id_of(&outcome.stdout), id);
            checked.done("get");
        }
        if command.contains("/events") {
            // The stream runs until the task ends, as the text says.
            assert!(outcome.stdout.contains("event: SNAPSHOT"), "{}", outcome.stdout);
            assert!(outcome.stdout.contains("\"COMPLETED\""), "{}", outcome.stdout);
            checked.done("events");
        }
        if command.contains("/attempts") {
            let attempts: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
            assert_eq!(attempts["attempts"][0]["outcome"], "SUCCEEDED", "{attempts}");
            checked.done("attempts");
        }
        if command.contains("status=COMPLETED") {
            assert!(
                outcome.stdout.contains(id),
                "the finished task is listed: {}",
                outcome.stdout
            );
            checked.done("list");
        }
        if command.contains("/api/v1/tasks/stats") {
            let stats: Value = serde_json::from_str(&outcome.stdout).expect("JSON");
            assert_eq!(stats["counts"]["completed"], 1, "{stats}");
            checked.done("stats");
        }
    }
    checked.all_of(&["submit", "get", "events", "attempts", "list", "stats"]);
}
