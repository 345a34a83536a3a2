//! The TaskManager: what clients do with tasks. Submit, get, list,
//! cancel, stats and watch; transports call this and nothing deeper. Every
//! change is a store operation; the manager holds no task state of its own.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::engine::config::EngineConfig;
use crate::engine::core::Core;
use crate::engine::drafts;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::executor::LocalExecutor;
use crate::engine::stats::{self, EngineStats, Scheduling, StatusCounts, TypeStats};
use crate::engine::watch as watch_streams;
use crate::engine::worker_registry::TaskTypeInfo;
use crate::model::rules::cancel::DEFAULT_CANCEL_REASON;
use crate::model::{NewTask, Task, TaskEvent, TaskFilter, TaskId, TaskStatus};
use crate::store::{ListQuery, StoreResult, SubmitBatch, Submitted};

/// Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct TaskManager {
    core: Arc<Core>,
    local: Arc<OnceLock<Arc<LocalExecutor>>>,
}

/// A page of tasks.
#[derive(Debug)]
pub struct TaskPage {
    pub tasks: Vec<Task>,
    /// Id to pass as `before` for the next page; `None` on the last page.
    pub next_before: Option<TaskId>,
}

/// About what a task weighs on the wire: its free-form parts in JSON, and
/// a fixed allowance for the rest and the attempts.
fn approximate_size(task: &Task) -> usize {
    let json = |value: &serde_json::Value| serde_json::to_vec(value).map_or(0, |bytes| bytes.len());
    let params = serde_json::to_vec(&task.params).map_or(0, |bytes| bytes.len());
    let result = task.result.as_ref().map_or(0, json);
    let attempts: usize = task
        .attempts
        .iter()
        .map(|attempt| 128 + attempt.error.as_ref().map_or(0, String::len))
        .sum();
    512 + task.name.len()
        + params
        + result
        + task.error.as_ref().map_or(0, String::len)
        + attempts
        + task
            .labels
            .iter()
            .map(|(key, value)| key.len() + value.len() + 8)
            .sum::<usize>()
        + task.status_reason.len()
}

impl TaskManager {
    pub(crate) fn new(core: Arc<Core>, local: Arc<OnceLock<Arc<LocalExecutor>>>) -> Self {
        TaskManager { core, local }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.core.config
    }

    /// Submits one task; returns it once durable.
    pub async fn submit(&self, task: NewTask) -> EngineResult<Task> {
        let mut tasks = self.submit_drafted(vec![task], "").await?;
        Ok(tasks.remove(0))
    }

    /// Submits a batch atomically; members may depend on each other by
    /// `batch_ref`. Returns the tasks in request order once durable.
    pub async fn submit_batch(&self, tasks: Vec<NewTask>) -> EngineResult<Vec<Task>> {
        if tasks.is_empty() {
            return Err(EngineError::invalid("tasks", "must not be empty"));
        }
        let limit = self.core.config.limits.max_batch_size;
        if tasks.len() > limit {
            return Err(EngineError::invalid(
                "tasks",
                format!("{} tasks, more than the limit of {limit}", tasks.len()),
            ));
        }
        self.submit_drafted(tasks, "tasks").await
    }

    async fn submit_drafted(&self, requests: Vec<NewTask>, list_field: &'static str) -> EngineResult<Vec<Task>> {
        if !self.core.is_accepting() {
            return Err(EngineError::ShuttingDown);
        }
        let count = requests.len();
        self.admit(count)?;
        if requests
            .iter()
            .any(|request| !self.core.catalog.knows(&request.task_type))
        {
            // Another node sharing the store may have learnt it from a
            // worker since this one started.
            self.core
                .catalog
                .replace_declared(self.core.store.declared_task_types().await?);
        }
        let (batch, names) = drafts::draft(
            requests,
            &self.core.config,
            &self.core.catalog,
            list_field,
            self.core.clock.now(),
        )?;
        let positions: Vec<usize> = batch.drafts.iter().map(|draft| draft.position).collect();
        let (submitted, mut handed_off) = self
            .submit_handing_off(batch)
            .await
            .map_err(|error| names.refusal(error))?;
        let mut in_request_order: Vec<Option<Task>> = (0..count).map(|_| None).collect();
        for (position, outcome) in positions.into_iter().zip(submitted.outcomes) {
            // A task handed to the executor in the same commit is answered
            // as that commit left it: RUNNING.
            let mut task = handed_off
                .remove(&outcome.task().id)
                .unwrap_or_else(|| outcome.into_task());
            self.core.explain(&mut task);
            in_request_order[position] = Some(task);
        }
        in_request_order
            .into_iter()
            .map(|task| task.ok_or_else(|| EngineError::Unavailable("the store answered for fewer tasks".into())))
            .collect()
    }

    /// Submits `batch`; when the in-process executor serves some of its
    /// types and has room, it is handed the best ready tasks of those types
    /// in the same commit (the new ones, unless better ones wait), saving
    /// the commit of a claim of its own. Answers the submit and the tasks
    /// handed off, by id, as they now are.
    async fn submit_handing_off(&self, batch: SubmitBatch) -> StoreResult<(Submitted, HashMap<TaskId, Task>)> {
        let local = self.local.get().filter(|local| local.takes_work());
        let plan = local.and_then(|local| {
            let mut wanted: Vec<(String, usize)> = Vec::new();
            for draft in batch.drafts.iter().filter(|draft| local.serves(&draft.task_type)) {
                match wanted.iter_mut().find(|(task_type, _)| *task_type == draft.task_type) {
                    Some((_, count)) => *count += 1,
                    None => wanted.push((draft.task_type.clone(), 1)),
                }
            }
            self.core.dispatch.plan_handoff(&self.core.limits, &wanted)
        });
        let (Some(local), Some(plan)) = (local, plan) else {
            return Ok((self.core.store.submit(batch).await?, HashMap::new()));
        };
        let (submitted, claimed) = self.core.submit_and_claim_planned(batch, local.id(), plan).await?;
        let mut handed_off = HashMap::with_capacity(claimed.len());
        for claimed in claimed {
            handed_off.insert(claimed.task.id, claimed.task.clone());
            local.start_attempt(claimed);
        }
        Ok((submitted, handed_off))
    }

    /// Load shedding: refuses `count` more tasks when the queue is at its
    /// limit, at once and with a hint, rather than letting it grow without
    /// bound.
    fn admit(&self, count: usize) -> EngineResult<()> {
        let limit = self.core.config.limits.max_queue_depth;
        let queued = self.core.queued();
        if queued.saturating_add(count as u64) <= limit {
            return Ok(());
        }
        Err(EngineError::Overloaded {
            message: format!(
                "engine.limits.max_queue_depth: {queued} tasks wait to run and the limit is {limit}; retry in 1s"
            ),
            retry_after: Duration::from_secs(1),
        })
    }

    /// Tasks waiting to run, as this node counts them.
    pub fn queue_depth(&self) -> u64 {
        self.core.queued()
    }

    /// Returns a task by id.
    pub async fn get(&self, id: TaskId) -> EngineResult<Task> {
        let mut task = self.core.store.get(id).await?.ok_or(EngineError::TaskNotFound(id))?;
        self.core.explain(&mut task);
        Ok(task)
    }

    /// Lists tasks matching `filter`, newest first, older than `before`.
    pub async fn list(&self, filter: TaskFilter, page_size: usize, before: Option<TaskId>) -> EngineResult<TaskPage> {
        let limits = &self.core.config.limits;
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
        let mut tasks = self
            .core
            .store
            .list(&ListQuery {
                filter,
                before_id: before,
                limit: page_size + 1,
            })
            .await?;
        let mut next_before = if tasks.len() > page_size {
            tasks.truncate(page_size);
            tasks.last().map(|task| task.id)
        } else {
            None
        };
        // A page stops before what a client accepts by default (4 MiB in
        // gRPC): big params and results make fewer tasks a page, never a
        // page nobody can read. At least one task always goes.
        let mut bytes = 0;
        if let Some(cut) = tasks.iter().position(|task| {
            bytes += approximate_size(task);
            bytes > limits.max_page_bytes
        }) {
            let keep = cut.max(1);
            if keep < tasks.len() {
                tasks.truncate(keep);
                next_before = tasks.last().map(|task| task.id);
            }
        }
        for task in &mut tasks {
            self.core.explain(task);
        }
        Ok(TaskPage { tasks, next_before })
    }

    /// Cancels a task that has not ended: it ends CANCELLED at once, with
    /// its dependents that can no longer run; a running attempt's executor
    /// is told to stop, and its lease no longer counts.
    pub async fn cancel(&self, id: TaskId, reason: String) -> EngineResult<Task> {
        crate::engine::validate::validate_reason(&reason, &self.core.config.limits)?;
        let reason = if reason.trim().is_empty() {
            DEFAULT_CANCEL_REASON.to_string()
        } else {
            reason
        };
        let cancelled = self.core.store.cancel(id, reason, self.core.clock.now()).await?;
        if let Some((executor, lease)) = &cancelled.revoked {
            match self.local.get() {
                Some(local) if local.id() == executor => local.revoke(lease),
                _ => self.core.workers.revoke(executor, lease, &cancelled.task.status_reason),
            }
        }
        Ok(cancelled.task)
    }

    /// Every task type a submit may use, sorted, with what runs it here.
    pub fn task_types(&self) -> Vec<TaskTypeInfo> {
        let workers = self.core.workers_by_type();
        self.core
            .catalog
            .all()
            .into_iter()
            .map(|task_type| TaskTypeInfo {
                served: self.core.serves(&task_type),
                workers: workers.get(&task_type).copied().unwrap_or(0),
                task_type,
            })
            .collect()
    }

    /// Statistics: counts from the store, scheduling from this node.
    pub async fn stats(&self) -> EngineResult<EngineStats> {
        let rows = self.core.store.counts().await?;
        let served = self.core.served_types();
        let by_type = stats::counts_by_type(rows, served.iter().map(String::as_str));
        let workers = self.core.workers_by_type();
        let mut totals: StatusCounts = [0; 7];
        let mut types = Vec::with_capacity(by_type.len());
        let mut unserved = Vec::new();
        for (task_type, counts) in by_type {
            for (total, count) in totals.iter_mut().zip(counts.iter()) {
                *total += count;
            }
            let handler_available = served.contains(&task_type);
            if !handler_available && stats::has_waiting_work(&counts) {
                unserved.push(task_type.clone());
            }
            types.push(TypeStats {
                concurrency_limit: self.core.limits.type_limit(&task_type).unwrap_or(0),
                workers: workers.get(&task_type).copied().unwrap_or(0),
                task_type,
                counts,
                handler_available,
            });
        }
        let (limit, reason) = self.core.limits.current();
        let metrics = self.core.metrics.lock().clone();
        Ok(EngineStats {
            running: totals[TaskStatus::Running.index()] as usize,
            success_rate: stats::success_rate(&totals),
            counts: totals,
            by_type: types,
            max_concurrent_tasks: self.core.limits.max(),
            effective_concurrency_limit: limit,
            concurrency_limit_reason: reason,
            unserved_task_types: unserved,
            submitted_since_start: metrics.submitted,
            failed_attempts_since_start: metrics.failed_attempts,
            retries_since_start: metrics.retries,
            uptime: self.core.started_at.elapsed(),
        })
    }

    /// This node's scheduling now: no store involved.
    pub fn scheduling(&self) -> Scheduling {
        let (limit, reason) = self.core.limits.current();
        Scheduling {
            max_concurrent_tasks: self.core.limits.max(),
            effective_concurrency_limit: limit,
            concurrency_limit_reason: reason,
            running: self.core.dispatch.running(),
        }
    }

    /// Streams one task: its current state, then every change, ending after
    /// a terminal status.
    pub async fn watch_task(&self, id: TaskId) -> EngineResult<impl Stream<Item = TaskEvent> + Send + 'static> {
        let (current, receiver) = self.core.store.watch(id).await?;
        let current = current.ok_or(EngineError::TaskNotFound(id))?;
        Ok(self.follow(current, receiver))
    }

    /// `current`, then each change of it that `receiver` brings, explained,
    /// ending after its end.
    fn follow(
        &self,
        current: Task,
        receiver: tokio::sync::broadcast::Receiver<Arc<TaskEvent>>,
    ) -> impl Stream<Item = TaskEvent> + Send + 'static {
        let core = self.core.clone();
        watch_streams::single_task(self.core.store.clone(), current, receiver)
            .map(move |event| core.explain_event(event))
    }

    /// Submits `task` and waits up to `wait` (or until the engine stops)
    /// for it to end; the task as it then is.
    pub async fn run(&self, task: NewTask, wait: Duration) -> EngineResult<Task> {
        // Subscribed before the submit, the watch misses no change after it
        // and needs no snapshot of its own: the submit's answer is one.
        let receiver = self.core.store.subscribe();
        let submitted = self.submit(task).await?;
        if submitted.status.is_terminal() {
            return Ok(submitted);
        }
        let mut events = std::pin::pin!(self.follow(submitted.clone(), receiver));
        let mut latest = submitted;
        let deadline = tokio::time::sleep(wait);
        let mut deadline = std::pin::pin!(deadline);
        loop {
            tokio::select! {
                event = events.next() => match event.and_then(|event| event.task) {
                    Some(now) => {
                        latest = Task::clone(&now);
                        if latest.status.is_terminal() {
                            return Ok(latest);
                        }
                    }
                    None => return Ok(latest),
                },
                _ = &mut deadline => return Ok(latest),
                _ = self.core.stopping.cancelled() => return Ok(latest),
            }
        }
    }

    /// Streams events of tasks matching `filter` until dropped.
    pub fn watch_tasks(&self, filter: TaskFilter) -> impl Stream<Item = TaskEvent> + Send + 'static {
        let core = self.core.clone();
        watch_streams::filtered(filter, self.core.store.subscribe()).map(move |event| core.explain_event(event))
    }
}
