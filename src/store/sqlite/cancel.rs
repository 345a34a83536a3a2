//! Cancelling: a task that has not ended ends CANCELLED at once, with its
//! lease revoked if it was running, and its dependents that can no longer
//! run follow it in the same step.

use rusqlite::params;

use crate::model::rules::cancel::{CancelDecision, cancelled_error, cancelled_reason, decide_cancel};
use crate::model::{AttemptOutcome, EventKind, ExecutorId, TaskId, TaskStatus, Timestamp};
use crate::store::sqlite::attempt;
use crate::store::sqlite::cascade;
use crate::store::sqlite::row::read_row;
use crate::store::sqlite::writer::Batch;
use crate::store::{Cancelled, StoreError, StoreResult, Transition};

const CANCEL: &str = "UPDATE tasks SET status = 6, completed_at = ?2, error = ?3, status_reason = ?4, \
     attempts = CASE WHEN ?5 THEN json_set(attempts, '$[#-1].finished_at', ?2, \
     '$[#-1].outcome', ?6) ELSE attempts END, \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = NULL, \
     updated_at = ?2, revision = revision + 1 WHERE id = ?1";

pub fn apply(batch: &mut Batch<'_>, id: TaskId, reason: String, now: Timestamp) -> StoreResult<Cancelled> {
    let start = batch.transitions.len();
    let task = attempt::load(batch, id)?.ok_or(StoreError::NotFound(id))?;
    let was_running = match decide_cancel(task.status) {
        CancelDecision::AlreadyFinished(status) => {
            return Err(StoreError::AlreadyFinished { task_id: id, status });
        }
        CancelDecision::CancelNow { was_running } => was_running,
    };
    batch.connection.prepare_cached(CANCEL)?.execute(params![
        id,
        now.as_micros(),
        cancelled_error(&reason),
        cancelled_reason(&reason, was_running),
        was_running,
        AttemptOutcome::Cancelled.as_str(),
    ])?;
    let row = read_row(batch.connection, id)?.ok_or(StoreError::NotFound(id))?;
    tracing::info!(task_id = %id, %reason, was_running, "task cancelled");
    let revoked = if was_running {
        task.current_lease()
            .map(|lease| (ExecutorId::new(task.lease_owner.clone().unwrap_or_default()), lease))
    } else {
        None
    };
    batch.transition(Transition {
        task_id: id,
        task_type: task.task_type.clone(),
        priority: task.priority,
        from: Some(task.status),
        to: TaskStatus::Cancelled,
        due: None,
        waited: None,
        closed_attempt: was_running.then(|| (AttemptOutcome::Cancelled, now.duration_since(task.facts.started_at))),
    });
    let previous = task.status;
    let cancelled = row.clone().into_task()?;
    batch.record_row(EventKind::StatusChanged, Some(previous), || row);
    if task.dependent_count > 0 {
        cascade::dependency_ended(batch, id, TaskStatus::Cancelled, now)?;
    }
    Ok(Cancelled {
        task: cancelled,
        revoked,
        transitions: batch.transitions_since(start),
    })
}
