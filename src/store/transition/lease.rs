//! What a lease holder does while it runs: renew the lease, report
//! progress; and the one check of a presented lease.

use crate::model::rules::attempts::lease_deadline;
use crate::model::{LeaseLost, LeaseRef, Progress, TaskId, TaskStatus, Timestamp};
use crate::store::columns::to_json;
use crate::store::driver::{LeasedTask, Tx};
use crate::store::{RenewRequest, Renewed, StoreError};

pub async fn renew<T: Tx>(tx: &mut T, request: RenewRequest) -> Result<Renewed, T::Error> {
    let mut ids: Vec<TaskId> = request.leases.iter().map(|lease| lease.task_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut leased = tx.leased(&ids).await?;
    let mut renewed = Vec::with_capacity(request.leases.len());
    for lease in &request.leases {
        let found = leased.iter().find(|task| task.id == lease.task_id).cloned();
        let task = match check_lease(found, lease, request.now) {
            Ok(task) => task,
            Err(StoreError::LeaseLost { reason, .. }) => {
                renewed.push(Err(reason));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let deadline = lease_deadline(
            request.now,
            request.lease_duration,
            task.facts.started_at,
            task.facts.timeout,
        );
        tx.set_lease_deadline(lease.task_id, deadline).await?;
        if let Some(held) = leased.iter_mut().find(|held| held.id == lease.task_id) {
            held.lease_deadline = Some(deadline);
        }
        renewed.push(Ok(deadline));
    }
    Ok(renewed)
}

pub async fn record_progress<T: Tx>(
    tx: &mut T,
    lease: LeaseRef,
    progress: Progress,
    now: Timestamp,
) -> Result<(), T::Error> {
    check_lease(leased_one(tx, lease.task_id).await?, &lease, now)?;
    tx.set_progress(lease.task_id, &to_json(&progress), now).await
}

/// What decides the lease and attempt of task `id`, its row locked.
pub async fn leased_one<T: Tx>(tx: &mut T, id: TaskId) -> Result<Option<LeasedTask>, T::Error> {
    Ok(tx.leased(&[id]).await?.pop())
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
