//! Tasks in and out of PostgreSQL rows: the shared [`TaskRow`] from a
//! result row, ids as the native `uuid` type.

use bytes::BytesMut;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use crate::model::{RetryPolicy, TaskId};
use crate::store::columns::{TaskRow, duration};

impl ToSql for TaskId {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <Uuid as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for TaskId {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Uuid::from_sql(ty, raw).map(TaskId)
    }

    fn accepts(ty: &Type) -> bool {
        <Uuid as FromSql>::accepts(ty)
    }
}

/// The columns of a [`TaskRow`], in the order [`read`] reads them.
pub const COLUMNS: &str = "id, name, task_type, priority, status, params, dependencies, labels::text, \
     idempotency_key, max_retries, retry_count, timeout_us, backoff_initial_us, backoff_multiplier, \
     backoff_max_us, backoff_jitter, run_at, created_at, started_at, completed_at, updated_at, progress, result, \
     error, status_reason, attempts::text, revision";

/// [`COLUMNS`] of the table aliased `task` (in statements that join or
/// update `FROM` another relation).
pub const COLUMNS_OF_TASK: &str = "task.id, task.name, task.task_type, task.priority, task.status, task.params, \
     task.dependencies, task.labels::text, task.idempotency_key, task.max_retries, task.retry_count, \
     task.timeout_us, task.backoff_initial_us, task.backoff_multiplier, task.backoff_max_us, task.backoff_jitter, \
     task.run_at, task.created_at, task.started_at, task.completed_at, task.updated_at, task.progress, \
     task.result, task.error, task.status_reason, task.attempts::text, task.revision";

/// Reads `COLUMNS` from `row`, starting at column `first`.
pub fn read(row: &Row, first: usize) -> Result<TaskRow, tokio_postgres::Error> {
    Ok(TaskRow {
        id: row.try_get(first)?,
        name: row.try_get(first + 1)?,
        task_type: row.try_get(first + 2)?,
        priority: row.try_get(first + 3)?,
        status: row.try_get(first + 4)?,
        params: row.try_get(first + 5)?,
        dependencies: row.try_get(first + 6)?,
        labels: row.try_get(first + 7)?,
        idempotency_key: row.try_get(first + 8)?,
        max_retries: row.try_get(first + 9)?,
        retry_count: row.try_get(first + 10)?,
        timeout_us: row.try_get(first + 11)?,
        retry_policy: RetryPolicy {
            initial_backoff: duration(row.try_get(first + 12)?),
            multiplier: row.try_get(first + 13)?,
            max_backoff: duration(row.try_get(first + 14)?),
            jitter: row.try_get(first + 15)?,
        },
        run_at: row.try_get(first + 16)?,
        created_at: row.try_get(first + 17)?,
        started_at: row.try_get(first + 18)?,
        completed_at: row.try_get(first + 19)?,
        updated_at: row.try_get(first + 20)?,
        progress: row.try_get(first + 21)?,
        result: row.try_get(first + 22)?,
        error: row.try_get(first + 23)?,
        status_reason: row.try_get(first + 24)?,
        attempts: row.try_get(first + 25)?,
        revision: row.try_get(first + 26)?,
    })
}
