//! Administration: what operators and the node's own loops do to the
//! engine beside running tasks. Forgetting task types, purging and
//! compacting the store, the ResourceMonitor's feedback, metrics and
//! readiness.

use std::sync::Arc;

use crate::engine::core::Core;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::metrics::EngineMetrics;
use crate::engine::task_types;
use crate::model::{StatusCount, TaskStatus, Timestamp};

/// Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct Admin {
    core: Arc<Core>,
}

/// What a purge step deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct Purged {
    /// By type and status.
    pub counts: Vec<StatusCount>,
    /// Whether more tasks older than the cutoff remain.
    pub more: bool,
}

impl Admin {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Admin { core }
    }

    /// Forgets a task type workers declared (an admin's request).
    pub async fn delete_task_type(&self, task_type: &str) -> EngineResult<()> {
        task_types::delete(&self.core, task_type).await
    }

    /// Applies the ResourceMonitor's recommendation (see
    /// `ConcurrencyLimits::apply_load`); waiting work starts if the limit
    /// rose. `reading` is (cpu %, memory %, io wait %) of the latest sample.
    pub fn apply_load(&self, recommended: usize, reason: String, reading: Option<(f64, f64, Option<f64>)>) {
        if self.core.limits.apply_load(recommended, reason, reading) {
            self.core.work_may_be_ready();
        }
    }

    /// A copy of the outcome counters and latency histograms.
    pub fn metrics(&self) -> EngineMetrics {
        self.core.metrics.lock().clone()
    }

    /// The engine's time (a test's manual clock, or the system's).
    pub fn now(&self) -> Timestamp {
        self.core.clock.now()
    }

    /// Deletes up to `limit` tasks that finished before `cutoff`.
    pub async fn purge_finished_before(
        &self,
        status: Option<TaskStatus>,
        cutoff: Timestamp,
        limit: usize,
    ) -> EngineResult<Purged> {
        let purged = self.core.store.purge_finished_before(status, cutoff, limit).await?;
        Ok(Purged {
            counts: purged.counts,
            more: purged.more,
        })
    }

    /// The store's housekeeping; says what it did.
    pub async fn optimize_store(&self) -> EngineResult<String> {
        Ok(self.core.store.optimize().await?)
    }

    /// Whether the engine takes work and its store answers a write.
    pub async fn check_ready(&self) -> EngineResult<()> {
        if !self.core.is_accepting() {
            return Err(EngineError::ShuttingDown);
        }
        self.core.store.check_writable(self.core.clock.now()).await?;
        Ok(())
    }
}
