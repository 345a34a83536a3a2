//! Claiming: due tasks are promoted, then the best ready tasks of the
//! requested types are leased to the executor, in queue-key order.

use rusqlite::params;

use crate::model::{EventKind, TaskId, TaskStatus, Timestamp};
use crate::store::decide;
use crate::store::sqlite::promote;
use crate::store::sqlite::row::{COLUMNS, TaskRow, to_json};
use crate::store::sqlite::writer::Batch;
use crate::store::{ClaimRequest, Claimed, ClaimedTask, StoreResult};

/// A ready task that may be claimed.
struct Candidate {
    queue_key: i64,
    id: TaskId,
}

/// Ready tasks of one type, best first. Only what the index holds: a
/// query that reads whole rows costs several times more, even when it
/// finds none (the common case for most types of most claims).
const CANDIDATES: &str =
    "SELECT queue_key, id FROM tasks WHERE status = 1 AND task_type = ?1 ORDER BY queue_key, id LIMIT ?2";

/// The claimed task's row and what the lease needs.
static LEASED_ROW: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT attempt_count, {COLUMNS} FROM tasks WHERE id = ?1"));

pub fn apply(batch: &mut Batch<'_>, request: ClaimRequest) -> StoreResult<Claimed> {
    let start = batch.transitions.len();
    let now = request.now;
    promote::promote_due(batch, now)?;

    let mut candidates: Vec<Candidate> = Vec::new();
    for (task_type, most) in &request.task_types {
        let most = (*most).min(request.limit);
        if most == 0 || !may_have_ready(batch, task_type) {
            continue;
        }
        let mut statement = batch.connection.prepare_cached(CANDIDATES)?;
        let rows = statement.query_map(params![task_type, most as i64], |row| {
            Ok(Candidate {
                queue_key: row.get(0)?,
                id: row.get(1)?,
            })
        })?;
        for row in rows {
            candidates.push(row?);
        }
    }
    candidates.sort_by_key(|candidate| (candidate.queue_key, candidate.id));
    candidates.truncate(request.limit);

    let mut tasks = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        tasks.push(lease(batch, &request, candidate, now)?);
    }
    Ok(Claimed {
        tasks,
        transitions: batch.transitions_since(start),
    })
}

/// Whether `task_type` may have PENDING tasks: it had some at the last
/// commit, or this transaction made some.
fn may_have_ready(batch: &Batch<'_>, task_type: &str) -> bool {
    batch.shared.counts.lock().of(task_type, TaskStatus::Pending) > 0
        || batch
            .transitions
            .iter()
            .any(|transition| transition.to == TaskStatus::Pending && transition.task_type == task_type)
}

const LEASE: &str = "UPDATE tasks SET status = 3, attempt_count = ?2, lease_owner = ?3, lease_token = ?4, \
     lease_deadline = ?5, started_at = ?6, progress = NULL, status_reason = ?7, \
     attempts = json_insert(attempts, '$[#]', json(?8)), queue_key = NULL, updated_at = ?6, \
     revision = revision + 1 WHERE id = ?1 AND status = 1";

/// Leases one candidate: the row is updated, and the task the executor
/// gets is the candidate with the same changes made.
fn lease(
    batch: &mut Batch<'_>,
    request: &ClaimRequest,
    candidate: Candidate,
    now: Timestamp,
) -> StoreResult<ClaimedTask> {
    let Candidate { queue_key, id } = candidate;
    let (attempt_count, row) = batch
        .connection
        .prepare_cached(LEASED_ROW.as_str())?
        .query_row(params![id], |row| Ok((row.get::<_, i64>(0)?, TaskRow::read(row, 1)?)))?;
    let leased = decide::lease(row.into_task()?, request, attempt_count, queue_key, &batch.weights);
    let ClaimedTask { lease, task } = &leased.claimed;
    batch.connection.prepare_cached(LEASE)?.execute(params![
        task.id,
        i64::from(lease.attempt),
        request.executor.as_str(),
        lease.token.as_i64(),
        lease.deadline.as_micros(),
        now.as_micros(),
        task.status_reason,
        to_json(&leased.record),
    ])?;
    batch.transition(leased.transition);
    let claimed = leased.claimed;
    batch.record_task(EventKind::StatusChanged, Some(TaskStatus::Pending), || {
        claimed.task.clone()
    });
    Ok(claimed)
}
