//! Errors of the trainer, one enum for the crate's boundary. Each variant keeps its source; the
//! executor maps them onto [`stilts_common::failure::Failure`] classes.

use std::path::PathBuf;

use stilts_common::failure::{Failure, FailureReason};

/// Anything that can go wrong loading a model, tokenizing, training or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// A model/checkpoint file is missing or unreadable.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model file exists but its content is wrong (bad JSON, wrong shapes, missing tensors).
    #[error("{path}: {message}")]
    BadModelFile { path: PathBuf, message: String },
    /// `config.json` names an architecture this trainer does not implement.
    #[error(
        "{path}: unsupported model_type {model_type:?} (supported: bert, roberta, xlm-roberta, xlnet)"
    )]
    UnsupportedModel { path: PathBuf, model_type: String },
    /// The tokenizer can produce ids the embedding matrix has no row for.
    #[error(
        "{path}: tokenizer vocabulary ({tokenizer_vocab} ids) is larger than the model's embedding \
         matrix ({embedding_rows} rows): tokenizer and model do not belong together"
    )]
    VocabMismatch {
        path: PathBuf,
        tokenizer_vocab: usize,
        embedding_rows: usize,
    },
    /// Tokenization failed on some input.
    #[error("tokenizer: {0}")]
    Tokenize(String),
    /// Downloading from the HuggingFace hub failed. `missing`: the hub answered that the file
    /// does not exist or is not accessible (401/403/404), which no retry fixes.
    #[error("hub download of {url}: {message}")]
    Hub {
        url: String,
        message: String,
        missing: bool,
    },
    /// A training/evaluation data problem (empty split, label out of range, …).
    #[error("{0}")]
    Data(String),
    /// A bad recipe value or a job spec this trainer cannot run.
    #[error("{0}")]
    Config(String),
    /// Saving or loading a checkpoint failed.
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    /// The job was cancelled between steps.
    #[error("cancelled")]
    Cancelled,
}

impl TrainerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn bad_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::BadModelFile {
            path: path.into(),
            message: message.into(),
        }
    }
    pub(crate) fn checkpoint(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        Self::Checkpoint {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// The failure class of each error: what a retry can fix (a hub hiccup, a checkpoint write) is
/// retryable; bad models, data and recipes are permanent.
impl From<TrainerError> for Failure {
    fn from(e: TrainerError) -> Self {
        let msg = e.to_string();
        match e {
            TrainerError::Hub { missing: true, .. } => Self::permanent(FailureReason::Data, msg),
            TrainerError::Hub { .. } => Self::retryable(FailureReason::Error, msg),
            TrainerError::Config(_) => Self::permanent(FailureReason::User, msg),
            TrainerError::Cancelled => Self::permanent(FailureReason::Cancelled, msg),
            TrainerError::Checkpoint { .. } => Self::retryable(FailureReason::Error, msg),
            TrainerError::Io { .. }
            | TrainerError::BadModelFile { .. }
            | TrainerError::UnsupportedModel { .. }
            | TrainerError::VocabMismatch { .. }
            | TrainerError::Tokenize(_)
            | TrainerError::Data(_) => Self::permanent(FailureReason::Data, msg),
        }
    }
}

pub type Result<T, E = TrainerError> = std::result::Result<T, E>;
