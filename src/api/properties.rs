//! Fuzzing the request path where it takes bytes from the network: any
//! bytes a client sends as a request message either fail to decode or turn
//! into engine requests (or a refusal naming a field), and nothing panics.
//! Cases: 512 by default; `TASKD_FUZZ_CASES=100000` for a long run.

use proptest::prelude::*;
use prost::Message;

use crate::api::{convert, proto, worker_convert};
use crate::engine::ErrorCode;

fn cases() -> u32 {
    std::env::var("TASKD_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(512)
}

/// A refusal must be a client error that says which field.
fn refused_by_name(error: crate::engine::EngineError) -> Result<(), TestCaseError> {
    prop_assert_eq!(error.code(), ErrorCode::InvalidArgument, "{}", error);
    prop_assert!(error.field().is_some_and(|field| !field.is_empty()), "{}", error);
    Ok(())
}

/// Bytes: mostly valid protobuf wire data (random tags and lengths) so
/// that decoding gets past the first byte, some plain noise.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let field = (1u8..16, 0u8..6, prop::collection::vec(any::<u8>(), 0..24)).prop_map(|(number, wire, payload)| {
        let mut bytes = vec![(number << 3) | wire];
        if wire == 2 {
            bytes.push(payload.len() as u8);
        }
        bytes.extend(payload);
        bytes
    });
    prop_oneof![
        prop::collection::vec(field, 0..12).prop_map(|fields| fields.concat()),
        prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z_.]{1,12}",
        "\\PC{0,40}",
        Just("00000000-0000-0000-0000-000000000000".to_string()),
        Just("0190f0f0-aaaa-7bbb-8ccc-dddddddddddd".to_string()),
    ]
}

fn seconds() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        -10i64..10,
        any::<i64>(),
        Just(i64::MAX),
        Just(i64::MIN),
        0i64..4_000_000_000
    ]
}

fn nanos() -> impl Strategy<Value = i32> {
    prop_oneof![Just(0i32), any::<i32>(), 0i32..1_000_000_000]
}

fn value(depth: u32) -> BoxedStrategy<pbjson_types::Value> {
    use pbjson_types::value::Kind;
    let leaf = prop_oneof![
        Just(Kind::NullValue(0)),
        any::<bool>().prop_map(Kind::BoolValue),
        any::<f64>().prop_map(Kind::NumberValue),
        text().prop_map(Kind::StringValue),
    ]
    .prop_map(|kind| pbjson_types::Value { kind: Some(kind) });
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => prop::collection::vec(value(depth - 1), 0..3).prop_map(|values| pbjson_types::Value {
            kind: Some(Kind::ListValue(pbjson_types::ListValue { values })),
        }),
        1 => prop::collection::btree_map(text(), value(depth - 1), 0..3).prop_map(|fields| pbjson_types::Value {
            kind: Some(Kind::StructValue(pbjson_types::Struct { fields: fields.into_iter().collect() })),
        }),
    ]
    .boxed()
}

fn submit_request() -> impl Strategy<Value = proto::SubmitTaskRequest> {
    (
        (
            text(),
            text(),
            prop::collection::btree_map(text(), value(4), 0..4),
            any::<i32>(),
        ),
        (
            prop::collection::vec((text(), any::<i32>(), text()), 0..3),
            any::<u32>(),
            prop::option::of((seconds(), nanos())),
            prop::option::of((seconds(), nanos())),
        ),
        (text(), prop::collection::btree_map(text(), text(), 0..3), text()),
    )
        .prop_map(
            |(
                (name, task_type, params, priority),
                (dependencies, retries, timeout, run_at),
                (key, labels, batch_ref),
            )| {
                proto::SubmitTaskRequest {
                    name,
                    task_type,
                    params: Some(pbjson_types::Struct {
                        fields: params.into_iter().collect(),
                    }),
                    priority,
                    dependencies: dependencies
                        .into_iter()
                        .map(|(task_id, required_status, batch_ref)| proto::TaskDependency {
                            task_id,
                            required_status,
                            batch_ref,
                        })
                        .collect(),
                    max_retries: Some(retries),
                    timeout: timeout.map(|(seconds, nanos)| pbjson_types::Duration { seconds, nanos }),
                    run_at: run_at.map(|(seconds, nanos)| pbjson_types::Timestamp { seconds, nanos }),
                    idempotency_key: key,
                    labels: labels.into_iter().collect(),
                    batch_ref,
                    ..Default::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_as_a_submit_decode_into_a_task_or_a_refusal_naming_a_field(bytes in wire_bytes()) {
        if let Ok(request) = proto::SubmitTaskRequest::decode(bytes.as_slice())
            && let Err(error) = convert::new_task(request, "")
        {
            refused_by_name(error)?;
        }
        if let Ok(request) = proto::SubmitTasksRequest::decode(bytes.as_slice())
            && let Err(error) = convert::new_tasks(request.tasks)
        {
            refused_by_name(error)?;
        }
    }

    #[test]
    fn any_bytes_as_a_read_or_cancel_decode_into_a_request_or_a_refusal_naming_a_field(bytes in wire_bytes()) {
        if let Ok(request) = proto::ListTasksRequest::decode(bytes.as_slice()) {
            for outcome in [
                convert::list_filter(&request).map(drop),
                convert::page_size(request.page_size).map(drop),
                convert::decode_page_token(&request.page_token).map(drop),
            ] {
                if let Err(error) = outcome {
                    refused_by_name(error)?;
                }
            }
        }
        if let Ok(request) = proto::WatchTasksRequest::decode(bytes.as_slice())
            && let Err(error) = convert::watch_filter(&request)
        {
            refused_by_name(error)?;
        }
        if let Ok(request) = proto::CancelTaskRequest::decode(bytes.as_slice())
            && let Err(error) = convert::task_id("task_id", &request.task_id)
        {
            refused_by_name(error)?;
        }
    }

    #[test]
    fn any_bytes_from_a_worker_decode_into_a_report_or_a_refusal_naming_a_field(bytes in wire_bytes()) {
        if let Ok(request) = proto::FinishAttemptRequest::decode(bytes.as_slice())
            && let Some(result) = &request.result
            && let Err(error) = worker_convert::attempt_result(result, "result")
        {
            refused_by_name(error)?;
        }
        if let Ok(report) = proto::ProgressReport::decode(bytes.as_slice())
            && let Err(error) = worker_convert::progress_report(&report, "report")
        {
            refused_by_name(error)?;
        }
    }

    #[test]
    fn any_submit_message_becomes_a_task_or_a_refusal_naming_a_field(request in submit_request()) {
        let bytes = request.encode_to_vec();
        let decoded = proto::SubmitTaskRequest::decode(bytes.as_slice()).expect("what prost wrote, prost reads");
        if let Err(error) = convert::new_task(decoded, "tasks[3].") {
            refused_by_name(error)?;
        }
    }
}
