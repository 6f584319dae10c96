//! Tatoeba retrieval with all-MiniLM-L6-v2 on real sentence pairs: cosine nearest neighbour
//! of mean-pooled middle-layer states, and the pass-through target → evaluate chain through
//! `BurnExecutor`.

mod common;

use std::path::Path;

use burn::prelude::*;
use stilts_common::failure::FailureReason;
use stilts_common::job::{ExecutorSpec, JobSpec, Recipe, StageKind};
use stilts_tasks::example::{Dataset, RetrievalSet};
use stilts_tasks::{Catalog, Split, load};
use stilts_trainer::model::load_pretrained;
use stilts_trainer::retrieval::{default_layer, retrieve};
use stilts_trainer::{Backend, BurnExecutor};
use stilts_worker::executor::{CancelFlag, Executor, JobContext, Progress, ProgressSink};

struct NoProgress;
impl ProgressSink for NoProgress {
    fn report(&self, _: Progress) {}
}

fn tatoeba(root: &Path, lang: &str) -> RetrievalSet {
    let catalog = Catalog::builtin();
    let task = catalog.get("tatoeba").unwrap();
    let Dataset::Retrieval(set) = load(task, Split::Test, lang, root).unwrap() else {
        panic!("tatoeba is a retrieval task");
    };
    set
}

#[test]
fn real_pairs_retrieve_by_cosine() {
    let (Some(model_dir), Some(root)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let device = Device::flex();
    let pre = load_pretrained(model_dir.to_str().unwrap(), 128, &device).unwrap();
    let layer = default_layer(pre.config.num_layers);
    assert_eq!(layer, 3);
    let mut set = tatoeba(&root, "de");
    set.queries.truncate(24);
    set.candidates.truncate(24);
    set.gold.truncate(24);
    let (pred, acc) = retrieve(
        &pre.encoder,
        &pre.config,
        &pre.tokenizer,
        &set,
        layer,
        &device,
    )
    .unwrap();
    assert_eq!(pred.len(), 24);
    assert!(pred.iter().all(|&p| p < 24));
    assert!((0.0..=100.0).contains(&acc));
    // The English side retrieved against itself: every sentence finds itself.
    let english = RetrievalSet {
        queries: set.candidates.clone(),
        candidates: set.candidates.clone(),
        gold: (0..24).collect(),
    };
    let (_, self_acc) = retrieve(
        &pre.encoder,
        &pre.config,
        &pre.tokenizer,
        &english,
        layer,
        &device,
    )
    .unwrap();
    assert_eq!(self_acc, 100.0);
}

fn spec(kind: StageKind, model: &Path, root: &Path, parent: Option<&str>) -> JobSpec {
    let mut recipe = Recipe::new();
    recipe.insert("max_seq_len".into(), 128.into());
    recipe.insert("data_dir".into(), root.to_string_lossy().into());
    JobSpec {
        kind,
        model: "minilm".into(),
        model_source: model.to_string_lossy().into(),
        task: "tatoeba".into(),
        intermediate: "none".into(),
        languages: vec!["de".into()],
        seed: 1,
        recipe,
        executor: ExecutorSpec::Burn,
        parent: parent.map(String::from),
        data_version: "shared".into(),
        code_version: "test".into(),
    }
}

#[test]
fn tatoeba_pass_through_target_then_evaluate() {
    let (Some(model), Some(root)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    let cancel = CancelFlag::new();
    let ctx = |key: &str, spec: JobSpec, input: Option<&str>| JobContext {
        key: key.into(),
        attempt: 1,
        spec,
        input_dir: input.map(|i| dir.path().join(i)),
        output_dir: dir.path().join(key),
        metrics_file: dir.path().join(key).join("metrics.json"),
        log_dir: dir.path().join(key).join("logs"),
    };
    // No intermediate training data for a retrieval task.
    let inter = ctx(
        "inter",
        spec(StageKind::Intermediate, &model, &root, None),
        None,
    );
    let err = exec.run(&inter, &NoProgress, &cancel).unwrap_err();
    assert_eq!(err.reason, FailureReason::User, "{err:?}");

    // Baseline: the pretrained encoder passes through; then a parent's encoder does.
    let base = ctx("base", spec(StageKind::Target, &model, &root, None), None);
    exec.run(&base, &NoProgress, &cancel).unwrap();
    assert!(dir.path().join("base/best/encoder.bpk").is_file());
    let chained = ctx(
        "chained",
        spec(StageKind::Target, &model, &root, Some("base")),
        Some("base"),
    );
    exec.run(&chained, &NoProgress, &cancel).unwrap();

    let mut accs = Vec::new();
    for parent in ["base", "chained"] {
        let key = format!("eval-{parent}");
        let eval = ctx(
            &key,
            spec(StageKind::Evaluate, &model, &root, Some(parent)),
            Some(parent),
        );
        let out = exec.run(&eval, &NoProgress, &cancel).unwrap();
        let acc = out.metrics["de"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&acc));
        accs.push(acc);
        let pred =
            std::fs::read_to_string(dir.path().join(&key).join("predictions/test-de.tsv")).unwrap();
        let n = tatoeba(&root, "de").queries.len();
        assert_eq!(pred.lines().count(), n);
        assert!(pred.lines().all(|l| l.parse::<usize>().unwrap() < n));
    }
    assert_eq!(accs[0], accs[1], "the pass-through changed the encoder");
}
