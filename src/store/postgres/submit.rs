//! Submitting a batch: checks every idempotency key and dependency, then
//! places and inserts every task, all in one transaction. Dependencies are
//! read `FOR UPDATE`: a dependency ending on another node at the same time
//! either ends before (and this submit sees it ended) or after (and its
//! cascade sees the new edge).

use std::collections::HashMap;

use deadpool_postgres::Transaction;

use crate::model::{EventKind, Fingerprint, Task, TaskId, TaskStatus, Timestamp};
use crate::store::columns::{micros, parse_status, to_json};
use crate::store::decide;
use crate::store::postgres::changes::{Changes, execute, query_opt};
use crate::store::postgres::error::Step;
use crate::store::postgres::row::{COLUMNS, read};
use crate::store::{DraftTarget, StoreError, SubmitBatch, SubmitOutcome, Submitted, TaskDraft};

pub async fn apply(tx: &Transaction<'_>, changes: &mut Changes, request: SubmitBatch) -> Step<Submitted> {
    let SubmitBatch { drafts, now } = request;
    let mut repeats: Vec<Option<Task>> = Vec::with_capacity(drafts.len());
    for draft in &drafts {
        repeats.push(repeated_request(tx, draft).await?);
    }
    let mut statuses: HashMap<TaskId, TaskStatus> = HashMap::new();
    for (draft, repeat) in drafts.iter().zip(&repeats) {
        if repeat.is_some() {
            continue;
        }
        for (index, dependency) in draft.dependencies.iter().enumerate() {
            if let DraftTarget::Task(id) = dependency.target
                && !statuses.contains_key(&id)
            {
                let row = query_opt(tx, "SELECT status FROM tasks WHERE id = $1 FOR UPDATE", &[&id]).await?;
                let status = row.ok_or(StoreError::UnknownDependency {
                    position: draft.position,
                    dependency: index,
                    task_id: id,
                })?;
                statuses.insert(id, parse_status(status.try_get(0)?)?);
            }
        }
    }
    let mut ids: Vec<TaskId> = Vec::with_capacity(drafts.len());
    let mut outcomes = Vec::with_capacity(drafts.len());
    for (draft, repeat) in drafts.into_iter().zip(repeats) {
        if let Some(task) = repeat {
            ids.push(task.id);
            statuses.insert(task.id, task.status);
            outcomes.push(SubmitOutcome::Existing(task));
            continue;
        }
        let task = insert(tx, changes, draft, &ids, &statuses, now).await?;
        ids.push(task.id);
        statuses.insert(task.id, task.status);
        outcomes.push(SubmitOutcome::Created(task));
    }
    Ok(Submitted {
        outcomes,
        transitions: changes.transitions.clone(),
    })
}

/// The task an earlier submit with the same key created, `None` for a new
/// key; refused when that submit asked for something else.
async fn repeated_request(tx: &Transaction<'_>, draft: &TaskDraft) -> Step<Option<Task>> {
    let Some(key) = &draft.idempotency_key else {
        return Ok(None);
    };
    let sql = format!("SELECT request_fingerprint, {COLUMNS} FROM tasks WHERE idempotency_key = $1");
    let Some(row) = query_opt(tx, &sql, &[key]).await? else {
        return Ok(None);
    };
    let stored: Option<i64> = row.try_get(0)?;
    let same = match (stored.map(Fingerprint::from_i64), draft.fingerprint) {
        (Some(stored), Some(fingerprint)) => stored == fingerprint,
        _ => true,
    };
    if !same {
        return Err(StoreError::IdempotencyConflict {
            position: draft.position,
            key: key.clone(),
        }
        .into());
    }
    Ok(Some(read(&row, 1)?.into_task()?))
}

const INSERT: &str = "INSERT INTO tasks (id, name, task_type, priority, status, params, dependencies, labels, \
     idempotency_key, request_fingerprint, max_retries, retry_count, timeout_us, backoff_initial_us, \
     backoff_multiplier, backoff_max_us, backoff_jitter, run_at, created_at, completed_at, updated_at, error, \
     status_reason, attempts, attempt_count, unmet_dependencies, dependent_count, queue_key, revision) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11, 0, $12, $13, $14, $15, $16, $17, $18, $19, \
     $18, $20, $21, '[]', 0, $22, 0, $23, 1)";

async fn insert(
    tx: &Transaction<'_>,
    changes: &mut Changes,
    draft: TaskDraft,
    ids: &[TaskId],
    statuses: &HashMap<TaskId, TaskStatus>,
    now: Timestamp,
) -> Step<Task> {
    let fingerprint = draft.fingerprint;
    let placed = decide::new_task(draft, ids, statuses, now);
    let decide::NewTask {
        task,
        dependencies,
        placement,
        unmet,
    } = &placed;
    let queue_key = placement.queue_key(task.priority, &changes.weights);
    let policy = &task.retry_policy;
    execute(
        tx,
        INSERT,
        &[
            &task.id,
            &task.name,
            &task.task_type,
            &task.priority.code(),
            &task.status.code(),
            &to_json(&task.params),
            &to_json(&task.dependencies),
            &to_json(&task.labels),
            &task.idempotency_key,
            &fingerprint.map(Fingerprint::as_i64),
            &i64::from(task.max_retries),
            &micros(task.timeout),
            &micros(policy.initial_backoff),
            &policy.multiplier,
            &micros(policy.max_backoff),
            &policy.jitter,
            &task.run_at.map(|at| at.as_micros()),
            &now.as_micros(),
            &task.completed_at.map(|at| at.as_micros()),
            &task.error,
            &task.status_reason,
            &(*unmet as i64),
            &queue_key,
        ],
    )
    .await?;
    for dependency in dependencies {
        execute(
            tx,
            "INSERT INTO task_dependencies (depends_on, task_id, required_status) VALUES ($1, $2, $3)",
            &[&dependency.task_id, &task.id, &dependency.required_status.code()],
        )
        .await?;
        execute(
            tx,
            "UPDATE tasks SET dependent_count = dependent_count + 1 WHERE id = $1",
            &[&dependency.task_id],
        )
        .await?;
    }
    changes.transition(placed.transition());
    changes.record_task(task.id, EventKind::Submitted, None, || task.clone());
    Ok(placed.task)
}
