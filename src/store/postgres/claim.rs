//! Claiming: due tasks are promoted, then the best ready tasks of the
//! requested types are leased to the executor, in queue-key order. Rows
//! another node is claiming at the same moment are skipped, not waited for
//! (`FOR UPDATE SKIP LOCKED`): nodes never take the same task and never
//! queue behind each other.

use deadpool_postgres::Transaction;

use crate::model::rules::attempts::{lease_deadline, running_reason};
use crate::model::rules::placement::place_due;
use crate::model::{Attempt, AttemptOutcome, EventKind, Lease, LeaseToken, TaskStatus, Timestamp};
use crate::store::columns::{TaskRow, parse_priority, to_json};
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
    let mut tasks = Vec::with_capacity(candidates.len());
    for (queue_key, row) in candidates {
        let attempt_count = attempts_of.get(&row.id).copied().unwrap_or(0);
        tasks.push(lease(tx, changes, &request, queue_key, attempt_count, row, now).await?);
    }
    Ok(Claimed {
        tasks,
        transitions: changes.transitions.clone(),
    })
}

const LEASE: &str = "UPDATE tasks SET status = 3, attempt_count = $2, lease_owner = $3, lease_token = $4, \
     lease_deadline = $5, started_at = $6, progress = NULL, status_reason = $7, \
     attempts = attempts || jsonb_build_array($8::text::jsonb), queue_key = NULL, updated_at = $6, \
     revision = revision + 1 WHERE id = $1";

async fn lease(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    request: &ClaimRequest,
    queue_key: i64,
    attempt_count: i64,
    row: TaskRow,
    now: Timestamp,
) -> Step<ClaimedTask> {
    let mut task = row.into_task()?;
    let attempt = u32::try_from(attempt_count).unwrap_or(0) + 1;
    let token = LeaseToken::from_random(rand::random());
    let deadline = lease_deadline(now, request.lease_duration, now, task.timeout);
    let record = Attempt {
        number: attempt,
        started_at: now,
        finished_at: None,
        outcome: AttemptOutcome::Running,
        error: None,
        worker: request.executor.to_string(),
        started_under: request.machine,
        finished_under: None,
    };
    let reason = running_reason(attempt);
    execute(
        tx,
        LEASE,
        &[
            &task.id,
            &i64::from(attempt),
            &request.executor.as_str(),
            &token.as_i64(),
            &deadline.as_micros(),
            &now.as_micros(),
            &reason,
            &to_json(&record),
        ],
    )
    .await?;
    task.status = TaskStatus::Running;
    task.started_at = Some(now);
    task.progress = None;
    task.status_reason = reason;
    task.attempts.push(record);
    task.updated_at = now;
    task.revision += 1;
    let ready_since = Timestamp(queue_key).saturating_add(changes.weights.boost(task.priority));
    changes.transition(Transition {
        task_id: task.id,
        task_type: task.task_type.clone(),
        priority: task.priority,
        from: Some(TaskStatus::Pending),
        to: TaskStatus::Running,
        due: None,
        waited: Some(now.duration_since(ready_since)),
        closed_attempt: None,
    });
    changes.record_task(task.id, EventKind::StatusChanged, Some(TaskStatus::Pending), || {
        task.clone()
    });
    Ok(ClaimedTask {
        lease: Lease {
            task_id: task.id,
            attempt,
            token,
            executor: request.executor.clone(),
            deadline,
        },
        task,
    })
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
