//! Who may serve which task types, and how the types workers declare come
//! and go.
//!
//! A worker token serves tasks, so a worker must not be able to pose as
//! taskd: a type taskd serves with its own handler, or one only an admin
//! may submit, is not a worker's to declare unless the configuration says
//! so (`engine.worker_may_serve`); otherwise a worker would be handed the
//! built-in's tasks with their params and could report them done.
//!
//! Declarations are bounded (`engine.limits.max_declared_task_types`, on
//! all nodes together) and expire: the keeper renews the types this node's
//! workers serve and forgets those nobody renewed for
//! `engine.forget_task_types_after`, so a burst of hellos cannot make a
//! typo an accepted type for good. An admin may forget one at once.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::ADMIN_TASK_TYPES;
use crate::engine::catalog::FixedBy;
use crate::engine::core::Core;
use crate::engine::error::{EngineError, EngineResult};
use crate::store::ForgetTaskTypes;

/// Longest wait between two runs of the keeper, however long types live.
const MOST_BETWEEN_RUNS: Duration = Duration::from_secs(600);

/// With nodes sharing the store, the longest a node goes on accepting a
/// type another node's admin removed (or refusing one another node's
/// worker declared).
const SHARED_REFRESH: Duration = Duration::from_secs(10);

/// Checks the types a worker declares and records them (renewing those
/// declared before): refused whole, naming the first type at fault, when
/// one is taskd's own or admin-only, or when they would pass the bound.
pub async fn admit_declared(core: &Core, task_types: &[String]) -> EngineResult<()> {
    let allowed = &core.config.worker_may_serve;
    for (index, task_type) in task_types.iter().enumerate() {
        if allowed.contains(task_type) {
            continue;
        }
        let why = if ADMIN_TASK_TYPES.contains(&task_type.as_str()) {
            "needs scope admin to submit"
        } else if core.catalog.fixed_by(task_type) == Some(FixedBy::Handler) {
            "is served by taskd with a handler of its own"
        } else {
            continue;
        };
        return Err(EngineError::PermissionDenied {
            field: format!("task_types[{index}]"),
            message: format!("{task_type:?} {why}; a worker may serve it only if engine.worker_may_serve lists it"),
        });
    }
    let declared: Vec<String> = task_types
        .iter()
        .filter(|task_type| core.catalog.fixed_by(task_type).is_none())
        .cloned()
        .collect();
    if declared.is_empty() {
        return Ok(());
    }
    core.store
        .declare_task_types(
            declared.clone(),
            core.clock.now(),
            core.config.limits.max_declared_task_types,
        )
        .await?;
    core.catalog.add_declared(declared);
    Ok(())
}

/// Forgets a declared type at an admin's request.
pub async fn delete(core: &Core, task_type: &str) -> EngineResult<()> {
    if let Some(by) = core.catalog.fixed_by(task_type) {
        return Err(EngineError::FailedPrecondition(format!(
            "task_type: {task_type:?} cannot be removed: {}",
            by.describe()
        )));
    }
    let serving: Vec<String> = core
        .all_workers()
        .into_iter()
        .filter(|worker| worker.task_types.iter().any(|served| served == task_type))
        .map(|worker| worker.worker_id)
        .collect();
    if !serving.is_empty() {
        return Err(EngineError::FailedPrecondition(format!(
            "task_type: {task_type:?} cannot be removed while connected workers serve it ({}); stop them first",
            serving.join(", ")
        )));
    }
    let forgotten = core
        .store
        .forget_task_types(ForgetTaskTypes::Named(task_type.to_string()))
        .await?;
    core.catalog.forget_declared(&[task_type.to_string()]);
    if forgotten.is_empty() {
        return Err(EngineError::NotFound(format!(
            "task_type: {task_type:?} is not a declared task type"
        )));
    }
    tracing::info!(task_type, "task type removed");
    Ok(())
}

/// How often the keeper runs: often enough that a served type is renewed
/// several times within its lifetime.
fn keeper_interval(forget_after: Duration) -> Duration {
    (forget_after / 4).clamp(Duration::from_millis(10), MOST_BETWEEN_RUNS)
}

/// Runs the keeper until the engine stops.
pub fn spawn_keeper(core: Arc<Core>) {
    tokio::spawn(async move {
        let mut interval = keeper_interval(core.config.forget_task_types_after);
        if core.store.is_shared() {
            interval = interval.min(SHARED_REFRESH);
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = core.stopping.cancelled() => return,
            }
            if let Err(error) = keep(&core).await {
                tracing::warn!(%error, "cannot renew or forget declared task types; trying again");
            }
        }
    });
}

/// One run: renew what this node's workers serve, forget what nobody
/// renewed in time, and learn what the store now holds (other nodes
/// declare and forget too).
async fn keep(core: &Core) -> EngineResult<()> {
    let now = core.clock.now();
    let served: Vec<String> = core
        .workers
        .workers_by_type()
        .into_keys()
        .filter(|task_type| core.catalog.fixed_by(task_type).is_none())
        .collect();
    if !served.is_empty() {
        // Renewals add no type: the bound does not apply.
        core.store.declare_task_types(served.clone(), now, usize::MAX).await?;
    }
    let cutoff = now.saturating_sub(core.config.forget_task_types_after);
    let forgotten = core
        .store
        .forget_task_types(ForgetTaskTypes::DeclaredBefore { cutoff, keep: served })
        .await?;
    if !forgotten.is_empty() {
        tracing::info!(
            task_types = ?forgotten,
            after = ?core.config.forget_task_types_after,
            "forgot task types no worker declared"
        );
    }
    core.catalog.replace_declared(core.store.declared_task_types().await?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keeper_runs_several_times_per_lifetime_but_not_too_often() {
        assert_eq!(keeper_interval(Duration::from_millis(400)), Duration::from_millis(100));
        assert_eq!(keeper_interval(Duration::from_secs(7 * 24 * 3600)), MOST_BETWEEN_RUNS);
        assert_eq!(keeper_interval(Duration::ZERO), Duration::from_millis(10));
    }
}
