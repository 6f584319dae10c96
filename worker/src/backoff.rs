//! Exponential backoff with full jitter: the n-th wait is uniform in `[0, min(max, initial·2ⁿ)]`,
//! so a hundred workers that lost the same coordinator do not come back in lockstep.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::duration_text;

/// Bounds of a backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    /// Ceiling of the first wait. Default 100ms.
    #[serde(with = "duration_text")]
    pub initial: Duration,
    /// Ceiling of every wait. Default 10s.
    #[serde(with = "duration_text")]
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// One retry sequence. [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            failures: 0,
        }
    }

    /// The ceiling of the next wait: `min(max, initial·2^failures)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.config
            .initial
            .saturating_mul(factor)
            .min(self.config.max)
    }

    /// The next wait, uniform in `[0, ceiling]`; each call doubles the ceiling up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// Back to the first, shortest wait.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig::default());
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling().as_millis());
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(*ceilings.last().unwrap() as u64));
        }
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(10));
    }

    #[test]
    fn delays_are_spread_over_the_whole_range() {
        let config = BackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
        };
        let delays: Vec<Duration> = (0..200)
            .map(|_| Backoff::new(config).next_delay())
            .collect();
        assert!(delays.iter().any(|d| *d < Duration::from_millis(250)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(750)));
    }
}
