//! The engine's side of one connected worker: a remote executor. It claims
//! ready tasks of the worker's types while the worker has room, within the
//! node's limits, and hands them over with their leases; it passes the
//! worker's renewals, progress and finishes to the store; and it tells the
//! worker when a lease it holds stops counting (the task was cancelled,
//! timed out, or taken back). When the worker goes away, every lease it
//! still holds is taken back and its task retried per its policy.
//!
//! Nothing here knows the wire: the transport feeds the session the
//! worker's messages and forwards what comes out of [`ToWorker`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::core::Core;
use crate::engine::error::EngineResult;
use crate::engine::executor::progress::ProgressWriter;
use crate::engine::handler::ProgressSink;
use crate::engine::validate::{validate_attempt_end, validate_progress};
use crate::engine::worker_registry::{ConnectedWorker, WorkerInfo};
use crate::model::rules::attempts::AttemptEnd;
use crate::model::{ExecutorId, Lease, LeaseLost, LeaseRef, Progress, TaskId, TaskStatus, Timestamp};
use crate::store::{AttemptReport, ClaimedTask, RenewRequest, RescueScope, StoreError};

/// Longest a closing session waits for the finishes it already received.
const FINISHES_IN_FLIGHT: Duration = Duration::from_secs(10);

/// Longest wait between tries of a claim that failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// What the engine tells a worker.
#[derive(Debug)]
pub enum ToWorker {
    /// Tasks leased to the worker, in scheduling order.
    Assigned(Vec<ClaimedTask>),
    /// No task is assigned after this: the worker asked to drain, or the
    /// server is stopping.
    Drained,
    /// This lease no longer counts; the worker should stop its handler.
    /// Whatever it reports under the lease is refused.
    Revoked { lease: LeaseRef, reason: String },
}

/// A task the worker holds.
struct Held {
    lease: Lease,
    task_type: String,
    /// Whether the store still honours the lease, as far as the session
    /// knows. Once it does not, the node's room for it is free, though the
    /// worker's own room is taken until the worker reports back.
    live: bool,
    progress: Arc<ProgressWriter>,
}

pub struct Session {
    id: ExecutorId,
    core: Arc<Core>,
    task_types: Vec<String>,
    capacity: usize,
    labels: BTreeMap<String, String>,
    instance: String,
    connected_at: Timestamp,
    last_seen: AtomicI64,
    finished: AtomicU64,
    held: Mutex<HashMap<TaskId, Held>>,
    /// Fires when the worker has room again.
    room: Notify,
    draining: CancellationToken,
    closing: CancellationToken,
    outbox: mpsc::UnboundedSender<ToWorker>,
    /// Operations the worker asked for that are under way.
    operations: TaskTracker,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl Session {
    /// A session for worker `id`; nothing is claimed before [`Session::start`].
    pub(crate) fn new(
        core: Arc<Core>,
        id: ExecutorId,
        task_types: Vec<String>,
        capacity: usize,
        labels: BTreeMap<String, String>,
        instance: String,
    ) -> (Arc<Session>, mpsc::UnboundedReceiver<ToWorker>) {
        let (outbox, inbox) = mpsc::unbounded_channel();
        let now = core.clock.now();
        let session = Arc::new(Session {
            id,
            core,
            task_types,
            capacity: capacity.max(1),
            labels,
            instance,
            connected_at: now,
            last_seen: AtomicI64::new(now.as_micros()),
            finished: AtomicU64::new(0),
            held: Mutex::new(HashMap::new()),
            room: Notify::new(),
            draining: CancellationToken::new(),
            closing: CancellationToken::new(),
            outbox,
            operations: TaskTracker::new(),
            dispatcher: Mutex::new(None),
        });
        (session, inbox)
    }

    pub fn id(&self) -> &ExecutorId {
        &self.id
    }

    pub fn task_types(&self) -> &[String] {
        &self.task_types
    }

    /// Starts handing tasks to the worker.
    pub(crate) fn start(self: &Arc<Self>) {
        let handle = tokio::spawn(self.clone().dispatch());
        *self.dispatcher.lock() = Some(handle);
    }

    pub fn holds(&self, task_id: TaskId) -> bool {
        self.held.lock().contains_key(&task_id)
    }

    pub fn info(&self) -> WorkerInfo {
        WorkerInfo {
            worker_id: self.id.to_string(),
            node: self.core.config.node_id.clone(),
            task_types: self.task_types.clone(),
            capacity: self.capacity,
            held: self.held.lock().len(),
            labels: self.labels.clone(),
            connected_at: self.connected_at,
            last_seen: Timestamp(self.last_seen.load(Ordering::Relaxed)),
            draining: self.draining.is_cancelled(),
            finished: self.finished.load(Ordering::Relaxed),
        }
    }

    /// Notes that the worker said something.
    pub fn touch(&self) {
        self.last_seen
            .store(self.core.clock.now().as_micros(), Ordering::Relaxed);
    }

    /// Stops handing out tasks; what the worker holds it may still finish
    /// or hand back. [`ToWorker::Drained`] follows the last assignment.
    pub fn drain(&self) {
        self.touch();
        self.draining.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Resolves once the session is closed.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }

    /// Whether the worker holds nothing.
    pub fn is_idle(&self) -> bool {
        self.held.lock().is_empty()
    }

    /// The lease stopped counting (its task was cancelled): the node's room
    /// is free and the worker is told to stop.
    pub fn revoke(&self, lease: &LeaseRef, reason: &str) {
        let matched = {
            let mut held = self.held.lock();
            match held.get_mut(&lease.task_id) {
                Some(entry) if entry.lease.reference() == *lease => self.lose(entry),
                _ => None,
            }
        };
        if let Some(task_type) = matched {
            self.core.attempt_ended(&task_type);
            let _ = self.outbox.send(ToWorker::Revoked {
                lease: *lease,
                reason: reason.to_string(),
            });
        }
    }

    /// [`Session::revoke`] for a lease the store took back (it expired or
    /// ran out of time), known by its task.
    pub fn taken_back(&self, task_id: TaskId, reason: &str) {
        let lease = self.held.lock().get(&task_id).map(|entry| entry.lease.reference());
        if let Some(lease) = lease {
            self.revoke(&lease, reason);
        }
    }

    /// Marks a held lease as no longer honoured; the task type whose room
    /// it frees, the first time.
    fn lose(&self, entry: &mut Held) -> Option<String> {
        if entry.live {
            entry.live = false;
            Some(entry.task_type.clone())
        } else {
            None
        }
    }

    /// The worker is done with `task_id` under `lease` (its finish was
    /// answered): its room is free, and the node's if the lease was live.
    fn release(&self, lease: &LeaseRef) {
        let removed = {
            let mut held = self.held.lock();
            match held.get(&lease.task_id) {
                Some(entry) if entry.lease.reference() == *lease => held.remove(&lease.task_id),
                _ => None,
            }
        };
        if let Some(entry) = removed {
            if entry.live {
                self.core.attempt_ended(&entry.task_type);
            }
            self.room.notify_one();
        }
    }

    /// Ends the attempt of `lease` with `end`: the task's status after it.
    /// A lease the store no longer honours is refused, and the worker's
    /// room for it is free either way.
    ///
    /// The finish counts as under way from this call, not from the first
    /// poll: a session that closes meanwhile waits for it before it takes
    /// the worker's leases back.
    pub fn finish(
        self: &Arc<Self>,
        lease: LeaseRef,
        end: AttemptEnd,
    ) -> impl Future<Output = EngineResult<TaskStatus>> + Send + 'static {
        self.touch();
        let refused = validate_attempt_end(&end, &self.core.config.limits, "").err();
        let session = self.clone();
        let finishing = self.operations.track_future(async move {
            let report = AttemptReport {
                lease,
                end,
                machine: session.core.limits.machine(),
                now: session.core.clock.now(),
            };
            let answer = session.core.store.finish(report).await;
            match &answer {
                Ok(_) => {
                    session.finished.fetch_add(1, Ordering::Relaxed);
                    session.release(&lease);
                }
                Err(StoreError::LeaseLost { .. }) => session.release(&lease),
                Err(_) => {}
            }
            answer
        });
        async move {
            if let Some(refusal) = refused {
                return Err(refusal);
            }
            Ok(finishing.await?.status)
        }
    }

    /// Renews leases the worker holds; each one lost says why (and its
    /// room on the node is free).
    pub async fn renew(&self, leases: Vec<LeaseRef>) -> EngineResult<Vec<Result<Timestamp, LeaseLost>>> {
        self.touch();
        let request = RenewRequest {
            leases: leases.clone(),
            lease_duration: self.core.config.lease_duration,
            now: self.core.clock.now(),
        };
        let renewed = self.core.store.renew(request).await?;
        let mut freed = Vec::new();
        {
            let mut held = self.held.lock();
            for (lease, result) in leases.iter().zip(&renewed) {
                let Some(entry) = held.get_mut(&lease.task_id) else {
                    continue;
                };
                if entry.lease.reference() != *lease {
                    continue;
                }
                match result {
                    Ok(deadline) => entry.lease.deadline = *deadline,
                    Err(_) => freed.extend(self.lose(entry)),
                }
            }
        }
        for task_type in freed {
            self.core.attempt_ended(&task_type);
        }
        Ok(renewed)
    }

    /// Records progress of a held task. Reports coalesce: when they come
    /// faster than they are written, only the latest is.
    /// Refused when the report is not one a worker may send (the field is
    /// named relative to the report).
    pub fn progress(&self, lease: &LeaseRef, progress: Progress) -> EngineResult<()> {
        self.touch();
        validate_progress(&progress, "")?;
        let writer = self
            .held
            .lock()
            .get(&lease.task_id)
            .filter(|entry| entry.live && entry.lease.reference() == *lease)
            .map(|entry| entry.progress.clone());
        if let Some(writer) = writer {
            writer.report(progress);
        }
        Ok(())
    }

    /// Ends the session: no more claims, the finishes already received are
    /// recorded, and every lease the worker still holds is taken back, its
    /// task retried or failed per its policy. `why` is recorded on those
    /// attempts. Returns false when the session was closed before.
    async fn close(&self, why: &str) -> bool {
        if self.closing.is_cancelled() {
            return false;
        }
        self.closing.cancel();
        let dispatcher = self.dispatcher.lock().take();
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        self.operations.close();
        if tokio::time::timeout(FINISHES_IN_FLIGHT, self.operations.wait())
            .await
            .is_err()
        {
            tracing::warn!(worker = %self.id, "finishes of a closing worker still under way; taking its leases back");
        }
        let held: Vec<Held> = self.held.lock().drain().map(|(_, entry)| entry).collect();
        if !held.is_empty() {
            let rescue = self.core.store.rescue(
                RescueScope::HeldBy(self.id.clone(), format!("worker {} {why}", self.id)),
                self.core.clock.now(),
            );
            match rescue.await {
                Ok(rescued) => tracing::info!(
                    worker = %self.id,
                    taken_back = rescued.tasks.len(),
                    "took back the leases of a worker that went away"
                ),
                Err(error) => tracing::warn!(
                    worker = %self.id,
                    %error,
                    "cannot take back the leases of a worker that went away; they expire"
                ),
            }
        }
        for entry in held.into_iter().filter(|entry| entry.live) {
            self.core.attempt_ended(&entry.task_type);
        }
        true
    }

    /// Claims for the worker while it has room, until it drains or closes;
    /// a drain is confirmed after the last assignment.
    async fn dispatch(self: Arc<Self>) {
        self.assign().await;
        if self.draining.is_cancelled() {
            let _ = self.outbox.send(ToWorker::Drained);
        }
    }

    async fn assign(self: &Arc<Self>) {
        let mut work = self.core.watch_work();
        let mut retry_delay = Duration::from_millis(10);
        loop {
            work.borrow_and_update();
            if self.closing.is_cancelled() || self.draining.is_cancelled() {
                return;
            }
            let free = self.capacity.saturating_sub(self.held.lock().len());
            let plan = if free > 0 {
                self.core.dispatch.plan(&self.core.limits, &self.task_types, free)
            } else {
                None
            };
            let Some(plan) = plan else {
                tokio::select! {
                    changed = work.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = self.room.notified() => {}
                    _ = self.draining.cancelled() => return,
                    _ = self.closing.cancelled() => return,
                }
                continue;
            };
            match self.core.claim_planned(&self.id, plan).await {
                Ok(claimed) => {
                    retry_delay = Duration::from_millis(10);
                    if claimed.is_empty() {
                        continue;
                    }
                    {
                        let mut held = self.held.lock();
                        for task in &claimed {
                            held.insert(
                                task.task.id,
                                Held {
                                    lease: task.lease.clone(),
                                    task_type: task.task.task_type.clone(),
                                    live: true,
                                    progress: Arc::new(ProgressWriter::new(
                                        self.core.store.clone(),
                                        self.core.clock.clone(),
                                        task.lease.reference(),
                                    )),
                                },
                            );
                        }
                    }
                    // A worker that is gone gets its leases taken back when
                    // its session closes.
                    let _ = self.outbox.send(ToWorker::Assigned(claimed));
                }
                Err(error) => {
                    tracing::warn!(worker = %self.id, %error, "claim for a worker failed; trying again");
                    tokio::select! {
                        _ = tokio::time::sleep(retry_delay) => {}
                        _ = self.closing.cancelled() => return,
                    }
                    retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                }
            }
        }
    }
}

/// A connected worker, as its transport holds it. Dropping it without
/// [`WorkerConnection::close`] closes the session in the background.
pub struct WorkerConnection {
    session: Arc<Session>,
    core: Arc<Core>,
    closed: bool,
}

impl WorkerConnection {
    pub(crate) fn new(session: Arc<Session>, core: Arc<Core>) -> Self {
        WorkerConnection {
            session,
            core,
            closed: false,
        }
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub fn worker_id(&self) -> &str {
        self.session.id.as_str()
    }

    /// How long a lease lasts unless renewed.
    pub fn lease_duration(&self) -> Duration {
        self.core.config.lease_duration
    }

    /// How often the worker should renew what it holds.
    pub fn renew_interval(&self) -> Duration {
        self.core.config.renew_interval()
    }

    /// Ends the session: see `Session::close`.
    pub async fn close(mut self, why: &str) {
        self.closed = true;
        close_session(self.core.clone(), self.session.clone(), why).await;
    }
}

impl Drop for WorkerConnection {
    fn drop(&mut self) {
        if !self.closed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(close_session(self.core.clone(), self.session.clone(), "disconnected"));
        }
    }
}

impl ConnectedWorker for Session {
    fn id(&self) -> &ExecutorId {
        Session::id(self)
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn task_types(&self) -> &[String] {
        Session::task_types(self)
    }

    fn holds(&self, task_id: TaskId) -> bool {
        Session::holds(self, task_id)
    }

    fn info(&self) -> WorkerInfo {
        Session::info(self)
    }

    fn revoke(&self, lease: &LeaseRef, reason: &str) {
        Session::revoke(self, lease, reason)
    }

    fn taken_back(&self, task_id: TaskId, reason: &str) {
        Session::taken_back(self, task_id, reason)
    }

    fn finish(
        self: Arc<Self>,
        lease: LeaseRef,
        end: AttemptEnd,
    ) -> futures::future::BoxFuture<'static, EngineResult<TaskStatus>> {
        Box::pin(Session::finish(&self, lease, end))
    }

    fn disconnect(self: Arc<Self>, why: &'static str) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(close_session(self.core.clone(), self, why))
    }
}

/// Closes `session` and forgets the worker, once.
pub(crate) async fn close_session(core: Arc<Core>, session: Arc<Session>, why: &str) {
    if session.close(why).await {
        core.workers.remove(session.id());
        core.remove_served(&session.task_types);
        core.workers_changed.notify_one();
        tracing::info!(worker = %session.id, why, "worker disconnected");
    }
}
