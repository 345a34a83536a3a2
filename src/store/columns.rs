//! The stored form of a task, the same in every backend: scalar columns
//! for what queries filter and order on, JSON text for the nested parts.

use std::time::Duration;

use crate::model::{RetryPolicy, Task, TaskId, TaskPriority, TaskStatus, Timestamp};
use crate::store::{StoreError, StoreResult};

/// A task as its columns hold it. Cheap to read out of a statement; turned
/// into a [`Task`] (JSON parsed) only when someone needs one.
#[derive(Clone, Debug)]
pub struct TaskRow {
    pub id: TaskId,
    pub name: String,
    pub task_type: String,
    pub priority: i64,
    pub status: i64,
    pub params: String,
    pub dependencies: String,
    pub labels: String,
    pub idempotency_key: Option<String>,
    pub max_retries: i64,
    pub retry_count: i64,
    pub timeout_us: i64,
    pub retry_policy: RetryPolicy,
    pub run_at: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub updated_at: i64,
    pub progress: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub status_reason: String,
    pub attempts: String,
    pub revision: i64,
}

pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Serializing plain data (maps, strings, numbers) cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

pub fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("column {column}: {error}")))
}

pub fn parse_status(code: i64) -> StoreResult<TaskStatus> {
    TaskStatus::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("column status: {code}")))
}

pub fn parse_priority(code: i64) -> StoreResult<TaskPriority> {
    TaskPriority::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("column priority: {code}")))
}

pub fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

pub fn duration(micros: i64) -> Duration {
    Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

impl TaskRow {
    pub fn into_task(self) -> StoreResult<Task> {
        Ok(Task {
            id: self.id,
            name: self.name,
            task_type: self.task_type,
            priority: parse_priority(self.priority)?,
            status: parse_status(self.status)?,
            params: from_json("params", &self.params)?,
            dependencies: from_json("dependencies", &self.dependencies)?,
            max_retries: u32::try_from(self.max_retries).unwrap_or(0),
            retry_count: u32::try_from(self.retry_count).unwrap_or(0),
            timeout: duration(self.timeout_us),
            run_at: self.run_at.map(Timestamp),
            created_at: Timestamp(self.created_at),
            started_at: self.started_at.map(Timestamp),
            completed_at: self.completed_at.map(Timestamp),
            progress: self
                .progress
                .as_deref()
                .map(|text| from_json("progress", text))
                .transpose()?,
            result: self
                .result
                .as_deref()
                .map(|text| from_json("result", text))
                .transpose()?,
            error: self.error,
            labels: from_json("labels", &self.labels)?,
            idempotency_key: self.idempotency_key,
            attempts: from_json("attempts", &self.attempts)?,
            retry_policy: self.retry_policy,
            status_reason: self.status_reason,
            updated_at: Timestamp(self.updated_at),
            revision: u64::try_from(self.revision).unwrap_or(0),
        })
    }
}

/// Status codes as statements spell them: every SQL text names a status
/// through these (joined in at compile time with `const_format`), never by
/// a bare number. They stay literals rather than parameters because SQLite
/// uses a partial index only when a statement's text implies its predicate.
pub mod status_code {
    use crate::model::TaskStatus;

    pub const PENDING: i64 = TaskStatus::Pending.code();
    pub const SCHEDULED: i64 = TaskStatus::Scheduled.code();
    pub const RUNNING: i64 = TaskStatus::Running.code();
    pub const COMPLETED: i64 = TaskStatus::Completed.code();
    pub const FAILED: i64 = TaskStatus::Failed.code();
    pub const CANCELLED: i64 = TaskStatus::Cancelled.code();
    pub const WAITING: i64 = TaskStatus::Waiting.code();
    /// The ended statuses, as an SQL list.
    pub const TERMINAL: &str = const_format::concatcp!("(", COMPLETED, ", ", FAILED, ", ", CANCELLED, ")");
}

#[cfg(test)]
mod tests {
    use super::status_code;
    use crate::model::TaskStatus;

    /// Every statement of the transitions and drivers, as source text.
    const STATEMENT_SOURCES: [(&str, &str); 4] = [
        ("sqlite/driver.rs", include_str!("sqlite/driver.rs")),
        ("sqlite/reads.rs", include_str!("sqlite/reads.rs")),
        ("postgres/driver.rs", include_str!("postgres/driver.rs")),
        ("postgres/reads.rs", include_str!("postgres/reads.rs")),
    ];

    #[test]
    fn status_codes_for_sql_are_the_task_statuses_codes() {
        let spelled = [
            (TaskStatus::Pending, status_code::PENDING),
            (TaskStatus::Scheduled, status_code::SCHEDULED),
            (TaskStatus::Running, status_code::RUNNING),
            (TaskStatus::Completed, status_code::COMPLETED),
            (TaskStatus::Failed, status_code::FAILED),
            (TaskStatus::Cancelled, status_code::CANCELLED),
            (TaskStatus::Waiting, status_code::WAITING),
        ];
        assert_eq!(spelled.len(), TaskStatus::ALL.len(), "every status has a code for SQL");
        for (status, code) in spelled {
            assert_eq!(code, status.code(), "{status}");
            assert_eq!(TaskStatus::from_code(code), Some(status));
        }
        let terminal: Vec<String> = TaskStatus::ALL
            .into_iter()
            .filter(|status| status.is_terminal())
            .map(|status| status.code().to_string())
            .collect();
        assert_eq!(status_code::TERMINAL, format!("({})", terminal.join(", ")));
    }

    /// A bare number after `status` in a statement is a status code nobody
    /// checks against `TaskStatus`; statements name them through
    /// [`status_code`]. (Migrations are history and keep theirs; the
    /// SQLite driver's tests check that its statements still meet them.)
    #[test]
    fn no_statement_names_a_status_by_a_bare_number() {
        for (file, source) in STATEMENT_SOURCES {
            let flat: String = source.split_whitespace().collect::<Vec<_>>().join(" ");
            for operator in [
                "status = ",
                "status != ",
                "status <> ",
                "status IN (",
                "status < ",
                "status > ",
            ] {
                for (at, _) in flat.match_indices(operator) {
                    let after = &flat[at + operator.len()..];
                    assert!(
                        !after.starts_with(|c: char| c.is_ascii_digit()),
                        "{file}: a bare status number in `{}`",
                        &flat[at..(at + operator.len() + 8).min(flat.len())]
                    );
                }
            }
        }
    }
}
