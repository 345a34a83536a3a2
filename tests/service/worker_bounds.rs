//! What a worker token may not do: take over the types taskd serves itself
//! or those only an admin may submit, declare types without bound or for
//! good, or break the protocol and be told "OK".

use std::time::Duration;

use bytes::{Buf, BufMut};
use serde_json::json;
use taskd::auth::Secret;
use taskd_client::proto::work_request::Message as Outgoing;
use taskd_client::proto::work_response::Message as Incoming;
use taskd_client::proto::{self, WorkRequest};
use taskd_client::{Client, ConnectOptions, NewTask, TaskStatus};
use tonic::Code;

use crate::support::{TestServer, within};
use crate::workers::{RawWorker, hello};

#[tokio::test]
async fn a_worker_may_not_declare_a_type_taskd_serves_itself_or_one_that_needs_admin() {
    let server = TestServer::start().await;
    for (task_type, why) in [
        ("data_export", "served by taskd"),
        ("report_generation", "served by taskd"),
        ("diag.echo", "served by taskd"),
        ("system_maintenance", "admin"),
    ] {
        let refused = RawWorker::connect(&server.client, hello("usurper", &["thumbnails", task_type]))
            .await
            .err()
            .unwrap_or_else(|| panic!("a worker declaring {task_type} was welcomed"));
        assert_eq!(refused.code(), Code::PermissionDenied, "{}", refused.message());
        let message = refused.message();
        assert!(message.starts_with("hello.task_types[1]:"), "{message}");
        assert!(
            message.contains(task_type) && message.contains(why) && message.contains("engine.worker_may_serve"),
            "{message}"
        );
    }
    // Nothing of a refused hello stays: its other type is not known.
    let unknown = server.client.submit(NewTask::new("thumbnails")).await.unwrap_err();
    assert_eq!(unknown.code(), Some(Code::InvalidArgument));

    // The built-ins still run their own tasks, and no worker is handed one.
    let export = server
        .client
        .submit(NewTask::new("data_export").params(json!({"limit": 1})))
        .await
        .unwrap();
    let done = server.wait(&export.id).await;
    assert_eq!(done.status(), TaskStatus::Completed);
    assert_eq!(done.attempts[0].worker, "local");
}

#[tokio::test]
async fn the_configuration_may_let_workers_serve_a_built_in_type() {
    let server =
        TestServer::start_with(|config| config.engine.worker_may_serve = vec!["report_generation".into()]).await;
    let (_worker, welcome) = RawWorker::connect(&server.client, hello("reporter", &["report_generation"]))
        .await
        .expect("allowed by engine.worker_may_serve");
    assert_eq!(welcome.worker_id, "reporter");
}

#[tokio::test]
async fn declared_types_are_bounded_on_the_whole_server() {
    let server = TestServer::start_with(|config| config.engine.limits.max_declared_task_types = 5).await;
    let (_first, _) = RawWorker::connect(&server.client, hello("first", &["a.one", "a.two", "a.three"]))
        .await
        .unwrap();
    let refused = RawWorker::connect(&server.client, hello("second", &["a.one", "b.one", "b.two", "b.three"]))
        .await
        .err()
        .expect("over the bound");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{}", refused.message());
    assert!(
        refused.message().contains("engine.limits.max_declared_task_types (5)"),
        "{}",
        refused.message()
    );
    let unknown = server.client.submit(NewTask::new("b.one")).await.unwrap_err();
    assert_eq!(unknown.code(), Some(Code::InvalidArgument), "nothing of it declared");
    // Types declared already cost nothing more.
    let (_again, _) = RawWorker::connect(&server.client, hello("third", &["a.one", "b.one", "b.two"]))
        .await
        .expect("two new types fit");
}

async fn known(client: &Client, task_type: &str) -> bool {
    client
        .task_types()
        .await
        .unwrap()
        .iter()
        .any(|info| info.task_type == task_type)
}

#[tokio::test]
async fn a_type_no_worker_declared_or_served_for_the_set_time_is_forgotten() {
    let server = TestServer::start_with(|config| {
        config.engine.forget_task_types_after = Duration::from_millis(300);
        config.engine.known_task_types = vec!["configured".into()];
    })
    .await;
    let client = &server.client;
    let (gone, _) = RawWorker::connect(client, hello("gone", &["thumbnails"]))
        .await
        .unwrap();
    let (_staying, _) = RawWorker::connect(client, hello("staying", &["embeddings"]))
        .await
        .unwrap();
    drop(gone);
    within("thumbnails forgotten", async {
        while known(client, "thumbnails").await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let refused = client.submit(NewTask::new("thumbnails")).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::InvalidArgument));
    assert!(known(client, "embeddings").await, "a connected worker serves it");
    assert!(known(client, "configured").await, "the configuration names it");
    assert!(known(client, "document_processing").await, "the design note names it");
    client.submit(NewTask::new("embeddings")).await.unwrap();
}

async fn as_token(server: &TestServer, token: &str) -> Client {
    Client::connect_with(
        format!("http://{}", server.server.as_ref().unwrap().local_addr()),
        &ConnectOptions {
            token: Some(token.into()),
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap()
}

async fn delete_type(client: &Client, task_type: &str) -> Result<(), tonic::Status> {
    client
        .stub()
        .delete_task_type(proto::DeleteTaskTypeRequest {
            task_type: task_type.into(),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_admin_removes_a_declared_type_and_nothing_else() {
    let server = TestServer::start_with(|config| {
        config.auth.tokens_text = Some(Secret(
            "ops admin admin-token-0123456789; pool worker worker-token-0123456789; ci submit,read ci-token-0123456789"
                .into(),
        ))
    })
    .await;
    let admin = as_token(&server, "admin-token-0123456789").await;
    let worker = as_token(&server, "worker-token-0123456789").await;
    let submitter = as_token(&server, "ci-token-0123456789").await;
    let (typo, _) = RawWorker::connect(&worker, hello("typo", &["thumbnial"]))
        .await
        .unwrap();
    let (_serving, _) = RawWorker::connect(&worker, hello("serving", &["embeddings"]))
        .await
        .unwrap();
    drop(typo);

    let denied = delete_type(&submitter, "thumbnial").await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("admin"), "{}", denied.message());

    for (task_type, code, says) in [
        ("data_export", Code::FailedPrecondition, "taskd serves it"),
        ("document_processing", Code::FailedPrecondition, "design note"),
        ("embeddings", Code::FailedPrecondition, "serving"),
        ("never.declared", Code::NotFound, "never.declared"),
    ] {
        let refused = delete_type(&admin, task_type).await.unwrap_err();
        assert_eq!(refused.code(), code, "{task_type}: {}", refused.message());
        assert!(refused.message().contains(says), "{}", refused.message());
    }

    // The disconnected worker's typo can go at once, and a submit of it is
    // refused again.
    let parked = submitter.submit(NewTask::new("thumbnial")).await.unwrap();
    within("the worker's session closed", async {
        loop {
            match delete_type(&admin, "thumbnial").await {
                Ok(()) => return,
                Err(status) if status.code() == Code::FailedPrecondition => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(status) => panic!("{status}"),
            }
        }
    })
    .await;
    assert!(!known(&admin, "thumbnial").await);
    let refused = submitter.submit(NewTask::new("thumbnial")).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::InvalidArgument));
    assert_eq!(
        admin.get(&parked.id).await.unwrap().status(),
        TaskStatus::Pending,
        "tasks already submitted stay"
    );

    // Over REST too.
    let (retired, _) = RawWorker::connect(&worker, hello("retired", &["old.type"]))
        .await
        .unwrap();
    drop(retired);
    let url = format!(
        "http://{}/api/v1/task-types/old.type",
        server.server.as_ref().unwrap().local_addr()
    );
    let answer = within("the REST delete", async {
        loop {
            let answer = reqwest::Client::new()
                .delete(&url)
                .bearer_auth("admin-token-0123456789")
                .send()
                .await
                .unwrap();
            if answer.status() != reqwest::StatusCode::PRECONDITION_FAILED
                && answer.status() != reqwest::StatusCode::CONFLICT
            {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert!(!known(&admin, "old.type").await);
}

/// Bytes sent as they are: what a broken or hostile worker puts on the wire.
#[derive(Clone, Default)]
struct RawBytes;

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Opens a Work stream, says hello, then sends `after` as raw messages;
/// returns the status the stream ends with.
async fn stream_ending_after(client: &Client, after: Vec<Vec<u8>>) -> tonic::Status {
    use prost::Message as _;
    let hello = WorkRequest {
        message: Some(Outgoing::Hello(hello("breaker", &["manual"]))),
    }
    .encode_to_vec();
    let messages = std::iter::once(hello).chain(after).collect::<Vec<_>>();
    // The stream stays open after the messages, as a live worker's does.
    let outgoing = futures::StreamExt::chain(futures::stream::iter(messages), futures::stream::pending());
    let mut grpc = tonic::client::Grpc::new(client.channel());
    grpc.ready().await.expect("ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/taskd.v1.WorkerService/Work");
    let mut responses = grpc
        .streaming(tonic::Request::new(outgoing), path, RawBytes)
        .await
        .expect("the stream opens")
        .into_inner();
    within("the stream's end", async {
        loop {
            match responses.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended with OK"),
                Err(status) => return status,
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_worker_that_breaks_the_protocol_is_told_what_it_did() {
    let server = TestServer::start().await;
    let garbage = stream_ending_after(&server.client, vec![vec![0xff, 0xff, 0xff, 0x0f, 0x01]]).await;
    assert_eq!(garbage.code(), Code::InvalidArgument, "{}", garbage.message());
    assert!(garbage.message().contains("protobuf"), "{}", garbage.message());

    use prost::Message as _;
    let huge = WorkRequest {
        message: Some(Outgoing::Finish(proto::FinishAttempts {
            results: vec![proto::AttemptResult {
                lease: None,
                outcome: Some(proto::attempt_result::Outcome::Failure(proto::AttemptFailure {
                    message: "x".repeat(5 * 1024 * 1024),
                    permanent: true,
                })),
            }],
        })),
    }
    .encode_to_vec();
    let oversized = stream_ending_after(&server.client, vec![huge]).await;
    assert_eq!(oversized.code(), Code::ResourceExhausted, "{}", oversized.message());
    assert!(oversized.message().contains("too large"), "{}", oversized.message());
}

#[tokio::test]
async fn a_finish_with_a_token_that_was_never_issued_says_so() {
    let server = TestServer::start().await;
    let (mut raw, _) = RawWorker::connect(&server.client, hello("holder", &["manual"]))
        .await
        .unwrap();
    let task = server.client.submit(NewTask::new("manual")).await.unwrap();
    let Incoming::Tasks(assigned) = raw.next().await else {
        panic!("expected tasks")
    };
    let mut forged = assigned.tasks[0].lease.clone().unwrap();
    forged.token ^= 0x5a5a_5a5a;
    let mut stub = taskd_client::proto::worker_service_client::WorkerServiceClient::new(server.client.channel());
    let refused = stub
        .finish_attempt(proto::FinishAttemptRequest {
            result: Some(proto::AttemptResult {
                lease: Some(forged),
                outcome: Some(proto::attempt_result::Outcome::Result(
                    taskd_client::json::json_to_value(&json!("faked")),
                )),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("not the token") && !refused.message().contains("taken back"),
        "{}",
        refused.message()
    );
    assert_eq!(
        server.client.get(&task.id).await.unwrap().status(),
        TaskStatus::Running,
        "its holder still has it"
    );
}

#[tokio::test]
async fn diag_panic_is_served_only_when_enabled() {
    let server = TestServer::start().await;
    let refused = server.client.submit(NewTask::new("diag.panic")).await.unwrap_err();
    assert_eq!(refused.code(), Some(Code::InvalidArgument));
    assert!(refused.to_string().contains("unknown task type"), "{refused}");
}
