//! The stored form of a task: scalar columns for what queries filter and
//! order on, JSON text for the nested parts.

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use uuid::Uuid;

use crate::model::{RetryPolicy, Task, TaskId};
use crate::store::StoreResult;

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

pub use crate::store::columns::{TaskRow, duration, micros, parse_priority, parse_status, to_json};

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
