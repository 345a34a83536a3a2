//! Fuzzing the REST bridge over real HTTP: arbitrary JSON bodies, bodies
//! with one field of a valid request replaced by anything, raw bytes, and
//! query strings. Whatever arrives, the answer is a success or a client
//! error in the one error shape, naming the field when there is one; never
//! a server error, never a hang. Cases per property: 128 by default,
//! `TASKD_FUZZ_CASES` for a long run.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use crate::support::TestServer;

fn cases() -> u32 {
    std::env::var("TASKD_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .map_or(128, |cases: u32| cases / 4)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)),
        "\\PC{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "HIGH",
            "CRITICAL",
            "PENDING",
            "diag.echo",
            "1s",
            "-1s",
            "2026-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "1e400",
            "NaN",
            "",
        ])
        .prop_map(|text| Value::String(text.to_string())),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_A-Z]{0,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

const SUBMIT_FIELDS: &[&str] = &[
    "name",
    "task_type",
    "taskType",
    "params",
    "priority",
    "dependencies",
    "max_retries",
    "timeout",
    "run_at",
    "idempotency_key",
    "labels",
    "batch_ref",
    "retry_policy",
];

fn valid_submit() -> Value {
    json!({
        "name": "fuzzed",
        "task_type": "diag.echo",
        "params": {"message": "hi"},
        "priority": "HIGH",
        "max_retries": 2,
        "timeout": "30s",
        "labels": {"fuzz": "yes"},
    })
}

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Value), TestCaseError> {
        let response = tokio::time::timeout(Duration::from_secs(10), request.send())
            .await
            .map_err(|_| TestCaseError::fail("no answer within 10 s"))?
            .map_err(|error| TestCaseError::fail(format!("transport error: {error}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> Result<(u16, Value), TestCaseError> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        self.send(request).await
    }
}

/// A success, or a client error in the one error shape.
fn well_answered(status: u16, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "server error {status}: {body}");
    if status >= 400 {
        prop_assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{status}: {body}"
        );
        if status == 400 {
            prop_assert!(body["field"].is_string(), "a 400 names its field: {body}");
        }
    }
    Ok(())
}

type Check<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), TestCaseError>> + 'a>>;

fn run<'a, S: Strategy>(
    name: &str,
    strategy: S,
    runtime: &tokio::runtime::Runtime,
    check: impl Fn(S::Value) -> Check<'a>,
) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |input| runtime.block_on(check(input)))
        .unwrap_or_else(|error| panic!("{name}: {error}"));
}

#[test]
fn the_rest_bridge_answers_any_body_or_query_with_success_or_a_named_client_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(TestServer::start());
    let http = Http {
        client: reqwest::Client::new(),
        base: format!("http://{}", server.server.as_ref().expect("running").local_addr()),
    };
    let http = &http;

    run("submit bodies", json_value(), &runtime, |body| {
        Box::pin(async move {
            let (status, answer) = http
                .post("/api/v1/tasks", serde_json::to_vec(&body).expect("json"))
                .await?;
            well_answered(status, &answer)
        })
    });

    run(
        "one field of a valid submit replaced",
        (prop::sample::select(SUBMIT_FIELDS), json_value()),
        &runtime,
        |(field, value)| {
            Box::pin(async move {
                let mut body = valid_submit();
                body[field] = value;
                let (status, answer) = http
                    .post("/api/v1/tasks", serde_json::to_vec(&body).expect("json"))
                    .await?;
                well_answered(status, &answer)
            })
        },
    );

    run(
        "batch bodies",
        prop::collection::vec(json_value(), 0..4),
        &runtime,
        |tasks| {
            Box::pin(async move {
                let body = json!({ "tasks": tasks });
                let (status, answer) = http
                    .post("/api/v1/tasks/batch", serde_json::to_vec(&body).expect("json"))
                    .await?;
                well_answered(status, &answer)
            })
        },
    );

    run(
        "raw bytes",
        prop::collection::vec(any::<u8>(), 0..512),
        &runtime,
        |bytes| {
            Box::pin(async move {
                let (status, answer) = http.post("/api/v1/tasks", bytes).await?;
                well_answered(status, &answer)
            })
        },
    );

    let query_part = prop_oneof![
        prop::sample::select(vec![
            "status=",
            "status=RUNNING",
            "status=running",
            "task_type=",
            "priority=HIGH",
            "page_size=",
            "page_size=-1",
            "page_size=99999999999999999999",
            "page_token=",
            "page_token=%00",
            "created_after=",
            "created_before=",
            "label=",
            "label=a:b",
            "name=",
            "depends_on=",
            "&",
            "=",
            "%",
            "%zz",
            "%F0%9F",
            "+",
            "a=b=c",
        ])
        .prop_map(str::to_string),
        "\\PC{0,12}",
    ];
    run(
        "list query strings",
        prop::collection::vec(query_part, 0..6),
        &runtime,
        |parts| {
            Box::pin(async move {
                let query = parts.join("&");
                let request = http.client.get(format!("{}/api/v1/tasks?{query}", http.base));
                let (status, answer) = http.send(request).await?;
                well_answered(status, &answer)
            })
        },
    );
    drop(server);
}
