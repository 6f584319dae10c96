//! The full chain through `BurnExecutor` on the synthetic demo corpus of `stilts-tasks`:
//! intermediate (demo-nli) → target (demo-nli-x, encoder only from the parent) → evaluate
//! (en, de), with all-MiniLM-L6-v2, a few steps each.

mod common;

use std::path::Path;
use std::sync::Mutex;

use stilts_common::job::{ExecutorSpec, JobSpec, Recipe, StageKind};
use stilts_trainer::{Backend, BurnExecutor};
use stilts_worker::executor::{CancelFlag, Executor, JobContext, Progress, ProgressSink};

/// burn-flex's generator is one per process: tests that train take turns, so one test's random
/// draws cannot land between another's seeding and its head initialisation.
static TRAINING: Mutex<()> = Mutex::new(());

#[derive(Default)]
struct Record(Mutex<Vec<Progress>>);
impl ProgressSink for Record {
    fn report(&self, p: Progress) {
        self.0.lock().unwrap().push(p);
    }
}

fn spec(
    kind: StageKind,
    task: &str,
    model: &Path,
    parent: Option<&str>,
    langs: &[&str],
) -> JobSpec {
    let mut recipe = Recipe::new();
    for (k, v) in [
        ("batch_size", 8),
        ("max_steps", 3),
        ("epochs", 1),
        ("max_seq_len", 64),
    ] {
        recipe.insert(k.into(), v.into());
    }
    recipe.insert("max_train_examples".into(), 24.into());
    recipe.insert("lr".into(), serde_json::json!(5e-5));
    JobSpec {
        kind,
        model: "minilm".into(),
        model_source: model.to_string_lossy().into(),
        task: task.into(),
        intermediate: "demo-nli".into(),
        languages: langs.iter().map(|s| s.to_string()).collect(),
        seed: 1,
        recipe,
        executor: ExecutorSpec::Burn,
        parent: parent.map(String::from),
        data_version: "demo".into(),
        code_version: "test".into(),
        task_defs: Default::default(),
    }
}

fn ctx(root: &Path, key: &str, spec: JobSpec, input: Option<&str>) -> JobContext {
    JobContext {
        key: key.into(),
        attempt: 1,
        spec,
        input_dir: input.map(|i| root.join(i)),
        output_dir: root.join(key),
        metrics_file: root.join(key).join("metrics.json"),
        log_dir: root.join(key).join("logs"),
        gpu: None,
    }
}

#[test]
fn intermediate_target_evaluate_chain() {
    let Some(model) = common::minilm() else {
        return;
    };
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    assert_eq!(exec.backend(), "burn-cpu");
    let cancel = CancelFlag::new();
    let progress = Record::default();

    let inter = ctx(
        root.path(),
        "inter",
        spec(StageKind::Intermediate, "demo-nli", &model, None, &[]),
        None,
    );
    let out = exec.run(&inter, &progress, &cancel).unwrap();
    assert_eq!(out.metrics["train"]["phases"][0]["steps"], 3);
    assert!(root.path().join("inter/best/encoder.bpk").is_file());
    let steps: Vec<u64> = progress.0.lock().unwrap().iter().map(|p| p.step).collect();
    assert_eq!(steps, vec![1, 2, 3]);
    progress.0.lock().unwrap().clear();

    let target = ctx(
        root.path(),
        "target",
        spec(StageKind::Target, "demo-nli-x", &model, Some("inter"), &[]),
        Some("inter"),
    );
    exec.run(&target, &progress, &cancel).unwrap();

    let eval = ctx(
        root.path(),
        "eval",
        spec(
            StageKind::Evaluate,
            "demo-nli-x",
            &model,
            Some("target"),
            &["de", "en"],
        ),
        Some("target"),
    );
    progress.0.lock().unwrap().clear();
    let out = exec.run(&eval, &progress, &cancel).unwrap();
    let phases: Vec<String> = progress
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.phase.clone())
        .collect();
    assert_eq!(phases, vec!["evaluate de", "evaluate en"]);
    for lang in ["de", "en"] {
        let acc = out.metrics[lang]["accuracy"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&acc), "{lang}: {acc}");
        let preds = std::fs::read_to_string(
            root.path()
                .join(format!("eval/predictions/test-{lang}.tsv")),
        )
        .unwrap();
        assert!(
            preds
                .lines()
                .all(|l| ["contradiction", "entailment", "neutral"].contains(&l))
        );
    }
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&eval.metrics_file).unwrap()).unwrap();
    assert_eq!(written, out.metrics);
}

#[test]
fn bad_model_directory_is_a_permanent_data_failure() {
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(
        model.join("config.json"),
        "{\"model_type\": \"bert\",\n \"vocab_size\": }",
    )
    .unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    let job = ctx(
        root.path(),
        "j",
        spec(StageKind::Intermediate, "demo-nli", &model, None, &[]),
        None,
    );
    let err = exec
        .run(&job, &Record::default(), &CancelFlag::new())
        .unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.reason, stilts_common::failure::FailureReason::Data);
    assert!(
        err.message.contains("config.json: line 2"),
        "{}",
        err.message
    );
}

/// A job's result depends on its seed and data only, not on what the process ran before: the
/// same intermediate job, run again after other random draws, trains the same head to the same
/// losses.
#[test]
fn same_job_after_other_work_gives_identical_weights() {
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use stilts_trainer::checkpoint::load_best_head;
    use stilts_trainer::heads::HeadConfig;
    let Some(model) = common::minilm() else {
        return;
    };
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    let (progress, cancel) = (Record::default(), CancelFlag::new());
    let job = |key: &str| {
        ctx(
            root.path(),
            key,
            spec(StageKind::Intermediate, "demo-nli", &model, None, &[]),
            None,
        )
    };
    let a = exec.run(&job("a"), &progress, &cancel).unwrap();
    // Other work moves the backend's generator along.
    let device = Device::flex();
    device.seed(12345);
    let _ = Tensor::<2>::random([64, 64], Distribution::Default, &device).into_data();
    let b = exec.run(&job("b"), &progress, &cancel).unwrap();
    assert_eq!(
        a.metrics["train"], b.metrics["train"],
        "training losses differ"
    );
    let head = |key: &str| {
        let fresh = HeadConfig::new(384, 3).init(&device);
        let (_, head) = load_best_head(&root.path().join(key).join("best"), fresh).unwrap();
        (
            head.dense.weight.val().into_data(),
            head.out.weight.val().into_data(),
        )
    };
    assert!(head("a") == head("b"), "the trained heads differ");
}
