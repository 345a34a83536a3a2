//! The workers connected to this node: who they are, what they serve, what
//! they hold. The registry routes what the engine learns about a lease (the
//! task was cancelled, the lease was taken back) to the session of the
//! worker holding it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::RwLock;

use crate::engine::error::EngineResult;
pub use crate::model::WorkerInfo;
use crate::model::rules::attempts::AttemptEnd;
use crate::model::{ExecutorId, LeaseRef, TaskId, TaskStatus};

/// A connected worker as the engine reaches it, whatever carries its
/// messages (the registry knows workers by this, not by their session
/// type: the session needs the engine's core, and the core holds the
/// registry).
pub trait ConnectedWorker: Send + Sync {
    fn id(&self) -> &ExecutorId;
    /// The worker process's token for this run (empty when it sent none).
    fn instance(&self) -> &str;
    fn task_types(&self) -> &[String];
    /// Whether it holds the lease of `task_id`.
    fn holds(&self, task_id: TaskId) -> bool;
    fn info(&self) -> WorkerInfo;
    /// Tells it `lease` no longer counts and its handler should stop.
    fn revoke(&self, lease: &LeaseRef, reason: &str);
    /// [`ConnectedWorker::revoke`] when only the task is known.
    fn taken_back(&self, task_id: TaskId, reason: &str);
    /// Ends the attempt of `lease` (another path than its stream, such as
    /// the unary FinishAttempt); the task's status after it.
    fn finish(self: Arc<Self>, lease: LeaseRef, end: AttemptEnd) -> BoxFuture<'static, EngineResult<TaskStatus>>;
    /// Ends its session: what it holds is taken back.
    fn disconnect(self: Arc<Self>, why: &'static str) -> BoxFuture<'static, ()>;
}

/// A worker as it introduced itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerHello {
    /// The worker's own name for itself; a fresh one is made up when empty.
    /// Unique among connected workers.
    pub worker_id: Option<String>,
    /// The task types it runs.
    pub task_types: Vec<String>,
    /// The most tasks it holds at once.
    pub capacity: usize,
    /// Free-form facts (host, pid, SDK) shown to operators.
    pub labels: BTreeMap<String, String>,
    /// The worker process's token for this run: a hello with a connected
    /// worker's id and the same instance replaces that worker's session.
    pub instance: String,
}

/// A task type a submit may use, and what runs it on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskTypeInfo {
    pub task_type: String,
    /// Whether a handler or a connected worker runs it.
    pub served: bool,
    /// Connected workers that run it.
    pub workers: usize,
}

#[derive(Default)]
pub struct WorkerRegistry {
    sessions: RwLock<HashMap<ExecutorId, Arc<dyn ConnectedWorker>>>,
}

impl WorkerRegistry {
    /// Adds `session`, unless a worker of the same id is connected: then
    /// that worker is the error.
    pub fn insert(&self, session: Arc<dyn ConnectedWorker>) -> Result<(), Arc<dyn ConnectedWorker>> {
        let mut sessions = self.sessions.write();
        if let Some(connected) = sessions.get(session.id()) {
            return Err(connected.clone());
        }
        sessions.insert(session.id().clone(), session);
        Ok(())
    }

    pub fn remove(&self, id: &ExecutorId) {
        self.sessions.write().remove(id);
    }

    pub fn get(&self, id: &ExecutorId) -> Option<Arc<dyn ConnectedWorker>> {
        self.sessions.read().get(id).cloned()
    }

    /// The session holding `task_id`'s lease, if a worker here holds it.
    pub fn holder_of(&self, task_id: TaskId) -> Option<Arc<dyn ConnectedWorker>> {
        self.sessions
            .read()
            .values()
            .find(|session| session.holds(task_id))
            .cloned()
    }

    /// Tells the worker holding `lease` (if one here does) that it no
    /// longer counts and its handler should stop.
    pub fn revoke(&self, holder: &ExecutorId, lease: &LeaseRef, reason: &str) {
        if let Some(session) = self.get(holder) {
            session.revoke(lease, reason);
        }
    }

    /// [`WorkerRegistry::revoke`] for a task whose lease was taken back,
    /// when only the task is known.
    pub fn taken_back(&self, task_id: TaskId, reason: &str) {
        if let Some(session) = self.holder_of(task_id) {
            session.taken_back(task_id, reason);
        }
    }

    /// Every connected session.
    pub fn sessions(&self) -> Vec<Arc<dyn ConnectedWorker>> {
        self.sessions.read().values().cloned().collect()
    }

    /// Every connected worker, sorted by id.
    pub fn list(&self) -> Vec<WorkerInfo> {
        let mut workers: Vec<WorkerInfo> = self.sessions.read().values().map(|session| session.info()).collect();
        workers.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        workers
    }

    /// How many connected workers serve each task type.
    pub fn workers_by_type(&self) -> BTreeMap<String, usize> {
        let mut by_type = BTreeMap::new();
        for session in self.sessions.read().values() {
            for task_type in session.task_types() {
                *by_type.entry(task_type.clone()).or_default() += 1;
            }
        }
        by_type
    }
}
