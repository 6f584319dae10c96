//! Exponential backoff with full jitter: the n-th wait is uniform in `[0, min(max, initial·2ⁿ)]`,
//! so a hundred workers that lost the same coordinator do not come back in lockstep. The type is
//! the one shared [`stilts_common::backoff::Backoff`]; `[backoff]` in the worker's config is its
//! [`BackoffConfig`].

pub use stilts_common::backoff::{Backoff, BackoffConfig};

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
