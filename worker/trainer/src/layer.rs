//! One post-LN BERT transformer layer: self-attention, dropout, add & LayerNorm (`norm_1`), then
//! feed-forward, dropout, add & LayerNorm (`norm_2`).
//!
//! The field names are those of burn's `TransformerEncoderLayer` (which this replaced), so record
//! paths, the HF name table in `weights.rs` and saved checkpoints are unchanged. Own code rather
//! than burn's layer for speed on the CPU backend: dropout goes through [`crate::dropout`]
//! (host-drawn masks), the 1/√d_k scale is applied to the queries (`[b, s, d]`) instead of the
//! scores (`[b, h, s, s]`), and padding is one additive bias per batch instead of a `mask_fill`
//! per layer.

use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::{
    Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::dropout;
use crate::precision::Precision;

/// Added to the attention scores of padding keys (burn's and HF's BERT use a large negative
/// number too; `exp` of it underflows to 0 in f32).
pub const MASKED_SCORE: f32 = -1.0e4;

/// Multi-head self-attention (HF `attention.self` + `attention.output.dense`).
#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub output: Linear,
    /// On the attention probabilities (HF `attention_probs_dropout_prob`).
    pub dropout: Dropout,
    pub n_heads: usize,
    pub d_k: usize,
}

/// Position-wise feed-forward block (HF `intermediate.dense`, activation, `output.dense`); BERT
/// has no dropout inside it.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub linear_inner: Linear,
    pub linear_outer: Linear,
    #[module(skip)]
    pub activation: Activation,
}

/// One encoder layer.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub mha: SelfAttention,
    pub pwff: FeedForward,
    /// After attention (HF `attention.output.LayerNorm`).
    pub norm_1: LayerNorm,
    /// After the feed-forward block (HF `output.LayerNorm`).
    pub norm_2: LayerNorm,
    /// On each sub-layer's output before the residual add (HF `hidden_dropout_prob`).
    pub dropout: Dropout,
    /// The LayerNorms' epsilon (burn's `LayerNorm` keeps its own private; the LibTorch path,
    /// [`crate::fused`], needs it).
    #[module(skip)]
    pub layer_norm_eps: f64,
}

/// Sizes and options of one layer.
pub struct LayerConfig {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub dropout: f64,
    pub attention_dropout: f64,
    pub layer_norm_eps: f64,
    pub activation: ActivationConfig,
    pub initializer: Initializer,
}

impl LayerConfig {
    pub fn init(&self, device: &Device) -> EncoderLayer {
        let linear = |i: usize, o: usize| {
            LinearConfig::new(i, o)
                .with_initializer(self.initializer.clone())
                .init(device)
        };
        let norm = || {
            LayerNormConfig::new(self.hidden)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let h = self.hidden;
        EncoderLayer {
            mha: SelfAttention {
                query: linear(h, h),
                key: linear(h, h),
                value: linear(h, h),
                output: linear(h, h),
                dropout: DropoutConfig::new(self.attention_dropout).init(),
                n_heads: self.heads,
                d_k: h / self.heads,
            },
            pwff: FeedForward {
                linear_inner: linear(h, self.intermediate),
                linear_outer: linear(self.intermediate, h),
                activation: self.activation.init(device),
            },
            norm_1: norm(),
            norm_2: norm(),
            dropout: DropoutConfig::new(self.dropout).init(),
            layer_norm_eps: self.layer_norm_eps,
        }
    }
}

/// `[batch, seq]` padding mask (true at padding) → `[batch, 1, 1, seq]` additive score bias.
pub fn attention_bias(mask_pad: &Tensor<2, Bool>) -> Tensor<4> {
    let [b, s] = mask_pad.dims();
    mask_pad
        .clone()
        .float()
        .mul_scalar(MASKED_SCORE)
        .reshape([b, 1, 1, s])
}

impl SelfAttention {
    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`; `bias` from [`attention_bias`]. The
    /// products run in `p`; softmax and the bias in f32.
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>, p: Precision) -> Tensor<3> {
        let [b, s, d] = x.dims();
        let heads = |t: Tensor<3>| t.reshape([b, s, self.n_heads, self.d_k]).swap_dims(1, 2);
        let q = heads(
            p.linear(&self.query, x.clone())
                .mul_scalar(1.0 / (self.d_k as f64).sqrt()),
        );
        let k = heads(p.linear(&self.key, x.clone()));
        let v = heads(p.linear(&self.value, x));
        let probs = softmax(p.matmul(q, k.swap_dims(2, 3)) + bias, 3);
        let probs = dropout::forward(&self.dropout, probs);
        let context = p.matmul(probs, v).swap_dims(1, 2).reshape([b, s, d]);
        p.linear(&self.output, context)
    }
}

impl FeedForward {
    /// The two products in `p`, the activation in f32.
    pub fn forward(&self, x: Tensor<3>, p: Precision) -> Tensor<3> {
        let inner = self.activation.forward(p.linear(&self.linear_inner, x));
        p.linear(&self.linear_outer, inner)
    }
}

impl EncoderLayer {
    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`; `bias` from [`attention_bias`].
    /// LayerNorms and residual adds in f32 whatever `p` is.
    /// On LibTorch the whole layer is one node run by LibTorch's fused kernels
    /// ([`crate::fused`]).
    pub fn forward(&self, x: Tensor<3>, bias: Tensor<4>, p: Precision) -> Tensor<3> {
        #[cfg(feature = "libtorch")]
        if let Some(y) = crate::fused::encoder_layer(self, &x, &bias, p) {
            return y;
        }
        self.forward_burn(x, bias, p)
    }

    /// [`Self::forward`] as burn operations on any backend (the reference for the LibTorch
    /// path).
    pub fn forward_burn(&self, x: Tensor<3>, bias: Tensor<4>, p: Precision) -> Tensor<3> {
        let attended = dropout::forward(&self.dropout, self.mha.forward(x.clone(), bias, p));
        let x = self.norm_1.forward(x + attended);
        let fed = dropout::forward(&self.dropout, self.pwff.forward(x.clone(), p));
        self.norm_2.forward(x + fed)
    }
}
