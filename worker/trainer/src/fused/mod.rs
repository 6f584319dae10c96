//! LibTorch-only speed path (feature `libtorch`): a BERT-family encoder layer as one autodiff
//! node run by LibTorch with its fused kernels (see [`graph`] for how the node works and
//! [`encoder_layer`] for the math, which is that of [`crate::layer::EncoderLayer::forward`]).
//!
//! [`encoder_layer`](fn@encoder_layer) is used by `EncoderLayer::forward` on LibTorch devices,
//! CPU or CUDA, with or without autodiff; other backends, XLNet and layers this path does not
//! cover (an activation other than GELU/ReLU, a linear or LayerNorm without bias) keep the
//! burn path. `STILTS_FUSED=off` switches it off for A/B comparisons (same numbers within
//! float rounding, different dropout masks: LibTorch draws them).

// burn-tch is deprecated upstream (burn points to CubeCL backends) but is the only CUDA path here.
#![allow(deprecated)]

pub mod encoder_layer;
pub mod graph;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, Backend, Dispatch, DispatchDevice, ExtensionType, LibTorch, backend_extension,
    libtorch::TchTensor,
};
use burn::nn::activation::Activation as BurnActivation;
use burn::prelude::*;

use crate::layer::EncoderLayer;
use crate::precision::Precision;
use encoder_layer::{Activation, INPUTS, LayerOptions};

/// The tensors of one layer in [`encoder_layer::forward`]'s order.
#[derive(ExtensionType)]
pub struct LayerTensors<B: Backend> {
    pub x: FloatTensor<B>,
    pub wq: FloatTensor<B>,
    pub bq: FloatTensor<B>,
    pub wk: FloatTensor<B>,
    pub bk: FloatTensor<B>,
    pub wv: FloatTensor<B>,
    pub bv: FloatTensor<B>,
    pub wo: FloatTensor<B>,
    pub bo: FloatTensor<B>,
    pub g1: FloatTensor<B>,
    pub b1: FloatTensor<B>,
    pub wi: FloatTensor<B>,
    pub bi: FloatTensor<B>,
    pub wf: FloatTensor<B>,
    pub bf: FloatTensor<B>,
    pub g2: FloatTensor<B>,
    pub b2: FloatTensor<B>,
}

impl<B: Backend> LayerTensors<B> {
    fn into_array(self) -> [FloatTensor<B>; INPUTS] {
        let Self {
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
        } = self;
        [
            x, wq, bq, wk, bk, wv, bv, wo, bo, g1, b1, wi, bi, wf, bf, g2, b2,
        ]
    }
}

/// The backend operation behind [`encoder_layer`](fn@encoder_layer).
#[backend_extension(LibTorch: cfg(feature = "libtorch"), Autodiff)]
pub trait FusedLayer: Backend {
    fn fused_encoder_layer(
        #[extension_type] tensors: LayerTensors<Self>,
        bias: FloatTensor<Self>,
        options: LayerOptions,
    ) -> FloatTensor<Self>;
}

impl FusedLayer for LibTorch {
    fn fused_encoder_layer(
        tensors: LayerTensors<Self>,
        bias: FloatTensor<Self>,
        options: LayerOptions,
    ) -> FloatTensor<Self> {
        let t = tensors.into_array().map(|t| t.tensor);
        TchTensor::new(tch::no_grad(|| {
            encoder_layer::forward(&t, &bias.tensor, &options)
        }))
    }
}

impl<C: CheckpointStrategy> FusedLayer for Autodiff<LibTorch, C> {
    fn fused_encoder_layer(
        tensors: LayerTensors<Self>,
        bias: FloatTensor<Self>,
        options: LayerOptions,
    ) -> FloatTensor<Self> {
        // The score bias comes from the padding mask: a constant, never differentiated.
        let bias = bias.into_primitive().tensor;
        graph::run::<C, INPUTS>(tensors.into_array(), move |t| {
            encoder_layer::forward(t, &bias, &options)
        })
    }
}

/// Whether `STILTS_FUSED=off` asked for the burn path everywhere.
fn switched_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var("STILTS_FUSED").is_ok_and(|v| v == "off"))
}

/// `layer.forward(x, bias, p)` run by LibTorch as one node, or `None` where this path does not
/// apply (not a LibTorch device, `STILTS_FUSED=off`, a layer it does not cover).
pub fn encoder_layer(
    layer: &EncoderLayer,
    x: &Tensor<3>,
    bias: &Tensor<4>,
    p: Precision,
) -> Option<Tensor<3>> {
    let device = x.device();
    if switched_off()
        || !matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::LibTorch(_)
        )
    {
        return None;
    }
    let activation = match &layer.pwff.activation {
        BurnActivation::Gelu(g) if g.approximate => Activation::GeluTanh,
        BurnActivation::Gelu(_) => Activation::Gelu,
        BurnActivation::Relu(_) => Activation::Relu,
        _ => return None,
    };
    let training = device.is_autodiff();
    let dropout = |d: &burn::nn::Dropout| {
        if training && d.training.is_enabled() {
            d.prob
        } else {
            0.0
        }
    };
    let options = LayerOptions {
        heads: layer.mha.n_heads as i64,
        layer_norm_eps: layer.layer_norm_eps,
        dropout: dropout(&layer.dropout),
        attention_dropout: dropout(&layer.mha.dropout),
        activation,
        bf16: p == Precision::Bf16,
    };
    let linear = |l: &burn::nn::Linear| Some((l.weight.val(), l.bias.as_ref()?.val()));
    let norm = |n: &burn::nn::LayerNorm| Some((n.gamma.val(), n.beta.as_ref()?.val()));
    let (wq, bq) = linear(&layer.mha.query)?;
    let (wk, bk) = linear(&layer.mha.key)?;
    let (wv, bv) = linear(&layer.mha.value)?;
    let (wo, bo) = linear(&layer.mha.output)?;
    let (g1, b1) = norm(&layer.norm_1)?;
    let (wi, bi) = linear(&layer.pwff.linear_inner)?;
    let (wf, bf) = linear(&layer.pwff.linear_outer)?;
    let (g2, b2) = norm(&layer.norm_2)?;
    let tensors = LayerTensors {
        x: x.clone().into_dispatch(),
        wq: wq.into_dispatch(),
        bq: bq.into_dispatch(),
        wk: wk.into_dispatch(),
        bk: bk.into_dispatch(),
        wv: wv.into_dispatch(),
        bv: bv.into_dispatch(),
        wo: wo.into_dispatch(),
        bo: bo.into_dispatch(),
        g1: g1.into_dispatch(),
        b1: b1.into_dispatch(),
        wi: wi.into_dispatch(),
        bi: bi.into_dispatch(),
        wf: wf.into_dispatch(),
        bf: bf.into_dispatch(),
        g2: g2.into_dispatch(),
        b2: b2.into_dispatch(),
    };
    let out = <Dispatch as FusedLayer>::fused_encoder_layer(
        tensors,
        bias.clone().into_dispatch(),
        options,
    );
    Some(Tensor::from_dispatch(out))
}
