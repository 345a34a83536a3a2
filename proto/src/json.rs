//! Conversions between `serde_json` values and the protobuf JSON-like
//! well-known types (`google.protobuf.Struct` and `Value`).
//!
//! Shared verbatim by the server crate (via `#[path]`), so that both sides
//! convert the same way.

use pbjson_types::value::Kind;
use pbjson_types::{ListValue, Struct, Value};
use serde_json::{Map, Number};

/// Largest integer a double holds exactly; integral numbers up to it come
/// back as JSON integers, so `3` stays `3`, not `3.0`.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// A protobuf value that has no JSON form (NaN or an infinity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotJson {
    /// Where in the value, as a JSON path such as `.a[2]`.
    pub path: String,
}

/// Converts a protobuf `Struct` into a JSON object.
pub fn struct_to_json(value: &Struct) -> Result<Map<String, serde_json::Value>, NotJson> {
    struct_at(value, "")
}

fn struct_at(value: &Struct, path: &str) -> Result<Map<String, serde_json::Value>, NotJson> {
    let mut keys: Vec<&String> = value.fields.keys().collect();
    keys.sort();
    let mut object = Map::new();
    for key in keys {
        let child = format!("{path}.{key}");
        object.insert(key.clone(), value_at(&value.fields[key], &child)?);
    }
    Ok(object)
}

/// Converts a protobuf `Value` into JSON.
pub fn value_to_json(value: &Value) -> Result<serde_json::Value, NotJson> {
    value_at(value, "")
}

fn value_at(value: &Value, path: &str) -> Result<serde_json::Value, NotJson> {
    Ok(match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(flag)) => serde_json::Value::Bool(*flag),
        Some(Kind::StringValue(text)) => serde_json::Value::String(text.clone()),
        Some(Kind::NumberValue(number)) => {
            if number.fract() == 0.0 && number.abs() <= MAX_EXACT_INTEGER {
                serde_json::Value::Number(Number::from(*number as i64))
            } else {
                Number::from_f64(*number)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| NotJson { path: path.to_string() })?
            }
        }
        Some(Kind::StructValue(inner)) => serde_json::Value::Object(struct_at(inner, path)?),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(
            list.values
                .iter()
                .enumerate()
                .map(|(index, item)| value_at(item, &format!("{path}[{index}]")))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Converts a JSON object into a protobuf `Struct`.
pub fn json_to_struct(object: &Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: object
            .iter()
            .map(|(key, value)| (key.clone(), json_to_value(value)))
            .collect(),
    }
}

/// Converts JSON into a protobuf `Value`.
pub fn json_to_value(value: &serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(*flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(text) => Kind::StringValue(text.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(object) => Kind::StructValue(json_to_struct(object)),
    };
    Value { kind: Some(kind) }
}

/// protobuf's `Value` holds every JSON number as a double, so `{"n": 1}`
/// comes back as `1.0`; this writes whole numbers (below 2^53, where a
/// double is exact) as integers again, so params and results read as they
/// were written.
pub fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        serde_json::Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() < EXACT
            {
                *number = serde_json::Number::from(float as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}
