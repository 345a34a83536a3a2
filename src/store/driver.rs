//! The driver contract: the statements the transitions are made of, one per
//! need, each a backend turns into its own SQL. The transitions
//! ([`crate::store::transition`]) decide; a driver reads, locks and writes
//! what they ask, and nothing else. (River's driver interface is the model:
//! the state machine once in the core, one statement per need below it.)
//!
//! Statements are `async`: PostgreSQL awaits the database, SQLite answers
//! at once on its writer thread (its futures never wait, and the writer
//! runs them to completion in one poll). A statement that reads rows a
//! decision depends on locks them where the backend has row locks
//! (`FOR UPDATE`); one that looks for work skips rows another transaction
//! holds (`SKIP LOCKED`). Statements that change a task record the change
//! in [`Changes`] themselves, because only the driver knows how to read the
//! row back cheaply (`RETURNING`, or a select by key).
#![allow(async_fn_in_trait)]

use crate::model::rules::attempts::AttemptFacts;
use crate::model::{
    Fingerprint, LeaseRef, LeaseToken, SchedulingWeights, Task, TaskId, TaskPriority, TaskStatus, Timestamp,
};
use crate::store::changes::{Changes, Event};
use crate::store::columns::TaskRow;
use crate::store::{ForgetTaskTypes, StoreError};

/// One transaction of a backend, as the transitions use it.
pub trait Tx {
    /// What a statement fails with: a backend keeps its database's error
    /// whole (to tell a lost race from a failure); a refusal the
    /// transitions decide converts into it.
    type Error: From<StoreError> + Send;

    /// What this transaction changed so far.
    fn changes(&mut self) -> &mut Changes;

    fn weights(&mut self) -> SchedulingWeights {
        self.changes().weights
    }

    // Submit.

    /// The task an earlier submit with idempotency key `key` created, with
    /// the fingerprint of that request.
    async fn task_by_idempotency_key(
        &mut self,
        key: &str,
    ) -> Result<Option<(Option<Fingerprint>, TaskRow)>, Self::Error>;

    /// The status of task `id`, which a new task is to depend on; locked,
    /// so that its end and the new edge are seen in one order.
    async fn dependency_status(&mut self, id: TaskId) -> Result<Option<TaskStatus>, Self::Error>;

    async fn insert_task(&mut self, new: &NewRow<'_>) -> Result<(), Self::Error>;

    /// Adds the edge `task_id` → `depends_on` and counts it on `depends_on`.
    async fn insert_dependency(
        &mut self,
        depends_on: TaskId,
        task_id: TaskId,
        required: TaskStatus,
    ) -> Result<(), Self::Error>;

    // Claim.

    /// Whether `task_type` may have ready tasks (a cheap answer that saves
    /// a query; `true` when unsure).
    fn may_have_ready(&mut self, _task_type: &str) -> bool {
        true
    }

    /// Up to `most` ready tasks of `task_type`, best first: their queue
    /// keys and ids (locked, skipping rows another transaction holds).
    async fn ready(&mut self, task_type: &str, most: usize) -> Result<Vec<(i64, TaskId)>, Self::Error>;

    /// A ready task [`Tx::ready`] found, whole, with its attempt count.
    async fn claimable(&mut self, id: TaskId) -> Result<(i64, TaskRow), Self::Error>;

    /// Writes the leases of one claim (the tasks become RUNNING).
    async fn write_leases(&mut self, leases: &LeaseWrites<'_>) -> Result<(), Self::Error>;

    // Leases and attempts.

    /// What decides the leases and attempts of tasks `ids` (sorted), rows
    /// locked; tasks that do not exist are left out.
    async fn leased(&mut self, ids: &[TaskId]) -> Result<Vec<LeasedTask>, Self::Error>;

    async fn set_lease_deadline(&mut self, id: TaskId, deadline: Timestamp) -> Result<(), Self::Error>;

    /// Sets a running task's progress (JSON).
    async fn set_progress(&mut self, id: TaskId, progress: &str, now: Timestamp) -> Result<(), Self::Error>;

    /// Closes running attempts (each task leaves RUNNING).
    async fn close_attempts(&mut self, closes: &[Close]) -> Result<(), Self::Error>;

    /// Running tasks whose lease deadline is not after `now` (skipping rows
    /// another transaction holds).
    async fn expired_leases(&mut self, now: Timestamp) -> Result<Vec<TaskId>, Self::Error>;

    /// Running tasks leased to `executor` (skipping rows another
    /// transaction holds).
    async fn leases_held_by(&mut self, executor: &str) -> Result<Vec<TaskId>, Self::Error>;

    // Dependents.

    /// The tasks that depend on `id`, with their edges; locked.
    async fn dependents(&mut self, id: TaskId) -> Result<Vec<Dependent>, Self::Error>;

    /// One more dependency of a WAITING task met; `unmet` remain.
    async fn count_dependency_met(
        &mut self,
        id: TaskId,
        unmet: i64,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), Self::Error>;

    /// Moves a WAITING task on (ready, scheduled or cancelled).
    async fn place_waiting(&mut self, placed: &Placed<'_>) -> Result<(), Self::Error>;

    // Cancel.

    /// Cancels a task that has not ended; its row as the cancel left it.
    async fn cancel(&mut self, cancel: &CancelWrite<'_>) -> Result<Option<TaskRow>, Self::Error>;

    // Promote.

    /// Up to `most` SCHEDULED tasks due at `now`, earliest first (skipping
    /// rows another transaction holds).
    async fn due(&mut self, now: Timestamp, most: i64) -> Result<Vec<DueTask>, Self::Error>;

    /// A SCHEDULED task becomes PENDING under `queue_key`.
    async fn promote(
        &mut self,
        id: TaskId,
        queue_key: Option<i64>,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), Self::Error>;

    /// When the next SCHEDULED task becomes due.
    async fn next_due(&mut self) -> Result<Option<Timestamp>, Self::Error>;

    // Purge.

    /// Up to `most` ended tasks (of `status` only, when given) that
    /// finished before `cutoff`: id, type and status (skipping rows another
    /// transaction holds).
    async fn finished_before(
        &mut self,
        status: Option<TaskStatus>,
        cutoff: Timestamp,
        most: usize,
    ) -> Result<Vec<(TaskId, String, TaskStatus)>, Self::Error>;

    /// Deletes tasks and every dependency edge to or from them.
    async fn delete_tasks(&mut self, ids: &[TaskId]) -> Result<(), Self::Error>;

    // Task types.

    /// How many task types are declared, and how many of `names` are not
    /// yet; locked against other declarations until the end of the
    /// transaction.
    async fn count_task_types(&mut self, names: &[String]) -> Result<(usize, usize), Self::Error>;

    /// Declares `names` at `now` (a type declared before keeps the later
    /// time).
    async fn upsert_task_types(&mut self, names: &[String], now: Timestamp) -> Result<(), Self::Error>;

    /// Forgets declared task types; the names forgotten.
    async fn delete_task_types(&mut self, which: &ForgetTaskTypes) -> Result<Vec<String>, Self::Error>;

    /// Rewrites the health row: a write that reaches the disk.
    async fn touch_health(&mut self, now: Timestamp) -> Result<(), Self::Error>;

    // Schedules.

    /// The record (JSON) of the schedule named `name`, locked.
    async fn schedule(&mut self, name: &str) -> Result<Option<String>, Self::Error>;

    /// Inserts a schedule's row, or replaces the one of that name.
    async fn write_schedule(&mut self, row: &ScheduleRow<'_>) -> Result<(), Self::Error>;

    /// Deletes the schedule named `name`; whether there was one.
    async fn delete_schedule(&mut self, name: &str) -> Result<bool, Self::Error>;
}

/// A schedule as its row holds it: the record as JSON, and the columns the
/// scheduler looks it up by.
pub struct ScheduleRow<'a> {
    pub name: &'a str,
    /// When the scheduler looks at it next (`ScheduleState::next_look`).
    pub next_fire: Option<Timestamp>,
    pub paused: bool,
    pub revision: i64,
    pub body: &'a str,
}

/// A task to insert, as the transition placed it.
pub struct NewRow<'a> {
    pub task: &'a Task,
    pub fingerprint: Option<Fingerprint>,
    pub unmet: i64,
    pub queue_key: Option<i64>,
}

/// The leases of one claim, one entry per task.
pub struct LeaseWrites<'a> {
    pub executor: &'a str,
    pub now: Timestamp,
    pub ids: Vec<TaskId>,
    pub attempts: Vec<i64>,
    pub tokens: Vec<i64>,
    pub deadlines: Vec<i64>,
    pub reasons: Vec<String>,
    /// Each new attempt record, as JSON.
    pub records: Vec<String>,
}

/// What the store knows of a task that decides its lease and attempt.
#[derive(Clone, Debug)]
pub struct LeasedTask {
    pub id: TaskId,
    pub status: TaskStatus,
    pub task_type: String,
    pub priority: TaskPriority,
    pub lease_owner: Option<String>,
    pub lease_token: Option<LeaseToken>,
    pub lease_deadline: Option<Timestamp>,
    pub dependent_count: i64,
    pub facts: AttemptFacts,
}

impl LeasedTask {
    /// The lease reference the current holder presents.
    pub fn current_lease(&self) -> Option<LeaseRef> {
        self.lease_token.map(|token| LeaseRef {
            task_id: self.id,
            attempt: self.facts.attempt,
            token,
        })
    }
}

/// A running attempt closed, as the rules decided it; JSON already
/// serialized.
#[derive(Clone, Debug)]
pub struct Close {
    pub id: TaskId,
    pub now: Timestamp,
    pub status: TaskStatus,
    pub retry_count: i64,
    /// Set for a retry: when it is due.
    pub retry_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub reason: String,
    /// The progress of a completed task.
    pub done: Option<String>,
    pub outcome: &'static str,
    /// The machine when the attempt ended.
    pub machine: Option<String>,
    pub queue_key: Option<i64>,
}

/// A dependent as its edge and row describe it.
#[derive(Clone, Debug)]
pub struct Dependent {
    pub id: TaskId,
    pub required_status: TaskStatus,
    pub status: TaskStatus,
    pub unmet: i64,
    /// Its dependencies in all.
    pub total: i64,
    pub run_at: Option<Timestamp>,
    pub priority: TaskPriority,
    pub task_type: String,
    pub dependent_count: i64,
}

/// A WAITING task moved on.
pub struct Placed<'a> {
    pub id: TaskId,
    pub status: TaskStatus,
    pub reason: &'a str,
    pub queue_key: Option<i64>,
    /// Set when it is cancelled.
    pub completed_at: Option<Timestamp>,
    pub error: Option<&'a str>,
    pub now: Timestamp,
}

/// A task cancelled.
pub struct CancelWrite<'a> {
    pub id: TaskId,
    pub now: Timestamp,
    pub error: &'a str,
    pub reason: &'a str,
    /// Whether its running attempt is closed too.
    pub was_running: bool,
    pub outcome: &'static str,
}

/// A SCHEDULED task that is due.
pub struct DueTask {
    pub id: TaskId,
    pub priority: TaskPriority,
    pub run_at: Timestamp,
    pub task_type: String,
}

/// The event of a task leaving RUNNING: what close statements record.
pub const CLOSED: Event = Event {
    kind: crate::model::EventKind::StatusChanged,
    previous: Some(TaskStatus::Running),
};
