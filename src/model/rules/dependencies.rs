//! What a dependency's status means for the task that depends on it.

use crate::model::{TaskId, TaskStatus};

/// A dependency seen from its dependent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependencyState {
    /// It ended in the required status.
    Met,
    /// It has not ended yet.
    Unmet,
    /// It ended in another status: the dependent can never run.
    Broken { reason: String },
}

/// The state of dependency `task_id`, now in `status`, for a dependent that
/// requires `required`.
pub fn dependency_state(task_id: TaskId, status: TaskStatus, required: TaskStatus) -> DependencyState {
    if !status.is_terminal() {
        DependencyState::Unmet
    } else if status == required {
        DependencyState::Met
    } else {
        DependencyState::Broken {
            reason: unmet_dependency_reason(task_id, status, required),
        }
    }
}

/// Why a dependent can never run: its dependency ended in another status
/// than the one it requires.
pub fn unmet_dependency_reason(dependency: TaskId, ended: TaskStatus, required: TaskStatus) -> String {
    format!("dependency {dependency} ended {ended}, required {required}")
}

/// Why a dependent can never run: its dependency is gone from the store.
pub fn missing_dependency_reason(dependency: TaskId) -> String {
    format!("dependency {dependency} no longer exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_required_terminal_status_meets_a_dependency() {
        let id = TaskId::new();
        for required in [TaskStatus::Completed, TaskStatus::Failed, TaskStatus::Cancelled] {
            for status in TaskStatus::ALL {
                let state = dependency_state(id, status, required);
                match state {
                    DependencyState::Met => assert_eq!(status, required),
                    DependencyState::Unmet => assert!(!status.is_terminal()),
                    DependencyState::Broken { reason } => {
                        assert!(status.is_terminal() && status != required);
                        assert!(reason.contains(&id.to_string()), "{reason}");
                    }
                }
            }
        }
    }
}
