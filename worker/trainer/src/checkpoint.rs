//! Resumable training checkpoints and the selected ("best") model, in the job's output dir:
//!
//! ```text
//! checkpoint/model.bpk       encoder + head, burnpack (parameter ids kept for the optimizer)
//! checkpoint/optimizer.bpk   AdamW moments
//! checkpoint/state.json      step, best dev score, ...; written last
//! best/encoder.bpk           encoder of the model selected on English dev
//! best/head.bpk, head.json   its head and the head kind (absent for a retrieval pass-through)
//! best/config.json, tokenizer.json   copied from the base model: best/ is self-contained
//! ```
//!
//! A checkpoint is written to `checkpoint.tmp/` and swapped in by renames, so a `kill -9` at any
//! moment leaves either the previous or the new checkpoint complete (`checkpoint.old/` is used if
//! the process died between the two renames). The dropout and shuffling randomness is derived
//! from (seed, step), so the step is the whole rng state.

use std::fs;
use std::path::{Path, PathBuf};

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::encoder::Encoder;
use crate::error::{Result, TrainerError};
use crate::heads::{Head, HeadKind, TaskModel};
use crate::weights::{load_module, save_module};

/// Progress of a training run, saved with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Optimizer steps the run will take.
    pub total: u64,
    /// Seed of the run; the rng state at `step` is derived from it.
    pub seed: u64,
    /// Best English dev score so far (the selection metric) and the step it was reached at.
    pub best_score: Option<f64>,
    pub best_step: Option<u64>,
    /// Dev metrics of the best model.
    pub best_metrics: serde_json::Map<String, serde_json::Value>,
    /// Mean loss of the last step.
    pub last_loss: f64,
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    fs::write(path, text).map_err(|e| TrainerError::io(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(|e| TrainerError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainerError::checkpoint(path, format!("line {}: {e}", e.line())))
}

fn replace_dir(tmp: &Path, dest: &Path) -> Result<()> {
    let old = dest.with_extension("old");
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| TrainerError::io(&old, e))?;
    }
    if dest.exists() {
        fs::rename(dest, &old).map_err(|e| TrainerError::io(dest, e))?;
    }
    fs::rename(tmp, dest).map_err(|e| TrainerError::io(tmp, e))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| TrainerError::io(&old, e))?;
    }
    Ok(())
}

fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| TrainerError::io(dir, e))?;
    }
    fs::create_dir_all(dir).map_err(|e| TrainerError::io(dir, e))
}

/// Saves model, optimizer and state as `out/checkpoint/`.
pub fn save_checkpoint(
    out: &Path,
    model: &TaskModel,
    optim: &ModuleOptimizer,
    state: &TrainState,
) -> Result<()> {
    let tmp = out.join("checkpoint.tmp");
    fresh_dir(&tmp)?;
    save_module(model, &tmp.join("model.bpk"))?;
    let opt_path = tmp.join("optimizer.bpk");
    optim
        .save(&opt_path)
        .map_err(|e| TrainerError::checkpoint(&opt_path, format!("{e:?}")))?;
    write_json(&tmp.join("state.json"), state)?;
    replace_dir(&tmp, &out.join("checkpoint"))
}

/// The directory of the last complete checkpoint, if any.
pub fn latest_checkpoint(out: &Path) -> Option<PathBuf> {
    ["checkpoint", "checkpoint.old"]
        .iter()
        .map(|d| out.join(d))
        .find(|d| d.join("state.json").is_file())
}

/// Reads only the state of the last checkpoint.
pub fn read_state(out: &Path) -> Result<Option<TrainState>> {
    latest_checkpoint(out)
        .map(|d| read_json(&d.join("state.json")))
        .transpose()
}

/// Restores model weights (with their parameter ids), optimizer and state.
pub fn load_checkpoint(
    dir: &Path,
    model: TaskModel,
    optim: ModuleOptimizer,
) -> Result<(TaskModel, ModuleOptimizer, TrainState)> {
    let state: TrainState = read_json(&dir.join("state.json"))?;
    let model = load_module(model, &dir.join("model.bpk"))?;
    let opt_path = dir.join("optimizer.bpk");
    let optim = optim
        .load(&opt_path)
        .map_err(|e| TrainerError::checkpoint(&opt_path, format!("{e:?}")))?;
    Ok((model, optim, state))
}

/// Saves the selected model as `out/best/` (encoder, head, head kind, dev metrics).
pub fn save_best(
    out: &Path,
    model: &TaskModel,
    kind: HeadKind,
    dev: &serde_json::Map<String, serde_json::Value>,
    base_dir: &Path,
) -> Result<()> {
    let tmp = out.join("best.tmp");
    fresh_dir(&tmp)?;
    save_module(&model.encoder, &tmp.join("encoder.bpk"))?;
    save_module(&model.head, &tmp.join("head.bpk"))?;
    write_json(&tmp.join("head.json"), &kind)?;
    write_json(&tmp.join("dev.json"), dev)?;
    for f in ["config.json", "tokenizer.json"] {
        let src = base_dir.join(f);
        fs::copy(&src, tmp.join(f)).map_err(|e| TrainerError::io(&src, e))?;
    }
    replace_dir(&tmp, &out.join("best"))
}

/// Saves an encoder alone as `out/best/` (no head): the pass-through target stage of retrieval
/// tasks, whose evaluation reads only the encoder.
pub fn save_best_encoder(out: &Path, encoder: &Encoder, base_dir: &Path) -> Result<()> {
    let tmp = out.join("best.tmp");
    fresh_dir(&tmp)?;
    save_module(encoder, &tmp.join("encoder.bpk"))?;
    for f in ["config.json", "tokenizer.json"] {
        let src = base_dir.join(f);
        fs::copy(&src, tmp.join(f)).map_err(|e| TrainerError::io(&src, e))?;
    }
    replace_dir(&tmp, &out.join("best"))
}

/// Exports the encoder of a `best/` directory as a HuggingFace directory `dest`
/// (config.json, tokenizer.json, model.safetensors), e.g. for the command executor or
/// `transformers`. The head is not exported.
pub fn export_best_hf(best: &Path, dest: &Path, device: &Device) -> Result<()> {
    let (_, config, _) = crate::model::load_config_and_tokenizer(best, 512)?;
    let encoder = load_best_encoder(best, config.init(device))?;
    fs::create_dir_all(dest).map_err(|e| TrainerError::io(dest, e))?;
    for f in ["config.json", "tokenizer.json"] {
        let src = best.join(f);
        fs::copy(&src, dest.join(f)).map_err(|e| TrainerError::io(&src, e))?;
    }
    crate::weights::save_encoder_hf(&encoder, &dest.join("model.safetensors"))
}

/// Loads only the encoder of a `best/` directory (the target stage's start).
pub fn load_best_encoder(best: &Path, encoder: Encoder) -> Result<Encoder> {
    load_module(encoder, &best.join("encoder.bpk"))
}

/// Loads encoder and head of a `best/` directory (evaluation).
pub fn load_best_head(best: &Path, head: Head) -> Result<(HeadKind, Head)> {
    let kind: HeadKind = read_json(&best.join("head.json"))?;
    Ok((kind, load_module(head, &best.join("head.bpk"))?))
}

/// The head kind saved in a `best/` directory.
pub fn read_head_kind(best: &Path) -> Result<HeadKind> {
    read_json(&best.join("head.json"))
}

/// Best-so-far dev metrics of a finished or running job.
pub fn best_dir(out: &Path) -> PathBuf {
    out.join("best")
}

/// A device-independent copy of `module` on `device` (no autodiff graph).
pub fn on_device<M: Module>(module: M, device: &Device) -> M {
    module.fork(device)
}
