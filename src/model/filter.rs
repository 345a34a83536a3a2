//! Which tasks a list or a watch is about.

use std::collections::BTreeMap;

use crate::model::{Task, TaskPriority, TaskStatus, Timestamp};

/// Which tasks a list or a watch is about. Empty parts match everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFilter {
    pub statuses: Vec<TaskStatus>,
    pub task_types: Vec<String>,
    pub priorities: Vec<TaskPriority>,
    pub labels: BTreeMap<String, String>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    /// Only tasks that ended before this.
    pub finished_before: Option<Timestamp>,
    /// Only tasks whose name contains this, ignoring ASCII case.
    pub name_contains: Option<String>,
    /// Only tasks that depend on this task: its direct dependents.
    pub depends_on: Option<crate::model::TaskId>,
}

impl TaskFilter {
    pub fn matches(&self, task: &Task) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&task.status))
            && (self.task_types.is_empty() || self.task_types.contains(&task.task_type))
            && (self.priorities.is_empty() || self.priorities.contains(&task.priority))
            && self
                .labels
                .iter()
                .all(|(key, value)| task.labels.get(key) == Some(value))
            && self.created_after.is_none_or(|after| task.created_at >= after)
            && self.created_before.is_none_or(|before| task.created_at < before)
            && self
                .finished_before
                .is_none_or(|before| task.completed_at.is_some_and(|ended| ended < before))
            && self
                .name_contains
                .as_deref()
                .is_none_or(|part| task.name.to_ascii_lowercase().contains(&part.to_ascii_lowercase()))
            && self.depends_on.is_none_or(|upstream| {
                task.dependencies
                    .iter()
                    .any(|dependency| dependency.task_id == upstream)
            })
    }
}
