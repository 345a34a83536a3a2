//! Points in time as the model keeps them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch: cheap to compare, store and ship.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(since) => Timestamp(since.as_micros() as i64),
            Err(before) => Timestamp(-(before.duration().as_micros() as i64)),
        }
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    pub fn saturating_add(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_micros(duration)))
    }

    pub fn saturating_sub(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_micros(duration)))
    }

    /// RFC 3339 in UTC with microseconds (`2025-01-31T12:00:00.123456Z`),
    /// or `"<n>us since epoch"` outside the years 1970 to 9999, which it
    /// cannot write (a stored time is data: it must not panic).
    pub fn to_rfc3339(self) -> String {
        /// First microsecond of the year 10000.
        const END_OF_YEAR_9999_MICROS: i64 = 253_402_300_800 * 1_000_000;
        if !(0..END_OF_YEAR_9999_MICROS).contains(&self.0) {
            return format!("{}us since epoch", self.0);
        }
        let time = UNIX_EPOCH + Duration::from_micros(self.0.unsigned_abs());
        humantime::format_rfc3339_micros(time).to_string()
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later.
    pub fn duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

fn duration_micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
