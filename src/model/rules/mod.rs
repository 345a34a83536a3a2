//! The status machine, as plain functions with no I/O.
//!
//! Every store backend applies transitions by calling these, inside its own
//! atomic operation: where a submitted task enters ([`placement`]), what a
//! dependency's end does to its dependents ([`dependencies`]), how an
//! attempt is leased and how it ends ([`attempts`]), and what a cancel does
//! ([`cancel`]). The words a task's `status_reason` carries come from here
//! too, so every backend says the same thing.
//!
//! ```text
//! WAITING -> SCHEDULED -> PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED
//!                  ^          ^          |
//!                  +----------+----------+  (a failed attempt with retries left)
//! ```

pub mod attempts;
pub mod cancel;
pub mod dependencies;
pub mod placement;
#[cfg(test)]
mod properties;

use crate::model::TaskStatus;

/// Whether a task in `from` may move to `to`. Every change a store makes
/// is one of these; a new task enters in a status `may_enter` allows.
pub fn may_follow(from: TaskStatus, to: TaskStatus) -> bool {
    use TaskStatus::*;
    matches!(
        (from, to),
        (Waiting, Scheduled | Pending | Cancelled)
            | (Scheduled, Pending | Cancelled)
            | (Pending, Running | Cancelled)
            | (Running, Completed | Failed | Cancelled | Scheduled | Pending)
    )
}

/// Whether a task may be created in `status`.
pub fn may_enter(status: TaskStatus) -> bool {
    use TaskStatus::*;
    matches!(status, Waiting | Scheduled | Pending | Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_are_never_left() {
        for from in TaskStatus::ALL.into_iter().filter(|status| status.is_terminal()) {
            for to in TaskStatus::ALL {
                assert!(!may_follow(from, to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn only_a_pending_task_starts_running() {
        for from in TaskStatus::ALL {
            assert_eq!(
                may_follow(from, TaskStatus::Running),
                from == TaskStatus::Pending,
                "{from}"
            );
        }
    }
}
