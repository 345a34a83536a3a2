//! The source of truth. Every transition a task can take is one atomic
//! operation of the [`Store`] contract, the way Oban's engine behaviour
//! lists them: submit a batch, claim ready tasks under a lease, renew a
//! lease, finish an attempt (which releases or cancels dependents and
//! schedules the retry in the same step), cancel, rescue expired leases,
//! promote due tasks, purge. Backends decide each transition with the pure
//! rules of [`crate::model::rules`].
//!
//! Answers and events reflect only durable state: an operation returns once
//! its changes are durable, and events are published after that, so a
//! watcher never sees a change a crash could undo. An operation that fails
//! wrote nothing.
//!
//! SQLite ([`sqlite`]) is the embedded default; PostgreSQL ([`postgres`])
//! lets several nodes share one database. The conformance suite (the
//! dev-only crate in `tests/conformance`) is the executable definition of
//! the contract; every backend runs it unchanged.

pub mod changes;
pub mod columns;
pub mod decide;
pub mod driver;
mod error;
pub mod list_sql;
pub mod ops;
pub mod postgres;
mod settings;
pub mod sqlite;
pub mod transition;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::model::schedule::Schedule;
use crate::model::{LeaseRef, Progress, SchedulingWeights, Task, TaskEvent, TaskId, TaskStatus, Timestamp, WorkerInfo};

pub use error::{StoreError, StoreResult};
pub use ops::{
    AttemptReport, Cancelled, ClaimRequest, Claimed, ClaimedTask, DraftDependency, DraftTarget, Finished, ListQuery,
    Promoted, Purged, RenewRequest, Renewed, RescueScope, Rescued, StatusCount, SubmitBatch, SubmitOutcome, Submitted,
    TaskDraft, Transition,
};
pub use settings::{Backend, StoreConfig, redacted};
pub use sqlite::{SqliteStore, SqliteStoreConfig, Synchronous};

/// Told of the transitions of every commit, after it is durable and before
/// its answers and events go out: counters and wake-ups that follow it
/// can never lag behind what a client has seen.
pub type CommitObserver = Arc<dyn Fn(&[Transition]) + Send + Sync>;

/// Told when changes made elsewhere may have been missed.
pub type ResyncHook = Arc<dyn Fn() + Send + Sync>;

/// What every backend is told when it opens, beyond its own settings.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The claim order of ready tasks.
    pub weights: SchedulingWeights,
    /// Events buffered per subscriber before it is told it lagged.
    pub event_buffer: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            weights: SchedulingWeights::default(),
            event_buffer: 4096,
        }
    }
}

/// Which declared task types to forget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForgetTaskTypes {
    /// This one.
    Named(String),
    /// Those last declared before `cutoff`, except those in `keep`.
    DeclaredBefore { cutoff: Timestamp, keep: Vec<String> },
}

/// Durable task state and every transition of it. The conformance suite
/// (`tests/conformance`) is the executable definition of this contract.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a batch of tasks, all or none: checks idempotency keys and
    /// dependencies and places each task (WAITING, SCHEDULED, PENDING, or
    /// CANCELLED when a dependency can no longer be met).
    async fn submit(&self, batch: SubmitBatch) -> StoreResult<Submitted>;

    /// A submit and then a claim, in one transaction: the executor that
    /// has room is handed the best ready tasks (the new ones, when nothing
    /// better waits) in the commit that creates them, rather than in one
    /// of its own after it. Both answers reflect that one commit.
    async fn submit_and_claim(&self, batch: SubmitBatch, claim: ClaimRequest) -> StoreResult<(Submitted, Claimed)>;

    /// Promotes due SCHEDULED tasks, then leases up to `limit` PENDING tasks
    /// of the requested types, in queue-key order, to the executor.
    async fn claim(&self, request: ClaimRequest) -> StoreResult<Claimed>;

    /// Extends leases; each one that is no longer honoured says why.
    async fn renew(&self, request: RenewRequest) -> StoreResult<Renewed>;

    /// Records the progress of a running attempt; refused under a lost
    /// lease.
    async fn record_progress(&self, lease: LeaseRef, progress: Progress, now: Timestamp) -> StoreResult<()>;

    /// Ends an attempt under its lease: completes the task, schedules its
    /// retry or fails it, and releases or cancels its dependents, in one
    /// step. Refused with [`StoreError::LeaseLost`] under a lost lease.
    async fn finish(&self, report: AttemptReport) -> StoreResult<Finished>;

    /// Cancels a task that has not ended, and transitively its dependents
    /// that can no longer run; a running task's lease is revoked.
    async fn cancel(&self, id: TaskId, reason: String, now: Timestamp) -> StoreResult<Cancelled>;

    /// Takes back leases (expired ones, or all of one executor's) and ends
    /// their attempts: retried or failed per each task's policy.
    async fn rescue(&self, scope: RescueScope, now: Timestamp) -> StoreResult<Rescued>;

    /// Moves SCHEDULED tasks whose time has come to PENDING.
    async fn promote_due(&self, now: Timestamp) -> StoreResult<Promoted>;

    /// Deletes up to `limit` terminal tasks (of `status` only, when given)
    /// that finished before `cutoff`.
    async fn purge_finished_before(
        &self,
        status: Option<TaskStatus>,
        cutoff: Timestamp,
        limit: usize,
    ) -> StoreResult<Purged>;

    async fn get(&self, id: TaskId) -> StoreResult<Option<Task>>;

    async fn list(&self, query: &ListQuery) -> StoreResult<Vec<Task>>;

    /// Tasks by type and status.
    async fn counts(&self) -> StoreResult<Vec<StatusCount>>;

    /// Remembers `task_types` as declared at `now` (a worker declared or
    /// serves them), for every node and every later start; a type declared
    /// before is renewed. Refused with [`StoreError::LimitReached`] when
    /// more than `max_declared` types would then be declared.
    async fn declare_task_types(&self, task_types: Vec<String>, now: Timestamp, max_declared: usize)
    -> StoreResult<()>;

    /// Forgets declared task types; the ones forgotten, sorted.
    async fn forget_task_types(&self, which: ForgetTaskTypes) -> StoreResult<Vec<String>>;

    /// Every task type declared so far, sorted.
    async fn declared_task_types(&self) -> StoreResult<Vec<String>>;

    /// Whether several nodes share this store; they learn of each other's
    /// workers through it.
    fn is_shared(&self) -> bool {
        false
    }

    /// Records `workers` as the ones connected to `node` at `now`, in place
    /// of what it recorded before, and forgets the workers of every node
    /// not heard from since `stale_before` (it stopped or lost the
    /// database). A store for one node has nobody to tell.
    async fn publish_workers(
        &self,
        _node: &str,
        _workers: Vec<WorkerInfo>,
        _now: Timestamp,
        _stale_before: Timestamp,
    ) -> StoreResult<()> {
        Ok(())
    }

    /// The workers other nodes than `node` recorded since `seen_after`.
    async fn workers_elsewhere(&self, _node: &str, _seen_after: Timestamp) -> StoreResult<Vec<WorkerInfo>> {
        Ok(Vec::new())
    }

    /// Creates a schedule (at revision 1); refused with
    /// [`StoreError::Conflict`] when the name is taken.
    async fn create_schedule(&self, schedule: Schedule) -> StoreResult<Schedule>;

    async fn get_schedule(&self, name: &str) -> StoreResult<Option<Schedule>>;

    /// Every schedule, by name.
    async fn list_schedules(&self) -> StoreResult<Vec<Schedule>>;

    /// Writes `schedule` in place of its revision `read` (the revision goes
    /// up by one); refused with [`StoreError::Conflict`] when it changed
    /// since, [`StoreError::ScheduleNotFound`] when it is gone.
    async fn update_schedule(&self, schedule: Schedule, read: u64) -> StoreResult<Schedule>;

    /// Deletes a schedule; whether there was one.
    async fn delete_schedule(&self, name: &str) -> StoreResult<bool>;

    /// Schedules not paused whose next fire is at or before `now`, soonest
    /// first, at most `limit`.
    async fn due_schedules(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Schedule>>;

    /// When the soonest schedule not paused fires next.
    async fn next_schedule_fire(&self) -> StoreResult<Option<Timestamp>>;

    /// Makes a small durable write and says whether it succeeded: whether
    /// the store can take writes now (readiness). A write that changes
    /// nothing may never reach the disk, so it must change something.
    async fn check_writable(&self, now: Timestamp) -> StoreResult<()>;

    /// Backend housekeeping (statistics, compaction); says what it did.
    async fn optimize(&self) -> StoreResult<String>;

    /// Calls `observer` with the transitions of every commit from now on,
    /// in commit order, on the committing thread: it must be quick. Replaces
    /// any earlier observer.
    fn on_commit(&self, observer: CommitObserver);

    /// Calls `observer` with the transitions other nodes sharing this
    /// store commit (a backend for one node never does), and `resync` when
    /// some may have been missed (the link to the others was down).
    fn on_remote_commit(&self, _observer: CommitObserver, _resync: ResyncHook) {}

    /// Events of every durable change, in commit order.
    fn subscribe(&self) -> broadcast::Receiver<Arc<TaskEvent>>;

    /// A task as of one point in the event stream, with a receiver of every
    /// event after that point: a watcher that reads both misses nothing.
    /// (Events from before the point may still arrive; a task's `revision`
    /// tells them apart.)
    async fn watch(&self, id: TaskId) -> StoreResult<(Option<Task>, broadcast::Receiver<Arc<TaskEvent>>)>;

    /// Stops taking operations and waits for the ones under way.
    async fn close(&self);
}
