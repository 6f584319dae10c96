//! The LibTorch encoder layer (`src/fused/`) against the burn layer it replaces, on LibTorch's
//! CPU device: same outputs and same gradients for every input and parameter, in f32 and bf16,
//! with and without autodiff; dropout runs and is reproducible from the seed.
//!
//! Needs the `libtorch` feature and a LibTorch at run time (README "GPU build"):
//! `cargo test -p stilts-trainer --features libtorch --test fused`.
#![cfg(feature = "libtorch")]
// burn-tch (and so `Device::libtorch`) is deprecated upstream but is the only CUDA path here.
#![allow(deprecated)]

mod common;

use burn::nn::Initializer;
use burn::nn::activation::ActivationConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use stilts_trainer::Backend;
use stilts_trainer::layer::{EncoderLayer, LayerConfig, attention_bias};
use stilts_trainer::precision::Precision;

const HIDDEN: usize = 32;

fn layer(device: &Device, dropout: f64, activation: ActivationConfig) -> EncoderLayer {
    device.seed(7);
    LayerConfig {
        hidden: HIDDEN,
        intermediate: 4 * HIDDEN,
        heads: 4,
        dropout,
        attention_dropout: dropout,
        layer_norm_eps: 1e-12,
        activation,
        initializer: Initializer::Normal {
            mean: 0.0,
            std: 0.2,
        },
    }
    .init(device)
}

/// `[3, 9, HIDDEN]` input and the score bias of a batch whose rows have 9, 6 and 2 real tokens.
fn input(device: &Device) -> (Tensor<3>, Tensor<4>) {
    device.seed(11);
    let x = Tensor::<3>::random([3, 9, HIDDEN], Distribution::Normal(0.0, 1.0), device);
    let lengths = [9, 6, 2];
    let pad: Vec<bool> = lengths
        .iter()
        .flat_map(|&n| (0..9).map(move |i| i >= n))
        .collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(pad, [3, 9]), device);
    (x, attention_bias(&mask))
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// Output and the gradients of x and of every parameter for `sum(out · w)`.
fn run(
    layer: &EncoderLayer,
    x: Tensor<3>,
    bias: Tensor<4>,
    p: Precision,
    fused: bool,
) -> Vec<Vec<f32>> {
    let device = x.device();
    let x = x.require_grad();
    let out = if fused {
        layer.forward(x.clone(), bias, p)
    } else {
        layer.forward_burn(x.clone(), bias, p)
    };
    device.seed(3);
    let w = Tensor::<3>::random(out.dims(), Distribution::Normal(0.0, 1.0), &device);
    let grads = (out.clone() * w).sum().backward();
    let mut all = vec![
        values(out),
        values(x.grad(&grads).expect("x has a gradient")),
    ];
    let linears = [
        &layer.mha.query,
        &layer.mha.key,
        &layer.mha.value,
        &layer.mha.output,
        &layer.pwff.linear_inner,
        &layer.pwff.linear_outer,
    ];
    for l in linears {
        all.push(values(
            l.weight.val().grad(&grads).expect("weight gradient"),
        ));
        let b = l.bias.as_ref().expect("bias");
        all.push(values(b.val().grad(&grads).expect("bias gradient")));
    }
    for n in [&layer.norm_1, &layer.norm_2] {
        all.push(values(n.gamma.val().grad(&grads).expect("gamma gradient")));
        let beta = n.beta.as_ref().expect("beta");
        all.push(values(beta.val().grad(&grads).expect("beta gradient")));
    }
    all
}

fn compare(p: Precision, activation: ActivationConfig, tolerance: f32) {
    let device = Device::libtorch().autodiff();
    let layer = layer(&device, 0.0, activation);
    let (x, bias) = input(&device);
    let fused = run(&layer, x.clone(), bias.clone(), p, true);
    let burn = run(&layer, x, bias, p, false);
    let names = [
        "output",
        "d x",
        "d q.w",
        "d q.b",
        "d k.w",
        "d k.b",
        "d v.w",
        "d v.b",
        "d o.w",
        "d o.b",
        "d inner.w",
        "d inner.b",
        "d outer.w",
        "d outer.b",
        "d norm_1.γ",
        "d norm_1.β",
        "d norm_2.γ",
        "d norm_2.β",
    ];
    for ((name, f), b) in names.iter().zip(&fused).zip(&burn) {
        // Relative to the gradient's scale, at least 1: the key bias's gradient is 0 in exact
        // arithmetic (softmax ignores a constant added to all of a query's scores), so both
        // paths give rounding noise there.
        let err = max_diff(f, b) / max_abs(b).max(1.0);
        eprintln!("{p} {name}: relative max error {err:.2e}");
        assert!(
            err <= tolerance,
            "{p} {name}: relative error {err} > {tolerance}"
        );
    }
}

#[test]
fn fused_layer_matches_burn_layer_in_f32() {
    compare(Precision::Fp32, ActivationConfig::Gelu, 1e-4);
    compare(Precision::Fp32, ActivationConfig::GeluApproximate, 1e-4);
    compare(Precision::Fp32, ActivationConfig::Relu, 1e-4);
}

#[test]
fn fused_layer_matches_burn_layer_in_bf16() {
    // Both round the products' inputs to bfloat16 (8 mantissa bits); the fused layer also keeps
    // the products' outputs in bfloat16 as autocast does, so the two differ by bf16 rounding.
    compare(Precision::Bf16, ActivationConfig::Gelu, 5e-2);
}

#[test]
fn fused_layer_without_autodiff_matches() {
    let device = Device::libtorch();
    let layer = layer(&device, 0.1, ActivationConfig::Gelu);
    let (x, bias) = input(&device);
    // No autodiff: evaluation, so dropout is off on both paths.
    let fused = values(layer.forward(x.clone(), bias.clone(), Precision::Fp32));
    let burn = values(layer.forward_burn(x, bias, Precision::Fp32));
    let err = max_diff(&fused, &burn);
    assert!(err <= 1e-4, "max error {err}");
}

#[test]
fn fused_dropout_is_on_in_training_and_reproducible_from_the_seed() {
    let device = Device::libtorch().autodiff();
    let layer = layer(&device, 0.3, ActivationConfig::Gelu);
    let (x, bias) = input(&device);
    let step = |seed: u64| {
        device.seed(seed);
        run(&layer, x.clone(), bias.clone(), Precision::Fp32, true)
    };
    // burn initialises parameters lazily, drawing from the same generator: a first step does
    // that, so the steps compared below draw only their dropout masks after the seed.
    step(4);
    let (a, b, c) = (step(5), step(5), step(6));
    for (x, y) in a.iter().zip(&b) {
        let err = max_diff(x, y);
        assert!(
            err == 0.0,
            "same seed, same masks: the numbers differ by {err}"
        );
    }
    assert!(
        max_diff(&a[0], &c[0]) > 1e-3,
        "another seed draws other masks"
    );
    let valid = values(layer.clone().valid().forward(
        x.clone().inner(),
        bias.clone().inner(),
        Precision::Fp32,
    ));
    assert!(
        max_diff(&a[0], &valid) > 1e-3,
        "dropout changed nothing in training"
    );
    for g in &a {
        assert!(g.iter().all(|v| v.is_finite()));
    }
}

/// The fused layers in a real fine-tune: all-MiniLM-L6-v2 on the shared SST-2 subset through
/// `BurnExecutor` on LibTorch's CPU device, fp32 and bf16 (the same run `tests/precision.rs`
/// does on burn-flex, where both reach ~69 % dev accuracy).
#[test]
fn fused_layers_fine_tune_sst2() {
    // The runs differ by bf16 rounding compounded over 40 steps; a gap of more than 4 points
    // would be a bias of bf16.
    common::assert_bf16_learns_sst2_like_fp32(Backend::LibTorchCpu, 4.0);
}
