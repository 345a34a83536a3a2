//! SCHEDULED tasks whose time has come become PENDING.

use rusqlite::params;

use crate::model::rules::placement::place_due;
use crate::model::{EventKind, TaskId, TaskStatus, Timestamp};
use crate::store::sqlite::row::parse_priority;
use crate::store::sqlite::writer::Batch;
use crate::store::{Promoted, StoreResult, Transition};

/// Most tasks promoted in one step, so one step stays short; the rest
/// follow at the next.
const MOST_PER_STEP: i64 = 10_000;

/// `promote_due`: promotes, then says when the next task is due.
pub fn apply(batch: &mut Batch<'_>, now: Timestamp) -> StoreResult<Promoted> {
    let start = batch.transitions.len();
    promote_due(batch, now)?;
    Ok(Promoted {
        transitions: batch.transitions_since(start),
        next_due: next_due(batch)?,
    })
}

const PROMOTE: &str = "UPDATE tasks SET status = 1, queue_key = ?2, status_reason = ?3, updated_at = ?4, \
     revision = revision + 1 WHERE id = ?1";

pub fn promote_due(batch: &mut Batch<'_>, now: Timestamp) -> StoreResult<()> {
    let due: Vec<(TaskId, i64, i64, String)> = {
        let mut statement = batch.connection.prepare_cached(
            "SELECT id, priority, run_at, task_type FROM tasks WHERE status = 2 AND run_at <= ?1 \
             ORDER BY run_at LIMIT ?2",
        )?;
        statement
            .query_map(params![now.as_micros(), MOST_PER_STEP], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    for (id, priority, run_at, task_type) in due {
        let priority = parse_priority(priority)?;
        let placement = place_due(Timestamp(run_at));
        batch.update_task(
            PROMOTE,
            params![
                id,
                placement.queue_key(priority, &batch.weights),
                placement.reason(),
                now.as_micros(),
            ],
            id,
            EventKind::StatusChanged,
            Some(TaskStatus::Scheduled),
        )?;
        batch.transition(Transition {
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

pub fn next_due(batch: &Batch<'_>) -> StoreResult<Option<Timestamp>> {
    let next: Option<i64> = batch
        .connection
        .prepare_cached("SELECT MIN(run_at) FROM tasks WHERE status = 2")?
        .query_row([], |row| row.get(0))?;
    Ok(next.map(Timestamp))
}
