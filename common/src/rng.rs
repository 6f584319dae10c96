//! SplitMix64: the small seeded generator stilts uses where a test must be able to replay the
//! numbers (backoff jitter, simulated worlds in the report's coverage test). Not for secrets.
//!
//! The trainer derives its seeds and dropout masks from [`mix64`] (`worker/trainer/src/seed.rs`,
//! `dropout.rs`); the masks and shuffles pinned by seed in its tests depend on it staying as is.

use std::hash::{BuildHasher, Hasher};

/// SplitMix64 (Steele, Lea and Flood 2014): one 64-bit state, a fixed increment and a mix.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The generator whose first number follows `seed`.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator seeded from the process's hash keys and the clock: different in every call.
    pub fn from_entropy() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        h.write_u64(nanos);
        Self(h.finish())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in the open interval (0, 1) (53 bits; never 0, so `ln` is safe).
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// SplitMix64's output function: a bijective 64-bit mixer (the generator's `next_u64` is
/// `mix64` of a counter stepped by the golden ratio).
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_sequence() {
        // First outputs for seed 1234567 of the reference C implementation (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn unit_stays_inside_zero_one_and_seeds_replay() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..1000 {
            let u = a.unit();
            assert!(u > 0.0 && u < 1.0, "{u}");
            assert_eq!(u, b.unit());
        }
        assert_ne!(
            SplitMix64::from_entropy().next_u64(),
            SplitMix64::from_entropy().next_u64()
        );
    }
}
