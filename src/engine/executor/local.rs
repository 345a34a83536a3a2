//! The in-process executor: claims ready tasks of the types its handlers
//! serve, within the node's concurrency limits, runs each under its lease,
//! renews the leases while they run, and reports each attempt's end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::core::Core;
use crate::engine::executor::attempt::{self, Ran};
use crate::engine::executor::progress::ProgressWriter;
use crate::engine::handler::{HandlerRegistry, TaskContext};
use crate::model::rules::attempts::AttemptEnd;
use crate::model::{ExecutorId, Lease, LeaseRef, TaskId, Timestamp};
use crate::store::{AttemptReport, ClaimedTask, RenewRequest, StoreError};

/// Longest wait between tries of a store call that failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// An attempt this executor runs.
struct Running {
    lease: Lease,
    task_type: String,
    stop: CancellationToken,
}

pub struct LocalExecutor {
    id: ExecutorId,
    core: Arc<Core>,
    registry: Arc<HandlerRegistry>,
    running: Mutex<HashMap<TaskId, Running>>,
    attempts: TaskTracker,
    /// Fires when no more tasks should be claimed.
    no_more_claims: CancellationToken,
}

impl LocalExecutor {
    pub fn id(&self) -> &ExecutorId {
        &self.id
    }

    /// Starts claiming and renewing.
    pub(crate) fn start(core: Arc<Core>, registry: HandlerRegistry) -> Arc<Self> {
        core.add_served(registry.task_types().map(str::to_string));
        let executor = Arc::new(LocalExecutor {
            id: core.executor_name(ExecutorId::LOCAL),
            core,
            registry: Arc::new(registry),
            running: Mutex::new(HashMap::new()),
            attempts: TaskTracker::new(),
            no_more_claims: CancellationToken::new(),
        });
        let stopping = Arc::downgrade(&executor);
        *executor.core.local_stop.write() = Some(Arc::new(move |task_id| {
            if let Some(executor) = stopping.upgrade() {
                executor.stop_task(task_id);
            }
        }));
        if !executor.registry.is_empty() {
            tokio::spawn(executor.clone().claim_loop());
        }
        tokio::spawn(executor.clone().renew_loop());
        executor
    }

    /// Stops the attempt running under `lease`: its task was cancelled.
    pub fn revoke(&self, lease: &LeaseRef) {
        if let Some(running) = self.running.lock().get(&lease.task_id)
            && running.lease.reference() == *lease
        {
            tracing::info!(task_id = %lease.task_id, "stopping the handler of a cancelled task");
            running.stop.cancel();
        }
    }

    /// Stops the attempt of `task_id`, whatever its lease: another node
    /// ended it.
    pub fn stop_task(&self, task_id: TaskId) {
        if let Some(running) = self.running.lock().get(&task_id) {
            tracing::info!(%task_id, "stopping a handler whose attempt another node ended");
            running.stop.cancel();
        }
    }

    /// Stops claiming, lets running attempts finish for up to `drain`, then
    /// tells the rest to stop and gives them the cancel grace to do so.
    pub async fn shutdown(&self, drain: Duration) {
        self.no_more_claims.cancel();
        self.attempts.close();
        if tokio::time::timeout(drain, self.attempts.wait()).await.is_err() {
            // Stopped attempts report nothing: their leases are taken back
            // as interrupted, and the tasks retried.
            let stopped = {
                let running = self.running.lock();
                for attempt in running.values() {
                    attempt.stop.cancel();
                }
                running.len()
            };
            tracing::warn!(stopped, "drain period over; stopping running attempts");
            let _ = tokio::time::timeout(self.core.config.cancel_grace, self.attempts.wait()).await;
        }
    }

    async fn claim_loop(self: Arc<Self>) {
        let task_types: Vec<String> = self.registry.task_types().map(str::to_string).collect();
        let mut work = self.core.watch_work();
        let mut retry_delay = Duration::from_millis(10);
        loop {
            // Changes from here on wake the wait below.
            work.borrow_and_update();
            if self.no_more_claims.is_cancelled() {
                return;
            }
            // The in-process executor has no room of its own: the node's
            // limits are its only bound.
            let Some(plan) = self.core.dispatch.plan(&self.core.limits, &task_types, usize::MAX) else {
                tokio::select! {
                    changed = work.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = self.no_more_claims.cancelled() => return,
                }
                continue;
            };
            match self.core.claim_planned(&self.id, plan).await {
                Ok(claimed) => {
                    retry_delay = Duration::from_millis(10);
                    for task in claimed {
                        self.start_attempt(task);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "claim failed; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(retry_delay) => {}
                        _ = self.no_more_claims.cancelled() => return,
                    }
                    retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }

    /// Whether a handler here serves `task_type`.
    pub fn serves(&self, task_type: &str) -> bool {
        self.registry.serves(task_type)
    }

    /// Whether it still takes work (not draining for a stop).
    pub fn takes_work(&self) -> bool {
        !self.no_more_claims.is_cancelled()
    }

    /// Runs an attempt claimed for this executor: by its own claim loop, or
    /// in the commit of the submit that created the task.
    pub(in crate::engine) fn start_attempt(self: &Arc<Self>, claimed: ClaimedTask) {
        let ClaimedTask { lease, task } = claimed;
        let stop = CancellationToken::new();
        self.running.lock().insert(
            task.id,
            Running {
                lease: lease.clone(),
                task_type: task.task_type.clone(),
                stop: stop.clone(),
            },
        );
        tracing::debug!(task_id = %task.id, task_type = %task.task_type, attempt = lease.attempt, "attempt started");
        let started_at = task.started_at.unwrap_or_else(|| self.core.clock.now());
        let ends_at = started_at.saturating_add(task.timeout);
        let time_limit = ends_at.duration_since(self.core.clock.now());
        let writer = ProgressWriter::new(self.core.store.clone(), self.core.clock.clone(), lease.reference());
        let context = TaskContext::new(
            lease.clone(),
            task.task_type.clone(),
            task.name,
            task.params,
            stop.clone(),
            Arc::new(writer),
        );
        let executor = self.clone();
        self.attempts.spawn(async move {
            let ran = match executor.registry.get(&task.task_type) {
                Some(handler) => {
                    attempt::run(handler, context, time_limit, stop, executor.core.config.cancel_grace).await
                }
                None => Ran::Returned(Err(crate::engine::handler::HandlerError::permanent(format!(
                    "no handler serves task type {}",
                    task.task_type
                )))),
            };
            executor.conclude(lease, ends_at, ran).await;
        });
    }

    /// Reports how an attempt ended and frees its slot. `ends_at` is when
    /// its time runs out.
    async fn conclude(&self, lease: Lease, ends_at: Timestamp, ran: Ran) {
        let end = match ran {
            Ran::Returned(Ok(value)) => Some(AttemptEnd::Succeeded(value)),
            Ran::Returned(Err(error)) => Some(AttemptEnd::Failed {
                error: error.message,
                retryable: error.retryable,
            }),
            Ran::Panicked(message) => Some(AttemptEnd::Failed {
                error: format!("handler panicked: {message}"),
                retryable: true,
            }),
            Ran::TimedOut => {
                // The lease ends with the time limit: taking it back records
                // the timeout and decides the retry.
                let now = self.core.clock.now().max(ends_at);
                if let Err(error) = self.core.rescue_expired(now).await {
                    tracing::warn!(task_id = %lease.task_id, %error, "could not record a timeout yet; the rescuer will");
                }
                None
            }
            Ran::Stopped => None,
        };
        if let Some(end) = end {
            self.report(&lease, end).await;
        }
        let ended = self.running.lock().remove(&lease.task_id);
        if let Some(attempt) = ended {
            self.core.attempt_ended(&attempt.task_type);
        }
    }

    /// Reports an attempt's end, trying again while the store is
    /// unavailable; bounded by the lease, which the store refuses once it
    /// has expired.
    async fn report(&self, lease: &Lease, end: AttemptEnd) {
        let mut retry_delay = Duration::from_millis(50);
        loop {
            let report = AttemptReport {
                lease: lease.reference(),
                end: end.clone(),
                machine: self.core.limits.machine(),
                now: self.core.clock.now(),
            };
            match self.core.store.finish(report).await {
                Ok(_) => {
                    return;
                }
                Err(StoreError::LeaseLost { reason, .. }) => {
                    tracing::info!(task_id = %lease.task_id, %reason, "attempt ended under a lost lease; its outcome does not count");
                    return;
                }
                Err(error) => {
                    tracing::warn!(task_id = %lease.task_id, %error, "cannot record the end of an attempt yet; trying again");
                    if self.core.stopping.is_cancelled() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(retry_delay) => {}
                        _ = self.core.stopping.cancelled() => return,
                    }
                    retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }

    /// Renews the leases of running attempts every third of a lease.
    async fn renew_loop(self: Arc<Self>) {
        let lease_duration = self.core.config.lease_duration;
        let period = self.core.config.renew_interval();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = self.core.stopping.cancelled() => return,
            }
            let now = self.core.clock.now();
            let due: Vec<LeaseRef> = self
                .running
                .lock()
                .values()
                .filter(|attempt| attempt.lease.deadline < now.saturating_add(lease_duration - period))
                .map(|attempt| attempt.lease.reference())
                .collect();
            if due.is_empty() {
                continue;
            }
            let request = RenewRequest {
                leases: due.clone(),
                lease_duration,
                now,
            };
            match self.core.store.renew(request).await {
                Ok(renewed) => {
                    let mut running = self.running.lock();
                    for (lease, result) in due.iter().zip(renewed) {
                        let Some(attempt) = running.get_mut(&lease.task_id) else {
                            continue;
                        };
                        match result {
                            Ok(deadline) => attempt.lease.deadline = deadline,
                            Err(reason) => {
                                tracing::warn!(task_id = %lease.task_id, %reason, "lease lost; stopping the handler");
                                attempt.stop.cancel();
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot renew leases; trying again next period"),
            }
        }
    }
}
