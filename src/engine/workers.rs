//! What workers do: connect, and end, renew and report on the attempts
//! they hold. The worker transport decodes a message, calls this and
//! encodes the answer; everything a message is checked against is decided
//! here.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::engine::core::Core;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::executor::remote::{Session, ToWorker, WorkerConnection};
use crate::engine::task_types;
use crate::engine::validate::{validate_attempt_end, validate_progress, validate_worker_hello};
use crate::engine::worker_registry::{WorkerHello, WorkerInfo};
use crate::model::rules::attempts::AttemptEnd;
use crate::model::{LeaseLost, LeaseRef, Progress, TaskStatus, Timestamp};
use crate::store::{AttemptReport, RenewRequest};

/// Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct Workers {
    core: Arc<Core>,
}

impl Workers {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Workers { core }
    }

    /// Connects a worker: declares its task types (known from now on, here
    /// and on every later start), and starts handing it tasks. The worker's
    /// session lives as long as the returned connection; what the engine
    /// has to tell the worker comes out of the receiver.
    pub async fn connect(
        &self,
        hello: WorkerHello,
    ) -> EngineResult<(WorkerConnection, mpsc::UnboundedReceiver<ToWorker>)> {
        if !self.core.is_accepting() {
            return Err(EngineError::ShuttingDown);
        }
        let (id, task_types) = validate_worker_hello(&hello, &self.core.config.limits, "")?;
        let id = self.core.executor_name(id.as_str());
        task_types::admit_declared(&self.core, &task_types).await?;
        let (session, instructions) = Session::new(
            self.core.clone(),
            id.clone(),
            task_types.clone(),
            hello.capacity,
            hello.labels,
            hello.instance.clone(),
        );
        if let Err(connected) = self.core.workers.insert(session.clone()) {
            // The same process reconnecting before its old stream was seen
            // to end: the old session goes, as if it had disconnected.
            let same_process = !hello.instance.is_empty() && connected.instance() == hello.instance;
            if !same_process {
                return Err(EngineError::WorkerConnected {
                    worker_id: id.to_string(),
                });
            }
            tracing::info!(worker = %id, "worker reconnected; its previous stream ends");
            connected.disconnect("reconnected on a new stream").await;
            if self.core.workers.insert(session.clone()).is_err() {
                return Err(EngineError::WorkerConnected {
                    worker_id: id.to_string(),
                });
            }
        }
        self.core.add_served(task_types.iter().cloned());
        self.core.workers_changed.notify_one();
        session.start();
        tracing::info!(worker = %id, task_types = ?task_types, capacity = hello.capacity, "worker connected");
        Ok((WorkerConnection::new(session, self.core.clone()), instructions))
    }

    /// Ends an attempt under its lease, from whoever holds it: the task's
    /// status after it. Refused with [`EngineError::LeaseLost`] when the
    /// lease no longer counts; nothing changes then.
    pub async fn finish_attempt(&self, lease: LeaseRef, end: AttemptEnd) -> EngineResult<TaskStatus> {
        validate_attempt_end(&end, &self.core.config.limits, "")?;
        if let Some(session) = self.core.workers.holder_of(lease.task_id) {
            return session.finish(lease, end).await;
        }
        let report = AttemptReport {
            lease,
            end,
            machine: self.core.limits.machine(),
            now: self.core.clock.now(),
        };
        Ok(self.core.store.finish(report).await?.status)
    }

    /// Extends leases by the lease duration; each one lost says why.
    pub async fn renew_leases(&self, leases: Vec<LeaseRef>) -> EngineResult<Vec<Result<Timestamp, LeaseLost>>> {
        let request = RenewRequest {
            leases,
            lease_duration: self.core.config.lease_duration,
            now: self.core.clock.now(),
        };
        Ok(self.core.store.renew(request).await?)
    }

    /// Records a running attempt's progress under its lease.
    pub async fn report_progress(&self, lease: LeaseRef, progress: Progress) -> EngineResult<()> {
        validate_progress(&progress, "")?;
        Ok(self
            .core
            .store
            .record_progress(lease, progress, self.core.clock.now())
            .await?)
    }

    /// The workers connected to this node and, when nodes share the
    /// store, to the others; sorted by id.
    pub fn list(&self) -> Vec<WorkerInfo> {
        self.core.all_workers()
    }
}
