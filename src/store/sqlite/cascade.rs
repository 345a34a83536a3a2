//! What a task's end does to the tasks that depend on it: each WAITING
//! dependent counts one more dependency met (and is placed once none is
//! left) or is cancelled, and so on down the graph, in the same step as the
//! end itself.

use std::collections::VecDeque;

use rusqlite::params;

use crate::model::rules::placement::Placement;
use crate::model::{EventKind, TaskId, TaskStatus, Timestamp};
use crate::store::decide::{DependentMove, dependent_move};
use crate::store::sqlite::row::{parse_priority, parse_status};
use crate::store::sqlite::writer::Batch;
use crate::store::{StoreResult, Transition};

/// A dependent as its edge and row describe it.
struct Dependent {
    id: TaskId,
    required_status: i64,
    status: i64,
    unmet: i64,
    total: i64,
    run_at: Option<i64>,
    priority: i64,
    task_type: String,
    dependent_count: i64,
}

/// Resolves the dependents of `ended`, which just reached `status`.
pub fn dependency_ended(batch: &mut Batch<'_>, ended: TaskId, status: TaskStatus, now: Timestamp) -> StoreResult<()> {
    let mut work = VecDeque::from([(ended, status)]);
    while let Some((dependency, status)) = work.pop_front() {
        for dependent in dependents_of(batch, dependency)? {
            if parse_status(dependent.status)? != TaskStatus::Waiting {
                continue;
            }
            let movement = dependent_move(
                (dependency, status),
                parse_status(dependent.required_status)?,
                (dependent.unmet, dependent.total),
                dependent.run_at.map(Timestamp),
                now,
            );
            match movement {
                None => {}
                Some(DependentMove::OneLess { unmet, reason }) => one_less(batch, &dependent, unmet, reason, now)?,
                Some(DependentMove::Place(placement)) => {
                    let cancelled = placement.status() == TaskStatus::Cancelled;
                    place(batch, &dependent, placement, now)?;
                    if cancelled && dependent.dependent_count > 0 {
                        work.push_back((dependent.id, TaskStatus::Cancelled));
                    }
                }
            }
        }
    }
    Ok(())
}

fn dependents_of(batch: &Batch<'_>, dependency: TaskId) -> StoreResult<Vec<Dependent>> {
    let mut statement = batch.connection.prepare_cached(
        "SELECT edge.task_id, edge.required_status, task.status, task.unmet_dependencies, \
         json_array_length(task.dependencies), task.run_at, task.priority, task.task_type, task.dependent_count \
         FROM task_dependencies AS edge JOIN tasks AS task ON task.id = edge.task_id \
         WHERE edge.depends_on = ?1",
    )?;
    let rows = statement.query_map(params![dependency], |row| {
        Ok(Dependent {
            id: row.get(0)?,
            required_status: row.get(1)?,
            status: row.get(2)?,
            unmet: row.get(3)?,
            total: row.get(4)?,
            run_at: row.get(5)?,
            priority: row.get(6)?,
            task_type: row.get(7)?,
            dependent_count: row.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

const ONE_LESS: &str = "UPDATE tasks SET unmet_dependencies = ?2, status_reason = ?3, updated_at = ?4, \
     revision = revision + 1 WHERE id = ?1";

const PLACE: &str = "UPDATE tasks SET status = ?2, unmet_dependencies = 0, status_reason = ?3, queue_key = ?4, \
     completed_at = ?5, error = ?6, updated_at = ?7, revision = revision + 1 WHERE id = ?1";

/// One more dependency met; others remain.
fn one_less(
    batch: &mut Batch<'_>,
    dependent: &Dependent,
    unmet: i64,
    reason: String,
    now: Timestamp,
) -> StoreResult<()> {
    batch.update_task(
        ONE_LESS,
        params![dependent.id, unmet, reason, now.as_micros()],
        dependent.id,
        EventKind::StatusChanged,
        Some(TaskStatus::Waiting),
    )
}

/// Moves a WAITING dependent to `placement`.
fn place(batch: &mut Batch<'_>, dependent: &Dependent, placement: Placement, now: Timestamp) -> StoreResult<()> {
    let priority = parse_priority(dependent.priority)?;
    let status = placement.status();
    let cancelled = status == TaskStatus::Cancelled;
    let reason = placement.reason();
    batch.update_task(
        PLACE,
        params![
            dependent.id,
            status.code(),
            reason,
            placement.queue_key(priority, &batch.weights),
            cancelled.then_some(now.as_micros()),
            cancelled.then(|| reason.clone()),
            now.as_micros(),
        ],
        dependent.id,
        EventKind::StatusChanged,
        Some(TaskStatus::Waiting),
    )?;
    if cancelled {
        tracing::info!(task_id = %dependent.id, %reason, "dependent task cancelled");
    }
    batch.transition(Transition {
        task_id: dependent.id,
        task_type: dependent.task_type.clone(),
        priority,
        from: Some(TaskStatus::Waiting),
        to: status,
        due: placement.due(),
        waited: None,
        closed_attempt: None,
    });
    Ok(())
}
