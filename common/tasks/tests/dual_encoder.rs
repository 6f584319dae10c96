//! Dual-encoder tasks: the Mewsli-X readers on the written fixture (`tests/fixtures/
//! mewslix_written`, NOT real data: see its README), gold missing from the pool, and multi-task
//! mixtures in catalogs and grids.

use std::path::PathBuf;

use stilts_tasks::example::Dataset;
use stilts_tasks::{Catalog, Head, Role, Split, load, score};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mewslix_written")
}

#[test]
fn mewslix_mentions_form_a_pool_with_their_sentences() {
    let catalog = Catalog::builtin();
    let task = catalog.get("mewslix").unwrap();
    assert_eq!(task.head, Head::DualEncoder);
    let Dataset::AnswerPool(de) = load(task, Split::Test, "de", &fixture()).unwrap() else {
        panic!("mewslix test is a pool");
    };
    assert_eq!(de.candidates.len(), 10);
    assert_eq!(de.queries.len(), 3);
    let q = &de.queries[0];
    assert_eq!((q.id.as_str(), q.question.as_str()), ("de-m1", "Berlin"));
    assert_eq!(q.context, "Der Bundestag tagte in Berlin.");
    let gold = &de.candidates[de.gold[0][0]];
    assert_eq!(
        (gold.id.as_str(), gold.sentence.as_str()),
        ("Q64", "Berlin")
    );
    assert!(gold.context.starts_with("Berlin ist die Hauptstadt"));
    // The second sentence of an article is found by `sentence_spans`.
    let Dataset::AnswerPool(en) = load(task, Split::Test, "en", &fixture()).unwrap() else {
        panic!()
    };
    assert_eq!(
        en.queries[0].context,
        "Buses stopped running in Helsinki for the whole day."
    );
    assert_eq!(en.candidates, de.candidates, "one pool for every language");
}

#[test]
fn mewslix_training_pairs() {
    let catalog = Catalog::builtin();
    let task = catalog.get("mewslix").unwrap();
    let Dataset::AnswerPool(p) = load(task, Split::Train, "en", &fixture()).unwrap() else {
        panic!("wikipedia pairs are a pool of pairs");
    };
    assert_eq!(p.queries.len(), 12);
    assert!(p.gold.iter().enumerate().all(|(i, g)| g == &vec![i]));
    assert_eq!(p.candidates[0].id, "Q1757");
    assert_eq!(p.queries[0].question, "Helsinki");
    assert_eq!(
        p.queries[0].context,
        "The delegation flew from Helsinki to Stockholm."
    );
}

#[test]
fn a_mention_whose_gold_is_not_in_the_pool_names_file_and_example() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("mewslix");
    std::fs::create_dir_all(&m).unwrap();
    let src = fixture().join("mewslix");
    let entities = std::fs::read_to_string(src.join("candidate_set_entities.jsonl")).unwrap();
    // Drop Tokio (Q1490) from the pool: mention de-m3 links it.
    let kept: Vec<&str> = entities.lines().filter(|l| !l.contains("Q1490")).collect();
    std::fs::write(m.join("candidate_set_entities.jsonl"), kept.join("\n")).unwrap();
    std::fs::copy(
        src.join("wikinews_mentions-test.jsonl"),
        m.join("wikinews_mentions-test.jsonl"),
    )
    .unwrap();
    let catalog = Catalog::builtin();
    let err = load(
        catalog.get("mewslix").unwrap(),
        Split::Test,
        "de",
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("wikinews_mentions-test.jsonl:6"), "{err}");
    assert!(err.contains("de-m3") && err.contains("Q1490"), "{err}");
    assert!(err.contains("candidate_set_entities.jsonl"), "{err}");
    // English mentions are all in the pool.
    assert!(
        load(
            catalog.get("mewslix").unwrap(),
            Split::Test,
            "en",
            dir.path()
        )
        .is_ok()
    );
}

#[test]
fn predictions_in_the_submission_format_score_with_the_official_metric() {
    let dir = tempfile::tempdir().unwrap();
    let pred = dir.path().join("test-de.json");
    // de-m1 right at rank 1, de-m2 at rank 2, de-m3 missing: (1 + 1/2 + 0) / 3.
    std::fs::write(
        &pred,
        r#"{"de-m1": ["Q64", "Q90"], "de-m2": ["Q5369", "Q2736"]}"#,
    )
    .unwrap();
    let gold = fixture().join("mewslix/wikinews_mentions-test.jsonl");
    let m = score(&Catalog::builtin(), "mewslix", "de", &pred, &gold).unwrap();
    assert!((m["map@20"].as_f64().unwrap() - 50.0).abs() < 1e-9, "{m}");
}

#[test]
fn builtin_mixture_task() {
    let c = Catalog::builtin();
    let t = c.get("mt_dual").unwrap();
    assert_eq!((t.role, t.head), (Role::Intermediate, Head::DualEncoder));
    let parts: Vec<(&str, f64, Option<&str>)> = t
        .mixture
        .iter()
        .map(|m| (m.task.as_str(), m.weight, m.label.as_deref()))
        .collect();
    assert_eq!(
        parts,
        [("squad", 1.0, None), ("mnli", 1.0, Some("entailment"))]
    );
    assert_eq!(c.get("lareqa").unwrap().head, Head::DualEncoder);
    assert_eq!(c.get("tatoeba").unwrap().head, Head::Retrieval);
}

const GRID_MIXTURE: &str = include_str!("fixtures/mixture_tasks.toml");

#[test]
fn grid_mixtures_are_checked_with_file_and_line() {
    let mut c = Catalog::builtin();
    let added = c.add_embedded(GRID_MIXTURE, "grid.toml").unwrap();
    assert_eq!(added.len(), 2);
    assert_eq!(c.get("mix").unwrap().mixture[2].task, "tatoeba-de-en");

    let cases = [
        (
            GRID_MIXTURE.replace("task = \"tatoeba-de-en\"", "task = \"tatoeba\""),
            "mixture[2].task: `tatoeba` has no train split to draw pairs from",
        ),
        (
            GRID_MIXTURE.replace("task = \"mnli\"", "task = \"mnly\""),
            "mixture[1].task: unknown task `mnly`",
        ),
        (
            GRID_MIXTURE.replace("weight = 2.0", "weight = 0.0"),
            "mixture[0].weight",
        ),
        (
            GRID_MIXTURE.replace("weight = 2.0", "weight = 2.0\nlabel = \"yes\""),
            "mixture[0].label: `yes` is not a label of `squad`",
        ),
        (
            GRID_MIXTURE.replace("task = \"squad\"", "task = \"xcopa\""),
            "gives no (query, candidate) pairs",
        ),
        (
            GRID_MIXTURE.replace(
                "[[tasks.mix.mixture]]\ntask = \"squad\"",
                "[[tasks.mix.layout]]\nreader = \"tsv\"\n[[tasks.mix.mixture]]\ntask = \"squad\"",
            ),
            "has no `layout`",
        ),
    ];
    for (text, says) in cases {
        let err = Catalog::builtin()
            .add_embedded(&text, "grid.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("grid.toml:"), "{err}");
        assert!(err.contains(says), "{says}: {err}");
    }
    // The line points at the mixture.
    let bad = GRID_MIXTURE.replace("task = \"mnli\"", "task = \"mnly\"");
    let err = Catalog::builtin()
        .add_embedded(&bad, "grid.toml")
        .unwrap_err()
        .to_string();
    let line = bad
        .lines()
        .position(|l| l == "[[tasks.mix.mixture]]")
        .unwrap()
        + 1;
    assert!(err.starts_with(&format!("grid.toml:{line}:")), "{err}");
    // A mixture task must be a dual-encoder intermediate task.
    let err = Catalog::builtin()
        .add_embedded(
            &GRID_MIXTURE.replace(
                "[tasks.mix]\nrole = \"intermediate\"",
                "[tasks.mix]\nrole = \"target\"",
            ),
            "grid.toml",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dual_encoder") && err.contains("intermediate"),
        "{err}"
    );
}
