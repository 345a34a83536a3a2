//! What a node tells the others sharing its store about its workers, and
//! what it learns of theirs: every node lists the whole cluster's workers,
//! and says a type is unserved only when no node's worker serves it.
//!
//! Each node records its workers in the store at once when one connects or
//! leaves, and again every [`HEARTBEAT`] so that the others know it lives;
//! a node not heard from for [`STALE_AFTER`] (stopped, killed, cut off) is
//! taken to have no workers. A store for one node has nothing to share.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::core::Core;
use crate::store::StoreResult;

/// How often a node records its workers and reads the others'.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// A node silent this long is taken to be gone, with its workers.
const STALE_AFTER: Duration = Duration::from_secs(5);

pub fn spawn(core: Arc<Core>) {
    if !core.store.is_shared() {
        return;
    }
    tokio::spawn(async move {
        loop {
            if let Err(error) = exchange(&core).await {
                tracing::warn!(%error, "cannot share this node's workers with the others; trying again");
            }
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT) => {}
                _ = core.workers_changed.notified() => {}
                _ = core.stopping.cancelled() => break,
            }
        }
        // Stopping: the others need not wait for this node to go stale.
        let now = core.clock.now();
        let _ = core
            .store
            .publish_workers(&core.config.node_id, Vec::new(), now, now.saturating_sub(STALE_AFTER))
            .await;
    });
}

/// Records this node's workers and reads the others'.
async fn exchange(core: &Core) -> StoreResult<()> {
    let now = core.clock.now();
    let node = &core.config.node_id;
    let stale_before = now.saturating_sub(STALE_AFTER);
    core.store
        .publish_workers(node, core.workers.list(), now, stale_before)
        .await?;
    let elsewhere = core.store.workers_elsewhere(node, stale_before).await?;
    let learnt = elsewhere
        .iter()
        .flat_map(|worker| &worker.task_types)
        .any(|task_type| !core.catalog.knows(task_type));
    if learnt {
        // Their workers declared types this node has not read yet.
        core.catalog.replace_declared(core.store.declared_task_types().await?);
    }
    *core.workers_elsewhere.write() = elsewhere;
    Ok(())
}
