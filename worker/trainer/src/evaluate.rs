//! Scoring examples with a trained model and turning scores into metrics (the official
//! implementations of `stilts-tasks`) and predictions.

use burn::prelude::*;
use rand::rngs::StdRng;
use stilts_tasks::metrics::{accuracy, pearson, spearman};

use crate::batch::length_buckets;
use crate::encoder::EncoderConfig;
use crate::error::{Result, TrainerError};
use crate::heads::{HeadKind, TaskModel};
use crate::train::{Example, Target, batch_of};

/// Head outputs per example, in the examples' order: class logits, choice scores, or one value.
pub type Scores = Vec<Vec<f32>>;

/// Runs `model` (on a plain device, no dropout) over `examples`, batched by length.
pub fn score_examples(
    model: &TaskModel,
    kind: HeadKind,
    examples: &[Example],
    batch_size: usize,
    cfg: &EncoderConfig,
    device: &Device,
) -> Result<Scores> {
    let lengths: Vec<usize> = examples.iter().map(Example::max_len).collect();
    let mut out = vec![Vec::new(); examples.len()];
    for idx in length_buckets::<StdRng>(&lengths, batch_size, None) {
        let batch: Vec<&Example> = idx.iter().map(|&i| &examples[i]).collect();
        let choices = batch[0].inputs.len();
        if batch.iter().any(|e| e.inputs.len() != choices) {
            return Err(TrainerError::Data(format!(
                "examples {} and {} have different numbers of choices",
                batch[0].id,
                batch
                    .iter()
                    .find(|e| e.inputs.len() != choices)
                    .map_or("?", |e| &e.id)
            )));
        }
        let scores = model.scores(kind, &batch_of(&batch, cfg), choices, device);
        let [b, n] = scores.dims();
        let flat: Vec<f32> = scores
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| TrainerError::Data(format!("reading scores: {e:?}")))?;
        for (row, &i) in idx.iter().enumerate().take(b) {
            out[i] = flat[row * n..(row + 1) * n].to_vec();
        }
    }
    Ok(out)
}

/// Index of the largest score.
pub fn argmax(scores: &[f32]) -> usize {
    scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Metrics over labelled examples, ×100 like the official XTREME scripts, and the model
/// selection score (accuracy, or Pearson for regression).
pub fn dev_metrics(
    kind: HeadKind,
    examples: &[Example],
    scores: &Scores,
) -> (f64, serde_json::Map<String, serde_json::Value>) {
    let mut m = serde_json::Map::new();
    let score = match kind {
        HeadKind::Classification { .. } | HeadKind::MultipleChoice => {
            let (mut pred, mut gold) = (Vec::new(), Vec::new());
            for (e, s) in examples.iter().zip(scores) {
                if let Target::Class(c) = e.target {
                    pred.push(argmax(s));
                    gold.push(c);
                }
            }
            let acc = accuracy(&gold, &pred).unwrap_or(0.0) * 100.0;
            m.insert("accuracy".into(), acc.into());
            acc
        }
        HeadKind::Regression => {
            let (mut pred, mut gold) = (Vec::new(), Vec::new());
            for (e, s) in examples.iter().zip(scores) {
                if let Target::Score(y) = e.target {
                    pred.push(s[0] as f64);
                    gold.push(y as f64);
                }
            }
            let p = pearson(&pred, &gold).unwrap_or(0.0) * 100.0;
            let s = spearman(&pred, &gold).unwrap_or(0.0) * 100.0;
            m.insert("pearson".into(), p.into());
            m.insert("spearman".into(), s.into());
            p
        }
    };
    (score, m)
}

/// One prediction per example as the XTREME submission files write it: the class label (or
/// choice index), or the predicted value.
pub fn prediction_lines(kind: HeadKind, scores: &Scores, labels: &[String]) -> Vec<String> {
    scores
        .iter()
        .map(|s| match kind {
            HeadKind::Classification { .. } => {
                let k = argmax(s);
                labels.get(k).cloned().unwrap_or_else(|| k.to_string())
            }
            HeadKind::MultipleChoice => argmax(s).to_string(),
            HeadKind::Regression => format!("{}", s[0]),
        })
        .collect()
}
