//! Submitting a batch: checks every idempotency key and dependency, then
//! places and inserts every task, all in one step.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use crate::model::{EventKind, Fingerprint, Task, TaskId, TaskStatus, Timestamp};
use crate::store::decide;
use crate::store::sqlite::row::{COLUMNS, micros, parse_status, query_tasks, to_json};
use crate::store::sqlite::writer::Batch;
use crate::store::{DraftTarget, StoreError, StoreResult, SubmitBatch, SubmitOutcome, Submitted, TaskDraft};

pub fn apply(batch: &mut Batch<'_>, request: SubmitBatch) -> StoreResult<Submitted> {
    let start = batch.transitions.len();
    let SubmitBatch { drafts, now } = request;

    // Check everything before writing anything.
    let mut repeats: Vec<Option<Task>> = Vec::with_capacity(drafts.len());
    for draft in &drafts {
        repeats.push(repeated_request(batch, draft)?);
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
                let status = status_of(batch, id)?.ok_or(StoreError::UnknownDependency {
                    position: draft.position,
                    dependency: index,
                    task_id: id,
                })?;
                statuses.insert(id, status);
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
        let task = insert(batch, draft, &ids, &statuses, now)?;
        ids.push(task.id);
        statuses.insert(task.id, task.status);
        outcomes.push(SubmitOutcome::Created(task));
    }
    Ok(Submitted {
        outcomes,
        transitions: batch.transitions_since(start),
    })
}

/// The task an earlier submit with the same idempotency key created, or
/// `None` when the key is new; refused when that submit asked for
/// something else.
fn repeated_request(batch: &Batch<'_>, draft: &TaskDraft) -> StoreResult<Option<Task>> {
    let Some(key) = &draft.idempotency_key else {
        return Ok(None);
    };
    let found: Option<(TaskId, Option<i64>)> = batch
        .connection
        .prepare_cached("SELECT id, request_fingerprint FROM tasks WHERE idempotency_key = ?1")?
        .query_row(params![key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((id, stored)) = found else {
        return Ok(None);
    };
    // Tasks stored before fingerprints were kept match any repeat.
    let same = match (stored.map(Fingerprint::from_i64), draft.fingerprint) {
        (Some(stored), Some(fingerprint)) => stored == fingerprint,
        _ => true,
    };
    if !same {
        return Err(StoreError::IdempotencyConflict {
            position: draft.position,
            key: key.clone(),
        });
    }
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1");
    Ok(query_tasks(batch.connection, &sql, params![id])?.pop())
}

fn status_of(batch: &Batch<'_>, id: TaskId) -> StoreResult<Option<TaskStatus>> {
    let code: Option<i64> = batch
        .connection
        .prepare_cached("SELECT status FROM tasks WHERE id = ?1")?
        .query_row(params![id], |row| row.get(0))
        .optional()?;
    code.map(parse_status).transpose()
}

/// Places one draft against the statuses decided so far and inserts it
/// with its dependency edges.
fn insert(
    batch: &mut Batch<'_>,
    draft: TaskDraft,
    ids: &[TaskId],
    statuses: &HashMap<TaskId, TaskStatus>,
    now: Timestamp,
) -> StoreResult<Task> {
    let fingerprint = draft.fingerprint;
    let placed = decide::new_task(draft, ids, statuses, now);
    let decide::NewTask {
        task,
        dependencies,
        placement,
        unmet,
    } = &placed;
    let queue_key = placement.queue_key(task.priority, &batch.weights);
    let policy = &task.retry_policy;
    batch
        .connection
        .prepare_cached(
            "INSERT INTO tasks (id, name, task_type, priority, status, params, dependencies, labels, \
             idempotency_key, request_fingerprint, max_retries, retry_count, timeout_us, backoff_initial_us, \
             backoff_multiplier, backoff_max_us, backoff_jitter, run_at, created_at, completed_at, updated_at, \
             error, status_reason, attempts, attempt_count, unmet_dependencies, dependent_count, queue_key, \
             revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?18, ?20, ?21, '[]', 0, ?22, 0, ?23, 1)",
        )?
        .execute(params![
            task.id,
            task.name,
            task.task_type,
            task.priority.code(),
            task.status.code(),
            to_json(&task.params),
            to_json(&task.dependencies),
            to_json(&task.labels),
            task.idempotency_key,
            fingerprint.map(Fingerprint::as_i64),
            i64::from(task.max_retries),
            micros(task.timeout),
            micros(policy.initial_backoff),
            policy.multiplier,
            micros(policy.max_backoff),
            policy.jitter,
            task.run_at.map(|at| at.as_micros()),
            now.as_micros(),
            task.completed_at.map(|at| at.as_micros()),
            task.error,
            task.status_reason,
            *unmet as i64,
            queue_key,
        ])?;
    for dependency in dependencies {
        batch
            .connection
            .prepare_cached("INSERT INTO task_dependencies (depends_on, task_id, required_status) VALUES (?1, ?2, ?3)")?
            .execute(params![dependency.task_id, task.id, dependency.required_status.code()])?;
        batch
            .connection
            .prepare_cached("UPDATE tasks SET dependent_count = dependent_count + 1 WHERE id = ?1")?
            .execute(params![dependency.task_id])?;
    }
    batch.transition(placed.transition());
    batch.record_task(EventKind::Submitted, None, || task.clone());
    Ok(placed.task)
}
