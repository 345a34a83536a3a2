//! How many attempts may run at once on this node: the configured maximum,
//! lowered by the ResourceMonitor's advice, and per-type limits within it.
//! Every executor of the node takes its claims within these.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::model::MachineState;

/// The reason shown while nothing but the configuration limits starts.
pub fn unthrottled_reason(max: usize) -> String {
    format!("nothing limits: all {max} slots (max_concurrent_tasks)")
}

struct Current {
    limit: usize,
    reason: String,
    machine: Option<MachineState>,
}

pub struct ConcurrencyLimits {
    max: usize,
    per_type: BTreeMap<String, usize>,
    current: Mutex<Current>,
}

impl ConcurrencyLimits {
    pub fn new(max: usize, per_type: BTreeMap<String, usize>) -> Self {
        let max = max.max(1);
        ConcurrencyLimits {
            max,
            per_type,
            current: Mutex::new(Current {
                limit: max,
                reason: unthrottled_reason(max),
                machine: None,
            }),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// The limit of `task_type` within the node's, if it has one.
    pub fn type_limit(&self, task_type: &str) -> Option<usize> {
        self.per_type.get(task_type).copied()
    }

    /// The limit in force and why.
    pub fn current(&self) -> (usize, String) {
        let current = self.current.lock();
        (current.limit, current.reason.clone())
    }

    /// The latest machine reading, stamped on attempts as they start and end.
    pub fn machine(&self) -> Option<MachineState> {
        self.current.lock().machine
    }

    /// Applies the ResourceMonitor's advice: the limit in force becomes
    /// `min(max_concurrent_tasks, recommended)`, never below 1. Running
    /// attempts are never stopped; new starts wait until the count is below.
    /// `reading` is (cpu %, memory %, io wait %) of the latest sample.
    /// Returns whether the limit rose (so that waiting work may start).
    pub fn apply_load(&self, recommended: usize, reason: String, reading: Option<(f64, f64, Option<f64>)>) -> bool {
        let limit = recommended.clamp(1, self.max);
        let throttled = limit < self.max;
        let mut current = self.current.lock();
        let rose = limit > current.limit;
        current.limit = limit;
        current.reason = if throttled {
            reason
        } else {
            unthrottled_reason(self.max)
        };
        current.machine = reading.map(|(cpu_percent, memory_percent, io_wait_percent)| MachineState {
            cpu_percent,
            memory_percent,
            io_wait_percent,
            effective_limit: limit as u32,
            throttled,
        });
        rose
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_lowers_the_limit_within_one_and_the_maximum() {
        let limits = ConcurrencyLimits::new(8, BTreeMap::new());
        assert!(!limits.apply_load(2, "cpu 95% > 80%".into(), Some((95.0, 10.0, None))));
        assert_eq!(limits.current(), (2, "cpu 95% > 80%".to_string()));
        assert_eq!(limits.machine().map(|machine| machine.throttled), Some(true));
        assert!(!limits.apply_load(0, "extreme".into(), None));
        assert_eq!(limits.current().0, 1, "never below one");
        assert!(limits.apply_load(50, "idle".into(), None));
        assert_eq!(limits.current(), (8, unthrottled_reason(8)));
    }
}
