//! Token classification on real UD English sentences with all-MiniLM-L6-v2: first-sub-token
//! alignment, long sentences split and re-merged, a few training steps, seqeval evaluation,
//! and a target → evaluate chain through `BurnExecutor`.

mod common;

use std::path::Path;

use burn::prelude::*;
use stilts_common::job::{JobSpec, StageKind};
use stilts_tasks::example::{Dataset, TaggedSentence};
use stilts_tasks::{Catalog, Split, load};
use stilts_trainer::data::{Featurize, examples};
use stilts_trainer::evaluate::{
    EvalSpec, dev_metrics, prediction_lines, score_examples, tag_sequences,
};
use stilts_trainer::example::{Example, Target};
use stilts_trainer::heads::{HeadConfig, HeadKind, TaskModel};
use stilts_trainer::model::load_pretrained;
use stilts_trainer::recipe::TrainConfig;
use stilts_trainer::train::{TrainRun, train};
use stilts_trainer::{Backend, BurnExecutor};
use stilts_worker::executor::{CancelFlag, Executor, Progress, ProgressSink};

struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

fn ud(root: &Path, split: Split, n: usize) -> (Vec<TaggedSentence>, Vec<String>) {
    let catalog = Catalog::builtin();
    let task = catalog.get("udpos").unwrap();
    let Dataset::Tagging(mut v) = load(task, split, "en", root).unwrap() else {
        panic!("udpos is a tagging task");
    };
    v.truncate(n);
    (v, task.labels.clone())
}

/// Each sentence's words, in order, appear exactly once across its segments.
fn check_alignment(sentences: &[TaggedSentence], ex: &[Example], max_len: usize) {
    let mut words = vec![0usize; sentences.len()];
    for e in ex {
        assert!(e.inputs[0].len() <= max_len, "{} is too long", e.id);
        let Target::Tags {
            sentence,
            starts,
            tags,
        } = &e.target
        else {
            panic!("not a tag target");
        };
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
        assert!(starts.iter().all(|&p| p > 0 && p < e.inputs[0].len() - 1));
        assert_eq!(tags.as_ref().unwrap().len(), starts.len());
        words[*sentence] += starts.len();
    }
    for (s, n) in sentences.iter().zip(&words) {
        assert_eq!(s.tokens.len(), *n, "sentence {}", s.id);
    }
}

#[test]
fn udpos_alignment_training_and_evaluation() {
    let (Some(model_dir), Some(root)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let device = Device::flex();
    let (train_s, labels) = ud(&root, Split::Train, 16);
    let (dev_s, _) = ud(&root, Split::Dev, 8);
    let kind = HeadKind::TokenClassification {
        num_labels: labels.len(),
    };
    let opts = Featurize {
        labels: &labels,
        ..Default::default()
    };
    let eval = EvalSpec {
        labels: &labels,
        ..Default::default()
    };

    // A window of 12 tokens splits most sentences; every word is still scored once.
    let small = load_pretrained(model_dir.to_str().unwrap(), 12, &device).unwrap();
    let split = examples(
        &small.tokenizer,
        kind,
        &Dataset::Tagging(train_s.clone()),
        &opts,
        "ud train",
    )
    .unwrap();
    assert!(split.len() > train_s.len() + 8, "{} segments", split.len());
    check_alignment(&train_s, &split, 12);

    let cfg = TrainConfig {
        lr: 1e-4,
        batch_size: 4,
        epochs: 1,
        max_seq_len: 64,
        max_steps: Some(3),
        seed: 5,
        ..TrainConfig::default()
    };
    let pre = load_pretrained(model_dir.to_str().unwrap(), cfg.max_seq_len, &device).unwrap();
    let train_set = examples(
        &pre.tokenizer,
        kind,
        &Dataset::Tagging(train_s.clone()),
        &opts,
        "ud train",
    )
    .unwrap();
    check_alignment(&train_s, &train_set, 64);
    let dev = examples(
        &pre.tokenizer,
        kind,
        &Dataset::Tagging(dev_s.clone()),
        &opts,
        "ud dev",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let cancel = CancelFlag::new();
    let run = TrainRun {
        kind,
        train: &train_set,
        dev: &dev,
        config: &cfg,
        encoder_config: &pre.config,
        device: device.clone(),
        out: out.path(),
        base_dir: &pre.dir,
        eval,
        progress: &NoProgress,
        cancel: &cancel,
    };
    let head = HeadConfig::new(pre.config.hidden_size, labels.len()).init(&device);
    let model = TaskModel {
        encoder: pre.encoder,
        head,
    };
    let (model, outcome) = train(&run, model).unwrap();
    assert_eq!(outcome.steps, 3);
    assert!(outcome.final_loss.is_finite());
    assert!(outcome.dev.contains_key("f1"), "{:?}", outcome.dev);

    // Scoring the split segments of the small window re-merges to one tag per word.
    let scores = score_examples(&model, kind, &split, 8, &small.config, &device).unwrap();
    let (pred, gold) = tag_sequences(&split, &scores, &labels);
    let gold = gold.unwrap();
    assert_eq!(pred.len(), train_s.len());
    for ((p, g), s) in pred.iter().zip(&gold).zip(&train_s) {
        assert_eq!(p.len(), s.tokens.len());
        assert_eq!(g, s.tags.as_ref().unwrap());
        assert!(p.iter().all(|t| labels.contains(t)));
    }
    let (f1, m) = dev_metrics(kind, &split, &scores, &eval).unwrap();
    assert!((0.0..=100.0).contains(&f1), "{m:?}");
    let lines = prediction_lines(kind, &split, &scores, &labels);
    let words: usize = train_s.iter().map(|s| s.tokens.len()).sum();
    assert_eq!(lines.len(), words + train_s.len());
    assert_eq!(lines.iter().filter(|l| l.is_empty()).count(), train_s.len());
}

fn spec(kind: StageKind, model: &Path, root: &Path, parent: Option<&str>) -> JobSpec {
    let recipe = [
        ("batch_size", 8),
        ("max_steps", 2),
        ("epochs", 1),
        ("max_seq_len", 64),
        ("max_train_examples", 16),
    ];
    common::burn_spec(kind, "udpos", "en", (model, root), parent, &recipe)
}

#[test]
fn udpos_target_then_evaluate_through_the_executor() {
    let (Some(model), Some(root)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    let cancel = CancelFlag::new();
    let ctx = |key: &str, spec: JobSpec, input: Option<&str>| {
        common::job_ctx(dir.path(), key, spec, input)
    };
    let target = ctx("target", spec(StageKind::Target, &model, &root, None), None);
    let out = exec.run(&target, &NoProgress, &cancel).unwrap();
    assert!(out.metrics["train"]["phases"][0]["dev"]["f1"].is_number());

    let eval = ctx(
        "eval",
        spec(StageKind::Evaluate, &model, &root, Some("target")),
        Some("target"),
    );
    let out = exec.run(&eval, &NoProgress, &cancel).unwrap();
    let f1 = out.metrics["en"]["f1"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&f1));
    // One tag per word, a blank line after each sentence.
    let (test, _) = ud(&root, Split::Test, usize::MAX);
    let pred = std::fs::read_to_string(dir.path().join("eval/predictions/test-en.tsv")).unwrap();
    let sentences: Vec<&str> = pred.trim_end().split("\n\n").collect();
    assert_eq!(sentences.len(), test.len());
    for (p, s) in sentences.iter().zip(&test) {
        assert_eq!(p.lines().count(), s.tokens.len(), "sentence {}", s.id);
    }
}
