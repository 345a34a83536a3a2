//! Claiming: due tasks are promoted, then the best ready tasks of the
//! requested types are leased to the executor, in queue-key order. Rows
//! another node is claiming at the same moment are skipped, not waited for
//! (`FOR UPDATE SKIP LOCKED`): nodes never take the same task and never
//! queue behind each other.

use deadpool_postgres::Transaction;

use crate::model::rules::placement::place_due;
use crate::model::{EventKind, TaskStatus, Timestamp};
use crate::store::columns::{TaskRow, parse_priority, to_json};
use crate::store::decide;
use crate::store::postgres::changes::{Changes, execute, query};
use crate::store::postgres::error::Step;
use crate::store::postgres::row::{COLUMNS, read};
use crate::store::{ClaimRequest, Claimed, ClaimedTask, Promoted, Transition};

/// Most tasks promoted in one step; the rest follow at the next.
const MOST_PROMOTED: i64 = 10_000;

pub async fn apply(tx: &Transaction<'_>, changes: &mut Changes, request: ClaimRequest) -> Step<Claimed> {
    let now = request.now;
    promote_due(tx, changes, now).await?;
    let mut candidates: Vec<(i64, TaskRow)> = Vec::new();
    let sql = format!(
        "SELECT queue_key, attempt_count, {COLUMNS} FROM tasks WHERE status = 1 AND task_type = $1 \
         ORDER BY queue_key, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    );
    let mut attempts_of = std::collections::HashMap::new();
    for (task_type, most) in &request.task_types {
        let most = (*most).min(request.limit);
        if most == 0 {
            continue;
        }
        for row in query(tx, &sql, &[task_type, &(most as i64)]).await? {
            let queue_key: i64 = row.try_get(0)?;
            let attempt_count: i64 = row.try_get(1)?;
            let task = read(&row, 2)?;
            attempts_of.insert(task.id, attempt_count);
            candidates.push((queue_key, task));
        }
    }
    candidates.sort_by_key(|(queue_key, task)| (*queue_key, task.id));
    candidates.truncate(request.limit);
    let mut leases = Leases::default();
    let mut tasks = Vec::with_capacity(candidates.len());
    for (queue_key, row) in candidates {
        let attempt_count = attempts_of.get(&row.id).copied().unwrap_or(0);
        tasks.push(lease(changes, &request, &mut leases, queue_key, attempt_count, row)?);
    }
    if !tasks.is_empty() {
        execute(
            tx,
            LEASE_ALL,
            &[
                &leases.ids,
                &request.executor.as_str(),
                &now.as_micros(),
                &leases.attempts,
                &leases.tokens,
                &leases.deadlines,
                &leases.reasons,
                &leases.records,
            ],
        )
        .await?;
    }
    Ok(Claimed {
        tasks,
        transitions: changes.transitions.clone(),
    })
}

/// Every claimed task's lease, written by one statement.
const LEASE_ALL: &str = "UPDATE tasks AS task SET status = 3, attempt_count = lease.attempt, lease_owner = $2, \
     lease_token = lease.token, lease_deadline = lease.deadline, started_at = $3, progress = NULL, \
     status_reason = lease.reason, attempts = task.attempts || jsonb_build_array(lease.record::jsonb), \
     queue_key = NULL, updated_at = $3, revision = task.revision + 1 \
     FROM unnest($1::uuid[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[]) \
     AS lease(id, attempt, token, deadline, reason, record) WHERE task.id = lease.id";

/// The columns of [`LEASE_ALL`], one entry per claimed task.
#[derive(Default)]
struct Leases {
    ids: Vec<crate::model::TaskId>,
    attempts: Vec<i64>,
    tokens: Vec<i64>,
    deadlines: Vec<i64>,
    reasons: Vec<String>,
    records: Vec<String>,
}

/// Leases one candidate: its columns are added to `leases`, and the task
/// the executor gets is the candidate with the same changes made.
fn lease(
    changes: &mut Changes,
    request: &ClaimRequest,
    leases: &mut Leases,
    queue_key: i64,
    attempt_count: i64,
    row: TaskRow,
) -> Step<ClaimedTask> {
    let leased = decide::lease(row.into_task()?, request, attempt_count, queue_key, &changes.weights);
    let ClaimedTask { lease, task } = &leased.claimed;
    leases.ids.push(task.id);
    leases.attempts.push(i64::from(lease.attempt));
    leases.tokens.push(lease.token.as_i64());
    leases.deadlines.push(lease.deadline.as_micros());
    leases.reasons.push(task.status_reason.clone());
    leases.records.push(to_json(&leased.record));
    changes.transition(leased.transition);
    let claimed = leased.claimed;
    changes.record_task(
        claimed.task.id,
        EventKind::StatusChanged,
        Some(TaskStatus::Pending),
        || claimed.task.clone(),
    );
    Ok(claimed)
}

/// `promote_due`: promotes, then says when the next task is due.
pub async fn promote(tx: &Transaction<'_>, changes: &mut Changes, now: Timestamp) -> Step<Promoted> {
    promote_due(tx, changes, now).await?;
    let next = query(tx, "SELECT MIN(run_at) FROM tasks WHERE status = 2", &[]).await?;
    let next_due: Option<i64> = match next.first() {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    Ok(Promoted {
        transitions: changes.transitions.clone(),
        next_due: next_due.map(Timestamp),
    })
}

const PROMOTE: &str = "UPDATE tasks SET status = 1, queue_key = $2, status_reason = $3, updated_at = $4, \
     revision = revision + 1 WHERE id = $1";

async fn promote_due(tx: &Transaction<'_>, changes: &mut Changes, now: Timestamp) -> Step<()> {
    let due = query(
        tx,
        "SELECT id, priority, run_at, task_type FROM tasks WHERE status = 2 AND run_at <= $1 \
         ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&now.as_micros(), &MOST_PROMOTED],
    )
    .await?;
    for row in due {
        let id: crate::model::TaskId = row.try_get(0)?;
        let priority = parse_priority(row.try_get(1)?)?;
        let run_at: i64 = row.try_get(2)?;
        let task_type: String = row.try_get(3)?;
        let placement = place_due(Timestamp(run_at));
        let queue_key = placement.queue_key(priority, &changes.weights);
        changes
            .update_task(
                tx,
                id,
                PROMOTE,
                &[&id, &queue_key, &placement.reason(), &now.as_micros()],
                EventKind::StatusChanged,
                Some(TaskStatus::Scheduled),
            )
            .await?;
        changes.transition(Transition {
            task_id: id,
            task_type,
            priority,
            from: Some(TaskStatus::Scheduled),
            to: TaskStatus::Pending,
            due: None,
            waited: None,
            closed_attempt: None,
        });
    }
    Ok(())
}
