//! Ending attempts: the one path for an executor's report and for a lease
//! taken back by a rescue. Checks the lease, applies the verdict of the
//! rules, and resolves dependents in the same step.

use rusqlite::{OptionalExtension, params};

use crate::model::rules::attempts::{AttemptEnd, AttemptFacts, completed_progress, end_attempt};
use crate::model::{EventKind, LeaseToken, MachineState, TaskId, TaskStatus, Timestamp};
use crate::store::sqlite::cascade;
use crate::store::sqlite::row::{duration, parse_priority, parse_status, read_retry_policy, to_json};
use crate::store::sqlite::writer::Batch;
use crate::store::{AttemptReport, Finished, StoreResult, Transition};

pub use crate::store::leased::{LeasedTask, check_lease};

/// The lease-deciding facts of task `id`.
pub fn load(batch: &Batch<'_>, id: TaskId) -> StoreResult<Option<LeasedTask>> {
    let row = batch
        .connection
        .prepare_cached(
            "SELECT status, task_type, priority, attempt_count, lease_owner, lease_token, lease_deadline, \
             dependent_count, retry_count, max_retries, timeout_us, started_at, backoff_initial_us, \
             backoff_multiplier, backoff_max_us, backoff_jitter FROM tasks WHERE id = ?1",
        )?
        .query_row(params![id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<i64>>(5)?,
                row.get::<_, Option<i64>>(6)?,
                row.get::<_, i64>(7)?,
                row.get::<_, i64>(8)?,
                row.get::<_, i64>(9)?,
                row.get::<_, i64>(10)?,
                row.get::<_, Option<i64>>(11)?,
                read_retry_policy(row, 12)?,
            ))
        })
        .optional()?;
    let Some((
        status,
        task_type,
        priority,
        attempt_count,
        lease_owner,
        lease_token,
        lease_deadline,
        dependent_count,
        retry_count,
        max_retries,
        timeout_us,
        started_at,
        retry_policy,
    )) = row
    else {
        return Ok(None);
    };
    Ok(Some(LeasedTask {
        id,
        status: parse_status(status)?,
        task_type,
        priority: parse_priority(priority)?,
        lease_owner,
        lease_token: lease_token.map(LeaseToken::from_i64),
        lease_deadline: lease_deadline.map(Timestamp),
        dependent_count,
        facts: AttemptFacts {
            attempt: u32::try_from(attempt_count).unwrap_or(0),
            retry_count: u32::try_from(retry_count).unwrap_or(0),
            max_retries: u32::try_from(max_retries).unwrap_or(0),
            retry_policy,
            timeout: duration(timeout_us),
            started_at: Timestamp(started_at.unwrap_or(0)),
        },
    }))
}

/// `finish`: ends an attempt under its lease.
pub fn finish(batch: &mut Batch<'_>, report: AttemptReport) -> StoreResult<Finished> {
    let start = batch.transitions.len();
    let task = check_lease(load(batch, report.lease.task_id)?, &report.lease, report.now)?;
    let status = close(batch, task, report.end, report.machine, report.now)?;
    Ok(Finished {
        status,
        transitions: batch.transitions_since(start),
    })
}

const CLOSE: &str = "UPDATE tasks SET status = ?2, retry_count = ?3, run_at = COALESCE(?4, run_at), completed_at = ?5, \
     result = ?6, error = ?7, status_reason = ?8, progress = COALESCE(?9, progress), \
     attempts = json_set(attempts, '$[#-1].finished_at', ?10, '$[#-1].outcome', ?11, \
     '$[#-1].error', ?7, '$[#-1].finished_under', json(?12)), \
     lease_owner = NULL, lease_token = NULL, lease_deadline = NULL, queue_key = ?13, \
     updated_at = ?10, revision = revision + 1 WHERE id = ?1";

/// Closes the running attempt of `task` with `end` and moves the task on
/// as the rules decide; returns its new status.
pub fn close(
    batch: &mut Batch<'_>,
    task: LeasedTask,
    end: AttemptEnd,
    machine: Option<MachineState>,
    now: Timestamp,
) -> StoreResult<TaskStatus> {
    let verdict = end_attempt(&task.facts, end, now, rand::random::<f64>());
    let queue_key = verdict
        .retry
        .as_ref()
        .and_then(|placement| placement.queue_key(task.priority, &batch.weights));
    let retry_at = verdict.retry.as_ref().map(|placement| match placement.due() {
        Some(at) => at,
        None => now,
    });
    let done = (verdict.status == TaskStatus::Completed).then(|| to_json(&completed_progress()));
    batch.update_task(
        CLOSE,
        params![
            task.id,
            verdict.status.code(),
            i64::from(verdict.retry_count),
            retry_at.map(Timestamp::as_micros),
            verdict.completed_at.map(Timestamp::as_micros),
            verdict.result.as_ref().map(to_json),
            verdict.error,
            verdict.reason,
            done,
            now.as_micros(),
            verdict.outcome.as_str(),
            machine.as_ref().map(to_json),
            queue_key,
        ],
        task.id,
        EventKind::StatusChanged,
        Some(TaskStatus::Running),
    )?;
    batch.transition(Transition {
        task_id: task.id,
        task_type: task.task_type,
        priority: task.priority,
        from: Some(TaskStatus::Running),
        to: verdict.status,
        due: verdict.retry.as_ref().and_then(|placement| placement.due()),
        waited: None,
        closed_attempt: Some((verdict.outcome, now.duration_since(task.facts.started_at))),
    });
    if verdict.status.is_terminal() && task.dependent_count > 0 {
        cascade::dependency_ended(batch, task.id, verdict.status, now)?;
    }
    Ok(verdict.status)
}
