//! How the REST bridge writes messages: the proto3 JSON mapping with the
//! schema's own field names (`task_type`, `created_at`, as the design note
//! writes them), every field present (a count of zero reads `0`, not a
//! missing key), 64-bit integers as JSON numbers, whole numbers without a
//! fraction (params `{"n": 1}` read back as written, not `1.0`: protobuf
//! holds every JSON number as a double), timestamps in RFC 3339 UTC (`Z`).
//! Requests accept these names and the camelCase ones alike.
//!
//! The generated pbjson impls write camelCase and 64-bit integers as
//! strings (the mapping's defaults), so responses go through the descriptor
//! set instead, with `prost-reflect`: one encode and decode per response,
//! which a REST caller never notices beside the request itself.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use crate::api::proto::FILE_DESCRIPTOR_SET;

static POOL: LazyLock<DescriptorPool> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the built-in descriptor set decodes"));

fn options() -> SerializeOptions {
    SerializeOptions::new()
        .stringify_64_bit_integers(false)
        .use_proto_field_name(true)
        .skip_default_fields(false)
}

/// `message` as REST writes it.
pub fn to_value<T: Message + Name>(message: &T) -> serde_json::Value {
    let Some(descriptor) = POOL.get_message_by_name(&T::full_name()) else {
        // Every message the bridge writes is in the descriptor set; a test
        // goes through each of them.
        return serde_json::Value::Null;
    };
    let bytes = message.encode_to_vec();
    let mut value = match DynamicMessage::decode(descriptor, bytes.as_slice()) {
        Ok(dynamic) => dynamic
            .serialize_with_options(serde_json::value::Serializer, &options())
            .unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    };
    crate::api::json::whole_numbers_as_integers(&mut value);
    value
}

/// `message` as REST writes it, as text.
pub fn to_string<T: Message + Name>(message: &T) -> String {
    to_value(message).to_string()
}

/// A response body written the REST way.
pub struct RestJson<T>(pub T);

impl<T: Message + Name> IntoResponse for RestJson<T> {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], to_string(&self.0)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::proto;

    #[test]
    fn fields_are_snake_case_counts_are_numbers_and_zeros_are_present() {
        let stats = proto::TaskStats {
            counts: Some(proto::StatusCounts {
                pending: 3,
                total: 3,
                ..Default::default()
            }),
            submitted_since_start: 12,
            ..Default::default()
        };
        let value = to_value(&stats);
        assert_eq!(value["counts"]["pending"], 3);
        assert_eq!(value["counts"]["running"], 0);
        assert_eq!(value["submitted_since_start"], 12);
        assert_eq!(value["concurrency_limit_reason"], "");
    }

    #[test]
    fn timestamps_end_in_z_and_params_stay_as_written() {
        let task = proto::Task {
            id: "0193".into(),
            task_type: "diag.echo".into(),
            created_at: Some(pbjson_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 5_000_000,
            }),
            params: Some(crate::api::json::json_to_struct(
                serde_json::json!({"camelCase": 1, "n": "7"})
                    .as_object()
                    .expect("object"),
            )),
            status: proto::TaskStatus::Pending as i32,
            ..Default::default()
        };
        let value = to_value(&task);
        assert_eq!(value["task_type"], "diag.echo");
        assert_eq!(value["status"], "PENDING");
        assert_eq!(value["created_at"], "2027-01-15T08:00:00.005Z");
        assert_eq!(value["params"], serde_json::json!({"camelCase": 1, "n": "7"}));
        assert_eq!(value["params"].to_string(), r#"{"camelCase":1,"n":"7"}"#);
    }
}
