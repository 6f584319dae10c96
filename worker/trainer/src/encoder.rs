//! The encoder of every supported family. BERT, mBERT, RoBERTa and XLM-R: embeddings (word +
//! position plus token type, LayerNorm, dropout) followed by post-LN transformer layers
//! ([`crate::layer`]). XLNet: its own stack ([`crate::xlnet`]) with relative positional
//! attention. One struct holds either (the other part is `None` and has no parameters), so the
//! record paths of BERT-family checkpoints are those they always had.

use burn::nn::activation::ActivationConfig;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
};
use burn::prelude::*;

use crate::dropout;
use crate::layer::{EncoderLayer, LayerConfig, attention_bias};
use crate::precision::Precision;
use crate::xlnet::{Xlnet, XlnetConfig, XlnetSizes};

/// Sizes and options of an encoder; built from a HF `config.json` by
/// [`HfConfig::encoder_config`](crate::hf_config::HfConfig::encoder_config).
#[derive(Config, Debug)]
pub struct EncoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// 2 for BERT, 1 for RoBERTa/XLM-R.
    pub type_vocab_size: usize,
    #[config(default = 0)]
    pub pad_token_id: usize,
    /// Position id of the first token: 0 for BERT, `pad_token_id + 1` for RoBERTa/XLM-R.
    #[config(default = 0)]
    pub position_offset: usize,
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// Dropout on embeddings and on each sub-layer's output (HF `hidden_dropout_prob`).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Dropout on attention probabilities (HF `attention_probs_dropout_prob`).
    #[config(default = 0.1)]
    pub attention_dropout: f64,
    #[config(default = "ActivationConfig::Gelu")]
    pub activation: ActivationConfig,
    /// Set for XLNet: relative positional attention instead of absolute position embeddings,
    /// left padding, and the last token as the summary.
    #[config(default = "None")]
    pub xlnet: Option<XlnetConfig>,
}

/// Word, position and token-type embeddings, summed and normalised.
#[derive(Module, Debug)]
pub struct Embeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
    pub dropout: Dropout,
}

/// The encoder: embeddings and `num_layers` transformer layers (BERT family), or the XLNet
/// stack.
#[derive(Module, Debug)]
pub struct Encoder {
    /// BERT family; `None` for XLNet.
    pub embeddings: Option<Embeddings>,
    /// BERT family; empty for XLNet.
    pub layers: Vec<EncoderLayer>,
    /// XLNet; `None` for the BERT family.
    pub xlnet: Option<Xlnet>,
    pub hidden_size: usize,
    /// Precision of the layers' matrix products (recipe `precision`); not saved with weights.
    #[module(skip)]
    pub precision: Precision,
}

/// One padded batch on the device.
#[derive(Debug, Clone)]
pub struct EncoderInput {
    /// `[batch, seq]`
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]`
    pub token_type_ids: Tensor<2, Int>,
    /// `[batch, seq]`
    pub position_ids: Tensor<2, Int>,
    /// `[batch, seq]`, true at padding.
    pub mask_pad: Tensor<2, Bool>,
}

/// BERT's initialiser: normal(0, 0.02) for every weight matrix.
fn bert_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

impl EncoderConfig {
    /// XLNet's layout: left padding, the summary token last.
    pub fn is_xlnet(&self) -> bool {
        self.xlnet.is_some()
    }

    /// A randomly initialised encoder (BERT's normal(0, 0.02)); load weights with
    /// [`crate::weights::load_encoder_weights`].
    pub fn init(&self, device: &Device) -> Encoder {
        if let Some(x) = &self.xlnet {
            let sizes = XlnetSizes {
                vocab_size: self.vocab_size,
                d_model: self.hidden_size,
                n_layer: self.num_layers,
                n_head: self.num_heads,
                d_inner: self.intermediate_size,
                dropout: self.dropout,
                layer_norm_eps: self.layer_norm_eps,
                activation: self.activation.clone(),
                initializer: bert_init(),
            };
            return Encoder {
                embeddings: None,
                layers: Vec::new(),
                xlnet: Some(Xlnet::new(&sizes, x, device)),
                hidden_size: self.hidden_size,
                precision: Precision::Fp32,
            };
        }
        let emb = |n: usize| {
            EmbeddingConfig::new(n, self.hidden_size)
                .with_initializer(bert_init())
                .init(device)
        };
        let embeddings = Embeddings {
            word_embeddings: emb(self.vocab_size),
            position_embeddings: emb(self.max_position_embeddings),
            token_type_embeddings: emb(self.type_vocab_size),
            layer_norm: LayerNormConfig::new(self.hidden_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        };
        let layer_cfg = LayerConfig {
            hidden: self.hidden_size,
            intermediate: self.intermediate_size,
            heads: self.num_heads,
            dropout: self.dropout,
            attention_dropout: self.attention_dropout,
            layer_norm_eps: self.layer_norm_eps,
            activation: self.activation.clone(),
            initializer: bert_init(),
        };
        let layers = (0..self.num_layers)
            .map(|_| layer_cfg.init(device))
            .collect();
        Encoder {
            embeddings: Some(embeddings),
            layers,
            xlnet: None,
            hidden_size: self.hidden_size,
            precision: Precision::Fp32,
        }
    }
}

impl Embeddings {
    /// `[batch, seq]` ids → `[batch, seq, hidden]`
    pub fn forward(&self, input: &EncoderInput) -> Tensor<3> {
        let x = self.word_embeddings.forward(input.input_ids.clone())
            + self.position_embeddings.forward(input.position_ids.clone())
            + self
                .token_type_embeddings
                .forward(input.token_type_ids.clone());
        dropout::forward(&self.dropout, self.layer_norm.forward(x))
    }
}

impl Encoder {
    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        match &self.xlnet {
            Some(x) => x.layer.len(),
            None => self.layers.len(),
        }
    }

    /// Last hidden states, `[batch, seq, hidden]`.
    pub fn forward(&self, input: &EncoderInput) -> Tensor<3> {
        self.forward_to_layer(input, self.num_layers())
    }

    /// The summary token's hidden state, `[batch, seq, hidden]` → `[batch, hidden]`: the first
    /// token (`[CLS]` / `<s>`) for the BERT family, the last (`<cls>`, batches are left-padded)
    /// for XLNet.
    pub fn summary(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [b, s, h] = hidden.dims();
        let at = if self.xlnet.is_some() { s - 1 } else { 0 };
        hidden.slice([0..b, at..at + 1, 0..h]).reshape([b, h])
    }

    /// Hidden states after `layer` transformer layers, `[batch, seq, hidden]`: 0 is the
    /// embedding output, `num_layers()` the last layer (HF's `hidden_states[layer]`).
    /// `layer` is clamped to `num_layers()`.
    pub fn forward_to_layer(&self, input: &EncoderInput, layer: usize) -> Tensor<3> {
        if let Some(x) = &self.xlnet {
            return x.forward_to_layer(
                input.input_ids.clone(),
                input.token_type_ids.clone(),
                input.mask_pad.clone(),
                layer,
                self.precision,
            );
        }
        let embeddings = self
            .embeddings
            .as_ref()
            .expect("a BERT-family encoder has embeddings");
        let mut x = embeddings.forward(input);
        let bias = attention_bias(&input.mask_pad);
        for l in self.layers.iter().take(layer) {
            x = l.forward(x, bias.clone(), self.precision);
        }
        x
    }
}
