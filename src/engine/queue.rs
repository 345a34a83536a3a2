//! The run queue: runnable tasks ordered by priority and age together.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::engine::config::SchedulingWeights;
use crate::engine::model::{TaskId, TaskPriority, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct QueueEntry {
    /// `ready_since - boost(priority)` in microseconds: smaller runs first.
    key: i64,
    /// Submission order breaks ties, so equal keys run first-in first-out.
    order: u64,
    id: TaskId,
}

/// Runnable tasks, with a side queue per task type for tasks that cannot
/// start yet because their type is at its own limit or has no handler. Held
/// tasks keep their place: released, they go back with their original key.
///
/// Entries are not removed when a task leaves PENDING some other way (a
/// cancel); the scheduler skips such stale entries when it pops them.
pub struct RunQueue {
    weights: SchedulingWeights,
    ready: BinaryHeap<Reverse<QueueEntry>>,
    held: HashMap<String, BinaryHeap<Reverse<QueueEntry>>>,
    next_order: u64,
}

impl RunQueue {
    pub fn new(weights: SchedulingWeights) -> Self {
        RunQueue {
            weights,
            ready: BinaryHeap::new(),
            held: HashMap::new(),
            next_order: 0,
        }
    }

    pub fn push(&mut self, id: TaskId, priority: TaskPriority, ready_since: Timestamp) {
        let boost = self.weights.boost(priority).as_micros() as i64;
        let entry = QueueEntry {
            key: ready_since.as_micros().saturating_sub(boost),
            order: self.next_order,
            id,
        };
        self.next_order += 1;
        self.ready.push(Reverse(entry));
    }

    /// Takes the task that should run next.
    pub fn pop(&mut self) -> Option<PoppedTask> {
        self.ready.pop().map(|Reverse(entry)| PoppedTask { entry })
    }

    /// Puts a popped task aside until `release(task_type)`.
    pub fn hold(&mut self, task_type: &str, popped: PoppedTask) {
        match self.held.get_mut(task_type) {
            Some(held) => held.push(Reverse(popped.entry)),
            None => {
                self.held
                    .insert(task_type.to_string(), BinaryHeap::from([Reverse(popped.entry)]));
            }
        }
    }

    /// Returns the best held task of `task_type` to the run queue.
    pub fn release_one(&mut self, task_type: &str) {
        if let Some(held) = self.held.get_mut(task_type)
            && let Some(entry) = held.pop()
        {
            self.ready.push(entry);
            if held.is_empty() {
                self.held.remove(task_type);
            }
        }
    }

    pub fn held_len(&self, task_type: &str) -> usize {
        self.held.get(task_type).map_or(0, BinaryHeap::len)
    }
}

/// A task taken from the queue, to start or to hold.
pub struct PoppedTask {
    entry: QueueEntry,
}

impl PoppedTask {
    pub fn id(&self) -> TaskId {
        self.entry.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn weights() -> SchedulingWeights {
        SchedulingWeights {
            low: Duration::ZERO,
            normal: Duration::from_secs(10),
            high: Duration::from_secs(20),
            critical: Duration::from_secs(30),
        }
    }

    fn at_seconds(seconds: i64) -> Timestamp {
        Timestamp(seconds * 1_000_000)
    }

    fn drain(queue: &mut RunQueue) -> Vec<TaskId> {
        std::iter::from_fn(|| queue.pop().map(|popped| popped.id())).collect()
    }

    #[test]
    fn higher_priority_runs_first_among_tasks_of_similar_age() {
        let mut queue = RunQueue::new(weights());
        let (low, normal, high) = (TaskId::new(), TaskId::new(), TaskId::new());
        queue.push(low, TaskPriority::Low, at_seconds(100));
        queue.push(normal, TaskPriority::Normal, at_seconds(101));
        queue.push(high, TaskPriority::High, at_seconds(102));
        assert_eq!(drain(&mut queue), vec![high, normal, low]);
    }

    #[test]
    fn an_old_low_task_runs_before_newer_high_ones() {
        let mut queue = RunQueue::new(weights());
        let old_low = TaskId::new();
        let new_high = TaskId::new();
        queue.push(old_low, TaskPriority::Low, at_seconds(100));
        queue.push(new_high, TaskPriority::High, at_seconds(125));
        assert_eq!(drain(&mut queue), vec![old_low, new_high]);
    }

    #[test]
    fn equal_keys_run_in_submission_order() {
        let mut queue = RunQueue::new(weights());
        let ids: Vec<TaskId> = (0..5).map(|_| TaskId::new()).collect();
        for id in &ids {
            queue.push(*id, TaskPriority::Normal, at_seconds(1));
        }
        assert_eq!(drain(&mut queue), ids);
    }

    #[test]
    fn held_tasks_return_with_their_place() {
        let mut queue = RunQueue::new(weights());
        let (first, second) = (TaskId::new(), TaskId::new());
        queue.push(first, TaskPriority::Normal, at_seconds(1));
        queue.push(second, TaskPriority::Normal, at_seconds(2));
        let popped = queue.pop().unwrap();
        queue.hold("export", popped);
        assert_eq!(queue.held_len("export"), 1);
        queue.release_one("export");
        assert_eq!(drain(&mut queue), vec![first, second]);
    }
}
