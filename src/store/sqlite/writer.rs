//! The writer thread: every operation, applied in commit order.
//!
//! One connection writes. An operation that finds it idle is committed at
//! once on the caller's thread; operations that queue up while a commit is
//! syncing are applied together in one transaction by the writer thread
//! (group commit). Only after the commit succeeds are the
//! operations answered, the counts changed and the events published; a
//! failed commit fails every operation it carried and changes nothing, in
//! the database or in memory.
//!
//! Operations check before they write: one that is refused (an unknown
//! dependency, a lost lease) has written nothing, and the others of its
//! batch go on. An operation that fails while writing (a database error)
//! fails its whole batch, rolled back, and every operation in it is told
//! so. That costs a retry in a rare case and saves a savepoint (and the
//! page copies SQLite makes for it) on every operation in the common one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use rusqlite::Connection;
use tokio::sync::{broadcast, oneshot};

use crate::model::{SchedulingWeights, TaskEvent};
use crate::store::changes::{Change, Changes};
use crate::store::sqlite::counts::Counts;
use crate::store::{CommitObserver, StoreError, StoreResult};

/// What the writer shares with the rest of the store.
pub struct Shared {
    pub counts: Mutex<Counts>,
    /// When the last commit failed, and why; readiness reads it.
    pub last_failed_commit: Mutex<Option<(std::time::Instant, String)>>,
    pub observer: RwLock<Option<CommitObserver>>,
    pub events: broadcast::Sender<Arc<TaskEvent>>,
    pub weights: SchedulingWeights,
}

/// The transaction being built and what it changed so far.
pub struct Batch<'c> {
    pub connection: &'c Connection,
    /// What the store keeps in memory, as of the last commit.
    pub shared: &'c Shared,
    pub changes: Changes,
}

/// Whether an operation's error means it may have written part of its
/// changes: a database or data error, not a refusal.
fn wrote_partly(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable(_) | StoreError::Corrupt(_))
}

/// One queued operation with the channel its answer goes back on.
pub trait Operation: Send {
    /// How much of a commit's budget it takes (rows it may touch).
    fn weight(&self) -> usize;
    /// Applies it; the answer is sent once the batch's fate is known.
    fn apply(self: Box<Self>, batch: &mut Batch<'_>) -> Box<dyn Answer>;
    /// Answers it with `error` without applying it.
    fn refuse(self: Box<Self>, error: StoreError);
}

/// An applied operation's answer, held until the commit.
pub trait Answer: Send {
    /// The error that fails the whole batch, if applying failed while
    /// writing.
    fn failed_writing(&self) -> Option<StoreError>;
    fn send(self: Box<Self>, committed: &Result<(), StoreError>);
}

struct Queued<T, F> {
    op: F,
    weight: usize,
    reply: oneshot::Sender<StoreResult<T>>,
}

struct Applied<T> {
    result: StoreResult<T>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Operation for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Batch<'_>) -> StoreResult<T> + Send + 'static,
{
    fn weight(&self) -> usize {
        self.weight
    }

    fn apply(self: Box<Self>, batch: &mut Batch<'_>) -> Box<dyn Answer> {
        let Queued { op, reply, .. } = *self;
        let result = op(batch);
        Box::new(Applied { result, reply })
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

impl<T: Send> Answer for Applied<T> {
    fn failed_writing(&self) -> Option<StoreError> {
        match &self.result {
            Err(error) if wrote_partly(error) => Some(error.clone()),
            _ => None,
        }
    }

    fn send(self: Box<Self>, committed: &Result<(), StoreError>) {
        // A refused operation wrote nothing: its own error stands whatever
        // became of the commit. An accepted one is only as good as it.
        let result = match (self.result, committed) {
            (Ok(_), Err(error)) => Err(error.clone()),
            (result, _) => result,
        };
        let _ = self.reply.send(result);
    }
}

/// Wraps `op` for the writer; the receiver yields its answer.
pub fn operation<T, F>(weight: usize, op: F) -> (Box<dyn Operation>, oneshot::Receiver<StoreResult<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut Batch<'_>) -> StoreResult<T> + Send + 'static,
{
    let (reply, receiver) = oneshot::channel();
    (
        Box::new(Queued {
            op,
            weight: weight.max(1),
            reply,
        }),
        receiver,
    )
}

/// Events of one commit, on their way to watchers.
pub struct Publication {
    pub first_sequence: u64,
    pub changes: Vec<Change>,
}

/// Runs `sql`, a statement without parameters, prepared once per connection:
/// the writer begins and commits thousands of transactions a second.
fn execute_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Who may write, and what waits to be written. The connection is here
/// when nobody is committing; whoever takes it commits what is queued.
struct Gate {
    connection: Option<Connection>,
    queue: VecDeque<Box<dyn Operation>>,
    next_sequence: u64,
    /// Operations in the last commit: one means requests come one at a
    /// time; more means they pile up while a commit syncs.
    last_batch_len: usize,
    closed: bool,
}

/// The store's single writer. When requests come one at a time, an
/// operation that finds nobody committing is committed at once on the
/// caller's own thread: a lone request pays no hop to another thread and
/// back. When they pile up (the last commit carried several), operations go
/// to the writer thread, which commits whatever queued up meanwhile
/// together (group commit), and the callers' threads, free of the fsync,
/// serve other requests.
pub struct Writer {
    gate: Mutex<Gate>,
    queued: Condvar,
    shared: Arc<Shared>,
    /// Dropped once the writer thread is done, which ends the publisher.
    publications: Mutex<Option<mpsc::Sender<Publication>>>,
    max_weight: usize,
}

impl Writer {
    pub fn new(
        connection: Connection,
        shared: Arc<Shared>,
        publications: mpsc::Sender<Publication>,
        max_weight: usize,
    ) -> Arc<Self> {
        Arc::new(Writer {
            gate: Mutex::new(Gate {
                connection: Some(connection),
                queue: VecDeque::new(),
                next_sequence: 1,
                last_batch_len: 0,
                closed: false,
            }),
            queued: Condvar::new(),
            shared,
            publications: Mutex::new(Some(publications)),
            max_weight: max_weight.max(1),
        })
    }

    /// Queues `operation`; commits it right here when nobody else is
    /// committing and requests come one at a time.
    pub fn submit(&self, operation: Box<dyn Operation>) {
        let mut gate = self.gate.lock();
        if gate.closed {
            drop(gate);
            operation.refuse(StoreError::Unavailable("the store is closed".to_string()));
            return;
        }
        gate.queue.push_back(operation);
        if gate.last_batch_len > 1 || gate.queue.len() > 1 {
            self.queued.notify_one();
            return;
        }
        let Some(connection) = gate.connection.take() else {
            return;
        };
        let gate = self.commit_queued(gate, connection);
        if !gate.queue.is_empty() {
            // What queued up meanwhile is the writer thread's.
            self.queued.notify_one();
        }
    }

    /// Stops taking operations; the writer thread commits what is queued and
    /// ends.
    pub fn close(&self) {
        self.gate.lock().closed = true;
        self.queued.notify_all();
    }

    /// The writer thread: commits whatever queues up behind a commit, until
    /// closed and drained.
    pub fn run(&self) {
        loop {
            let mut gate = self.gate.lock();
            while !(gate.connection.is_some() && (!gate.queue.is_empty() || gate.closed)) {
                self.queued.wait(&mut gate);
            }
            let Some(connection) = gate.connection.take() else {
                continue;
            };
            if gate.queue.is_empty() {
                // Closed and drained: leave a compact WAL for the next start,
                // and let the publisher finish.
                drop(gate);
                let _ = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                self.publications.lock().take();
                return;
            }
            drop(self.commit_queued(gate, connection));
        }
    }

    /// Commits a batch of what `gate` queues with `connection` (taken from
    /// it), then gives the connection back; returns the gate, locked.
    fn commit_queued<'g>(&'g self, mut gate: MutexGuard<'g, Gate>, connection: Connection) -> MutexGuard<'g, Gate> {
        let batch = self.take_batch(&mut gate.queue);
        let first_sequence = gate.next_sequence;
        gate.last_batch_len = batch.len();
        drop(gate);
        let next_sequence = self.commit(&connection, batch, first_sequence);
        let mut gate = self.gate.lock();
        gate.next_sequence = next_sequence;
        gate.connection = Some(connection);
        gate
    }

    fn take_batch(&self, queue: &mut VecDeque<Box<dyn Operation>>) -> Vec<Box<dyn Operation>> {
        let mut weight = 0;
        let mut batch = Vec::new();
        while weight < self.max_weight {
            let Some(operation) = queue.pop_front() else { break };
            weight += operation.weight();
            batch.push(operation);
        }
        batch
    }

    /// Applies `queued` in one transaction and answers every operation
    /// once its fate is known; returns the next event sequence number.
    fn commit(&self, connection: &Connection, queued: Vec<Box<dyn Operation>>, first_sequence: u64) -> u64 {
        let shared = &*self.shared;
        let wants_events = shared.events.receiver_count() > 0;
        if let Err(error) = execute_cached(connection, "BEGIN") {
            let error = StoreError::from(error);
            tracing::error!(%error, "cannot begin a transaction; failing its operations");
            for operation in queued {
                operation.refuse(error.clone());
            }
            return first_sequence;
        }
        let mut batch = Batch {
            connection,
            shared,
            changes: Changes::new(shared.weights, wants_events, false),
        };
        let mut answers = Vec::with_capacity(queued.len());
        let mut aborted = None;
        for operation in queued {
            if let Some(error) = &aborted {
                operation.refuse(StoreError::clone(error));
                continue;
            }
            let answer = operation.apply(&mut batch);
            if let Some(error) = answer.failed_writing() {
                aborted = Some(StoreError::Unavailable(format!(
                    "a write of this group commit failed, and all of it was rolled back: {error}"
                )));
            }
            answers.push(answer);
        }
        let Changes {
            events: changes,
            transitions,
            removed,
            ..
        } = batch.changes;
        let committed = match aborted {
            Some(error) => Err(error),
            None => execute_cached(connection, "COMMIT").map_err(StoreError::from),
        };
        if committed.is_err() && !connection.is_autocommit() {
            let _ = execute_cached(connection, "ROLLBACK");
        }
        let mut next_sequence = first_sequence;
        if let Err(error) = &committed {
            tracing::error!(%error, operations = answers.len(), "commit failed; its operations are refused and nothing of them was kept");
            *shared.last_failed_commit.lock() = Some((std::time::Instant::now(), error.to_string()));
        } else {
            {
                let mut counts = shared.counts.lock();
                counts.apply(&transitions);
                for (task_type, status) in &removed {
                    counts.remove(task_type, *status);
                }
            }
            if !transitions.is_empty()
                && let Some(observer) = shared.observer.read().as_ref()
            {
                observer(&transitions);
            }
            next_sequence += changes.len() as u64;
            if !changes.is_empty()
                && let Some(publications) = self.publications.lock().as_ref()
            {
                let _ = publications.send(Publication {
                    first_sequence,
                    changes,
                });
            }
        }
        for answer in answers {
            answer.send(&committed);
        }
        next_sequence
    }
}

/// The publisher thread: turns committed changes into events, off the
/// writer's path, in commit order.
pub fn publish(publications: mpsc::Receiver<Publication>, events: broadcast::Sender<Arc<TaskEvent>>) {
    while let Ok(publication) = publications.recv() {
        for (offset, change) in publication.changes.into_iter().enumerate() {
            let Some(task) = change.task.into_task() else {
                continue;
            };
            let _ = events.send(Arc::new(TaskEvent {
                sequence: publication.first_sequence + offset as u64,
                kind: change.kind,
                time: task.updated_at,
                previous_status: change.previous,
                task: Some(task),
                missed: 0,
            }));
        }
    }
}
