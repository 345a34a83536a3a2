//! How failed attempts are retried.

use std::time::Duration;

/// Exponential backoff between attempts.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    pub initial_backoff: Duration,
    pub multiplier: f64,
    pub max_backoff: Duration,
    /// Fraction of the delay drawn at random, in [0, 1].
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(300),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `retry_number` (1-based), before jitter.
    pub fn base_delay(&self, retry_number: u32) -> Duration {
        let exponent = retry_number.saturating_sub(1).min(64) as i32;
        let seconds = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = seconds.min(self.max_backoff.as_secs_f64());
        Duration::from_secs_f64(capped.max(0.0))
    }

    /// The delay before retry `retry_number`, spread by jitter; `unit` is a
    /// random draw in [0, 1).
    pub fn delay(&self, retry_number: u32, unit: f64) -> Duration {
        let base = self.base_delay(retry_number).as_secs_f64();
        let spread = base * self.jitter * (2.0 * unit - 1.0);
        Duration::from_secs_f64((base + spread).max(0.0))
    }
}

/// A retry policy with each field optional, filled from server defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartialRetryPolicy {
    #[serde(default, with = "crate::model::micros::optional")]
    pub initial_backoff: Option<Duration>,
    #[serde(default)]
    pub multiplier: Option<f64>,
    #[serde(default, with = "crate::model::micros::optional")]
    pub max_backoff: Option<Duration>,
    #[serde(default)]
    pub jitter: Option<f64>,
}

impl PartialRetryPolicy {
    pub fn or_defaults(self, defaults: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            initial_backoff: self.initial_backoff.unwrap_or(defaults.initial_backoff),
            multiplier: self.multiplier.unwrap_or(defaults.multiplier),
            max_backoff: self.max_backoff.unwrap_or(defaults.max_backoff),
            jitter: self.jitter.unwrap_or(defaults.jitter),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            multiplier: 2.0,
            max_backoff: Duration::from_millis(500),
            jitter: 0.0,
        };
        let delays: Vec<_> = (1..=5).map(|n| policy.base_delay(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn jitter_spreads_the_delay_both_ways_within_its_fraction() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            multiplier: 2.0,
            max_backoff: Duration::from_secs(60),
            jitter: 0.5,
        };
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(500));
        assert_eq!(policy.delay(1, 0.5), Duration::from_secs(1));
        assert!(policy.delay(1, 0.999) < Duration::from_millis(1500));
    }
}
