//! Safe to expose: bearer tokens with scopes on every transport, TLS (with
//! reload and client certificates), and the listener's bounds (connections,
//! header and idle timeouts, watches per connection, queue depth).

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use taskd::auth::Secret;
use taskd_client::proto::worker_service_client::WorkerServiceClient;
use taskd_client::{Client, ConnectOptions, NewTask};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::support::TestServer;

const READER: &str = "reader-token-0123456789";
const SUBMITTER: &str = "submitter-token-0123456789";
const OPERATOR: &str = "operator-token-0123456789";
const WORKER: &str = "worker-token-0123456789";

fn tokens() -> Secret {
    Secret(format!(
        "dash read {READER}; ci submit,read {SUBMITTER}; ops admin {OPERATOR}; pool worker {WORKER}"
    ))
}

async fn with_auth() -> TestServer {
    TestServer::start_with(|config| config.auth.tokens_text = Some(tokens())).await
}

fn address(server: &TestServer) -> String {
    server.server.as_ref().expect("running").local_addr().to_string()
}

async fn client(server: &TestServer, token: Option<&str>) -> Client {
    let options = ConnectOptions {
        token: token.map(str::to_string),
        ..ConnectOptions::default()
    };
    Client::connect_with(format!("http://{}", address(server)), &options)
        .await
        .expect("connects")
}

fn code_of(result: Result<impl std::fmt::Debug, taskd_client::ClientError>) -> (Code, String) {
    match result {
        Err(taskd_client::ClientError::Status(status)) => (status.code(), status.message().to_string()),
        other => panic!("expected an error status, got {other:?}"),
    }
}

#[tokio::test]
async fn grpc_calls_without_a_valid_token_are_unauthenticated() {
    let server = with_auth().await;
    let anonymous = client(&server, None).await;
    let (code, message) = code_of(anonymous.stats().await);
    assert_eq!(code, Code::Unauthenticated, "{message}");
    assert!(message.contains("bearer token"), "{message}");
    let forged = client(&server, Some("reader-token-0123456780")).await;
    assert_eq!(code_of(forged.stats().await).0, Code::Unauthenticated);
    // Health stays open for load balancers and orchestrators.
    let mut health = tonic_health::pb::health_client::HealthClient::new(anonymous.channel());
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers without a token");
    assert_eq!(answer.into_inner().status, 1);
}

#[tokio::test]
async fn each_scope_allows_its_calls_and_refuses_the_others_naming_the_scope() {
    let server = with_auth().await;
    let reader = client(&server, Some(READER)).await;
    let submitter = client(&server, Some(SUBMITTER)).await;
    let operator = client(&server, Some(OPERATOR)).await;

    reader.stats().await.expect("read scope reads");
    let (code, message) = code_of(reader.submit(NewTask::new("diag.echo")).await);
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("\"dash\"") && message.contains("submit"), "{message}");

    let task = submitter
        .submit(NewTask::new("diag.echo").run_at(std::time::SystemTime::now() + Duration::from_secs(3600)))
        .await
        .expect("submit scope submits");
    let (code, message) = code_of(submitter.cancel(&task.id, "no").await);
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("cancel"), "{message}");
    operator.cancel(&task.id, "admin may").await.expect("admin cancels");

    // system_maintenance acts on the whole server: admin only.
    let maintenance = NewTask::new("system_maintenance").params(serde_json::json!({"retention": "0s"}));
    let (code, message) = code_of(submitter.submit(maintenance.clone()).await);
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("admin"), "{message}");
    let (code, _) = code_of(
        submitter
            .submit_batch([NewTask::new("diag.echo"), maintenance.clone()])
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    operator.submit(maintenance).await.expect("admin submits maintenance");

    // Serving tasks takes the worker scope.
    let mut as_reader = WorkerServiceClient::new(reader.channel());
    // The refusal comes as the stream's status (headers, then trailers),
    // whether the client reads it from the call or from its first message.
    let refused = match as_reader.work(futures::stream::empty()).await {
        Err(status) => status,
        Ok(response) => {
            let mut messages = response.into_inner();
            messages.message().await.expect_err("a reader cannot serve")
        }
    };
    assert_eq!(refused.code(), Code::PermissionDenied);
    let worker = client(&server, Some(WORKER)).await;
    let mut as_worker = WorkerServiceClient::new(worker.channel());
    as_worker
        .list_workers(taskd_client::proto::ListWorkersRequest::default())
        .await
        .expect_err("listing workers is a read");
}

async fn rest(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("answers");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_schedule_of_an_admin_task_type_is_written_and_run_by_admins_only() {
    use taskd_client::proto;
    use taskd_client::proto::schedule_service_client::ScheduleServiceClient;
    let server = TestServer::start_with(|config| {
        config.auth.tokens_text = Some(tokens());
        config.retention.enabled = true;
    })
    .await;
    let url = format!("http://{}/api/v1/schedules", address(&server));
    let submitter = client(&server, Some(SUBMITTER)).await;
    let mut as_submitter = ScheduleServiceClient::new(submitter.channel());
    // The retention schedule purges tasks: a submitter may not pause,
    // trigger, rewrite or delete it...
    let refused = as_submitter
        .trigger_schedule(proto::TriggerScheduleRequest {
            name: "system_maintenance".into(),
        })
        .await
        .expect_err("not a submitter's");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("admin"), "{}", refused.message());
    for (method, path) in [
        (reqwest::Method::POST, "/system_maintenance/pause"),
        (reqwest::Method::POST, "/system_maintenance/trigger"),
        (reqwest::Method::DELETE, "/system_maintenance"),
    ] {
        let (status, _, body) = rest(method, &format!("{url}{path}"), Some(SUBMITTER), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    // ...nor make one of its own.
    let own = r#"{"name": "purge-all", "spec": {"interval": {"every": "60s"}},
                  "template": {"task_type": "system_maintenance", "params": {"retention": "0s"}}}"#;
    let (status, _, body) = rest(reqwest::Method::POST, &url, Some(SUBMITTER), Some(own)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["field"], "template.task_type", "{body}");
    // A reader writes no schedule at all; a submitter writes its own kind.
    let echo = r#"{"name": "echo", "spec": {"interval": {"every": "60s"}}, "template": {"task_type": "diag.echo"}}"#;
    let (status, _, _) = rest(reqwest::Method::POST, &url, Some(READER), Some(echo)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = rest(reqwest::Method::POST, &url, Some(SUBMITTER), Some(echo)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A submitter may not turn its schedule into an admin one either.
    let (status, _, _) = rest(
        reqwest::Method::PUT,
        &format!("{url}/echo"),
        Some(SUBMITTER),
        Some(own.replace("purge-all", "echo").as_str()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = rest(reqwest::Method::POST, &url, Some(OPERATOR), Some(own)).await;
    assert_eq!(status, StatusCode::OK, "an admin may: {body}");
}

#[tokio::test]
async fn rest_sse_and_metrics_need_a_token_while_health_and_the_dashboard_page_stay_open() {
    let server = with_auth().await;
    let base = format!("http://{}", address(&server));
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    let (status, headers, body) = rest(get.clone(), &format!("{base}/api/v1/tasks"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "UNAUTHENTICATED");
    assert!(headers.get("www-authenticate").is_some());
    for path in [
        "/api/v1/events",
        "/api/v1/system/events",
        "/metrics",
        "/api/v1/tasks/stats",
    ] {
        let (status, _, _) = rest(get.clone(), &format!("{base}{path}"), None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in [
        "/healthz",
        "/readyz",
        "/dashboard",
        "/dashboard/app.js",
        "/api/v1/openapi.json",
    ] {
        let (status, _, _) = rest(get.clone(), &format!("{base}{path}"), None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    let (status, _, _) = rest(get.clone(), &format!("{base}/metrics"), Some(READER), None).await;
    assert_eq!(status, StatusCode::OK);
    let events = reqwest::Client::new()
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(READER)
        .send()
        .await
        .expect("answers");
    assert_eq!(events.status(), StatusCode::OK);

    let in_an_hour = humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(3600));
    let task = format!(r#"{{"task_type":"diag.echo","run_at":"{in_an_hour}"}}"#);
    let task = task.as_str();
    let (status, _, body) = rest(post.clone(), &format!("{base}/api/v1/tasks"), Some(READER), Some(task)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "PERMISSION_DENIED");
    let (status, _, created) = rest(
        post.clone(),
        &format!("{base}/api/v1/tasks"),
        Some(SUBMITTER),
        Some(task),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let cancel = format!("{base}/api/v1/tasks/{}/cancel", created["id"].as_str().expect("id"));
    let (status, _, _) = rest(post.clone(), &cancel, Some(SUBMITTER), Some("{}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = rest(post.clone(), &cancel, Some(OPERATOR), Some("{}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let maintenance = r#"{"task_type":"system_maintenance"}"#;
    let (status, _, _) = rest(
        post,
        &format!("{base}/api/v1/tasks"),
        Some(SUBMITTER),
        Some(maintenance),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn metrics_and_health_can_be_opened_or_closed_by_setting() {
    let server = TestServer::start_with(|config| {
        config.auth.tokens_text = Some(tokens());
        config.auth.open_metrics = true;
        config.auth.open_health = false;
    })
    .await;
    let base = format!("http://{}", address(&server));
    let (status, _, _) = rest(reqwest::Method::GET, &format!("{base}/metrics"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = rest(reqwest::Method::GET, &format!("{base}/readyz"), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_logs_who_connected_but_never_a_token() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, address) = crate::support::spawn_with(dir.path(), |command| {
        command
            .env("TASKD_AUTH_TOKENS", format!("ci submit,read {SUBMITTER}"))
            .env("TASKD_LOG", "debug")
            .stderr(std::process::Stdio::piped())
    });
    let logs = capture_stderr(&mut child);
    let anonymous = Client::connect(address.clone()).await.expect("connects");
    assert_eq!(code_of(anonymous.stats().await).0, Code::Unauthenticated);
    let ci = Client::connect_with(address, &ConnectOptions::default().token(SUBMITTER))
        .await
        .expect("connects");
    ci.stats().await.expect("token works");
    let bad = Client::connect_with(
        format!("http://{}", "127.0.0.1:1"),
        &ConnectOptions::default().token(SUBMITTER),
    )
    .await;
    assert!(bad.is_err());
    crate::support::terminate(&mut child);
    let logs = logs.join().expect("stderr read");
    assert!(logs.contains("auth=true") || logs.contains("auth: true"), "{logs}");
    assert!(!logs.contains(SUBMITTER), "a token reached the logs");
}

/// Reads the child's stderr as it comes (a full pipe would block its
/// logging, and with it the process); joined once the child has exited.
fn capture_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        use std::io::Read;
        let mut logs = String::new();
        let _ = stderr.read_to_string(&mut logs);
        logs
    })
}

// ---- TLS ------------------------------------------------------------------

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A CA (`<prefix>ca.pem`) and a certificate it signed for localhost and
    /// 127.0.0.1 (`<prefix>cert.pem`, `<prefix>key.pem`).
    fn issue(&self, prefix: &str, client: bool) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{prefix}test CA"));
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        if client {
            params.distinguished_name.push(DnType::CommonName, "worker-1");
        }
        let cert = params.signed_by(&key, &issuer).expect("cert");
        std::fs::write(self.path(&format!("{prefix}ca.pem")), ca.pem()).expect("write");
        std::fs::write(self.path(&format!("{prefix}cert.pem")), cert.pem()).expect("write");
        std::fs::write(self.path(&format!("{prefix}key.pem")), key.serialize_pem()).expect("write");
    }

    fn new() -> Self {
        let pki = Pki {
            dir: tempfile::tempdir().expect("dir"),
        };
        pki.issue("server-", false);
        pki
    }
}

async fn tls_server(
    pki: &Pki,
    adjust: impl FnOnce(&mut taskd::config::ServerConfig),
) -> (taskd::server::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::support::test_config(dir.path());
    config.tls.cert_file = pki.path("server-cert.pem");
    config.tls.key_file = pki.path("server-key.pem");
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
    let server = taskd::server::start_on(listener, config, taskd::engine::HandlerRegistry::new())
        .await
        .expect("starts");
    (server, dir)
}

async fn tls_client(
    address: &str,
    ca: &Path,
    identity: Option<(PathBuf, PathBuf)>,
) -> Result<Client, taskd_client::ClientError> {
    let mut options = ConnectOptions::default().ca_file(ca);
    if let Some((cert, key)) = identity {
        options = options.client_certificate(cert, key);
    }
    let client = Client::connect_with(
        format!("https://localhost:{}", address.rsplit(':').next().expect("port")),
        &options,
    )
    .await?;
    client.stats().await?;
    Ok(client)
}

#[tokio::test]
async fn with_tls_on_clients_that_trust_the_ca_work_and_plaintext_is_refused() {
    let pki = Pki::new();
    let (server, _dir) = tls_server(&pki, |_| {}).await;
    let address = server.local_addr().to_string();
    tls_client(&address, &pki.path("server-ca.pem"), None)
        .await
        .expect("TLS client with the CA works");

    // Plaintext gRPC and HTTP get nowhere.
    let plaintext = async {
        let client = Client::connect(format!("http://{address}")).await?;
        client.stats().await
    };
    assert!(plaintext.await.is_err(), "plaintext gRPC must not work");
    let http = reqwest::get(format!("http://{address}/healthz")).await;
    assert!(http.is_err(), "plaintext HTTP must not get an answer");

    // A CA that did not sign the server's certificate is not trusted.
    pki.issue("other-", false);
    assert!(tls_client(&address, &pki.path("other-ca.pem"), None).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn reloading_swaps_the_certificate_for_new_connections() {
    let pki = Pki::new();
    let (server, _dir) = tls_server(&pki, |_| {}).await;
    let address = server.local_addr().to_string();
    tls_client(&address, &pki.path("server-ca.pem"), None)
        .await
        .expect("first CA");

    // A broken file does not take down what works.
    std::fs::write(pki.path("server-cert.pem"), "not a certificate").expect("write");
    let error = server.reload().expect_err("a bad certificate is refused").to_string();
    assert!(error.contains("tls.cert_file"), "{error}");
    tls_client(&address, &pki.path("server-ca.pem"), None)
        .await
        .expect("the old certificate still serves");

    pki.issue("server-", false); // a new CA and certificate in place
    server.reload().expect("reload");
    tls_client(&address, &pki.path("server-ca.pem"), None)
        .await
        .expect("the new certificate serves");
    server.stop().await;
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_it_signed_connect() {
    let pki = Pki::new();
    pki.issue("client-", true);
    let (server, _dir) = tls_server(&pki, |config| config.tls.client_ca_file = pki.path("client-ca.pem")).await;
    let address = server.local_addr().to_string();
    let ca = pki.path("server-ca.pem");
    assert!(tls_client(&address, &ca, None).await.is_err(), "no client certificate");
    tls_client(
        &address,
        &ca,
        Some((pki.path("client-cert.pem"), pki.path("client-key.pem"))),
    )
    .await
    .expect("a signed client certificate connects");
    pki.issue("stranger-", true);
    let stranger = Some((pki.path("stranger-cert.pem"), pki.path("stranger-key.pem")));
    assert!(tls_client(&address, &ca, stranger).await.is_err(), "an unknown signer");
    server.stop().await;
}

#[tokio::test]
async fn tls_settings_that_cannot_work_stop_the_start_naming_the_setting() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("dir");
    let mut config = crate::support::test_config(dir.path());
    config.tls.cert_file = pki.path("server-cert.pem");
    let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
    let error = taskd::server::start_on(listener, config.clone(), taskd::engine::HandlerRegistry::new())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("tls.key_file"), "{error}");
    config.tls.key_file = pki.path("missing.pem");
    let listener = tokio::net::TcpListener::bind(config.listen).await.expect("bind");
    let error = taskd::server::start_on(listener, config, taskd::engine::HandlerRegistry::new())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("tls.key_file") && error.contains("missing.pem"),
        "{error}"
    );
}

// ---- The listener's bounds -------------------------------------------------

/// Reads until the server closes the connection; false if it stays open
/// past `bound`.
async fn closed_within(stream: &mut tokio::net::TcpStream, bound: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, read).await.is_ok()
}

#[tokio::test]
async fn connections_that_never_finish_a_request_are_closed_after_the_header_timeout() {
    let server = TestServer::start_with(|config| config.net.header_timeout = Duration::from_millis(300)).await;
    let address = address(&server);
    let mut slow = Vec::new();
    for index in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        // Half of them say nothing; the other half dribble a header.
        if index % 2 == 1 {
            stream
                .write_all(b"GET /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .expect("write");
        }
        slow.push(stream);
    }
    for (index, stream) in slow.iter_mut().enumerate() {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "slow connection {index} still open"
        );
    }
    // Real clients are unaffected.
    server.client.stats().await.expect("stats");
}

#[tokio::test]
async fn a_connection_beyond_the_limit_is_answered_with_the_limit_and_closed() {
    let server = TestServer::start_with(|config| config.net.max_connections = 3).await;
    let address = address(&server);
    // The test client holds one; two more fill the limit.
    server.client.stats().await.expect("stats");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut answer = [0u8; 256];
        let read = stream.read(&mut answer).await.expect("read");
        assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let response = reqwest::get(format!("http://{address}/healthz"))
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.text().await.expect("body");
    assert!(body.contains("net.max_connections (3)"), "{body}");
    drop(held);
    // Once they close, connections are accepted again.
    let accepted = async {
        loop {
            match reqwest::get(format!("http://{address}/healthz")).await {
                Ok(response) if response.status() == StatusCode::OK => return,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), accepted)
        .await
        .expect("accepted again once connections closed");
}

#[tokio::test]
async fn watch_streams_per_connection_are_limited_and_a_closed_one_frees_its_place() {
    let server = TestServer::start_with(|config| config.net.max_watches_per_connection = 2).await;
    let first = server.client.watch_all(Default::default()).await.expect("first watch");
    let _second = server.client.watch_all(Default::default()).await.expect("second watch");
    let refused = server
        .client
        .watch_all(Default::default())
        .await
        .err()
        .expect("third refused");
    let (code, message) = code_of(Err::<(), _>(refused));
    assert_eq!(code, Code::ResourceExhausted);
    assert!(message.contains("net.max_watches_per_connection"), "{message}");
    drop(first);
    let reopened = async {
        loop {
            if server.client.watch_all(Default::default()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reopened)
        .await
        .expect("a place frees when a watch closes");
    // Another connection has its own places.
    let other = Client::connect(format!("http://{}", address(&server)))
        .await
        .expect("connects");
    let _watching = other
        .watch_all(Default::default())
        .await
        .expect("another connection watches");
}

#[tokio::test]
async fn above_the_queue_depth_submits_are_shed_with_a_retry_hint_and_reads_still_answer() {
    let server = TestServer::start_with(|config| config.engine.limits.max_queue_depth = 3).await;
    let later = || NewTask::new("diag.echo").run_at(std::time::SystemTime::now() + Duration::from_secs(3600));
    for _ in 0..3 {
        server.client.submit(later()).await.expect("within the limit");
    }
    let mut stub = server.client.stub();
    let refused = stub
        .submit_task(taskd_client::proto::SubmitTaskRequest::from(later()))
        .await
        .expect_err("shed");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().contains("engine.limits.max_queue_depth"),
        "{}",
        refused.message()
    );
    assert_eq!(
        refused
            .metadata()
            .get("grpc-retry-pushback-ms")
            .and_then(|value| value.to_str().ok()),
        Some("1000")
    );
    let base = format!("http://{}", address(&server));
    let (status, headers, body) = rest(
        reqwest::Method::POST,
        &format!("{base}/api/v1/tasks"),
        None,
        Some(r#"{"task_type":"diag.echo"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        headers.get("retry-after").and_then(|value| value.to_str().ok()),
        Some("1")
    );
    // Reads answer; nothing was stored for the refused submits.
    let stats = server.client.stats().await.expect("stats");
    assert_eq!(stats.submitted_since_start, 3);
    // Room again once the queue drains.
    let listed = server.client.list_all(Default::default()).await.expect("list");
    server.client.cancel(&listed[0].id, "make room").await.expect("cancel");
    server.client.submit(later()).await.expect("room again");
}

#[tokio::test]
async fn at_the_file_descriptor_limit_the_server_says_so_pauses_and_recovers() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, address) = crate::support::spawn_with(dir.path(), |command| {
        command.stderr(std::process::Stdio::piped()).env("TASKD_LOG", "warn")
    });
    let logs = capture_stderr(&mut child);
    let pid = child.id();
    // Lower its descriptor limit to a little above what it uses now.
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds").count();
    let status = std::process::Command::new("prlimit")
        .args([format!("--pid={pid}"), format!("--nofile={}", open + 8)])
        .status()
        .expect("prlimit runs");
    assert!(status.success());
    let host = address.trim_start_matches("http://").to_string();
    let mut flood = Vec::new();
    for _ in 0..40 {
        if let Ok(stream) = tokio::net::TcpStream::connect(&host).await {
            flood.push(stream);
        }
    }
    let cpu_before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_used = cpu_ticks(pid) - cpu_before;
    // A spinning accept loop burns ~200 ticks in 2 s; pausing, a handful.
    assert!(
        cpu_used < 60,
        "the server used {cpu_used} ticks of CPU in 2 s at the fd limit"
    );
    drop(flood);
    let recovered = async {
        loop {
            if let Ok(response) = reqwest::get(format!("{address}/healthz")).await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), recovered)
        .await
        .expect("serves again once descriptors free up");
    crate::support::terminate(&mut child);
    let logs = logs.join().expect("stderr read");
    assert!(logs.contains("cannot accept connections"), "{logs}");
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = &stat[stat.rfind(')').expect("name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[tokio::test]
async fn binding_beyond_loopback_without_auth_warns_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_taskd"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env("TASKD_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let logs = capture_stderr(&mut child);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("line");
    assert!(line.starts_with("taskd listening on"), "{line}");
    crate::support::terminate(&mut child);
    let logs = logs.join().expect("stderr read");
    assert!(logs.contains("WITHOUT authentication"), "{logs}");
}

#[tokio::test]
async fn taskctl_takes_a_token_and_a_ca_file() {
    let pki = Pki::new();
    let (server, _dir) = tls_server(&pki, |config| config.auth.tokens_text = Some(tokens())).await;
    let port = server.local_addr().port();
    let run = |args: Vec<String>, token: Option<&str>| {
        let mut command = tokio::process::Command::new(crate::taskctl::taskctl_binary());
        command
            .args(["--server", &format!("https://localhost:{port}"), "--json"])
            .args(args)
            .env_remove("TASKD_TOKEN")
            .kill_on_drop(true);
        if let Some(token) = token {
            command.env("TASKD_TOKEN", token);
        }
        async move {
            let output = tokio::time::timeout(Duration::from_secs(30), command.output())
                .await
                .expect("taskctl ends")
                .expect("taskctl runs");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).to_string(),
                String::from_utf8_lossy(&output.stderr).to_string(),
            )
        }
    };
    let ca = pki.path("server-ca.pem").display().to_string();
    let (code, _, stderr) = run(vec!["--ca-file".into(), ca.clone(), "stats".into()], None).await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("bearer token"), "{stderr}");
    let (code, stdout, stderr) = run(
        vec![
            "--ca-file".into(),
            ca.clone(),
            "--token".into(),
            READER.into(),
            "stats".into(),
        ],
        None,
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("counts"), "{stdout}");
    let (code, _, stderr) = run(vec!["--ca-file".into(), ca, "stats".into()], Some(READER)).await;
    assert_eq!(code, Some(0), "TASKD_TOKEN: {stderr}");
    // Without the CA the server's certificate is not trusted.
    let (code, _, _) = run(vec!["stats".into()], Some(READER)).await;
    assert_ne!(code, Some(0));
    server.stop().await;
}
