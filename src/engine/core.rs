//! What every part of the engine shares: the store, the settings, the
//! concurrency limits, the counters, and the signals that wake the parts
//! that wait (executors, the stager, the rescuer).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use std::collections::BTreeMap;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::catalog::TaskTypeCatalog;
use crate::engine::config::EngineConfig;
use crate::engine::dispatch::{ClaimPlan, Dispatch};
use crate::engine::error::EngineResult;
use crate::engine::limits::ConcurrencyLimits;
use crate::engine::metrics::EngineMetrics;
use crate::engine::worker_registry::WorkerRegistry;
use crate::model::rules::placement::unserved_reason;
use crate::model::{AttemptOutcome, Clock, ExecutorId, Task, TaskEvent, TaskId, TaskStatus, Timestamp, WorkerInfo};
use crate::store::{
    ClaimRequest, Claimed, ClaimedTask, RescueScope, Rescued, StatusCount, Store, StoreResult, SubmitBatch, Submitted,
    Transition,
};

pub struct Core {
    pub(in crate::engine) store: Arc<dyn Store>,
    pub(in crate::engine) config: Arc<EngineConfig>,
    /// The time, for every decision the engine makes.
    pub(in crate::engine) clock: Clock,
    pub(in crate::engine) limits: ConcurrencyLimits,
    pub(in crate::engine) metrics: Mutex<EngineMetrics>,
    /// The task types a submit may use.
    pub(in crate::engine) catalog: TaskTypeCatalog,
    /// What each executor may claim now.
    pub(in crate::engine) dispatch: Dispatch,
    /// Task types some executor of this node serves, with how many do.
    served: RwLock<BTreeMap<String, usize>>,
    /// The workers connected to this node.
    pub(in crate::engine) workers: WorkerRegistry,
    /// The workers connected to the other nodes sharing the store, as
    /// they last said (empty on a store of one node).
    pub(in crate::engine) workers_elsewhere: RwLock<Vec<WorkerInfo>>,
    /// Fires when a worker connects to or leaves this node: the others are
    /// told at once.
    pub(in crate::engine) workers_changed: Notify,
    /// Bumped whenever tasks may have become claimable; every executor
    /// watches it, so none misses a change made while it was claiming.
    work: watch::Sender<u64>,
    /// The earliest time a SCHEDULED task is known to become due.
    next_due: Mutex<Option<Timestamp>>,
    pub(in crate::engine) due_changed: Notify,
    /// A schedule was created or changed: the scheduler looks again.
    pub(in crate::engine) schedules_changed: Notify,
    pub(in crate::engine) rescue_wanted: Notify,
    /// Fires when the engine stops; every background loop ends on it.
    pub(in crate::engine) stopping: CancellationToken,
    accepting: AtomicBool,
    /// Tasks waiting to run (PENDING, SCHEDULED, WAITING), following the
    /// committed transitions: what load shedding compares with
    /// `max_queue_depth` without asking the store.
    queued: AtomicU64,
    /// Stops the in-process attempt of a task (set by the local executor):
    /// for attempts ended by another node.
    pub(in crate::engine) local_stop: RwLock<Option<StopAttempt>>,
    pub(in crate::engine) started_at: Instant,
}

/// Stops the in-process attempt of a task.
pub type StopAttempt = Arc<dyn Fn(TaskId) + Send + Sync>;

/// Statuses of a task that waits to run.
fn is_queued(status: TaskStatus) -> bool {
    matches!(
        status,
        TaskStatus::Pending | TaskStatus::Scheduled | TaskStatus::Waiting
    )
}

impl Core {
    /// A core over `store`, whose tasks are counted in `counts`.
    pub fn new(store: Arc<dyn Store>, config: EngineConfig, counts: &[StatusCount]) -> Self {
        let limits = ConcurrencyLimits::new(config.max_concurrent_tasks, config.type_concurrency_limits.clone());
        Core {
            store,
            clock: config.clock.clone(),
            config: Arc::new(config),
            limits,
            metrics: Mutex::new(EngineMetrics::default()),
            catalog: TaskTypeCatalog::default(),
            dispatch: Dispatch::new(counts),
            served: RwLock::new(BTreeMap::new()),
            workers: WorkerRegistry::default(),
            workers_elsewhere: RwLock::new(Vec::new()),
            workers_changed: Notify::new(),
            work: watch::Sender::new(0),
            next_due: Mutex::new(None),
            due_changed: Notify::new(),
            schedules_changed: Notify::new(),
            rescue_wanted: Notify::new(),
            stopping: CancellationToken::new(),
            accepting: AtomicBool::new(true),
            queued: AtomicU64::new(
                counts
                    .iter()
                    .filter(|count| is_queued(count.status))
                    .map(|count| count.count)
                    .sum(),
            ),
            local_stop: RwLock::new(None),
            started_at: Instant::now(),
        }
    }

    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// The executor named `name` on this node: qualified by the node's id
    /// when nodes share a database, so that no two nodes' executors hold
    /// leases under one name.
    pub fn executor_name(&self, name: &str) -> ExecutorId {
        if self.config.node_id.is_empty() {
            ExecutorId::new(name)
        } else {
            ExecutorId::new(format!("{name}@{}", self.config.node_id))
        }
    }

    /// Tasks waiting to run, as of the last commit.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Acquire)
    }

    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    /// Records that an executor of this node serves `task_types`.
    pub fn add_served(&self, task_types: impl IntoIterator<Item = String>) {
        let mut served = self.served.write();
        for task_type in task_types {
            *served.entry(task_type).or_default() += 1;
        }
    }

    /// Records that an executor that served `task_types` is gone.
    pub fn remove_served(&self, task_types: &[String]) {
        let mut served = self.served.write();
        for task_type in task_types {
            if let Some(count) = served.get_mut(task_type) {
                *count -= 1;
                if *count == 0 {
                    served.remove(task_type);
                }
            }
        }
    }

    /// Whether something runs `task_type`: an executor of this node or a
    /// worker connected to another.
    pub fn serves(&self, task_type: &str) -> bool {
        self.served.read().contains_key(task_type)
            || self
                .workers_elsewhere
                .read()
                .iter()
                .any(|worker| worker.task_types.iter().any(|served| served == task_type))
    }

    /// Every task type something runs, here or on another node.
    pub fn served_types(&self) -> Vec<String> {
        let mut served: std::collections::BTreeSet<String> = self.served.read().keys().cloned().collect();
        for worker in self.workers_elsewhere.read().iter() {
            served.extend(worker.task_types.iter().cloned());
        }
        served.into_iter().collect()
    }

    /// Every worker of the cluster (this node's and the others'), sorted
    /// by id.
    pub fn all_workers(&self) -> Vec<WorkerInfo> {
        let mut workers = self.workers.list();
        workers.extend(self.workers_elsewhere.read().iter().cloned());
        workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        workers
    }

    /// How many workers of the cluster serve each task type.
    pub fn workers_by_type(&self) -> BTreeMap<String, usize> {
        let mut by_type = self.workers.workers_by_type();
        for worker in self.workers_elsewhere.read().iter() {
            for task_type in &worker.task_types {
                *by_type.entry(task_type.clone()).or_default() += 1;
            }
        }
        by_type
    }

    /// Says in `status_reason` why a PENDING task that nothing here serves
    /// does not start.
    pub fn explain(&self, task: &mut Task) {
        if task.status == TaskStatus::Pending && !self.serves(&task.task_type) {
            task.status_reason = unserved_reason(&task.task_type);
        }
    }

    /// [`Core::explain`] for an event's task, copying it only when it
    /// changes.
    pub fn explain_event(&self, mut event: TaskEvent) -> TaskEvent {
        if let Some(task) = &event.task
            && task.status == TaskStatus::Pending
            && !self.serves(&task.task_type)
        {
            let mut task = Task::clone(task);
            self.explain(&mut task);
            event.task = Some(Arc::new(task));
        }
        event
    }

    /// Takes in what one store answer changed: counters, and wake-ups for
    /// whoever waits on such a change.
    pub fn observe(&self, transitions: &[Transition]) {
        if transitions.is_empty() {
            return;
        }
        self.metrics.lock().observe(transitions);
        self.follow(transitions);
    }

    /// Takes in what another node sharing the store committed: not this
    /// node's metrics, but its view of the queue, its wake-ups, and the
    /// attempts running here that ended there (cancelled, or their lease
    /// taken back), which are stopped.
    pub fn observe_remote(&self, transitions: &[Transition]) {
        self.follow(transitions);
        for transition in transitions {
            if transition.from == Some(TaskStatus::Running) {
                let reason = match transition.to {
                    TaskStatus::Cancelled => "the task was cancelled",
                    _ => "the attempt was ended on another node",
                };
                self.workers.taken_back(transition.task_id, reason);
                if let Some(stop) = self.local_stop.read().clone() {
                    stop(transition.task_id);
                }
            }
        }
    }

    /// After notices from other nodes may have been missed: the queue's
    /// counts are read again from the store.
    pub fn resync(self: &Arc<Self>) {
        let core = self.clone();
        tokio::spawn(async move {
            match core.store.counts().await {
                Ok(counts) => {
                    core.dispatch.reset_ready(&counts);
                    core.queued.store(
                        counts
                            .iter()
                            .filter(|count| is_queued(count.status))
                            .map(|count| count.count)
                            .sum(),
                        Ordering::Release,
                    );
                    core.work_may_be_ready();
                    core.due_changed.notify_one();
                }
                Err(error) => tracing::warn!(%error, "cannot read the queue's counts again"),
            }
        });
    }

    /// What every commit, here or elsewhere, changes in this node's view.
    fn follow(&self, transitions: &[Transition]) {
        let (entered, left) = transitions.iter().fold((0u64, 0u64), |(entered, left), transition| {
            (
                entered + u64::from(is_queued(transition.to)),
                left + u64::from(transition.from.is_some_and(is_queued)),
            )
        });
        if entered >= left {
            self.queued.fetch_add(entered - left, Ordering::AcqRel);
        } else {
            let _ = self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                Some(queued.saturating_sub(left - entered))
            });
        }
        if self.dispatch.observe(transitions) {
            self.work_may_be_ready();
        }
        let earliest = transitions.iter().filter_map(|transition| transition.due).min();
        if let Some(due) = earliest {
            let mut next = self.next_due.lock();
            if next.is_none_or(|next| due < next) {
                *next = Some(due);
                self.due_changed.notify_one();
            }
        }
    }

    /// An attempt of `task_type` that ran on this node ended; executors
    /// waiting for room look again if work waits.
    pub fn attempt_ended(&self, task_type: &str) {
        if self.dispatch.ended(task_type) {
            self.work_may_be_ready();
        }
    }

    /// Claims for `executor` what `plan` allows, and settles the plan with
    /// the node's accounting whatever the store answers: every executor,
    /// in-process or a worker's session, claims this one way.
    pub async fn claim_planned(&self, executor: &ExecutorId, plan: ClaimPlan) -> StoreResult<Vec<ClaimedTask>> {
        let request = self.claim_request(executor, &plan);
        let claimed = self.store.claim(request).await;
        self.settle(plan, claimed.as_ref().ok());
        Ok(claimed?.tasks)
    }

    /// Submits `batch` and claims for `executor` what `plan` allows in the
    /// same commit (see [`Store::submit_and_claim`]), then settles the plan
    /// as [`Core::claim_planned`] does.
    pub async fn submit_and_claim_planned(
        &self,
        batch: SubmitBatch,
        executor: &ExecutorId,
        plan: ClaimPlan,
    ) -> StoreResult<(Submitted, Vec<ClaimedTask>)> {
        let request = self.claim_request(executor, &plan);
        let answer = self.store.submit_and_claim(batch, request).await;
        self.settle(plan, answer.as_ref().ok().map(|(_, claimed)| claimed));
        let (submitted, claimed) = answer?;
        Ok((submitted, claimed.tasks))
    }

    fn claim_request(&self, executor: &ExecutorId, plan: &ClaimPlan) -> ClaimRequest {
        ClaimRequest {
            executor: executor.clone(),
            task_types: plan.task_types.clone(),
            limit: plan.limit,
            lease_duration: self.config.lease_duration,
            machine: self.limits.machine(),
            now: self.clock.now(),
        }
    }

    /// Hands `plan`'s room back to the node's accounting: what `claimed`
    /// started stays taken (nothing, when the claim failed).
    fn settle(&self, plan: ClaimPlan, claimed: Option<&Claimed>) {
        let started = claimed
            .into_iter()
            .flat_map(|claimed| claimed.tasks.iter().map(|task| task.task.task_type.as_str()));
        if self.dispatch.settle(plan, started) {
            self.work_may_be_ready();
        }
    }

    /// Tells every executor to look for work again.
    pub fn work_may_be_ready(&self) {
        self.work
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// What an executor watches to learn that work may be ready.
    pub fn watch_work(&self) -> watch::Receiver<u64> {
        self.work.subscribe()
    }

    /// The next due time the stager should wake for.
    pub fn next_due(&self) -> Option<Timestamp> {
        *self.next_due.lock()
    }

    /// Sets the next due time as the store reports it.
    pub fn set_next_due(&self, due: Option<Timestamp>) {
        *self.next_due.lock() = due;
    }

    /// Takes back the leases whose deadline has passed by `now`; workers
    /// here that held them are told to stop.
    pub async fn rescue_expired(&self, now: Timestamp) -> EngineResult<Rescued> {
        let rescued = self.store.rescue(RescueScope::Expired, now).await?;
        for (task_id, outcome) in &rescued.tasks {
            let reason = match outcome {
                AttemptOutcome::TimedOut => "the attempt ran out of time",
                _ => "the lease expired",
            };
            self.workers.taken_back(*task_id, reason);
        }
        Ok(rescued)
    }
}
