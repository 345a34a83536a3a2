use std::time::Duration;

use serde_json::json;
use taskd_client::proto::{CancelTaskRequest, GetTaskRequest, SubmitTasksRequest};
use taskd_client::{Client, ListTasksRequest, NewTask, SubmitTaskRequest, TaskDependency, TaskStatus};
use tonic::Code;

use crate::support::TestServer;

/// One request, sent through the raw stub so that anything can be sent.
enum Call {
    Submit(SubmitTaskRequest),
    SubmitBatch(Vec<SubmitTaskRequest>),
    List(ListTasksRequest),
    Get(String),
    Cancel(String),
}

impl Call {
    async fn send(self, client: &Client) -> Result<(), tonic::Status> {
        let mut stub = client.stub();
        match self {
            Call::Submit(request) => stub.submit_task(request).await.map(drop),
            Call::SubmitBatch(tasks) => stub.submit_tasks(SubmitTasksRequest { tasks }).await.map(drop),
            Call::List(request) => stub.list_tasks(request).await.map(drop),
            Call::Get(task_id) => stub.get_task(GetTaskRequest { task_id }).await.map(drop),
            Call::Cancel(task_id) => stub
                .cancel_task(CancelTaskRequest {
                    task_id,
                    reason: String::new(),
                })
                .await
                .map(drop),
        }
    }
}

/// What the server must answer.
enum Expect {
    /// INVALID_ARGUMENT with a message that starts with this field.
    Invalid(&'static str),
    /// This code, with a message that names this text (the task id).
    Refused(Code, String),
}

fn echo() -> NewTask {
    NewTask::new("diag.echo")
}

fn dependencies(count: usize) -> Vec<TaskDependency> {
    (0..count)
        .map(|_| TaskDependency {
            task_id: uuid::Uuid::now_v7().to_string(),
            required_status: TaskStatus::Completed as i32,
            batch_ref: String::new(),
        })
        .collect()
}

#[tokio::test]
async fn bad_requests_get_the_right_code_and_name_the_field_and_the_server_goes_on() {
    let server = TestServer::start().await;
    let completed = server.client.submit(echo()).await.unwrap();
    assert_eq!(server.wait(&completed.id).await.status(), TaskStatus::Completed);
    let unknown_id = uuid::Uuid::now_v7().to_string();

    let cases: Vec<(&str, Call, Expect)> = vec![
        (
            "an empty task_type",
            Call::Submit(NewTask::new("").into_request()),
            Expect::Invalid("task_type"),
        ),
        (
            "a task type nothing knows (a typo)",
            Call::Submit(NewTask::new("report_generaton").into_request()),
            Expect::Invalid("task_type"),
        ),
        (
            "a batch whose second member has an unknown type",
            Call::SubmitBatch(vec![echo().into_request(), NewTask::new("thumbnails").into_request()]),
            Expect::Invalid("tasks[1].task_type"),
        ),
        (
            "an unknown priority value",
            Call::Submit(SubmitTaskRequest {
                priority: 99,
                ..echo().into_request()
            }),
            Expect::Invalid("priority"),
        ),
        (
            "params larger than 64 KiB",
            Call::Submit(echo().params(json!({"blob": "x".repeat(70 * 1024)})).into_request()),
            Expect::Invalid("params"),
        ),
        (
            "101 dependencies",
            Call::Submit(SubmitTaskRequest {
                dependencies: dependencies(101),
                ..echo().into_request()
            }),
            Expect::Invalid("dependencies"),
        ),
        (
            "a zero timeout",
            Call::Submit(echo().timeout(Duration::ZERO).into_request()),
            Expect::Invalid("timeout"),
        ),
        (
            "a retry jitter of 2",
            Call::Submit(
                echo()
                    .backoff(Duration::from_secs(1), 2.0, Duration::from_secs(10), 2.0)
                    .into_request(),
            ),
            Expect::Invalid("retry_policy.jitter"),
        ),
        (
            "a batch of 1001 tasks",
            Call::SubmitBatch(vec![echo().into_request(); 1001]),
            Expect::Invalid("tasks"),
        ),
        (
            "an empty batch",
            Call::SubmitBatch(Vec::new()),
            Expect::Invalid("tasks"),
        ),
        (
            "a page_size above the limit",
            Call::List(ListTasksRequest {
                page_size: 5000,
                ..Default::default()
            }),
            Expect::Invalid("page_size"),
        ),
        (
            "a negative page_size",
            Call::List(ListTasksRequest {
                page_size: -1,
                ..Default::default()
            }),
            Expect::Invalid("page_size"),
        ),
        (
            "a page_token that is not base64",
            Call::List(ListTasksRequest {
                page_token: "garbage!!".into(),
                ..Default::default()
            }),
            Expect::Invalid("page_token"),
        ),
        (
            "a base64 page_token that ListTasks never returned",
            Call::List(ListTasksRequest {
                // "not a token", URL-safe base64.
                page_token: "bm90IGEgdG9rZW4".into(),
                ..Default::default()
            }),
            Expect::Invalid("page_token"),
        ),
        (
            "a malformed task id in GetTask",
            Call::Get("12345".into()),
            Expect::Invalid("task_id"),
        ),
        (
            "an unknown task id in GetTask",
            Call::Get(unknown_id.clone()),
            Expect::Refused(Code::NotFound, unknown_id.clone()),
        ),
        (
            "cancelling a completed task",
            Call::Cancel(completed.id.clone()),
            Expect::Refused(Code::FailedPrecondition, completed.id.clone()),
        ),
    ];

    for (case, call, expect) in cases {
        let status = call.send(&server.client).await.expect_err(case);
        match expect {
            Expect::Invalid(field) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{case}: {}", status.message());
                assert!(
                    status.message().starts_with(&format!("{field}:")),
                    "{case}: the message names {field}: {}",
                    status.message()
                );
            }
            Expect::Refused(code, names) => {
                assert_eq!(status.code(), code, "{case}: {}", status.message());
                assert!(
                    status.message().contains(&names),
                    "{case}: the message names {names}: {}",
                    status.message()
                );
            }
        }
    }

    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.counts.unwrap().total, 1, "no rejected request created a task");
    let task = server.client.submit(echo().name("after the bad input")).await.unwrap();
    let task = server.wait(&task.id).await;
    assert_eq!(task.status(), TaskStatus::Completed);
    assert_eq!(task.name, "after the bad input");
}

#[tokio::test]
async fn an_unknown_task_type_is_refused_with_the_type_it_probably_meant() {
    let server = TestServer::start().await;
    let status = server
        .client
        .submit(NewTask::new("report_generaton"))
        .await
        .expect_err("a typo is refused");
    assert_eq!(status.code(), Some(Code::InvalidArgument));
    let message = status.to_string();
    assert!(message.contains("did you mean \"report_generation\"?"), "{message}");
    assert!(message.contains("known types:"), "{message}");
    // The design note's types are known before any worker connects, and wait
    // for one.
    let waiting = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    assert_eq!(waiting.status(), TaskStatus::Pending);
}

/// Hostile values that used to get through, refused the same way on gRPC
/// and on REST, naming the field; nothing is stored.
#[tokio::test]
async fn hostile_values_are_refused_alike_over_grpc_and_rest() {
    let server = TestServer::start().await;
    let base = format!(
        "http://{}/api/v1",
        server.server.as_ref().expect("running").local_addr()
    );
    let http = reqwest::Client::new();
    let rest = |path: &str, body: String| {
        let request = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body);
        async move {
            let response = request.send().await.expect("REST answers");
            let status = response.status();
            let body: serde_json::Value = response.json().await.expect("JSON");
            (status.as_u16(), body["field"].as_str().unwrap_or_default().to_string())
        }
    };

    // Params 30 levels deep: beyond what some protobuf runtimes decode.
    let mut deep = json!(1);
    for _ in 0..30 {
        deep = json!({ "a": deep });
    }
    let grpc = server
        .client
        .submit(echo().params(json!({ "deep": deep })))
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), Some(Code::InvalidArgument));
    assert!(grpc.to_string().contains("params: nested 31 levels deep"), "{grpc}");
    let body = json!({"task_type": "diag.echo", "params": {"deep": deep}}).to_string();
    assert_eq!(rest("/tasks", body).await, (400, "params".to_string()));

    // A timeout below the millisecond, and a run_at in year 1.
    let tiny = server
        .client
        .submit(echo().timeout(Duration::from_nanos(500)))
        .await
        .unwrap_err();
    assert!(tiny.to_string().contains("timeout: must be at least 1ms"), "{tiny}");
    let body = json!({"task_type": "diag.echo", "run_at": "0001-01-01T00:00:00Z"}).to_string();
    assert_eq!(rest("/tasks", body).await, (400, "run_at".to_string()));

    // A 3 MB cancel reason.
    let parked = server.client.submit(NewTask::new("document_processing")).await.unwrap();
    let huge = "x".repeat(3 * 1024 * 1024);
    let grpc = server.client.cancel(&parked.id, &huge).await.unwrap_err();
    assert_eq!(grpc.code(), Some(Code::InvalidArgument));
    assert!(
        grpc.to_string().contains("reason: longer than 1024 characters"),
        "{grpc}"
    );
    let body = json!({ "reason": "y".repeat(2000) }).to_string();
    assert_eq!(
        rest(&format!("/tasks/{}/cancel", parked.id), body).await,
        (400, "reason".to_string())
    );
    let kept = server.client.get(&parked.id).await.unwrap();
    assert_eq!(kept.status(), TaskStatus::Pending, "nothing was half-done");
    let stats = server.client.stats().await.unwrap();
    assert_eq!(stats.counts.unwrap().total, 1, "only the parked task was stored");
}

#[tokio::test]
async fn a_sleep_with_bad_params_fails_at_once_without_retries() {
    let server = TestServer::start().await;
    let task = server
        .client
        .submit(
            NewTask::new("diag.sleep")
                .params(json!({"duration_ms": "soon"}))
                .max_retries(3),
        )
        .await
        .unwrap();
    let done = server.wait(&task.id).await;
    assert_eq!(done.status(), TaskStatus::Failed);
    assert_eq!(done.attempts.len(), 1, "a params error is permanent");
    assert!(done.error.contains("params.duration_ms"), "{}", done.error);
}

/// Sends raw bytes as a gRPC request body, whatever they are.
#[derive(Clone, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

#[tokio::test]
async fn bytes_that_are_not_a_request_get_invalid_argument() {
    let server = TestServer::start().await;
    let mut grpc = tonic::client::Grpc::new(server.client.channel());
    // Field 2 (task_type) as a string whose bytes are not UTF-8; then bytes
    // that are no protobuf at all.
    for (what, body) in [
        ("invalid UTF-8", vec![0x12, 0x02, 0xff, 0xfe]),
        ("garbage", vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
    ] {
        grpc.ready().await.expect("ready");
        let path = tonic::codegen::http::uri::PathAndQuery::from_static("/taskd.v1.TaskService/SubmitTask");
        let status = grpc
            .unary(tonic::Request::new(body), path, RawCodec)
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().starts_with("request: not a valid protobuf message"),
            "{status:?}"
        );
    }
    assert_eq!(server.client.stats().await.unwrap().counts.unwrap().total, 0);
}

#[tokio::test]
async fn a_message_over_the_size_limit_gets_resource_exhausted() {
    let server = TestServer::start().await;
    let huge = SubmitTaskRequest {
        task_type: "diag.echo".into(),
        name: "x".repeat(5 * 1024 * 1024),
        ..Default::default()
    };
    let status = server.client.stub().submit_task(huge).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("limit"), "{status:?}");
    assert_eq!(server.client.stats().await.unwrap().counts.unwrap().total, 0);
}

#[tokio::test]
async fn pages_of_big_tasks_stay_readable_by_a_default_client() {
    let server = TestServer::start().await;
    let blob = "p".repeat(60 * 1024);
    for chunk in 0..4 {
        let batch = (0..25)
            .map(|index| NewTask::new("document_processing").params(json!({"blob": blob, "n": chunk * 25 + index})));
        server.client.submit_batch(batch).await.unwrap();
    }
    // 100 tasks of 60 KB: one default page would be 6 MB, over the 4 MB
    // a default client accepts. Pages shrink instead, and paging finds all.
    let mut seen = std::collections::HashSet::new();
    let mut request = ListTasksRequest::default();
    let mut pages = 0;
    loop {
        let page = server
            .client
            .list(request.clone())
            .await
            .expect("a page a default client reads");
        pages += 1;
        assert!(page.tasks.len() < 100 || page.next_page_token.is_empty());
        for task in &page.tasks {
            assert!(seen.insert(task.id.clone()), "task {} listed twice", task.id);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(seen.len(), 100);
    assert!(pages >= 2, "the page was cut ({pages} pages)");
}
