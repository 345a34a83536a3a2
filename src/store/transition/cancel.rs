//! Cancelling: a task that has not ended ends CANCELLED at once, with its
//! lease revoked if it was running, and its dependents that can no longer
//! run follow it in the same step.

use crate::model::rules::cancel::{CancelDecision, cancelled_error, cancelled_reason, decide_cancel};
use crate::model::{AttemptOutcome, ExecutorId, TaskId, TaskStatus, Timestamp};
use crate::store::changes::Event;
use crate::store::driver::{CancelWrite, Tx};
use crate::store::transition::cascade::dependency_ended;
use crate::store::transition::lease::leased_one;
use crate::store::{Cancelled, StoreError, Transition};

pub async fn cancel<T: Tx>(tx: &mut T, id: TaskId, reason: String, now: Timestamp) -> Result<Cancelled, T::Error> {
    let start = tx.changes().transitions.len();
    let task = leased_one(tx, id).await?.ok_or(StoreError::NotFound(id))?;
    let was_running = match decide_cancel(task.status) {
        CancelDecision::AlreadyFinished(status) => {
            return Err(StoreError::AlreadyFinished { task_id: id, status }.into());
        }
        CancelDecision::CancelNow { was_running } => was_running,
    };
    let row = tx
        .cancel(&CancelWrite {
            id,
            now,
            error: &cancelled_error(&reason),
            reason: &cancelled_reason(&reason, was_running),
            was_running,
            outcome: AttemptOutcome::Cancelled.as_str(),
        })
        .await?
        .ok_or(StoreError::NotFound(id))?;
    tracing::info!(task_id = %id, %reason, was_running, "task cancelled");
    let revoked = if was_running {
        task.current_lease()
            .map(|lease| (ExecutorId::new(task.lease_owner.clone().unwrap_or_default()), lease))
    } else {
        None
    };
    let cancelled = row.clone().into_task()?;
    let changes = tx.changes();
    changes.transition(Transition {
        task_id: id,
        task_type: task.task_type.clone(),
        priority: task.priority,
        from: Some(task.status),
        to: TaskStatus::Cancelled,
        due: None,
        waited: None,
        closed_attempt: was_running.then(|| (AttemptOutcome::Cancelled, now.duration_since(task.facts.started_at))),
    });
    changes.record_row(id, Event::status_changed(task.status), || row);
    if task.dependent_count > 0 {
        dependency_ended(tx, id, TaskStatus::Cancelled, now).await?;
    }
    Ok(Cancelled {
        task: cancelled,
        revoked,
        transitions: tx.changes().transitions_since(start),
    })
}
