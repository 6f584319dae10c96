//! Numeric precision of the encoder's matrix products (recipe key `precision`).
//!
//! | value | matmuls and attention | everything else | default on |
//! |---|---|---|---|
//! | `fp32` | f32 | f32 | every backend |
//! | `tf32` | TF32 tensor cores on CUDA (LibTorch reads `TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1`); f32 on CPUs | f32 | – |
//! | `bf16` | bfloat16 inputs, f32 results | f32 | – |
//!
//! `bf16` is mixed precision as researchers know it from autocast: parameters, gradients and
//! AdamW state stay f32 (the master weights); only the inputs of each linear layer and of the
//! two attention products are rounded to bfloat16, and their results come back as f32, so
//! LayerNorm, softmax, GELU, the residual stream and the loss run in f32. bfloat16 has f32's
//! exponent range, so no loss scaling is needed. The cast is differentiable (its backward casts
//! the gradient back to f32).
//!
//! On burn-flex (the CPU backend) bf16 matmuls are not faster; use it there to check that a
//! recipe trains the same in bf16 before spending GPU hours on it.
//!
//! On LibTorch the BERT-family layers run as one LibTorch block each ([`crate::fused`]), and
//! there `bf16` is exactly PyTorch autocast: the linear layers (bias included), GELU and
//! attention (SDPA) run in bfloat16; the residual stream, LayerNorm, dropout and everything
//! outside the layers stay f32. The tests compare it with the burn path above (relative
//! difference ≤ 5e-2 on outputs and gradients, `worker/trainer/tests/fused.rs`).

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::FloatDType;

/// Precision of the encoder's matrix products.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    #[default]
    Fp32,
    Tf32,
    Bf16,
}

impl Precision {
    /// Parses a recipe value (`"fp32"`, `"tf32"`, `"bf16"`; the planner checks it too).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fp32" => Some(Self::Fp32),
            "tf32" => Some(Self::Tf32),
            "bf16" => Some(Self::Bf16),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Tf32 => "tf32",
            Self::Bf16 => "bf16",
        }
    }

    /// The dtype matmul inputs are rounded to, if not f32.
    fn low(self) -> Option<FloatDType> {
        match self {
            Self::Bf16 => Some(FloatDType::BF16),
            Self::Fp32 | Self::Tf32 => None,
        }
    }

    /// `a @ b` (batched) with inputs in this precision and an f32 result.
    pub fn matmul<const D: usize>(self, a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
        match self.low() {
            Some(dt) => a.cast(dt).matmul(b.cast(dt)).cast(FloatDType::F32),
            None => a.matmul(b),
        }
    }

    /// `linear.forward(x)` with the product in this precision and an f32 result (the bias is
    /// added in f32).
    pub fn linear<const D: usize>(self, linear: &Linear, x: Tensor<D>) -> Tensor<D> {
        let Some(dt) = self.low() else {
            return linear.forward(x);
        };
        let weight = linear.weight.val().cast(dt);
        let y = burn::tensor::module::linear(x.cast(dt), weight, None).cast(FloatDType::F32);
        match &linear.bias {
            Some(bias) => y + bias.val().unsqueeze(),
            None => y,
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;

    use super::*;

    #[test]
    fn bf16_products_are_close_to_f32_and_differentiable() {
        let device = Device::flex().autodiff();
        let linear = LinearConfig::new(64, 32).init(&device);
        let x = Tensor::<3>::random(
            [2, 5, 64],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        let exact = Precision::Fp32.linear(&linear, x.clone());
        let low = Precision::Bf16.linear(&linear, x.clone());
        assert_eq!(low.dims(), [2, 5, 32]);
        let err: f32 = (exact.clone() - low.clone()).abs().max().into_scalar();
        let scale: f32 = exact.abs().max().into_scalar();
        // bfloat16 keeps 8 bits of mantissa: relative error ~ 2^-8 per product, summed over 64.
        assert!(err > 0.0, "bf16 changed nothing: the cast did not happen");
        assert!(err < 0.05 * scale, "bf16 error {err} vs scale {scale}");
        let grads = low.sum().backward();
        let gx = x.grad(&grads).expect("gradient reaches the f32 input");
        assert_eq!(gx.dims(), [2, 5, 64]);
        let gw = linear
            .weight
            .grad(&grads)
            .expect("gradient reaches the f32 weight");
        assert_eq!(gw.dims(), [64, 32]);
    }

    #[test]
    fn parses_recipe_values() {
        for p in [Precision::Fp32, Precision::Tf32, Precision::Bf16] {
            assert_eq!(Precision::parse(p.as_str()), Some(p));
        }
        assert_eq!(Precision::parse("fp16"), None);
    }
}
