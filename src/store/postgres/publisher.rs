//! Publishing what transactions changed, once they committed: the
//! transitions (for the commit observer) and the changed rows (for
//! watchers), in commit order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use crate::model::{EventKind, TaskEvent, TaskId, TaskStatus};
use crate::store::CommitObserver;
use crate::store::changes::{Change, ChangedTask, Changes};

/// Publishes committed transactions' changes in the order of their
/// tickets, taken just before each commit: two transactions that touch the
/// same task cannot both be at their commit at once (the second waits for
/// the first's row locks), so for every task, ticket order is commit order.
pub struct Publisher {
    pub observer: RwLock<Option<CommitObserver>>,
    pub events: broadcast::Sender<Arc<TaskEvent>>,
    sequence: AtomicU64,
    order: Mutex<Order>,
    /// The revision last published of each recently changed task.
    published: Mutex<RecentRevisions>,
}

/// How many tasks [`RecentRevisions`] remembers at least.
const REMEMBERED_TASKS: usize = 50_000;

/// The last revision published per task, for the most recent tasks: two
/// generations, the older dropped when the newer fills, so memory stays
/// bounded while a task is remembered far longer than the gap between two
/// notices about it.
#[derive(Default)]
struct RecentRevisions {
    current: HashMap<TaskId, u64>,
    previous: HashMap<TaskId, u64>,
}

impl RecentRevisions {
    fn last(&self, id: TaskId) -> Option<u64> {
        self.current.get(&id).or_else(|| self.previous.get(&id)).copied()
    }

    fn record(&mut self, id: TaskId, revision: u64) {
        if self.current.len() >= REMEMBERED_TASKS {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(id, revision);
    }
}

/// Where a change to publish comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A commit of this node: the change is exactly what it says.
    Here,
    /// Another node's notice: the task was read afterwards, and may be
    /// past the change the notice names.
    Elsewhere,
}

#[derive(Default)]
struct Order {
    next_ticket: u64,
    next_out: u64,
    waiting: BTreeMap<u64, Option<Changes>>,
}

/// A place in the publication order; dropping it unused gives the place up.
pub struct Ticket<'p> {
    publisher: &'p Publisher,
    number: u64,
    done: bool,
}

impl Publisher {
    pub fn new(event_buffer: usize) -> Self {
        let (events, _) = broadcast::channel(event_buffer.max(16));
        Publisher {
            observer: RwLock::new(None),
            events,
            sequence: AtomicU64::new(1),
            order: Mutex::new(Order::default()),
            published: Mutex::new(RecentRevisions::default()),
        }
    }

    pub fn wants_events(&self) -> bool {
        self.events.receiver_count() > 0
    }

    pub fn ticket(&self) -> Ticket<'_> {
        let mut order = self.order.lock();
        let number = order.next_ticket;
        order.next_ticket += 1;
        Ticket {
            publisher: self,
            number,
            done: false,
        }
    }

    fn settle(&self, number: u64, changes: Option<Changes>) {
        let mut order = self.order.lock();
        order.waiting.insert(number, changes);
        loop {
            let next = order.next_out;
            let Some(entry) = order.waiting.remove(&next) else {
                break;
            };
            order.next_out += 1;
            if let Some(changes) = entry {
                // Under the lock: publications leave in ticket order.
                self.publish(changes);
            }
        }
    }

    fn publish(&self, changes: Changes) {
        if !changes.transitions.is_empty()
            && let Some(observer) = self.observer.read().clone()
        {
            observer(&changes.transitions);
        }
        if !changes.wants_events && !changes.changed.is_empty() && self.wants_events() {
            // Someone began watching while this transaction ran, after it
            // had decided not to read its rows back; the watcher may hold a
            // snapshot from before the commit. A lag makes it read again.
            self.lag(changes.changed.len() as u64);
            return;
        }
        self.send_events(changes.events, Origin::Here);
    }

    /// Events of another node's commit, after this node's publications so
    /// far.
    pub fn publish_remote(&self, changes: Vec<(EventKind, Option<TaskStatus>, ChangedTask)>) {
        let _order = self.order.lock();
        self.send_events(
            changes
                .into_iter()
                .map(|(kind, previous, task)| Change { kind, previous, task })
                .collect(),
            Origin::Elsewhere,
        );
    }

    /// Tells watchers they missed `missed` events (changes made elsewhere
    /// that could not be read): they read the state again.
    pub fn publish_lagged(&self, missed: u64) {
        let _order = self.order.lock();
        self.lag(missed);
    }

    fn lag(&self, missed: u64) {
        let _ = self.events.send(Arc::new(TaskEvent {
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed),
            kind: EventKind::Lagged,
            time: crate::model::Timestamp::now(),
            previous_status: None,
            task: None,
            missed,
        }));
    }

    /// Publishes each change whose revision no watcher here has seen.
    /// Another node's change read past its own revision is left to the
    /// notice of what moved it on (which comes later, in commit order),
    /// unless it is a status change: then it goes out as one, carrying the
    /// status the task has now. (A task read past its submission is not
    /// "submitted" with a later status; its later notices publish it.)
    fn send_events(&self, changes: Vec<Change>, origin: Origin) {
        let mut published = self.published.lock();
        for change in changes {
            let Some(task) = change.task.into_task() else {
                continue;
            };
            if published.last(task.id).is_some_and(|last| last >= task.revision) {
                continue;
            }
            if origin == Origin::Elsewhere {
                let past_it = match change.kind {
                    // A task is created at its first revision.
                    EventKind::Submitted => task.revision > 1,
                    EventKind::Progress => task.status != TaskStatus::Running,
                    EventKind::StatusChanged => change.previous == Some(task.status),
                    _ => false,
                };
                if past_it {
                    continue;
                }
            }
            published.record(task.id, task.revision);
            let _ = self.events.send(Arc::new(TaskEvent {
                sequence: self.sequence.fetch_add(1, Ordering::Relaxed),
                kind: change.kind,
                time: task.updated_at,
                previous_status: change.previous,
                task: Some(task),
                missed: 0,
            }));
        }
    }
}

impl Ticket<'_> {
    /// The transaction committed: its changes go out in their turn.
    pub fn publish(mut self, changes: Changes) {
        self.done = true;
        self.publisher.settle(self.number, Some(changes));
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.publisher.settle(self.number, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_revisions_remember_a_task_for_a_generation_after_the_newer_one_fills() {
        let mut recent = RecentRevisions::default();
        let early = TaskId::new();
        recent.record(early, 3);
        for _ in 1..REMEMBERED_TASKS {
            recent.record(TaskId::new(), 1);
        }
        recent.record(TaskId::new(), 1);
        assert_eq!(recent.last(early), Some(3), "still remembered in the older generation");
        for _ in 0..REMEMBERED_TASKS {
            recent.record(TaskId::new(), 1);
        }
        assert_eq!(recent.last(early), None, "forgotten two generations later");
        assert!(recent.current.len() + recent.previous.len() <= 2 * REMEMBERED_TASKS);
    }
}
