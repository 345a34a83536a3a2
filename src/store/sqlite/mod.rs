//! The embedded default store: one SQLite file in WAL mode, owned by one
//! process.
//!
//! Every operation goes through one writer (`writer.rs`): a lone one is
//! committed on its caller's thread, and whatever queues up while a commit
//! syncs is applied together in one transaction by the writer thread, so a
//! thousand concurrent submits cost one fsync. Operations are the shared
//! transitions ([`crate::store::transition`]) run on the writer's
//! connection; `driver.rs` holds their statements in this database's SQL.
//! Reads use a small pool of separate connections.
//! Counts per type and status live in memory, changed only by committed
//! transactions.

mod config;
mod connection;
mod counts;
mod driver;
mod lock;
mod reads;
mod row;
mod schema;
mod space;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::broadcast;

use crate::model::TaskStatus;
use crate::model::schedule::Schedule;
use crate::model::{LeaseRef, Progress, Task, TaskEvent, TaskId, Timestamp};
use crate::store::columns::from_json;
use crate::store::driver::Tx;
use crate::store::sqlite::connection::{open_connection, open_read_connection};
use crate::store::sqlite::counts::Counts;
use crate::store::sqlite::driver::run_now;
use crate::store::sqlite::lock::OwnerLock;
use crate::store::sqlite::writer::{Batch, Shared, Writer, operation};
use crate::store::transition;
use crate::store::{
    AttemptReport, Cancelled, ClaimRequest, Claimed, CommitObserver, Finished, ForgetTaskTypes, ListQuery, Promoted,
    Purged, RenewRequest, Renewed, RescueScope, Rescued, StatusCount, Store, StoreError, StoreOptions, StoreResult,
    SubmitBatch, Submitted,
};
use rusqlite::OptionalExtension;

pub use config::{SqliteStoreConfig, Synchronous};
pub use lock::lock_path;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    config: SqliteStoreConfig,
    writer: Arc<Writer>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    shared: Arc<Shared>,
    /// Ownership of the file, given up once the writer has stopped.
    owner: Mutex<Option<OwnerLock>>,
}

/// Largest database converted to incremental vacuum while opening: the
/// conversion rewrites the file with everything waiting.
const CONVERT_TO_INCREMENTAL_UP_TO: u64 = 256 * 1024 * 1024;

/// Free pages returned to the file system in one commit (1 MiB of 4 KiB
/// pages): a few milliseconds of writing, so that a submit queued behind
/// it waits little (`cargo bench --bench retention`).
const RECLAIM_STEP_PAGES: u64 = 256;

/// Most reclaim steps in one housekeeping (16 GiB): bounds it.
const MOST_RECLAIM_STEPS: usize = 16384;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, takes ownership
    /// of it, migrates its schema and starts the writer.
    pub fn open(path: impl Into<PathBuf>, config: SqliteStoreConfig, options: StoreOptions) -> StoreResult<Self> {
        let path = path.into();
        let owner = OwnerLock::acquire(&path)?;
        let mut write_connection = open_connection(&path, &config)?;
        schema::migrate(&mut write_connection, &options.weights)?;
        match space::ensure_incremental(&write_connection, CONVERT_TO_INCREMENTAL_UP_TO)? {
            space::VacuumMode::Converted { bytes } => {
                tracing::info!(
                    bytes,
                    "converted the database to incremental vacuum: purged space now returns to the file system"
                )
            }
            space::VacuumMode::Unconverted { bytes } => tracing::warn!(
                bytes,
                "this database predates incremental vacuum and is too large to convert while starting: \
                 purged space is reused but the file does not shrink; to convert it, stop taskd and run \
                 sqlite3 <data-dir>/taskd.db 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM;'"
            ),
            space::VacuumMode::Incremental | space::VacuumMode::Other(_) => {}
        }
        let counts = Counts::from_rows(reads::count_by_type_and_status(&write_connection)?);

        let (events, _) = broadcast::channel(options.event_buffer.max(16));
        let shared = Arc::new(Shared {
            counts: Mutex::new(counts),
            last_failed_commit: Mutex::new(None),
            observer: parking_lot::RwLock::new(None),
            events: events.clone(),
            weights: options.weights,
        });
        let (publications, publications_receiver) = mpsc::channel();
        let writer = Writer::new(
            write_connection,
            shared.clone(),
            publications,
            config.max_writes_per_commit,
        );
        let spawn_error = |error: std::io::Error| StoreError::Unavailable(format!("cannot start a thread: {error}"));
        let writer_thread = {
            let writer = writer.clone();
            std::thread::Builder::new()
                .name("taskd-sqlite-writer".into())
                .spawn(move || writer.run())
                .map_err(spawn_error)?
        };
        let publisher = std::thread::Builder::new()
            .name("taskd-sqlite-events".into())
            .spawn(move || writer::publish(publications_receiver, events))
            .map_err(spawn_error)?;

        Ok(SqliteStore {
            path,
            config,
            writer,
            threads: Mutex::new(vec![writer_thread, publisher]),
            readers: Arc::new(Mutex::new(Vec::new())),
            shared,
            owner: Mutex::new(Some(owner)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops taking operations, lets the queued ones commit, stops the
    /// writer and gives up ownership of the file. Blocks.
    pub fn close_blocking(&self) {
        self.writer.close();
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
        self.owner.lock().take();
    }

    /// Queues `op` for the writer and waits for its durable answer.
    async fn write<T, F>(&self, weight: usize, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (operation, answer) = operation(weight, op);
        self.writer.submit(operation);
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the store is closed".to_string())))
    }

    /// Runs `read`, a lookup by key that takes microseconds, on a pooled
    /// read connection right here: handing it to another thread and back
    /// would cost more than the lookup.
    fn read_now<T>(&self, read: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let pooled = self.readers.lock().pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => open_read_connection(&self.path, &self.config)?,
        };
        let result = read(&connection);
        let mut pool = self.readers.lock();
        if pool.len() < self.config.read_connections {
            pool.push(connection);
        }
        result
    }

    /// Runs `read`, which may scan, on a pooled read connection off the
    /// async runtime.
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
                None => open_read_connection(&path, &config)?,
            };
            let result = read(&connection);
            let mut pool = readers.lock();
            if pool.len() < config.read_connections {
                pool.push(connection);
            }
            result
        })
        .await
        .map_err(|error| StoreError::Unavailable(format!("read failed: {error}")))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close_blocking();
    }
}

/// How long after a failed commit the store still reads as not writable.
const RECENT_FAILURE: std::time::Duration = std::time::Duration::from_secs(10);

#[async_trait]
impl Store for SqliteStore {
    async fn submit(&self, batch: SubmitBatch) -> StoreResult<Submitted> {
        self.write(batch.drafts.len(), move |writer| {
            run_now(transition::submit(writer, batch))
        })
        .await
    }

    async fn submit_and_claim(&self, batch: SubmitBatch, claim: ClaimRequest) -> StoreResult<(Submitted, Claimed)> {
        self.write(batch.drafts.len() + claim.limit, move |writer| {
            run_now(transition::submit_and_claim(writer, batch, claim))
        })
        .await
    }

    async fn claim(&self, request: ClaimRequest) -> StoreResult<Claimed> {
        self.write(request.limit, move |writer| run_now(transition::claim(writer, request)))
            .await
    }

    async fn renew(&self, request: RenewRequest) -> StoreResult<Renewed> {
        self.write(request.leases.len(), move |writer| {
            run_now(transition::renew(writer, request))
        })
        .await
    }

    async fn record_progress(&self, lease: LeaseRef, progress: Progress, now: Timestamp) -> StoreResult<()> {
        self.write(1, move |writer| {
            run_now(transition::record_progress(writer, lease, progress, now))
        })
        .await
    }

    async fn finish(&self, report: AttemptReport) -> StoreResult<Finished> {
        self.write(1, move |writer| {
            run_now(transition::finish_many(writer, vec![report]))?
                .pop()
                .unwrap_or_else(|| Err(StoreError::Unavailable("a finish went unanswered".to_string())))
        })
        .await
    }

    async fn cancel(&self, id: TaskId, reason: String, now: Timestamp) -> StoreResult<Cancelled> {
        self.write(1, move |writer| run_now(transition::cancel(writer, id, reason, now)))
            .await
    }

    async fn rescue(&self, scope: RescueScope, now: Timestamp) -> StoreResult<Rescued> {
        self.write(1, move |writer| run_now(transition::rescue(writer, scope, now)))
            .await
    }

    async fn promote_due(&self, now: Timestamp) -> StoreResult<Promoted> {
        self.write(1, move |writer| run_now(transition::promote(writer, now)))
            .await
    }

    async fn purge_finished_before(
        &self,
        status: Option<TaskStatus>,
        cutoff: Timestamp,
        limit: usize,
    ) -> StoreResult<Purged> {
        self.write(limit, move |writer| {
            run_now(transition::purge(writer, status, cutoff, limit))
        })
        .await
    }

    async fn get(&self, id: TaskId) -> StoreResult<Option<Task>> {
        self.read_now(|connection| reads::get(connection, id))
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Vec<Task>> {
        let query = query.clone();
        self.read(move |connection| reads::list(connection, &query)).await
    }

    async fn counts(&self) -> StoreResult<Vec<StatusCount>> {
        Ok(self.shared.counts.lock().rows())
    }

    async fn declare_task_types(
        &self,
        task_types: Vec<String>,
        now: Timestamp,
        max_declared: usize,
    ) -> StoreResult<()> {
        self.write(task_types.len(), move |writer| {
            run_now(transition::declare_task_types(writer, &task_types, now, max_declared))
        })
        .await
    }

    async fn forget_task_types(&self, which: ForgetTaskTypes) -> StoreResult<Vec<String>> {
        self.write(1, move |writer| run_now(transition::forget_task_types(writer, &which)))
            .await
    }

    async fn declared_task_types(&self) -> StoreResult<Vec<String>> {
        self.read(reads::declared_task_types).await
    }

    async fn create_schedule(&self, schedule: Schedule) -> StoreResult<Schedule> {
        self.write(1, move |writer| run_now(transition::create_schedule(writer, schedule)))
            .await
    }

    async fn get_schedule(&self, name: &str) -> StoreResult<Option<Schedule>> {
        let name = name.to_string();
        self.read_now(|connection| {
            let body: Option<String> = connection
                .prepare_cached("SELECT body FROM schedules WHERE name = ?1")?
                .query_row(rusqlite::params![name], |row| row.get(0))
                .optional()?;
            body.map(|body| from_json("body", &body)).transpose()
        })
    }

    async fn list_schedules(&self) -> StoreResult<Vec<Schedule>> {
        let bodies = self.read(reads::schedules).await?;
        bodies.iter().map(|body| from_json("body", body)).collect()
    }

    async fn update_schedule(&self, schedule: Schedule, read: u64) -> StoreResult<Schedule> {
        self.write(1, move |writer| {
            run_now(transition::update_schedule(writer, schedule, read))
        })
        .await
    }

    async fn delete_schedule(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(1, move |writer| run_now(transition::delete_schedule(writer, &name)))
            .await
    }

    async fn due_schedules(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Schedule>> {
        let bodies = self
            .read(move |connection| reads::due_schedules(connection, now.as_micros(), limit))
            .await?;
        bodies.iter().map(|body| from_json("body", body)).collect()
    }

    async fn next_schedule_fire(&self) -> StoreResult<Option<Timestamp>> {
        Ok(self.read_now(reads::next_schedule_fire)?.map(Timestamp))
    }

    async fn check_writable(&self, now: Timestamp) -> StoreResult<()> {
        self.write(1, move |writer| run_now(writer.touch_health(now))).await?;
        // A one-row write can fit where a real one no longer does (a full
        // disk with room left inside the log): recent failures count too.
        if let Some((when, error)) = self.shared.last_failed_commit.lock().clone()
            && when.elapsed() < RECENT_FAILURE
        {
            return Err(StoreError::Unavailable(format!(
                "a write failed {:.0?} ago: {error}",
                when.elapsed()
            )));
        }
        Ok(())
    }

    async fn optimize(&self) -> StoreResult<String> {
        // Analyzing writes statistics: the writer does it, between batches.
        self.write(1, |writer| reads::analyze(writer.connection)).await?;
        // Free pages go back in steps, each its own commit: submits and
        // finishes keep going in between.
        let mut returned = 0;
        for _ in 0..MOST_RECLAIM_STEPS {
            let freed = self
                .write(RECLAIM_STEP_PAGES as usize, |writer| {
                    space::reclaim(writer.connection, RECLAIM_STEP_PAGES)
                })
                .await?;
            returned += freed;
            if freed < RECLAIM_STEP_PAGES {
                break;
            }
        }
        let files = self.read(reads::checkpoint).await?;
        Ok(format!("{files}; returned {returned} free pages to the file system"))
    }

    fn on_commit(&self, observer: CommitObserver) {
        *self.shared.observer.write() = Some(observer);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.shared.events.subscribe()
    }

    async fn watch(&self, id: TaskId) -> StoreResult<(Option<Task>, broadcast::Receiver<Arc<TaskEvent>>)> {
        // Subscribed first, then read by the writer: every batch that starts
        // after the read publishes to this receiver, and every batch before
        // it is in the snapshot.
        let receiver = self.shared.events.subscribe();
        let snapshot = self.write(1, move |writer| reads::get(writer.connection, id)).await?;
        Ok((snapshot, receiver))
    }

    async fn close(&self) {
        self.writer.close();
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        self.owner.lock().take();
    }
}
