//! The training loop: AdamW (no weight decay on biases and LayerNorm), linear warmup and decay,
//! global gradient-norm clipping, gradient accumulation, length-bucketed batches, periodic
//! resumable checkpoints, model selection on the English dev split. Runs on the calling thread.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use stilts_worker::executor::{CancelFlag, Point, Progress, ProgressSink};

use crate::batch::{Padding, TokenBatch, train_batches};
use crate::checkpoint::{
    TrainState, latest_checkpoint, load_checkpoint, save_best, save_checkpoint,
};
use crate::encoder::EncoderConfig;
use crate::error::{Result, TrainerError};
use crate::evaluate::{EvalSpec, dev_metrics, score_examples};
use crate::example::{Example, Scores, Target};
use crate::heads::{HeadKind, TaskModel, cross_entropy, masked_cross_entropy, mse};
use crate::recipe::TrainConfig;
use crate::seed::derive_seed;
use crate::tokenize::Encoded;

/// Everything one training run needs besides the model.
pub struct TrainRun<'a> {
    pub kind: HeadKind,
    pub train: &'a [Example],
    /// English dev split for model selection; may be empty (the last model is kept).
    pub dev: &'a [Example],
    pub config: &'a TrainConfig,
    pub encoder_config: &'a EncoderConfig,
    /// Plain (non-autodiff) device; training runs on its autodiff twin.
    pub device: Device,
    /// The job's output directory: `checkpoint/`, `best/`, `train_log.jsonl`.
    pub out: &'a Path,
    /// Base model directory (config.json and tokenizer.json are copied into `best/`).
    pub base_dir: &'a Path,
    /// What dev evaluation needs besides the scores (tag names, QA normalisation).
    pub eval: EvalSpec<'a>,
    pub progress: &'a dyn ProgressSink,
    pub cancel: &'a CancelFlag,
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// Step the run started from (> 0 when it resumed a checkpoint).
    pub start_step: u64,
    pub steps: u64,
    pub final_loss: f64,
    pub best_step: Option<u64>,
    pub dev: serde_json::Map<String, serde_json::Value>,
    /// Non-padding tokens of the micro-batches trained in this run (not counting resumed steps).
    pub real_tokens: u64,
    /// All tokens (padding included) of those micro-batches: the sequence positions computed.
    pub padded_tokens: u64,
}

fn loss_of(
    model: &TaskModel,
    cfg: &TrainConfig,
    kind: HeadKind,
    batch: &[&Example],
    tokens: &TokenBatch,
    device: &Device,
) -> Result<Tensor<1>> {
    let choices = batch[0].inputs.len();
    match kind {
        HeadKind::DualEncoder { pooling } => {
            let emb = crate::dual::embed_batch(&model.encoder, tokens, pooling, device);
            crate::dual::in_batch_loss(emb, batch, cfg.temperature, cfg.symmetric)
        }
        HeadKind::Classification { .. } | HeadKind::MultipleChoice => {
            let scores = model.scores(kind, tokens, choices, device);
            let targets = batch
                .iter()
                .map(|e| match &e.target {
                    Target::Class(c) if *c < scores.dims()[1] => Ok(*c),
                    other => Err(TrainerError::Data(format!(
                        "example {}: target {other:?} does not fit a head with {} outputs",
                        e.id,
                        scores.dims()[1]
                    ))),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(cross_entropy(scores, &targets))
        }
        HeadKind::Regression => {
            let scores = model.scores(kind, tokens, choices, device);
            let targets = batch
                .iter()
                .map(|e| match &e.target {
                    Target::Score(s) => Ok(*s),
                    other => Err(TrainerError::Data(format!(
                        "example {}: regression needs a score, got {other:?}",
                        e.id
                    ))),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(mse(scores, &targets))
        }
        HeadKind::TokenClassification { num_labels } => {
            let logits = model.token_scores(tokens, device);
            let [b, seq, c] = logits.dims();
            let mut targets = vec![None; b * seq];
            for (row, e) in batch.iter().enumerate() {
                let Target::Tags {
                    starts,
                    tags: Some(tags),
                    ..
                } = &e.target
                else {
                    return Err(TrainerError::Data(format!(
                        "example {}: token classification needs gold tags",
                        e.id
                    )));
                };
                let lead = tokens.lead(row);
                for (&p, &t) in starts.iter().zip(tags) {
                    let p = lead + p;
                    if t >= num_labels || p >= seq {
                        return Err(TrainerError::Data(format!(
                            "example {}: tag {t} at position {p} does not fit",
                            e.id
                        )));
                    }
                    targets[row * seq + p] = Some(t);
                }
            }
            Ok(masked_cross_entropy(logits.reshape([b * seq, c]), &targets))
        }
        HeadKind::SpanQa => {
            let logits = model.token_scores(tokens, device);
            let [b, seq, _] = logits.dims();
            let (mut starts, mut ends) = (Vec::new(), Vec::new());
            for (row, e) in batch.iter().enumerate() {
                let lead = tokens.lead(row);
                match &e.target {
                    Target::Span(t) if t.gold.is_some_and(|(s, e)| s <= e && lead + e < seq) => {
                        let (s, e) = t.gold.expect("checked");
                        starts.push(lead + s);
                        ends.push(lead + e);
                    }
                    _ => {
                        return Err(TrainerError::Data(format!(
                            "example {}: span QA needs a gold span inside the window",
                            e.id
                        )));
                    }
                }
            }
            let start = logits.clone().slice([0..b, 0..seq, 0..1]).reshape([b, seq]);
            let end = logits.slice([0..b, 0..seq, 1..2]).reshape([b, seq]);
            Ok((cross_entropy(start, &starts) + cross_entropy(end, &ends)).div_scalar(2.0))
        }
    }
}

/// AdamW over all parameters, with a second group without weight decay for biases (XLNet's
/// attention biases `r_w_bias`, `r_r_bias`, `r_s_bias` included, as HF's `"bias" in name`) and
/// LayerNorm (gamma/beta).
fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let adamw = |wd: f64| {
        AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(wd as f32)
    };
    adamw(cfg.weight_decay)
        .init()
        .with_group(no_decay(), adamw(0.0).build(), None)
}

/// The parameters trained without weight decay.
fn no_decay() -> ParamGroup {
    ParamGroup::from_regex(r"(\.bias|\.r_[wrs]_bias|\.gamma|\.beta)$").expect("valid regex")
}

/// Sums of squared gradients of every float parameter.
struct GradNorm<'a> {
    grads: &'a GradientsParams,
    sum_sq: f64,
}

impl ModuleVisitor for GradNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.sum_sq += g.powf_scalar(2.0).sum().into_scalar::<f32>() as f64;
        }
    }
}

/// Scales every gradient by a factor.
struct GradScale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for GradScale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Clips the global L2 norm of all gradients to `max_norm` (as PyTorch's `clip_grad_norm_`);
/// returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let mut norm = GradNorm { grads, sum_sq: 0.0 };
    model.visit(&mut norm);
    let total = norm.sum_sq.sqrt();
    if max_norm > 0.0 && total > max_norm {
        model.visit(&mut GradScale {
            grads,
            factor: max_norm / (total + 1e-6),
        });
    }
    total
}

fn log_event(out: &Path, event: serde_json::Value) -> Result<()> {
    use std::io::Write;
    let path = out.join("train_log.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| TrainerError::io(&path, e))?;
    writeln!(f, "{event}").map_err(|e| TrainerError::io(&path, e))
}

/// Trains `model` (encoder + fresh head), resuming from `run.out/checkpoint/` if one exists.
/// Returns the selected (best on dev, else last) model on the plain device.
pub fn train(run: &TrainRun, model: TaskModel) -> Result<(TaskModel, TrainOutcome)> {
    let cfg = run.config;
    if run.train.is_empty() {
        return Err(TrainerError::Data("the training split is empty".into()));
    }
    std::fs::create_dir_all(run.out).map_err(|e| TrainerError::io(run.out, e))?;
    let device = run.device.clone().autodiff();
    let mut model = model.fork(&device).train();
    let mut optim = optimizer(cfg);

    let batches_per_epoch = run.train.len().div_ceil(cfg.batch_size) as u64;
    let steps_per_epoch = batches_per_epoch.div_ceil(cfg.grad_accum as u64);
    let mut total = steps_per_epoch * cfg.epochs as u64;
    if let Some(max) = cfg.max_steps {
        total = total.min(max);
    }
    let mut state = TrainState {
        step: 0,
        total,
        seed: cfg.seed,
        best_score: None,
        best_step: None,
        best_metrics: Default::default(),
        last_loss: f64::NAN,
    };
    if let Some(dir) = latest_checkpoint(run.out) {
        let (m, o, s) = load_checkpoint(&dir, model, optim)?;
        if s.total != total || s.seed != cfg.seed {
            return Err(TrainerError::checkpoint(
                &dir,
                format!(
                    "was written by a different run (total {} seed {})",
                    s.total, s.seed
                ),
            ));
        }
        (model, optim, state) = (m.fork(&device).train(), o, s);
    }
    model.encoder.precision = cfg.precision;
    let start_step = state.step;
    log_event(
        run.out,
        serde_json::json!({"event": "start", "step": start_step, "total": total}),
    )?;
    tracing::info!(start_step, total, "training");

    let lengths: Vec<usize> = run.train.iter().map(Example::max_len).collect();
    // A multi-task mixture draws each batch from one task, by weight.
    let groups: Vec<usize> = run.train.iter().map(crate::dual::group_of).collect();
    // Fixed padding: every sequence padded to the length the tokenizer truncates to.
    let min_seq = match cfg.padding {
        Padding::Bucket => 1,
        Padding::Fixed => cfg
            .max_seq_len
            .min(crate::model::max_model_len(run.encoder_config)),
    };
    let (mut real_tokens, mut padded_tokens) = (0u64, 0u64);
    let mut accum = GradientsAccumulator::<TaskModel>::new();
    while state.step < total {
        let epoch = state.step / steps_per_epoch;
        let mut rng = StdRng::seed_from_u64(derive_seed(cfg.seed, 1, epoch));
        let batches = if cfg.mixture.len() > 1 {
            crate::dual::mixture_batches(&lengths, &groups, &cfg.mixture, cfg.batch_size, &mut rng)
        } else {
            train_batches(&lengths, cfg.batch_size, cfg.padding, &mut rng)
        };
        let first = ((state.step % steps_per_epoch) * cfg.grad_accum as u64) as usize;
        for group in batches[first..].chunks(cfg.grad_accum) {
            if run.cancel.is_cancelled() {
                return Err(TrainerError::Cancelled);
            }
            let mut loss_sum = 0.0;
            for (j, idx) in group.iter().enumerate() {
                crate::dropout::seed(&device, derive_seed(cfg.seed, 2 + state.step, j as u64));
                let examples: Vec<&Example> = idx.iter().map(|&i| &run.train[i]).collect();
                let seqs: Vec<&Encoded> = examples.iter().flat_map(|e| e.inputs.iter()).collect();
                let tokens = TokenBatch::padded_to(&seqs, run.encoder_config, min_seq);
                real_tokens += tokens.real_tokens() as u64;
                padded_tokens += (tokens.batch * tokens.seq) as u64;
                let loss = loss_of(&model, cfg, run.kind, &examples, &tokens, &device)?;
                let loss = loss.div_scalar(group.len() as f64);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                loss_sum += loss.into_scalar::<f32>() as f64;
                accum.accumulate(&model, grads);
            }
            let mut grads = accum.grads();
            let grad_norm = clip_global_norm(&model, &mut grads, cfg.max_grad_norm);
            let lr = cfg.lr_at(state.step + 1, total);
            model = optim.step(lr, model, grads);
            state.step += 1;
            state.last_loss = loss_sum;
            // The curve gets the point before a bad loss ends the job, so it shows where.
            run.progress.point(Point {
                step: state.step,
                loss: Some(loss_sum),
                lr: Some(lr),
                grad_norm: Some(grad_norm),
                dev: None,
            });
            if !loss_sum.is_finite() {
                return Err(TrainerError::Data(format!(
                    "loss is {loss_sum} at step {}",
                    state.step
                )));
            }
            run.progress.report(Progress {
                step: state.step,
                total,
                loss: loss_sum,
                phase: "train".into(),
            });
            let epoch_end = state.step.is_multiple_of(steps_per_epoch) || state.step == total;
            if epoch_end {
                select(run, &model, &mut state)?;
            }
            if epoch_end || state.step.is_multiple_of(cfg.checkpoint_every) {
                save_checkpoint(run.out, &model, &optim, &state)?;
                log_event(
                    run.out,
                    serde_json::json!({"event": "checkpoint", "step": state.step}),
                )?;
            }
            if state.step == total || epoch_end {
                break;
            }
        }
    }
    log_event(
        run.out,
        serde_json::json!({"event": "done", "step": state.step,
            "real_tokens": real_tokens, "padded_tokens": padded_tokens}),
    )?;
    let best = crate::checkpoint::best_dir(run.out);
    let plain = run.device.clone();
    let mut final_model = model.valid().fork(&plain);
    if best.join("encoder.bpk").is_file() {
        final_model.encoder = crate::checkpoint::load_best_encoder(&best, final_model.encoder)?;
        final_model.head = crate::checkpoint::load_best_head(&best, final_model.head)?.1;
    }
    Ok((
        final_model,
        TrainOutcome {
            start_step,
            steps: state.step,
            final_loss: state.last_loss,
            best_step: state.best_step,
            dev: state.best_metrics.clone(),
            real_tokens,
            padded_tokens,
        },
    ))
}

/// Evaluates on dev and saves `best/` if the selection score improved (or there is no dev
/// split, in which case the latest model is kept).
fn select(run: &TrainRun, model: &TaskModel, state: &mut TrainState) -> Result<()> {
    let plain = run.device.clone();
    let eval_model = model.valid().fork(&plain);
    let (score, metrics) = if run.dev.is_empty() {
        (None, serde_json::Map::new())
    } else {
        let scores: Scores = score_examples(
            &eval_model,
            run.kind,
            run.dev,
            run.config.batch_size * 2,
            run.encoder_config,
            &plain,
        )?;
        let (score, metrics) = dev_metrics(run.kind, run.dev, &scores, &run.eval)?;
        run.progress.point(Point {
            step: state.step,
            dev: Some(score),
            ..Point::default()
        });
        (Some(score), metrics)
    };
    let improved = match (score, state.best_score) {
        (Some(s), Some(best)) => s > best,
        _ => true,
    };
    log_event(
        run.out,
        serde_json::json!({"event": "dev", "step": state.step, "metrics": metrics}),
    )?;
    if improved {
        save_best(run.out, &eval_model, run.kind, &metrics, run.base_dir)?;
        state.best_score = score;
        state.best_step = Some(state.step);
        state.best_metrics = metrics;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::module::ParamId;
    use burn::store::ModuleSnapshot;

    use super::*;
    use crate::xlnet::XlnetConfig;

    /// Biases (XLNet's three attention biases too) and LayerNorm parameters, and nothing else.
    #[test]
    fn no_decay_holds_biases_and_norms_of_both_families() {
        let device = Device::flex();
        let bert = EncoderConfig::new(20, 8, 1, 2, 16, 10, 2);
        let xlnet = bert.clone().with_xlnet(Some(XlnetConfig::new(4)));
        let group = no_decay();
        for cfg in [bert, xlnet] {
            let names: Vec<String> = cfg
                .init(&device)
                .collect(None, None, false)
                .into_iter()
                .map(|t| t.name)
                .collect();
            for name in &names {
                let last = name.rsplit('.').next().unwrap();
                let want = last.ends_with("bias") || last == "gamma" || last == "beta";
                assert_eq!(group.matches(&ParamId::new(), Some(name)), want, "{name}");
            }
            assert!(names.len() > 10);
        }
        assert!(group.matches(&ParamId::new(), Some("xlnet.layer.0.rel_attn.r_s_bias")));
    }
}
