//! What a cancel request does. A task that has not ended is cancelled at
//! once, running or not: a running attempt's lease is revoked in the same
//! step, so its executor can no longer report any other outcome.

use crate::model::TaskStatus;

/// What a cancel request leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelDecision {
    /// End the task CANCELLED now; `was_running` closes its attempt too.
    CancelNow { was_running: bool },
    /// Too late: the task already ended in this status.
    AlreadyFinished(TaskStatus),
}

pub fn decide_cancel(status: TaskStatus) -> CancelDecision {
    if status.is_terminal() {
        CancelDecision::AlreadyFinished(status)
    } else {
        CancelDecision::CancelNow {
            was_running: status == TaskStatus::Running,
        }
    }
}

/// The `status_reason` of a task cancelled for `reason`.
pub fn cancelled_reason(reason: &str, was_running: bool) -> String {
    if was_running {
        format!("cancelled while running: {reason}")
    } else {
        format!("cancelled: {reason}")
    }
}

/// The `error` of a task cancelled for `reason`.
pub fn cancelled_error(reason: &str) -> String {
    format!("cancelled: {reason}")
}

/// The reason recorded when a client gives none.
pub const DEFAULT_CANCEL_REASON: &str = "cancelled by request";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unfinished_task_can_be_cancelled_and_no_finished_one() {
        for status in TaskStatus::ALL {
            let decision = decide_cancel(status);
            if status.is_terminal() {
                assert_eq!(decision, CancelDecision::AlreadyFinished(status));
            } else {
                assert_eq!(
                    decision,
                    CancelDecision::CancelNow {
                        was_running: status == TaskStatus::Running
                    }
                );
            }
        }
    }
}
