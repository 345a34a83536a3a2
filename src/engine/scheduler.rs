//! The scheduler's state and every status transition. Synchronous and
//! lock-protected by the caller: nothing in here awaits, so the lock is held
//! for microseconds. Starting an attempt is returned to the caller as a
//! [`StartedAttempt`] to spawn outside.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::engine::config::EngineConfig;
use crate::engine::events::{EventBus, EventKind};
use crate::engine::handler::HandlerRegistry;
use crate::engine::metrics::EngineMetrics;
use crate::engine::model::{
    Attempt, AttemptOutcome, MachineState, Progress, Task, TaskId, TaskStatus, Timestamp, unmet_dependency_reason,
};
use crate::engine::queue::RunQueue;
use crate::store::{Store, WriteOp};

/// Number of tasks per status, indexed by `TaskStatus::index`.
pub type StatusCounts = [u64; 7];

/// A task the engine holds in memory: every unfinished task, and recently
/// finished ones for fast reads.
pub struct Entry {
    pub task: Arc<Task>,
    /// Dependencies not yet resolved (only while WAITING).
    unmet_dependencies: usize,
    /// Set while RUNNING.
    cancellation: Option<CancellationToken>,
    /// Set when a cancel arrived while RUNNING.
    cancel_reason: Option<String>,
    /// Cancel requests waiting for a RUNNING task to end.
    end_waiters: Vec<oneshot::Sender<Arc<Task>>>,
    /// Write sequence of the latest change; the entry may leave memory once
    /// the store has made it durable.
    write_sequence: u64,
    /// In-flight submits that depend on this task; keeps it in memory.
    pins: u32,
}

/// An idempotency key whose task is being committed.
pub struct PendingKey {
    pub committed: watch::Receiver<bool>,
}

/// What an attempt outcome was, as the executor reports it.
#[derive(Debug)]
pub enum AttemptResult {
    Succeeded(serde_json::Value),
    Failed(String),
    TimedOut(std::time::Duration),
}

/// An attempt the caller must now run.
pub struct StartedAttempt {
    pub task: Arc<Task>,
    pub attempt: u32,
    pub cancellation: CancellationToken,
}

/// What the dispatcher should do after a pump.
pub struct PumpOutcome {
    pub started: Vec<StartedAttempt>,
    /// The next time a SCHEDULED task becomes due.
    pub next_timer: Option<Timestamp>,
}

/// Counters since start.
#[derive(Default, Clone, Copy)]
pub struct RunCounters {
    pub submitted: u64,
    pub failed_attempts: u64,
    pub retries: u64,
}

pub struct SchedulerState {
    pub config: Arc<EngineConfig>,
    pub registry: Arc<HandlerRegistry>,
    store: Arc<dyn Store>,
    entries: HashMap<TaskId, Entry>,
    run_queue: RunQueue,
    timers: BinaryHeap<Reverse<(Timestamp, TaskId)>>,
    dependents: HashMap<TaskId, Vec<TaskId>>,
    running: usize,
    running_by_type: HashMap<String, usize>,
    idempotency_keys: HashMap<String, TaskId>,
    pub pending_keys: HashMap<String, PendingKey>,
    finished: VecDeque<TaskId>,
    counts: BTreeMap<String, StatusCounts>,
    pub events: EventBus,
    pub counters: RunCounters,
    pub metrics: EngineMetrics,
    pub accepting: bool,
    concurrency_limit: usize,
    concurrency_reason: String,
    /// The latest machine reading, stamped on attempts as they start and end.
    machine: Option<MachineState>,
}

impl SchedulerState {
    pub fn new(config: Arc<EngineConfig>, registry: Arc<HandlerRegistry>, store: Arc<dyn Store>) -> Self {
        let limit = config.max_concurrent_tasks.max(1);
        SchedulerState {
            run_queue: RunQueue::new(config.priority_boost),
            events: EventBus::new(config.event_buffer),
            config,
            registry,
            store,
            entries: HashMap::new(),
            timers: BinaryHeap::new(),
            dependents: HashMap::new(),
            running: 0,
            running_by_type: HashMap::new(),
            idempotency_keys: HashMap::new(),
            pending_keys: HashMap::new(),
            finished: VecDeque::new(),
            counts: BTreeMap::new(),
            counters: RunCounters::default(),
            metrics: EngineMetrics::default(),
            accepting: true,
            concurrency_limit: limit,
            concurrency_reason: "max_concurrent_tasks".to_string(),
            machine: None,
        }
    }

    // ----- reads -----

    pub fn task(&self, id: TaskId) -> Option<Arc<Task>> {
        self.entries.get(&id).map(|entry| entry.task.clone())
    }

    pub fn task_for_key(&self, key: &str) -> Option<Arc<Task>> {
        self.idempotency_keys.get(key).and_then(|id| self.task(*id))
    }

    pub fn running(&self) -> usize {
        self.running
    }

    pub fn counts(&self) -> &BTreeMap<String, StatusCounts> {
        &self.counts
    }

    pub fn concurrency_limit(&self) -> (usize, &str) {
        (self.concurrency_limit, &self.concurrency_reason)
    }

    /// Applies the ResourceMonitor's advice: the limit in force becomes
    /// `min(max_concurrent_tasks, recommended)`, never below 1. Running
    /// attempts are never stopped; new starts wait until the count is below.
    pub fn apply_load(&mut self, recommended: usize, reason: String, reading: Option<(f64, f64, Option<f64>)>) {
        let max = self.config.max_concurrent_tasks.max(1);
        let limit = recommended.clamp(1, max);
        let throttled = limit < max;
        self.concurrency_limit = limit;
        self.concurrency_reason = if throttled {
            reason
        } else {
            "max_concurrent_tasks".to_string()
        };
        self.machine = reading.map(|(cpu_percent, memory_percent, io_wait_percent)| MachineState {
            cpu_percent,
            memory_percent,
            io_wait_percent,
            effective_limit: limit as u32,
            throttled,
        });
    }

    /// Pins tasks that an in-flight submit depends on, so that they stay in
    /// memory until the submit has registered itself as their dependent.
    pub fn pin(&mut self, ids: &[TaskId]) {
        for id in ids {
            if let Some(entry) = self.entries.get_mut(id) {
                entry.pins += 1;
            }
        }
    }

    pub fn unpin(&mut self, ids: &[TaskId]) {
        for id in ids {
            if let Some(entry) = self.entries.get_mut(id) {
                entry.pins = entry.pins.saturating_sub(1);
            }
        }
    }

    // ----- counts -----

    pub fn set_counts(&mut self, counts: BTreeMap<String, StatusCounts>) {
        self.counts = counts;
    }

    fn count(&mut self, task_type: &str, from: Option<TaskStatus>, to: Option<TaskStatus>) {
        let counts = match self.counts.get_mut(task_type) {
            Some(counts) => counts,
            None => self.counts.entry(task_type.to_string()).or_default(),
        };
        if let Some(from) = from {
            counts[from.index()] = counts[from.index()].saturating_sub(1);
        }
        if let Some(to) = to {
            counts[to.index()] += 1;
        }
    }

    pub fn uncount_purged(&mut self, task_type: &str, status: TaskStatus, count: u64) {
        if let Some(counts) = self.counts.get_mut(task_type) {
            counts[status.index()] = counts[status.index()].saturating_sub(count);
        }
    }

    // ----- admission -----

    /// Adds freshly committed tasks (one submit or one batch). All entries go
    /// in before any is resolved, so batch members find each other.
    /// `stored_statuses` holds the statuses, read from the store, of the
    /// dependencies that were not in memory when the submit was checked.
    pub fn admit(&mut self, tasks: Vec<Arc<Task>>, write_sequence: u64, stored_statuses: &HashMap<TaskId, TaskStatus>) {
        let ids: Vec<TaskId> = tasks.iter().map(|task| task.id).collect();
        for task in tasks {
            let id = task.id;
            self.count(&task.task_type, None, Some(task.status));
            if let Some(key) = &task.idempotency_key {
                self.idempotency_keys.insert(key.clone(), id);
            }
            self.events.publish(EventKind::Submitted, &task, None);
            self.counters.submitted += 1;
            self.metrics.outcome(&task.task_type, task.priority).submitted += 1;
            self.entries.insert(
                id,
                Entry {
                    task,
                    unmet_dependencies: 0,
                    cancellation: None,
                    cancel_reason: None,
                    end_waiters: Vec::new(),
                    write_sequence,
                    pins: 0,
                },
            );
        }
        for id in ids {
            let Some(status) = self.entries.get(&id).map(|entry| entry.task.status) else {
                continue;
            };
            match status {
                TaskStatus::Waiting => self.resolve_dependencies_of(id, stored_statuses),
                TaskStatus::Scheduled | TaskStatus::Pending => self.enqueue(id),
                TaskStatus::Running => debug_assert!(false, "admitted tasks are never RUNNING"),
                _ => self.retire(id),
            }
        }
    }

    /// Counts a WAITING task's unmet dependencies and subscribes it to them.
    /// A dependency that already finished is resolved on the spot; one not in
    /// memory is looked up in `finished_elsewhere` (statuses read from the
    /// store), and one found in neither no longer exists.
    fn resolve_dependencies_of(&mut self, id: TaskId, finished_elsewhere: &HashMap<TaskId, TaskStatus>) {
        let Some(entry) = self.entries.get(&id) else { return };
        let dependencies = entry.task.dependencies.clone();
        let mut unmet = 0;
        let mut broken = None;
        for dependency in &dependencies {
            let status = self
                .entries
                .get(&dependency.task_id)
                .map(|entry| entry.task.status)
                .or_else(|| finished_elsewhere.get(&dependency.task_id).copied());
            match status {
                Some(status) if status.is_terminal() => {
                    if status != dependency.required_status {
                        broken = Some(unmet_dependency_reason(
                            dependency.task_id,
                            status,
                            dependency.required_status,
                        ));
                        break;
                    }
                }
                Some(_) => {
                    unmet += 1;
                    self.dependents.entry(dependency.task_id).or_default().push(id);
                }
                None => {
                    broken = Some(format!("dependency {} no longer exists", dependency.task_id));
                    break;
                }
            }
        }
        if let Some(reason) = broken {
            self.cascade_cancel(id, reason);
            return;
        }
        let Some(entry) = self.entries.get_mut(&id) else { return };
        entry.unmet_dependencies = unmet;
        if unmet == 0 {
            self.make_runnable(id);
            return;
        }
        let reason = format!("waiting for {unmet} of {} dependencies", dependencies.len());
        if entry.task.status_reason != reason {
            self.update(id, EventKind::StatusChanged, |task| task.status_reason = reason);
        }
    }

    /// Moves a task whose dependencies are met to SCHEDULED or PENDING.
    fn make_runnable(&mut self, id: TaskId) {
        let now = Timestamp::now();
        let delayed = self
            .entries
            .get(&id)
            .and_then(|entry| entry.task.run_at)
            .is_some_and(|run_at| run_at > now);
        let (status, reason) = if delayed {
            (TaskStatus::Scheduled, "scheduled for run_at".to_string())
        } else {
            (TaskStatus::Pending, self.pending_reason(id))
        };
        self.set_status(id, status, |task| task.status_reason = reason);
        self.enqueue(id);
    }

    fn pending_reason(&self, id: TaskId) -> String {
        match self.entries.get(&id) {
            Some(entry) if !self.registry.serves(&entry.task.task_type) => {
                format!("no handler serves task type {}", entry.task.task_type)
            }
            _ => "queued for an execution slot".to_string(),
        }
    }

    /// Puts a SCHEDULED task on the timer, a PENDING one in the run queue.
    fn enqueue(&mut self, id: TaskId) {
        let Some(entry) = self.entries.get(&id) else { return };
        let task = &entry.task;
        match task.status {
            TaskStatus::Scheduled => {
                let due = task.run_at.unwrap_or_default();
                self.timers.push(Reverse((due, id)));
            }
            TaskStatus::Pending => {
                let ready_since = task.run_at.unwrap_or(task.updated_at).max(task.created_at);
                self.run_queue.push(id, task.priority, ready_since);
            }
            _ => {}
        }
    }

    // ----- dispatch -----

    /// Moves due SCHEDULED tasks to PENDING and starts PENDING tasks while
    /// slots are free.
    pub fn pump(&mut self) -> PumpOutcome {
        let now = Timestamp::now();
        while let Some(Reverse((due, id))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            let is_due = self
                .entries
                .get(&id)
                .is_some_and(|entry| entry.task.status == TaskStatus::Scheduled && entry.task.run_at == Some(due));
            if is_due {
                let reason = self.pending_reason(id);
                self.set_status(id, TaskStatus::Pending, |task| task.status_reason = reason);
                self.enqueue(id);
            }
        }

        let mut started = Vec::new();
        while self.running < self.concurrency_limit {
            let Some(popped) = self.run_queue.pop() else { break };
            let id = popped.id();
            let Some(entry) = self.entries.get(&id) else { continue };
            if entry.task.status != TaskStatus::Pending {
                continue;
            }
            let task_type = entry.task.task_type.clone();
            if !self.registry.serves(&task_type) {
                self.run_queue.hold(&task_type, popped);
                continue;
            }
            if let Some(limit) = self.config.type_concurrency_limits.get(&task_type)
                && self.running_by_type.get(&task_type).copied().unwrap_or(0) >= *limit
            {
                self.run_queue.hold(&task_type, popped);
                continue;
            }
            started.push(self.start(id));
        }

        PumpOutcome {
            started,
            next_timer: self.timers.peek().map(|Reverse((due, _))| *due),
        }
    }

    fn start(&mut self, id: TaskId) -> StartedAttempt {
        let now = Timestamp::now();
        let cancellation = CancellationToken::new();
        self.running += 1;
        let entry = self.entries.get_mut(&id).expect("started task is in memory");
        entry.cancellation = Some(cancellation.clone());
        *self.running_by_type.entry(entry.task.task_type.clone()).or_default() += 1;
        let attempt = entry.task.attempts.len() as u32 + 1;
        let machine = self.machine;
        let ready_since = entry
            .task
            .run_at
            .unwrap_or(entry.task.created_at)
            .max(entry.task.created_at);
        let task_type = entry.task.task_type.clone();
        self.metrics
            .observe_queue_wait(&task_type, now.duration_since(ready_since));
        self.set_status(id, TaskStatus::Running, |task| {
            task.started_at = Some(now);
            task.progress = None;
            task.status_reason = format!("attempt {attempt} running");
            task.attempts.push(Attempt {
                number: attempt,
                started_at: now,
                finished_at: None,
                outcome: AttemptOutcome::Running,
                error: None,
                worker: "local".to_string(),
                started_under: machine,
                finished_under: None,
            });
        });
        let task = self.entries[&id].task.clone();
        tracing::debug!(task_id = %id, task_type = %task.task_type, attempt, "attempt started");
        StartedAttempt {
            task,
            attempt,
            cancellation,
        }
    }

    /// Records how an attempt ended and decides what comes next: done,
    /// retry, or cancelled.
    pub fn finish_attempt(&mut self, id: TaskId, attempt: u32, result: AttemptResult) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let current = entry.task.attempts.last().map(|attempt| attempt.number);
        if entry.task.status != TaskStatus::Running || current != Some(attempt) {
            return;
        }
        entry.cancellation = None;
        let cancel_reason = entry.cancel_reason.take();
        let task_type = entry.task.task_type.clone();
        let (max_retries, retry_count, policy) =
            (entry.task.max_retries, entry.task.retry_count, entry.task.retry_policy);

        self.running = self.running.saturating_sub(1);
        if let Some(count) = self.running_by_type.get_mut(&task_type) {
            *count = count.saturating_sub(1);
        }
        self.run_queue.release_one(&task_type);

        let now = Timestamp::now();
        if let Some(started) = self
            .entries
            .get(&id)
            .and_then(|entry| entry.task.attempts.last())
            .map(|attempt| attempt.started_at)
        {
            self.metrics.observe_run_time(&task_type, now.duration_since(started));
        }
        let machine = self.machine;
        let close = |task: &mut Task, outcome: AttemptOutcome, error: Option<String>| {
            if let Some(last) = task.attempts.last_mut() {
                last.finished_at = Some(now);
                last.outcome = outcome;
                last.error = error;
                last.finished_under = machine;
            }
        };

        if let Some(reason) = cancel_reason {
            let error = result_error(&result);
            self.set_status(id, TaskStatus::Cancelled, |task| {
                close(task, AttemptOutcome::Cancelled, error);
                task.completed_at = Some(now);
                task.error = Some(format!("cancelled: {reason}"));
                task.status_reason = format!("cancelled while running: {reason}");
            });
            self.after_finished(id);
            return;
        }

        match result {
            AttemptResult::Succeeded(value) => {
                self.set_status(id, TaskStatus::Completed, |task| {
                    close(task, AttemptOutcome::Succeeded, None);
                    task.completed_at = Some(now);
                    task.result = Some(value);
                    task.error = None;
                    task.progress = Some(Progress {
                        percent: 100.0,
                        message: "done".to_string(),
                    });
                    task.status_reason = format!("completed on attempt {attempt}");
                });
                tracing::debug!(task_id = %id, attempt, "task completed");
                self.after_finished(id);
            }
            failure => {
                let (outcome, error) = match failure {
                    AttemptResult::TimedOut(after) => (
                        AttemptOutcome::TimedOut,
                        format!("timed out after {:.3}s", after.as_secs_f64()),
                    ),
                    AttemptResult::Failed(error) => (AttemptOutcome::Failed, error),
                    AttemptResult::Succeeded(_) => unreachable!("handled above"),
                };
                self.counters.failed_attempts += 1;
                if retry_count < max_retries {
                    let retry = retry_count + 1;
                    let delay = policy.delay(retry, rand::random::<f64>());
                    let due = now.saturating_add(delay);
                    self.counters.retries += 1;
                    if let Some(entry) = self.entries.get(&id) {
                        let priority = entry.task.priority;
                        self.metrics.outcome(&task_type, priority).retried += 1;
                    }
                    tracing::info!(task_id = %id, attempt, retry, delay_ms = delay.as_millis() as u64, %error, "attempt failed; retrying");
                    self.set_status(id, TaskStatus::Scheduled, |task| {
                        close(task, outcome, Some(error.clone()));
                        task.retry_count = retry;
                        task.run_at = Some(due);
                        task.error = Some(error.clone());
                        task.status_reason = format!(
                            "retry {retry} of {max_retries} in {:.3}s after: {error}",
                            delay.as_secs_f64()
                        );
                    });
                    self.timers.push(Reverse((due, id)));
                } else {
                    tracing::info!(task_id = %id, attempt, %error, "task failed");
                    self.set_status(id, TaskStatus::Failed, |task| {
                        close(task, outcome, Some(error.clone()));
                        task.completed_at = Some(now);
                        task.error = Some(error.clone());
                        task.status_reason = if max_retries == 0 {
                            "failed; no retries allowed".to_string()
                        } else {
                            format!("failed after {} attempts", attempt)
                        };
                    });
                    self.after_finished(id);
                }
            }
        }
    }

    /// Records a progress report of a running attempt.
    pub fn report_progress(&mut self, id: TaskId, attempt: u32, progress: Progress) {
        let is_current = self.entries.get(&id).is_some_and(|entry| {
            entry.task.status == TaskStatus::Running
                && entry.task.attempts.last().map(|attempt| attempt.number) == Some(attempt)
        });
        if is_current {
            self.update(id, EventKind::Progress, |task| task.progress = Some(progress));
        }
    }

    // ----- cancellation -----

    /// What a cancel request led to.
    pub fn cancel(&mut self, id: TaskId, reason: String) -> CancelOutcome {
        let Some(entry) = self.entries.get_mut(&id) else {
            return CancelOutcome::NotInMemory;
        };
        match entry.task.status {
            status if status.is_terminal() => CancelOutcome::AlreadyFinished(status),
            TaskStatus::Running => {
                let (sender, receiver) = oneshot::channel();
                entry.end_waiters.push(sender);
                let first_request = entry.cancel_reason.is_none();
                if first_request {
                    entry.cancel_reason = Some(reason.clone());
                    if let Some(token) = &entry.cancellation {
                        token.cancel();
                    }
                }
                if first_request {
                    tracing::info!(task_id = %id, %reason, "cancelling running task");
                    self.update(id, EventKind::StatusChanged, |task| {
                        task.status_reason = format!("cancel requested: {reason}");
                    });
                }
                CancelOutcome::Signalled(receiver)
            }
            _ => {
                tracing::info!(task_id = %id, %reason, "task cancelled");
                self.cascade_cancel(id, reason);
                CancelOutcome::Cancelled(self.entries[&id].task.clone())
            }
        }
    }

    /// Cancels a task that is not running, and, transitively, every task
    /// waiting on it that can no longer be satisfied.
    fn cascade_cancel(&mut self, id: TaskId, reason: String) {
        self.mark_cancelled(id, &reason);
        self.after_finished(id);
    }

    /// Ends a task that is not running as CANCELLED, saying why.
    fn mark_cancelled(&mut self, id: TaskId, reason: &str) {
        let now = Timestamp::now();
        self.set_status(id, TaskStatus::Cancelled, |task| {
            task.completed_at = Some(now);
            task.error = Some(format!("cancelled: {reason}"));
            task.status_reason = format!("cancelled: {reason}");
        });
    }

    /// Wakes what waited on a task that just reached a terminal status.
    fn after_finished(&mut self, id: TaskId) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let task = entry.task.clone();
        for waiter in entry.end_waiters.drain(..) {
            let _ = waiter.send(task.clone());
        }
        self.retire(id);

        let mut work = VecDeque::from([id]);
        while let Some(finished_id) = work.pop_front() {
            let Some(finished_status) = self.entries.get(&finished_id).map(|entry| entry.task.status) else {
                continue;
            };
            for dependent in self.dependents.remove(&finished_id).unwrap_or_default() {
                let Some(entry) = self.entries.get(&dependent) else {
                    continue;
                };
                if entry.task.status != TaskStatus::Waiting {
                    continue;
                }
                let required = entry
                    .task
                    .dependencies
                    .iter()
                    .find(|dependency| dependency.task_id == finished_id)
                    .map(|dependency| dependency.required_status)
                    .unwrap_or(TaskStatus::Completed);
                if finished_status == required {
                    let entry = self.entries.get_mut(&dependent).expect("checked above");
                    entry.unmet_dependencies = entry.unmet_dependencies.saturating_sub(1);
                    let unmet = entry.unmet_dependencies;
                    if unmet == 0 {
                        self.make_runnable(dependent);
                    } else {
                        let total = entry.task.dependencies.len();
                        self.update(dependent, EventKind::StatusChanged, |task| {
                            task.status_reason = format!("waiting for {unmet} of {total} dependencies");
                        });
                    }
                } else {
                    let reason = unmet_dependency_reason(finished_id, finished_status, required);
                    tracing::info!(task_id = %dependent, %reason, "dependent task cancelled");
                    self.mark_cancelled(dependent, &reason);
                    self.retire(dependent);
                    work.push_back(dependent);
                }
            }
        }
    }

    /// Marks a finished task for eviction from memory once durable.
    fn retire(&mut self, id: TaskId) {
        self.finished.push_back(id);
        self.evict();
    }

    /// Drops the oldest finished tasks beyond the in-memory budget, once
    /// their final state is durable and nothing in flight depends on them.
    fn evict(&mut self) {
        let durable = self.store.durable_sequence();
        let budget = self.config.finished_tasks_in_memory;
        let mut deferred = 0;
        while self.finished.len() > budget + deferred {
            let Some(id) = self.finished.pop_front() else { break };
            let Some(entry) = self.entries.get(&id) else { continue };
            if entry.write_sequence > durable || entry.pins > 0 {
                // Not yet evictable; look again on a later retire.
                self.finished.push_back(id);
                deferred += 1;
                continue;
            }
            if let Some(key) = &entry.task.idempotency_key
                && self.idempotency_keys.get(key) == Some(&id)
            {
                self.idempotency_keys.remove(key);
            }
            self.entries.remove(&id);
        }
    }

    /// Forgets finished tasks that completed before `cutoff` (the store
    /// purged them).
    pub fn drop_finished_before(&mut self, cutoff: Timestamp) {
        let durable = self.store.durable_sequence();
        let entries = &mut self.entries;
        let keys = &mut self.idempotency_keys;
        self.finished.retain(|id| {
            let purged = entries.get(id).is_some_and(|entry| {
                entry.pins == 0
                    && entry.write_sequence <= durable
                    && entry.task.completed_at.is_some_and(|at| at < cutoff)
            });
            if purged {
                if let Some(key) = entries.get(id).and_then(|entry| entry.task.idempotency_key.clone())
                    && keys.get(&key) == Some(id)
                {
                    keys.remove(&key);
                }
                entries.remove(id);
            }
            !purged
        });
    }

    // ----- shutdown -----

    /// Signals every running attempt to stop.
    pub fn cancel_running(&mut self) -> usize {
        let mut signalled = 0;
        for entry in self.entries.values() {
            if let Some(token) = &entry.cancellation {
                token.cancel();
                signalled += 1;
            }
        }
        signalled
    }

    // ----- recovery -----

    /// Adds a task loaded from the store at start, after recovery decided
    /// its status. Unlike `admit`, it emits no SUBMITTED event.
    pub fn restore(&mut self, task: Arc<Task>) {
        let id = task.id;
        let status = task.status;
        if let Some(key) = &task.idempotency_key {
            self.idempotency_keys.insert(key.clone(), id);
        }
        self.entries.insert(
            id,
            Entry {
                task,
                unmet_dependencies: 0,
                cancellation: None,
                cancel_reason: None,
                end_waiters: Vec::new(),
                write_sequence: 0,
                pins: 0,
            },
        );
        if status.is_terminal() {
            self.retire(id);
        }
    }

    /// After every unfinished task is restored: wires up dependencies and
    /// queues. `finished_elsewhere` holds the statuses of dependencies that
    /// are not in memory (finished before the restart).
    pub fn finish_restore(&mut self, finished_elsewhere: &HashMap<TaskId, TaskStatus>) {
        let ids: Vec<TaskId> = self.entries.keys().copied().collect();
        let mut waiting = Vec::new();
        for id in ids {
            let status = self.entries[&id].task.status;
            match status {
                TaskStatus::Waiting => waiting.push(id),
                TaskStatus::Pending | TaskStatus::Scheduled => self.enqueue(id),
                _ => {}
            }
        }
        for id in waiting {
            self.resolve_dependencies_of(id, finished_elsewhere);
        }
    }

    // ----- primitives -----

    /// Changes a task's status, with counts, an event and a queued write.
    fn set_status(&mut self, id: TaskId, status: TaskStatus, change: impl FnOnce(&mut Task)) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let previous = entry.task.status;
        let task = Arc::make_mut(&mut entry.task);
        task.status = status;
        task.updated_at = Timestamp::now();
        change(task);
        let task_type = task.task_type.clone();
        let priority = task.priority;
        if previous != status {
            self.count(&task_type, Some(previous), Some(status));
            let outcome = self.metrics.outcome(&task_type, priority);
            match status {
                TaskStatus::Completed => outcome.completed += 1,
                TaskStatus::Failed => outcome.failed += 1,
                TaskStatus::Cancelled => outcome.cancelled += 1,
                _ => {}
            }
        }
        self.persist_and_publish(id, EventKind::StatusChanged, Some(previous));
    }

    /// Changes a task without changing its status.
    fn update(&mut self, id: TaskId, kind: EventKind, change: impl FnOnce(&mut Task)) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let task = Arc::make_mut(&mut entry.task);
        task.updated_at = Timestamp::now();
        change(task);
        self.persist_and_publish(id, kind, None);
    }

    fn persist_and_publish(&mut self, id: TaskId, kind: EventKind, previous: Option<TaskStatus>) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        let ticket = self.store.write(vec![WriteOp::Update(entry.task.clone())]);
        entry.write_sequence = ticket.sequence();
        let task = entry.task.clone();
        self.events.publish(kind, &task, previous);
    }
}

/// What a cancel request led to.
pub enum CancelOutcome {
    /// The task ended CANCELLED now.
    Cancelled(Arc<Task>),
    /// The task is running; its handler was signalled. The receiver yields
    /// the task once the attempt has ended.
    Signalled(oneshot::Receiver<Arc<Task>>),
    AlreadyFinished(TaskStatus),
    NotInMemory,
}

fn result_error(result: &AttemptResult) -> Option<String> {
    match result {
        AttemptResult::Succeeded(_) => None,
        AttemptResult::Failed(error) => Some(error.clone()),
        AttemptResult::TimedOut(after) => Some(format!("timed out after {:.3}s", after.as_secs_f64())),
    }
}
