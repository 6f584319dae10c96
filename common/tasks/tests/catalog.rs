//! The built-in catalog and user overrides.

use stilts_tasks::{Catalog, Head, Metric, Role, Split, load};

#[test]
fn builtin_has_every_task_with_official_languages() {
    let c = Catalog::builtin();
    for (name, n_langs) in [
        ("xnli", 15),
        ("xcopa", 11),
        ("udpos", 38),
        ("panx", 48),
        ("xquad", 12),
        ("mlqa", 7),
        ("tydiqa", 9),
        ("tatoeba", 41),
        ("lareqa", 11),
        ("mewslix", 11),
        ("pawsx", 7),
    ] {
        let t = c.get(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(t.languages.len(), n_langs, "{name}");
        assert_eq!(t.role, Role::Target);
    }
    for name in [
        "mnli",
        "anli",
        "snli",
        "qqp",
        "sst2",
        "imdb",
        "stsb",
        "hellaswag",
        "cosmosqa",
        "commonsenseqa",
        "siqa",
        "squad",
        "copa",
        "demo-nli",
        "demo-sentiment",
    ] {
        let t = c.get(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(t.role, Role::Intermediate, "{name}");
        assert_eq!(t.languages, ["en"], "{name}");
    }
    assert_eq!(c.get("xcopa").unwrap().english_train, ["siqa", "copa"]);
    assert_eq!(c.get("mlqa").unwrap().metric, Metric::Mlqa);
    assert_eq!(c.get("udpos").unwrap().labels.len(), 17);
    assert_eq!(c.get("panx").unwrap().head, Head::TokenClassification);
    assert_eq!(c.get("stsb").unwrap().head, Head::Regression);
    let domains: std::collections::BTreeSet<&str> = c.tasks().map(|t| t.domain.as_str()).collect();
    for d in [
        "nli",
        "qa",
        "commonsense_mc",
        "paraphrase",
        "sentiment",
        "tagging",
        "retrieval",
        "similarity",
    ] {
        assert!(domains.contains(d), "{d}");
    }
}

#[test]
fn user_file_adds_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.toml");
    std::fs::write(
        &path,
        r#"
[tasks.my-nli]
role = "intermediate"
domain = "nli"
head = "classification"
metric = "accuracy"
languages = ["en"]
labels = ["yes", "no"]

[[tasks.my-nli.layout]]
name = "mine"
kind = "original"
reader = "xtreme_pair_tsv"
dirs = ["mine"]
train = ["train.tsv"]

[tasks.xnli]
role = "target"
domain = "nli-override"
head = "classification"
metric = "accuracy"
languages = ["de"]
labels = ["contradiction", "entailment", "neutral"]

[[tasks.xnli.layout]]
name = "x"
kind = "xtreme"
reader = "xtreme_pair_tsv"
dev = ["dev-{lang}.tsv"]
"#,
    )
    .unwrap();
    let c = Catalog::with_user_file(&path).unwrap();
    assert_eq!(c.get("xnli").unwrap().domain, "nli-override");
    assert!(c.get("mnli").is_some());
    std::fs::create_dir_all(dir.path().join("mine")).unwrap();
    std::fs::write(dir.path().join("mine/train.tsv"), "a\tb\tyes\n").unwrap();
    let d = load(c.get("my-nli").unwrap(), Split::Train, "en", dir.path()).unwrap();
    assert_eq!(d.len(), 1);
}

#[test]
fn unknown_key_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[tasks.t]\nrole = \"target\"\ndomain = \"nli\"\nhead = \"classification\"\nmetric = \"accuracy\"\nlanguages = [\"en\"]\nlabelz = [\"a\"]\n",
    )
    .unwrap();
    let err = Catalog::with_user_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.toml:7:") && err.contains("labelz"),
        "{err}"
    );
    std::fs::write(
        &path,
        "[tasks.t]\nrole = \"target\"\ndomain = \"nli\"\nhead = \"classifier\"\n",
    )
    .unwrap();
    let err = Catalog::with_user_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.toml:4:") && err.contains("classifier"),
        "{err}"
    );
}

/// A grid's own task, as `[tasks.NAME]` sections among other grid keys.
const OWN_TASK: &str = r#"[sweep]
name = "x"

[tasks.reviews]
role = "target"
domain = "sentiment"
head = "classification"
metric = "accuracy"
languages = ["en", "de"]
labels = ["neg", "pos"]
description = "my reviews"

[[tasks.reviews.layout]]
reader = "csv"
dirs = ["reviews"]
columns = { text = "review", label = "stars" }
train = ["train.csv"]
dev = ["dev-{lang}.csv"]
test = ["test-{lang}.csv"]
"#;

#[test]
fn grid_tasks_are_added_and_loaded_with_a_column_mapping() {
    let mut c = Catalog::builtin();
    let added = c.add_embedded(OWN_TASK, "grid.toml").unwrap();
    assert_eq!(added.len(), 1);
    let t = c.get("reviews").unwrap();
    assert_eq!(t.domain, "sentiment");
    assert_eq!(t.layouts[0].name, "files", "default layout name");

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("reviews")).unwrap();
    std::fs::write(
        root.join("reviews/train.csv"),
        "id,review,stars\n1,\"great, really\",pos\n2,awful,neg\n",
    )
    .unwrap();
    std::fs::write(
        root.join("reviews/dev-de.csv"),
        "review,stars\ntoll,pos\nmies,bad\n",
    )
    .unwrap();
    std::fs::write(root.join("reviews/test-de.csv"), "review\nunlabelled\n").unwrap();
    let stilts_tasks::Dataset::Pairs(train) = load(t, Split::Train, "en", root).unwrap() else {
        panic!("pairs expected")
    };
    assert_eq!(train.len(), 2);
    assert_eq!(train[0].text_a, "great, really");
    assert_eq!(train[0].label, stilts_tasks::Label::Class(1));
    let stilts_tasks::Dataset::Pairs(test) = load(t, Split::Test, "de", root).unwrap() else {
        panic!("pairs expected")
    };
    assert_eq!(test[0].label, stilts_tasks::Label::None);
    // A label outside the task's label set names the data file and line.
    let e = load(t, Split::Dev, "de", root).unwrap_err().to_string();
    assert!(
        e.contains("dev-de.csv:3") && e.contains("unknown label `bad`"),
        "{e}"
    );
}

#[test]
fn tsv_and_jsonl_readers_map_pairs_and_scores() {
    let grid = r#"
[tasks.sim]
role = "intermediate"
domain = "similarity"
head = "regression"
metric = "pearson_spearman"
languages = ["en"]
[[tasks.sim.layout]]
reader = "jsonl"
columns = { text = "a", pair = "b", label = "score" }
train = ["train.jsonl"]
[[tasks.sim.layout]]
name = "tsv"
reader = "tsv"
columns = { text = "s1", pair = "s2", label = "y" }
dev = ["dev.tsv"]
"#;
    let mut c = Catalog::default();
    c.add_embedded(grid, "g.toml").unwrap();
    let t = c.get("sim").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sim");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("train.jsonl"),
        "{\"a\": \"x\", \"b\": \"y\", \"score\": 3.5}\n",
    )
    .unwrap();
    std::fs::write(root.join("dev.tsv"), "s1\ts2\ty\np\tq\tnot-a-number\n").unwrap();
    let stilts_tasks::Dataset::Pairs(train) = load(t, Split::Train, "en", dir.path()).unwrap()
    else {
        panic!("pairs expected")
    };
    assert_eq!(train[0].text_b.as_deref(), Some("y"));
    assert_eq!(train[0].label, stilts_tasks::Label::Score(3.5));
    let e = load(t, Split::Dev, "en", dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("dev.tsv:2") && e.contains("not a number"), "{e}");
}

#[test]
fn bad_grid_tasks_name_file_line_and_column() {
    let cases: [(&str, &str, &str); 5] = [
        (
            "unknown key",
            "[tasks.t]\nrole = \"target\"\ndomian = \"x\"\n",
            "g.toml:3:1",
        ),
        (
            "unknown reader",
            "[tasks.t]\nrole = \"target\"\ndomain = \"x\"\nhead = \"classification\"\nmetric = \"accuracy\"\nlanguages = [\"en\"]\nlabels = [\"a\"]\n[[tasks.t.layout]]\nreader = \"parquet\"\ntrain = [\"t\"]\n",
            "g.toml:9:10",
        ),
        (
            "clash with a built-in task",
            "[tasks.xnli]\nrole = \"target\"\ndomain = \"x\"\nhead = \"classification\"\nmetric = \"accuracy\"\nlanguages = [\"en\"]\nlabels = [\"a\"]\n[[tasks.xnli.layout]]\nreader = \"xtreme_pair_tsv\"\ntrain = [\"t\"]\n",
            "g.toml:1:8",
        ),
        (
            "csv without columns",
            "[tasks.t]\nrole = \"target\"\ndomain = \"x\"\nhead = \"classification\"\nmetric = \"accuracy\"\nlanguages = [\"en\"]\nlabels = [\"a\"]\n[[tasks.t.layout]]\nreader = \"csv\"\ntrain = [\"t\"]\n",
            "g.toml:1:8",
        ),
        (
            "classification without labels",
            "[tasks.t]\nrole = \"target\"\ndomain = \"x\"\nhead = \"classification\"\nmetric = \"accuracy\"\nlanguages = [\"en\"]\n[[tasks.t.layout]]\nreader = \"csv\"\ncolumns = { text = \"a\" }\ntrain = [\"t\"]\n",
            "g.toml:1:8",
        ),
    ];
    for (what, text, at) in cases {
        let mut c = Catalog::builtin();
        let e = c.add_embedded(text, "g.toml").unwrap_err().to_string();
        assert!(e.starts_with(at), "{what}: {e}");
    }
}
