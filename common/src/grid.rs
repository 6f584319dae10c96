//! Grid specs: the TOML a researcher writes, validated into a [`Grid`].
//!
//! ```toml
//! [sweep]
//! name  = "domain-alignment"
//! seeds = [1, 2, 3]
//! data_version = "xtreme-r-2021"   # optional, enters job keys; default "unversioned"
//! code_version = "git:abc123"      # optional, enters job keys; default "unversioned" for the
//!                                  # command executor, the stilts version for burn
//! [models]                         # name = HF directory or hub id
//! mbert = "bert-base-multilingual-cased"
//! [grid]
//! intermediate = ["none", "mnli", "squad"]   # "none" = the baseline chain
//! target       = ["xnli", "xquad"]
//! languages    = ["en", "de"]     # or "all", or per target: { xnli = ["de", "sw"], xquad = "all" }
//! [evaluate]                       # optional
//! languages_per_job = 0            # 0 (default) = all languages of a target checkpoint per job
//! [recipe]                         # optional: hyperparameters, defaults for every stage
//! lr = 1e-5
//! [recipe.intermediate]            # per stage kind: intermediate, target, evaluate
//! epochs = 1
//! [recipe.target.xquad]            # per stage kind and task
//! max_seq_len = 384
//! [executor]                       # optional; default kind = "burn"
//! kind = "command"                 # or "burn" (then only `backend` may follow)
//! intermediate = "python train.py --model {model_source} --task {task} --out {output_dir}"
//! target       = "python train.py --init {input_dir} --task {task} --out {output_dir}"
//! evaluate     = "python eval.py --ckpt {input_dir} --langs {languages} --metrics {metrics_file}"
//! retryable_exit_codes = [75]      # default []
//! timeout = "6h"                   # default: none; units s, m, h, d ("1h30m")
//! ```
//!
//! **Recipe precedence** (later wins, key by key):
//! - intermediate jobs: `[recipe]` ← `[recipe.intermediate]` ← `[recipe.intermediate.<task>]`
//! - target jobs: `[recipe]` ← `[recipe.target]` ← `[recipe.target.<task>]`
//! - evaluate jobs: the target recipe of the same task ← `[recipe.evaluate]` ←
//!   `[recipe.evaluate.<task>]` (so `max_seq_len` set for training a target also applies when
//!   evaluating it).
//!
//! A grid may bring its own tasks: `catalog = ["my-tasks.toml"]` (before the first table) names
//! shared catalog files, and `[tasks.NAME]` sections (with `[[tasks.NAME.layout]]`) use the
//! keys of the built-in catalog.toml; see `tasks.rs` and `plan::plan_with_catalog`.
//!
//! Tasks are checked against the catalog when the caller has one (`task_validator`);
//! `languages = "all"` needs a `LanguageResolver`. Every error names file, line and column.

mod error;
mod executor;
mod load;
mod spec;
mod tasks;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::job::{ExecutorSpec, Recipe, StageKind};

pub use error::{GridError, Location};
pub use executor::parse_duration;
pub use load::{MAX_NAME_LEN, PRECISIONS, load, name_problem, pip_package_problem};
pub use spec::GridSpec;
pub use tasks::{CatalogFiles, GridCatalog, catalog_paths, grid_catalog};

/// Maps a target task to its languages (from the task catalog), `None` for an unknown task.
pub type LanguageResolver<'a> = &'a dyn Fn(&str) -> Option<Vec<String>>;
/// Says whether a task name is in the task catalog.
pub type TaskValidator<'a> = &'a dyn Fn(&str) -> bool;

/// The name of the intermediate "task" of the baseline chain (base model → target → evaluate).
pub const NO_INTERMEDIATE: &str = "none";

/// A validated grid: every name checked, every language resolved, every default applied.
/// Serialised as JSON it is the canonical form hashed into `Plan::grid_digest`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    pub sweep: String,
    pub seeds: Vec<u64>,
    pub data_version: String,
    pub code_version: String,
    /// In name order.
    pub models: Vec<Model>,
    /// In file order; may include [`NO_INTERMEDIATE`].
    pub intermediates: Vec<String>,
    /// In file order, each with its resolved languages (in file or catalog order).
    pub targets: Vec<Target>,
    /// 0 = all languages of a target in one evaluate job.
    pub languages_per_job: u32,
    pub recipe: RecipeLayers,
    pub executor: Executor,
    /// The definitions (JSON of `stilts_tasks::TaskDef`) of the tasks the grid brings itself
    /// (`[tasks.NAME]`, `catalog` files), by name; empty when it brings none (and then absent
    /// from the digest, which older sweeps were stored with).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, serde_json::Value>,
    /// With `data_version = "auto"`: the digest of each input the grid's jobs read, by
    /// `plan::data::input_key`, computed by the client that submits; empty otherwise (and
    /// then absent from the digest).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data_digests: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    pub name: String,
    /// HuggingFace directory or hub id.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub task: String,
    pub languages: Vec<String>,
}

/// The `[recipe]` tables as written, before resolution (see the module doc for precedence).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecipeLayers {
    pub defaults: Recipe,
    pub stages: BTreeMap<String, StageLayer>,
}

/// `[recipe.<stage>]`: stage defaults and per-task overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageLayer {
    pub params: Recipe,
    pub tasks: BTreeMap<String, Recipe>,
}

impl RecipeLayers {
    /// The resolved recipe of a `kind` job on `task`.
    pub fn resolve(&self, kind: StageKind, task: &str) -> Recipe {
        let mut out = match kind {
            StageKind::Evaluate => self.resolve(StageKind::Target, task),
            _ => self.defaults.clone(),
        };
        if let Some(layer) = self.stages.get(kind.as_str()) {
            out.extend(layer.params.iter().map(|(k, v)| (k.clone(), v.clone())));
            if let Some(task) = layer.tasks.get(task) {
                out.extend(task.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        out
    }
}

/// How jobs run, as validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Executor {
    Command {
        /// One template per stage kind the grid has jobs of (by `StageKind::as_str`).
        templates: BTreeMap<String, String>,
        retryable_exit_codes: Vec<i32>,
        timeout_s: Option<u64>,
    },
    Burn {
        /// Where jobs run; not part of any job key.
        backend: Option<String>,
    },
}

impl Executor {
    /// The executor spec that enters the keys of `kind` jobs: only that stage's template, so
    /// that changing the evaluate command does not change training keys.
    pub fn spec(&self, kind: StageKind) -> ExecutorSpec {
        match self {
            Self::Command {
                templates,
                retryable_exit_codes,
                timeout_s,
            } => ExecutorSpec::Command {
                template: templates.get(kind.as_str()).cloned().unwrap_or_default(),
                retryable_exit_codes: retryable_exit_codes.clone(),
                timeout_s: *timeout_s,
            },
            Self::Burn { .. } => ExecutorSpec::Burn,
        }
    }
}

impl Grid {
    /// The number of cells: models × intermediates × Σ(target languages) × seeds.
    pub fn cell_count(&self) -> u64 {
        let languages: u64 = self.targets.iter().map(|t| t.languages.len() as u64).sum();
        self.models.len() as u64
            * self.intermediates.len() as u64
            * languages
            * self.seeds.len() as u64
    }

    /// sha256 hex of the canonical JSON of the validated grid.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).expect("a Grid always serialises to JSON");
        hex::encode(Sha256::digest(json))
    }
}
