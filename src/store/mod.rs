//! Durable task state. The engine talks to a [`Store`]; SQLite is the
//! embedded default and a PostgreSQL backend implements the same trait.
//!
//! Writes are queued in order and acknowledged once durable, so that many
//! concurrent submits share one commit (group commit) and the engine never
//! waits on storage for state changes it does not need to acknowledge.

pub mod conformance;
mod row;
pub mod sqlite;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::engine::model::{Task, TaskFilter, TaskId, TaskStatus, Timestamp};

pub use sqlite::{SqliteStore, SqliteStoreConfig, Synchronous};

/// A storage failure. The engine reports it as unavailable: the request may be
/// retried, and nothing was half-written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is closed")]
    Closed,
    #[error("task {0} already exists")]
    Duplicate(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One change to persist.
#[derive(Clone, Debug)]
pub enum WriteOp {
    /// A new task.
    Insert(Arc<Task>),
    /// The new state of an existing task (every mutable column).
    Update(Arc<Task>),
}

/// Resolves once a queued write is durable (or failed as a whole).
pub struct WriteTicket {
    sequence: u64,
    receiver: oneshot::Receiver<StoreResult<()>>,
}

impl WriteTicket {
    pub fn new(sequence: u64, receiver: oneshot::Receiver<StoreResult<()>>) -> Self {
        WriteTicket { sequence, receiver }
    }

    /// Position of this write in the store's write order.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

impl Future for WriteTicket {
    type Output = StoreResult<()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(StoreError::Closed)))
    }
}

/// A page request for [`Store::list`]: tasks matching `filter`, newest
/// first, strictly older than `before_id` when set.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub filter: TaskFilter,
    pub before_id: Option<TaskId>,
    pub limit: usize,
}

/// Number of stored tasks of one type in one status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCount {
    pub task_type: String,
    pub status: TaskStatus,
    pub count: u64,
}

/// Durable task state, shared by every backend. The conformance suite in
/// [`conformance`] is the executable definition of this contract.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Queues writes, to be applied after every write queued before them. The
    /// ops of one call are atomic: all are applied or none. The ticket
    /// resolves when they are durable.
    fn write(&self, ops: Vec<WriteOp>) -> WriteTicket;

    /// Sequence number of the latest write known to be durable; every write
    /// with a sequence at or below it is durable.
    fn durable_sequence(&self) -> u64;

    /// Resolves once every write queued before this call is durable.
    async fn flush(&self) -> StoreResult<()> {
        self.write(Vec::new()).await
    }

    async fn get(&self, id: TaskId) -> StoreResult<Option<Task>>;

    async fn find_by_idempotency_key(&self, key: &str) -> StoreResult<Option<Task>>;

    /// The statuses of the given tasks; unknown ids are absent from the map.
    async fn statuses(&self, ids: &[TaskId]) -> StoreResult<HashMap<TaskId, TaskStatus>>;

    async fn list(&self, query: &ListQuery) -> StoreResult<Vec<Task>>;

    /// Every task not in a terminal status, for recovery at start.
    async fn load_unfinished(&self) -> StoreResult<Vec<Task>>;

    async fn count_by_type_and_status(&self) -> StoreResult<Vec<StatusCount>>;

    /// Deletes terminal tasks that finished before `before`; returns what was
    /// deleted, by type and status.
    async fn purge_finished_before(&self, before: Timestamp) -> StoreResult<Vec<StatusCount>>;

    /// Backend housekeeping (statistics, compaction); returns what it did.
    async fn optimize(&self) -> StoreResult<String>;
}
