//! The one retry backoff of stilts: exponential (factor 2) from `initial`, capped at `max`, with
//! jitter so that many clients that failed together do not retry in lockstep. Used by the
//! worker's reconnects and report deliveries, the coordinator's job retries (`backoff_base`,
//! `backoff_cap`), the etcd leader's outage retries and the etcd store's connect.
//!
//! The n-th wait (n = 0, 1, …) has the ceiling `min(max, initial·2ⁿ)` and is, by [`Jitter`]:
//! the ceiling itself (`None`), uniform in `[0, ceiling]` (`Full`), or uniform in
//! `[ceiling/2, ceiling]` (`Equal`). The random numbers come from a [`SplitMix64`], seeded at
//! random or by [`Backoff::with_seed`] so tests replay them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// Bounds of a backoff; in config files `initial` and `max` are durations (`"100ms"`, `"10s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    /// Ceiling of the first wait. Default 100ms.
    #[serde(with = "crate::duration::serde")]
    pub initial: Duration,
    /// Ceiling of every wait. Default 10s.
    #[serde(with = "crate::duration::serde")]
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

/// How much of each ceiling is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Wait the ceiling.
    None,
    /// Uniform in `[0, ceiling]` ("full jitter").
    Full,
    /// Uniform in `[ceiling/2, ceiling]` ("equal jitter": at least half always passes).
    Equal,
}

/// One retry sequence. [`Backoff::reset`] after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    jitter: Jitter,
    failures: u32,
    rng: SplitMix64,
}

impl Backoff {
    /// Full jitter, randomly seeded.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            config,
            jitter: Jitter::Full,
            failures: 0,
            rng: SplitMix64::from_entropy(),
        }
    }

    /// The same with another jitter.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same with a fixed seed: the same waits every run.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = SplitMix64::new(seed);
        self
    }

    /// Waits handed out since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The ceiling of the next wait: `min(max, initial·2^failures)`.
    pub fn ceiling(&self) -> Duration {
        self.ceiling_after(self.failures)
    }

    /// The ceiling of the wait after `failures` earlier ones.
    pub fn ceiling_after(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.config
            .initial
            .saturating_mul(factor)
            .min(self.config.max)
    }

    /// The wait after `failures` earlier ones for a uniform `sample` in `[0, 1]` (pure: the
    /// caller brings the randomness).
    pub fn delay_after(&self, failures: u32, sample: f64) -> Duration {
        let ceiling = self.ceiling_after(failures);
        let sample = sample.clamp(0.0, 1.0);
        let share = match self.jitter {
            Jitter::None => return ceiling,
            Jitter::Full => sample,
            Jitter::Equal => 0.5 + 0.5 * sample,
        };
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(((nanos as f64 * share) as u64).min(nanos))
    }

    /// The next wait; each call doubles the ceiling up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let sample = self.rng.unit();
        let delay = self.delay_after(self.failures, sample);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Back to the first, shortest wait.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn bounds(initial: u64, max: u64) -> BackoffConfig {
        BackoffConfig {
            initial: ms(initial),
            max: ms(max),
        }
    }

    #[test]
    fn ceilings_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(bounds(100, 10_000)).with_seed(1);
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling().as_millis());
            let d = b.next_delay();
            assert!(d <= b.ceiling_after(b.failures() - 1), "{d:?}");
        }
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        assert_eq!(b.failures(), 10);
        b.reset();
        assert_eq!(b.ceiling(), ms(100));
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), ms(10_000));
    }

    #[test]
    fn jitter_decides_the_share_of_the_ceiling() {
        let b = Backoff::new(bounds(100, 10_000));
        assert_eq!(b.delay_after(3, 0.5), ms(400));
        assert_eq!(b.delay_after(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay_after(3, 1.0), ms(800));
        let equal = b.clone().with_jitter(Jitter::Equal);
        assert_eq!(equal.delay_after(3, 0.0), ms(400));
        assert_eq!(equal.delay_after(3, 0.5), ms(600));
        assert_eq!(equal.delay_after(30, 1.0), ms(10_000));
        let none = b.with_jitter(Jitter::None);
        assert_eq!(none.delay_after(2, 0.1), ms(400));
        assert_eq!(none.delay_after(40, 0.1), ms(10_000));
    }

    #[test]
    fn a_seed_replays_the_waits_and_full_jitter_spreads_them() {
        let waits = |seed| {
            let mut b = Backoff::new(bounds(1_000, 1_000)).with_seed(seed);
            (0..200).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(waits(42), waits(42));
        assert_ne!(waits(42), waits(43));
        let w = waits(42);
        assert!(w.iter().any(|d| *d < ms(250)));
        assert!(w.iter().any(|d| *d > ms(750)));
        assert!(w.iter().all(|d| *d <= ms(1_000)));
        let mut equal = Backoff::new(bounds(1_000, 1_000))
            .with_jitter(Jitter::Equal)
            .with_seed(42);
        assert!((0..200).all(|_| equal.next_delay() >= ms(500)));
    }

    #[test]
    fn bounds_read_from_a_config_file() {
        let c: BackoffConfig = toml::from_str("max = \"1m\"").unwrap();
        assert_eq!(c, bounds(100, 60_000));
        let c: BackoffConfig = toml::from_str("initial = 250\nmax = \"1.5s\"").unwrap();
        assert_eq!(c, bounds(250, 1_500));
        assert!(toml::from_str::<BackoffConfig>("maximum = \"1m\"").is_err());
    }
}
