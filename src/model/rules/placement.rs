//! Where a task goes when it is submitted or when its last dependency is
//! met: WAITING, SCHEDULED, PENDING, or straight to CANCELLED when a
//! dependency can no longer be satisfied.

use crate::model::rules::dependencies::{DependencyState, dependency_state};
use crate::model::{SchedulingWeights, TaskId, TaskPriority, TaskStatus, Timestamp};

/// A dependency as the store found it when placing a task.
#[derive(Clone, Copy, Debug)]
pub struct DependencyAtPlacement {
    pub task_id: TaskId,
    /// The dependency's status now.
    pub status: TaskStatus,
    pub required_status: TaskStatus,
}

/// Where a task goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// Held until `unmet` more of its `total` dependencies end as required.
    Waiting { unmet: usize, total: usize },
    /// Held until `at`.
    Scheduled { at: Timestamp },
    /// Ready since `ready_since`: claimable, in queue-key order.
    Pending { ready_since: Timestamp },
    /// Can never run.
    Cancelled { reason: String },
}

impl Placement {
    pub fn status(&self) -> TaskStatus {
        match self {
            Placement::Waiting { .. } => TaskStatus::Waiting,
            Placement::Scheduled { .. } => TaskStatus::Scheduled,
            Placement::Pending { .. } => TaskStatus::Pending,
            Placement::Cancelled { .. } => TaskStatus::Cancelled,
        }
    }

    /// The task's `status_reason` in this placement.
    pub fn reason(&self) -> String {
        match self {
            Placement::Waiting { unmet, total } => waiting_reason(*unmet, *total),
            Placement::Scheduled { .. } => "scheduled for run_at".to_string(),
            Placement::Pending { .. } => PENDING_REASON.to_string(),
            Placement::Cancelled { reason } => format!("cancelled: {reason}"),
        }
    }

    /// The claim-order key while PENDING.
    pub fn queue_key(&self, priority: TaskPriority, weights: &SchedulingWeights) -> Option<i64> {
        match self {
            Placement::Pending { ready_since } => Some(weights.queue_key(priority, *ready_since)),
            _ => None,
        }
    }

    /// The time a SCHEDULED task becomes due.
    pub fn due(&self) -> Option<Timestamp> {
        match self {
            Placement::Scheduled { at } => Some(*at),
            _ => None,
        }
    }
}

/// Why a PENDING task is where it is.
pub const PENDING_REASON: &str = "queued for an execution slot";

/// Why a PENDING task waits when nothing that could run it is there. Shown
/// instead of [`PENDING_REASON`]: whether a type is served is known to the
/// engine, not stored.
pub fn unserved_reason(task_type: &str) -> String {
    format!("no handler or worker serves task type {task_type}")
}

/// Why a WAITING task is where it is.
pub fn waiting_reason(unmet: usize, total: usize) -> String {
    format!("waiting for {unmet} of {total} dependencies")
}

/// Places a task being submitted at `now`, given its dependencies' states
/// (members of the same batch included, with the status just decided for
/// them).
pub fn place_new(dependencies: &[DependencyAtPlacement], run_at: Option<Timestamp>, now: Timestamp) -> Placement {
    let mut unmet = 0;
    for dependency in dependencies {
        match dependency_state(dependency.task_id, dependency.status, dependency.required_status) {
            DependencyState::Met => {}
            DependencyState::Unmet => unmet += 1,
            DependencyState::Broken { reason } => return Placement::Cancelled { reason },
        }
    }
    if unmet > 0 {
        return Placement::Waiting {
            unmet,
            total: dependencies.len(),
        };
    }
    place_ready(run_at, now)
}

/// Places a task whose dependencies are all met at `now`: held until its
/// run_at if that is still ahead, otherwise ready.
pub fn place_ready(run_at: Option<Timestamp>, now: Timestamp) -> Placement {
    match run_at {
        Some(at) if at > now => Placement::Scheduled { at },
        Some(at) => Placement::Pending { ready_since: at },
        None => Placement::Pending { ready_since: now },
    }
}

/// Places a SCHEDULED task whose time `due` has come.
pub fn place_due(due: Timestamp) -> Placement {
    Placement::Pending { ready_since: due }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dependency(status: TaskStatus, required_status: TaskStatus) -> DependencyAtPlacement {
        DependencyAtPlacement {
            task_id: TaskId::new(),
            status,
            required_status,
        }
    }

    #[test]
    fn a_task_without_dependencies_or_run_at_is_ready_now() {
        let now = Timestamp(1_000);
        assert_eq!(place_new(&[], None, now), Placement::Pending { ready_since: now });
    }

    #[test]
    fn a_future_run_at_holds_the_task_until_then_and_a_past_one_does_not() {
        let now = Timestamp(1_000);
        assert_eq!(
            place_new(&[], Some(Timestamp(5_000)), now),
            Placement::Scheduled { at: Timestamp(5_000) }
        );
        assert_eq!(
            place_new(&[], Some(Timestamp(500)), now),
            Placement::Pending {
                ready_since: Timestamp(500)
            }
        );
    }

    #[test]
    fn unfinished_dependencies_make_it_wait_and_met_ones_do_not_count() {
        let placement = place_new(
            &[
                dependency(TaskStatus::Running, TaskStatus::Completed),
                dependency(TaskStatus::Completed, TaskStatus::Completed),
                dependency(TaskStatus::Waiting, TaskStatus::Failed),
            ],
            None,
            Timestamp(1),
        );
        assert_eq!(placement, Placement::Waiting { unmet: 2, total: 3 });
        assert_eq!(placement.reason(), "waiting for 2 of 3 dependencies");
    }

    #[test]
    fn a_dependency_that_ended_otherwise_than_required_cancels_at_once() {
        let broken = dependency(TaskStatus::Failed, TaskStatus::Completed);
        let placement = place_new(
            &[dependency(TaskStatus::Running, TaskStatus::Completed), broken],
            None,
            Timestamp(1),
        );
        assert_eq!(placement.status(), TaskStatus::Cancelled);
        assert_eq!(
            placement.reason(),
            format!(
                "cancelled: dependency {} ended FAILED, required COMPLETED",
                broken.task_id
            )
        );
    }
}
