//! What reaches taskd other than through a gRPC client or curl: a gRPC path
//! asked over HTTP/1.1 with a body that is not gRPC, a web page in the
//! user's browser posting to 127.0.0.1, and a page whose host name was
//! rebound to the server's address. None of them may change or read a
//! task they are not allowed to.

use reqwest::StatusCode;
use serde_json::Value;
use taskd::auth::Secret;
use taskd_client::proto;
use taskd_client::{NewTask, TaskStatus};

use crate::support::TestServer;

const READER: &str = "reader-token-0123456789";

fn address(server: &TestServer) -> std::net::SocketAddr {
    server.server.as_ref().expect("running").local_addr()
}

/// A gRPC message as it travels: uncompressed flag, length, bytes.
fn grpc_frame(message: &impl prost::Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bytes);
    frame
}

/// Posts `body` to a gRPC method's path over HTTP/1.1 (reqwest's default
/// for http://), as a browser's fetch or a hand-made request would.
async fn post_to_method(
    server: &TestServer,
    method: &str,
    content_type: Option<&str>,
    extra: &[(&str, String)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/{method}", address(server)))
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    for (name, value) in extra {
        request = request.header(*name, value);
    }
    request.send().await.expect("answers")
}

async fn nothing_submitted(server: &TestServer, expected_total: u64) {
    let counts = server.client.stats().await.expect("stats").counts.expect("counts");
    assert_eq!(counts.total, expected_total, "no task was added");
}

fn submit_echo() -> Vec<u8> {
    grpc_frame(&proto::SubmitTaskRequest {
        task_type: "diag.echo".into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_grpc_path_asked_with_another_content_type_is_refused_before_any_handler() {
    let server = TestServer::start().await;
    let parked = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    let cancel = grpc_frame(&proto::CancelTaskRequest {
        task_id: parked.id.clone(),
        reason: "from a web page".into(),
    });
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let submitted = post_to_method(
            &server,
            "taskd.v1.TaskService/SubmitTask",
            content_type,
            &[],
            submit_echo(),
        )
        .await;
        assert_eq!(
            submitted.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let body: Value = submitted.json().await.expect("a JSON error");
        assert_eq!(body["field"], "content-type", "{body}");
        assert!(body["message"].as_str().unwrap().contains("application/grpc"), "{body}");
        let cancelled = post_to_method(
            &server,
            "taskd.v1.TaskService/CancelTask",
            content_type,
            &[],
            cancel.clone(),
        )
        .await;
        assert_eq!(cancelled.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    nothing_submitted(&server, 1).await;
    assert_eq!(
        server.client.get(&parked.id).await.unwrap().status(),
        TaskStatus::Pending
    );
}

#[tokio::test]
async fn a_read_token_cannot_write_through_a_grpc_path_over_http1_whatever_the_content_type() {
    let server =
        TestServer::start_with(|config| config.auth.tokens_text = Some(Secret(format!("dash read {READER}")))).await;
    let bearer = [("authorization", format!("Bearer {READER}"))];
    let finish = grpc_frame(&proto::FinishAttemptRequest::default());
    for content_type in [
        Some("text/plain"),
        Some("application/grpc"),
        Some("application/grpc+proto"),
        None,
    ] {
        for (method, body) in [
            ("taskd.v1.TaskService/SubmitTask", submit_echo()),
            ("taskd.v1.WorkerService/FinishAttempt", finish.clone()),
        ] {
            let answer = post_to_method(&server, method, content_type, &bearer, body).await;
            let status = answer.status();
            // Not gRPC at all (415), or gRPC over HTTP/1.1, which gRPC is
            // not defined on (505): either way no handler ran.
            assert!(
                status == StatusCode::UNSUPPORTED_MEDIA_TYPE || status == StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "{method} as {content_type:?}: {status}"
            );
        }
    }
    let reader = taskd_client::Client::connect_with(
        format!("http://{}", address(&server)),
        &taskd_client::ConnectOptions {
            token: Some(READER.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let counts = reader.stats().await.unwrap().counts.unwrap();
    assert_eq!(counts.total, 0, "a reader submitted nothing");
}

#[tokio::test]
async fn a_web_page_cannot_submit_or_cancel_through_a_grpc_path() {
    let server = TestServer::start().await;
    let parked = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    let evil = [("origin", "http://evil.example".to_string())];
    // The no-preflight request from the report: text/plain, a gRPC frame.
    let simple = post_to_method(
        &server,
        "taskd.v1.TaskService/SubmitTask",
        Some("text/plain"),
        &evil,
        b"\0\0\0\0\x0b\x12\x09diag.echo".to_vec(),
    )
    .await;
    assert!(
        simple.status() == StatusCode::FORBIDDEN || simple.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{simple:?}"
    );
    // Even declared as gRPC (which a browser would preflight), a write
    // from a foreign origin is refused whatever its path.
    for (method, body) in [
        ("taskd.v1.TaskService/SubmitTask", submit_echo()),
        (
            "taskd.v1.TaskService/CancelTask",
            grpc_frame(&proto::CancelTaskRequest {
                task_id: parked.id.clone(),
                reason: "from a web page".into(),
            }),
        ),
    ] {
        let answer = post_to_method(&server, method, Some("application/grpc"), &evil, body).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{method}");
        let body: Value = answer.json().await.expect("a JSON error");
        assert!(
            body["message"].as_str().unwrap().contains("http://evil.example"),
            "{body}"
        );
    }
    nothing_submitted(&server, 1).await;
    assert_eq!(
        server.client.get(&parked.id).await.unwrap().status(),
        TaskStatus::Pending
    );
}

/// A request as a browser sends it once `host` resolves to the server.
async fn as_host(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    host: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let port = address(server).port();
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{}{path}", address(server)))
        .header("host", format!("{host}:{port}"))
        .header("origin", format!("http://{host}:{port}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("answers");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn without_tokens_a_rebound_host_name_is_refused_and_the_listeners_own_names_are_served() {
    let server = TestServer::start().await;
    let echo = r#"{"task_type":"diag.echo"}"#;
    for (method, path, body) in [
        (reqwest::Method::POST, "/api/v1/tasks", Some(echo)),
        (reqwest::Method::GET, "/api/v1/tasks", None),
        (reqwest::Method::GET, "/api/v1/tasks/stats", None),
        (reqwest::Method::GET, "/", None),
    ] {
        let (status, body) = as_host(&server, method.clone(), path, "evil.example", body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("evil.example") && message.contains("net.allowed_hosts"),
            "{body}"
        );
    }
    nothing_submitted(&server, 0).await;
    for host in ["localhost", "127.0.0.1", "api.localhost"] {
        let (status, body) = as_host(&server, reqwest::Method::POST, "/api/v1/tasks", host, Some(echo)).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    nothing_submitted(&server, 3).await;
}

#[tokio::test]
async fn host_names_can_be_allowed_by_setting_and_tokens_make_the_host_check_unneeded() {
    let named = TestServer::start_with(|config| config.net.allowed_hosts = vec!["taskd.internal".into()]).await;
    let (status, body) = as_host(&named, reqwest::Method::GET, "/api/v1/tasks", "taskd.internal", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = as_host(&named, reqwest::Method::GET, "/api/v1/tasks", "other.internal", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // With tokens a rebinding page has no token to send: any host name
    // that reaches the listener is served to whoever holds one.
    let guarded =
        TestServer::start_with(|config| config.auth.tokens_text = Some(Secret(format!("dash read {READER}")))).await;
    let port = address(&guarded).port();
    let answer = reqwest::Client::new()
        .get(format!("http://{}/api/v1/tasks", address(&guarded)))
        .header("host", format!("taskd.example.com:{port}"))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}
