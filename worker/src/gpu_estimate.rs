//! How much GPU memory a job is expected to take, for packing several jobs onto one GPU
//! (`packing.rs`). A pure function of numbers ([`estimate`]) plus the one read it needs: the
//! model's `config.json` when it is on this machine ([`for_spec`]).
//!
//! A training job needs, in bytes:
//!
//! ```text
//! MARGIN × (STATE_BYTES_PER_PARAM × params + activations) + CUDA_CONTEXT
//! activations = batch × seq × hidden × layers × (ACT_BASE + ACT_ATTENTION × heads × seq / hidden)
//!               × precision factor (fp32/tf32: 2, bf16: 1.25)
//! ```
//!
//! - `STATE_BYTES_PER_PARAM` = 16: fp32 weights (4) + fp32 gradients (4) + AdamW's two fp32
//!   moments (8). bf16 in this trainer is autocast with f32 master weights, so the same 16.
//! - `ACT_BASE` = 34, `ACT_ATTENTION` = 5: the bytes one transformer layer keeps for the backward
//!   pass per token and hidden unit with 16-bit activations, from Korthikanti et al. 2022,
//!   "Reducing Activation Recomputation in Large Transformer Models" (arXiv:2205.05198), eq. 1:
//!   `s·b·h·(34 + 5·a·s/h)`. fp32 activations double it (factor 2); bf16 autocast keeps
//!   LayerNorm, softmax and the loss in f32, so it is counted at 1.25 rather than 1.
//! - `MARGIN` = 1.2: the caching allocator's fragmentation and what the formula leaves out
//!   (embedding and head outputs, logits, temporary buffers; burn's autodiff keeps somewhat more
//!   than PyTorch's fused kernels).
//! - `CUDA_CONTEXT` = 1 GiB: the CUDA context, cuBLAS workspace and loaded kernels of one
//!   process using LibTorch (0.3-0.9 GiB with CUDA 12's lazy module loading; rounded up).
//!
//! An evaluate job keeps only fp32 weights (4 bytes per parameter) and one layer's activations.
//!
//! Parameters come from `config.json` (BERT family and XLNet names: `hidden_size`/`d_model`,
//! `num_hidden_layers`/`n_layer`, `vocab_size`/`n_token`, `intermediate_size`/`d_inner`,
//! `num_attention_heads`/`n_head`); a model whose config is not on this machine yet (a hub id
//! not downloaded, a `pip:` wheel not fetched) is assumed to be XLM-R large sized
//! ([`ModelShape::CONSERVATIVE`], 560M parameters), an over-estimate for the models of the
//! demo grids. Batch size, sequence length and precision come from the recipe with the
//! trainer's defaults (`batch_size` 32, `max_seq_len` 128, `precision` fp32;
//! `worker/trainer/src/recipe.rs`). Not modelled: multiple-choice jobs run batch × choices
//! sequences, dual encoders encode queries and candidates. An estimate that proves too small
//! is raised after an out-of-memory failure (`oom_memo.rs`).

use std::path::{Path, PathBuf};

use stilts_common::job::{JobSpec, StageKind};

/// fp32 weights + gradients + AdamW moments, bytes per parameter.
pub const STATE_BYTES_PER_PARAM: u64 = 16;
/// fp32 weights only (evaluation), bytes per parameter.
pub const WEIGHT_BYTES_PER_PARAM: u64 = 4;
/// Korthikanti et al. 2022, eq. 1: per-layer activation bytes per token·hidden (16-bit).
pub const ACT_BASE: f64 = 34.0;
/// Korthikanti et al. 2022, eq. 1: the attention scores' share, × heads × seq / hidden.
pub const ACT_ATTENTION: f64 = 5.0;
/// Allocator fragmentation and what the formula leaves out.
pub const MARGIN: f64 = 1.2;
/// CUDA context, cuBLAS workspace and kernels of one LibTorch process.
pub const CUDA_CONTEXT: u64 = 1 << 30;
/// The smallest plausible job: a CUDA context and 256 MiB (evaluating MiniLM-L6, 22.7M
/// parameters, batch 32, sequence 128, is estimated at 1.29 GiB). The worker acquires a new job
/// only while some GPU has this much room.
pub const SMALLEST_JOB: u64 = CUDA_CONTEXT + (256 << 20);

/// Trainer defaults for recipes that do not say (`worker/trainer/src/recipe.rs`).
const DEFAULT_BATCH: u64 = 32;
const DEFAULT_SEQ: u64 = 128;

/// The sizes of an encoder that decide its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelShape {
    pub vocab: u64,
    pub hidden: u64,
    pub layers: u64,
    pub intermediate: u64,
    pub heads: u64,
    /// Learned position embeddings (0 for XLNet's relative positions).
    pub positions: u64,
    pub type_vocab: u64,
}

impl ModelShape {
    /// XLM-R large: assumed when a model's config is not on this machine.
    pub const CONSERVATIVE: ModelShape = ModelShape {
        vocab: 250_002,
        hidden: 1024,
        layers: 24,
        intermediate: 4096,
        heads: 16,
        positions: 514,
        type_vocab: 1,
    };

    /// Parameters of a BERT-family encoder with a pooler: embeddings (+ their LayerNorm),
    /// per layer Q/K/V/O (4h² + 4h), the feed-forward (2hi + i + h) and two LayerNorms (4h),
    /// and the pooler (h² + h). Heads are small and left out.
    pub fn params(&self) -> u64 {
        let h = self.hidden;
        let embeddings = (self.vocab + self.positions + self.type_vocab) * h + 2 * h;
        let layer = 4 * h * h + 2 * h * self.intermediate + self.intermediate + 9 * h;
        embeddings + self.layers * layer + h * h + h
    }

    /// Reads the sizes from a HuggingFace `config.json` (BERT family or XLNet names); `None`
    /// when a size is missing.
    pub fn from_config_json(config: &serde_json::Value) -> Option<Self> {
        let get = |names: &[&str]| names.iter().find_map(|n| config.get(n)?.as_u64());
        let hidden = get(&["hidden_size", "d_model"])?;
        let heads = get(&["num_attention_heads", "n_head"]).unwrap_or((hidden / 64).max(1));
        Some(Self {
            vocab: get(&["vocab_size", "n_token"])?,
            hidden,
            layers: get(&["num_hidden_layers", "n_layer"])?,
            intermediate: get(&["intermediate_size", "d_inner"]).unwrap_or(4 * hidden),
            heads,
            positions: get(&["max_position_embeddings"]).unwrap_or(0),
            type_vocab: get(&["type_vocab_size"]).unwrap_or(0),
        })
    }
}

/// Numeric precision of the encoder's matmuls (recipe key `precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `fp32` and `tf32`: f32 activations.
    Fp32,
    /// `bf16`: autocast, f32 master weights.
    Bf16,
}

/// What a job does with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobShape {
    pub train: bool,
    pub batch: u64,
    pub seq: u64,
    pub precision: Precision,
}

impl JobShape {
    /// The shape a job spec's recipe describes (trainer defaults for missing keys; an unknown
    /// precision counts as fp32, the larger).
    pub fn of(spec: &JobSpec) -> Self {
        let count = |key: &str, default: u64| {
            spec.recipe
                .get(key)
                .and_then(serde_json::Value::as_u64)
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        let precision = match spec.recipe.get("precision").and_then(|v| v.as_str()) {
            Some("bf16") => Precision::Bf16,
            _ => Precision::Fp32,
        };
        Self {
            train: spec.kind != StageKind::Evaluate,
            batch: count("batch_size", DEFAULT_BATCH),
            seq: count("max_seq_len", DEFAULT_SEQ),
            precision,
        }
    }
}

/// Activation bytes the backward pass keeps (training) or one layer holds (evaluation).
pub fn activations(model: &ModelShape, job: &JobShape) -> u64 {
    let per_token_hidden =
        ACT_BASE + ACT_ATTENTION * model.heads as f64 * job.seq as f64 / model.hidden.max(1) as f64;
    let factor = match job.precision {
        Precision::Fp32 => 2.0,
        Precision::Bf16 => 1.25,
    };
    let layers = if job.train { model.layers } else { 1 };
    let elements = (job.batch * job.seq * model.hidden * layers) as f64;
    (elements * per_token_hidden * factor) as u64
}

/// Expected GPU memory of one job, in bytes (see the module doc for the formula).
pub fn estimate(model: &ModelShape, job: &JobShape) -> u64 {
    let per_param = if job.train {
        STATE_BYTES_PER_PARAM
    } else {
        WEIGHT_BYTES_PER_PARAM
    };
    let state = model.params() * per_param;
    let variable = (state + activations(model, job)) as f64 * MARGIN;
    variable as u64 + CUDA_CONTEXT
}

/// Where a model's `config.json` is on this machine, if it is: the model directory itself, or
/// the trainer's hub cache (`$STILTS_HF_CACHE`, `$HF_HOME/stilts`, `~/.cache/stilts/hub`, with
/// `org/name` stored as `org--name`; `worker/trainer/src/source.rs`).
pub fn local_config(source: &str) -> Option<PathBuf> {
    let direct = Path::new(source).join("config.json");
    if direct.is_file() {
        return Some(direct);
    }
    if source.is_empty() || source.starts_with('/') || source.contains("..") {
        return None;
    }
    let cache = if let Some(dir) = std::env::var_os("STILTS_HF_CACHE") {
        PathBuf::from(dir)
    } else if let Some(dir) = std::env::var_os("HF_HOME") {
        PathBuf::from(dir).join("stilts")
    } else {
        PathBuf::from(std::env::var_os("HOME")?)
            .join(".cache")
            .join("stilts")
            .join("hub")
    };
    let cached = cache.join(source.replace('/', "--")).join("config.json");
    cached.is_file().then_some(cached)
}

/// The model shape of a job: from its config.json when local and readable, else
/// [`ModelShape::CONSERVATIVE`]. The bool says whether the config was read.
pub fn model_shape(source: &str) -> (ModelShape, bool) {
    local_config(source)
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .and_then(|json| ModelShape::from_config_json(&json))
        .map_or((ModelShape::CONSERVATIVE, false), |shape| (shape, true))
}

/// [`estimate`] for a job spec: its model's shape ([`model_shape`]) and its recipe.
pub fn for_spec(spec: &JobSpec) -> u64 {
    estimate(&model_shape(&spec.model_source).0, &JobShape::of(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: f64 = 1e9;

    fn bert_base() -> ModelShape {
        ModelShape::from_config_json(&serde_json::json!({
            "model_type": "bert", "vocab_size": 30522, "hidden_size": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "max_position_embeddings": 512, "type_vocab_size": 2
        }))
        .unwrap()
    }

    fn minilm_l6() -> ModelShape {
        ModelShape::from_config_json(&serde_json::json!({
            "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
            "num_attention_heads": 12, "intermediate_size": 1536,
            "max_position_embeddings": 512, "type_vocab_size": 2
        }))
        .unwrap()
    }

    fn train(batch: u64, seq: u64, precision: Precision) -> JobShape {
        JobShape {
            train: true,
            batch,
            seq,
            precision,
        }
    }

    #[test]
    fn parameter_counts_match_the_published_ones() {
        // BERT-base: 110M (Devlin et al. 2019); bert-base-uncased has 109.5M with the pooler.
        let p = bert_base().params() as f64 / 1e6;
        assert!((108.0..111.0).contains(&p), "{p}M");
        // all-MiniLM-L6-v2: 22.7M.
        let p = minilm_l6().params() as f64 / 1e6;
        assert!((22.0..23.5).contains(&p), "{p}M");
        // XLM-R large: 560M (Conneau et al. 2020).
        let p = ModelShape::CONSERVATIVE.params() as f64 / 1e6;
        assert!((550.0..570.0).contains(&p), "{p}M");
    }

    #[test]
    fn bert_base_batch_32_seq_128_lands_where_fine_tunes_do() {
        // Google's BERT README: BERT-base, seq 128, batch 32 is the most a 12 GB GPU fits
        // (TensorFlow, Adam); PyTorch fine-tunes report 6-10 GB in nvidia-smi.
        let fp32 = estimate(&bert_base(), &train(32, 128, Precision::Fp32)) as f64;
        assert!((6.0 * GB..10.0 * GB).contains(&fp32), "{}", fp32 / GB);
        // Weights + grads + AdamW: 16 bytes × 109.5M = 1.75 GB of it.
        assert_eq!(bert_base().params() * 16 / 10_000_000, 175);
        // Activations: 32·128·768·12 × 2 × (34 + 5·12·128/768 = 44) = 3.32 GB.
        let act = activations(&bert_base(), &train(32, 128, Precision::Fp32)) as f64;
        assert!((3.3 * GB..3.35 * GB).contains(&act), "{}", act / GB);
        // bf16 keeps the optimizer state but shrinks activations.
        let bf16 = estimate(&bert_base(), &train(32, 128, Precision::Bf16)) as f64;
        assert!(bf16 < fp32 * 0.8 && bf16 > fp32 * 0.5, "{}", bf16 / GB);
    }

    #[test]
    fn minilm_is_small_and_evaluation_smaller() {
        let t = estimate(&minilm_l6(), &train(32, 128, Precision::Fp32)) as f64;
        assert!((2.0 * GB..3.5 * GB).contains(&t), "{}", t / GB);
        let eval = JobShape {
            train: false,
            ..train(32, 128, Precision::Fp32)
        };
        let e = estimate(&minilm_l6(), &eval);
        assert!(e < t as u64 && e > CUDA_CONTEXT, "{e}");
        assert!(e >= SMALLEST_JOB, "{e}");
    }

    #[test]
    fn memory_grows_with_batch_and_sequence() {
        let m = bert_base();
        let base = estimate(&m, &train(32, 128, Precision::Fp32));
        assert!(estimate(&m, &train(64, 128, Precision::Fp32)) > base);
        // Attention scores grow with seq²: doubling seq more than doubles activations.
        let a128 = activations(&m, &train(32, 128, Precision::Fp32));
        let a256 = activations(&m, &train(32, 256, Precision::Fp32));
        assert!(a256 > 2 * a128);
        // The conservative default is larger than BERT-base.
        assert!(estimate(&ModelShape::CONSERVATIVE, &train(32, 128, Precision::Fp32)) > 2 * base);
    }

    #[test]
    fn xlnet_names_and_missing_sizes() {
        let xlnet = ModelShape::from_config_json(&serde_json::json!({
            "model_type": "xlnet", "n_token": 32000, "d_model": 768, "n_layer": 12,
            "n_head": 12, "d_inner": 3072
        }))
        .unwrap();
        assert_eq!((xlnet.vocab, xlnet.layers, xlnet.positions), (32000, 12, 0));
        let p = xlnet.params() as f64 / 1e6;
        assert!((105.0..120.0).contains(&p), "{p}M");
        assert!(ModelShape::from_config_json(&serde_json::json!({"hidden_size": 8})).is_none());
    }

    #[test]
    fn recipes_give_the_job_shape() {
        let mut spec: JobSpec = serde_json::from_value(serde_json::json!({
            "kind": "target", "model": "m", "model_source": "/nonexistent/m", "task": "t",
            "intermediate": "none", "languages": [], "seed": 1, "recipe": {},
            "executor": {"kind": "burn"}, "parent": null, "data_version": "d",
            "code_version": "c"
        }))
        .unwrap();
        assert_eq!(
            JobShape::of(&spec),
            train(DEFAULT_BATCH, DEFAULT_SEQ, Precision::Fp32)
        );
        spec.recipe.insert("batch_size".into(), 8.into());
        spec.recipe.insert("max_seq_len".into(), 384.into());
        spec.recipe.insert("precision".into(), "bf16".into());
        assert_eq!(JobShape::of(&spec), train(8, 384, Precision::Bf16));
        spec.kind = StageKind::Evaluate;
        assert!(!JobShape::of(&spec).train);
        // No config.json on this machine: the conservative shape.
        assert_eq!(
            model_shape(&spec.model_source),
            (ModelShape::CONSERVATIVE, false)
        );
    }

    #[test]
    fn a_local_config_json_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                "num_attention_heads": 12, "intermediate_size": 1536,
                "max_position_embeddings": 512, "type_vocab_size": 2}"#,
        )
        .unwrap();
        let source = dir.path().to_str().unwrap();
        assert_eq!(model_shape(source), (minilm_l6(), true));
    }
}
