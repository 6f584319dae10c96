//! The built-in trainer (burn): BERT/mBERT/RoBERTa/XLM-R and XLNet encoders loaded from HuggingFace
//! directories, task heads, a resumable training loop and the [`BurnExecutor`] that runs stage
//! jobs. See README.md ("where to change what").

pub mod alloc;
pub mod backend;
pub mod batch;
pub mod checkpoint;
pub mod data;
pub mod dropout;
pub mod dual;
pub mod embed;
pub mod encoder;
pub mod error;
pub mod evaluate;
pub mod example;
pub mod executor;
#[cfg(feature = "libtorch")]
pub mod fused;
pub mod heads;
pub mod hf_config;
pub mod layer;
pub mod model;
pub mod precision;
pub mod qa;
pub mod recipe;
pub mod rel_attention;
pub mod retrieval;
mod seed;
pub mod source;
pub mod tokenize;
pub mod train;
pub mod weights;
pub mod xlnet;

pub use backend::Backend;
pub use embed::{Pool, encode};
pub use error::{Result, TrainerError};
pub use executor::BurnExecutor;
