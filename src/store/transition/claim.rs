//! Claiming: due tasks are promoted, then the best ready tasks of the
//! requested types are leased to the executor, in queue-key order. Ready
//! rows another transaction is claiming are skipped, not waited for: two
//! claims never take the same task and never queue behind each other.

use crate::model::TaskStatus;
use crate::store::changes::Event;
use crate::store::columns::to_json;
use crate::store::decide;
use crate::store::driver::{LeaseWrites, Tx};
use crate::store::transition::promote::promote_due;
use crate::store::{ClaimRequest, Claimed, ClaimedTask};

pub async fn claim<T: Tx>(tx: &mut T, request: ClaimRequest) -> Result<Claimed, T::Error> {
    let start = tx.changes().transitions.len();
    let now = request.now;
    promote_due(tx, now).await?;

    let mut candidates = Vec::new();
    for (task_type, most) in &request.task_types {
        let most = (*most).min(request.limit);
        if most == 0 || !tx.may_have_ready(task_type) {
            continue;
        }
        candidates.extend(tx.ready(task_type, most).await?);
    }
    candidates.sort_unstable();
    candidates.truncate(request.limit);

    let weights = tx.weights();
    let mut writes = LeaseWrites {
        executor: request.executor.as_str(),
        now,
        ids: Vec::with_capacity(candidates.len()),
        attempts: Vec::with_capacity(candidates.len()),
        tokens: Vec::with_capacity(candidates.len()),
        deadlines: Vec::with_capacity(candidates.len()),
        reasons: Vec::with_capacity(candidates.len()),
        records: Vec::with_capacity(candidates.len()),
    };
    let mut tasks = Vec::with_capacity(candidates.len());
    for (queue_key, id) in candidates {
        let (attempt_count, row) = tx.claimable(id).await?;
        let leased = decide::lease(row.into_task()?, &request, attempt_count, queue_key, &weights);
        let ClaimedTask { lease, task } = &leased.claimed;
        writes.ids.push(task.id);
        writes.attempts.push(i64::from(lease.attempt));
        writes.tokens.push(lease.token.as_i64());
        writes.deadlines.push(lease.deadline.as_micros());
        writes.reasons.push(task.status_reason.clone());
        writes.records.push(to_json(&leased.record));
        let changes = tx.changes();
        changes.transition(leased.transition);
        let claimed = leased.claimed;
        changes.record_task(claimed.task.id, Event::status_changed(TaskStatus::Pending), || {
            claimed.task.clone()
        });
        tasks.push(claimed);
    }
    if !tasks.is_empty() {
        tx.write_leases(&writes).await?;
    }
    Ok(Claimed {
        tasks,
        transitions: tx.changes().transitions_since(start),
    })
}
