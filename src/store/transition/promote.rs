//! SCHEDULED tasks whose time has come become PENDING.

use crate::model::rules::placement::place_due;
use crate::model::{TaskStatus, Timestamp};
use crate::store::driver::Tx;
use crate::store::{Promoted, Transition};

/// Most tasks promoted in one step, so one step stays short; the rest
/// follow at the next.
const MOST_PER_STEP: i64 = 10_000;

/// `promote_due`: promotes, then says when the next task is due.
pub async fn promote<T: Tx>(tx: &mut T, now: Timestamp) -> Result<Promoted, T::Error> {
    let start = tx.changes().transitions.len();
    promote_due(tx, now).await?;
    Ok(Promoted {
        transitions: tx.changes().transitions_since(start),
        next_due: tx.next_due().await?,
    })
}

pub async fn promote_due<T: Tx>(tx: &mut T, now: Timestamp) -> Result<(), T::Error> {
    let weights = tx.weights();
    for due in tx.due(now, MOST_PER_STEP).await? {
        let placement = place_due(due.run_at);
        let queue_key = placement.queue_key(due.priority, &weights);
        tx.promote(due.id, queue_key, &placement.reason(), now).await?;
        tx.changes().transition(Transition {
            task_id: due.id,
            task_type: due.task_type,
            priority: due.priority,
            from: Some(TaskStatus::Scheduled),
            to: TaskStatus::Pending,
            due: None,
            waited: None,
            closed_attempt: None,
        });
    }
    Ok(())
}
