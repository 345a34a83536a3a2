//! The stored form of a task: scalar columns for what queries filter on, JSON
//! text for the nested parts. Shared by the SQL backends.

use std::time::Duration;

use crate::engine::model::{Task, TaskId, TaskPriority, TaskStatus, Timestamp};
use crate::store::{StoreError, StoreResult};

/// The column list, in the order `TaskRow` binds and reads them.
pub const COLUMNS: &str = "id, name, task_type, priority, status, params, dependencies, max_retries, \
     retry_count, timeout_us, run_at, created_at, started_at, completed_at, progress, result, error, \
     labels, idempotency_key, attempts, retry_policy, status_reason, updated_at";

/// A task flattened into column values.
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
}

/// The columns a task's life changes, for updates: the fixed ones (params,
/// labels, dependencies) are not serialized again.
pub struct MutableColumns {
    pub id: String,
    pub status: i64,
    pub retry_count: i64,
    pub run_at: Option<i64>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub progress: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: String,
    pub status_reason: String,
    pub updated_at: i64,
}

impl MutableColumns {
    pub fn from_task(task: &Task) -> Self {
        MutableColumns {
            id: task.id.to_string(),
            status: task.status.code(),
            retry_count: i64::from(task.retry_count),
            run_at: task.run_at.map(Timestamp::as_micros),
            started_at: task.started_at.map(Timestamp::as_micros),
            completed_at: task.completed_at.map(Timestamp::as_micros),
            progress: task.progress.as_ref().map(to_json),
            result: task.result.as_ref().map(to_json),
            error: task.error.clone(),
            attempts: to_json(&task.attempts),
            status_reason: task.status_reason.clone(),
            updated_at: task.updated_at.as_micros(),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serializing plain data (maps, strings, numbers) cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("column {column}: {error}")))
}

impl TaskRow {
    pub fn from_task(task: &Task) -> Self {
        TaskRow {
            id: task.id.to_string(),
            name: task.name.clone(),
            task_type: task.task_type.clone(),
            priority: task.priority.code(),
            status: task.status.code(),
            params: to_json(&task.params),
            dependencies: to_json(&task.dependencies),
            max_retries: i64::from(task.max_retries),
            retry_count: i64::from(task.retry_count),
            timeout_us: task.timeout.as_micros() as i64,
            run_at: task.run_at.map(Timestamp::as_micros),
            created_at: task.created_at.as_micros(),
            started_at: task.started_at.map(Timestamp::as_micros),
            completed_at: task.completed_at.map(Timestamp::as_micros),
            progress: task.progress.as_ref().map(to_json),
            result: task.result.as_ref().map(to_json),
            error: task.error.clone(),
            labels: to_json(&task.labels),
            idempotency_key: task.idempotency_key.clone(),
            attempts: to_json(&task.attempts),
            retry_policy: to_json(&task.retry_policy),
            status_reason: task.status_reason.clone(),
            updated_at: task.updated_at.as_micros(),
        }
    }

    pub fn into_task(self) -> StoreResult<Task> {
        let id = self
            .id
            .parse::<TaskId>()
            .map_err(|error| StoreError::Corrupt(format!("column id: {error}")))?;
        Ok(Task {
            id,
            name: self.name,
            task_type: self.task_type,
            priority: TaskPriority::from_code(self.priority)
                .ok_or_else(|| StoreError::Corrupt(format!("column priority: {}", self.priority)))?,
            status: TaskStatus::from_code(self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("column status: {}", self.status)))?,
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
        })
    }
}
