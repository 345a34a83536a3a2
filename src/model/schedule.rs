//! When a schedule fires: a cron expression read on the wall clock of an
//! IANA time zone, or a fixed interval with a phase offset. Pure functions
//! of time, so every node computes the same fire times, and tests move a
//! clock instead of waiting for one.
//!
//! Cron expressions are matched on the zone's wall clock (croner does the
//! matching), then placed on the time line here, with daylight-saving
//! transitions decided once:
//! - a wall-clock time that happens twice (the clock falls back) fires
//!   once, at its first occurrence;
//! - a wall-clock time that does not happen (the clock springs forward)
//!   fires once, at the first instant after the gap. A fire that the gap
//!   moved onto a time the expression also names is one fire, not two.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::model::Timestamp;

/// How a schedule's fire times are written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecKind {
    /// A cron expression (5 fields, or 6 with seconds first), read in
    /// `time_zone` (IANA, e.g. "Europe/Paris"; "UTC" when empty).
    Cron { expression: String, time_zone: String },
    /// Every `every`, at `offset` past each multiple of it since the Unix
    /// epoch (UTC): every 1 h with an offset of 15 min fires at :15.
    Interval {
        #[serde(with = "crate::model::micros")]
        every: Duration,
        #[serde(with = "crate::model::micros")]
        offset: Duration,
    },
}

/// A schedule's spec: when it fires, and how far each fire's task may be
/// spread after its nominal time.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleSpec {
    pub kind: SpecKind,
    /// Each fire's task runs up to this much after its nominal time, at a
    /// point derived from the schedule and the fire (the same on every
    /// node), so that many schedules on one minute do not start together.
    #[serde(with = "crate::model::micros", default)]
    pub jitter: Duration,
}

/// A spec that cannot be used, with the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn refused(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The shortest interval a schedule may fire at.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The longest jitter.
pub const MAX_JITTER: Duration = Duration::from_secs(24 * 3600);

/// A spec checked and ready to compute fire times.
#[derive(Clone, Debug)]
pub enum FireTimes {
    Cron { cron: Box<Cron>, zone: Tz },
    Interval { every: i64, offset: i64 },
}

impl FireTimes {
    /// Checks `spec`; a refusal names the field (`spec.cron.expression`).
    pub fn of(spec: &ScheduleSpec) -> Result<Self, SpecError> {
        if spec.jitter > MAX_JITTER {
            return Err(refused("spec.jitter", "at most 24h"));
        }
        match &spec.kind {
            SpecKind::Cron { expression, time_zone } => {
                let cron = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(expression.trim())
                    .map_err(|error| refused("spec.cron.expression", format!("{expression:?}: {error}")))?;
                let zone_name = if time_zone.trim().is_empty() {
                    "UTC"
                } else {
                    time_zone.trim()
                };
                let zone = Tz::from_str(zone_name).map_err(|_| {
                    refused(
                        "spec.cron.time_zone",
                        format!("{zone_name:?} is not an IANA time zone (e.g. \"Europe/Paris\", \"UTC\")"),
                    )
                })?;
                Ok(FireTimes::Cron {
                    cron: Box::new(cron),
                    zone,
                })
            }
            SpecKind::Interval { every, offset } => {
                if *every < MIN_INTERVAL {
                    return Err(refused("spec.interval.every", "at least 1s"));
                }
                if offset >= every {
                    return Err(refused("spec.interval.offset", "must be shorter than the interval"));
                }
                Ok(FireTimes::Interval {
                    every: micros_of(*every),
                    offset: micros_of(*offset),
                })
            }
        }
    }

    /// The first nominal fire time strictly after `after`; `None` when the
    /// expression names no time that comes (February 30th).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            FireTimes::Interval { every, offset } => {
                let since = after.as_micros().checked_sub(*offset)?;
                let periods = since.div_euclid(*every) + 1;
                periods.checked_mul(*every)?.checked_add(*offset).map(Timestamp)
            }
            FireTimes::Cron { cron, zone } => next_cron_fire(cron, *zone, after),
        }
    }

    /// Every nominal fire time in `(after, until]`, at most `most`, and
    /// whether there were more.
    pub fn between(&self, after: Timestamp, until: Timestamp, most: usize) -> (Vec<Timestamp>, bool) {
        let mut fires = Vec::new();
        let mut cursor = after;
        while let Some(next) = self.next_after(cursor) {
            if next > until {
                return (fires, false);
            }
            if fires.len() == most {
                return (fires, true);
            }
            fires.push(next);
            cursor = next;
        }
        (fires, false)
    }
}

/// How far after its nominal time a fire's task runs, within `jitter`:
/// derived from the schedule's name and the fire, so every node agrees.
pub fn jitter_of(name: &str, nominal: Timestamp, jitter: Duration) -> Duration {
    let span = micros_of(jitter);
    if span == 0 {
        return Duration::ZERO;
    }
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes().chain(nominal.as_micros().to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Duration::from_micros(hash % (span as u64 + 1))
}

fn micros_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The longest a clock springs forward: a wall-clock time in a gap is
/// moved at most this far.
const LONGEST_GAP_MINUTES: i64 = 24 * 60;

fn next_cron_fire(cron: &Cron, zone: Tz, after: Timestamp) -> Option<Timestamp> {
    let after_utc = DateTime::<Utc>::from_timestamp_micros(after.as_micros())?;
    // Wall-clock times are matched as if they were UTC: no zone arithmetic
    // inside croner, all of it below.
    let mut wall = zone.from_utc_datetime(&after_utc.naive_utc()).naive_local();
    // Bounded: a few ambiguous or skipped times at most before a later one.
    for _ in 0..64 {
        let candidate = cron.find_next_occurrence(&Utc.from_utc_datetime(&wall), false).ok()?;
        wall = candidate.naive_utc();
        let instant = place(zone, wall)?;
        if instant > after_utc {
            return Some(Timestamp(instant.timestamp_micros()));
        }
    }
    None
}

/// Where wall-clock time `wall` in `zone` falls on the time line: its first
/// occurrence when it happens twice, the end of the gap when it does not
/// happen.
fn place(zone: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&wall) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        // Gaps begin and end on whole minutes: the first valid minute after
        // `wall` is the instant the clock sprang to.
        LocalResult::None => (1..=LONGEST_GAP_MINUTES).find_map(|minutes| {
            let later = (wall + chrono::Duration::minutes(minutes)).with_second(0)?;
            match zone.from_local_datetime(&later) {
                LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
                LocalResult::None => None,
            }
        }),
    }
}

/// What a schedule does when a fire comes while the task of an earlier
/// fire has not ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// The fire is skipped (and counted).
    #[default]
    Skip,
    /// The fire waits for the earlier task to end; one waits at most, later
    /// ones are skipped.
    BufferOne,
    /// The fire runs beside the earlier task.
    AllowAll,
    /// The earlier task is cancelled, then the fire runs.
    CancelRunning,
}

/// What a schedule does with fires it missed (the service was down, or
/// the schedule paused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CatchUp {
    /// Missed fires younger than this run; older ones are skipped (and
    /// counted).
    #[serde(with = "crate::model::micros")]
    pub window: Duration,
    /// Of the missed fires within the window, only the latest runs.
    pub latest_only: bool,
}

impl Default for CatchUp {
    fn default() -> Self {
        CatchUp {
            window: Duration::from_secs(60),
            latest_only: false,
        }
    }
}

/// The task each fire submits.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskTemplate {
    pub task_type: String,
    #[serde(default)]
    pub params: crate::model::Params,
    /// `TaskPriority::code`.
    #[serde(default = "normal_priority")]
    pub priority: i64,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default, with = "crate::model::micros::optional")]
    pub timeout: Option<Duration>,
    /// Backoff between attempts; what is unset takes the server's default.
    #[serde(default)]
    pub retry_policy: Option<crate::model::PartialRetryPolicy>,
}

fn normal_priority() -> i64 {
    crate::model::TaskPriority::Normal.code()
}

/// A recurring task: when it fires, what it submits, and what it does
/// about overlaps and missed fires; with what it has done so far.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Unique; letters, digits, '_', '.', '-', ':'.
    pub name: String,
    pub spec: ScheduleSpec,
    pub template: TaskTemplate,
    #[serde(default)]
    pub overlap: Overlap,
    #[serde(default)]
    pub catch_up: CatchUp,
    /// No fire before this.
    #[serde(default)]
    pub start_at: Option<Timestamp>,
    /// No fire after this.
    #[serde(default)]
    pub end_at: Option<Timestamp>,
    /// No more fires once this many have run.
    #[serde(default)]
    pub max_fires: Option<u64>,
    /// Paused, with why; fires that come meanwhile are missed (see
    /// `catch_up`).
    #[serde(default)]
    pub paused: Option<String>,
    #[serde(flatten)]
    pub state: ScheduleState,
}

/// What a schedule has done.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleState {
    /// The next nominal fire time; `None` when none comes (ended).
    #[serde(default)]
    pub next_fire: Option<Timestamp>,
    /// A fire waiting for the earlier task to end (overlap buffer_one).
    #[serde(default)]
    pub buffered: Option<Timestamp>,
    /// The most recent fires, newest first: nominal time and task.
    #[serde(default)]
    pub recent: Vec<Fire>,
    /// Fires run, and fires skipped because of an overlap or too late.
    #[serde(default)]
    pub fires: u64,
    #[serde(default)]
    pub skipped_overlap: u64,
    #[serde(default)]
    pub skipped_late: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every change: an update says which revision it read.
    #[serde(default)]
    pub revision: u64,
}

impl ScheduleState {
    /// When the scheduler should look at the schedule next: its next fire,
    /// or within a second while a fire waits for an earlier task to end.
    pub fn next_look(&self) -> Option<Timestamp> {
        match self.buffered {
            Some(_) => {
                let soon = self.updated_at.saturating_add(Duration::from_secs(1));
                Some(self.next_fire.map_or(soon, |next| next.min(soon)))
            }
            None => self.next_fire,
        }
    }
}

/// One fire of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fire {
    pub nominal: Timestamp,
    pub task_id: crate::model::TaskId,
}

/// The recent fires a schedule keeps.
pub const RECENT_FIRES: usize = 10;

/// The idempotency key of a schedule's fire: the same on every node and
/// after every restart, so a fire is submitted once.
pub fn fire_key(name: &str, nominal: Timestamp) -> String {
    format!("schedule:{name}:{}", nominal.as_micros())
}

/// Checks a schedule's name.
pub fn check_name(name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name.chars().count() > 128 {
        return Err(refused("name", "1 to 128 characters"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')))
    {
        return Err(refused(
            "name",
            format!("{name:?} contains {bad:?}; use letters, digits, '_', '.', '-' and ':'"),
        ));
    }
    Ok(())
}

/// What one look at a due schedule decides, before any task exists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Nominal times to fire now, oldest first.
    pub fire: Vec<Timestamp>,
    /// Missed fires older than the catch-up window (or passed over by
    /// `latest_only`).
    pub too_late: u64,
    /// The next nominal fire after these.
    pub next_fire: Option<Timestamp>,
}

/// The most missed fires counted one by one; beyond, the count says "at
/// least".
const MOST_COUNTED: usize = 100_000;

/// The fires of `schedule` due at `now` per its catch-up policy, from its
/// `next_fire` on: those at most `catch_up.window` late, at most `most` of
/// them (the rest come at the next look); older ones are counted, not
/// listed.
pub fn due(schedule: &Schedule, times: &FireTimes, now: Timestamp, most: usize) -> Due {
    let Some(first) = schedule.state.next_fire else {
        return Due::default();
    };
    if first > now {
        return Due {
            next_fire: Some(first),
            ..Due::default()
        };
    }
    let oldest_on_time = now.saturating_sub(schedule.catch_up.window);
    let mut too_late = 0;
    let mut cursor = Timestamp(first.as_micros() - 1);
    if first < oldest_on_time {
        let (late, _) = times.between(cursor, Timestamp(oldest_on_time.as_micros() - 1), MOST_COUNTED);
        too_late = late.len() as u64;
        cursor = Timestamp(oldest_on_time.as_micros() - 1);
    }
    let (mut fire, more) = times.between(cursor, now, most.max(1));
    let next_fire = match fire.last() {
        Some(last) if more => Some(times.next_after(*last).unwrap_or(*last)),
        Some(last) => times.next_after(*last),
        None => times.next_after(now),
    };
    if schedule.catch_up.latest_only && fire.len() > 1 {
        too_late += (fire.len() - 1) as u64;
        fire.drain(..fire.len() - 1);
    }
    Due {
        fire,
        too_late,
        next_fire,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expression: &str, time_zone: &str) -> FireTimes {
        FireTimes::of(&ScheduleSpec {
            kind: SpecKind::Cron {
                expression: expression.into(),
                time_zone: time_zone.into(),
            },
            jitter: Duration::ZERO,
        })
        .expect("a valid spec")
    }

    /// An instant written as RFC 3339.
    fn at(text: &str) -> Timestamp {
        Timestamp(
            DateTime::parse_from_rfc3339(text)
                .expect("an RFC 3339 time")
                .timestamp_micros(),
        )
    }

    fn fires(times: &FireTimes, after: &str, count: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor = at(after);
        for _ in 0..count {
            let next = times.next_after(cursor).expect("a next fire");
            out.push(
                DateTime::<Utc>::from_timestamp_micros(next.as_micros())
                    .expect("in range")
                    .to_rfc3339(),
            );
            cursor = next;
        }
        out
    }

    #[test]
    fn a_daily_cron_fires_at_the_zones_wall_clock_time() {
        let nightly = cron("30 2 * * *", "Europe/Paris");
        // Winter: Paris is UTC+1.
        assert_eq!(
            fires(&nightly, "2026-01-10T12:00:00Z", 1),
            ["2026-01-11T01:30:00+00:00"]
        );
        // Summer: UTC+2.
        assert_eq!(
            fires(&nightly, "2026-07-10T12:00:00Z", 1),
            ["2026-07-11T00:30:00+00:00"]
        );
    }

    #[test]
    fn a_wall_clock_time_the_spring_gap_skips_fires_once_when_the_gap_ends() {
        // 2026-03-29: Paris goes from 02:00 to 03:00 (UTC 01:00).
        let nightly = cron("30 2 * * *", "Europe/Paris");
        assert_eq!(
            fires(&nightly, "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
        // 2026-03-08: New York goes from 02:00 to 03:00 (UTC 07:00); an
        // hourly schedule's 02:00 and 03:00 are one fire, at 03:00.
        let hourly = cron("0 * * * *", "America/New_York");
        assert_eq!(
            fires(&hourly, "2026-03-08T05:30:00Z", 3),
            [
                "2026-03-08T06:00:00+00:00",
                "2026-03-08T07:00:00+00:00",
                "2026-03-08T08:00:00+00:00"
            ]
        );
    }

    #[test]
    fn a_wall_clock_time_the_autumn_repeats_fires_once_at_its_first_occurrence() {
        // 2026-10-25: Paris goes from 03:00 back to 02:00 (UTC 01:00); 02:30
        // happens at 00:30 and at 01:30 UTC.
        let nightly = cron("30 2 * * *", "Europe/Paris");
        assert_eq!(
            fires(&nightly, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
        );
        // Asked from inside the repeated hour, it does not fire again.
        assert_eq!(
            fires(&nightly, "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T01:30:00+00:00"]
        );
        // 2026-11-01: New York repeats 01:00-02:00; an hourly schedule fires
        // at 01:00 once (05:00 UTC), then 02:00 EST (07:00 UTC).
        let hourly = cron("0 * * * *", "America/New_York");
        assert_eq!(
            fires(&hourly, "2026-11-01T04:30:00Z", 3),
            [
                "2026-11-01T05:00:00+00:00",
                "2026-11-01T07:00:00+00:00",
                "2026-11-01T08:00:00+00:00"
            ]
        );
    }

    #[test]
    fn an_interval_fires_on_its_phase_and_seconds_are_optional_in_cron() {
        let every = FireTimes::of(&ScheduleSpec {
            kind: SpecKind::Interval {
                every: Duration::from_secs(3600),
                offset: Duration::from_secs(15 * 60),
            },
            jitter: Duration::ZERO,
        })
        .expect("valid");
        assert_eq!(
            fires(&every, "2026-01-10T12:20:00Z", 2),
            ["2026-01-10T13:15:00+00:00", "2026-01-10T14:15:00+00:00"]
        );
        assert_eq!(
            fires(&cron("*/10 * * * * *", "UTC"), "2026-01-10T12:00:05Z", 2),
            ["2026-01-10T12:00:10+00:00", "2026-01-10T12:00:20+00:00"]
        );
    }

    #[test]
    fn fires_between_two_times_are_bounded() {
        let minutely = cron("* * * * *", "UTC");
        let (fires, more) = minutely.between(at("2026-01-10T12:00:00Z"), at("2026-01-10T12:10:00Z"), 100);
        assert_eq!(fires.len(), 10);
        assert!(!more);
        let (fires, more) = minutely.between(at("2026-01-10T12:00:00Z"), at("2026-01-10T13:00:00Z"), 5);
        assert_eq!((fires.len(), more), (5, true));
    }

    #[test]
    fn a_bad_spec_is_refused_naming_the_field() {
        let refusal = |kind: SpecKind| {
            FireTimes::of(&ScheduleSpec {
                kind,
                jitter: Duration::ZERO,
            })
            .expect_err("refused")
            .to_string()
        };
        let bad_cron = refusal(SpecKind::Cron {
            expression: "61 * * * *".into(),
            time_zone: "UTC".into(),
        });
        assert!(
            bad_cron.starts_with("spec.cron.expression: \"61 * * * *\""),
            "{bad_cron}"
        );
        let bad_zone = refusal(SpecKind::Cron {
            expression: "0 * * * *".into(),
            time_zone: "Mars/Olympus".into(),
        });
        assert!(
            bad_zone.starts_with("spec.cron.time_zone: \"Mars/Olympus\""),
            "{bad_zone}"
        );
        assert_eq!(
            refusal(SpecKind::Interval {
                every: Duration::from_millis(10),
                offset: Duration::ZERO
            }),
            "spec.interval.every: at least 1s"
        );
        assert_eq!(
            refusal(SpecKind::Interval {
                every: Duration::from_secs(60),
                offset: Duration::from_secs(60)
            }),
            "spec.interval.offset: must be shorter than the interval"
        );
    }

    fn schedule(times: &str, window: u64, latest_only: bool, next_fire: &str) -> Schedule {
        Schedule {
            name: "reindex".into(),
            spec: ScheduleSpec {
                kind: SpecKind::Cron {
                    expression: times.into(),
                    time_zone: "UTC".into(),
                },
                jitter: Duration::ZERO,
            },
            template: TaskTemplate {
                task_type: "diag.echo".into(),
                ..TaskTemplate::default()
            },
            overlap: Overlap::Skip,
            catch_up: CatchUp {
                window: Duration::from_secs(window),
                latest_only,
            },
            start_at: None,
            end_at: None,
            max_fires: None,
            paused: None,
            state: ScheduleState {
                next_fire: Some(at(next_fire)),
                ..ScheduleState::default()
            },
        }
    }

    #[test]
    fn missed_fires_within_the_window_run_each_older_ones_are_counted() {
        let minutely = cron("* * * * *", "UTC");
        // Down from 12:00 to 12:10 with a 3-minute window: 12:07 (just 3
        // minutes late) to 12:10 run; 12:00 to 12:06 are too late.
        let due = due(
            &schedule("* * * * *", 180, false, "2026-01-10T12:00:00Z"),
            &minutely,
            at("2026-01-10T12:10:00Z"),
            100,
        );
        assert_eq!(
            due.fire,
            vec![
                at("2026-01-10T12:07:00Z"),
                at("2026-01-10T12:08:00Z"),
                at("2026-01-10T12:09:00Z"),
                at("2026-01-10T12:10:00Z")
            ]
        );
        assert_eq!(due.too_late, 7, "12:00 to 12:06");
        assert_eq!(due.next_fire, Some(at("2026-01-10T12:11:00Z")));
    }

    #[test]
    fn latest_only_runs_the_newest_missed_fire() {
        let minutely = cron("* * * * *", "UTC");
        let due = due(
            &schedule("* * * * *", 600, true, "2026-01-10T12:00:00Z"),
            &minutely,
            at("2026-01-10T12:05:30Z"),
            100,
        );
        assert_eq!(due.fire, vec![at("2026-01-10T12:05:00Z")]);
        assert_eq!(due.too_late, 5);
        assert_eq!(due.next_fire, Some(at("2026-01-10T12:06:00Z")));
    }

    #[test]
    fn a_fire_not_yet_due_waits_and_a_long_catch_up_comes_in_steps() {
        let minutely = cron("* * * * *", "UTC");
        let early = due(
            &schedule("* * * * *", 60, false, "2026-01-10T12:00:00Z"),
            &minutely,
            at("2026-01-10T11:59:59Z"),
            100,
        );
        assert_eq!(
            early,
            Due {
                fire: vec![],
                too_late: 0,
                next_fire: Some(at("2026-01-10T12:00:00Z"))
            }
        );
        let steps = due(
            &schedule("* * * * *", 3600, false, "2026-01-10T12:00:00Z"),
            &minutely,
            at("2026-01-10T12:30:00Z"),
            10,
        );
        assert_eq!(steps.fire.len(), 10);
        assert_eq!(
            steps.next_fire,
            Some(at("2026-01-10T12:10:00Z")),
            "the next look goes on from there"
        );
    }

    #[test]
    fn jitter_is_the_same_for_the_same_fire_and_within_its_bound() {
        let nominal = at("2026-01-10T12:00:00Z");
        let bound = Duration::from_secs(30);
        let first = jitter_of("reindex", nominal, bound);
        assert_eq!(first, jitter_of("reindex", nominal, bound));
        assert!(first <= bound);
        let spread: std::collections::BTreeSet<Duration> = (0..50)
            .map(|index| jitter_of(&format!("schedule-{index}"), nominal, bound))
            .collect();
        assert!(spread.len() > 40, "schedules on one minute are spread");
        assert_eq!(jitter_of("reindex", nominal, Duration::ZERO), Duration::ZERO);
    }
}
