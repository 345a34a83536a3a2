//! Typed reads of a task's `params`, shared by the built-in handlers.
//!
//! Params are whatever a client submitted, so every read can fail. Each
//! accessor turns a wrong value into a [`HandlerError`] that names the param
//! the way the client wrote it (`params.duration_ms: ...`): the attempt fails
//! with a message the submitter can act on, and no handler panics or unwraps
//! on input.
//!
//! `null` counts as absent. Whole-valued floats are accepted where an integer
//! is expected, because params submitted over gRPC travel as a
//! `google.protobuf.Struct`, whose numbers are all doubles.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use serde_json::Value;

use crate::engine::handler::HandlerError;
use crate::model::Params;

/// Largest integer a double holds exactly.
const MAX_EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// An error about the param `name`, e.g. `params.format: must be ...`.
/// Permanent: every attempt would read the same params.
pub(crate) fn invalid(name: &str, message: impl Display) -> HandlerError {
    HandlerError::permanent(format!("params.{name}: {message}"))
}

/// What kind of JSON value `value` is, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses a param not in `accepted` (a task stored before its type said
/// which params it takes), naming it.
pub(crate) fn only(params: &Params, accepted: &[&str]) -> Result<(), HandlerError> {
    match params.keys().find(|name| !accepted.contains(&name.as_str())) {
        Some(name) => Err(invalid(
            name,
            format!("not a param of this type; it takes {}", accepted.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The value of `name`, `None` when absent or null.
fn present<'a>(params: &'a Params, name: &str) -> Option<&'a Value> {
    params.get(name).filter(|value| !value.is_null())
}

/// A non-negative whole number, from an integer or a whole-valued float.
fn whole_number(value: &Value) -> Option<u64> {
    if let Some(number) = value.as_u64() {
        return Some(number);
    }
    let float = value.as_f64()?;
    (float.fract() == 0.0 && (0.0..=MAX_EXACT_FLOAT_INTEGER).contains(&float)).then_some(float as u64)
}

/// An optional whole number in `0..=max`.
pub(crate) fn optional_u64(params: &Params, name: &str, max: u64) -> Result<Option<u64>, HandlerError> {
    let Some(value) = present(params, name) else {
        return Ok(None);
    };
    let number = whole_number(value).ok_or_else(|| match value {
        Value::Number(number) => invalid(name, format!("must be a whole number from 0 to {max}, got {number}")),
        other => invalid(name, format!("must be a whole number, got {}", kind(other))),
    })?;
    if number > max {
        return Err(invalid(name, format!("must be at most {max}, got {number}")));
    }
    Ok(Some(number))
}

/// A required whole number in `0..=max`.
pub(crate) fn required_u64(params: &Params, name: &str, max: u64) -> Result<u64, HandlerError> {
    optional_u64(params, name, max)?.ok_or_else(|| invalid(name, "is required"))
}

/// An optional boolean.
pub(crate) fn optional_bool(params: &Params, name: &str) -> Result<Option<bool>, HandlerError> {
    match present(params, name) {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(invalid(name, format!("must be true or false, got {}", kind(other)))),
    }
}

/// An optional string.
pub(crate) fn optional_str<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, HandlerError> {
    match present(params, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(invalid(name, format!("must be a string, got {}", kind(other)))),
    }
}

/// An optional array of strings; empty when absent.
pub(crate) fn string_list(params: &Params, name: &str) -> Result<Vec<String>, HandlerError> {
    let items = match present(params, name) {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(
                name,
                format!("must be an array of strings, got {}", kind(other)),
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(text) => Ok(text.clone()),
            other => Err(invalid(
                &format!("{name}[{index}]"),
                format!("must be a string, got {}", kind(other)),
            )),
        })
        .collect()
}

/// An optional object of string values; empty when absent.
pub(crate) fn string_map(params: &Params, name: &str) -> Result<BTreeMap<String, String>, HandlerError> {
    let entries = match present(params, name) {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            return Err(invalid(
                name,
                format!("must be an object of string values, got {}", kind(other)),
            ));
        }
    };
    entries
        .iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key.clone(), text.clone())),
            other => Err(invalid(
                &format!("{name}.{key}"),
                format!("must be a string, got {}", kind(other)),
            )),
        })
        .collect()
}

/// An optional duration written the humantime way ("90s", "24h", "7d"),
/// at most `max`.
pub(crate) fn optional_duration(params: &Params, name: &str, max: Duration) -> Result<Option<Duration>, HandlerError> {
    let Some(text) = optional_str(params, name)? else {
        return Ok(None);
    };
    let duration = humantime::parse_duration(text.trim()).map_err(|error| {
        invalid(
            name,
            format!("{text:?} is not a duration like \"90s\", \"24h\" or \"7d\" ({error})"),
        )
    })?;
    if duration > max {
        return Err(invalid(
            name,
            format!("must be at most {}, got {text:?}", humantime::format_duration(max)),
        ));
    }
    Ok(Some(duration))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(value: Value) -> Params {
        match value {
            Value::Object(map) => map,
            _ => Params::new(),
        }
    }

    fn message<T: std::fmt::Debug>(result: Result<T, HandlerError>) -> String {
        match result {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(error) => error.message,
        }
    }

    #[test]
    fn a_whole_float_counts_as_an_integer_because_grpc_sends_doubles() {
        assert_eq!(optional_u64(&params(json!({"n": 250.0})), "n", 1000), Ok(Some(250)));
        assert_eq!(optional_u64(&params(json!({"n": 250})), "n", 1000), Ok(Some(250)));
    }

    #[test]
    fn null_and_absent_params_read_as_none() {
        assert_eq!(optional_u64(&params(json!({"n": null})), "n", 10), Ok(None));
        assert_eq!(optional_bool(&params(json!({})), "flag"), Ok(None));
        assert_eq!(string_list(&params(json!({})), "items"), Ok(Vec::new()));
    }

    #[test]
    fn a_fractional_negative_or_textual_number_is_rejected_naming_the_param() {
        for value in [json!(1.5), json!(-3), json!("12")] {
            let error = message(optional_u64(&params(json!({ "n": value })), "n", 10));
            assert!(error.starts_with("params.n: must be a whole number"), "{error}");
        }
    }

    #[test]
    fn a_number_above_the_maximum_is_rejected_with_the_maximum() {
        let error = message(optional_u64(&params(json!({"n": 11})), "n", 10));
        assert_eq!(error, "params.n: must be at most 10, got 11");
    }

    #[test]
    fn a_missing_required_number_says_it_is_required() {
        assert_eq!(
            message(required_u64(&params(json!({})), "n", 10)),
            "params.n: is required"
        );
    }

    #[test]
    fn a_non_string_list_item_is_named_by_its_index() {
        let error = message(string_list(&params(json!({"types": ["a", 2]})), "types"));
        assert_eq!(error, "params.types[1]: must be a string, got a number");
    }

    #[test]
    fn a_non_string_map_value_is_named_by_its_key() {
        let error = message(string_map(&params(json!({"labels": {"team": 7}})), "labels"));
        assert_eq!(error, "params.labels.team: must be a string, got a number");
    }

    #[test]
    fn durations_parse_the_humantime_way_and_bad_ones_name_the_param() {
        let max = Duration::from_secs(3650 * 86_400);
        let parsed = optional_duration(&params(json!({"since": "7d"})), "since", max);
        assert_eq!(parsed, Ok(Some(Duration::from_secs(7 * 86_400))));
        let error = message(optional_duration(&params(json!({"since": "soon"})), "since", max));
        assert!(error.starts_with("params.since: \"soon\" is not a duration"), "{error}");
        let error = message(optional_duration(&params(json!({"since": 7})), "since", max));
        assert_eq!(error, "params.since: must be a string, got a number");
    }

    #[test]
    fn a_duration_above_the_maximum_is_rejected() {
        let error = message(optional_duration(
            &params(json!({"since": "2d"})),
            "since",
            Duration::from_secs(86_400),
        ));
        assert_eq!(error, "params.since: must be at most 1day, got \"2d\"");
    }
}
