//! Task heads on top of the encoder. Every head reads the summary token (the first, `[CLS]` /
//! `<s>`; for XLNet the last, `<cls>`: [`Encoder::summary`]) through a fresh `dense → tanh`
//! layer, RoBERTa-style, and a fresh output layer; the checkpoint's NSP
//! pooler is not used, so BERT and RoBERTa families are treated alike and the target stage's
//! "fresh head" means the same thing for every model.
//!
//! Token-level heads (token classification, span QA) apply `dropout → out` to every token, as HF's
//! `*ForTokenClassification`; their `dense` layer is kept (same checkpoint layout) but unused.

use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::batch::TokenBatch;
use crate::dropout;
use crate::encoder::Encoder;

/// What a head predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadKind {
    /// One of `num_labels` classes (softmax, cross-entropy).
    Classification { num_labels: usize },
    /// A real value (mean squared error).
    Regression,
    /// One score per choice, softmax over the choices of an example (cross-entropy).
    MultipleChoice,
    /// One of `num_labels` tags per word, read at the word's first sub-token (cross-entropy
    /// over those positions only).
    TokenClassification { num_labels: usize },
    /// Extractive QA: a start and an end logit per token (mean of the two cross-entropies).
    SpanQa,
    /// Retrieval: query and candidate embedded by the shared encoder (`pooling` of the last
    /// layer, unit length), in-batch softmax (see [`crate::dual`]). The head's layers are unused.
    DualEncoder { pooling: crate::embed::Pool },
}

impl HeadKind {
    /// Width of the output layer.
    pub fn num_outputs(self) -> usize {
        match self {
            Self::Classification { num_labels } | Self::TokenClassification { num_labels } => {
                num_labels
            }
            Self::Regression | Self::MultipleChoice | Self::DualEncoder { .. } => 1,
            Self::SpanQa => 2,
        }
    }
}

/// Configuration of a fresh head.
#[derive(Config, Debug)]
pub struct HeadConfig {
    pub hidden_size: usize,
    pub num_outputs: usize,
    #[config(default = 0.1)]
    pub dropout: f64,
}

/// `dropout → dense → tanh → dropout → out` on the summary token.
#[derive(Module, Debug)]
pub struct Head {
    pub dense: Linear,
    pub out: Linear,
    pub dropout: Dropout,
}

impl HeadConfig {
    pub fn init(&self, device: &Device) -> Head {
        let init = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Head {
            dense: LinearConfig::new(self.hidden_size, self.hidden_size)
                .with_initializer(init.clone())
                .init(device),
            out: LinearConfig::new(self.hidden_size, self.num_outputs)
                .with_initializer(init)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl Head {
    /// The summary token's hidden state `[batch, hidden]` → `[batch, num_outputs]`
    pub fn forward(&self, cls: Tensor<2>) -> Tensor<2> {
        let x = self
            .dense
            .forward(dropout::forward(&self.dropout, cls))
            .tanh();
        self.out.forward(dropout::forward(&self.dropout, x))
    }

    /// `[batch, seq, hidden]` → `[batch, seq, num_outputs]` (token-level heads).
    pub fn forward_tokens(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.out.forward(dropout::forward(&self.dropout, hidden))
    }
}

/// Encoder plus head: what the training loop optimises and what checkpoints hold.
#[derive(Module, Debug)]
pub struct TaskModel {
    pub encoder: Encoder,
    pub head: Head,
}

impl TaskModel {
    /// Head outputs for a batch of sequences, `[batch, num_outputs]`.
    pub fn forward(&self, batch: &TokenBatch, device: &Device) -> Tensor<2> {
        let hidden = self.encoder.forward(&batch.to_input(device));
        self.head.forward(self.encoder.summary(hidden))
    }

    /// Per-token head outputs, `[batch, seq, num_outputs]`.
    pub fn token_scores(&self, batch: &TokenBatch, device: &Device) -> Tensor<3> {
        self.head
            .forward_tokens(self.encoder.forward(&batch.to_input(device)))
    }

    /// Per-example scores: `[examples, num_outputs]` for classification/regression,
    /// `[examples, choices]` for multiple choice (the batch holds `examples × choices`
    /// sequences, choices of one example adjacent).
    pub fn scores(
        &self,
        kind: HeadKind,
        batch: &TokenBatch,
        choices: usize,
        device: &Device,
    ) -> Tensor<2> {
        let out = self.forward(batch, device);
        match kind {
            HeadKind::MultipleChoice => {
                let [n, _] = out.dims();
                out.reshape([n / choices, choices])
            }
            _ => out,
        }
    }
}

/// Mean cross-entropy of `logits` `[b, n]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, targets: &[usize]) -> Tensor<1> {
    let device = logits.device();
    let b = targets.len();
    let t: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let t = Tensor::<2, Int>::from_data(TensorData::new(t, [b, 1]), &device);
    log_softmax(logits, 1).gather(1, t).mean().neg()
}

/// Mean squared error of `pred` `[b, 1]` against `targets`.
pub fn mse(pred: Tensor<2>, targets: &[f32]) -> Tensor<1> {
    let device = pred.device();
    let b = targets.len();
    let t = Tensor::<2>::from_data(TensorData::new(targets.to_vec(), [b, 1]), &device);
    (pred - t).powf_scalar(2.0).mean()
}

/// Mean cross-entropy of `logits` `[n, c]` over the rows whose target is `Some`; rows with
/// `None` (padding, non-first sub-tokens, special tokens) are ignored, like PyTorch's
/// `ignore_index = -100`. Zero when every row is ignored.
pub fn masked_cross_entropy(logits: Tensor<2>, targets: &[Option<usize>]) -> Tensor<1> {
    let device = logits.device();
    let n = targets.len();
    let idx: Vec<i64> = targets.iter().map(|t| t.unwrap_or(0) as i64).collect();
    let keep: Vec<f32> = targets
        .iter()
        .map(|t| if t.is_some() { 1.0 } else { 0.0 })
        .collect();
    let count = keep.iter().sum::<f32>().max(1.0);
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n, 1]), &device);
    let keep = Tensor::<2>::from_data(TensorData::new(keep, [n, 1]), &device);
    (log_softmax(logits, 1).gather(1, idx) * keep)
        .sum()
        .div_scalar(count)
        .neg()
}
