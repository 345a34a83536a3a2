//! What a transaction changed, collected while its transitions run and
//! handed on only once it committed: the status transitions (for the commit
//! observer and the counters), the changed tasks (for watchers), and the
//! tasks deleted. The same collector serves every backend.

use std::sync::Arc;

use crate::model::{EventKind, SchedulingWeights, Task, TaskId, TaskStatus};
use crate::store::Transition;
use crate::store::columns::TaskRow;

/// A changed task for watchers: the row as the change left it, parsed into
/// a task only off the committing path.
pub enum ChangedTask {
    Row(Box<TaskRow>),
    Task(Arc<Task>),
}

impl ChangedTask {
    /// The task for its event; `None` (logged) when the row cannot be read.
    pub fn into_task(self) -> Option<Arc<Task>> {
        match self {
            ChangedTask::Task(task) => Some(task),
            ChangedTask::Row(row) => match row.into_task() {
                Ok(task) => Some(Arc::new(task)),
                Err(error) => {
                    tracing::error!(%error, "cannot read a changed task back for its event");
                    None
                }
            },
        }
    }
}

/// One change as watchers will see it.
pub struct Change {
    pub kind: EventKind,
    pub previous: Option<TaskStatus>,
    pub task: ChangedTask,
}

/// What a statement that changes a task publishes about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The status the task had before.
    pub previous: Option<TaskStatus>,
}

impl Event {
    pub fn status_changed(from: TaskStatus) -> Self {
        Event {
            kind: EventKind::StatusChanged,
            previous: Some(from),
        }
    }

    pub fn progress() -> Self {
        Event {
            kind: EventKind::Progress,
            previous: Some(TaskStatus::Running),
        }
    }
}

/// The changes of one transaction (in SQLite, of one group commit).
pub struct Changes {
    pub weights: SchedulingWeights,
    /// Whether anyone watches: rows are only read back for them.
    pub wants_events: bool,
    /// The changed tasks, for watchers here (only when someone watches).
    pub events: Vec<Change>,
    /// Every task changed, watched here or not, for a store shared by
    /// several nodes: watchers elsewhere may want it.
    pub changed: Vec<(TaskId, EventKind, Option<TaskStatus>)>,
    shared: bool,
    pub transitions: Vec<Transition>,
    /// Tasks deleted, by type and the status they had.
    pub removed: Vec<(String, TaskStatus)>,
}

impl Changes {
    /// An empty collector; `shared` when other nodes hear of the changes.
    pub fn new(weights: SchedulingWeights, wants_events: bool, shared: bool) -> Self {
        Changes {
            weights,
            wants_events,
            events: Vec::new(),
            changed: Vec::new(),
            shared,
            transitions: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// Whether a statement that changes `id` must give back its row.
    pub fn wants_row(&self) -> bool {
        self.wants_events
    }

    /// Records a change whose row nobody here watches.
    pub fn record_unread(&mut self, id: TaskId, event: Event) {
        if self.shared {
            self.changed.push((id, event.kind, event.previous));
        }
    }

    pub fn record_row(&mut self, id: TaskId, event: Event, row: impl FnOnce() -> TaskRow) {
        self.record_unread(id, event);
        if self.wants_events {
            self.events.push(Change {
                kind: event.kind,
                previous: event.previous,
                task: ChangedTask::Row(Box::new(row())),
            });
        }
    }

    pub fn record_task(&mut self, id: TaskId, event: Event, task: impl FnOnce() -> Task) {
        self.record_unread(id, event);
        if self.wants_events {
            self.events.push(Change {
                kind: event.kind,
                previous: event.previous,
                task: ChangedTask::Task(Arc::new(task())),
            });
        }
    }

    pub fn transition(&mut self, transition: Transition) {
        self.transitions.push(transition);
    }

    /// The transitions recorded since `start`.
    pub fn transitions_since(&self, start: usize) -> Vec<Transition> {
        self.transitions[start..].to_vec()
    }
}
