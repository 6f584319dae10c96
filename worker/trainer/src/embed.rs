//! Sentence embeddings: `stilts encode` and the embedding head of retrieval tasks.

use std::path::Path;

use burn::prelude::*;

use crate::batch::TokenBatch;
use crate::encoder::{Encoder, EncoderConfig};
use crate::error::{Result, TrainerError};
use crate::model::load_pretrained;
use crate::tokenize::TextTokenizer;

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// Mean over non-padding tokens (special tokens included, as sentence-transformers does).
    #[default]
    Mean,
    /// The summary token: the first (`[CLS]` / `<s>`), for XLNet the last (`<cls>`).
    Cls,
}

impl std::str::FromStr for Pool {
    type Err = TrainerError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Self::Mean),
            "cls" => Ok(Self::Cls),
            other => Err(TrainerError::Config(format!(
                "unknown pooling {other:?} (mean, cls)"
            ))),
        }
    }
}

/// Pools `[batch, seq, hidden]` hidden states of `encoder` into `[batch, hidden]`.
pub fn pool(encoder: &Encoder, hidden: Tensor<3>, batch: &TokenBatch, how: Pool) -> Tensor<2> {
    let [b, _, h] = hidden.dims();
    match how {
        Pool::Cls => encoder.summary(hidden),
        Pool::Mean => {
            let keep = batch.keep_mask(&hidden.device()); // [b, seq, 1]
            let sum = (hidden * keep.clone()).sum_dim(1).reshape([b, h]);
            let count = keep.sum_dim(1).reshape([b, 1]).clamp_min(1.0);
            sum / count
        }
    }
}

/// Embeds `texts` with an already loaded encoder, 32 at a time.
pub fn embed_texts(
    encoder: &Encoder,
    config: &EncoderConfig,
    tokenizer: &TextTokenizer,
    texts: &[String],
    layer: Option<usize>,
    how: Pool,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let layer = layer.unwrap_or(encoder.num_layers());
    if layer > encoder.num_layers() {
        return Err(TrainerError::Config(format!(
            "layer {layer} does not exist: the model has {} layers (0 = embeddings)",
            encoder.num_layers()
        )));
    }
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        let encoded = chunk
            .iter()
            .map(|t| tokenizer.encode(t, None))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<_> = encoded.iter().collect();
        let batch = TokenBatch::new(&refs, config);
        let hidden = encoder.forward_to_layer(&batch.to_input(device), layer);
        let pooled = pool(encoder, hidden, &batch, how);
        let [b, h] = pooled.dims();
        let flat: Vec<f32> = pooled
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TrainerError::Data(format!("reading embeddings: {e:?}")))?;
        out.extend((0..b).map(|i| flat[i * h..(i + 1) * h].to_vec()));
    }
    Ok(out)
}

/// `stilts encode`: embeds `texts` with the model in `model_dir` (a HF directory or hub id) on
/// the CPU. `layer`: hidden states after that many layers (0 = embeddings; default: last).
/// No normalisation is applied.
pub fn encode(
    model_dir: &Path,
    texts: &[String],
    layer: Option<usize>,
    pool: Pool,
) -> Result<Vec<Vec<f32>>> {
    let device = Device::flex();
    let source = model_dir.to_string_lossy();
    let model = load_pretrained(&source, 512, &device)?;
    embed_texts(
        &model.encoder,
        &model.config,
        &model.tokenizer,
        texts,
        layer,
        pool,
        &device,
    )
}
