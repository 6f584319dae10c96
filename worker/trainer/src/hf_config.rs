//! HuggingFace `config.json` → [`EncoderConfig`]. One encoder implementation covers BERT, mBERT,
//! RoBERTa and XLM-R; they differ only in sizes, the activation and where position ids start.
//! XLNet has its own stack ([`crate::xlnet`]); its config names sizes differently (`d_model`,
//! `n_layer`, `n_head`, `d_inner`, `ff_activation`, `dropout`), read through serde aliases.

use std::path::Path;

use burn::nn::activation::ActivationConfig;
use serde::Deserialize;

use crate::encoder::EncoderConfig;
use crate::error::{Result, TrainerError};
use crate::xlnet::XlnetConfig;

/// The encoder families this trainer implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Bert,
    Roberta,
    XlmRoberta,
    Xlnet,
}

impl ModelType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "bert" => Some(Self::Bert),
            "roberta" => Some(Self::Roberta),
            "xlm-roberta" => Some(Self::XlmRoberta),
            "xlnet" => Some(Self::Xlnet),
            _ => None,
        }
    }

    /// Prefix the HF checkpoints of this family put before encoder weights (`bert.`,
    /// `roberta.`); sentence-transformers exports have none. The loader accepts both.
    pub fn weight_prefix(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta | Self::XlmRoberta => "roberta",
            Self::Xlnet => "transformer",
        }
    }

    /// RoBERTa-style models number positions from `padding_idx + 1`; BERT from 0.
    fn roberta_positions(self) -> bool {
        matches!(self, Self::Roberta | Self::XlmRoberta)
    }
}

/// The fields of `config.json` the encoder needs. Unknown fields are ignored: HF configs carry
/// many that do not concern the forward pass.
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    pub model_type: String,
    /// `n_token` in XLNet configs written before `vocab_size` was its name.
    #[serde(alias = "n_token")]
    pub vocab_size: usize,
    #[serde(alias = "d_model")]
    pub hidden_size: usize,
    #[serde(alias = "n_layer")]
    pub num_hidden_layers: usize,
    #[serde(alias = "n_head")]
    pub num_attention_heads: usize,
    #[serde(alias = "d_inner")]
    pub intermediate_size: usize,
    #[serde(default = "default_act", alias = "ff_activation")]
    pub hidden_act: String,
    /// BERT family only (XLNet has no absolute positions).
    #[serde(default)]
    pub max_position_embeddings: Option<usize>,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<usize>,
    #[serde(default = "default_dropout", alias = "dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// XLNet: size of one attention head.
    #[serde(default)]
    pub d_head: Option<usize>,
    /// XLNet: relative positions clamped to ±clamp_len when > 0.
    #[serde(default)]
    pub clamp_len: Option<i64>,
    /// XLNet: `"bi"` (bidirectional) is the only kind fine-tuning uses.
    #[serde(default)]
    pub attn_type: Option<String>,
    /// XLNet: pretraining-only bidirectional data pipeline; must be off.
    #[serde(default)]
    pub bi_data: Option<bool>,
    /// XLNet: how its heads summarise a sequence; the trainer's heads read the last token.
    #[serde(default)]
    pub summary_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f64 {
    0.1
}

impl HfConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainerError::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses `config.json` text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let cfg: HfConfig = serde_json::from_str(text)
            .map_err(|e| TrainerError::bad_file(path, format!("line {}: {e}", e.line())))?;
        cfg.model_type(path)?;
        if let Some(kind) = cfg.position_embedding_type.as_deref()
            && kind != "absolute"
        {
            return Err(TrainerError::bad_file(
                path,
                format!("position_embedding_type {kind:?} is not supported (only \"absolute\")"),
            ));
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(TrainerError::bad_file(
                path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    cfg.hidden_size, cfg.num_attention_heads
                ),
            ));
        }
        cfg.activation(path)?;
        if cfg.model_type(path)? == ModelType::Xlnet {
            cfg.check_xlnet(path)?;
        } else if cfg.max_position_embeddings.is_none() {
            return Err(TrainerError::bad_file(
                path,
                "max_position_embeddings is missing",
            ));
        }
        Ok(cfg)
    }

    /// XLNet options this encoder does not implement are refused by name.
    fn check_xlnet(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(TrainerError::bad_file(path, msg));
        if let Some(kind) = self.attn_type.as_deref()
            && kind != "bi"
        {
            return bad(format!("attn_type {kind:?} is not supported (only \"bi\")"));
        }
        if self.bi_data == Some(true) {
            return bad("bi_data true is not supported (a pretraining option)".into());
        }
        if let Some(kind) = self.summary_type.as_deref()
            && kind != "last"
        {
            return bad(format!(
                "summary_type {kind:?} is not supported (only \"last\")"
            ));
        }
        let d_head = self.xlnet_d_head();
        if d_head * self.num_attention_heads != self.hidden_size {
            return bad(format!(
                "d_head {d_head} × n_head {} is not d_model {}",
                self.num_attention_heads, self.hidden_size
            ));
        }
        if !self.hidden_size.is_multiple_of(2) {
            return bad(format!(
                "d_model {} is odd (the position sinusoids need an even size)",
                self.hidden_size
            ));
        }
        Ok(())
    }

    fn xlnet_d_head(&self) -> usize {
        self.d_head
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn model_type(&self, path: &Path) -> Result<ModelType> {
        ModelType::parse(&self.model_type).ok_or_else(|| TrainerError::UnsupportedModel {
            path: path.to_path_buf(),
            model_type: self.model_type.clone(),
        })
    }

    fn activation(&self, path: &Path) -> Result<ActivationConfig> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(ActivationConfig::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(ActivationConfig::GeluApproximate),
            "relu" => Ok(ActivationConfig::Relu),
            other => Err(TrainerError::bad_file(
                path,
                format!("hidden_act {other:?} is not supported (gelu, gelu_new, relu)"),
            )),
        }
    }

    /// The burn encoder configuration for this checkpoint.
    pub fn encoder_config(&self, path: &Path) -> Result<EncoderConfig> {
        let model_type = self.model_type(path)?;
        if model_type == ModelType::Xlnet {
            return self.xlnet_config(path);
        }
        let pad = self
            .pad_token_id
            .unwrap_or(if model_type.roberta_positions() { 1 } else { 0 });
        // RoBERTa: position of the first real token is padding_idx + 1; padding gets padding_idx.
        let position_offset = if model_type.roberta_positions() {
            pad + 1
        } else {
            0
        };
        Ok(EncoderConfig::new(
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
            self.max_position_embeddings.unwrap_or(0),
            self.type_vocab_size.max(1),
        )
        .with_pad_token_id(pad)
        .with_position_offset(position_offset)
        .with_layer_norm_eps(self.layer_norm_eps)
        .with_dropout(self.hidden_dropout_prob)
        .with_attention_dropout(self.attention_probs_dropout_prob)
        .with_activation(self.activation(path)?))
    }

    /// XLNet: no position table (no length limit of its own), four segment classes (A, B,
    /// `<cls>`, padding; only equal or not matters), one dropout everywhere.
    fn xlnet_config(&self, path: &Path) -> Result<EncoderConfig> {
        let clamp_len = self.clamp_len.filter(|&c| c > 0).map(|c| c as usize);
        Ok(EncoderConfig::new(
            self.vocab_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
            usize::MAX,
            4,
        )
        .with_pad_token_id(self.pad_token_id.unwrap_or(5))
        .with_layer_norm_eps(self.layer_norm_eps)
        .with_dropout(self.hidden_dropout_prob)
        .with_attention_dropout(self.hidden_dropout_prob)
        .with_activation(self.activation(path)?)
        .with_xlnet(Some(
            XlnetConfig::new(self.xlnet_d_head()).with_clamp_len(clamp_len),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(model_type: &str) -> String {
        format!(
            r#"{{"model_type": "{model_type}", "vocab_size": 10, "hidden_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
            "max_position_embeddings": 20, "type_vocab_size": 1, "pad_token_id": 1}}"#
        )
    }

    #[test]
    fn roberta_positions_start_after_padding_idx() {
        let p = Path::new("config.json");
        let c = HfConfig::parse(p, &cfg("xlm-roberta"))
            .unwrap()
            .encoder_config(p)
            .unwrap();
        assert_eq!(c.position_offset, 2);
        assert_eq!(c.type_vocab_size, 1);
        let c = HfConfig::parse(p, &cfg("bert"))
            .unwrap()
            .encoder_config(p)
            .unwrap();
        assert_eq!(c.position_offset, 0);
    }

    const XLNET: &str = r#"{"model_type": "xlnet", "vocab_size": 32000, "d_model": 768,
        "n_layer": 12, "n_head": 12, "d_head": 64, "d_inner": 3072, "ff_activation": "gelu",
        "untie_r": true, "attn_type": "bi", "bi_data": false, "clamp_len": -1, "mem_len": null,
        "layer_norm_eps": 1e-12, "dropout": 0.1, "pad_token_id": 5, "summary_type": "last"}"#;

    #[test]
    fn xlnet_config_reads_its_own_names() {
        let p = Path::new("config.json");
        let c = HfConfig::parse(p, XLNET)
            .unwrap()
            .encoder_config(p)
            .unwrap();
        assert_eq!(
            (
                c.hidden_size,
                c.num_layers,
                c.num_heads,
                c.intermediate_size
            ),
            (768, 12, 12, 3072)
        );
        assert_eq!(
            (c.pad_token_id, c.dropout, c.attention_dropout),
            (5, 0.1, 0.1)
        );
        let x = c.xlnet.expect("an XLNet encoder");
        assert_eq!((x.d_head, x.clamp_len), (64, None));
        let old = XLNET.replace("\"vocab_size\"", "\"n_token\"");
        let c = HfConfig::parse(p, &old).unwrap().encoder_config(p).unwrap();
        assert_eq!(c.vocab_size, 32000);
        let clamped = XLNET.replace("\"clamp_len\": -1", "\"clamp_len\": 512");
        let c = HfConfig::parse(p, &clamped)
            .unwrap()
            .encoder_config(p)
            .unwrap();
        assert_eq!(c.xlnet.unwrap().clamp_len, Some(512));
    }

    #[test]
    fn xlnet_options_it_cannot_run_are_named() {
        let p = Path::new("x/config.json");
        for (from, to, named) in [
            (
                "\"attn_type\": \"bi\"",
                "\"attn_type\": \"uni\"",
                "attn_type \"uni\"",
            ),
            ("\"bi_data\": false", "\"bi_data\": true", "bi_data"),
            (
                "\"summary_type\": \"last\"",
                "\"summary_type\": \"mean\"",
                "summary_type",
            ),
            ("\"d_head\": 64", "\"d_head\": 32", "d_head 32"),
        ] {
            let err = HfConfig::parse(p, &XLNET.replace(from, to)).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("x/config.json") && msg.contains(named),
                "{msg}"
            );
        }
    }

    #[test]
    fn unsupported_model_type_is_named() {
        let err = HfConfig::parse(Path::new("m/config.json"), &cfg("gpt2")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("m/config.json") && msg.contains("gpt2"),
            "{msg}"
        );
    }

    #[test]
    fn bad_json_names_file_and_line() {
        let err = HfConfig::parse(Path::new("c.json"), "{\n\"model_type\": }").unwrap_err();
        assert!(err.to_string().starts_with("c.json: line 2"), "{err}");
    }
}
