//! Extractive QA on real SQuAD v1.1 and XQuAD questions with all-MiniLM-L6-v2: doc-stride
//! windows cover every answer, decoding maps spans back to context substrings, a few training
//! steps, and a target (xquad, trained on SQuAD) → evaluate (de) chain through `BurnExecutor`.

mod common;

use std::path::Path;

use burn::prelude::*;
use stilts_common::job::{JobSpec, StageKind};
use stilts_tasks::example::{Dataset, QaExample};
use stilts_tasks::{Catalog, Split, load};
use stilts_trainer::data::{Featurize, examples};
use stilts_trainer::evaluate::{EvalSpec, dev_metrics, score_examples};
use stilts_trainer::example::{Example, Target};
use stilts_trainer::heads::{HeadConfig, HeadKind, TaskModel};
use stilts_trainer::model::load_pretrained;
use stilts_trainer::qa::{QaWindows, decode, spans};
use stilts_trainer::recipe::TrainConfig;
use stilts_trainer::train::{TrainRun, train};
use stilts_trainer::{Backend, BurnExecutor};
use stilts_worker::executor::{CancelFlag, Executor, Progress, ProgressSink};

struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

fn qa(root: &Path, task: &str, split: Split, lang: &str, n: usize) -> Vec<QaExample> {
    let catalog = Catalog::builtin();
    let Dataset::Qa(mut v) = load(catalog.get(task).unwrap(), split, lang, root).unwrap() else {
        panic!("{task} is a QA task");
    };
    v.truncate(n);
    v
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn window_starts_cover_the_context() {
    assert_eq!(spans(0, 10, 4), vec![(0, 0)]);
    assert_eq!(spans(10, 10, 4), vec![(0, 10)]);
    assert_eq!(
        spans(25, 10, 4),
        vec![(0, 10), (4, 10), (8, 10), (12, 10), (16, 9)]
    );
}

#[test]
fn windows_cover_answers_and_decoding_returns_context_text() {
    let (Some(model_dir), Some(root)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let device = Device::flex();
    let mut questions = qa(&root, "xquad", Split::Test, "de", 12);
    questions.extend(qa(&root, "squad", Split::Train, "en", 12));
    // Short windows so long contexts need several.
    let windows = QaWindows {
        max_len: 128,
        doc_stride: 48,
        max_query_len: 32,
    };
    let pre = load_pretrained(model_dir.to_str().unwrap(), 128, &device).unwrap();
    let opts = Featurize {
        windows,
        ..Default::default()
    };
    let data = Dataset::Qa(questions.clone());
    let ex = examples(&pre.tokenizer, HeadKind::SpanQa, &data, &opts, "qa").unwrap();
    assert!(ex.len() > questions.len() + 5, "{} windows", ex.len());
    for (i, q) in questions.iter().enumerate() {
        let mine: Vec<_> = ex
            .iter()
            .filter_map(|e| match &e.target {
                Target::Span(t) if t.question == i => Some((e, t)),
                _ => None,
            })
            .collect();
        assert!(!mine.is_empty());
        let mut found = false;
        for (e, t) in &mine {
            assert!(e.inputs[0].len() <= 128);
            let (s, en) = t.gold.unwrap();
            if (s, en) == (0, 0) {
                continue;
            }
            found = true;
            let (a, b) = (t.chars[s].unwrap().0, t.chars[en].unwrap().1);
            let span: String = q.context.chars().skip(a).take(b - a).collect();
            assert!(
                squash(&span).contains(&squash(&q.answers[0].0)),
                "{}: window span `{span}` vs answer `{}`",
                q.id,
                q.answers[0].0
            );
        }
        assert!(found, "{}: no window holds the answer", q.id);
    }

    // Oracle logits at the gold span of every window decode to the gold answer.
    let oracle: Vec<Vec<f32>> = ex
        .iter()
        .map(|e| {
            let Target::Span(t) = &e.target else { panic!() };
            let n = t.chars.len();
            let mut v = vec![0.0; 2 * n];
            if let Some((s, en)) = t.gold.filter(|&g| g != (0, 0)) {
                v[s] = 10.0;
                v[n + en] = 10.0;
            }
            v
        })
        .collect();
    let (f1, m) = dev_metrics(HeadKind::SpanQa, &ex, &oracle, &EvalSpec::default()).unwrap();
    assert!(f1 > 99.0, "{m:?}");

    // A trained-for-3-steps model: every decoded answer is a substring of its context.
    let cfg = TrainConfig {
        lr: 1e-4,
        batch_size: 4,
        epochs: 1,
        max_seq_len: 128,
        max_steps: Some(3),
        seed: 2,
        ..TrainConfig::default()
    };
    let train_set: Vec<Example> = ex.iter().skip(ex.len() / 2).cloned().collect();
    let out = tempfile::tempdir().unwrap();
    let cancel = CancelFlag::new();
    let run = TrainRun {
        kind: HeadKind::SpanQa,
        train: &train_set,
        dev: &ex[..8],
        config: &cfg,
        encoder_config: &pre.config,
        device: device.clone(),
        out: out.path(),
        base_dir: &pre.dir,
        eval: EvalSpec::default(),
        progress: &NoProgress,
        cancel: &cancel,
    };
    let head = HeadConfig::new(pre.config.hidden_size, 2).init(&device);
    let model = TaskModel {
        encoder: pre.encoder,
        head,
    };
    let (model, outcome) = train(&run, model).unwrap();
    assert_eq!(outcome.steps, 3);
    assert!(outcome.final_loss.is_finite());
    assert!(outcome.dev.contains_key("exact_match"), "{:?}", outcome.dev);
    let scores = score_examples(&model, HeadKind::SpanQa, &ex, 8, &pre.config, &device).unwrap();
    let answers = decode(&ex, &scores);
    assert_eq!(answers.len(), questions.len());
    for ((id, a), q) in answers.iter().zip(&questions) {
        assert_eq!(id, &q.id);
        assert!(q.context.contains(a.as_str()), "{id}: `{a}`");
    }
}

fn spec(kind: StageKind, model: &Path, root: &Path, parent: Option<&str>) -> JobSpec {
    let recipe = [
        ("batch_size", 8),
        ("max_steps", 2),
        ("epochs", 1),
        ("max_seq_len", 192),
        ("doc_stride", 64),
        ("max_train_examples", 16),
    ];
    common::burn_spec(kind, "xquad", "de", (model, root), parent, &recipe)
}

#[test]
fn xquad_target_then_evaluate_through_the_executor() {
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
    assert_eq!(out.metrics["train"]["phases"][0]["task"], "squad");

    let eval = ctx(
        "eval",
        spec(StageKind::Evaluate, &model, &root, Some("target")),
        Some("target"),
    );
    let out = exec.run(&eval, &NoProgress, &cancel).unwrap();
    let em = out.metrics["de"]["exact_match"].as_f64().unwrap();
    let f1 = out.metrics["de"]["f1"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&em) && em <= f1 + 1e-9);
    let pred = std::fs::read_to_string(dir.path().join("eval/predictions/test-de.json")).unwrap();
    let pred: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&pred).unwrap();
    let questions = qa(&root, "xquad", Split::Test, "de", usize::MAX);
    assert_eq!(pred.len(), questions.len());
    for q in &questions {
        let a = pred[&q.id].as_str().unwrap();
        assert!(q.context.contains(a), "{}: `{a}`", q.id);
    }
}
