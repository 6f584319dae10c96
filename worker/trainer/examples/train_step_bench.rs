//! Training-step benchmark: forward + backward + AdamW of an encoder with a classification head
//! at a fixed shape, on random tokens. Prints the median step time.
//!
//! cargo run --release -p stilts-trainer --example train_step_bench -- [minilm|bert-base|ops] \
//!     [--batch 16] [--seq 128] [--steps 5] [--dropout 0.1] [--backend cpu|libtorch-cpu|libtorch-cuda]
//!     [--precision fp32|tf32|bf16]
//! (libtorch-*: build with `--features libtorch`, see the README's "GPU build"; there the encoder
//! layers run as one LibTorch node each, `STILTS_FUSED=off` measures the burn-op path instead)
//! Compare with `python3 worker/trainer/benches/torch_train_step.py` (same shapes).

use std::time::Instant;

use burn::optim::{AdamWConfig, GradientsParams};
use stilts_trainer::Backend;
use stilts_trainer::batch::TokenBatch;
use stilts_trainer::encoder::EncoderConfig;
use stilts_trainer::heads::{HeadConfig, TaskModel, cross_entropy};
use stilts_trainer::precision::Precision;
use stilts_trainer::tokenize::Encoded;

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let malloc = stilts_trainer::alloc::tune_for_training();
    eprintln!("malloc mmap threshold: {malloc:?} (None: glibc defaults or MALLOC_* set)");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("minilm");
    let (batch, seq, steps) = (
        arg(&args, "--batch", 16),
        arg(&args, "--seq", 128),
        arg(&args, "--steps", 5),
    );
    let cfg = match which {
        "minilm" => EncoderConfig::new(30522, 384, 6, 12, 1536, 512, 2),
        "bert-base" => EncoderConfig::new(30522, 768, 12, 12, 3072, 512, 2),
        // MiniLM's 6 layers and operations with tiny tensors: the step is almost all per-op
        // cost on the host (dispatch, graph bookkeeping), what bounds small models on a GPU.
        "ops" => EncoderConfig::new(1000, 32, 6, 4, 64, 512, 2),
        other => panic!("unknown model {other} (minilm, bert-base, ops)"),
    };
    // `--dropout P` sets hidden and attention dropout (default 0.1, BERT's); 0 shows its cost.
    let cfg = match args.iter().position(|a| a == "--dropout") {
        Some(i) => {
            let p: f64 = args[i + 1].parse().expect("a probability");
            cfg.with_dropout(p).with_attention_dropout(p)
        }
        None => cfg,
    };
    let backend = args
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(Backend::Flex), |b| Backend::parse(b))
        .unwrap();
    let precision = args
        .iter()
        .position(|a| a == "--precision")
        .and_then(|i| args.get(i + 1))
        .map_or(Some(Precision::Fp32), |p| Precision::parse(p))
        .expect("--precision fp32, tf32 or bf16");
    let device = backend.device().autodiff();
    device.seed(0);
    let mut encoder = cfg.init(&device);
    encoder.precision = precision;
    let mut model = TaskModel {
        encoder,
        head: HeadConfig::new(cfg.hidden_size, 3).init(&device),
    };
    let mut optim = AdamWConfig::new().with_weight_decay(0.01).init();
    let items: Vec<Encoded> = (0..batch)
        .map(|b| Encoded {
            ids: (0..seq)
                .map(|i| ((b * 7919 + i * 104729) % (cfg.vocab_size - 100) + 100) as u32)
                .collect(),
            type_ids: vec![0; seq],
            offsets: vec![(0, 0); seq],
        })
        .collect();
    let refs: Vec<&Encoded> = items.iter().collect();
    let tokens = TokenBatch::new(&refs, &cfg);
    let targets: Vec<usize> = (0..batch).map(|b| b % 3).collect();
    // (step, forward, backward, optimizer) in ms per step, after a warm-up step.
    let mut times = Vec::new();
    for step in 0..steps + 1 {
        let t0 = Instant::now();
        let loss = cross_entropy(model.forward(&tokens, &device), &targets);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t2 = Instant::now();
        model = optim.step(1e-5, model, grads);
        let loss = loss.into_scalar::<f32>();
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        let t = [ms(t0, t3), ms(t0, t1), ms(t1, t2), ms(t2, t3)];
        eprintln!(
            "step {step}: {:.0} ms (forward {:.1}, backward {:.1}, optimizer + sync {:.1}; loss {loss:.4})",
            t[0], t[1], t[2], t[3]
        );
        if step > 0 {
            times.push(t); // step 0 is warm-up
        }
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = times.iter().map(|t| t[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{} {which} {precision}{} batch {batch} seq {seq}: median {:.1} ms/step (forward {:.1}, backward {:.1}, optimizer + sync {:.1}; CUDA runs asynchronously, so on a GPU only the total is exact) over {} steps (threads: {})",
        backend.name(),
        if std::env::var("STILTS_FUSED").is_ok_and(|v| v == "off") {
            " (STILTS_FUSED=off)"
        } else {
            ""
        },
        median(0),
        median(1),
        median(2),
        median(3),
        times.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
