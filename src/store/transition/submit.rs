//! Submitting a batch: checks every idempotency key and dependency, then
//! places and inserts every task, all in one step. Dependencies are read
//! locked: a dependency ending in another transaction at the same time
//! either ends before (and this submit sees it ended) or after (and its
//! cascade sees the new edge).

use std::collections::HashMap;

use crate::model::{Task, TaskId, TaskStatus, Timestamp};
use crate::store::changes::Event;
use crate::store::decide;
use crate::store::driver::{NewRow, Tx};
use crate::store::{ClaimRequest, Claimed, DraftTarget, StoreError, SubmitBatch, SubmitOutcome, Submitted, TaskDraft};

pub async fn submit<T: Tx>(tx: &mut T, request: SubmitBatch) -> Result<Submitted, T::Error> {
    let start = tx.changes().transitions.len();
    let SubmitBatch { drafts, now } = request;

    // Check everything before writing anything.
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
                let status = tx.dependency_status(id).await?.ok_or(StoreError::UnknownDependency {
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
        let task = insert(tx, draft, &ids, &statuses, now).await?;
        ids.push(task.id);
        statuses.insert(task.id, task.status);
        outcomes.push(SubmitOutcome::Created(task));
    }
    Ok(Submitted {
        outcomes,
        transitions: tx.changes().transitions_since(start),
    })
}

/// [`submit`], then [`claim`](crate::store::transition::claim) in the same
/// transaction.
pub async fn submit_and_claim<T: Tx>(
    tx: &mut T,
    batch: SubmitBatch,
    request: ClaimRequest,
) -> Result<(Submitted, Claimed), T::Error> {
    let submitted = submit(tx, batch).await?;
    let claimed = crate::store::transition::claim(tx, request).await?;
    Ok((submitted, claimed))
}

/// The task an earlier submit with the same idempotency key created, or
/// `None` when the key is new; refused when that submit asked for
/// something else.
async fn repeated_request<T: Tx>(tx: &mut T, draft: &TaskDraft) -> Result<Option<Task>, T::Error> {
    let Some(key) = &draft.idempotency_key else {
        return Ok(None);
    };
    let Some((stored, row)) = tx.task_by_idempotency_key(key).await? else {
        return Ok(None);
    };
    // Tasks stored before fingerprints were kept match any repeat.
    let same = match (stored, draft.fingerprint) {
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
    Ok(Some(row.into_task()?))
}

/// Places one draft against the statuses decided so far and inserts it
/// with its dependency edges.
async fn insert<T: Tx>(
    tx: &mut T,
    draft: TaskDraft,
    ids: &[TaskId],
    statuses: &HashMap<TaskId, TaskStatus>,
    now: Timestamp,
) -> Result<Task, T::Error> {
    let fingerprint = draft.fingerprint;
    let placed = decide::new_task(draft, ids, statuses, now);
    let weights = tx.weights();
    let decide::NewTask {
        task,
        dependencies,
        placement,
        unmet,
    } = &placed;
    tx.insert_task(&NewRow {
        task,
        fingerprint,
        unmet: *unmet as i64,
        queue_key: placement.queue_key(task.priority, &weights),
    })
    .await?;
    for dependency in dependencies {
        tx.insert_dependency(dependency.task_id, task.id, dependency.required_status)
            .await?;
    }
    let changes = tx.changes();
    changes.transition(placed.transition());
    changes.record_task(
        task.id,
        Event {
            kind: crate::model::EventKind::Submitted,
            previous: None,
        },
        || task.clone(),
    );
    Ok(placed.task)
}
