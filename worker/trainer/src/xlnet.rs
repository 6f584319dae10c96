//! The XLNet encoder (HF `XLNetModel` as fine-tuning runs it): word embeddings only (no absolute
//! positions, no embedding LayerNorm), then post-LN layers of relative positional attention
//! ([`crate::rel_attention`]) and a feed-forward block.
//!
//! Sequence layout (from the tokenizer's template and [`crate::batch`]): `A <sep> B <sep> <cls>`,
//! segment ids 0 / 1 and 2 for `<cls>`, padding on the left with segment id 3, so the summary
//! token (`<cls>`) is the last position of every row. Relative attention only looks at
//! differences of positions, so left padding changes no hidden state of a real token.
//!
//! Field names follow HF's (`word_embedding`, `layer.N.rel_attn`, `layer.N.ff.layer_1`) so the
//! weight table in `weights.rs` only swaps the `transformer.` prefix.

use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::prelude::*;

use crate::dropout;
use crate::layer::MASKED_SCORE;
use crate::precision::Precision;
use crate::rel_attention::{RelAttention, RelAttentionConfig, RelContext};

/// XLNet-only options (HF `config.json`: `d_head`, `clamp_len`).
#[derive(Config, Debug)]
pub struct XlnetConfig {
    pub d_head: usize,
    /// Relative positions are clamped to `±clamp_len`; `None` (HF `clamp_len <= 0`): unclamped.
    #[config(default = "None")]
    pub clamp_len: Option<usize>,
}

/// HF `ff`: `layer_1 → activation → dropout → layer_2 → dropout`, residual, LayerNorm.
#[derive(Module, Debug)]
pub struct XlnetFeedForward {
    pub layer_1: Linear,
    pub layer_2: Linear,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
    #[module(skip)]
    pub activation: Activation,
}

/// One XLNet layer (HF `layer.N`).
#[derive(Module, Debug)]
pub struct XlnetLayer {
    pub rel_attn: RelAttention,
    pub ff: XlnetFeedForward,
}

/// The XLNet stack (HF `transformer`).
#[derive(Module, Debug)]
pub struct Xlnet {
    pub word_embedding: Embedding,
    pub layer: Vec<XlnetLayer>,
    /// On the word embeddings, the position encodings and the output (HF `dropout`).
    pub dropout: Dropout,
    pub d_model: usize,
    pub clamp_len: usize,
}

/// Sizes for [`Xlnet::new`] (read from the encoder configuration).
pub struct XlnetSizes {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub d_inner: usize,
    pub dropout: f64,
    pub layer_norm_eps: f64,
    pub activation: ActivationConfig,
    pub initializer: Initializer,
}

impl Xlnet {
    /// A randomly initialised stack; load weights with [`crate::weights::load_encoder_weights`].
    pub fn new(sizes: &XlnetSizes, cfg: &XlnetConfig, device: &Device) -> Self {
        let m = sizes.d_model;
        let norm = || {
            LayerNormConfig::new(m)
                .with_epsilon(sizes.layer_norm_eps)
                .init(device)
        };
        let linear = |i: usize, o: usize| {
            LinearConfig::new(i, o)
                .with_initializer(sizes.initializer.clone())
                .init(device)
        };
        let attn = RelAttentionConfig {
            d_model: m,
            n_head: sizes.n_head,
            d_head: cfg.d_head,
            dropout: sizes.dropout,
            layer_norm_eps: sizes.layer_norm_eps,
            initializer: sizes.initializer.clone(),
        };
        let layer = (0..sizes.n_layer)
            .map(|_| XlnetLayer {
                rel_attn: attn.init(device),
                ff: XlnetFeedForward {
                    layer_1: linear(m, sizes.d_inner),
                    layer_2: linear(sizes.d_inner, m),
                    layer_norm: norm(),
                    dropout: DropoutConfig::new(sizes.dropout).init(),
                    activation: sizes.activation.init(device),
                },
            })
            .collect();
        Self {
            word_embedding: EmbeddingConfig::new(sizes.vocab_size, m)
                .with_initializer(sizes.initializer.clone())
                .init(device),
            layer,
            dropout: DropoutConfig::new(sizes.dropout).init(),
            d_model: m,
            clamp_len: cfg.clamp_len.unwrap_or(0),
        }
    }

    /// Hidden states after `layers` layers, `[batch, seq, d_model]` (0: the word embeddings).
    pub fn forward_to_layer(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
        mask_pad: Tensor<2, Bool>,
        layers: usize,
        p: Precision,
    ) -> Tensor<3> {
        let device = input_ids.device();
        let [_, s] = input_ids.dims();
        let ctx = RelContext {
            pos_emb: dropout::forward(
                &self.dropout,
                relative_positions(s, self.d_model, self.clamp_len, &device),
            ),
            seg_diff: segment_differs(token_type_ids),
            mask: key_mask(mask_pad),
        };
        let mut h = dropout::forward(&self.dropout, self.word_embedding.forward(input_ids));
        for l in self.layer.iter().take(layers) {
            h = l.rel_attn.forward(h, &ctx, p);
            h = l.ff.forward(h, p);
        }
        if layers >= self.layer.len() {
            h = dropout::forward(&self.dropout, h);
        }
        h
    }
}

impl XlnetFeedForward {
    pub fn forward(&self, x: Tensor<3>, p: Precision) -> Tensor<3> {
        let inner = self.activation.forward(p.linear(&self.layer_1, x.clone()));
        let out = p.linear(&self.layer_2, dropout::forward(&self.dropout, inner));
        self.layer_norm
            .forward(dropout::forward(&self.dropout, out) + x)
    }
}

/// `[2·seq, d_model]` sinusoids of the relative positions `seq, seq−1, …, −seq+1` (clamped to
/// `±clamp_len` when it is > 0): `sin(p·f)` in the first half of the columns, `cos(p·f)` in the
/// second, with `f_k = 10000^(−2k/d_model)`. Computed in f64 on the host, then rounded.
pub fn relative_positions(
    seq: usize,
    d_model: usize,
    clamp_len: usize,
    device: &Device,
) -> Tensor<2> {
    let half = d_model / 2;
    let mut data = Vec::with_capacity(2 * seq * d_model);
    for row in 0..2 * seq {
        let mut pos = seq as f64 - row as f64;
        if clamp_len > 0 {
            pos = pos.clamp(-(clamp_len as f64), clamp_len as f64);
        }
        let angle = |k: usize| pos / 10000f64.powf(2.0 * k as f64 / d_model as f64);
        data.extend((0..half).map(|k| angle(k).sin() as f32));
        data.extend((0..half).map(|k| angle(k).cos() as f32));
    }
    Tensor::<2>::from_data(TensorData::new(data, [2 * seq, d_model]), device)
}

/// `[batch, seq]` segment ids → `[batch, 1, seq, seq]`, 1.0 where the ids of query and key
/// differ (HF's one-hot `seg_mat`).
pub fn segment_differs(token_type_ids: Tensor<2, Int>) -> Tensor<4> {
    let [b, s] = token_type_ids.dims();
    let t = token_type_ids.float();
    let rows = t.clone().reshape([b, 1, s, 1]);
    let cols = t.reshape([b, 1, 1, s]);
    // Ids are small integers: |difference| ≥ 1 exactly when they differ.
    (rows - cols).abs().clamp_max(1.0)
}

/// `[batch, seq]` padding mask → `[batch, 1, seq, seq]` additive mask: padding keys are masked
/// for every query but themselves (HF's `non_tgt_mask`, so padding rows stay finite).
pub fn key_mask(mask_pad: Tensor<2, Bool>) -> Tensor<4> {
    let [b, s] = mask_pad.dims();
    let device = mask_pad.device();
    let keys = mask_pad.float().reshape([b, 1, 1, s]);
    let not_self = Tensor::<2>::ones([s, s], &device) - Tensor::<2>::eye(s, &device);
    (keys * not_self.reshape([1, 1, s, s])).mul_scalar(MASKED_SCORE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_sinusoids_of_descending_relative_distance() {
        let device = Device::flex();
        let pe: Vec<f32> = relative_positions(3, 4, 0, &device)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Row 0 is position +3, row 5 position −2; columns sin(p), sin(p/100), cos(p), cos(p/100).
        let want0 = [3f64.sin(), 0.03f64.sin(), 3f64.cos(), 0.03f64.cos()];
        for (g, w) in pe[..4].iter().zip(want0) {
            assert!((*g as f64 - w).abs() < 1e-6, "{g} vs {w}");
        }
        assert!((pe[20] as f64 - (-2f64).sin()).abs() < 1e-6);
        let clamped: Vec<f32> = relative_positions(3, 4, 1, &device)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            (clamped[0] as f64 - 1f64.sin()).abs() < 1e-6,
            "clamped to +1"
        );
        assert!(
            (clamped[20] as f64 - (-1f64).sin()).abs() < 1e-6,
            "clamped to −1"
        );
    }

    #[test]
    fn padding_keys_are_masked_except_for_themselves() {
        let device = Device::flex();
        let pad = Tensor::<2, Bool>::from_data(TensorData::new(vec![true, false], [1, 2]), &device);
        let m: Vec<f32> = key_mask(pad).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(m, vec![0.0, 0.0, MASKED_SCORE, 0.0]);
        let types = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 0, 2], [1, 3]), &device);
        let d: Vec<f32> = segment_differs(types)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(d, vec![0., 0., 1., 0., 0., 1., 1., 1., 0.]);
    }
}
