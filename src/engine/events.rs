//! Task events for watchers. A bounded broadcast: a watcher that falls
//! behind loses the oldest events and is told how many, and the engine never
//! waits for anyone.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::engine::model::{Task, TaskStatus, Timestamp};

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

/// Sends events to every subscriber. Sending never blocks.
pub struct EventBus {
    sender: broadcast::Sender<Arc<TaskEvent>>,
    next_sequence: u64,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        EventBus {
            sender,
            next_sequence: 1,
        }
    }

    /// Publishes an event. Called with the engine state locked, so sequence
    /// numbers follow the order of the changes themselves.
    pub fn publish(&mut self, kind: EventKind, task: &Arc<Task>, previous_status: Option<TaskStatus>) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        if self.sender.receiver_count() == 0 {
            return;
        }
        let _ = self.sender.send(Arc::new(TaskEvent {
            sequence,
            kind,
            task: Some(task.clone()),
            previous_status,
            time: task.updated_at,
            missed: 0,
        }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TaskEvent>> {
        self.sender.subscribe()
    }
}
