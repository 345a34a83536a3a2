//! Tasks by type and status, kept in memory and changed only by committed
//! transactions, so stats never scan the table.

use std::collections::BTreeMap;

use crate::model::TaskStatus;
use crate::store::{StatusCount, Transition};

/// Counts per task type, indexed by [`TaskStatus::index`].
#[derive(Debug, Default)]
pub struct Counts {
    by_type: BTreeMap<String, [u64; 7]>,
}

impl Counts {
    pub fn from_rows(rows: Vec<StatusCount>) -> Self {
        let mut counts = Counts::default();
        for row in rows {
            counts.slot(&row.task_type)[row.status.index()] += row.count;
        }
        counts
    }

    fn slot(&mut self, task_type: &str) -> &mut [u64; 7] {
        if !self.by_type.contains_key(task_type) {
            self.by_type.insert(task_type.to_string(), [0; 7]);
        }
        self.by_type.get_mut(task_type).expect("inserted above")
    }

    pub fn apply(&mut self, transitions: &[Transition]) {
        for transition in transitions {
            let slot = self.slot(&transition.task_type);
            if let Some(from) = transition.from {
                slot[from.index()] = slot[from.index()].saturating_sub(1);
            }
            slot[transition.to.index()] += 1;
        }
    }

    pub fn remove(&mut self, task_type: &str, status: TaskStatus) {
        let slot = self.slot(task_type);
        slot[status.index()] = slot[status.index()].saturating_sub(1);
    }

    /// Tasks of `task_type` in `status`.
    pub fn of(&self, task_type: &str, status: TaskStatus) -> u64 {
        self.by_type.get(task_type).map_or(0, |counts| counts[status.index()])
    }

    pub fn rows(&self) -> Vec<StatusCount> {
        let mut rows = Vec::new();
        for (task_type, counts) in &self.by_type {
            for status in TaskStatus::ALL {
                let count = counts[status.index()];
                if count > 0 {
                    rows.push(StatusCount {
                        task_type: task_type.clone(),
                        status,
                        count,
                    });
                }
            }
        }
        rows
    }
}
