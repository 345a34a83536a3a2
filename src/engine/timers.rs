//! The engine's clocks: the stager moves SCHEDULED tasks to PENDING when
//! their time comes, and the rescuer takes back leases whose deadline
//! passed. Both sleep until they have something to do.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::core::Core;
use crate::model::Timestamp;

/// How long the stager sleeps when nothing is scheduled; a new SCHEDULED
/// task wakes it sooner.
const IDLE: Duration = Duration::from_secs(3600);

/// Wait before trying a failed store call again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

pub fn spawn(core: Arc<Core>) {
    tokio::spawn(stage(core.clone()));
    tokio::spawn(rescue(core));
}

async fn stage(core: Arc<Core>) {
    loop {
        match core.store.promote_due(Timestamp::now()).await {
            Ok(promoted) => {
                core.set_next_due(promoted.next_due);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot promote due tasks; trying again");
                core.set_next_due(Some(Timestamp::now().saturating_add(RETRY_DELAY)));
            }
        }
        let wait = core.next_due().map_or(IDLE, |due| due.duration_since(Timestamp::now()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {
                // Claims promote due tasks themselves, in the same step as
                // they take them: wake the executors first, then promote
                // whatever none of them takes.
                core.work_may_be_ready();
            }
            _ = core.due_changed.notified() => {}
            _ = core.stopping.cancelled() => return,
        }
    }
}

async fn rescue(core: Arc<Core>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(core.config.rescue_interval) => {}
            _ = core.rescue_wanted.notified() => {}
            _ = core.stopping.cancelled() => return,
        }
        if let Err(error) = core.rescue_expired(Timestamp::now()).await {
            tracing::warn!(%error, "cannot take back expired leases; trying again");
        }
    }
}
