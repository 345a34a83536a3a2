//! The arguments and answers of the [`Store`](crate::store::Store)
//! operations.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::rules::attempts::AttemptEnd;
use crate::model::{
    AttemptOutcome, ExecutorId, Fingerprint, LeaseLost, LeaseRef, MachineState, Params, RetryPolicy, Task, TaskFilter,
    TaskId, TaskPriority, TaskStatus, Timestamp,
};
pub use crate::model::{ClaimedTask, StatusCount};

/// A task to create: every field the engine decided, but not its status,
/// which the store decides from its dependencies inside the operation.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskDraft {
    /// The task's place in the client's request, for errors.
    pub position: usize,
    pub id: TaskId,
    pub name: String,
    pub task_type: String,
    pub params: Params,
    pub priority: TaskPriority,
    pub dependencies: Vec<DraftDependency>,
    pub max_retries: u32,
    pub timeout: Duration,
    pub run_at: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
    /// Set with an idempotency key: what a repeat must match.
    pub fingerprint: Option<Fingerprint>,
    pub retry_policy: RetryPolicy,
}

/// What a drafted task depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DraftTarget {
    /// A task that exists already.
    Task(TaskId),
    /// An earlier draft of the same batch, by its index in `drafts`.
    Draft(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DraftDependency {
    pub target: DraftTarget,
    pub required_status: TaskStatus,
}

/// Tasks to create in one atomic step. Drafts come in dependency order: a
/// [`DraftTarget::Draft`] always names an earlier draft.
#[derive(Clone, Debug, PartialEq)]
pub struct SubmitBatch {
    pub drafts: Vec<TaskDraft>,
    pub now: Timestamp,
}

/// What became of one draft.
#[derive(Clone, Debug, PartialEq)]
pub enum SubmitOutcome {
    Created(Task),
    /// Its idempotency key was used before, for the same request: this is
    /// the task that request created.
    Existing(Task),
}

impl SubmitOutcome {
    pub fn task(&self) -> &Task {
        match self {
            SubmitOutcome::Created(task) | SubmitOutcome::Existing(task) => task,
        }
    }

    pub fn into_task(self) -> Task {
        match self {
            SubmitOutcome::Created(task) | SubmitOutcome::Existing(task) => task,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Submitted {
    /// One outcome per draft, in draft order.
    pub outcomes: Vec<SubmitOutcome>,
    pub transitions: Vec<Transition>,
}

/// A request for ready tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimRequest {
    pub executor: ExecutorId,
    /// The task types the executor takes, each with the most tasks of that
    /// type it takes in this claim.
    pub task_types: Vec<(String, usize)>,
    /// The most tasks to claim in all.
    pub limit: usize,
    pub lease_duration: Duration,
    /// The machine as the claimer sees it, recorded on each attempt.
    pub machine: Option<MachineState>,
    pub now: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// In claim order: the scheduler's order.
    pub tasks: Vec<ClaimedTask>,
    pub transitions: Vec<Transition>,
}

/// Leases to extend by `lease_duration` from `now`.
#[derive(Clone, Debug, PartialEq)]
pub struct RenewRequest {
    pub leases: Vec<LeaseRef>,
    pub lease_duration: Duration,
    pub now: Timestamp,
}

/// The new deadline of each lease, or why it is lost.
pub type Renewed = Vec<Result<Timestamp, LeaseLost>>;

/// An executor's report of how an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptReport {
    pub lease: LeaseRef,
    pub end: AttemptEnd,
    /// The machine when the attempt ended.
    pub machine: Option<MachineState>,
    pub now: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// The task's status after the attempt: COMPLETED, FAILED, or SCHEDULED
    /// / PENDING for a retry.
    pub status: TaskStatus,
    pub transitions: Vec<Transition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cancelled {
    /// The task, now CANCELLED.
    pub task: Task,
    /// Who held the task's lease, if it was running: it must be told.
    pub revoked: Option<(ExecutorId, LeaseRef)>,
    pub transitions: Vec<Transition>,
}

/// Which running tasks to take back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RescueScope {
    /// Those whose lease deadline has passed.
    Expired,
    /// Every lease this executor holds: it is gone (stopped, disconnected,
    /// or a previous run of this server).
    HeldBy(ExecutorId, String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rescued {
    /// Each task taken back and how its attempt was closed.
    pub tasks: Vec<(TaskId, AttemptOutcome)>,
    pub transitions: Vec<Transition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Promoted {
    pub transitions: Vec<Transition>,
    /// When the next SCHEDULED task becomes due.
    pub next_due: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Purged {
    /// What was deleted, by type and status.
    pub counts: Vec<StatusCount>,
    /// Whether more tasks older than the cutoff remain (the limit was hit).
    pub more: bool,
}

/// A status change the store made, for the engine's counters and wake-ups.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub task_id: TaskId,
    pub task_type: String,
    pub priority: TaskPriority,
    /// `None` for a task just created.
    pub from: Option<TaskStatus>,
    pub to: TaskStatus,
    /// Entering SCHEDULED: when the task becomes due.
    pub due: Option<Timestamp>,
    /// Entering RUNNING: how long the task had been ready.
    pub waited: Option<Duration>,
    /// Leaving RUNNING: how the attempt ended and how long it ran.
    pub closed_attempt: Option<(AttemptOutcome, Duration)>,
}

/// A page request for [`Store::list`](crate::store::Store::list): tasks
/// matching `filter`, newest first, strictly older than `before_id` when
/// set.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub filter: TaskFilter,
    pub before_id: Option<TaskId>,
    pub limit: usize,
}
