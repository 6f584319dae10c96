//! Training-job throughput with length-bucketed dynamic padding (the default) versus fixed
//! padding to `max_seq_len` (recipe key `padding = "fixed"`): the real all-MiniLM-L6-v2 with a
//! fresh classification head, trained with the real training loop (`train::train`: AdamW,
//! warmup/decay, clipping, the end-of-run checkpoint and `best/` save) on real English data
//! from the XTREME subsets, the same steps and seed in each mode. Prints, per mode, real
//! (non-padding) tokens/s, padded tokens/s (sequence positions computed), the padding fraction
//! and wall times.
//!
//! STILTS_TEST_MODELS=target/test-models STILTS_SHARED_DATA=../shared/data \
//!     cargo run --release -p stilts-trainer --example padding_bench -- \
//!     [--task xnli] [--splits dev,test] [--batch 32] [--seq 128] [--steps N] [--modes bucket,fixed] \
//!     [--backend cpu|libtorch-cpu|libtorch-cuda]   (libtorch-*: build with `--features libtorch`)
//!
//! The data subsets in ../shared/data have no English train split for XNLI/PAWS-X, so the
//! English dev and test files serve as training data (only their lengths and labels matter here).
//! Steps default to one epoch, so no epoch-end checkpoint falls inside the timed steps; there is
//! no dev evaluation (it batches identically in both modes). "steps" time runs from the start of
//! `train()` to the last step's progress report; "job" time is the whole `train()` call,
//! including the final checkpoint and `best/` save.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stilts_tasks::{Catalog, Split, load};
use stilts_trainer::Backend;
use stilts_trainer::batch::Padding;
use stilts_trainer::data::{Featurize, examples};
use stilts_trainer::evaluate::EvalSpec;
use stilts_trainer::example::Example;
use stilts_trainer::executor::head_kind;
use stilts_trainer::heads::{HeadConfig, TaskModel};
use stilts_trainer::model::load_pretrained;
use stilts_trainer::qa::QaWindows;
use stilts_trainer::recipe::TrainConfig;
use stilts_trainer::train::{TrainRun, train};
use stilts_worker::executor::{CancelFlag, Progress, ProgressSink};

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn num(args: &[String], name: &str, default: usize) -> usize {
    arg(args, name).map_or(default, |v| v.parse().expect("a number"))
}

/// Remembers when the last step was reported.
struct LastStep(Mutex<Option<(u64, Instant)>>);

impl ProgressSink for LastStep {
    fn report(&self, p: Progress) {
        eprintln!("  step {}/{} loss {:.4}", p.step, p.total, p.loss);
        *self.0.lock().unwrap() = Some((p.step, Instant::now()));
    }
}

fn main() {
    let malloc = stilts_trainer::alloc::tune_for_training();
    eprintln!("malloc mmap threshold: {malloc:?} (None: glibc defaults or MALLOC_* set)");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task_name = arg(&args, "--task").unwrap_or("xnli");
    let splits = arg(&args, "--splits").unwrap_or("dev,test");
    let modes = arg(&args, "--modes").unwrap_or("bucket,fixed");
    let (batch, seq) = (num(&args, "--batch", 32), num(&args, "--seq", 128));
    let models = std::env::var_os("STILTS_TEST_MODELS")
        .map_or_else(|| PathBuf::from("target/test-models"), PathBuf::from);
    let model_dir = models.join("all-MiniLM-L6-v2");
    let data_root = std::env::var_os("STILTS_SHARED_DATA")
        .map_or_else(|| PathBuf::from("../shared/data"), PathBuf::from);

    let catalog = Catalog::builtin();
    let task = catalog
        .get(task_name)
        .expect("a task of the built-in catalog");
    let kind = head_kind(task).expect("a head the trainer implements");
    let backend = Backend::parse(arg(&args, "--backend").unwrap_or("cpu")).unwrap();
    let device = backend.device();
    let pre = load_pretrained(model_dir.to_str().unwrap(), seq, &device)
        .unwrap_or_else(|e| panic!("{}: {e} (run deploy/fetch-models.sh)", model_dir.display()));
    let opts = Featurize {
        labels: &task.labels,
        windows: QaWindows::from_config(&TrainConfig::default()),
    };
    let mut train_set: Vec<Example> = Vec::new();
    for split in splits.split(',') {
        let split = match split {
            "train" => Split::Train,
            "dev" => Split::Dev,
            "test" => Split::Test,
            other => panic!("unknown split {other}"),
        };
        let data = load(task, split, "en", &data_root).unwrap_or_else(|e| {
            panic!("{task_name} {split} en under {}: {e}", data_root.display())
        });
        let what = format!("{task_name} {split} (en)");
        train_set.extend(examples(&pre.tokenizer, kind, &data, &opts, &what).unwrap());
    }
    train_set.retain(|e| e.target.is_labelled());
    let lens: Vec<usize> = train_set.iter().map(Example::max_len).collect();
    let mean_len = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
    let steps_per_epoch = train_set.len().div_ceil(batch);
    let steps = num(&args, "--steps", steps_per_epoch);
    println!(
        "{task_name} en ({splits}): {} examples, tokens per example mean {mean_len:.1}, max {}; \
         all-MiniLM-L6-v2, {}, batch {batch}, max_seq_len {seq}, {steps} steps, threads {}",
        train_set.len(),
        lens.iter().max().unwrap(),
        backend.name(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    for mode in modes.split(',') {
        let padding = Padding::parse(mode).expect("mode bucket or fixed");
        let cfg = TrainConfig {
            batch_size: batch,
            max_seq_len: seq,
            epochs: steps.div_ceil(steps_per_epoch).max(1),
            max_steps: Some(steps as u64),
            checkpoint_every: u64::MAX,
            padding,
            seed: 1,
            ..TrainConfig::default()
        };
        let pre = load_pretrained(model_dir.to_str().unwrap(), seq, &device).unwrap();
        device.seed(cfg.seed);
        let head = HeadConfig::new(pre.config.hidden_size, kind.num_outputs()).init(&device);
        let out = tempfile::tempdir().unwrap();
        let cancel = CancelFlag::new();
        let last = LastStep(Mutex::new(None));
        let run = TrainRun {
            kind,
            train: &train_set,
            dev: &[],
            config: &cfg,
            encoder_config: &pre.config,
            device: device.clone(),
            out: out.path(),
            base_dir: &pre.dir,
            eval: EvalSpec::default(),
            progress: &last,
            cancel: &cancel,
        };
        eprintln!("{mode}:");
        let t0 = Instant::now();
        let model = TaskModel {
            encoder: pre.encoder,
            head,
        };
        let (_, outcome) = train(&run, model).unwrap();
        let job = t0.elapsed();
        let (last_step, at) = last.0.lock().unwrap().expect("at least one step");
        assert_eq!(last_step, steps as u64);
        let step_time = at.duration_since(t0);
        let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "{mode:>6}: real tokens {} padded tokens {} padding {:.1}% | steps {:.1} s ({:.2} s/step): \
             {:.0} real tok/s, {:.0} padded tok/s | job {:.1} s: {:.0} real tok/s, {:.0} padded tok/s | loss {:.4}",
            outcome.real_tokens,
            outcome.padded_tokens,
            100.0 * (1.0 - outcome.real_tokens as f64 / outcome.padded_tokens as f64),
            step_time.as_secs_f64(),
            step_time.as_secs_f64() / steps as f64,
            per_s(outcome.real_tokens, step_time),
            per_s(outcome.padded_tokens, step_time),
            job.as_secs_f64(),
            per_s(outcome.real_tokens, job),
            per_s(outcome.padded_tokens, job),
            outcome.final_loss,
        );
    }
}
