//! Seeds derived from the run's seed (SplitMix64's mixer, `stilts_common::rng::mix64`), so that
//! head initialisation, epoch shuffles and each step's dropout draw from decorrelated streams.

use stilts_common::rng::mix64;

/// A seed for (run seed, a, b), decorrelated by SplitMix64. `a`: 0 head initialisation,
/// 1 epoch shuffles, 2 + step dropout of that step.
pub(crate) fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    mix64(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03))
}
