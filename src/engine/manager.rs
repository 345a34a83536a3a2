//! The TaskManager: the engine's public face. Submit, get, list, cancel,
//! stats and watch, plus the dispatcher that starts attempts and the timer
//! that releases scheduled tasks. Transports call this and nothing deeper.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::config::EngineConfig;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::events::TaskEvent;
use crate::engine::executor;
use crate::engine::handler::{HandlerRegistry, ProgressSink};
use crate::engine::model::{
    DependencyTarget, NewTask, Progress, Task, TaskDependency, TaskFilter, TaskId, TaskStatus, Timestamp,
    unmet_dependency_reason,
};
use crate::engine::recovery;
use crate::engine::scheduler::{AttemptResult, CancelOutcome, PendingKey, SchedulerState, StatusCounts};
use crate::engine::validate::validate_new_task;
use crate::engine::watch as watch_streams;
use crate::store::{ListQuery, Store, WriteOp};

/// Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct TaskManager {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<SchedulerState>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: Arc<EngineConfig>,
    pub(crate) registry: Arc<HandlerRegistry>,
    pub(crate) data_dir: PathBuf,
    timer_wakeup: Notify,
    stopping: CancellationToken,
    attempts: TaskTracker,
    started_at: Instant,
}

/// A page of tasks.
#[derive(Debug)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Id to pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<TaskId>,
}

/// Counts of tasks of one type.
#[derive(Clone, Debug, Default)]
pub struct TypeStats {
    pub task_type: String,
    pub counts: StatusCounts,
    pub handler_available: bool,
    pub concurrency_limit: usize,
}

/// A snapshot of the engine's statistics.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub counts: StatusCounts,
    pub by_type: Vec<TypeStats>,
    pub running: usize,
    pub max_concurrent_tasks: usize,
    pub effective_concurrency_limit: usize,
    pub concurrency_limit_reason: String,
    pub unserved_task_types: Vec<String>,
    pub submitted_since_start: u64,
    pub failed_attempts_since_start: u64,
    pub retries_since_start: u64,
    pub success_rate: f64,
    pub uptime: Duration,
}

/// What a submit decided under the lock: ids, initial statuses, and the
/// existing tasks that repeated idempotency keys stand for.
struct Plan {
    existing: Vec<Option<Arc<Task>>>,
    ids: Vec<TaskId>,
    statuses: Vec<TaskStatus>,
    reasons: Vec<String>,
    dependencies: Vec<Vec<TaskDependency>>,
    pinned: Vec<TaskId>,
    key_senders: Vec<(String, watch::Sender<bool>)>,
}

/// What a submit resolved to before it is written.
struct PreparedBatch {
    tasks: Vec<Arc<Task>>,
    /// Position in the request -> index in `tasks`, or an existing task
    /// returned for a repeated idempotency key.
    slots: Vec<Slot>,
    pinned: Vec<TaskId>,
    key_senders: Vec<(String, watch::Sender<bool>)>,
}

enum Slot {
    New(usize),
    Existing(Arc<Task>),
}

/// Why `prepare` could not finish under the lock.
enum PrepareError {
    Invalid(EngineError),
    /// Another in-flight submit holds one of the keys: wait for its commit,
    /// then prepare again (it will then be an existing task).
    KeyInFlight(watch::Receiver<bool>),
}

impl From<EngineError> for PrepareError {
    fn from(error: EngineError) -> Self {
        PrepareError::Invalid(error)
    }
}

impl TaskManager {
    /// Starts the engine on `store`: recovers unfinished tasks, then starts
    /// the dispatcher.
    pub async fn start(
        store: Arc<dyn Store>,
        registry: HandlerRegistry,
        config: EngineConfig,
        data_dir: PathBuf,
    ) -> EngineResult<Self> {
        let config = Arc::new(config);
        let registry = Arc::new(registry);
        let state = SchedulerState::new(config.clone(), registry.clone(), store.clone());
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            store: store.clone(),
            config,
            registry,
            data_dir,
            timer_wakeup: Notify::new(),
            stopping: CancellationToken::new(),
            attempts: TaskTracker::new(),
            started_at: Instant::now(),
        });
        recovery::recover(&inner).await?;
        let manager = TaskManager { inner };
        tokio::spawn(run_timer(manager.inner.clone()));
        manager.inner.timer_wakeup.notify_one();
        Ok(manager)
    }

    /// Whether submits are accepted (false once shutdown began).
    pub fn is_accepting(&self) -> bool {
        self.inner.state.lock().accepting
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Submits one task; returns it once durable.
    pub async fn submit(&self, task: NewTask) -> EngineResult<Arc<Task>> {
        let mut tasks = self.submit_tasks(vec![task], "").await?;
        Ok(tasks.remove(0))
    }

    /// Submits a batch atomically; members may depend on each other by
    /// `batch_ref`. Returns the tasks in request order once durable.
    pub async fn submit_batch(&self, tasks: Vec<NewTask>) -> EngineResult<Vec<Arc<Task>>> {
        if tasks.is_empty() {
            return Err(EngineError::invalid("tasks", "must not be empty"));
        }
        let limit = self.inner.config.limits.max_batch_size;
        if tasks.len() > limit {
            return Err(EngineError::invalid(
                "tasks",
                format!("{} tasks, more than the limit of {limit}", tasks.len()),
            ));
        }
        self.submit_tasks(tasks, "tasks").await
    }

    async fn submit_tasks(&self, requests: Vec<NewTask>, list_field: &str) -> EngineResult<Vec<Arc<Task>>> {
        let inner = &self.inner;
        let now = Timestamp::now();
        let prefix = |index: usize| {
            if list_field.is_empty() {
                String::new()
            } else {
                format!("{list_field}[{index}].")
            }
        };
        for (index, request) in requests.iter().enumerate() {
            validate_new_task(request, &inner.config.limits, now, &prefix(index))?;
            if list_field.is_empty() && request.batch_ref.is_some() {
                return Err(EngineError::invalid("batch_ref", "only allowed in SubmitTasks"));
            }
        }
        let batch_order = order_batch(&requests, &prefix)?;

        // Idempotency keys seen before: memory first, then the store for
        // tasks that have left memory.
        let mut stored_duplicates: HashMap<usize, Arc<Task>> = HashMap::new();
        for (index, request) in requests.iter().enumerate() {
            let Some(key) = &request.idempotency_key else { continue };
            let known_in_memory = {
                let state = inner.state.lock();
                state.task_for_key(key).is_some() || state.pending_keys.contains_key(key)
            };
            if !known_in_memory && let Some(task) = inner.store.find_by_idempotency_key(key).await? {
                stored_duplicates.insert(index, Arc::new(task));
            }
        }

        // Dependencies on existing tasks: they must exist.
        let mut external: Vec<TaskId> = Vec::new();
        for request in &requests {
            for dependency in &request.dependencies {
                if let DependencyTarget::Task(id) = dependency.target {
                    external.push(id);
                }
            }
        }
        let not_in_memory: Vec<TaskId> = if external.is_empty() {
            Vec::new()
        } else {
            let state = inner.state.lock();
            external
                .iter()
                .copied()
                .filter(|id| state.task(*id).is_none())
                .collect()
        };
        let stored_statuses = if not_in_memory.is_empty() {
            HashMap::new()
        } else {
            inner.store.statuses(&not_in_memory).await?
        };

        let prepared = loop {
            let attempt = {
                let mut state = inner.state.lock();
                if !state.accepting {
                    return Err(EngineError::ShuttingDown);
                }
                self.prepare(
                    &mut state,
                    &requests,
                    &batch_order,
                    &stored_duplicates,
                    &stored_statuses,
                    &prefix,
                    now,
                )
            };
            match attempt {
                Ok(plan) => break self.build(plan, requests, now),
                Err(PrepareError::Invalid(error)) => return Err(error),
                Err(PrepareError::KeyInFlight(mut committed)) => {
                    // Bounded: the other submit resolves when its commit does.
                    let _ = committed.wait_for(|done| *done).await;
                }
            }
        };

        let new_tasks = prepared.tasks.clone();
        let ticket = if new_tasks.is_empty() {
            None
        } else {
            Some(
                inner
                    .store
                    .write(new_tasks.iter().cloned().map(WriteOp::Insert).collect()),
            )
        };
        let write_sequence = ticket.as_ref().map_or(0, |ticket| ticket.sequence());
        let committed = match ticket {
            Some(ticket) => ticket.await,
            None => Ok(()),
        };

        // Admit, start what can start, and read back the tasks as they are
        // now, under one lock.
        let mut state = inner.state.lock();
        for (key, _) in &prepared.key_senders {
            state.pending_keys.remove(key);
        }
        let mut outcome = None;
        if committed.is_ok() && !new_tasks.is_empty() {
            state.admit(new_tasks.clone(), write_sequence, &stored_statuses);
            state.unpin(&prepared.pinned);
            outcome = Some(state.pump());
        } else {
            state.unpin(&prepared.pinned);
        }
        let result: Vec<Arc<Task>> = prepared
            .slots
            .into_iter()
            .map(|slot| match slot {
                Slot::New(index) => state
                    .task(new_tasks[index].id)
                    .unwrap_or_else(|| new_tasks[index].clone()),
                Slot::Existing(task) => state.task(task.id).unwrap_or(task),
            })
            .collect();
        drop(state);
        if let Some(outcome) = outcome {
            self.launch(outcome);
        }
        for (_, sender) in prepared.key_senders {
            let _ = sender.send(committed.is_ok());
        }
        committed?;
        Ok(result)
    }

    /// Builds the tasks of a submit under the state lock: decides each
    /// one's initial status and reserves idempotency keys.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        state: &mut SchedulerState,
        requests: &[NewTask],
        batch_order: &[usize],
        stored_duplicates: &HashMap<usize, Arc<Task>>,
        stored_statuses: &HashMap<TaskId, TaskStatus>,
        prefix: &dyn Fn(usize) -> String,
        now: Timestamp,
    ) -> Result<Plan, PrepareError> {
        let count = requests.len();
        let mut slots: Vec<Option<Slot>> = (0..count).map(|_| None).collect();
        let mut key_senders = Vec::new();
        let mut keys_in_batch: HashMap<String, usize> = HashMap::new();

        // Resolve repeated idempotency keys first.
        for (index, request) in requests.iter().enumerate() {
            let Some(key) = &request.idempotency_key else { continue };
            if let Some(task) = stored_duplicates.get(&index) {
                slots[index] = Some(Slot::Existing(task.clone()));
            } else if let Some(task) = state.task_for_key(key) {
                slots[index] = Some(Slot::Existing(task));
            } else if let Some(pending) = state.pending_keys.get(key) {
                return Err(PrepareError::KeyInFlight(pending.committed.clone()));
            } else if let Some(first) = keys_in_batch.get(key) {
                return Err(PrepareError::Invalid(EngineError::invalid(
                    format!("{}idempotency_key", prefix(index)),
                    format!("repeats the key of {}", prefix(*first).trim_end_matches('.')),
                )));
            } else {
                keys_in_batch.insert(key.clone(), index);
            }
        }

        // A member that repeats a known key stands for the existing task:
        // members that depend on it by batch_ref depend on that task.
        let ids: Vec<TaskId> = slots
            .iter()
            .map(|slot| match slot {
                Some(Slot::Existing(task)) => task.id,
                _ => TaskId::new(),
            })
            .collect();
        let refs: HashMap<&str, usize> = requests
            .iter()
            .enumerate()
            .filter_map(|(index, request)| request.batch_ref.as_deref().map(|reference| (reference, index)))
            .collect();

        // Initial statuses, dependencies before dependents.
        let mut statuses: Vec<TaskStatus> = vec![TaskStatus::Pending; count];
        let mut reasons: Vec<String> = vec![String::new(); count];
        let mut dependencies: Vec<Vec<TaskDependency>> = vec![Vec::new(); count];
        let mut pinned = Vec::new();
        for &index in batch_order {
            let request = &requests[index];
            if let Some(Slot::Existing(task)) = &slots[index] {
                statuses[index] = task.status;
                if state.task(task.id).is_some() {
                    pinned.push(task.id);
                }
                continue;
            }
            let mut unmet = 0;
            let mut broken: Option<String> = None;
            for (dependency_index, dependency) in request.dependencies.iter().enumerate() {
                let required = dependency.required_status;
                let (task_id, status) = match &dependency.target {
                    DependencyTarget::BatchRef(reference) => {
                        let member = refs[reference.as_str()];
                        (ids[member], Some(statuses[member]))
                    }
                    DependencyTarget::Task(id) => {
                        let status = state
                            .task(*id)
                            .map(|task| task.status)
                            .or_else(|| stored_statuses.get(id).copied());
                        if status.is_none() {
                            return Err(PrepareError::Invalid(EngineError::invalid(
                                format!("{}dependencies[{dependency_index}].task_id", prefix(index)),
                                format!("task {id} does not exist"),
                            )));
                        }
                        if state.task(*id).is_some() {
                            pinned.push(*id);
                        }
                        (*id, status)
                    }
                };
                dependencies[index].push(TaskDependency {
                    task_id,
                    required_status: required,
                });
                match status {
                    Some(status) if status.is_terminal() => {
                        if status != required && broken.is_none() {
                            broken = Some(unmet_dependency_reason(task_id, status, required));
                        }
                    }
                    _ => unmet += 1,
                }
            }
            let delayed = request.run_at.is_some_and(|run_at| run_at > now);
            (statuses[index], reasons[index]) = if let Some(reason) = broken {
                (TaskStatus::Cancelled, format!("cancelled: {reason}"))
            } else if unmet > 0 {
                (
                    TaskStatus::Waiting,
                    format!("waiting for {unmet} of {} dependencies", request.dependencies.len()),
                )
            } else if delayed {
                (TaskStatus::Scheduled, "scheduled for run_at".to_string())
            } else if !self.inner.registry.serves(&request.task_type) {
                (
                    TaskStatus::Pending,
                    format!("no handler serves task type {}", request.task_type),
                )
            } else {
                (TaskStatus::Pending, "queued for an execution slot".to_string())
            };
        }

        for (index, request) in requests.iter().enumerate() {
            if slots[index].is_some() {
                continue;
            }
            if let Some(key) = &request.idempotency_key {
                let (sender, receiver) = watch::channel(false);
                state
                    .pending_keys
                    .insert(key.clone(), PendingKey { committed: receiver });
                key_senders.push((key.clone(), sender));
            }
        }
        state.pin(&pinned);
        Ok(Plan {
            existing: slots
                .into_iter()
                .map(|slot| match slot {
                    Some(Slot::Existing(task)) => Some(task),
                    _ => None,
                })
                .collect(),
            ids,
            statuses,
            reasons,
            dependencies,
            pinned,
            key_senders,
        })
    }

    /// Turns a plan and the requests it was made from into tasks, outside
    /// the lock: the requests are consumed, nothing is copied.
    fn build(&self, plan: Plan, requests: Vec<NewTask>, now: Timestamp) -> PreparedBatch {
        let config = &self.inner.config;
        let Plan {
            existing,
            ids,
            statuses,
            mut reasons,
            mut dependencies,
            pinned,
            key_senders,
        } = plan;
        let mut tasks = Vec::new();
        let mut slots = Vec::with_capacity(requests.len());
        for (index, (request, existing)) in requests.into_iter().zip(existing).enumerate() {
            if let Some(task) = existing {
                slots.push(Slot::Existing(task));
                continue;
            }
            let status = statuses[index];
            let cancelled = status == TaskStatus::Cancelled;
            let name = if request.name.is_empty() {
                request.task_type.clone()
            } else {
                request.name
            };
            slots.push(Slot::New(tasks.len()));
            tasks.push(Arc::new(Task {
                id: ids[index],
                name,
                task_type: request.task_type,
                params: request.params,
                priority: request.priority,
                status,
                dependencies: std::mem::take(&mut dependencies[index]),
                max_retries: request.max_retries.unwrap_or(config.default_max_retries),
                retry_count: 0,
                timeout: request.timeout.unwrap_or(config.default_timeout),
                run_at: request.run_at,
                created_at: now,
                started_at: None,
                completed_at: cancelled.then_some(now),
                progress: None,
                result: None,
                error: cancelled.then(|| reasons[index].clone()),
                labels: request.labels,
                idempotency_key: request.idempotency_key,
                attempts: Vec::new(),
                retry_policy: request
                    .retry_policy
                    .unwrap_or_default()
                    .or_defaults(config.default_retry_policy.into()),
                status_reason: std::mem::take(&mut reasons[index]),
                updated_at: now,
            }));
        }
        PreparedBatch {
            tasks,
            slots,
            pinned,
            key_senders,
        }
    }

    /// Spawns the attempts a pump started.
    fn launch(&self, outcome: crate::engine::scheduler::PumpOutcome) {
        for attempt in outcome.started {
            let inner = self.inner.clone();
            self.inner.attempts.spawn(executor::run_attempt(inner, attempt));
        }
        if outcome.next_timer.is_some() {
            self.inner.timer_wakeup.notify_one();
        }
    }

    fn get_cached(&self, id: TaskId) -> Option<Arc<Task>> {
        self.inner.state.lock().task(id)
    }

    /// Returns a task by id.
    pub async fn get(&self, id: TaskId) -> EngineResult<Task> {
        if let Some(task) = self.get_cached(id) {
            return Ok(Task::clone(&task));
        }
        self.inner.store.get(id).await?.ok_or(EngineError::TaskNotFound(id))
    }

    /// Lists tasks matching `filter`, newest first, older than `before`.
    pub async fn list(&self, filter: TaskFilter, page_size: usize, before: Option<TaskId>) -> EngineResult<TaskPage> {
        let limits = &self.inner.config.limits;
        let page_size = match page_size {
            0 => limits.default_page_size,
            size if size > limits.max_page_size => {
                return Err(EngineError::invalid(
                    "page_size",
                    format!("{size} is more than the limit of {}", limits.max_page_size),
                ));
            }
            size => size,
        };
        // Every change made before this call is in the store once flushed.
        self.inner.store.flush().await?;
        let mut tasks = self
            .inner
            .store
            .list(&ListQuery {
                filter,
                before_id: before,
                limit: page_size + 1,
            })
            .await?;
        let next_before = if tasks.len() > page_size {
            tasks.truncate(page_size);
            tasks.last().map(|task| task.id)
        } else {
            None
        };
        Ok(TaskPage { tasks, next_before })
    }

    /// Cancels a task. A task not yet running ends CANCELLED at once; a
    /// running one is signalled, and this returns once its attempt ended
    /// (bounded by the cancel grace period).
    pub async fn cancel(&self, id: TaskId, reason: String) -> EngineResult<Task> {
        let reason = if reason.trim().is_empty() {
            "cancelled by request".to_string()
        } else {
            reason
        };
        let outcome = {
            let mut state = self.inner.state.lock();
            let outcome = state.cancel(id, reason);
            let pumped = state.pump();
            drop(state);
            self.launch(pumped);
            outcome
        };
        match outcome {
            CancelOutcome::Cancelled(task) => {
                self.inner.store.flush().await?;
                Ok(Task::clone(&task))
            }
            CancelOutcome::Signalled(ended) => {
                let bound = self.inner.config.cancel_grace + Duration::from_secs(1);
                match tokio::time::timeout(bound, ended).await {
                    Ok(Ok(task)) => {
                        self.inner.store.flush().await?;
                        Ok(Task::clone(&task))
                    }
                    _ => self.get(id).await,
                }
            }
            CancelOutcome::AlreadyFinished(status) => Err(EngineError::AlreadyFinished { task_id: id, status }),
            CancelOutcome::NotInMemory => match self.inner.store.get(id).await? {
                Some(task) if task.status.is_terminal() => Err(EngineError::AlreadyFinished {
                    task_id: id,
                    status: task.status,
                }),
                _ => Err(EngineError::TaskNotFound(id)),
            },
        }
    }

    /// Statistics from the engine's running counts; no store query.
    pub fn stats(&self) -> EngineStats {
        let state = self.inner.state.lock();
        let registry = &self.inner.registry;
        let config = &self.inner.config;
        let mut totals: StatusCounts = [0; 7];
        let mut by_type = Vec::new();
        let mut unserved = Vec::new();
        let mut types: BTreeMap<String, StatusCounts> = state.counts().clone();
        for task_type in registry.task_types() {
            types.entry(task_type.to_string()).or_default();
        }
        for (task_type, counts) in types {
            for (total, count) in totals.iter_mut().zip(counts.iter()) {
                *total += count;
            }
            let handler_available = registry.serves(&task_type);
            let waiting_work = counts[TaskStatus::Pending.index()]
                + counts[TaskStatus::Scheduled.index()]
                + counts[TaskStatus::Waiting.index()];
            if !handler_available && waiting_work > 0 {
                unserved.push(task_type.clone());
            }
            by_type.push(TypeStats {
                concurrency_limit: config.type_concurrency_limits.get(&task_type).copied().unwrap_or(0),
                task_type,
                counts,
                handler_available,
            });
        }
        let completed = totals[TaskStatus::Completed.index()];
        let finished = completed + totals[TaskStatus::Failed.index()] + totals[TaskStatus::Cancelled.index()];
        let (limit, reason) = state.concurrency_limit();
        EngineStats {
            counts: totals,
            by_type,
            running: state.running(),
            max_concurrent_tasks: config.max_concurrent_tasks,
            effective_concurrency_limit: limit,
            concurrency_limit_reason: reason.to_string(),
            unserved_task_types: unserved,
            submitted_since_start: state.counters.submitted,
            failed_attempts_since_start: state.counters.failed_attempts,
            retries_since_start: state.counters.retries,
            success_rate: if finished == 0 {
                0.0
            } else {
                completed as f64 / finished as f64
            },
            uptime: self.inner.started_at.elapsed(),
        }
    }

    /// Streams one task: its current state, then every change, ending after
    /// a terminal status.
    pub async fn watch_task(&self, id: TaskId) -> EngineResult<impl Stream<Item = TaskEvent> + Send + 'static> {
        let receiver = self.inner.state.lock().events.subscribe();
        let current = self.get(id).await?;
        Ok(watch_streams::single_task(self.clone(), current, receiver))
    }

    /// Streams events of tasks matching `filter` until dropped.
    pub fn watch_tasks(&self, filter: TaskFilter) -> impl Stream<Item = TaskEvent> + Send + 'static {
        let receiver = self.inner.state.lock().events.subscribe();
        watch_streams::filtered(filter, receiver)
    }

    /// Applies the ResourceMonitor's recommendation (see
    /// `SchedulerState::apply_load`) and starts whatever the new limit allows.
    /// `reading` is (cpu %, memory %, io wait %) of the latest sample.
    pub fn apply_load(&self, recommended: usize, reason: String, reading: Option<(f64, f64, Option<f64>)>) {
        let outcome = {
            let mut state = self.inner.state.lock();
            state.apply_load(recommended, reason, reading);
            state.pump()
        };
        self.launch(outcome);
    }

    /// A copy of the outcome counters and latency histograms.
    pub fn metrics(&self) -> crate::engine::metrics::EngineMetrics {
        self.inner.state.lock().metrics.clone()
    }

    /// Catches the engine up after the store deleted the tasks that
    /// finished before `cutoff`: lowers its counts and drops them from memory.
    pub fn forget_purged(&self, purged: &[crate::store::StatusCount], cutoff: Timestamp) {
        let mut state = self.inner.state.lock();
        for count in purged {
            state.uncount_purged(&count.task_type, count.status, count.count);
        }
        state.drop_finished_before(cutoff);
    }

    /// Stops accepting work, lets running attempts finish for up to
    /// `drain`, then signals the rest and flushes the store. Attempts still
    /// running at the end are recorded as interrupted at the next start.
    pub async fn shutdown(&self, drain: Duration) {
        self.inner.state.lock().accepting = false;
        self.inner.stopping.cancel();
        self.inner.attempts.close();
        if tokio::time::timeout(drain, self.inner.attempts.wait()).await.is_err() {
            let signalled = self.inner.state.lock().cancel_running();
            tracing::warn!(signalled, "drain period over; signalling running attempts");
            let _ = tokio::time::timeout(self.inner.config.cancel_grace, self.inner.attempts.wait()).await;
        }
        if let Err(error) = self.inner.store.flush().await {
            tracing::error!(%error, "final store flush failed");
        }
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        TaskManager { inner }
    }
}

impl Inner {
    /// Records the end of an attempt and starts what can start next.
    pub(crate) fn finish_attempt(self: &Arc<Self>, id: TaskId, attempt: u32, result: AttemptResult) {
        let outcome = {
            let mut state = self.state.lock();
            state.finish_attempt(id, attempt, result);
            state.pump()
        };
        TaskManager::from_inner(self.clone()).launch(outcome);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }
}

impl ProgressSink for Inner {
    fn report(&self, task_id: TaskId, attempt: u32, progress: Progress) {
        self.state.lock().report_progress(task_id, attempt, progress);
    }
}

/// Releases SCHEDULED tasks when their time comes. Sleeps until the earliest
/// due time or until woken because an earlier one was added.
async fn run_timer(inner: Arc<Inner>) {
    loop {
        let outcome = inner.state.lock().pump();
        let next = outcome.next_timer;
        TaskManager::from_inner(inner.clone()).launch(crate::engine::scheduler::PumpOutcome {
            started: outcome.started,
            next_timer: None,
        });
        let sleep = match next {
            Some(due) => {
                let wait = due.duration_since(Timestamp::now());
                tokio::time::sleep(wait)
            }
            None => tokio::time::sleep(Duration::from_secs(3600)),
        };
        tokio::select! {
            _ = inner.timer_wakeup.notified() => {}
            _ = sleep => {}
            _ = inner.stopping.cancelled() => return,
        }
    }
}

/// Checks batch references and returns an order in which every member comes
/// after the members it depends on; rejects duplicates, unknown references
/// and cycles.
fn order_batch(requests: &[NewTask], prefix: &dyn Fn(usize) -> String) -> EngineResult<Vec<usize>> {
    let uses_refs = requests.iter().any(|request| {
        request.batch_ref.is_some()
            || request
                .dependencies
                .iter()
                .any(|dependency| matches!(dependency.target, DependencyTarget::BatchRef(_)))
    });
    if !uses_refs {
        return Ok((0..requests.len()).collect());
    }
    let mut refs: HashMap<&str, usize> = HashMap::new();
    for (index, request) in requests.iter().enumerate() {
        if let Some(reference) = request.batch_ref.as_deref() {
            if reference.is_empty() {
                continue;
            }
            if let Some(first) = refs.insert(reference, index) {
                return Err(EngineError::invalid(
                    format!("{}batch_ref", prefix(index)),
                    format!(
                        "{reference:?} is already used by {}",
                        prefix(first).trim_end_matches('.')
                    ),
                ));
            }
        }
    }
    let count = requests.len();
    let mut blocking: Vec<usize> = vec![0; count];
    let mut unblocks: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (index, request) in requests.iter().enumerate() {
        for (dependency_index, dependency) in request.dependencies.iter().enumerate() {
            if let DependencyTarget::BatchRef(reference) = &dependency.target {
                let field = format!("{}dependencies[{dependency_index}].batch_ref", prefix(index));
                let Some(&member) = refs.get(reference.as_str()) else {
                    return Err(EngineError::invalid(
                        field,
                        format!("no task in this batch has batch_ref {reference:?}"),
                    ));
                };
                if member == index {
                    return Err(EngineError::invalid(field, "a task cannot depend on itself"));
                }
                blocking[index] += 1;
                unblocks[member].push(index);
            }
        }
    }
    let mut order: Vec<usize> = (0..count).filter(|index| blocking[*index] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let member = order[next];
        next += 1;
        for &dependent in &unblocks[member] {
            blocking[dependent] -= 1;
            if blocking[dependent] == 0 {
                order.push(dependent);
            }
        }
    }
    if order.len() < count {
        let in_cycle: Vec<String> = (0..count)
            .filter(|index| blocking[*index] > 0)
            .map(|index| requests[index].batch_ref.clone().unwrap_or_else(|| format!("#{index}")))
            .collect();
        let first = (0..count).find(|index| blocking[*index] > 0).unwrap_or(0);
        return Err(EngineError::invalid(
            format!("{}dependencies", prefix(first)),
            format!("dependencies form a cycle among batch members {}", in_cycle.join(", ")),
        ));
    }
    Ok(order)
}
