//! Real burn training on all-MiniLM-L6-v2 with tiny data: determinism and kill -9 / resume.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::prelude::*;
use stilts_trainer::evaluate::{EvalSpec, score_examples};
use stilts_trainer::example::{Example, Target};
use stilts_trainer::heads::{HeadConfig, HeadKind, TaskModel};
use stilts_trainer::model::load_pretrained;
use stilts_trainer::recipe::TrainConfig;
use stilts_trainer::tokenize::TextTokenizer;
use stilts_trainer::train::{TrainOutcome, TrainRun, train};
use stilts_worker::executor::{CancelFlag, Progress, ProgressSink};

struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

const POSITIVE: &[&str] = &[
    "I loved this film",
    "what a wonderful day",
    "the food was great",
    "an excellent, moving story",
    "she was happy with the result",
    "brilliant acting and a clever plot",
    "we had a lovely time",
    "this is the best book I have read",
];
const NEGATIVE: &[&str] = &[
    "I hated this film",
    "what a terrible day",
    "the food was awful",
    "a boring, pointless story",
    "she was angry about the result",
    "wooden acting and a silly plot",
    "we had a miserable time",
    "this is the worst book I have read",
];

fn sentiment(tok: &TextTokenizer) -> Vec<Example> {
    let mut out = Vec::new();
    for (i, (p, n)) in POSITIVE.iter().zip(NEGATIVE).enumerate() {
        for (text, label) in [(p, 1), (n, 0)] {
            out.push(Example {
                id: format!("{i}-{label}"),
                inputs: vec![tok.encode(text, None).unwrap()],
                target: Target::Class(label),
            });
        }
    }
    out
}

/// Trains MiniLM + a fresh 2-class head in `out`.
fn run_training(model_dir: &Path, out: &Path, cfg: &TrainConfig) -> (TrainOutcome, Vec<Vec<f32>>) {
    let device = Device::flex();
    let pre = load_pretrained(model_dir.to_str().unwrap(), cfg.max_seq_len, &device).unwrap();
    let data = sentiment(&pre.tokenizer);
    let (train_set, dev) = data.split_at(12);
    let kind = HeadKind::Classification { num_labels: 2 };
    let (model, outcome) = common::fit_head(&pre, kind, (train_set, dev), cfg, out);
    let scores = score_examples(&model, kind, &data, 8, &pre.config, &device).unwrap();
    (outcome, scores)
}

fn tiny_config(seed: u64) -> TrainConfig {
    TrainConfig {
        lr: 1e-4,
        batch_size: 4,
        epochs: 2,
        max_seq_len: 32,
        checkpoint_every: 2,
        grad_accum: 2,
        seed,
        ..Default::default()
    }
}

#[test]
fn same_seed_same_data_same_result() {
    let Some(dir) = common::minilm() else { return };
    let cfg = tiny_config(7);
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, sa) = run_training(&dir, a_dir.path(), &cfg);
    let (b, sb) = run_training(&dir, b_dir.path(), &cfg);
    // 12 examples / batch 4 = 3 micro-batches = 2 steps per epoch (accumulation 2), 2 epochs.
    assert_eq!(a.steps, 4);
    assert!(a.final_loss.is_finite());
    assert_eq!(a, b, "training outcome differs between identical runs");
    assert_eq!(sa, sb, "scores differ between identical runs");
    assert!(a_dir.path().join("best/encoder.bpk").is_file());
    // The seed matters (dropout, shuffling, head init): the test above is not vacuous.
    let c_dir = tempfile::tempdir().unwrap();
    let (_, sc) = run_training(&dir, c_dir.path(), &tiny_config(8));
    assert_ne!(sa, sc, "a different seed gave identical scores");
    assert!(a_dir.path().join("checkpoint/state.json").is_file());
}

const CHILD_ENV: &str = "STILTS_TRAINER_KILL_CHILD_OUT";

fn kill_config() -> TrainConfig {
    TrainConfig {
        epochs: 12,
        grad_accum: 1,
        checkpoint_every: 3,
        ..tiny_config(11)
    }
}

/// Child side of `kill_9_resumes_from_last_checkpoint`: does nothing unless the parent set
/// the environment variable.
#[test]
fn kill_child_entry() {
    let (Some(out), Some(dir)) = (std::env::var_os(CHILD_ENV), common::minilm()) else {
        return;
    };
    let (outcome, scores) = run_training(&dir, Path::new(&out), &kill_config());
    let json = serde_json::to_string(&scores).unwrap();
    std::fs::write(Path::new(&out).join("scores.json"), json).unwrap();
    println!("child finished at step {}", outcome.steps);
}

fn events(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("train_log.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn child(out: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "kill_child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, out);
    cmd
}

#[test]
fn kill_9_resumes_from_last_checkpoint() {
    let Some(_) = common::minilm() else { return };
    let out = tempfile::tempdir().unwrap();
    let mut first = child(out.path()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let state = out.path().join("checkpoint/state.json");
        if state.is_file() {
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "child ended before its first checkpoint"
        );
        assert!(Instant::now() < deadline, "no checkpoint within 10 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before = events(out.path());
    assert!(
        !before.iter().any(|e| e["event"] == "done"),
        "child finished before the kill"
    );

    let status = child(out.path()).status().unwrap();
    assert!(status.success());
    let after = events(out.path());
    let starts: Vec<u64> = after
        .iter()
        .filter(|e| e["event"] == "start")
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.len(), 2, "{after:?}");
    assert_eq!(starts[0], 0);
    assert!(starts[1] > 0, "second run did not resume: {after:?}");
    let total = after[0]["total"].as_u64().unwrap();
    let done = after
        .iter()
        .find(|e| e["event"] == "done")
        .expect("finished");
    assert_eq!(done["step"].as_u64().unwrap(), total);
    eprintln!(
        "killed after a checkpoint; resumed at step {} of {total}",
        starts[1]
    );
}

/// Multiple choice (softmax over per-choice scores) and regression heads train and score.
#[test]
fn multiple_choice_and_regression_heads_train() {
    let Some(dir) = common::minilm() else { return };
    let device = Device::flex();
    let cfg = TrainConfig {
        max_steps: Some(2),
        ..tiny_config(3)
    };
    let pre = load_pretrained(dir.to_str().unwrap(), 32, &device).unwrap();
    let tok = &pre.tokenizer;
    let mc: Vec<Example> = (0..8)
        .map(|i| Example {
            id: format!("mc{i}"),
            inputs: ["it rained", "the sun was out", "it snowed"]
                .iter()
                .map(|c| tok.encode("The streets were wet because", Some(c)).unwrap())
                .collect(),
            target: Target::Class(i % 3),
        })
        .collect();
    let reg: Vec<Example> = POSITIVE
        .iter()
        .zip(NEGATIVE)
        .enumerate()
        .map(|(i, (a, b))| Example {
            id: format!("r{i}"),
            inputs: vec![tok.encode(a, Some(b)).unwrap()],
            target: Target::Score(i as f32 / 2.0),
        })
        .collect();
    for (kind, data, width) in [
        (HeadKind::MultipleChoice, &mc, 3),
        (HeadKind::Regression, &reg, 1),
    ] {
        let out = tempfile::tempdir().unwrap();
        let (model, outcome) = common::fit_head(&pre, kind, (data, &data[..4]), &cfg, out.path());
        assert_eq!(outcome.steps, 2);
        assert!(outcome.final_loss.is_finite());
        let metric = if kind == HeadKind::Regression {
            "pearson"
        } else {
            "accuracy"
        };
        assert!(outcome.dev.contains_key(metric), "{:?}", outcome.dev);
        let scores = score_examples(&model, kind, data, 4, &pre.config, &device).unwrap();
        assert!(scores.iter().all(|s| s.len() == width));
    }
}

/// A cancelled job stops between steps with `Cancelled`.
#[test]
fn cancel_stops_between_steps() {
    let Some(dir) = common::minilm() else { return };
    let device = Device::flex();
    let pre = load_pretrained(dir.to_str().unwrap(), 32, &device).unwrap();
    let data = sentiment(&pre.tokenizer);
    let out = tempfile::tempdir().unwrap();
    let cancel = CancelFlag::new();
    cancel.cancel();
    let cfg = tiny_config(1);
    let run = TrainRun {
        kind: HeadKind::Classification { num_labels: 2 },
        train: &data,
        dev: &[],
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
    let err = train(
        &run,
        TaskModel {
            encoder: pre.encoder,
            head,
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, stilts_trainer::TrainerError::Cancelled),
        "{err}"
    );
}
