//! The engine's clocks: the stager moves SCHEDULED tasks to PENDING when
//! their time comes, and the rescuer takes back leases whose deadline
//! passed. Both sleep until they have something to do.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::core::Core;

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
        match core.store.promote_due(core.clock.now()).await {
            Ok(promoted) => {
                core.set_next_due(promoted.next_due);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot promote due tasks; trying again");
                core.set_next_due(Some(core.clock.now().saturating_add(RETRY_DELAY)));
            }
        }
        let due = core.next_due().unwrap_or_else(|| core.clock.now().saturating_add(IDLE));
        tokio::select! {
            _ = core.clock.sleep_until(due) => {
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
            _ = core.clock.sleep(core.config.rescue_interval) => {}
            _ = core.rescue_wanted.notified() => {}
            _ = core.stopping.cancelled() => return,
        }
        if let Err(error) = core.rescue_expired(core.clock.now()).await {
            tracing::warn!(%error, "cannot take back expired leases; trying again");
        }
    }
}
