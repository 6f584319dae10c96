//! Shared helpers of the trainer's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use stilts_common::job::{ExecutorSpec, JobSpec, Recipe, StageKind};
use stilts_trainer::example::Example;
use stilts_trainer::heads::{HeadConfig, HeadKind, TaskModel};
use stilts_trainer::model::Pretrained;
use stilts_trainer::recipe::TrainConfig;
use stilts_trainer::train::TrainOutcome;
use stilts_trainer::{Backend, BurnExecutor};
use stilts_worker::executor::{CancelFlag, Executor, JobContext};

/// `$STILTS_TEST_MODELS` (written by `deploy/fetch-models.sh`), or `None` after printing a
/// visible skip notice.
pub fn test_models() -> Option<PathBuf> {
    match std::env::var_os("STILTS_TEST_MODELS").map(PathBuf::from) {
        Some(dir) if dir.join("all-MiniLM-L6-v2/model.safetensors").is_file() => Some(dir),
        _ => {
            eprintln!("skipping: STILTS_TEST_MODELS not set (run deploy/fetch-models.sh)");
            None
        }
    }
}

pub fn minilm() -> Option<PathBuf> {
    test_models().map(|d| d.join("all-MiniLM-L6-v2"))
}

/// `$STILTS_SHARED_DATA` (the real XTREME-R data), or `None` after printing a visible skip
/// notice.
pub fn shared_data() -> Option<PathBuf> {
    match std::env::var_os("STILTS_SHARED_DATA").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => Some(dir),
        _ => {
            eprintln!("skipping: STILTS_SHARED_DATA not set");
            None
        }
    }
}

/// A burn job on the MiniLM test model: `task` in `language`, data from `root`, the integer
/// recipe keys given plus `data_dir`.
pub fn burn_spec(
    kind: StageKind,
    task: &str,
    language: &str,
    (model, root): (&Path, &Path),
    parent: Option<&str>,
    recipe: &[(&str, i64)],
) -> JobSpec {
    let mut r = Recipe::new();
    for (k, v) in recipe {
        r.insert((*k).into(), (*v).into());
    }
    r.insert("data_dir".into(), root.to_string_lossy().into());
    JobSpec {
        kind,
        model: "minilm".into(),
        model_source: model.to_string_lossy().into(),
        task: task.into(),
        intermediate: "none".into(),
        languages: vec![language.into()],
        seed: 1,
        recipe: r,
        executor: ExecutorSpec::Burn,
        parent: parent.map(String::from),
        data_version: "shared".into(),
        code_version: "test".into(),
        task_defs: Default::default(),
    }
}

/// A first-attempt job context whose directories live under `dir` (`dir/<key>`, input `dir/<input>`).
pub fn job_ctx(dir: &Path, key: &str, spec: JobSpec, input: Option<&str>) -> JobContext {
    JobContext {
        key: key.into(),
        attempt: 1,
        spec,
        input_dir: input.map(|i| dir.join(i)),
        output_dir: dir.join(key),
        metrics_file: dir.join(key).join("metrics.json"),
        log_dir: dir.join(key).join("logs"),
        gpu: None,
    }
}

/// Writes a tiny random XLNet checkpoint (every parameter perturbed, `transformer.` names) with
/// the hand-written XLNet-style tokenizer of `tests/fixtures` into `dir`, through
/// `tests/oracle/xlnet_numpy.py make`; `None` (after a visible skip notice) without python3,
/// numpy and safetensors.
pub fn tiny_xlnet(dir: &Path, seed: u64) -> Option<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/xlnet_numpy.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("make")
        .arg(dir)
        .arg(seed.to_string())
        .output();
    match out {
        Err(e) => {
            eprintln!("skipping: python3 not found ({e})");
            return None;
        }
        Ok(o) if o.status.code() == Some(3) => {
            eprintln!("skipping: {}", String::from_utf8_lossy(&o.stderr).trim());
            return None;
        }
        Ok(o) => assert!(
            o.status.success(),
            "xlnet_numpy.py make failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
    }
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/xlnet-tokenizer.json"
        ),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    Some(())
}

/// [`tiny_xlnet`] in a fresh temporary directory, loaded on the CPU with inputs truncated to
/// `max_len`; the directory lives as long as the returned handle.
pub fn load_tiny_xlnet(seed: u64, max_len: usize) -> Option<(tempfile::TempDir, Pretrained)> {
    let tmp = tempfile::tempdir().unwrap();
    tiny_xlnet(tmp.path(), seed)?;
    let device = burn::prelude::Device::flex();
    let model =
        stilts_trainer::model::load_pretrained(tmp.path().to_str().unwrap(), max_len, &device)
            .unwrap();
    Some((tmp, model))
}

struct NoProgress;
impl stilts_worker::executor::ProgressSink for NoProgress {
    fn report(&self, _: stilts_worker::executor::Progress) {}
}

/// Trains a fresh head of `kind` (initialised after seeding the device with `cfg.seed`) on a
/// clone of `pre`'s encoder, selecting on `dev`; checkpoints go to `out`, which must outlive the
/// returned model (its best weights are read from there on use).
pub fn fit_head(
    pre: &Pretrained,
    kind: HeadKind,
    data: (&[Example], &[Example]),
    cfg: &TrainConfig,
    out: &Path,
) -> (TaskModel, TrainOutcome) {
    fit_head_with(pre, (kind, &[]), data, cfg, out)
}

/// As [`fit_head`], dev metrics naming the classes `labels` (tagging needs them).
pub fn fit_head_with(
    pre: &Pretrained,
    (kind, labels): (HeadKind, &[String]),
    (train, dev): (&[Example], &[Example]),
    cfg: &TrainConfig,
    out: &Path,
) -> (TaskModel, TrainOutcome) {
    let device = burn::prelude::Device::flex();
    device.seed(cfg.seed);
    let head = HeadConfig::new(pre.config.hidden_size, kind.num_outputs()).init(&device);
    let cancel = stilts_worker::executor::CancelFlag::new();
    let run = stilts_trainer::train::TrainRun {
        kind,
        train,
        dev,
        config: cfg,
        encoder_config: &pre.config,
        device,
        out,
        base_dir: &pre.dir,
        eval: stilts_trainer::evaluate::EvalSpec {
            labels,
            ..Default::default()
        },
        progress: &NoProgress,
        cancel: &cancel,
    };
    let model = TaskModel {
        encoder: pre.encoder.clone(),
        head,
    };
    stilts_trainer::train::train(&run, model).unwrap()
}

/// Dev accuracy (best checkpoint) of one intermediate-stage run of MiniLM on the shared SST-2
/// subset (320 training sentences, 2 epochs) on `backend`, and its final loss; `None` (after a
/// skip notice) without the model or the data.
pub fn sst2_dev_accuracy(backend: Backend, precision: &str) -> Option<(f64, f64)> {
    let model = minilm()?;
    let data = shared_data()?;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = burn_spec(
        StageKind::Intermediate,
        "sst2",
        "en",
        (&model, &data),
        None,
        &[
            ("batch_size", 16),
            ("epochs", 2),
            ("max_seq_len", 64),
            ("max_train_examples", 320),
            ("checkpoint_every", 20),
        ],
    );
    spec.languages.clear();
    spec.recipe.insert("lr".into(), serde_json::json!(1e-4));
    spec.recipe.insert("precision".into(), precision.into());
    let ctx = job_ctx(dir.path(), precision, spec, None);
    let started = std::time::Instant::now();
    let out = BurnExecutor::new(backend)
        .run(&ctx, &NoProgress, &CancelFlag::new())
        .unwrap_or_else(|f| panic!("{precision}: {f}"));
    let phase = &out.metrics["train"]["phases"][0];
    let acc = phase["dev"]["accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("no dev accuracy in {phase}"));
    let loss = phase["loss"].as_f64().unwrap();
    eprintln!(
        "{} {precision}: dev accuracy {acc:.2}, final loss {loss:.4}, {} steps in {:.1} s",
        backend.name(),
        phase["steps"],
        started.elapsed().as_secs_f64()
    );
    Some((acc, loss))
}

/// MiniLM fine-tuned on the shared SST-2 subset on `backend` in fp32 and in bf16 (same seed, data
/// order and dropout masks): both must learn the task and reach the same dev accuracy within
/// `max_gap` points. Skips (after a notice) without the model or the data.
pub fn assert_bf16_learns_sst2_like_fp32(backend: Backend, max_gap: f64) {
    let Some((fp32, fp32_loss)) = sst2_dev_accuracy(backend, "fp32") else {
        return;
    };
    let (bf16, bf16_loss) = sst2_dev_accuracy(backend, "bf16").unwrap();
    assert!(fp32_loss.is_finite() && bf16_loss.is_finite());
    // 872 dev sentences: chance is ~50 % (one standard error 1.7 points); 60 % is 6 standard
    // errors above it, so both runs must have learned the task.
    assert!(fp32 > 60.0, "fp32 did not learn SST-2: {fp32:.2}");
    assert!(bf16 > 60.0, "bf16 did not learn SST-2: {bf16:.2}");
    assert!(
        (fp32 - bf16).abs() <= max_gap,
        "bf16 {bf16:.2} vs fp32 {fp32:.2}: more than rounding noise"
    );
}
