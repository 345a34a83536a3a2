//! Engine timestamps as text for files and results that people and other
//! tools read: RFC 3339 in UTC with microseconds, e.g.
//! `2025-01-31T12:00:00.123456Z`.
//!
//! Times outside 1970 to 9999 are written as raw microseconds
//! ([`Timestamp::to_rfc3339`]).

use serde_json::Value;

use crate::model::Timestamp;

/// `timestamp` in RFC 3339, or `"<n>us since epoch"` outside 1970..=9999.
pub(crate) fn rfc3339(timestamp: Timestamp) -> String {
    timestamp.to_rfc3339()
}

/// An optional timestamp as a JSON string, or null.
pub(crate) fn json_or_null(timestamp: Option<Timestamp>) -> Value {
    timestamp.map_or(Value::Null, |timestamp| Value::String(rfc3339(timestamp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_formats_as_utc_rfc3339_with_microseconds() {
        assert_eq!(rfc3339(Timestamp(1_500_000_000_123_456)), "2017-07-14T02:40:00.123456Z");
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn a_timestamp_rfc3339_cannot_write_falls_back_to_microseconds_instead_of_panicking() {
        assert_eq!(rfc3339(Timestamp(-5)), "-5us since epoch");
        assert_eq!(rfc3339(Timestamp(i64::MAX)), format!("{}us since epoch", i64::MAX));
    }

    #[test]
    fn a_missing_timestamp_is_null() {
        assert_eq!(json_or_null(None), Value::Null);
    }
}
