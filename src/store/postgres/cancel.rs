//! Cancelling: a task that has not ended ends CANCELLED at once, with its
//! lease revoked if it was running, and its dependents that can no longer
//! run follow it in the same transaction.

use deadpool_postgres::Transaction;

use crate::model::rules::cancel::{CancelDecision, cancelled_error, cancelled_reason, decide_cancel};
use crate::model::{AttemptOutcome, EventKind, ExecutorId, TaskId, TaskStatus, Timestamp};
use crate::store::postgres::attempt::{dependency_ended, load};
use crate::store::postgres::changes::{Changes, query_opt};
use crate::store::postgres::error::Step;
use crate::store::postgres::row::{COLUMNS, read};
use crate::store::{Cancelled, StoreError, Transition};

pub async fn apply(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    id: TaskId,
    reason: String,
    now: Timestamp,
) -> Step<Cancelled> {
    let task = load(tx, id).await?.ok_or(StoreError::NotFound(id))?;
    let was_running = match decide_cancel(task.status) {
        CancelDecision::AlreadyFinished(status) => {
            return Err(StoreError::AlreadyFinished { task_id: id, status }.into());
        }
        CancelDecision::CancelNow { was_running } => was_running,
    };
    let sql = format!(
        "UPDATE tasks SET status = 6, completed_at = $2, error = $3, status_reason = $4, \
         attempts = CASE WHEN $5 THEN (attempts - -1) || jsonb_build_array((attempts -> -1) \
         || jsonb_build_object('finished_at', $2::bigint, 'outcome', $6::text)) ELSE attempts END, \
         lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = NULL, \
         updated_at = $2, revision = revision + 1 WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = query_opt(
        tx,
        &sql,
        &[
            &id,
            &now.as_micros(),
            &cancelled_error(&reason),
            &cancelled_reason(&reason, was_running),
            &was_running,
            &AttemptOutcome::Cancelled.as_str(),
        ],
    )
    .await?
    .ok_or(StoreError::NotFound(id))?;
    let row = read(&row, 0)?;
    tracing::info!(task_id = %id, %reason, was_running, "task cancelled");
    let revoked = if was_running {
        task.current_lease()
            .map(|lease| (ExecutorId::new(task.lease_owner.clone().unwrap_or_default()), lease))
    } else {
        None
    };
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
    let cancelled = row.clone().into_task()?;
    changes.record_row(id, EventKind::StatusChanged, Some(task.status), || row);
    if task.dependent_count > 0 {
        dependency_ended(tx, changes, id, TaskStatus::Cancelled, now).await?;
    }
    Ok(Cancelled {
        task: cancelled,
        revoked,
        transitions: changes.transitions.clone(),
    })
}
