//! The REST bridge over HTTP/1.1 on the gRPC listener: the seed's paths,
//! proto3 JSON bodies identical to the gRPC messages, errors with the field
//! named, Server-Sent Events, health, metrics and the OpenAPI document.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use taskd_client::{NewTask, TaskStatus};

use crate::support::{TestServer, within};

fn base(server: &TestServer) -> String {
    format!("http://{}", server.server.as_ref().expect("running").local_addr())
}

async fn post(url: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn get(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_seeds_five_endpoints_create_list_get_cancel_and_count_tasks() {
    let server = TestServer::start().await;
    let api = format!("{}/api/v1", base(&server));

    let (status, created) = post(
        &format!("{api}/tasks"),
        r#"{"name":"Process Document","taskType":"document_processing","params":{"document_id":"123"},"priority":"HIGH"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["priority"], "HIGH");
    let id = created["id"].as_str().unwrap().to_string();

    let (status, fetched) = get(&format!("{api}/tasks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["params"], json!({"document_id": "123"}));

    let (status, listed) = get(&format!(
        "{api}/tasks?status=PENDING&task_type=document_processing&page_size=10"
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["tasks"][0]["id"], id.as_str());

    let (status, stats) = get(&format!("{api}/tasks/stats")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["counts"]["pending"], 1, "counts are JSON numbers: {stats}");
    assert_eq!(stats["counts"]["running"], 0, "and zeros are present: {stats}");

    let (status, cancelled) = post(&format!("{api}/tasks/{id}/cancel"), r#"{"reason":"not needed"}"#).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");

    let (status, again) = post(&format!("{api}/tasks/{id}/cancel"), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["code"], "FAILED_PRECONDITION");
}

#[tokio::test]
async fn a_task_reads_the_same_from_rest_as_from_grpc() {
    let server = TestServer::start().await;
    let task = server
        .client
        .submit(
            NewTask::new("diag.echo")
                .params(json!({"n": 1, "s": "x"}))
                .label("team", "search"),
        )
        .await
        .unwrap();
    let done = server.wait(&task.id).await;
    // The same task, written the REST way (snake_case, every field).
    let as_server_message =
        <taskd::api::proto::Task as prost::Message>::decode(prost::Message::encode_to_vec(&done).as_slice()).unwrap();
    let from_grpc = taskd::api::rest::json::to_value(&as_server_message);
    let (_, from_rest) = get(&format!("{}/api/v1/tasks/{}", base(&server), task.id)).await;
    assert_eq!(from_rest, from_grpc);
    assert_eq!(from_rest["task_type"], "diag.echo");
    assert_eq!(from_rest["params"], json!({"n": 1, "s": "x"}), "params read as written");
    assert!(from_rest["created_at"].as_str().unwrap().ends_with('Z'), "{from_rest}");
    let (_, attempts) = get(&format!("{}/api/v1/tasks/{}/attempts", base(&server), task.id)).await;
    assert_eq!(attempts["attempts"], from_grpc["attempts"]);
}

#[tokio::test]
async fn bad_requests_get_400_naming_the_field_and_never_a_5xx() {
    let server = TestServer::start().await;
    let api = format!("{}/api/v1", base(&server));
    let oversized = format!(r#"{{"taskType":"diag.echo","name":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed JSON", "{not json".into(), "body"),
        ("an empty body", "".into(), "body"),
        ("a wrong type", r#"{"taskType": 5}"#.into(), "taskType"),
        (
            "an unknown enum name",
            r#"{"taskType":"diag.echo","priority":"HUGE"}"#.into(),
            "priority",
        ),
        ("an empty task type", r#"{"taskType":""}"#.into(), "task_type"),
        ("an oversized body", oversized, "body"),
        (
            "a bad duration",
            r#"{"taskType":"diag.echo","timeout":"soon"}"#.into(),
            "timeout",
        ),
    ];
    for (what, body, field) in cases {
        let (status, error) = post(&format!("{api}/tasks"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {error}");
        assert_eq!(error["code"], "INVALID_ARGUMENT", "{what}");
        assert_eq!(error["field"], field, "{what}: {error}");
    }
    for (query, field) in [
        ("status=DONE", "status"),
        ("page_size=5000", "page_size"),
        ("page_size=abc", "page_size"),
        ("page_token=garbage", "page_token"),
        ("colour=red", "colour"),
        ("label=nocolon", "label"),
    ] {
        let (status, error) = get(&format!("{api}/tasks?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["field"], field, "{query}: {error}");
    }
    let (status, error) = get(&format!("{api}/tasks/not-a-uuid")).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("task_id"))
    );
    let (status, error) = get(&format!("{api}/tasks/01900000-0000-7000-8000-000000000000")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (status, _) = get(&format!("{}/no/such/path", base(&server))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // And the server still serves.
    let (status, _) = post(&format!("{api}/tasks"), r#"{"taskType":"diag.echo"}"#).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_task_event_stream_sends_the_state_then_each_change_and_ends() {
    let server = TestServer::start().await;
    let task = server.client.submit(NewTask::new("test.gate")).await.unwrap();
    let response = reqwest::get(format!("{}/api/v1/tasks/{}/events", base(&server), task.id))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = response.bytes_stream();
    let first = String::from_utf8(within("the first event", body.next()).await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("event: SNAPSHOT"), "{first}");
    server.gate.open(1);
    let mut text = first;
    while let Some(chunk) = within("the next chunk", body.next()).await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["task"]["status"], "COMPLETED");
    assert_eq!(last["previous_status"], "RUNNING");
    // Enum names without a prefix everywhere: a snapshot has no previous
    // status, rather than TASK_STATUS_UNSPECIFIED.
    assert_eq!(events[0]["kind"], "SNAPSHOT");
    assert!(events[0].get("previous_status").is_none(), "{}", events[0]);
    assert!(!text.contains("UNSPECIFIED"), "{text}");
}

#[tokio::test]
async fn health_readiness_and_the_openapi_document_are_served() {
    let server = TestServer::start().await;
    let (status, health) = get(&format!("{}/healthz", base(&server))).await;
    assert_eq!((status, health["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, ready) = get(&format!("{}/readyz", base(&server))).await;
    assert_eq!((status, ready["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (status, spec) = get(&format!("{}/api/v1/openapi.json", base(&server))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(spec["openapi"], "3.0.3");
    for path in [
        "/api/v1/tasks",
        "/api/v1/tasks/{task_id}",
        "/api/v1/tasks/{task_id}/cancel",
        "/api/v1/tasks/stats",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} documented");
    }
}

/// Parses the Prometheus text format: `name{labels} value` per sample line.
/// A series with its labels in name order: the exposition format leaves
/// their order to the writer.
fn normalized(series: &str) -> String {
    let Some((name, labels)) = series.split_once('{') else {
        return series.to_string();
    };
    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF",
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name {name:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unterminated labels in {line:?}");
        }
        assert!(
            samples.insert(normalized(series), value).is_none(),
            "duplicate series {series}"
        );
    }
    samples
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_counters_histograms_and_gauges() {
    let server = TestServer::start().await;
    for _ in 0..3 {
        let task = server.client.submit(NewTask::new("diag.echo")).await.unwrap();
        server.wait(&task.id).await;
    }
    let failing = server
        .client
        .submit(
            NewTask::new("diag.fail")
                .params(json!({"message": "no"}))
                .max_retries(1),
        )
        .await
        .unwrap();
    server.wait(&failing.id).await;

    let response = reqwest::get(format!("{}/metrics", base(&server))).await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(text.contains("# TYPE taskd_tasks_submitted counter\n"), "{text}");
    let samples = parse_exposition(&text);
    let at = |series: &str| {
        *samples
            .get(&normalized(series))
            .unwrap_or_else(|| panic!("{series} missing"))
    };
    assert_eq!(
        at(r#"taskd_tasks_submitted_total{task_type="diag.echo",priority="NORMAL"}"#),
        3.0
    );
    assert_eq!(
        at(r#"taskd_tasks_completed_total{task_type="diag.echo",priority="NORMAL"}"#),
        3.0
    );
    assert_eq!(
        at(r#"taskd_tasks_failed_total{task_type="diag.fail",priority="NORMAL"}"#),
        1.0
    );
    assert_eq!(
        at(r#"taskd_task_retries_total{task_type="diag.fail",priority="NORMAL"}"#),
        1.0
    );
    assert_eq!(at(r#"taskd_tasks{task_type="diag.echo",status="COMPLETED"}"#), 3.0);
    assert_eq!(at("taskd_effective_concurrency_limit"), 4.0);
    assert_eq!(at(r#"taskd_run_time_seconds_count{task_type="diag.fail"}"#), 2.0);
    assert_eq!(at(r#"taskd_queue_wait_seconds_count{task_type="diag.echo"}"#), 3.0);
    assert_eq!(
        at(r#"taskd_queue_wait_seconds_bucket{task_type="diag.echo",le="+Inf"}"#),
        3.0
    );
    let mut previous = 0.0;
    for bound in ["0.001", "0.01", "0.1", "1.0", "10.0", "600.0"] {
        let count = at(&format!(
            r#"taskd_queue_wait_seconds_bucket{{task_type="diag.echo",le="{bound}"}}"#
        ));
        assert!(count >= previous, "buckets are cumulative");
        previous = count;
    }
    assert!(samples.contains_key(&normalized(r#"taskd_alerts_active{resource="cpu"}"#)));
}

#[tokio::test]
async fn the_history_shows_what_happened_before_anyone_looked() {
    let server = TestServer::start_with(|config| config.monitor.history_interval = Duration::from_millis(50)).await;
    let tasks: Vec<NewTask> = (0..20)
        .map(|n| NewTask::new("diag.echo").params(json!({"n": n})))
        .collect();
    for task in server.client.submit_batch(tasks).await.unwrap() {
        server.wait(&task.id).await;
    }
    // The page is opened only now; the rates of the past are there.
    let url = format!("{}/api/v1/system/history", base(&server));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let history = loop {
        let (status, history) = get(&url).await;
        assert_eq!(status, StatusCode::OK);
        let points = history["points"].as_array().unwrap();
        let completed: u64 = points.iter().map(|point| point["completed"].as_u64().unwrap()).sum();
        if completed >= 20 {
            break history;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{completed} of 20 completions in {} points",
            points.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(history["interval_seconds"], 0.05);
    let points = history["points"].as_array().unwrap();
    let busy = points
        .iter()
        .find(|point| point["completed"].as_u64() > Some(0))
        .unwrap();
    let rate = busy["completed"].as_f64().unwrap() / 0.05;
    assert!(
        (busy["completed_per_second"].as_f64().unwrap() / rate - 1.0).abs() < 0.5,
        "a rate over the interval: {busy}"
    );
    let point = points.last().unwrap().clone();
    assert!(point["time"].as_str().unwrap().ends_with('Z'), "{point}");
    assert_eq!(point["effective_concurrency_limit"], 4);
    let with_starts = history["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|point| point["queue_wait_p50_seconds"].is_number())
        .expect("a point with starts has a queue wait");
    assert!(
        with_starts["queue_wait_p95_seconds"].as_f64().unwrap()
            >= with_starts["queue_wait_p50_seconds"].as_f64().unwrap()
    );
}

#[tokio::test]
async fn lists_search_names_and_find_the_dependents_of_a_task() {
    let server = TestServer::start().await;
    let api = format!("{}/api/v1", base(&server));
    let (status, batch) = post(
        &format!("{api}/tasks/batch"),
        r#"{"tasks":[{"batch_ref":"root","task_type":"document_processing","name":"Nightly import"},
                     {"task_type":"vector_store_update","name":"index","dependencies":[{"batch_ref":"root"}]},
                     {"task_type":"document_processing","name":"other"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let root = batch["tasks"][0]["id"].as_str().unwrap().to_string();
    let dependent = batch["tasks"][1]["id"].as_str().unwrap().to_string();

    let (_, by_name) = get(&format!("{api}/tasks?name=NIGHTLY")).await;
    let names: Vec<&str> = by_name["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Nightly import"]);

    let (_, downstream) = get(&format!("{api}/tasks?depends_on={root}")).await;
    let ids: Vec<&str> = downstream["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [dependent.as_str()]);

    let (status, bad) = get(&format!("{api}/tasks?depends_on=nope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["field"], "depends_on");
    let (status, long) = get(&format!("{api}/tasks?name={}", "x".repeat(300))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(long["field"], "name");
}

#[tokio::test]
async fn another_web_page_cannot_drive_taskd_through_the_users_browser() {
    let server = TestServer::start_with(|config| config.cors_origins = vec!["https://ops.example.com".into()]).await;
    let address = server.server.as_ref().unwrap().local_addr();
    let api = format!("http://{address}/api/v1");
    let http = reqwest::Client::new();
    let parked = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    let maintenance = r#"{"task_type":"system_maintenance","params":{"retention":"0s"}}"#;

    // What a form or a fetch with text/plain sends without a preflight.
    let simple = http
        .post(format!("{api}/tasks"))
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .body(maintenance)
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), StatusCode::FORBIDDEN);
    let cancel = http
        .post(format!("{api}/tasks/{}/cancel", parked.id))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::FORBIDDEN);
    let body: Value = cancel.json().await.unwrap();
    assert_eq!(body["code"], "PERMISSION_DENIED");
    assert!(
        body["message"].as_str().unwrap().contains("http://evil.example"),
        "{body}"
    );

    // Without an origin (not a browser), a body must still say it is JSON.
    let plain = http
        .post(format!("{api}/tasks"))
        .header("content-type", "text/plain")
        .body(maintenance)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["field"], "content-type");

    assert_eq!(
        server.client.get(&parked.id).await.unwrap().status(),
        TaskStatus::Pending
    );
    assert_eq!(
        server.client.stats().await.unwrap().counts.unwrap().total,
        1,
        "nothing was submitted"
    );

    // The dashboard's own origin, and a configured one with CORS.
    let own = http
        .post(format!("{api}/tasks"))
        .header("content-type", "application/json")
        .header("origin", format!("http://{address}"))
        .body(r#"{"task_type":"diag.echo"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{api}/tasks"))
        .header("origin", "https://ops.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
    let listed = http
        .post(format!("{api}/tasks"))
        .header("content-type", "application/json")
        .header("origin", "https://ops.example.com")
        .body(r#"{"task_type":"diag.echo"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://ops.example.com"
    );
}
