//! What watchers are told. Stores publish these once a change is durable,
//! so a watcher never sees a change that a crash could undo.

use std::sync::Arc;

use crate::model::{Task, TaskStatus, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The task as it is now (first event of a single-task watch).
    Snapshot,
    Submitted,
    StatusChanged,
    Progress,
    /// The watcher missed `missed` events.
    Lagged,
}

#[derive(Clone, Debug)]
pub struct TaskEvent {
    pub sequence: u64,
    pub kind: EventKind,
    /// The task after the event; `None` only for `Lagged`.
    pub task: Option<Arc<Task>>,
    pub previous_status: Option<TaskStatus>,
    pub time: Timestamp,
    pub missed: u64,
}

impl TaskEvent {
    /// The task as it is now, outside the event sequence.
    pub fn snapshot(task: Task) -> Self {
        TaskEvent {
            sequence: 0,
            kind: EventKind::Snapshot,
            time: task.updated_at,
            previous_status: None,
            task: Some(Arc::new(task)),
            missed: 0,
        }
    }

    /// Tells a watcher it fell behind by `missed` events.
    pub fn lagged(missed: u64) -> Self {
        TaskEvent {
            sequence: 0,
            kind: EventKind::Lagged,
            task: None,
            previous_status: None,
            time: Timestamp::now(),
            missed,
        }
    }
}
