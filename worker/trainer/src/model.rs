//! A pretrained encoder with its tokenizer, loaded from a HuggingFace-format directory.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::encoder::{Encoder, EncoderConfig};
use crate::error::{Result, TrainerError};
use crate::hf_config::HfConfig;
use crate::source::resolve_model_source;
use crate::tokenize::TextTokenizer;
use crate::weights::load_encoder_weights;

/// Encoder, configuration and tokenizer of one model directory.
#[derive(Debug)]
pub struct Pretrained {
    pub dir: PathBuf,
    pub hf: HfConfig,
    pub config: EncoderConfig,
    pub tokenizer: TextTokenizer,
    pub encoder: Encoder,
}

/// The longest input the position embeddings allow.
pub fn max_model_len(config: &EncoderConfig) -> usize {
    config
        .max_position_embeddings
        .saturating_sub(config.position_offset)
}

/// Reads `config.json` and `tokenizer.json` of `dir` and checks that they fit together.
pub fn load_config_and_tokenizer(
    dir: &Path,
    max_len: usize,
) -> Result<(HfConfig, EncoderConfig, TextTokenizer)> {
    let cfg_path = dir.join("config.json");
    let hf = HfConfig::load(&cfg_path)?;
    let config = hf.encoder_config(&cfg_path)?;
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = TextTokenizer::from_file(&tok_path, max_len.min(max_model_len(&config)))?;
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(TrainerError::VocabMismatch {
            path: tok_path,
            tokenizer_vocab: tokenizer.vocab_size(),
            embedding_rows: config.vocab_size,
        });
    }
    Ok((hf, config, tokenizer))
}

/// Loads a pretrained model from a local directory or hub id (see
/// [`resolve_model_source`]); inputs are truncated to `max_len` tokens.
pub fn load_pretrained(source: &str, max_len: usize, device: &Device) -> Result<Pretrained> {
    let dir = resolve_model_source(source)?;
    let (hf, config, tokenizer) = load_config_and_tokenizer(&dir, max_len)?;
    let encoder = load_encoder_weights(config.init(device), &dir.join("model.safetensors"))?;
    Ok(Pretrained {
        dir,
        hf,
        config,
        tokenizer,
        encoder,
    })
}
