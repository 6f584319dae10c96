//! Mixed precision on a real task: all-MiniLM-L6-v2 fine-tuned on real SST-2 (the shared
//! subset) through `BurnExecutor`, once with `precision = "fp32"` and once with `"bf16"`, same
//! seed and data. bf16 must learn the task like fp32 does: English-dev accuracy well above
//! chance in both, and equal within the noise of rounding matmul inputs to 8 mantissa bits.

mod common;

use burn::prelude::*;
use stilts_trainer::Backend;
use stilts_trainer::batch::TokenBatch;
use stilts_trainer::precision::Precision;

#[test]
fn bf16_fine_tunes_sst2_like_fp32() {
    // The runs differ only by rounding. One standard error of an accuracy on 872 sentences is at
    // most 1.7 points; 3 points is sampling noise, more would be a bias of bf16.
    common::assert_bf16_learns_sst2_like_fp32(Backend::Flex, 3.0);
}

/// XLNet's products (the projections, the content, position and segment scores, the attention
/// output, the feed-forward layers) follow the recipe's precision: bf16 changes the hidden states
/// of a tiny XLNet by rounding, not more.
#[test]
fn xlnet_products_follow_the_precision() {
    let Some((_dir, mut model)) = common::load_tiny_xlnet(5, 64) else {
        return;
    };
    let device = Device::flex();
    let a = model
        .tokenizer
        .encode("A man is playing a guitar.", Some("Someone plays music."))
        .unwrap();
    let b = model.tokenizer.encode("What a dull movie!", None).unwrap();
    let input = TokenBatch::new(&[&a, &b], &model.config).to_input(&device);
    let fp32 = model.encoder.forward(&input);
    model.encoder.precision = Precision::Bf16;
    let bf16 = model.encoder.forward(&input);
    let err: f32 = (fp32 - bf16).abs().max().into_scalar();
    eprintln!("tiny XLNet, bf16 vs fp32: max |delta| = {err:e}");
    // LayerNorm outputs are O(1); 8 mantissa bits give ~4e-3 per product.
    assert!(
        err > 1e-4,
        "bf16 changed nothing: the products did not follow the precision"
    );
    assert!(err < 0.2, "bf16 error {err}");
}
