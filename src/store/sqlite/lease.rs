//! What a lease holder does while it runs: renew the lease, report progress.

use rusqlite::params;

use crate::model::rules::attempts::lease_deadline;
use crate::model::{EventKind, LeaseRef, Progress, TaskStatus, Timestamp};
use crate::store::sqlite::attempt::{self, check_lease};
use crate::store::sqlite::row::to_json;
use crate::store::sqlite::writer::Batch;
use crate::store::{RenewRequest, Renewed, StoreError, StoreResult};

pub fn renew(batch: &mut Batch<'_>, request: RenewRequest) -> StoreResult<Renewed> {
    let mut renewed = Vec::with_capacity(request.leases.len());
    for lease in &request.leases {
        let task = match check_lease(attempt::load(batch, lease.task_id)?, lease, request.now) {
            Ok(task) => task,
            Err(StoreError::LeaseLost { reason, .. }) => {
                renewed.push(Err(reason));
                continue;
            }
            Err(error) => return Err(error),
        };
        let deadline = lease_deadline(
            request.now,
            request.lease_duration,
            task.facts.started_at,
            task.facts.timeout,
        );
        batch
            .connection
            .prepare_cached("UPDATE tasks SET lease_deadline = ?2 WHERE id = ?1")?
            .execute(params![lease.task_id, deadline.as_micros()])?;
        renewed.push(Ok(deadline));
    }
    Ok(renewed)
}

const PROGRESS: &str = "UPDATE tasks SET progress = ?2, updated_at = ?3, revision = revision + 1 WHERE id = ?1";

pub fn record_progress(batch: &mut Batch<'_>, lease: LeaseRef, progress: Progress, now: Timestamp) -> StoreResult<()> {
    check_lease(attempt::load(batch, lease.task_id)?, &lease, now)?;
    batch.update_task(
        PROGRESS,
        params![lease.task_id, to_json(&progress), now.as_micros()],
        lease.task_id,
        EventKind::Progress,
        Some(TaskStatus::Running),
    )
}
