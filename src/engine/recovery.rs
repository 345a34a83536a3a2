//! Brings back every unfinished task at start. An attempt that was running
//! when the server stopped is recorded as interrupted and counted: retried if
//! the task has retries left, failed otherwise.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::engine::error::EngineResult;
use crate::engine::manager::Inner;
use crate::engine::model::{AttemptOutcome, Task, TaskId, TaskStatus, Timestamp};
use crate::engine::scheduler::StatusCounts;
use crate::store::WriteOp;

const INTERRUPTED: &str = "interrupted: taskd stopped while this attempt ran";

pub(crate) async fn recover(inner: &Arc<Inner>) -> EngineResult<()> {
    let store = &inner.store;
    let unfinished = store.load_unfinished().await?;
    let now = Timestamp::now();
    let mut changed = Vec::new();
    let mut restored = Vec::with_capacity(unfinished.len());
    for mut task in unfinished {
        if task.status == TaskStatus::Running {
            interrupt(&mut task, now);
            changed.push(task.id);
        }
        restored.push(task);
    }

    let in_memory: HashSet<TaskId> = restored.iter().map(|task| task.id).collect();
    let outside: Vec<TaskId> = restored
        .iter()
        .filter(|task| task.status == TaskStatus::Waiting)
        .flat_map(|task| task.dependencies.iter().map(|dependency| dependency.task_id))
        .filter(|id| !in_memory.contains(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let finished_elsewhere = store.statuses(&outside).await?;

    let writes: Vec<WriteOp> = restored
        .iter()
        .filter(|task| changed.contains(&task.id))
        .map(|task| WriteOp::Update(Arc::new(task.clone())))
        .collect();
    let recovered = restored.len();
    let interrupted = changed.len();
    {
        let mut state = inner.state.lock();
        for task in restored {
            state.restore(Arc::new(task));
        }
        state.finish_restore(&finished_elsewhere);
    }
    if !writes.is_empty() {
        store.write(writes).await?;
    }
    store.flush().await?;

    let mut counts: BTreeMap<String, StatusCounts> = BTreeMap::new();
    for count in store.count_by_type_and_status().await? {
        counts.entry(count.task_type).or_default()[count.status.index()] += count.count;
    }
    inner.state.lock().set_counts(counts);
    if recovered > 0 {
        tracing::info!(recovered, interrupted, "recovered unfinished tasks");
    }
    Ok(())
}

/// Closes the attempt that was running and decides what follows it.
fn interrupt(task: &mut Task, now: Timestamp) {
    if let Some(last) = task.attempts.last_mut()
        && last.finished_at.is_none()
    {
        last.finished_at = Some(now);
        last.outcome = AttemptOutcome::Interrupted;
        last.error = Some(INTERRUPTED.to_string());
    }
    task.updated_at = now;
    task.error = Some(INTERRUPTED.to_string());
    if task.retry_count < task.max_retries {
        task.retry_count += 1;
        task.status = TaskStatus::Pending;
        task.run_at = None;
        task.status_reason = format!(
            "retry {} of {} after: {INTERRUPTED}",
            task.retry_count, task.max_retries
        );
    } else {
        task.status = TaskStatus::Failed;
        task.completed_at = Some(now);
        task.status_reason = format!("failed: {INTERRUPTED}");
    }
}
