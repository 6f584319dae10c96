//! [`BurnExecutor`]: runs `intermediate`, `target` and `evaluate` stage jobs with the built-in
//! trainer, on the calling (blocking) thread.
//!
//! - `intermediate`: fine-tunes `spec.model_source` on the task's English train split (model
//!   selection on its English dev split); the selected model goes to `output_dir/best/`.
//! - `target`: starts from the parent's `input_dir/best/` **encoder only** (or the base model
//!   when `spec.parent` is `None`) with a fresh head, and trains on the English training data of
//!   the task's `english_train` tasks, one after the other (`output_dir/phase-N/` when several);
//!   model selection on the target's English dev split.
//! - `evaluate`: loads `input_dir/best/` and scores every language of `spec.languages`; writes
//!   `metrics_file` as `{"de": {"accuracy": 81.2}, ...}` (×100) and
//!   `output_dir/predictions/test-{lang}.tsv` (one prediction per line, XTREME's submission
//!   layout). Metrics come from the test split when it is labelled, else from the dev split
//!   (recorded as `"split"`).
//!
//! - Retrieval tasks (Tatoeba; catalog head `retrieval`, metric `accuracy`) have no head and no
//!   target training: their `target` stage passes the parent's encoder through (or the
//!   pretrained encoder without a parent) as `output_dir/best/`, and `evaluate` retrieves with
//!   it (see `retrieval.rs`; layer = recipe `retrieval_layer`, default the middle layer). XTREME-R's
//!   "SQuAD-tuned encoder → Tatoeba" is the grid cell intermediate = `squad`, target = `tatoeba`;
//!   the no-intermediate baseline is the raw pretrained encoder. The catalog's
//!   `english_train = ["squad"]` of `tatoeba` is not trained by the target stage.
//!
//! - Dual-encoder tasks (catalog head `dual_encoder`: LAReQA, Mewsli-X) train the encoder on
//!   (query, candidate) pairs of their English training data (LAReQA: SQuAD questions → answer
//!   sentences; Mewsli-X: `wikipedia_pairs-train.jsonl`) with an in-batch softmax (`dual.rs`);
//!   `evaluate` embeds the shared multilingual candidate pool once, a `pool_chunk` at a time,
//!   ranks it for the queries of every language, and writes `{"de": {"map@20": …}}` and
//!   `predictions/test-{lang}.json` (`{query id: [candidate ids, best first]}`, the Mewsli-X
//!   submission format). A task with a `mixture` (an intermediate stage) trains on its
//!   component tasks' pairs, each batch drawn from one task by weight; it keeps its last model.
//!
//! Data comes from `stilts-tasks`; the data root is recipe key `data_dir`, else
//! `$STILTS_DATA_DIR`, else `./data`.

use std::path::{Path, PathBuf};

use stilts_common::failure::{Failure, FailureReason};
use stilts_common::job::{JobSpec, StageKind};
use stilts_tasks::example::Dataset;
use stilts_tasks::metrics::squad::QaNormalization;
use stilts_tasks::{Catalog, Head as TaskHead, Split, TaskDef, TaskError, load};
use stilts_worker::executor::{
    CancelFlag, Executor, JobContext, JobOutput, Progress, ProgressSink,
};

use crate::backend::Backend;
use crate::checkpoint::{best_dir, load_best_encoder, load_best_head};
use crate::data::{Featurize, examples};
use crate::error::TrainerError;
use crate::evaluate::{EvalSpec, dev_metrics, prediction_lines, score_examples};
use crate::example::Example;
use crate::heads::{HeadConfig, HeadKind, TaskModel};
use crate::model::{load_config_and_tokenizer, load_pretrained};
use crate::qa::QaWindows;
use crate::recipe::TrainConfig;
use crate::train::{TrainRun, train};

/// The built-in burn executor.
pub struct BurnExecutor {
    backend: Backend,
    catalog: Catalog,
    data_dir: Option<PathBuf>,
}

impl BurnExecutor {
    /// An executor on `backend` with the built-in task catalog.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            catalog: Catalog::builtin(),
            data_dir: None,
        }
    }

    /// Uses another catalog (built-in plus the user's task files).
    pub fn with_catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// Default data root when the recipe has no `data_dir` (overrides `$STILTS_DATA_DIR`).
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The device a job computes on: this executor's backend, on the GPU the worker placed the
    /// job on when it packs jobs onto GPUs (`JobContext::gpu`, `--gpus`).
    fn device(&self, ctx: &JobContext) -> burn::prelude::Device {
        self.backend.on_gpu(ctx.gpu).device()
    }

    fn data_root(&self, spec: &JobSpec) -> PathBuf {
        if let Some(dir) = spec.recipe.get("data_dir").and_then(|v| v.as_str()) {
            return PathBuf::from(dir);
        }
        self.data_dir
            .clone()
            .or_else(|| std::env::var_os("STILTS_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("data"))
    }

    /// The catalog a job sees: this executor's, plus the definitions the job carries (tasks
    /// its grid defined; see `JobSpec::task_defs`).
    fn catalog_for(&self, spec: &JobSpec) -> Result<std::borrow::Cow<'_, Catalog>, Failure> {
        if spec.task_defs.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(&self.catalog));
        }
        let mut catalog = self.catalog.clone();
        for (name, def) in &spec.task_defs {
            let task = TaskDef::from_json(name, def).map_err(|e| {
                Failure::permanent(
                    FailureReason::User,
                    format!("task `{name}`: the definition sent with the job is invalid: {e}"),
                )
            })?;
            catalog.insert(task);
        }
        Ok(std::borrow::Cow::Owned(catalog))
    }
}

fn task<'c>(catalog: &'c Catalog, name: &str) -> Result<&'c TaskDef, Failure> {
    catalog
        .get(name)
        .ok_or_else(|| Failure::permanent(FailureReason::User, format!("unknown task `{name}`")))
}

/// The head a catalog task needs, if this trainer implements it.
pub fn head_kind(task: &TaskDef) -> Result<HeadKind, Failure> {
    match task.head {
        TaskHead::Classification => Ok(HeadKind::Classification {
            num_labels: task.labels.len(),
        }),
        TaskHead::Regression => Ok(HeadKind::Regression),
        TaskHead::MultipleChoice => Ok(HeadKind::MultipleChoice),
        TaskHead::SpanQa => Ok(HeadKind::SpanQa),
        TaskHead::DualEncoder => Ok(HeadKind::DualEncoder {
            pooling: crate::embed::Pool::Mean,
        }),
        TaskHead::TokenClassification => Ok(HeadKind::TokenClassification {
            num_labels: task.labels.len(),
        }),
        other => Err(Failure::permanent(
            FailureReason::User,
            format!(
                "task `{}`: head {other:?} is not implemented by the burn trainer yet",
                task.name
            ),
        )),
    }
}

/// The task's tag names and QA normalisation (MLQA's by context language for `mlqa`).
fn eval_spec(task: &TaskDef) -> EvalSpec<'_> {
    EvalSpec {
        labels: &task.labels,
        qa_norm: if task.metric == stilts_tasks::Metric::Mlqa {
            QaNormalization::Mlqa
        } else {
            QaNormalization::Squad
        },
    }
}

fn task_failure(e: TaskError) -> Failure {
    match e {
        TaskError::Unsupported { .. } => Failure::permanent(FailureReason::User, e.to_string()),
        _ => Failure::permanent(FailureReason::Data, e.to_string()),
    }
}

fn check_retrieval(task: &TaskDef, stage: StageKind) -> Result<(), Failure> {
    if task.metric != stilts_tasks::Metric::Accuracy {
        return Err(Failure::permanent(
            FailureReason::User,
            format!(
                "task `{}`: retrieval with metric {:?} (dual encoders) is not implemented by the burn trainer yet",
                task.name, task.metric
            ),
        ));
    }
    if stage == StageKind::Intermediate {
        return Err(Failure::permanent(
            FailureReason::User,
            format!(
                "task `{}` is a zero-shot retrieval task: it has no training data for an intermediate stage",
                task.name
            ),
        ));
    }
    Ok(())
}

/// The training pairs of a multi-task mixture: each component's English train split as
/// (query, candidate) pairs tagged with the component's index (its sampling weight is
/// `cfg.mixture[index]`); `max_train_examples` applies per component.
fn mixture_pairs(
    catalog: &Catalog,
    task: &TaskDef,
    tokenizer: &crate::tokenize::TextTokenizer,
    cfg: &TrainConfig,
    root: &Path,
) -> Result<Vec<Example>, Failure> {
    let mut out = Vec::new();
    for (group, c) in task.mixture.iter().enumerate() {
        let def = self::task(catalog, &c.task)?;
        let positive = match &c.label {
            None => None,
            Some(l) => Some(def.label_index(l).ok_or_else(|| {
                Failure::permanent(
                    FailureReason::User,
                    format!(
                        "task `{}`: mixture[{group}].label `{l}` is not a label of `{}`",
                        task.name, def.name
                    ),
                )
            })?),
        };
        let data = load(def, Split::Train, "en", root).map_err(task_failure)?;
        let what = format!("{} train (en), mixture[{group}] of {}", def.name, task.name);
        let mut ex = crate::dual::pair_examples(tokenizer, &data, group, positive, &what)?;
        if let Some(n) = cfg.max_train_examples {
            ex.truncate(n);
        }
        tracing::info!(task = %task.name, component = %def.name, pairs = ex.len(), "mixture");
        out.extend(ex);
    }
    Ok(out)
}

/// `output_dir/eval.json`: per language, the split its metrics come from and what was scored.
fn write_eval_info(
    output_dir: &Path,
    info: serde_json::Map<String, serde_json::Value>,
) -> Result<(), Failure> {
    let path = output_dir.join("eval.json");
    std::fs::write(&path, serde_json::Value::Object(info).to_string())
        .map_err(|e| TrainerError::io(&path, e).into())
}

fn write_metrics(path: &Path, metrics: &serde_json::Value) -> Result<(), Failure> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrainerError::io(parent, e))?;
    }
    let text = serde_json::to_string_pretty(metrics).expect("serialisable");
    std::fs::write(path, text).map_err(|e| TrainerError::io(path, e).into())
}

impl Executor for BurnExecutor {
    fn backend(&self) -> String {
        self.backend.name()
    }

    fn run(
        &self,
        ctx: &JobContext,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<JobOutput, Failure> {
        let metrics = match ctx.spec.kind {
            StageKind::Intermediate | StageKind::Target => self.train_job(ctx, progress, cancel)?,
            StageKind::Evaluate => self.evaluate_job(ctx, progress, cancel)?,
        };
        write_metrics(&ctx.metrics_file, &metrics)?;
        Ok(JobOutput {
            metrics,
            artifact: ctx.output_dir.clone(),
        })
    }
}

impl BurnExecutor {
    fn parent_best(&self, ctx: &JobContext) -> Result<Option<PathBuf>, Failure> {
        let needs_parent = ctx.spec.kind == StageKind::Evaluate || ctx.spec.parent.is_some();
        if !needs_parent {
            return Ok(None);
        }
        let input = ctx.input_dir.as_ref().ok_or_else(|| {
            Failure::permanent(FailureReason::User, "job has a parent but no input_dir")
        })?;
        let best = best_dir(input);
        if !best.join("encoder.bpk").is_file() {
            return Err(Failure::permanent(
                FailureReason::Data,
                format!(
                    "{}: no trained model (encoder.bpk) in the parent's artifacts",
                    best.display()
                ),
            ));
        }
        Ok(Some(best))
    }

    fn train_job(
        &self,
        ctx: &JobContext,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<serde_json::Value, Failure> {
        let spec = &ctx.spec;
        let mut cfg = TrainConfig::from_recipe(&spec.recipe, spec.seed)?;
        let catalog = self.catalog_for(spec)?;
        let task = task(&catalog, &spec.task)?;
        if task.head == TaskHead::Retrieval {
            return self.pass_through(ctx, task, &cfg);
        }
        let kind = match head_kind(task)? {
            HeadKind::DualEncoder { .. } => HeadKind::DualEncoder {
                pooling: cfg.pooling,
            },
            other => other,
        };
        cfg.mixture = task.mixture.iter().map(|c| c.weight).collect();
        let cfg = cfg;
        let root = self.data_root(spec);
        let device = self.device(ctx);

        // Base: the parent's selected encoder, or the pretrained model.
        let (base_dir, encoder_config, tokenizer, encoder) = match self.parent_best(ctx)? {
            Some(best) => {
                let (_, config, tok) = load_config_and_tokenizer(&best, cfg.max_seq_len)?;
                let encoder = load_best_encoder(&best, config.init(&device))?;
                (best, config, tok, encoder)
            }
            None => {
                let m = load_pretrained(&spec.model_source, cfg.max_seq_len, &device)?;
                (m.dir, m.config, m.tokenizer, m.encoder)
            }
        };

        // Training phases: the task itself (intermediate), or its english_train tasks (target).
        let phases: Vec<&TaskDef> = match spec.kind {
            StageKind::Target if !task.english_train.is_empty() => task
                .english_train
                .iter()
                .map(|n| self::task(&catalog, n))
                .collect::<Result<_, _>>()?,
            _ => vec![task],
        };
        let convert = |t: &TaskDef, split: Split, data| -> Result<Vec<Example>, Failure> {
            let what = format!("{} {split} (en)", t.name);
            let opts = Featurize {
                labels: &t.labels,
                windows: QaWindows::from_config(&cfg),
            };
            let mut ex = examples(&tokenizer, kind, &data, &opts, &what)?;
            if split == Split::Train
                && let Some(n) = cfg.max_train_examples
            {
                ex.truncate(n);
            }
            Ok(ex)
        };
        // Model selection on the English dev split; without one the last model is kept.
        let dev = match load(task, Split::Dev, "en", &root) {
            _ if !task.mixture.is_empty() => Vec::new(),
            Ok(data) => convert(task, Split::Dev, data)?,
            Err(TaskError::NotFound { .. }) => {
                tracing::warn!(task = %task.name, "no English dev split: keeping the last model");
                Vec::new()
            }
            Err(e) => return Err(task_failure(e)),
        };
        let dual = matches!(kind, HeadKind::DualEncoder { .. });
        if let Some(other) = phases.iter().find(|p| !dual && p.labels != task.labels) {
            return Err(Failure::permanent(
                FailureReason::User,
                format!(
                    "task `{}` trains on `{}` but their label lists differ ({:?} vs {:?})",
                    task.name, other.name, task.labels, other.labels
                ),
            ));
        }

        // The fresh head's initial weights come from the job's seed, not from whatever the
        // process's generator was left at by earlier jobs.
        crate::dropout::seed(&device, crate::seed::derive_seed(cfg.seed, 0, 0));
        let head = HeadConfig::new(encoder_config.hidden_size, kind.num_outputs()).init(&device);
        let mut model = TaskModel { encoder, head };
        let mut phase_metrics = Vec::new();
        let mut last_out = ctx.output_dir.clone();
        for (i, phase) in phases.iter().enumerate() {
            let train_set = if phase.mixture.is_empty() {
                let data = load(phase, Split::Train, "en", &root).map_err(task_failure)?;
                convert(phase, Split::Train, data)?
            } else {
                mixture_pairs(&catalog, phase, &tokenizer, &cfg, &root)?
            };
            let out = if phases.len() == 1 {
                ctx.output_dir.clone()
            } else {
                ctx.output_dir.join(format!("phase-{i}"))
            };
            let run = TrainRun {
                kind,
                train: &train_set,
                dev: &dev,
                config: &cfg,
                encoder_config: &encoder_config,
                device: device.clone(),
                out: &out,
                base_dir: &base_dir,
                eval: eval_spec(task),
                progress,
                cancel,
            };
            let (trained, outcome) = train(&run, model)?;
            model = trained;
            phase_metrics.push(serde_json::json!({
                "task": phase.name,
                "start_step": outcome.start_step,
                "steps": outcome.steps,
                "loss": outcome.final_loss,
                "best_step": outcome.best_step,
                "dev": outcome.dev,
            }));
            last_out = out;
        }
        if last_out != ctx.output_dir {
            // Several phases: the last phase's selection is the job's model.
            crate::checkpoint::save_best(
                &ctx.output_dir,
                &model,
                kind,
                &serde_json::Map::new(),
                &base_dir,
            )?;
        }
        Ok(serde_json::json!({ "train": { "phases": phase_metrics } }))
    }

    /// Target stage of a retrieval task: the parent's (or the pretrained) encoder, unchanged.
    fn pass_through(
        &self,
        ctx: &JobContext,
        task: &TaskDef,
        cfg: &TrainConfig,
    ) -> Result<serde_json::Value, Failure> {
        check_retrieval(task, ctx.spec.kind)?;
        let device = self.device(ctx);
        let (base_dir, encoder) = match self.parent_best(ctx)? {
            Some(best) => {
                let (_, config, _) = load_config_and_tokenizer(&best, cfg.max_seq_len)?;
                let encoder = load_best_encoder(&best, config.init(&device))?;
                (best, encoder)
            }
            None => {
                let m = load_pretrained(&ctx.spec.model_source, cfg.max_seq_len, &device)?;
                (m.dir, m.encoder)
            }
        };
        crate::checkpoint::save_best_encoder(&ctx.output_dir, &encoder, &base_dir)?;
        Ok(serde_json::json!({ "train": {
            "phases": [],
            "pass_through": base_dir.to_string_lossy(),
        }}))
    }

    fn evaluate_retrieval(
        &self,
        ctx: &JobContext,
        task: &TaskDef,
        cfg: &TrainConfig,
        best: &Path,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<serde_json::Value, Failure> {
        check_retrieval(task, ctx.spec.kind)?;
        let spec = &ctx.spec;
        let root = self.data_root(spec);
        let device = self.device(ctx);
        let (_, config, tokenizer) = load_config_and_tokenizer(best, cfg.max_seq_len)?;
        let encoder = load_best_encoder(best, config.init(&device))?;
        let layer = cfg
            .retrieval_layer
            .unwrap_or_else(|| crate::retrieval::default_layer(encoder.num_layers()));
        let pred_dir = ctx.output_dir.join("predictions");
        std::fs::create_dir_all(&pred_dir).map_err(|e| TrainerError::io(&pred_dir, e))?;
        let mut metrics = serde_json::Map::new();
        let mut info = serde_json::Map::new();
        for (i, lang) in spec.languages.iter().enumerate() {
            if cancel.is_cancelled() {
                return Err(TrainerError::Cancelled.into());
            }
            progress.report(Progress {
                step: i as u64,
                total: spec.languages.len() as u64,
                loss: 0.0,
                phase: format!("evaluate {lang}"),
            });
            let Dataset::Retrieval(set) =
                load(task, Split::Test, lang, &root).map_err(task_failure)?
            else {
                return Err(TrainerError::Data(format!(
                    "{} test ({lang}): the reader did not return a retrieval set",
                    task.name
                ))
                .into());
            };
            let (pred, acc) =
                crate::retrieval::retrieve(&encoder, &config, &tokenizer, &set, layer, &device)?;
            let lines: Vec<String> = pred.iter().map(usize::to_string).collect();
            let file = pred_dir.join(format!("test-{lang}.tsv"));
            std::fs::write(&file, lines.join("\n") + "\n")
                .map_err(|e| TrainerError::io(&file, e))?;
            metrics.insert(lang.clone(), serde_json::json!({ "accuracy": acc }));
            info.insert(
                lang.clone(),
                serde_json::json!({"metrics_split": "test", "examples": pred.len(), "layer": layer}),
            );
        }
        write_eval_info(&ctx.output_dir, info)?;
        Ok(serde_json::Value::Object(metrics))
    }

    /// Dual-encoder evaluation: every language's queries against the one shared candidate pool,
    /// embedded once (`pool_chunk` candidates at a time), mAP@20 ×100 per language.
    fn evaluate_dual(
        &self,
        ctx: &JobContext,
        task: &TaskDef,
        cfg: &TrainConfig,
        best: &Path,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<serde_json::Value, Failure> {
        let spec = &ctx.spec;
        let root = self.data_root(spec);
        let device = self.device(ctx);
        let HeadKind::DualEncoder { pooling } = crate::checkpoint::read_head_kind(best)? else {
            return Err(Failure::permanent(
                FailureReason::User,
                format!(
                    "{}: the model was not trained as a dual encoder (task `{}` needs one)",
                    best.display(),
                    task.name
                ),
            ));
        };
        let (_, config, tokenizer) = load_config_and_tokenizer(best, cfg.max_seq_len)?;
        let mut encoder = load_best_encoder(best, config.init(&device))?;
        encoder.precision = cfg.precision;
        // Every language's queries; the pool is read with the first and must be the same for all.
        let mut pool: Option<(String, Vec<stilts_tasks::PoolCandidate>)> = None;
        let mut queries = Vec::new();
        let mut per_lang = Vec::new();
        for lang in &spec.languages {
            if cancel.is_cancelled() {
                return Err(TrainerError::Cancelled.into());
            }
            let Dataset::AnswerPool(p) =
                load(task, Split::Test, lang, &root).map_err(task_failure)?
            else {
                return Err(TrainerError::Data(format!(
                    "{} test ({lang}): the reader did not return a candidate pool",
                    task.name
                ))
                .into());
            };
            match &pool {
                None => pool = Some((lang.clone(), p.candidates)),
                Some((first, c)) => {
                    let same = c.len() == p.candidates.len()
                        && c.iter().zip(&p.candidates).all(|(a, b)| a.id == b.id);
                    if !same {
                        return Err(TrainerError::Data(format!(
                            "{} test: the candidate pool of `{lang}` ({} candidates) differs from that of `{first}` ({}); the languages of one job must share one pool",
                            task.name,
                            p.candidates.len(),
                            c.len()
                        )).into());
                    }
                }
            }
            per_lang.push((
                lang.clone(),
                queries.len()..queries.len() + p.queries.len(),
                p.gold,
            ));
            queries.extend(p.queries);
        }
        let Some((_, candidates)) = pool else {
            return Ok(serde_json::json!({}));
        };
        progress.report(Progress {
            step: 0,
            total: 1,
            loss: 0.0,
            phase: format!(
                "rank {} candidates for {} queries",
                candidates.len(),
                queries.len()
            ),
        });
        let opts = crate::dual::PoolOptions {
            batch: cfg.batch_size * 2,
            chunk: cfg.pool_chunk,
            pooling,
        };
        let ranked = crate::dual::rank_pool(
            &encoder,
            &config,
            &tokenizer,
            &queries,
            &candidates,
            opts,
            &device,
        )?;
        let pred_dir = ctx.output_dir.join("predictions");
        std::fs::create_dir_all(&pred_dir).map_err(|e| TrainerError::io(&pred_dir, e))?;
        let mut metrics = serde_json::Map::new();
        let mut info = serde_json::Map::new();
        for (lang, range, gold) in per_lang {
            let ranked = &ranked[range.clone()];
            let map = crate::dual::map_at_20(&gold, ranked);
            metrics.insert(lang.clone(), serde_json::json!({ "map@20": map }));
            let pred: serde_json::Map<String, serde_json::Value> = queries[range]
                .iter()
                .zip(ranked)
                .map(|(q, r)| {
                    let ids: Vec<&str> = r.iter().map(|&i| candidates[i].id.as_str()).collect();
                    (q.id.clone(), serde_json::json!(ids))
                })
                .collect();
            let file = pred_dir.join(format!("test-{lang}.json"));
            std::fs::write(&file, serde_json::Value::Object(pred).to_string())
                .map_err(|e| TrainerError::io(&file, e))?;
            info.insert(
                lang,
                serde_json::json!({"metrics_split": "test", "examples": gold.len(),
                    "pool": candidates.len(), "pool_chunk": cfg.pool_chunk}),
            );
        }
        write_eval_info(&ctx.output_dir, info)?;
        Ok(serde_json::Value::Object(metrics))
    }

    fn evaluate_job(
        &self,
        ctx: &JobContext,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<serde_json::Value, Failure> {
        let spec = &ctx.spec;
        let cfg = TrainConfig::from_recipe(&spec.recipe, spec.seed)?;
        let catalog = self.catalog_for(spec)?;
        let task = task(&catalog, &spec.task)?;
        let root = self.data_root(spec);
        let device = self.device(ctx);
        let best = self.parent_best(ctx)?.expect("evaluate jobs have a parent");
        if task.head == TaskHead::Retrieval {
            return self.evaluate_retrieval(ctx, task, &cfg, &best, progress, cancel);
        }
        if task.head == TaskHead::DualEncoder {
            return self.evaluate_dual(ctx, task, &cfg, &best, progress, cancel);
        }
        let (_, config, tokenizer) = load_config_and_tokenizer(&best, cfg.max_seq_len)?;
        let kind = crate::checkpoint::read_head_kind(&best)?;
        let encoder = load_best_encoder(&best, config.init(&device))?;
        let head = HeadConfig::new(config.hidden_size, kind.num_outputs()).init(&device);
        let (_, head) = load_best_head(&best, head)?;
        let mut model = TaskModel { encoder, head };
        // Scored in the precision it was trained and selected in.
        model.encoder.precision = cfg.precision;
        let pred_dir = ctx.output_dir.join("predictions");
        std::fs::create_dir_all(&pred_dir).map_err(|e| TrainerError::io(&pred_dir, e))?;

        let mut metrics = serde_json::Map::new();
        let mut info = serde_json::Map::new();
        let score = |split: Split, lang: &str| -> Result<(Vec<Example>, Vec<Vec<f32>>), Failure> {
            let data = load(task, split, lang, &root).map_err(task_failure)?;
            let what = format!("{} {split} ({lang})", task.name);
            let opts = Featurize {
                labels: &task.labels,
                windows: QaWindows::from_config(&cfg),
            };
            let ex = examples(&tokenizer, kind, &data, &opts, &what)?;
            let scores = score_examples(&model, kind, &ex, cfg.batch_size * 2, &config, &device)?;
            Ok((ex, scores))
        };
        let labelled = |ex: &[Example]| ex.iter().any(|e| e.target.is_labelled());
        for (i, lang) in spec.languages.iter().enumerate() {
            if cancel.is_cancelled() {
                return Err(TrainerError::Cancelled.into());
            }
            progress.report(Progress {
                step: i as u64,
                total: spec.languages.len() as u64,
                loss: 0.0,
                phase: format!("evaluate {lang}"),
            });
            let (test, test_scores) = score(Split::Test, lang)?;
            let lines = prediction_lines(kind, &test, &test_scores, &task.labels);
            let ext = if kind == HeadKind::SpanQa {
                "json"
            } else {
                "tsv"
            };
            let file = pred_dir.join(format!("test-{lang}.{ext}"));
            std::fs::write(&file, lines.join("\n") + "\n")
                .map_err(|e| TrainerError::io(&file, e))?;
            let (ex, scores, split) = if labelled(&test) {
                (test, test_scores, Split::Test)
            } else {
                let (dev, dev_scores) = score(Split::Dev, lang)?;
                (dev, dev_scores, Split::Dev)
            };
            let (_, m) = dev_metrics(kind, &ex, &scores, &eval_spec(task))?;
            metrics.insert(lang.clone(), m.into());
            info.insert(
                lang.clone(),
                serde_json::json!({"metrics_split": split.as_str(), "examples": ex.len()}),
            );
        }
        // Which split each language's metrics come from, beside the predictions.
        write_eval_info(&ctx.output_dir, info)?;
        Ok(serde_json::Value::Object(metrics))
    }
}
