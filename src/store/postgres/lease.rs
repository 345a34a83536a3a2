//! What a lease holder does while it runs: renew the lease, report
//! progress; and taking leases back from executors that are gone.

use deadpool_postgres::Transaction;

use crate::model::rules::attempts::{AttemptEnd, end_of_expired_lease, lease_deadline};
use crate::model::{EventKind, LeaseRef, Progress, TaskId, TaskStatus, Timestamp};
use crate::store::columns::to_json;
use crate::store::leased::check_lease;
use crate::store::postgres::attempt::{close, load};
use crate::store::postgres::changes::{Changes, execute, query};
use crate::store::postgres::error::{Failure, Step};
use crate::store::{RenewRequest, Renewed, RescueScope, Rescued, StoreError};

pub async fn renew(tx: &Transaction<'_>, request: RenewRequest) -> Step<Renewed> {
    let mut renewed = Vec::with_capacity(request.leases.len());
    for lease in &request.leases {
        let task = match check_lease(load(tx, lease.task_id).await?, lease, request.now) {
            Ok(task) => task,
            Err(StoreError::LeaseLost { reason, .. }) => {
                renewed.push(Err(reason));
                continue;
            }
            Err(error) => return Err(Failure::Refused(error)),
        };
        let deadline = lease_deadline(
            request.now,
            request.lease_duration,
            task.facts.started_at,
            task.facts.timeout,
        );
        execute(
            tx,
            "UPDATE tasks SET lease_deadline = $2 WHERE id = $1",
            &[&lease.task_id, &deadline.as_micros()],
        )
        .await?;
        renewed.push(Ok(deadline));
    }
    Ok(renewed)
}

const PROGRESS: &str = "UPDATE tasks SET progress = $2, updated_at = $3, revision = revision + 1 WHERE id = $1";

pub async fn record_progress(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    lease: LeaseRef,
    progress: Progress,
    now: Timestamp,
) -> Step<()> {
    check_lease(load(tx, lease.task_id).await?, &lease, now)?;
    changes
        .update_task(
            tx,
            lease.task_id,
            PROGRESS,
            &[&lease.task_id, &to_json(&progress), &now.as_micros()],
            EventKind::Progress,
            Some(TaskStatus::Running),
        )
        .await
}

/// Takes leases back; rows another node is rescuing are skipped.
pub async fn rescue(tx: &Transaction<'_>, changes: &mut Changes, scope: RescueScope, now: Timestamp) -> Step<Rescued> {
    let rows = match &scope {
        RescueScope::Expired => {
            query(
                tx,
                "SELECT id FROM tasks WHERE status = 3 AND lease_deadline <= $1 FOR UPDATE SKIP LOCKED",
                &[&now.as_micros()],
            )
            .await?
        }
        RescueScope::HeldBy(executor, _) => {
            query(
                tx,
                "SELECT id FROM tasks WHERE status = 3 AND lease_owner = $1 FOR UPDATE SKIP LOCKED",
                &[&executor.as_str()],
            )
            .await?
        }
    };
    let mut tasks = Vec::with_capacity(rows.len());
    for row in rows {
        let id: TaskId = row.try_get(0)?;
        let Some(task) = load(tx, id).await? else {
            continue;
        };
        let end = match &scope {
            RescueScope::Expired => end_of_expired_lease(&task.facts, now),
            RescueScope::HeldBy(_, why) => AttemptEnd::Interrupted { why: why.clone() },
        };
        let outcome = end.outcome();
        tracing::info!(task_id = %id, outcome = outcome.as_str(), "lease taken back");
        close(tx, changes, task, end, None, now).await?;
        tasks.push((id, outcome));
    }
    Ok(Rescued {
        tasks,
        transitions: changes.transitions.clone(),
    })
}
