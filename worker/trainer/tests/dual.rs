//! Dual-encoder retrieval: the chunked candidate pool, LAReQA (SQuAD pairs → XQuAD-R pool,
//! real data), Mewsli-X (the WRITTEN fixture of `common/tasks/tests/fixtures/mewslix_written`,
//! not real data) and a multi-task mixture as an intermediate stage, through `BurnExecutor`
//! with all-MiniLM-L6-v2.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use stilts_common::job::{JobSpec, StageKind};
use stilts_tasks::example::Dataset;
use stilts_tasks::metrics::mean_average_precision_at_k;
use stilts_tasks::{Catalog, Split, load};
use stilts_trainer::checkpoint::load_best_encoder;
use stilts_trainer::dual::{PoolOptions, embed_encoded, map_at_20, rank_pool, top_k_streaming};
use stilts_trainer::model::{load_config_and_tokenizer, load_pretrained};
use stilts_trainer::{Backend, BurnExecutor, Pool};
use stilts_worker::executor::{CancelFlag, Executor, JobOutput, Progress, ProgressSink};

struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

fn unit_rows(n: usize, h: usize, seed: u32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    let mut v: Vec<f32> = (0..n * h)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    for r in v.chunks_mut(h) {
        let norm = r.iter().map(|a| a * a).sum::<f32>().sqrt();
        r.iter_mut().for_each(|a| *a /= norm);
    }
    v
}

/// A pool bigger than one chunk is embedded chunk by chunk (never more than `chunk` at a time)
/// and ranks exactly as scoring the whole pool at once.
#[test]
fn a_pool_larger_than_a_chunk_is_encoded_in_chunks() {
    let device = Device::flex();
    let (nq, n, h) = (5, 23, 8);
    let q = Tensor::<2>::from_data(TensorData::new(unit_rows(nq, h, 1), [nq, h]), &device);
    let pool = unit_rows(n, h, 2);
    let mut calls = Vec::new();
    let embed = |r: std::ops::Range<usize>, calls: &mut Vec<std::ops::Range<usize>>| {
        calls.push(r.clone());
        let rows = pool[r.start * h..r.end * h].to_vec();
        Ok(Tensor::<2>::from_data(
            TensorData::new(rows, [r.len(), h]),
            &device,
        ))
    };
    let chunked = top_k_streaming(&q, n, 4, 20, |r| embed(r, &mut calls)).unwrap();
    assert_eq!(calls.len(), 6);
    assert!(calls.iter().all(|r| r.len() <= 4));
    let mut one = Vec::new();
    let whole = top_k_streaming(&q, n, 1000, 20, |r| embed(r, &mut one)).unwrap();
    assert_eq!(one.len(), 1);
    let ids = |l: &Vec<Vec<(f32, usize)>>| -> Vec<Vec<usize>> {
        l.iter().map(|r| r.iter().map(|x| x.1).collect()).collect()
    };
    assert_eq!(ids(&chunked), ids(&whole));
    // Brute force on the host.
    let qs = unit_rows(nq, h, 1);
    for (i, ranked) in ids(&chunked).iter().enumerate() {
        let mut s: Vec<(f32, usize)> = (0..n)
            .map(|j| {
                let d = (0..h).map(|k| qs[i * h + k] * pool[j * h + k]).sum();
                (d, j)
            })
            .collect();
        s.sort_by(|a, b| b.0.total_cmp(&a.0));
        let want: Vec<usize> = s.iter().take(20).map(|x| x.1).collect();
        assert_eq!(ranked, &want, "query {i}");
    }
}

fn run(
    exec: &BurnExecutor,
    dir: &Path,
    key: &str,
    spec: JobSpec,
    input: Option<&str>,
) -> JobOutput {
    let ctx = common::job_ctx(dir, key, spec, input);
    exec.run(&ctx, &NoProgress, &CancelFlag::new())
        .unwrap_or_else(|e| panic!("{key}: {e:?}"))
}

const SMALL: [(&str, i64); 4] = [
    ("max_seq_len", 64),
    ("batch_size", 16),
    ("epochs", 1),
    ("checkpoint_every", 1000),
];

/// Languages of the LAReQA test: their questions, and a pool of their sentences (all 11
/// languages take minutes on a CPU; `deploy/examples/dual-encoder.toml` runs them).
const LAREQA_LANGS: [&str; 2] = ["de", "en"];

/// LAReQA: the target stage trains on SQuAD question → answer-sentence pairs, the evaluate stage
/// ranks an XQuAD-R pool of German and English sentences for German and English questions;
/// the pretrained encoder's figures ("before") come from the same ranking code.
#[test]
fn lareqa_trains_on_squad_pairs_and_scores_map_at_20() {
    let (Some(model), Some(shared)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A data root whose XQuAD-R folder holds only the de and en files (links to the shared
    // data): a pool of their sentences, small enough for a CPU test.
    let root = dir.path().join("data");
    std::fs::create_dir_all(root.join("lareqa/xquad-r")).unwrap();
    for lang in LAREQA_LANGS {
        let name = format!("lareqa/xquad-r/{lang}.json");
        std::os::unix::fs::symlink(shared.join(&name), root.join(&name)).unwrap();
    }
    std::os::unix::fs::symlink(shared.join("squad_v1.1"), root.join("squad_v1.1")).unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    let catalog = Catalog::builtin();
    let task = catalog.get("lareqa").unwrap();
    let mut recipe = SMALL.to_vec();
    recipe.push(("max_train_examples", 48));
    let spec = |kind, parent: Option<&str>| {
        let mut s = common::burn_spec(kind, "lareqa", "de", (&model, &root), parent, &recipe);
        s.languages = LAREQA_LANGS.map(String::from).to_vec();
        s
    };
    let train = run(
        &exec,
        dir.path(),
        "target",
        spec(StageKind::Target, None),
        None,
    );
    let phase = &train.metrics["train"]["phases"][0];
    assert_eq!(phase["task"], "squad");
    // The first 48 of the 269 SQuAD questions of the shared subset, 16 pairs a step.
    assert_eq!(phase["steps"], 3, "{phase}");
    let out = run(
        &exec,
        dir.path(),
        "eval",
        spec(StageKind::Evaluate, Some("target")),
        Some("target"),
    );

    // Before training: the pretrained encoder on the same pool, all languages in one pass.
    let device = Device::flex();
    let pre = load_pretrained(model.to_str().unwrap(), 64, &device).unwrap();
    let mut pools = Vec::new();
    let mut queries = Vec::new();
    for lang in LAREQA_LANGS {
        let Dataset::AnswerPool(p) = load(task, Split::Test, lang, &root).unwrap() else {
            panic!()
        };
        queries.extend(p.queries.clone());
        pools.push(p);
    }
    let opts = PoolOptions {
        batch: 32,
        chunk: 4096,
        pooling: Pool::Mean,
    };
    let candidates = &pools[0].candidates;
    let ranked = rank_pool(
        &pre.encoder,
        &pre.config,
        &pre.tokenizer,
        &queries,
        candidates,
        opts,
        &device,
    )
    .unwrap();
    let (mut sum_before, mut sum_after) = (0.0, 0.0);
    let mut at = 0;
    for (lang, p) in LAREQA_LANGS.iter().zip(&pools) {
        let before = map_at_20(&p.gold, &ranked[at..at + p.queries.len()]);
        at += p.queries.len();
        let after = out.metrics[lang]["map@20"].as_f64().unwrap();
        eprintln!(
            "lareqa {lang}: mAP@20 before {before:.2}, after {after:.2} ({} queries, pool {})",
            p.queries.len(),
            p.candidates.len()
        );
        sum_before += before;
        sum_after += after;
        assert!((0.0..=100.0).contains(&before) && (0.0..=100.0).contains(&after));
        // The predictions file re-scores to the reported figure.
        let file = dir
            .path()
            .join(format!("eval/predictions/test-{lang}.json"));
        let pred: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let pred = pred.as_object().unwrap();
        assert_eq!(pred.len(), p.queries.len());
        let targets: Vec<HashSet<String>> = p
            .gold
            .iter()
            .map(|g| g.iter().map(|&i| p.candidates[i].id.clone()).collect())
            .collect();
        let ranked: Vec<Option<Vec<String>>> = p
            .queries
            .iter()
            .map(|q| {
                let ids = pred[&q.id].as_array().unwrap();
                assert_eq!(ids.len(), 20);
                Some(
                    ids.iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect();
        let again = mean_average_precision_at_k(&targets, &ranked, 20) * 100.0;
        assert!((again - after).abs() < 1e-9, "{again} vs {after}");
    }
    let n = LAREQA_LANGS.len() as f64;
    eprintln!(
        "lareqa mean over {n} languages: before {:.2}, after {:.2}",
        sum_before / n,
        sum_after / n
    );
    // Training moved the encoder (the rankings of a few steps may not move).
    let best = dir.path().join("target/best");
    let (_, config, _) = load_config_and_tokenizer(&best, 64).unwrap();
    let trained = load_best_encoder(&best, config.init(&device)).unwrap();
    let one = vec![pre.tokenizer.encode(&queries[0].question, None).unwrap()];
    let embed = |e| embed_encoded(e, &pre.config, &one, 1, Pool::Mean, &device).unwrap();
    let moved: f32 = (embed(&pre.encoder) - embed(&trained))
        .abs()
        .max()
        .into_scalar();
    assert!(
        moved > 1e-6,
        "training did not change the encoder ({moved})"
    );
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../common/tasks/tests/fixtures/mewslix_written")
}

/// Mewsli-X on the written fixture: trains on `wikipedia_pairs-train.jsonl`, ranks the candidate
/// set for en and de mentions; a pool chunk of 3 gives the same predictions as one chunk, and
/// the figure is what `stilts score` (the official mAP@20) gives for the predictions file.
#[test]
fn mewslix_fixture_trains_and_scores_in_chunks() {
    let Some(model) = common::minilm() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = fixture();
    let exec = BurnExecutor::new(Backend::Flex);
    let spec = |kind, parent: Option<&str>, chunk: i64| {
        let mut recipe = vec![
            ("max_seq_len", 64),
            ("batch_size", 4),
            ("epochs", 1),
            ("pool_chunk", chunk),
        ];
        recipe.push(("checkpoint_every", 1000));
        let mut s = common::burn_spec(kind, "mewslix", "de", (&model, &root), parent, &recipe);
        s.languages = vec!["en".into(), "de".into()];
        s
    };
    let train = run(
        &exec,
        dir.path(),
        "target",
        spec(StageKind::Target, None, 4096),
        None,
    );
    assert_eq!(train.metrics["train"]["phases"][0]["steps"], 3);
    let one = run(
        &exec,
        dir.path(),
        "one",
        spec(StageKind::Evaluate, Some("target"), 4096),
        Some("target"),
    );
    let chunked = run(
        &exec,
        dir.path(),
        "chunked",
        spec(StageKind::Evaluate, Some("target"), 3),
        Some("target"),
    );
    assert_eq!(one.metrics, chunked.metrics);
    let catalog = Catalog::builtin();
    for lang in ["en", "de"] {
        let read = |key: &str| {
            std::fs::read_to_string(
                dir.path()
                    .join(format!("{key}/predictions/test-{lang}.json")),
            )
            .unwrap()
        };
        assert_eq!(read("one"), read("chunked"), "{lang}");
        let official = stilts_tasks::score(
            &catalog,
            "mewslix",
            lang,
            &dir.path()
                .join(format!("chunked/predictions/test-{lang}.json")),
            &root.join("mewslix/wikinews_mentions-test.jsonl"),
        )
        .unwrap();
        let ours = chunked.metrics[lang]["map@20"].as_f64().unwrap();
        assert!((official["map@20"].as_f64().unwrap() - ours).abs() < 1e-9);
        eprintln!("mewslix fixture {lang}: mAP@20 {ours:.2} (written fixture, not a result)");
    }
}

/// A multi-task dual encoder declared as grid tasks: SQuAD QA pairs, MNLI entailments and
/// translation pairs from a parallel corpus file (Tatoeba de–en), then LAReQA from it.
#[test]
fn mixture_intermediate_stage_then_lareqa() {
    let (Some(model), Some(root)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let grid = include_str!("../../../common/tasks/tests/fixtures/mixture_tasks.toml");
    let mut catalog = Catalog::builtin();
    let added = catalog.add_embedded(grid, "grid.toml").unwrap();
    let defs: std::collections::BTreeMap<String, serde_json::Value> = added
        .iter()
        .map(|t| (t.name.clone(), serde_json::to_value(t).unwrap()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    let mut recipe = SMALL.to_vec();
    recipe.push(("max_train_examples", 40));
    let mut inter = common::burn_spec(
        StageKind::Intermediate,
        "mix",
        "en",
        (&model, &root),
        None,
        &recipe,
    );
    inter.task_defs = defs;
    let out = run(&exec, dir.path(), "inter", inter, None);
    // 40 SQuAD + 40 Tatoeba + the MNLI subset's entailments, 16 a step.
    let mnli = catalog.get("mnli").unwrap();
    let Dataset::Pairs(nli) = load(mnli, Split::Train, "en", &root).unwrap() else {
        panic!()
    };
    let entail = mnli.label_index("entailment").unwrap();
    let n_entail = nli
        .iter()
        .filter(|e| e.label == stilts_tasks::Label::Class(entail))
        .count();
    assert!(n_entail > 0);
    let steps = (80 + n_entail).div_ceil(16);
    assert_eq!(out.metrics["train"]["phases"][0]["steps"], steps as u64);
    assert!(dir.path().join("inter/best/encoder.bpk").is_file());

    // A LAReQA target stage starts from the mixture's encoder.
    let mut target_recipe = SMALL.to_vec();
    target_recipe.push(("max_train_examples", 32));
    let target = common::burn_spec(
        StageKind::Target,
        "lareqa",
        "de",
        (&model, &root),
        Some("inter"),
        &target_recipe,
    );
    let t = run(&exec, dir.path(), "target", target, Some("inter"));
    assert_eq!(t.metrics["train"]["phases"][0]["steps"], 2);
    assert!(dir.path().join("target/best/encoder.bpk").is_file());
}
