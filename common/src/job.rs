//! Stage jobs: the unit of compute. A job's identity is its key, a content hash of its canonical
//! spec, which includes its parent's key (see `key.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The three kinds of stage job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// (model, intermediate task, seed) → checkpoint.
    Intermediate,
    /// (parent checkpoint or base model, target task, seed) → checkpoint.
    Target,
    /// (target checkpoint, languages) → metrics.
    Evaluate,
}

impl StageKind {
    pub const ALL: [StageKind; 3] = [Self::Intermediate, Self::Target, Self::Evaluate];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intermediate => "intermediate",
            Self::Target => "target",
            Self::Evaluate => "evaluate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Scheduling rank: intermediate jobs unblock the most cells, so they go first.
    pub fn rank(self) -> u8 {
        match self {
            Self::Intermediate => 0,
            Self::Target => 1,
            Self::Evaluate => 2,
        }
    }
}

impl std::fmt::Display for StageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resolved hyperparameters for one stage of one task (defaults, then per-stage, then per-task
/// overrides from the grid's `[recipe]` tables). Keys are sorted, so the JSON is canonical.
pub type Recipe = BTreeMap<String, serde_json::Value>;

/// How a job is executed. Only the parts that can change the job's result are here, so that
/// they enter the job key; where the job runs (backend, device) does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecutorSpec {
    /// The user's own program, one process per job.
    Command {
        /// The command template for this stage kind, placeholders unexpanded.
        template: String,
        /// Exit codes that mean "try again" (e.g. 75 = EX_TEMPFAIL).
        retryable_exit_codes: Vec<i32>,
        /// Kill the job after this many seconds (SIGTERM, then SIGKILL).
        timeout_s: Option<u64>,
    },
    /// The built-in burn trainer.
    Burn,
}

/// The canonical spec of one stage job. Serialised as JSON it is hashed into the job key and
/// sent to workers with each assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub kind: StageKind,
    /// Model name from the grid's `[models]` table.
    pub model: String,
    /// HuggingFace directory or hub id the model name maps to.
    pub model_source: String,
    /// The task this stage trains or evaluates: the intermediate task for `intermediate` jobs,
    /// the target task for `target` and `evaluate` jobs.
    pub task: String,
    /// The chain's intermediate task ("none" for the baseline chain).
    pub intermediate: String,
    /// Languages an evaluate job scores (sorted); empty for training jobs.
    pub languages: Vec<String>,
    pub seed: u64,
    pub recipe: Recipe,
    pub executor: ExecutorSpec,
    /// Key of the job whose checkpoint this one starts from; `None` starts from the base model.
    pub parent: Option<String>,
    /// The grid's `data_version` (or data digest): new data = new work.
    pub data_version: String,
    /// Version of the code that runs the job: the grid's `code_version` for command jobs,
    /// the trainer's version for burn jobs.
    pub code_version: String,
    /// The definitions (JSON of `stilts_tasks::TaskDef`, by name) of the tasks this job reads
    /// that the grid brought itself (`[tasks.NAME]` or a `catalog` file): `task` and, for a
    /// target, its `english_train` tasks. They travel to the worker with the job and enter the
    /// key, so a changed definition is new work. Empty (and absent from the JSON, so keys stay
    /// as they were) for built-in tasks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_defs: BTreeMap<String, serde_json::Value>,
}
