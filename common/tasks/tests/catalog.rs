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
