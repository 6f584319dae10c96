//! Loading HuggingFace `model.safetensors` weights into [`Encoder`], and the trainer's own
//! checkpoints (burnpack, which keeps parameter ids so optimizer state can be resumed).
//!
//! HF weight name → module path (after the `bert.` / `roberta.` prefix is stripped):
//!
//! | HuggingFace                                        | burn module path                 |
//! |----------------------------------------------------|----------------------------------|
//! | `embeddings.word_embeddings.weight`                | `embeddings.word_embeddings.weight` |
//! | `embeddings.position_embeddings.weight`            | `embeddings.position_embeddings.weight` |
//! | `embeddings.token_type_embeddings.weight`          | `embeddings.token_type_embeddings.weight` |
//! | `embeddings.LayerNorm.{weight,bias}`               | `embeddings.layer_norm.{gamma,beta}` |
//! | `encoder.layer.N.attention.self.{query,key,value}` | `layers.N.mha.{query,key,value}` |
//! | `encoder.layer.N.attention.output.dense`           | `layers.N.mha.output`            |
//! | `encoder.layer.N.attention.output.LayerNorm`       | `layers.N.norm_1`                |
//! | `encoder.layer.N.intermediate.dense`               | `layers.N.pwff.linear_inner`     |
//! | `encoder.layer.N.output.dense`                     | `layers.N.pwff.linear_outer`     |
//! | `encoder.layer.N.output.LayerNorm`                 | `layers.N.norm_2`                |
//!
//! XLNet (HF `XLNetModel`, prefix `transformer.` or none): every name keeps its HF spelling
//! under `xlnet.`:
//!
//! | HuggingFace                                        | burn module path                 |
//! |----------------------------------------------------|----------------------------------|
//! | `word_embedding.weight`                            | `xlnet.word_embedding.weight`    |
//! | `layer.N.rel_attn.{q,k,v,o,r}` `[d_model, n_head, d_head]` | `xlnet.layer.N.rel_attn.{q,k,v,o,r}` (as stored) |
//! | `layer.N.rel_attn.{r_w_bias,r_r_bias,r_s_bias}` `[n_head, d_head]` | `xlnet.layer.N.rel_attn.…` |
//! | `layer.N.rel_attn.seg_embed` `[2, n_head, d_head]` | `xlnet.layer.N.rel_attn.seg_embed` |
//! | `layer.N.rel_attn.layer_norm`                      | `xlnet.layer.N.rel_attn.layer_norm` |
//! | `layer.N.ff.{layer_1,layer_2,layer_norm}`          | `xlnet.layer.N.ff.…`             |
//!
//! `mask_emb` (used only with pretraining's query stream) is not loaded.
//!
//! Linear weights are transposed (`[out, in]` → `[in, out]`) and LayerNorm weight/bias become
//! gamma/beta by burn's `PyTorchToBurnAdapter`. Old checkpoints name LayerNorm parameters
//! `gamma`/`beta`; they are renamed to `weight`/`bias` first. Source tensors that are not part of
//! the encoder and are deliberately left out are listed in [`IGNORED_SOURCE_TENSORS`]; any
//! other unused or missing tensor is an error naming it.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, BurnpackStore, KeyRemapper, ModuleSnapshot,
    PyTorchToBurnAdapter, SafetensorsStore,
};

use crate::encoder::Encoder;
use crate::error::{Result, TrainerError};

/// `(regex on the HF name, replacement)`, applied in order.
pub const HF_TO_BURN: &[(&str, &str)] = &[
    (r"^(bert|roberta)\.", ""),
    (r"^transformer\.", "xlnet."),
    (r"^(word_embedding\.|mask_emb$|layer\.)", "xlnet.$1"),
    (r"LayerNorm\.gamma$", "LayerNorm.weight"),
    (r"LayerNorm\.beta$", "LayerNorm.bias"),
    (r"^embeddings\.LayerNorm\.", "embeddings.layer_norm."),
    (
        r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.",
        "layers.$1.mha.$2.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.",
        "layers.$1.mha.output.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.",
        "layers.$1.norm_1.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.intermediate\.dense\.",
        "layers.$1.pwff.linear_inner.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.output\.dense\.",
        "layers.$1.pwff.linear_outer.",
    ),
    (
        r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.",
        "layers.$1.norm_2.",
    ),
];

/// Source tensors (after remapping) that are not encoder weights: the position-id buffer, the
/// NSP pooler (heads start fresh, see `heads.rs`), pretraining/task heads, and XLNet's mask
/// embedding and heads.
pub const IGNORED_SOURCE_TENSORS: &[&str] = &[
    r"^xlnet\.mask_emb$",
    r"^sequence_summary\.",
    r"^lm_loss\.",
    r"^logits_proj\.",
    r"^(start_logits|end_logits|answer_class)\.",
    r"^embeddings\.position_ids$",
    r"^pooler\.",
    r"^cls\.",
    r"^lm_head\.",
    r"^classifier\.",
    r"^qa_outputs\.",
];

/// The reverse of [`HF_TO_BURN`] (after `BurnToPyTorchAdapter` renamed gamma/beta back to
/// weight/bias), for exporting in HuggingFace's unprefixed BERT and XLNet names.
pub const BURN_TO_HF: &[(&str, &str)] = &[
    (r"^xlnet\.", ""),
    (r"^embeddings\.layer_norm\.", "embeddings.LayerNorm."),
    (
        r"^layers\.(\d+)\.mha\.(query|key|value)\.",
        "encoder.layer.$1.attention.self.$2.",
    ),
    (
        r"^layers\.(\d+)\.mha\.output\.",
        "encoder.layer.$1.attention.output.dense.",
    ),
    (
        r"^layers\.(\d+)\.norm_1\.",
        "encoder.layer.$1.attention.output.LayerNorm.",
    ),
    (
        r"^layers\.(\d+)\.pwff\.linear_inner\.",
        "encoder.layer.$1.intermediate.dense.",
    ),
    (
        r"^layers\.(\d+)\.pwff\.linear_outer\.",
        "encoder.layer.$1.output.dense.",
    ),
    (
        r"^layers\.(\d+)\.norm_2\.",
        "encoder.layer.$1.output.LayerNorm.",
    ),
];

/// Writes `encoder` as a HuggingFace `model.safetensors` (unprefixed names, `[out, in]` linear
/// weights), so `dir` with the base model's config.json and tokenizer.json is a HF directory.
pub fn save_encoder_hf(encoder: &Encoder, path: &Path) -> Result<()> {
    let remap = KeyRemapper::from_patterns(BURN_TO_HF.to_vec()).expect("valid export regexes");
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remap)
        .overwrite(true);
    encoder
        .save_into(&mut store)
        .map_err(|e| TrainerError::bad_file(path, e.to_string()))
}

fn remapper() -> KeyRemapper {
    KeyRemapper::from_patterns(HF_TO_BURN.to_vec()).expect("the weight table's regexes are valid")
}

fn is_ignored(name: &str) -> bool {
    IGNORED_SOURCE_TENSORS.iter().any(|p| {
        regex::Regex::new(p)
            .expect("valid ignore regex")
            .is_match(name)
    })
}

/// Module path → shape as a HF file stores it (Linear weights `[out, in]`), for naming the
/// expected shape of a missing tensor.
fn file_shapes<M: Module>(module: &M) -> HashMap<String, Vec<usize>> {
    let burn = module.collect(None, None, false);
    let file = module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false);
    burn.into_iter()
        .zip(file)
        .map(|(b, f)| (b.name, f.shape.to_vec()))
        .collect()
}

/// A misshaped tensor, with both shapes as the file stores them (`expected` and `found` come in
/// burn's layout, where a Linear weight is transposed).
fn shape_problem(
    path: &str,
    expected: Vec<usize>,
    found: Vec<usize>,
    shapes: &HashMap<String, Vec<usize>>,
) -> String {
    let (want, got) = match shapes.get(path) {
        Some(file) if *file != expected => (file.clone(), found.into_iter().rev().collect()),
        _ => (expected, found),
    };
    format!("tensor {path} has shape {got:?}, expected {want:?}")
}

/// Turns an [`ApplyResult`] into an error naming every missing, unused or mismatched tensor
/// (with the expected shape, from `shapes`, for a missing one).
fn check_apply(
    path: &Path,
    result: &ApplyResult,
    shapes: &HashMap<String, Vec<usize>>,
    ignore_unused: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let mut problems = Vec::new();
    for e in &result.errors {
        problems.push(match e {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => shape_problem(path, expected.to_vec(), found.to_vec(), shapes),
            other => other.to_string(),
        });
    }
    for (name, _) in &result.missing {
        match shapes.get(name) {
            Some(shape) => {
                problems.push(format!("missing tensor {name} (expected shape {shape:?})"))
            }
            None => problems.push(format!("missing tensor {name}")),
        }
    }
    for name in result.unused.iter().filter(|n| !ignore_unused(n)) {
        problems.push(format!(
            "unused tensor {name} (no module parameter maps to it)"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TrainerError::bad_file(path, problems.join("; ")))
    }
}

/// Loads HF `model.safetensors` into `encoder` (which must have the config's shapes).
pub fn load_encoder_weights(encoder: Encoder, path: &Path) -> Result<Encoder> {
    if !path.is_file() {
        return Err(TrainerError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
        ));
    }
    let mut store = SafetensorsStore::from_file(path)
        .remap(remapper())
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true)
        .validate(false);
    let mut encoder = encoder;
    let shapes = file_shapes(&encoder);
    let result = encoder
        .load_from(&mut store)
        .map_err(|e| TrainerError::bad_file(path, e.to_string()))?;
    check_apply(path, &result, &shapes, &is_ignored)?;
    Ok(encoder)
}

/// Saves any module as burnpack (parameter ids included), atomically replacing `path`.
pub fn save_module<M: Module>(module: &M, path: &Path) -> Result<()> {
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| TrainerError::checkpoint(path, e))
}

/// Loads a burnpack file written by [`save_module`] into `module` (same structure); every
/// tensor must match.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    if !path.is_file() {
        return Err(TrainerError::checkpoint(path, "file not found"));
    }
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .allow_partial(true);
    let mut module = module;
    let result = module
        .load_from(&mut store)
        .map_err(|e| TrainerError::checkpoint(path, e))?;
    check_apply(path, &result, &HashMap::new(), &|_| false)?;
    Ok(module)
}
