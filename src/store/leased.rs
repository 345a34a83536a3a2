//! What every backend reads of a task to decide on its lease and attempt,
//! and the one check of a presented lease against it.

use crate::model::rules::attempts::AttemptFacts;
use crate::model::{LeaseLost, LeaseRef, LeaseToken, TaskId, TaskPriority, TaskStatus, Timestamp};
use crate::store::StoreError;

/// What the store knows of a task that decides its lease and attempt.
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

/// Checks that `lease` is the task's live lease at `now`.
pub fn check_lease(task: Option<LeasedTask>, lease: &LeaseRef, now: Timestamp) -> Result<LeasedTask, StoreError> {
    let lost = |reason| StoreError::LeaseLost {
        task_id: lease.task_id,
        reason,
    };
    let Some(task) = task else {
        return Err(lost(LeaseLost::UnknownTask));
    };
    if task.status == TaskStatus::Cancelled {
        return Err(lost(LeaseLost::Cancelled));
    }
    let running = task.status == TaskStatus::Running;
    let forged = lease.attempt > task.facts.attempt
        || (running && lease.attempt == task.facts.attempt && task.lease_token != Some(lease.token));
    if forged {
        return Err(lost(LeaseLost::NotIssued));
    }
    if !running || task.current_lease() != Some(*lease) {
        return Err(lost(LeaseLost::Superseded));
    }
    if task.lease_deadline.is_none_or(|deadline| deadline <= now) {
        return Err(lost(LeaseLost::Expired));
    }
    Ok(task)
}
