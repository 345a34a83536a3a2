//! Deleting old finished tasks, a bounded number per step so that no
//! writer is held for long.

use std::collections::BTreeMap;

use crate::model::{TaskId, TaskStatus, Timestamp};
use crate::store::driver::Tx;
use crate::store::{Purged, StatusCount};

/// Deletes up to `limit` ended tasks (of `status` only, when given) that
/// finished before `cutoff`.
pub async fn purge<T: Tx>(
    tx: &mut T,
    status: Option<TaskStatus>,
    cutoff: Timestamp,
    limit: usize,
) -> Result<Purged, T::Error> {
    let limit = limit.max(1);
    let found = tx.finished_before(status, cutoff, limit + 1).await?;
    let more = found.len() > limit;
    let mut counts: BTreeMap<(String, TaskStatus), u64> = BTreeMap::new();
    let mut ids: Vec<TaskId> = Vec::with_capacity(limit.min(found.len()));
    for (id, task_type, status) in found.into_iter().take(limit) {
        ids.push(id);
        *counts.entry((task_type.clone(), status)).or_default() += 1;
        tx.changes().removed.push((task_type, status));
    }
    if !ids.is_empty() {
        tx.delete_tasks(&ids).await?;
    }
    Ok(Purged {
        counts: counts
            .into_iter()
            .map(|((task_type, status), count)| StatusCount {
                task_type,
                status,
                count,
            })
            .collect(),
        more,
    })
}
