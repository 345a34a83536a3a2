//! The stored form of a task: scalar columns for what queries filter and
//! order on, JSON text for the nested parts.

use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use uuid::Uuid;

use crate::model::{RetryPolicy, Task, TaskId, TaskPriority, TaskStatus, Timestamp};
use crate::store::{StoreError, StoreResult};

/// Ids are stored as the UUID's 16 bytes.
impl ToSql for TaskId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for TaskId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Uuid::column_result(value).map(TaskId)
    }
}

/// The columns that make up a [`Task`], in the order [`TaskRow`] reads
/// them. Queries select exactly these. (Changes are read back with a
/// separate select rather than `RETURNING`, which costs SQLite more than
/// the select does.)
pub const COLUMNS: &str = "id, name, task_type, priority, status, params, dependencies, labels, idempotency_key, \
     max_retries, retry_count, timeout_us, backoff_initial_us, backoff_multiplier, backoff_max_us, \
     backoff_jitter, run_at, created_at, started_at, completed_at, updated_at, progress, result, error, \
     status_reason, attempts, revision";

/// Status codes of the terminal statuses, for SQL `IN` lists.
pub const TERMINAL_CODES: &str = "(4, 5, 6)";

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

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
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

/// A retry policy from its four columns, starting at column `first`.
pub fn read_retry_policy(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<RetryPolicy> {
    Ok(RetryPolicy {
        initial_backoff: duration(row.get(first)?),
        multiplier: row.get(first + 1)?,
        max_backoff: duration(row.get(first + 2)?),
        jitter: row.get(first + 3)?,
    })
}

impl TaskRow {
    /// Reads the [`COLUMNS`] of a result row, starting at column `first`.
    pub fn read(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(TaskRow {
            id: row.get(first)?,
            name: row.get(first + 1)?,
            task_type: row.get(first + 2)?,
            priority: row.get(first + 3)?,
            status: row.get(first + 4)?,
            params: row.get(first + 5)?,
            dependencies: row.get(first + 6)?,
            labels: row.get(first + 7)?,
            idempotency_key: row.get(first + 8)?,
            max_retries: row.get(first + 9)?,
            retry_count: row.get(first + 10)?,
            timeout_us: row.get(first + 11)?,
            retry_policy: read_retry_policy(row, first + 12)?,
            run_at: row.get(first + 16)?,
            created_at: row.get(first + 17)?,
            started_at: row.get(first + 18)?,
            completed_at: row.get(first + 19)?,
            updated_at: row.get(first + 20)?,
            progress: row.get(first + 21)?,
            result: row.get(first + 22)?,
            error: row.get(first + 23)?,
            status_reason: row.get(first + 24)?,
            attempts: row.get(first + 25)?,
            revision: row.get(first + 26)?,
        })
    }

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

/// The row of task `id`, if there is one.
pub fn read_row(connection: &rusqlite::Connection, id: TaskId) -> StoreResult<Option<TaskRow>> {
    Ok(query_rows(connection, READ_ONE.as_str(), rusqlite::params![id])?.pop())
}

static READ_ONE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1"));

/// Runs a query returning [`COLUMNS`] and reads every row.
pub fn query_rows(
    connection: &rusqlite::Connection,
    sql: &str,
    values: impl rusqlite::Params,
) -> StoreResult<Vec<TaskRow>> {
    let mut statement = connection.prepare_cached(sql)?;
    let rows = statement.query_map(values, |row| TaskRow::read(row, 0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Runs a query returning [`COLUMNS`] and turns every row into a task.
pub fn query_tasks(
    connection: &rusqlite::Connection,
    sql: &str,
    values: impl rusqlite::Params,
) -> StoreResult<Vec<Task>> {
    query_rows(connection, sql, values)?
        .into_iter()
        .map(TaskRow::into_task)
        .collect()
}
