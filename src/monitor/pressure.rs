//! From a reading to a load figure and a recommended concurrency.
//!
//! Each resource's *pressure* is its usage divided by its threshold: 1.0
//! means "at the threshold". The load is the largest pressure, capped at 1.
//! The recommended concurrency for a maximum `max` is `max * f(p)` with `p`
//! the smoothed largest pressure and
//!
//! ```text
//! f(p) = 1                          p <= full_speed_below (default 0.75)
//! f(p) = 1 - 0.5 * (p - b)/(1 - b)  b < p <= 1   (down to half at the threshold)
//! f(p) = 0.5 / p^4                  p > 1        (steep back-off above it)
//! ```
//!
//! rounded down, and never below 1. CPU at 95% against a threshold of 80
//! (p = 1.19) gives a quarter of the pool; at 85% (p = 1.06) two fifths.

use crate::monitor::config::Thresholds;
use crate::monitor::sample::ResourceSample;

/// The resource under the most pressure, and how much.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pressure {
    /// usage / threshold of the worst resource.
    pub value: f64,
    pub resource: crate::monitor::alerts::Resource,
}

/// The pressure of each resource in a sample, worst first.
pub fn pressures(sample: &ResourceSample, thresholds: &Thresholds) -> Vec<Pressure> {
    use crate::monitor::alerts::Resource;
    let mut pressures = vec![
        Pressure {
            value: ratio(sample.cpu_percent, thresholds.cpu_percent),
            resource: Resource::Cpu,
        },
        Pressure {
            value: ratio(sample.memory_percent, thresholds.memory_percent),
            resource: Resource::Memory,
        },
        Pressure {
            value: ratio(sample.disk_percent, thresholds.disk_percent),
            resource: Resource::Disk,
        },
    ];
    if let Some(io_wait) = sample.io_wait_percent {
        pressures.push(Pressure {
            value: ratio(io_wait, thresholds.io_wait_percent),
            resource: Resource::IoWait,
        });
    }
    pressures.sort_by(|a, b| b.value.total_cmp(&a.value));
    pressures
}

fn ratio(value: f64, threshold: f64) -> f64 {
    if threshold <= 0.0 || !value.is_finite() {
        return 0.0;
    }
    (value / threshold).max(0.0)
}

/// The share of the pool to use under pressure `p`.
pub fn pool_fraction(pressure: f64, full_speed_below: f64) -> f64 {
    let bend = full_speed_below.clamp(0.0, 0.99);
    if pressure <= bend {
        1.0
    } else if pressure <= 1.0 {
        1.0 - 0.5 * (pressure - bend) / (1.0 - bend)
    } else {
        0.5 / pressure.powi(4)
    }
}

/// Recommended concurrency for a pool of `max` under pressure `p`.
pub fn recommended_concurrency(max: usize, pressure: f64, full_speed_below: f64) -> usize {
    let fraction = pool_fraction(pressure, full_speed_below);
    ((max as f64 * fraction).floor() as usize).clamp(1, max.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_with_headroom_runs_the_full_pool() {
        assert_eq!(recommended_concurrency(10, 0.5, 0.75), 10);
        assert_eq!(recommended_concurrency(10, 0.75, 0.75), 10);
    }

    #[test]
    fn the_pool_shrinks_to_half_at_the_threshold_and_steeply_above_it() {
        assert_eq!(recommended_concurrency(10, 1.0, 0.75), 5);
        assert_eq!(recommended_concurrency(10, 95.0 / 80.0, 0.75), 2);
        assert!(recommended_concurrency(100, 1.5, 0.75) < recommended_concurrency(100, 1.2, 0.75));
    }

    #[test]
    fn the_pool_never_drops_below_one() {
        assert_eq!(recommended_concurrency(10, 50.0, 0.75), 1);
        assert_eq!(recommended_concurrency(1, 2.0, 0.75), 1);
    }

    #[test]
    fn the_worst_resource_comes_first_and_missing_io_wait_is_skipped() {
        let sample = ResourceSample {
            time: crate::model::Timestamp(0),
            cpu_percent: 40.0,
            memory_percent: 76.0,
            disk_percent: 45.0,
            io_wait_percent: None,
        };
        let found = pressures(&sample, &Thresholds::default());
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].resource, crate::monitor::alerts::Resource::Memory);
        assert!((found[0].value - 0.95).abs() < 1e-9);
    }
}
