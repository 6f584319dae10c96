//! Scoring examples with a trained model and turning scores into metrics (the official
//! implementations of `stilts-tasks`) and predictions.

use burn::prelude::*;
use rand::rngs::StdRng;
use stilts_tasks::metrics::squad::QaNormalization;
use stilts_tasks::metrics::{accuracy, pearson, seqeval_scores, spearman};

use crate::batch::length_buckets;
use crate::encoder::EncoderConfig;
use crate::error::{Result, TrainerError};
use crate::example::{Example, Scores, Target, batch_of};
use crate::heads::{HeadKind, TaskModel};

/// What metrics need besides scores: the task's labels (tag names) and its QA normalisation.
#[derive(Debug, Clone, Copy)]
pub struct EvalSpec<'a> {
    pub labels: &'a [String],
    pub qa_norm: QaNormalization,
}

impl Default for EvalSpec<'_> {
    fn default() -> Self {
        Self {
            labels: &[],
            qa_norm: QaNormalization::Squad,
        }
    }
}

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
        let tokens = batch_of(&batch, cfg);
        if let HeadKind::DualEncoder { pooling } = kind {
            // Query then candidate embedding of each pair.
            let emb = crate::dual::embed_batch(&model.encoder, &tokens, pooling, device);
            let [_, h] = emb.dims();
            let flat = to_vec(emb.into_data())?;
            for (row, &i) in idx.iter().enumerate() {
                out[i] = flat[row * 2 * h..(row + 1) * 2 * h].to_vec();
            }
            continue;
        }
        if let HeadKind::TokenClassification { .. } = kind {
            let logits = model.token_scores(&tokens, device);
            let [_, seq, c] = logits.dims();
            let flat = to_vec(logits.into_data())?;
            for (row, &i) in idx.iter().enumerate() {
                if let Target::Tags { starts, .. } = &examples[i].target {
                    for &p in starts {
                        let at = (row * seq + tokens.lead(row) + p) * c;
                        out[i].extend_from_slice(&flat[at..at + c]);
                    }
                }
            }
            continue;
        }
        if kind == HeadKind::SpanQa {
            let logits = model.token_scores(&tokens, device);
            let [_, seq, _] = logits.dims();
            let flat = to_vec(logits.into_data())?;
            for (row, &i) in idx.iter().enumerate() {
                let n = examples[i].inputs[0].len();
                let lead = tokens.lead(row);
                let at = |p: usize, k: usize| flat[(row * seq + lead + p) * 2 + k];
                out[i] = (0..n)
                    .map(|p| at(p, 0))
                    .chain((0..n).map(|p| at(p, 1)))
                    .collect();
            }
            continue;
        }
        let scores = model.scores(kind, &tokens, choices, device);
        let [b, n] = scores.dims();
        let flat = to_vec(scores.into_data())?;
        for (row, &i) in idx.iter().enumerate().take(b) {
            out[i] = flat[row * n..(row + 1) * n].to_vec();
        }
    }
    Ok(out)
}

fn to_vec(data: TensorData) -> Result<Vec<f32>> {
    data.try_to_vec::<f32>()
        .map_err(|e| TrainerError::Data(format!("reading scores: {e:?}")))
}

/// Predicted tags per sentence (segments re-merged, one tag per word) and, when every
/// sentence is labelled, the gold tags.
pub fn tag_sequences(
    examples: &[Example],
    scores: &Scores,
    labels: &[String],
) -> (Vec<Vec<String>>, Option<Vec<Vec<String>>>) {
    let c = labels.len().max(1);
    let (mut pred, mut gold): (Vec<Vec<String>>, Vec<Vec<String>>) = (Vec::new(), Vec::new());
    let mut labelled = true;
    let mut current = None;
    for (e, s) in examples.iter().zip(scores) {
        let Target::Tags { sentence, tags, .. } = &e.target else {
            continue;
        };
        if current != Some(*sentence) {
            current = Some(*sentence);
            pred.push(Vec::new());
            gold.push(Vec::new());
        }
        let name = |k: usize| labels.get(k).cloned().unwrap_or_else(|| k.to_string());
        let (p, g) = (
            pred.last_mut().expect("pushed"),
            gold.last_mut().expect("pushed"),
        );
        p.extend(s.chunks(c).map(|l| name(argmax(l))));
        match tags {
            Some(t) => g.extend(t.iter().map(|&k| name(k))),
            None => labelled = false,
        }
    }
    (pred, labelled.then_some(gold))
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
    spec: &EvalSpec,
) -> Result<(f64, serde_json::Map<String, serde_json::Value>)> {
    let mut m = serde_json::Map::new();
    let score = match kind {
        HeadKind::SpanQa => return crate::qa::qa_metrics(examples, scores, spec.qa_norm),
        HeadKind::DualEncoder { .. } => {
            let map = crate::dual::dev_map(examples, scores)?;
            m.insert("map@20".into(), map.into());
            map
        }
        HeadKind::TokenClassification { .. } => {
            let (pred, gold) = tag_sequences(examples, scores, spec.labels);
            let gold = gold.ok_or_else(|| TrainerError::Data("tags are unlabelled".into()))?;
            let s = seqeval_scores(&gold, &pred)
                .map_err(|e| TrainerError::Data(format!("seqeval: {e}")))?;
            m.insert("f1".into(), (s.f1 * 100.0).into());
            m.insert("precision".into(), (s.precision * 100.0).into());
            m.insert("recall".into(), (s.recall * 100.0).into());
            s.f1 * 100.0
        }
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
    Ok((score, m))
}

/// One prediction per example as the XTREME submission files write it: the class label (or
/// choice index), or the predicted value; for token classification one tag per line and an
/// empty line after each sentence; for span QA one line, the JSON object `{id: answer}`.
pub fn prediction_lines(
    kind: HeadKind,
    examples: &[Example],
    scores: &Scores,
    labels: &[String],
) -> Vec<String> {
    if kind == HeadKind::SpanQa {
        return vec![crate::qa::predictions_json(examples, scores)];
    }
    if let HeadKind::TokenClassification { .. } = kind {
        let (pred, _) = tag_sequences(examples, scores, labels);
        return pred
            .into_iter()
            .flat_map(|s| s.into_iter().chain([String::new()]))
            .collect();
    }
    scores
        .iter()
        .map(|s| match kind {
            HeadKind::Classification { .. } | HeadKind::TokenClassification { .. } => {
                let k = argmax(s);
                labels.get(k).cloned().unwrap_or_else(|| k.to_string())
            }
            HeadKind::MultipleChoice | HeadKind::SpanQa | HeadKind::DualEncoder { .. } => {
                argmax(s).to_string()
            }
            HeadKind::Regression => format!("{}", s[0]),
        })
        .collect()
}
