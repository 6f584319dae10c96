//! Seeds derived from the run's seed (SplitMix64's mixer), so that head initialisation, epoch
//! shuffles and each step's dropout draw from decorrelated streams.

/// A seed for (run seed, a, b), decorrelated by SplitMix64. `a`: 0 head initialisation,
/// 1 epoch shuffles, 2 + step dropout of that step.
pub(crate) fn derive_seed(seed: u64, a: u64, b: u64) -> u64 {
    mix64(seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
