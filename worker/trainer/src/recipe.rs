//! Hyperparameters from a job's recipe (`spec.recipe`), with their defaults.

use stilts_common::job::Recipe;

use crate::batch::Padding;
use crate::embed::Pool;
use crate::error::{Result, TrainerError};
use crate::precision::Precision;

/// Training hyperparameters. Recipe keys and defaults:
///
/// | key | default | meaning |
/// |---|---|---|
/// | `lr` | 2e-5 | peak learning rate (AdamW) |
/// | `batch_size` | 32 | examples per micro-batch (multiple choice: × choices sequences) |
/// | `epochs` | 3 | passes over the training data |
/// | `max_seq_len` | 128 | tokens per sequence, special tokens included |
/// | `warmup` | 0.1 | fraction of steps of linear warmup, then linear decay to 0 |
/// | `weight_decay` | 0.01 | AdamW decoupled weight decay (not on biases and LayerNorm) |
/// | `grad_accum` | 1 | micro-batches per optimizer step |
/// | `checkpoint_every` | 500 | optimizer steps between checkpoints |
/// | `max_steps` | none | stop after this many optimizer steps |
/// | `max_train_examples` | none | use only the first N training examples |
/// | `max_grad_norm` | 1.0 | global gradient-norm clipping |
/// | `doc_stride` | 128 | span QA: context tokens between the starts of consecutive windows |
/// | `max_query_len` | 64 | span QA: question tokens kept (set `max_seq_len` 384 for XTREME) |
/// | `retrieval_layer` | middle | retrieval: hidden layer mean-pooled (0 = embeddings) |
/// | `precision` | `"fp32"` | encoder matmuls: `"fp32"`, `"tf32"` (CUDA tensor cores) or `"bf16"` (mixed precision, f32 master weights); see [`crate::precision`] |
/// | `pooling` | `"mean"` | dual encoder: `"mean"` (over non-padding tokens) or `"cls"` (first token) of the last layer; saved with the model (`head.json`), which the evaluate stage follows |
/// | `temperature` | 0.05 | dual encoder: in-batch softmax over cosine similarity / temperature (> 0) |
/// | `symmetric` | false | dual encoder: also the candidate → query softmax (mean of both losses) |
/// | `pool_chunk` | 4096 | dual encoder evaluation: candidates embedded and scored per chunk (memory bound) |
/// | `padding` | `"bucket"` | training batches: `"bucket"` (length-bucketed, padded to the longest member) or `"fixed"` (shuffled, padded to `max_seq_len`; a baseline for benchmarks) |
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub lr: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub max_seq_len: usize,
    pub warmup: f64,
    pub weight_decay: f64,
    pub grad_accum: usize,
    pub checkpoint_every: u64,
    pub max_steps: Option<u64>,
    pub max_train_examples: Option<usize>,
    pub max_grad_norm: f64,
    pub doc_stride: usize,
    pub max_query_len: usize,
    /// `None`: the middle layer (`num_layers / 2`).
    pub retrieval_layer: Option<usize>,
    pub padding: Padding,
    pub precision: Precision,
    pub pooling: Pool,
    pub temperature: f64,
    pub symmetric: bool,
    pub pool_chunk: usize,
    /// Sampling weight of each task of a multi-task mixture (indexed by the examples'
    /// `Target::Pair { group }`); set by the executor from the task's `mixture`, not a recipe
    /// key. Empty or one entry: ordinary epochs.
    pub mixture: Vec<f64>,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 2e-5,
            batch_size: 32,
            epochs: 3,
            max_seq_len: 128,
            warmup: 0.1,
            weight_decay: 0.01,
            grad_accum: 1,
            checkpoint_every: 500,
            max_steps: None,
            max_train_examples: None,
            max_grad_norm: 1.0,
            doc_stride: 128,
            max_query_len: 64,
            retrieval_layer: None,
            padding: Padding::Bucket,
            precision: Precision::Fp32,
            pooling: Pool::Mean,
            temperature: 0.05,
            symmetric: false,
            pool_chunk: 4096,
            mixture: Vec::new(),
            seed: 0,
        }
    }
}

fn num(recipe: &Recipe, key: &str) -> Result<Option<f64>> {
    match recipe.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| {
            TrainerError::Config(format!("recipe key {key}: expected a number, got {v}"))
        }),
    }
}

fn padding(recipe: &Recipe) -> Result<Option<Padding>> {
    match recipe.get("padding") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(Padding::parse)
            .map(Some)
            .ok_or_else(|| {
                TrainerError::Config(format!(
                    "recipe key padding: expected \"bucket\" or \"fixed\", got {v}"
                ))
            }),
    }
}

fn precision(recipe: &Recipe) -> Result<Option<Precision>> {
    match recipe.get("precision") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(Precision::parse)
            .map(Some)
            .ok_or_else(|| {
                TrainerError::Config(format!(
                    "recipe key precision: expected \"fp32\", \"tf32\" or \"bf16\", got {v}"
                ))
            }),
    }
}

fn pooling(recipe: &Recipe) -> Result<Option<Pool>> {
    match recipe.get("pooling") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => s.parse::<Pool>().map(Some).map_err(|_| {
            TrainerError::Config(format!(
                "recipe key pooling: expected \"mean\" or \"cls\", got \"{s}\""
            ))
        }),
        Some(v) => Err(TrainerError::Config(format!(
            "recipe key pooling: expected \"mean\" or \"cls\", got {v}"
        ))),
    }
}

fn flag(recipe: &Recipe, key: &str) -> Result<Option<bool>> {
    match recipe.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(TrainerError::Config(format!(
            "recipe key {key}: expected true or false, got {v}"
        ))),
    }
}

fn count(recipe: &Recipe, key: &str) -> Result<Option<u64>> {
    match num(recipe, key)? {
        None => Ok(None),
        Some(x) if x >= 0.0 && x.fract() == 0.0 => Ok(Some(x as u64)),
        Some(x) => Err(TrainerError::Config(format!(
            "recipe key {key}: expected a non-negative integer, got {x}"
        ))),
    }
}

impl TrainConfig {
    /// Reads the known keys of `recipe` over the defaults; unknown keys are left to others
    /// (`data_dir`, per-task settings).
    pub fn from_recipe(recipe: &Recipe, seed: u64) -> Result<Self> {
        let d = Self::default();
        let positive = |key: &str, v: u64| {
            if v == 0 {
                Err(TrainerError::Config(format!(
                    "recipe key {key} must be positive"
                )))
            } else {
                Ok(v)
            }
        };
        let cfg = Self {
            lr: num(recipe, "lr")?.unwrap_or(d.lr),
            batch_size: positive("batch_size", count(recipe, "batch_size")?.unwrap_or(32))?
                as usize,
            epochs: count(recipe, "epochs")?.map_or(d.epochs, |v| v as usize),
            max_seq_len: count(recipe, "max_seq_len")?.map_or(d.max_seq_len, |v| v as usize),
            warmup: num(recipe, "warmup")?.unwrap_or(d.warmup),
            weight_decay: num(recipe, "weight_decay")?.unwrap_or(d.weight_decay),
            grad_accum: positive("grad_accum", count(recipe, "grad_accum")?.unwrap_or(1))? as usize,
            checkpoint_every: positive(
                "checkpoint_every",
                count(recipe, "checkpoint_every")?.unwrap_or(d.checkpoint_every),
            )?,
            max_steps: count(recipe, "max_steps")?,
            max_train_examples: count(recipe, "max_train_examples")?.map(|v| v as usize),
            max_grad_norm: num(recipe, "max_grad_norm")?.unwrap_or(d.max_grad_norm),
            doc_stride: positive("doc_stride", count(recipe, "doc_stride")?.unwrap_or(128))?
                as usize,
            max_query_len: positive(
                "max_query_len",
                count(recipe, "max_query_len")?.unwrap_or(64),
            )? as usize,
            retrieval_layer: count(recipe, "retrieval_layer")?.map(|v| v as usize),
            padding: padding(recipe)?.unwrap_or(d.padding),
            precision: precision(recipe)?.unwrap_or(d.precision),
            pooling: pooling(recipe)?.unwrap_or(d.pooling),
            temperature: num(recipe, "temperature")?.unwrap_or(d.temperature),
            symmetric: flag(recipe, "symmetric")?.unwrap_or(d.symmetric),
            pool_chunk: positive(
                "pool_chunk",
                count(recipe, "pool_chunk")?.unwrap_or(d.pool_chunk as u64),
            )? as usize,
            mixture: Vec::new(),
            seed,
        };
        if !(cfg.temperature.is_finite() && cfg.temperature > 0.0) {
            return Err(TrainerError::Config(format!(
                "recipe key temperature {} must be a positive number",
                cfg.temperature
            )));
        }
        if !(0.0..1.0).contains(&cfg.warmup) {
            return Err(TrainerError::Config(format!(
                "recipe key warmup {} not in [0, 1)",
                cfg.warmup
            )));
        }
        if cfg.lr.is_nan() || cfg.lr <= 0.0 {
            return Err(TrainerError::Config(format!(
                "recipe key lr {} must be positive",
                cfg.lr
            )));
        }
        Ok(cfg)
    }

    /// Learning rate for optimizer step `step` (1-based) of `total`: linear warmup over
    /// `ceil(warmup × total)` steps, then linear decay to 0.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        let warm = (self.warmup * total as f64).ceil() as u64;
        if step <= warm && warm > 0 {
            self.lr * step as f64 / warm as f64
        } else {
            let rest = total.saturating_sub(warm).max(1);
            self.lr * total.saturating_sub(step) as f64 / rest as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut r = Recipe::new();
        assert_eq!(TrainConfig::from_recipe(&r, 1).unwrap().batch_size, 32);
        r.insert("batch_size".into(), 8.into());
        r.insert("lr".into(), serde_json::json!(1e-5));
        let c = TrainConfig::from_recipe(&r, 1).unwrap();
        assert_eq!((c.batch_size, c.lr), (8, 1e-5));
        r.insert("batch_size".into(), serde_json::json!("big"));
        assert!(
            TrainConfig::from_recipe(&r, 1)
                .unwrap_err()
                .to_string()
                .contains("batch_size")
        );
    }

    #[test]
    fn padding_key() {
        let mut r = Recipe::new();
        assert_eq!(
            TrainConfig::from_recipe(&r, 1).unwrap().padding,
            Padding::Bucket
        );
        r.insert("padding".into(), "fixed".into());
        assert_eq!(
            TrainConfig::from_recipe(&r, 1).unwrap().padding,
            Padding::Fixed
        );
        r.insert("padding".into(), "none".into());
        let err = TrainConfig::from_recipe(&r, 1).unwrap_err().to_string();
        assert!(err.contains("padding"), "{err}");
    }

    #[test]
    fn precision_key() {
        let mut r = Recipe::new();
        assert_eq!(
            TrainConfig::from_recipe(&r, 1).unwrap().precision,
            Precision::Fp32
        );
        r.insert("precision".into(), "bf16".into());
        assert_eq!(
            TrainConfig::from_recipe(&r, 1).unwrap().precision,
            Precision::Bf16
        );
        r.insert("precision".into(), "fp16".into());
        let err = TrainConfig::from_recipe(&r, 1).unwrap_err().to_string();
        assert!(err.contains("precision") && err.contains("fp16"), "{err}");
    }

    #[test]
    fn dual_encoder_keys() {
        let mut r = Recipe::new();
        let c = TrainConfig::from_recipe(&r, 1).unwrap();
        assert_eq!(
            (c.pooling, c.temperature, c.symmetric),
            (Pool::Mean, 0.05, false)
        );
        r.insert("pooling".into(), "cls".into());
        r.insert("temperature".into(), serde_json::json!(0.1));
        r.insert("symmetric".into(), true.into());
        r.insert("pool_chunk".into(), 16.into());
        let c = TrainConfig::from_recipe(&r, 1).unwrap();
        assert_eq!(
            (c.pooling, c.temperature, c.symmetric, c.pool_chunk),
            (Pool::Cls, 0.1, true, 16)
        );
        for (key, bad, says) in [
            ("pooling", serde_json::json!("max"), "pooling"),
            ("temperature", serde_json::json!(0), "temperature"),
            ("temperature", serde_json::json!(-1.0), "temperature"),
            ("symmetric", serde_json::json!("yes"), "symmetric"),
            ("pool_chunk", serde_json::json!(0), "pool_chunk"),
        ] {
            let mut r = Recipe::new();
            r.insert(key.into(), bad);
            let err = TrainConfig::from_recipe(&r, 1).unwrap_err().to_string();
            assert!(err.contains(says), "{key}: {err}");
        }
    }

    #[test]
    fn warmup_then_linear_decay() {
        let c = TrainConfig {
            lr: 1.0,
            warmup: 0.1,
            ..Default::default()
        };
        assert_eq!(c.lr_at(5, 100), 0.5);
        assert_eq!(c.lr_at(10, 100), 1.0);
        assert!((c.lr_at(55, 100) - 0.5).abs() < 1e-12);
        assert_eq!(c.lr_at(100, 100), 0.0);
    }
}
