//! Tatoeba retrieval with all-MiniLM-L6-v2 on real sentence pairs: cosine nearest neighbour
//! of mean-pooled middle-layer states, and the pass-through target → evaluate chain through
//! `BurnExecutor`.

mod common;

use std::path::Path;

use burn::prelude::*;
use stilts_common::failure::FailureReason;
use stilts_common::job::{JobSpec, StageKind};
use stilts_tasks::example::{Dataset, RetrievalSet};
use stilts_tasks::{Catalog, Split, load};
use stilts_trainer::model::load_pretrained;
use stilts_trainer::retrieval::{default_layer, retrieve};
use stilts_trainer::{Backend, BurnExecutor};
use stilts_worker::executor::{CancelFlag, Executor, Progress, ProgressSink};

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
    let recipe = [("max_seq_len", 128)];
    common::burn_spec(kind, "tatoeba", "de", (model, root), parent, &recipe)
}

#[test]
fn tatoeba_pass_through_target_then_evaluate() {
    let (Some(model), Some(root)) = (common::minilm(), common::shared_data()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let exec = BurnExecutor::new(Backend::Flex);
    let cancel = CancelFlag::new();
    let ctx = |key: &str, spec: JobSpec, input: Option<&str>| {
        common::job_ctx(dir.path(), key, spec, input)
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
