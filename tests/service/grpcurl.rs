//! The real grpcurl against a real server, with reflection only (no proto
//! files on the client side): the README's examples, as written.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::TestServer;

pub fn grpcurl_path() -> PathBuf {
    let path = std::env::var_os("GRPCURL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/grpcurl"));
    assert!(
        path.exists(),
        "grpcurl not found at {}; run scripts/setup-test-tools.sh",
        path.display()
    );
    path
}

/// Runs grpcurl against `server`; returns stdout, panicking with stderr on failure.
fn grpcurl(server: &TestServer, args: &[&str]) -> String {
    let address = server.server.as_ref().expect("running").local_addr().to_string();
    let mut command = Command::new(grpcurl_path());
    command.arg("-plaintext").arg("-max-time").arg("20");
    let (flags, rest): (Vec<&str>, Vec<&str>) = split_flags(args);
    command.args(flags).arg(&address).args(rest);
    let output = command.output().expect("grpcurl runs");
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// grpcurl wants its flags before the address and the verb after it.
fn split_flags<'a>(args: &[&'a str]) -> (Vec<&'a str>, Vec<&'a str>) {
    match args.iter().position(|arg| *arg == "-d") {
        Some(at) => (args[at..at + 2].to_vec(), [&args[..at], &args[at + 2..]].concat()),
        None => (Vec::new(), args.to_vec()),
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_lists_the_task_and_health_services_through_reflection() {
    let server = TestServer::start().await;
    let listing = tokio::task::block_in_place(|| grpcurl(&server, &["list"]));
    assert!(listing.lines().any(|line| line == "taskd.v1.TaskService"), "{listing}");
    assert!(listing.lines().any(|line| line == "grpc.health.v1.Health"), "{listing}");

    let health = tokio::task::block_in_place(|| grpcurl(&server, &["grpc.health.v1.Health/Check"]));
    assert_eq!(json(&health)["status"], "SERVING");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_describe_shows_comments_on_rpcs_messages_and_fields() {
    let server = TestServer::start().await;
    let service = tokio::task::block_in_place(|| grpcurl(&server, &["describe", "taskd.v1.TaskService"]));
    assert!(
        service.contains("// Accepts one task and returns it once it is durable."),
        "{service}"
    );
    let task = tokio::task::block_in_place(|| grpcurl(&server, &["describe", "taskd.v1.Task"]));
    assert!(task.contains("// Retries used so far."), "{task}");
    let status = tokio::task::block_in_place(|| grpcurl(&server, &["describe", "taskd.v1.TaskStatus"]));
    assert!(status.contains("COMPLETED = 4"), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_grpcurl_examples_work_as_written() {
    let server = TestServer::start().await;
    let call = |args: &[&str]| tokio::task::block_in_place(|| grpcurl(&server, args));

    let submitted = json(&call(&[
        "-d",
        r#"{"name":"weekly","taskType":"report_generation","priority":"HIGH"}"#,
        "taskd.v1.TaskService/SubmitTask",
    ]));
    assert_eq!(submitted["priority"], "HIGH");
    let id = submitted["id"].as_str().expect("id").to_string();

    let watched = call(&[
        "-d",
        &format!(r#"{{"taskId":"{id}"}}"#),
        "taskd.v1.TaskService/WatchTask",
    ]);
    assert!(watched.contains(r#""status": "COMPLETED""#), "{watched}");

    let fetched = json(&call(&[
        "-d",
        &format!(r#"{{"taskId":"{id}"}}"#),
        "taskd.v1.TaskService/GetTask",
    ]));
    assert_eq!(fetched["status"], "COMPLETED");
    assert_eq!(fetched["taskType"], "report_generation");

    let listed = json(&call(&[
        "-d",
        r#"{"statuses":["COMPLETED"],"pageSize":10}"#,
        "taskd.v1.TaskService/ListTasks",
    ]));
    assert_eq!(listed["tasks"][0]["id"], id.as_str());

    let dag = json(&call(&[
        "-d",
        r#"{"tasks":[
  {"batchRef":"a","taskType":"diag.echo"},
  {"batchRef":"b","taskType":"diag.echo","dependencies":[{"batchRef":"a"}]},
  {"batchRef":"c","taskType":"diag.echo","dependencies":[{"batchRef":"a"}]},
  {"taskType":"report_generation","dependencies":[{"batchRef":"b"},{"batchRef":"c"}]}]}"#,
        "taskd.v1.TaskService/SubmitTasks",
    ]));
    assert_eq!(dag["tasks"].as_array().map(Vec::len), Some(4));

    let in_an_hour = humantime::format_rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(3600));
    let late = json(&call(&[
        "-d",
        &format!(r#"{{"taskType":"diag.echo","runAt":"{in_an_hour}"}}"#),
        "taskd.v1.TaskService/SubmitTask",
    ]));
    assert_eq!(late["status"], "SCHEDULED");
    let late_id = late["id"].as_str().expect("id");
    let cancelled = json(&call(&[
        "-d",
        &format!(r#"{{"taskId":"{late_id}","reason":"not needed"}}"#),
        "taskd.v1.TaskService/CancelTask",
    ]));
    assert_eq!(cancelled["status"], "CANCELLED");

    let load = json(&call(&["taskd.v1.SystemService/GetSystemLoad"]));
    assert_eq!(load["maxConcurrentTasks"], 4, "{load}");
    let alerts = call(&["taskd.v1.SystemService/ListAlerts"]);
    assert!(alerts.trim().starts_with('{'), "{alerts}");

    let stats = json(&call(&["taskd.v1.TaskService/GetTaskStats"]));
    assert!(
        stats["counts"]["total"].as_str().is_some(),
        "uint64 is a JSON string: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grpcurl_reports_a_bad_request_with_the_field_named() {
    let server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").local_addr().to_string();
    let output = Command::new(grpcurl_path())
        .args([
            "-plaintext",
            "-max-time",
            "20",
            "-d",
            r#"{"taskType":""}"#,
            &address,
            "taskd.v1.TaskService/SubmitTask",
        ])
        .output()
        .expect("grpcurl runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("task_type"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_v1_serves_the_schema_too() {
    use futures::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start().await;
    let address = format!("http://{}", server.server.as_ref().expect("running").local_addr());
    let channel = tonic::transport::Endpoint::from_shared(address)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = crate::support::within("a response", responses.next())
        .await
        .unwrap()
        .unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    assert!(names.contains(&"taskd.v1.TaskService".to_string()), "{names:?}");
}
