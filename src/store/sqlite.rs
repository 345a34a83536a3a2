//! The embedded default store: one SQLite file in WAL mode.
//!
//! One writer thread owns the write connection. It takes every queued write
//! that arrived while the previous commit was syncing and applies them in one
//! transaction (group commit), so a thousand concurrent submits cost one
//! fsync, not a thousand. Reads use a small pool of separate connections,
//! which WAL lets run alongside the writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::engine::model::{Task, TaskId, TaskStatus, Timestamp};
use crate::store::row::{COLUMNS, MutableColumns, TaskRow};
use crate::store::{ListQuery, StatusCount, Store, StoreError, StoreResult, WriteOp, WriteTicket};

/// How hard a commit pushes data to disk (SQLite's `synchronous` in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// fsync the WAL on every commit: an acknowledged submit survives a power
    /// loss. The default.
    #[default]
    Full,
    /// No fsync per commit: an acknowledged submit survives a crash of taskd
    /// but the last commits before a power loss or kernel crash may be lost.
    Normal,
}

/// Settings of the SQLite store.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteStoreConfig {
    /// Durability of each commit; see [`Synchronous`].
    pub synchronous: Synchronous,
    /// Most queued writes applied in one transaction.
    pub max_writes_per_commit: usize,
    /// Read connections kept open.
    pub read_connections: usize,
}

impl Default for SqliteStoreConfig {
    fn default() -> Self {
        SqliteStoreConfig {
            synchronous: Synchronous::Full,
            max_writes_per_commit: 4096,
            read_connections: 4,
        }
    }
}

/// Versioned schema; entry `n` moves a database from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: tasks.
    "CREATE TABLE tasks (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        task_type TEXT NOT NULL,
        priority INTEGER NOT NULL,
        status INTEGER NOT NULL,
        params TEXT NOT NULL,
        dependencies TEXT NOT NULL,
        max_retries INTEGER NOT NULL,
        retry_count INTEGER NOT NULL,
        timeout_us INTEGER NOT NULL,
        run_at INTEGER,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        progress TEXT,
        result TEXT,
        error TEXT,
        labels TEXT NOT NULL,
        idempotency_key TEXT,
        attempts TEXT NOT NULL,
        retry_policy TEXT NOT NULL,
        status_reason TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX tasks_by_idempotency_key ON tasks (idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX tasks_by_status ON tasks (status, id);
    CREATE INDEX tasks_by_type ON tasks (task_type, id);
    CREATE INDEX tasks_finished ON tasks (completed_at) WHERE completed_at IS NOT NULL;",
];

struct WriteRequest {
    /// New tasks, already flattened into rows by the caller's thread: the
    /// writer thread is the serial section, so it only binds and steps.
    inserts: Vec<TaskRow>,
    updates: Vec<Arc<Task>>,
    sequence: u64,
    reply: oneshot::Sender<StoreResult<()>>,
}

impl WriteRequest {
    fn len(&self) -> usize {
        self.inserts.len() + self.updates.len()
    }
}

struct WriteQueue {
    next_sequence: u64,
    sender: Option<mpsc::Sender<WriteRequest>>,
}

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    queue: Mutex<WriteQueue>,
    durable_sequence: Arc<AtomicU64>,
    readers: Arc<Mutex<Vec<Connection>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    config: SqliteStoreConfig,
}

fn db_error(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn open_connection(path: &Path, config: &SqliteStoreConfig) -> StoreResult<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_error)?;
    let synchronous = match config.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA busy_timeout = 5000;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -16384;"
        ))
        .map_err(db_error)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> StoreResult<()> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(db_error)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Database(format!(
            "database schema version {version} is newer than this taskd knows ({known}); upgrade taskd"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let transaction = connection.transaction().map_err(db_error)?;
        transaction.execute_batch(migration).map_err(db_error)?;
        transaction
            .execute_batch(&format!("PRAGMA user_version = {}", index + 1))
            .map_err(db_error)?;
        transaction.commit().map_err(db_error)?;
        tracing::info!(version = index + 1, "applied schema migration");
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates its schema
    /// and starts the writer thread.
    pub fn open(path: impl Into<PathBuf>, config: SqliteStoreConfig) -> StoreResult<Self> {
        let path = path.into();
        let mut write_connection = open_connection(&path, &config)?;
        migrate(&mut write_connection)?;

        let (sender, receiver) = mpsc::channel();
        let durable_sequence = Arc::new(AtomicU64::new(0));
        let writer_durable = durable_sequence.clone();
        let max_batch = config.max_writes_per_commit.max(1);
        let writer = std::thread::Builder::new()
            .name("taskd-sqlite-writer".into())
            .spawn(move || run_writer(write_connection, receiver, writer_durable, max_batch))
            .map_err(|error| StoreError::Database(format!("cannot start writer thread: {error}")))?;

        Ok(SqliteStore {
            path,
            queue: Mutex::new(WriteQueue {
                next_sequence: 1,
                sender: Some(sender),
            }),
            durable_sequence,
            readers: Arc::new(Mutex::new(Vec::new())),
            writer: Mutex::new(Some(writer)),
            config,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting writes, waits for queued ones to commit and stops the
    /// writer thread.
    pub fn close(&self) {
        self.queue.lock().sender = None;
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }

    /// Runs `read` on a pooled read connection off the async runtime.
    async fn read<T, F>(&self, read: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => open_connection(&path, &config)?,
            };
            let result = read(&connection);
            let mut pool = readers.lock();
            if pool.len() < config.read_connections {
                pool.push(connection);
            }
            result
        })
        .await
        .map_err(|error| StoreError::Database(format!("read task failed: {error}")))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

fn run_writer(
    mut connection: Connection,
    receiver: mpsc::Receiver<WriteRequest>,
    durable_sequence: Arc<AtomicU64>,
    max_batch: usize,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        let mut op_count = batch[0].len();
        while op_count < max_batch {
            match receiver.try_recv() {
                Ok(request) => {
                    op_count += request.len();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        let last_sequence = batch.last().map(|request| request.sequence).unwrap_or(0);
        let results = apply_batch(&mut connection, &batch);
        durable_sequence.store(last_sequence, Ordering::Release);
        for (request, result) in batch.into_iter().zip(results) {
            let _ = request.reply.send(result);
        }
    }
    // Leave a compact WAL behind for the next start.
    let _ = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
}

/// Applies a batch of write requests in one transaction. Inserts of each
/// request run inside their own savepoint, so a rejected request (say, a
/// duplicate key) fails alone. Updates are coalesced per task, last one wins:
/// each carries the task's whole mutable state.
fn apply_batch(connection: &mut Connection, batch: &[WriteRequest]) -> Vec<StoreResult<()>> {
    let has_ops = batch.iter().any(|request| request.len() > 0);
    if !has_ops {
        return batch.iter().map(|_| Ok(())).collect();
    }
    let mut results: Vec<StoreResult<()>> = Vec::with_capacity(batch.len());
    let outcome = (|| -> rusqlite::Result<()> {
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(&format!(
                "INSERT INTO tasks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                 ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
            ))?;
            let mut latest_updates: HashMap<TaskId, &Arc<Task>> = HashMap::new();
            let mut update_order: Vec<TaskId> = Vec::new();
            for request in batch {
                let inserts = &request.inserts;
                let mut result = Ok(());
                // A single failing statement is undone by SQLite on its own;
                // only multi-row requests need a savepoint for all-or-none.
                let needs_savepoint = inserts.len() > 1;
                if needs_savepoint {
                    transaction.prepare_cached("SAVEPOINT request")?.execute([])?;
                }
                if !inserts.is_empty() {
                    for row in inserts {
                        if let Err(error) = insert.execute(params![
                            row.id,
                            row.name,
                            row.task_type,
                            row.priority,
                            row.status,
                            row.params,
                            row.dependencies,
                            row.max_retries,
                            row.retry_count,
                            row.timeout_us,
                            row.run_at,
                            row.created_at,
                            row.started_at,
                            row.completed_at,
                            row.progress,
                            row.result,
                            row.error,
                            row.labels,
                            row.idempotency_key,
                            row.attempts,
                            row.retry_policy,
                            row.status_reason,
                            row.updated_at,
                        ]) {
                            result = Err(match error.sqlite_error_code() {
                                Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Duplicate(row.id.clone()),
                                _ => db_error(error),
                            });
                            break;
                        }
                    }
                }
                if needs_savepoint {
                    if result.is_err() {
                        transaction.prepare_cached("ROLLBACK TO request")?.execute([])?;
                    }
                    transaction.prepare_cached("RELEASE request")?.execute([])?;
                }
                if result.is_ok() {
                    for task in &request.updates {
                        if latest_updates.insert(task.id, task).is_none() {
                            update_order.push(task.id);
                        }
                    }
                }
                results.push(result);
            }
            let mut update = transaction.prepare_cached(
                "UPDATE tasks SET status = ?2, retry_count = ?3, run_at = ?4, started_at = ?5, \
                 completed_at = ?6, progress = ?7, result = ?8, error = ?9, attempts = ?10, \
                 status_reason = ?11, updated_at = ?12 WHERE id = ?1",
            )?;
            for id in update_order {
                let row = MutableColumns::from_task(latest_updates[&id]);
                update.execute(params![
                    row.id,
                    row.status,
                    row.retry_count,
                    row.run_at,
                    row.started_at,
                    row.completed_at,
                    row.progress,
                    row.result,
                    row.error,
                    row.attempts,
                    row.status_reason,
                    row.updated_at,
                ])?;
            }
        }
        transaction.commit()
    })();
    match outcome {
        Ok(()) => results,
        Err(error) => {
            tracing::error!(%error, "commit failed; the batch's writes are lost and reported as failed");
            let error = db_error(error);
            batch.iter().map(|_| Err(error.clone())).collect()
        }
    }
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: row.get(0)?,
        name: row.get(1)?,
        task_type: row.get(2)?,
        priority: row.get(3)?,
        status: row.get(4)?,
        params: row.get(5)?,
        dependencies: row.get(6)?,
        max_retries: row.get(7)?,
        retry_count: row.get(8)?,
        timeout_us: row.get(9)?,
        run_at: row.get(10)?,
        created_at: row.get(11)?,
        started_at: row.get(12)?,
        completed_at: row.get(13)?,
        progress: row.get(14)?,
        result: row.get(15)?,
        error: row.get(16)?,
        labels: row.get(17)?,
        idempotency_key: row.get(18)?,
        attempts: row.get(19)?,
        retry_policy: row.get(20)?,
        status_reason: row.get(21)?,
        updated_at: row.get(22)?,
    })
}

fn query_tasks(connection: &Connection, sql: &str, values: impl rusqlite::Params) -> StoreResult<Vec<Task>> {
    let mut statement = connection.prepare_cached(sql).map_err(db_error)?;
    let rows = statement.query_map(values, read_row).map_err(db_error)?;
    rows.map(|row| row.map_err(db_error).and_then(TaskRow::into_task))
        .collect()
}

fn count_rows(rows: Vec<(String, i64, i64)>) -> StoreResult<Vec<StatusCount>> {
    rows.into_iter()
        .map(|(task_type, status, count)| {
            Ok(StatusCount {
                task_type,
                status: TaskStatus::from_code(status)
                    .ok_or_else(|| StoreError::Corrupt(format!("column status: {status}")))?,
                count: count as u64,
            })
        })
        .collect()
}

const TERMINAL_CODES: &str = "(4, 5, 6)";

#[async_trait]
impl Store for SqliteStore {
    fn write(&self, ops: Vec<WriteOp>) -> WriteTicket {
        let (reply, receiver) = oneshot::channel();
        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        for op in ops {
            match op {
                WriteOp::Insert(task) => inserts.push(TaskRow::from_task(&task)),
                WriteOp::Update(task) => updates.push(task),
            }
        }
        let mut queue = self.queue.lock();
        let sequence = queue.next_sequence;
        queue.next_sequence += 1;
        let request = WriteRequest {
            inserts,
            updates,
            sequence,
            reply,
        };
        if let Some(sender) = &queue.sender
            && let Err(mpsc::SendError(request)) = sender.send(request)
        {
            let _ = request.reply.send(Err(StoreError::Closed));
        }
        // With no sender the request (and its reply) is dropped: the ticket
        // resolves to `Closed`.
        WriteTicket::new(sequence, receiver)
    }

    fn durable_sequence(&self) -> u64 {
        self.durable_sequence.load(Ordering::Acquire)
    }

    async fn get(&self, id: TaskId) -> StoreResult<Option<Task>> {
        self.read(move |connection| {
            let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1");
            Ok(query_tasks(connection, &sql, params![id.to_string()])?.pop())
        })
        .await
    }

    async fn find_by_idempotency_key(&self, key: &str) -> StoreResult<Option<Task>> {
        let key = key.to_string();
        self.read(move |connection| {
            let sql = format!("SELECT {COLUMNS} FROM tasks WHERE idempotency_key = ?1");
            Ok(query_tasks(connection, &sql, params![key])?.pop())
        })
        .await
    }

    async fn statuses(&self, ids: &[TaskId]) -> StoreResult<HashMap<TaskId, TaskStatus>> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.read(move |connection| {
            let mut statuses = HashMap::new();
            let mut statement = connection
                .prepare_cached("SELECT status FROM tasks WHERE id = ?1")
                .map_err(db_error)?;
            for id in ids {
                let status: Option<i64> = statement
                    .query_row(params![id], |row| row.get(0))
                    .optional()
                    .map_err(db_error)?;
                if let Some(code) = status {
                    let task_id = id
                        .parse::<TaskId>()
                        .map_err(|error| StoreError::Corrupt(error.to_string()))?;
                    let status = TaskStatus::from_code(code)
                        .ok_or_else(|| StoreError::Corrupt(format!("column status: {code}")))?;
                    statuses.insert(task_id, status);
                }
            }
            Ok(statuses)
        })
        .await
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Vec<Task>> {
        let query = query.clone();
        self.read(move |connection| {
            let mut conditions: Vec<String> = Vec::new();
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            let filter = &query.filter;
            let mut any_of =
                |column: &str, items: Vec<rusqlite::types::Value>, values: &mut Vec<rusqlite::types::Value>| {
                    if items.is_empty() {
                        return;
                    }
                    let marks = vec!["?"; items.len()].join(", ");
                    conditions.push(format!("{column} IN ({marks})"));
                    values.extend(items);
                };
            any_of(
                "status",
                filter.statuses.iter().map(|status| status.code().into()).collect(),
                &mut values,
            );
            any_of(
                "task_type",
                filter
                    .task_types
                    .iter()
                    .map(|task_type| task_type.clone().into())
                    .collect(),
                &mut values,
            );
            any_of(
                "priority",
                filter
                    .priorities
                    .iter()
                    .map(|priority| priority.code().into())
                    .collect(),
                &mut values,
            );
            for (key, value) in &filter.labels {
                conditions.push("json_extract(labels, ?) = ?".to_string());
                values.push(format!("$.\"{}\"", key.replace('"', "\\\"")).into());
                values.push(value.clone().into());
            }
            if let Some(after) = filter.created_after {
                conditions.push("created_at >= ?".to_string());
                values.push(after.as_micros().into());
            }
            if let Some(before) = filter.created_before {
                conditions.push("created_at < ?".to_string());
                values.push(before.as_micros().into());
            }
            if let Some(before_id) = query.before_id {
                conditions.push("id < ?".to_string());
                values.push(before_id.to_string().into());
            }
            let where_clause = if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            };
            values.push((query.limit as i64).into());
            let sql = format!("SELECT {COLUMNS} FROM tasks {where_clause} ORDER BY id DESC LIMIT ?");
            query_tasks(connection, &sql, params_from_iter(values))
        })
        .await
    }

    async fn load_unfinished(&self) -> StoreResult<Vec<Task>> {
        self.read(|connection| {
            let sql = format!("SELECT {COLUMNS} FROM tasks WHERE status NOT IN {TERMINAL_CODES} ORDER BY id");
            query_tasks(connection, &sql, [])
        })
        .await
    }

    async fn count_by_type_and_status(&self) -> StoreResult<Vec<StatusCount>> {
        self.read(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT task_type, status, COUNT(*) FROM tasks GROUP BY task_type, status")
                .map_err(db_error)?;
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .map_err(db_error)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_error)?;
            count_rows(rows)
        })
        .await
    }

    async fn purge_finished_before(&self, before: Timestamp) -> StoreResult<Vec<StatusCount>> {
        // Through a read-pool connection: deletes take SQLite's write lock
        // briefly (busy_timeout covers the wait) and keep the writer thread
        // free for submits.
        let cutoff = before.as_micros();
        self.read(move |connection| {
            // IMMEDIATE takes the write lock up front, where busy_timeout
            // waits for it; a deferred transaction that reads first and then
            // writes fails at once with "database is locked" if the writer
            // committed in between.
            let transaction =
                rusqlite::Transaction::new_unchecked(connection, rusqlite::TransactionBehavior::Immediate)
                    .map_err(db_error)?;
            let rows = {
                let mut statement = transaction
                    .prepare(&format!(
                        "SELECT task_type, status, COUNT(*) FROM tasks WHERE status IN {TERMINAL_CODES} \
                         AND completed_at < ?1 GROUP BY task_type, status"
                    ))
                    .map_err(db_error)?;
                statement
                    .query_map(params![cutoff], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .map_err(db_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(db_error)?
            };
            transaction
                .execute(
                    &format!("DELETE FROM tasks WHERE status IN {TERMINAL_CODES} AND completed_at < ?1"),
                    params![cutoff],
                )
                .map_err(db_error)?;
            transaction.commit().map_err(db_error)?;
            count_rows(rows)
        })
        .await
    }

    async fn optimize(&self) -> StoreResult<String> {
        self.read(|connection| {
            connection.execute_batch("PRAGMA optimize;").map_err(db_error)?;
            let (busy, log_frames, checkpointed): (i64, i64, i64) = connection
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .map_err(db_error)?;
            let pages: i64 = connection
                .query_row("PRAGMA page_count", [], |row| row.get(0))
                .map_err(db_error)?;
            let free: i64 = connection
                .query_row("PRAGMA freelist_count", [], |row| row.get(0))
                .map_err(db_error)?;
            Ok(format!(
                "analyzed tables; checkpointed {checkpointed} of {log_frames} WAL frames{}; \
                 database has {pages} pages, {free} free",
                if busy != 0 { " (readers busy)" } else { "" }
            ))
        })
        .await
    }
}
