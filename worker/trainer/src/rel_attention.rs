//! XLNet's relative positional self-attention (HF `XLNetRelativeAttention`, content stream only:
//! fine-tuning uses no permutation mask and no query stream).
//!
//! For query `i` and key `j` of one head, with `q_i` the query and the biases of the layer:
//!
//! ```text
//! score(i, j) = ( (q_i + r_w_bias)·k_j                 content term  (ac)
//!               + (q_i + r_r_bias)·R(i − j)            position term (bd, after rel_shift)
//!               + (q_i + r_s_bias)·seg_embed[s(i, j)]  segment term  (ef)
//!               ) / √d_head  + mask(i, j)
//! ```
//!
//! `R(p)` is the sinusoid of relative position `p` projected by `r`; `s(i, j)` is 0 when both
//! tokens have the same segment id and 1 otherwise. The output goes through `o`, the residual
//! add and a LayerNorm (post-LN). The projections `q, k, v, o, r` have no bias and are stored as
//! HF stores them, `[d_model, n_head, d_head]`; every product runs in the encoder's
//! [`Precision`], softmax, LayerNorm and the bias terms in f32.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::dropout;
use crate::precision::Precision;

/// One layer's relative attention, named as HF names it (`rel_attn.*`).
#[derive(Module, Debug)]
pub struct RelAttention {
    /// `[d_model, n_head, d_head]`
    pub q: Param<Tensor<3>>,
    pub k: Param<Tensor<3>>,
    pub v: Param<Tensor<3>>,
    pub o: Param<Tensor<3>>,
    /// Projection of the relative position encodings.
    pub r: Param<Tensor<3>>,
    /// `[n_head, d_head]`: biases of the content, position and segment terms.
    pub r_w_bias: Param<Tensor<2>>,
    pub r_r_bias: Param<Tensor<2>>,
    pub r_s_bias: Param<Tensor<2>>,
    /// `[2, n_head, d_head]`: same segment, different segment.
    pub seg_embed: Param<Tensor<3>>,
    pub layer_norm: LayerNorm,
    /// On the attention probabilities and on the output before the residual add (XLNet uses one
    /// `dropout` for both).
    pub dropout: Dropout,
    pub n_head: usize,
    pub d_head: usize,
}

/// What every layer's attention shares within one forward pass.
#[derive(Debug, Clone)]
pub struct RelContext {
    /// `[2·seq, d_model]`: sinusoids of relative positions `seq, seq−1, …, −seq+1`.
    pub pos_emb: Tensor<2>,
    /// `[batch, 1, seq, seq]`: 1 where query and key tokens have different segment ids.
    pub seg_diff: Tensor<4>,
    /// `[batch, 1, seq, seq]`: additive mask (padding keys, except a token itself).
    pub mask: Tensor<4>,
}

/// Sizes of one relative attention block.
pub struct RelAttentionConfig {
    pub d_model: usize,
    pub n_head: usize,
    pub d_head: usize,
    pub dropout: f64,
    pub layer_norm_eps: f64,
    pub initializer: Initializer,
}

impl RelAttentionConfig {
    pub fn init(&self, device: &Device) -> RelAttention {
        let (m, n, d) = (self.d_model, self.n_head, self.d_head);
        let proj = || self.initializer.init([m, n, d], device);
        let bias = || self.initializer.init([n, d], device);
        RelAttention {
            q: proj(),
            k: proj(),
            v: proj(),
            o: proj(),
            r: proj(),
            r_w_bias: bias(),
            r_r_bias: bias(),
            r_s_bias: bias(),
            seg_embed: self.initializer.init([2, n, d], device),
            layer_norm: LayerNormConfig::new(m)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_head: n,
            d_head: d,
        }
    }
}

/// XLNet's `rel_shift_bnij`: `[b, n, s, 2s]` scores against relative positions
/// `s, s−1, …, −s+1` → `[b, n, s, s]` with entry `(i, j)` taken from column `s − i + j`, i.e. the
/// score against relative position `i − j`.
pub fn rel_shift(x: Tensor<4>) -> Tensor<4> {
    let [b, n, s, two_s] = x.dims();
    x.reshape([b, n, two_s, s])
        .slice([0..b, 0..n, 1..two_s, 0..s])
        .reshape([b, n, s, two_s - 1])
        .slice([0..b, 0..n, 0..s, 0..s])
}

impl RelAttention {
    /// `[rows, d_model] @ w` for `w` `[d_model, n_head, d_head]` → `[rows, n_head·d_head]`.
    fn project(&self, x: Tensor<2>, w: &Param<Tensor<3>>, p: Precision) -> Tensor<2> {
        let [m, n, d] = w.dims();
        p.matmul(x, w.val().reshape([m, n * d]))
    }

    /// `[b, s, d_model]` → `[b, n_head, s, d_head]`.
    fn heads(&self, x: Tensor<3>, w: &Param<Tensor<3>>, p: Precision) -> Tensor<4> {
        let [b, s, m] = x.dims();
        self.project(x.reshape([b * s, m]), w, p)
            .reshape([b, s, self.n_head, self.d_head])
            .swap_dims(1, 2)
    }

    /// A `[n_head, d_head]` bias shaped to add to `[b, n_head, s, d_head]`.
    fn head_bias(bias: &Param<Tensor<2>>) -> Tensor<4> {
        let [n, d] = bias.dims();
        bias.val().reshape([1, n, 1, d])
    }

    /// `[b, s, d_model]` → `[b, s, d_model]`: attention, `o`, dropout, residual, LayerNorm.
    pub fn forward(&self, h: Tensor<3>, ctx: &RelContext, p: Precision) -> Tensor<3> {
        let [b, s, m] = h.dims();
        let (n, d) = (self.n_head, self.d_head);
        let q = self.heads(h.clone(), &self.q, p);
        let k = self.heads(h.clone(), &self.k, p);
        let v = self.heads(h.clone(), &self.v, p);
        // Relative position keys: [2s, n·d] → [b, n, d, 2s] (transposed for the product).
        let [two_s, _] = ctx.pos_emb.dims();
        let k_r = self
            .project(ctx.pos_emb.clone(), &self.r, p)
            .reshape([two_s, n, d])
            .permute([1, 2, 0])
            .unsqueeze_dim::<4>(0)
            .expand([b, n, d, two_s]);

        let ac = p.matmul(
            q.clone() + Self::head_bias(&self.r_w_bias),
            k.swap_dims(2, 3),
        );
        let bd = rel_shift(p.matmul(q.clone() + Self::head_bias(&self.r_r_bias), k_r));
        // Segment term: [b, n, s, 2] scores against "same" and "different", then picked per pair.
        let seg = self
            .seg_embed
            .val()
            .permute([1, 2, 0])
            .unsqueeze_dim::<4>(0)
            .expand([b, n, d, 2]);
        let ef2 = p.matmul(q + Self::head_bias(&self.r_s_bias), seg);
        let same = ef2.clone().slice([0..b, 0..n, 0..s, 0..1]);
        let differ = ef2.slice([0..b, 0..n, 0..s, 1..2]);
        let ef = same.clone() + ctx.seg_diff.clone() * (differ - same);

        let scores = (ac + bd + ef).mul_scalar(1.0 / (d as f64).sqrt()) + ctx.mask.clone();
        let probs = dropout::forward(&self.dropout, softmax(scores, 3));
        let attn = p.matmul(probs, v).swap_dims(1, 2).reshape([b * s, n * d]);
        let out = p
            .matmul(attn, self.o.val().reshape([m, n * d]).transpose())
            .reshape([b, s, m]);
        self.layer_norm
            .forward(dropout::forward(&self.dropout, out) + h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entry `(i, j)` of the shifted scores is column `s − i + j` of row `i`.
    #[test]
    fn rel_shift_picks_relative_position_i_minus_j() {
        let device = Device::flex();
        let s = 3;
        let vals: Vec<f32> = (0..s * 2 * s).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(vals, [1, 1, s, 2 * s]), &device);
        let got: Vec<f32> = rel_shift(x).into_data().try_to_vec::<f32>().unwrap();
        let mut want = Vec::new();
        for i in 0..s {
            for j in 0..s {
                want.push((i * 2 * s + s - i + j) as f32);
            }
        }
        assert_eq!(got, want);
    }
}
