//! The stored form of a task: scalar columns for what queries filter and
//! order on, JSON text for the nested parts.

use std::time::Duration;

use crate::model::{Task, TaskId, TaskPriority, TaskStatus, Timestamp};
use crate::store::{StoreError, StoreResult};

/// The columns that make up a [`Task`], in the order [`TaskRow`] reads
/// them. Queries select and `RETURNING` clauses return exactly these.
pub const COLUMNS: &str = "id, name, task_type, priority, status, params, dependencies, max_retries, \
     retry_count, timeout_us, run_at, created_at, started_at, completed_at, progress, result, error, \
     labels, idempotency_key, attempts, retry_policy, status_reason, updated_at, revision";

/// Status codes of the terminal statuses, for SQL `IN` lists.
pub const TERMINAL_CODES: &str = "(4, 5, 6)";

/// A task as its columns hold it. Cheap to read out of a statement; turned
/// into a [`Task`] (JSON parsed) only when someone needs one.
#[derive(Clone, Debug)]
pub struct TaskRow {
    pub id: String,
    pub name: String,
    pub task_type: String,
    pub priority: i64,
    pub status: i64,
    pub params: String,
    pub dependencies: String,
    pub max_retries: i64,
    pub retry_count: i64,
    pub timeout_us: i64,
    pub run_at: Option<i64>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub progress: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub labels: String,
    pub idempotency_key: Option<String>,
    pub attempts: String,
    pub retry_policy: String,
    pub status_reason: String,
    pub updated_at: i64,
    pub revision: i64,
}

pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Serializing plain data (maps, strings, numbers) cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("column {column}: {error}")))
}

pub fn parse_id(column: &str, text: &str) -> StoreResult<TaskId> {
    text.parse::<TaskId>()
        .map_err(|error| StoreError::Corrupt(format!("column {column}: {error}")))
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
            max_retries: row.get(first + 7)?,
            retry_count: row.get(first + 8)?,
            timeout_us: row.get(first + 9)?,
            run_at: row.get(first + 10)?,
            created_at: row.get(first + 11)?,
            started_at: row.get(first + 12)?,
            completed_at: row.get(first + 13)?,
            progress: row.get(first + 14)?,
            result: row.get(first + 15)?,
            error: row.get(first + 16)?,
            labels: row.get(first + 17)?,
            idempotency_key: row.get(first + 18)?,
            attempts: row.get(first + 19)?,
            retry_policy: row.get(first + 20)?,
            status_reason: row.get(first + 21)?,
            updated_at: row.get(first + 22)?,
            revision: row.get(first + 23)?,
        })
    }

    pub fn into_task(self) -> StoreResult<Task> {
        Ok(Task {
            id: parse_id("id", &self.id)?,
            name: self.name,
            task_type: self.task_type,
            priority: parse_priority(self.priority)?,
            status: parse_status(self.status)?,
            params: from_json("params", &self.params)?,
            dependencies: from_json("dependencies", &self.dependencies)?,
            max_retries: u32::try_from(self.max_retries).unwrap_or(0),
            retry_count: u32::try_from(self.retry_count).unwrap_or(0),
            timeout: Duration::from_micros(u64::try_from(self.timeout_us).unwrap_or(0)),
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
            retry_policy: from_json("retry_policy", &self.retry_policy)?,
            status_reason: self.status_reason,
            updated_at: Timestamp(self.updated_at),
            revision: u64::try_from(self.revision).unwrap_or(0),
        })
    }
}

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
