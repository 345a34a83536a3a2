//! What a task's end does to the tasks that depend on it: each WAITING
//! dependent counts one more dependency met (and is placed once none is
//! left) or is cancelled, and so on down the graph, in the same step as the
//! end itself.

use std::collections::VecDeque;

use crate::model::rules::placement::Placement;
use crate::model::{TaskId, TaskStatus, Timestamp};
use crate::store::Transition;
use crate::store::decide::{DependentMove, dependent_move};
use crate::store::driver::{Dependent, Placed, Tx};

/// Resolves the dependents of `ended`, which just reached `status`.
pub async fn dependency_ended<T: Tx>(
    tx: &mut T,
    ended: TaskId,
    status: TaskStatus,
    now: Timestamp,
) -> Result<(), T::Error> {
    let mut work = VecDeque::from([(ended, status)]);
    while let Some((dependency, status)) = work.pop_front() {
        for dependent in tx.dependents(dependency).await? {
            if dependent.status != TaskStatus::Waiting {
                continue;
            }
            let movement = dependent_move(
                (dependency, status),
                dependent.required_status,
                (dependent.unmet, dependent.total),
                dependent.run_at,
                now,
            );
            match movement {
                None => {}
                Some(DependentMove::OneLess { unmet, reason }) => {
                    tx.count_dependency_met(dependent.id, unmet, &reason, now).await?;
                }
                Some(DependentMove::Place(placement)) => {
                    let cancelled = placement.status() == TaskStatus::Cancelled;
                    place(tx, &dependent, placement, now).await?;
                    if cancelled && dependent.dependent_count > 0 {
                        work.push_back((dependent.id, TaskStatus::Cancelled));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Moves a WAITING dependent to `placement`.
async fn place<T: Tx>(tx: &mut T, dependent: &Dependent, placement: Placement, now: Timestamp) -> Result<(), T::Error> {
    let status = placement.status();
    let cancelled = status == TaskStatus::Cancelled;
    let reason = placement.reason();
    let weights = tx.weights();
    tx.place_waiting(&Placed {
        id: dependent.id,
        status,
        reason: &reason,
        queue_key: placement.queue_key(dependent.priority, &weights),
        completed_at: cancelled.then_some(now),
        error: cancelled.then_some(reason.as_str()),
        now,
    })
    .await?;
    if cancelled {
        tracing::info!(task_id = %dependent.id, %reason, "dependent task cancelled");
    }
    tx.changes().transition(Transition {
        task_id: dependent.id,
        task_type: dependent.task_type.clone(),
        priority: dependent.priority,
        from: Some(TaskStatus::Waiting),
        to: status,
        due: placement.due(),
        waited: None,
        closed_attempt: None,
    });
    Ok(())
}
