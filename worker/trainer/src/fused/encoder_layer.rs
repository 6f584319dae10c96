//! One post-LN BERT layer written against LibTorch directly (the math of
//! [`crate::layer::EncoderLayer::forward`]), so that LibTorch runs it with its fused kernels:
//! SDPA (flash / memory-efficient attention on CUDA, the fused CPU kernel on CPUs), GEMMs with
//! the bias in the epilogue, LayerNorm and GELU as single kernels.

use tch::{Kind, Tensor};

/// The layer's activation, as LibTorch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Gelu,
    GeluTanh,
    Relu,
}

/// Everything of the layer that is not a tensor.
#[derive(Debug, Clone)]
pub struct LayerOptions {
    pub heads: i64,
    pub layer_norm_eps: f64,
    /// Hidden dropout, 0 when not training.
    pub dropout: f64,
    /// Attention-probability dropout, 0 when not training.
    pub attention_dropout: f64,
    pub activation: Activation,
    /// Products in bfloat16 (recipe `precision = "bf16"`), as PyTorch autocast runs them.
    pub bf16: bool,
}

/// The layer's tensors in this order (burn's `Linear` weights are `[in, out]`).
pub const INPUTS: usize = 17;

/// `t` = [x, q.w, q.b, k.w, k.b, v.w, v.b, out.w, out.b, norm_1.γ, norm_1.β, inner.w, inner.b,
/// outer.w, outer.b, norm_2.γ, norm_2.β]; `bias` is the `[batch, 1, 1, seq]` additive score
/// bias. `[batch, seq, hidden]` → `[batch, seq, hidden]`, f32.
pub fn forward(t: &[Tensor], bias: &Tensor, o: &LayerOptions) -> Tensor {
    let [
        x,
        wq,
        bq,
        wk,
        bk,
        wv,
        bv,
        wo,
        bo,
        g1,
        b1,
        wi,
        bi,
        wf,
        bf,
        g2,
        b2,
    ] = t
    else {
        panic!("an encoder layer has {INPUTS} tensors, got {}", t.len());
    };
    let low = |t: &Tensor| {
        if o.bf16 {
            t.to_kind(Kind::BFloat16)
        } else {
            t.shallow_clone()
        }
    };
    // y = x·W + b with W stored [in, out]: LibTorch's linear takes [out, in], so a transposed
    // view (no copy; the GEMM reads it transposed).
    let linear = |x: &Tensor, w: &Tensor, b: &Tensor| x.linear(&low(w).tr(), Some(low(b)));
    let size = x.size();
    let (batch, seq, hidden) = (size[0], size[1], size[2]);
    let d_k = hidden / o.heads;
    let heads = |t: Tensor| t.view([batch, seq, o.heads, d_k]).transpose(1, 2);

    let x_low = low(x);
    let q = heads(linear(&x_low, wq, bq));
    let k = heads(linear(&x_low, wk, bk));
    let v = heads(linear(&x_low, wv, bv));
    let context = Tensor::scaled_dot_product_attention(
        &q,
        &k,
        &v,
        Some(bias.to_kind(q.kind())),
        o.attention_dropout,
        false,
        Some(1.0 / (d_k as f64).sqrt()),
        false,
    )
    .transpose(1, 2)
    .reshape([batch, seq, hidden]);
    let attended = linear(&context, wo, bo)
        .to_kind(Kind::Float)
        .dropout(o.dropout, o.dropout > 0.0);
    let norm = |t: Tensor, g: &Tensor, b: &Tensor| {
        t.layer_norm([hidden], Some(g), Some(b), o.layer_norm_eps, true)
    };
    let x = norm(x + attended, g1, b1);

    let inner = linear(&low(&x), wi, bi);
    let inner = match o.activation {
        Activation::Gelu => inner.gelu("none"),
        Activation::GeluTanh => inner.gelu("tanh"),
        Activation::Relu => inner.relu(),
    };
    let fed = linear(&inner, wf, bf)
        .to_kind(Kind::Float)
        .dropout(o.dropout, o.dropout > 0.0);
    norm(x + fed, g2, b2)
}
