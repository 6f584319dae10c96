//! Dropout whose masks are drawn on the host by a counter-based generator, in parallel, when the
//! model runs on the CPU backend (burn-flex).
//!
//! burn's `Dropout` draws a Bernoulli tensor through `TensorData::random` (ChaCha, one element at
//! a time, one thread) and multiplies twice (mask, then 1/keep). In a MiniLM training step on flex
//! that was ~15 % of the CPU samples, all on one core while the other waited (perf, see the
//! README's "Benchmark"). Here element `i` of call `c` keeps its value iff
//! `splitmix64(key(seed, c) + i·φ) < keep·2⁶⁴`, so a mask is a pure function of (seed, call, i):
//! chunks are filled on rayon's threads and the result does not depend on the thread count. The
//! kept values are scaled in the same tensor, so the graph holds one multiplication.
//!
//! The module parameters stay burn's [`Dropout`] (probability and training flag), so records and
//! `Module::valid()` behave as before. Backends that draw on the device (LibTorch, CUDA) keep
//! burn's own dropout: a host mask would cost a host→device copy per call there.

use std::cell::Cell;

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

thread_local! {
    /// (seed, masks drawn since it was set): each call gets its own stream. Per thread, so jobs
    /// training on different threads of one worker do not shift each other's masks.
    static STATE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 15;
const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

/// Seeds the device's generator and this module's masks: the same seed and the same sequence of
/// forward passes give the same masks (what "same seed + same data = same result" rests on).
pub fn seed(device: &Device, seed: u64) {
    device.seed(seed);
    STATE.set((seed, 0));
}

/// `dropout.forward(input)` with host-drawn masks on the CPU backend (see the module docs).
pub fn forward<const D: usize>(dropout: &Dropout, input: Tensor<D>) -> Tensor<D> {
    let device = input.device();
    if !dropout.training.is_enabled() || !device.is_autodiff() || dropout.prob == 0.0 {
        return input;
    }
    if device != Device::flex() || burn_dropout_requested() {
        return dropout.forward(input);
    }
    let (seed, call) = STATE.get();
    STATE.set((seed, call + 1));
    let key = splitmix64(seed ^ splitmix64(call.wrapping_add(1)));
    let shape = input.shape();
    let mask = mask(shape.num_elements(), 1.0 - dropout.prob, key);
    input * Tensor::from_data(TensorData::new(mask, shape), &device)
}

/// `STILTS_DROPOUT=burn` switches back to burn's own dropout everywhere (for A/B comparisons).
fn burn_dropout_requested() -> bool {
    static BURN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BURN.get_or_init(|| std::env::var("STILTS_DROPOUT").is_ok_and(|v| v == "burn"))
}

/// `n` values, each `1/keep` with probability `keep` and 0 otherwise.
fn mask(n: usize, keep: f64, key: u64) -> Vec<f32> {
    // keep < 1 here (prob > 0), so the threshold fits in a u64.
    let threshold = (keep * 18_446_744_073_709_551_616.0) as u64;
    let scale = (1.0 / keep) as f32;
    let mut out = vec![0f32; n];
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let base = (c * CHUNK) as u64;
            for (i, v) in chunk.iter_mut().enumerate() {
                let r = splitmix64(key.wrapping_add((base + i as u64).wrapping_mul(PHI)));
                *v = if r < threshold { scale } else { 0.0 };
            }
        });
    out
}

/// One SplitMix64 step: advance by φ, then mix.
fn splitmix64(x: u64) -> u64 {
    stilts_common::rng::mix64(x.wrapping_add(PHI))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;

    #[test]
    fn mask_keeps_the_right_share_and_scales_kept_values() {
        let m = mask(1_000_000, 0.9, 42);
        let kept = m.iter().filter(|&&v| v != 0.0).count();
        assert!(
            (895_000..905_000).contains(&kept),
            "kept {kept} of 1e6 at p=0.9"
        );
        assert!(m.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        // A pure function of (n, keep, key); another key, another mask.
        assert_eq!(m, mask(1_000_000, 0.9, 42));
        assert_ne!(m, mask(1_000_000, 0.9, 43));
    }

    #[test]
    fn same_seed_same_masks_and_eval_is_identity() {
        let device = Device::flex().autodiff();
        let d = DropoutConfig::new(0.5).init();
        let x = || Tensor::<2>::ones([64, 64], &device);
        seed(&device, 7);
        let a = forward(&d, x()).into_data();
        let b = forward(&d, x()).into_data();
        seed(&device, 7);
        assert_eq!(forward(&d, x()).into_data(), a);
        assert_ne!(a, b, "consecutive calls draw different masks");
        let plain = Tensor::<2>::ones([8, 8], &Device::flex());
        assert_eq!(
            forward(&d, plain.clone()).into_data(),
            plain.into_data(),
            "no dropout outside autodiff"
        );
    }
}
