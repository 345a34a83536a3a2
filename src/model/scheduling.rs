//! The order in which ready tasks are claimed: priority and wait time
//! together, so that nothing starves.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{TaskPriority, Timestamp};

/// Ready tasks are claimed by `ready_since - boost(priority)`, earliest
/// first. A fresh HIGH task therefore runs before a NORMAL one that became
/// ready less than `high - normal` earlier, but a task that has waited longer
/// than that difference runs first: nothing starves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulingWeights {
    #[serde(with = "humantime_serde")]
    pub low: Duration,
    #[serde(with = "humantime_serde")]
    pub normal: Duration,
    #[serde(with = "humantime_serde")]
    pub high: Duration,
    #[serde(with = "humantime_serde")]
    pub critical: Duration,
}

impl Default for SchedulingWeights {
    fn default() -> Self {
        SchedulingWeights {
            low: Duration::ZERO,
            normal: Duration::from_secs(60),
            high: Duration::from_secs(300),
            critical: Duration::from_secs(900),
        }
    }
}

impl SchedulingWeights {
    pub fn boost(&self, priority: TaskPriority) -> Duration {
        match priority {
            TaskPriority::Low => self.low,
            TaskPriority::Normal => self.normal,
            TaskPriority::High => self.high,
            TaskPriority::Critical => self.critical,
        }
    }

    /// The claim-order key of a task ready since `ready_since`: smaller is
    /// claimed first; ties go to the older id.
    pub fn queue_key(&self, priority: TaskPriority, ready_since: Timestamp) -> i64 {
        ready_since.saturating_sub(self.boost(priority)).as_micros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn higher_priority_comes_first_among_tasks_of_similar_age() {
        let weights = weights();
        let low = weights.queue_key(TaskPriority::Low, at_seconds(100));
        let normal = weights.queue_key(TaskPriority::Normal, at_seconds(101));
        let high = weights.queue_key(TaskPriority::High, at_seconds(102));
        assert!(high < normal && normal < low);
    }

    #[test]
    fn an_old_low_task_comes_before_newer_high_ones() {
        let weights = weights();
        let old_low = weights.queue_key(TaskPriority::Low, at_seconds(100));
        let new_high = weights.queue_key(TaskPriority::High, at_seconds(125));
        assert!(old_low < new_high);
    }
}
