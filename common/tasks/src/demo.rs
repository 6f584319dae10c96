//! The synthetic demo corpus (`common/tasks/demo/`, see its README), embedded so that the demo
//! tasks load on any machine. `generate.py` there writes the files; regenerate this list when
//! adding one.

/// (path relative to `demo/`, contents)
const FILES: &[(&str, &str)] = &[
    (
        "demo-nli-x/dev-de.tsv",
        include_str!("../demo/demo-nli-x/dev-de.tsv"),
    ),
    (
        "demo-nli-x/dev-en.tsv",
        include_str!("../demo/demo-nli-x/dev-en.tsv"),
    ),
    (
        "demo-nli-x/dev-es.tsv",
        include_str!("../demo/demo-nli-x/dev-es.tsv"),
    ),
    (
        "demo-nli-x/dev-fr.tsv",
        include_str!("../demo/demo-nli-x/dev-fr.tsv"),
    ),
    (
        "demo-nli-x/test-de.tsv",
        include_str!("../demo/demo-nli-x/test-de.tsv"),
    ),
    (
        "demo-nli-x/test-en.tsv",
        include_str!("../demo/demo-nli-x/test-en.tsv"),
    ),
    (
        "demo-nli-x/test-es.tsv",
        include_str!("../demo/demo-nli-x/test-es.tsv"),
    ),
    (
        "demo-nli-x/test-fr.tsv",
        include_str!("../demo/demo-nli-x/test-fr.tsv"),
    ),
    (
        "demo-nli-x/train-en.tsv",
        include_str!("../demo/demo-nli-x/train-en.tsv"),
    ),
    (
        "demo-nli/dev-en.tsv",
        include_str!("../demo/demo-nli/dev-en.tsv"),
    ),
    (
        "demo-nli/test-en.tsv",
        include_str!("../demo/demo-nli/test-en.tsv"),
    ),
    (
        "demo-nli/train-en.tsv",
        include_str!("../demo/demo-nli/train-en.tsv"),
    ),
    (
        "demo-sentiment/dev-en.tsv",
        include_str!("../demo/demo-sentiment/dev-en.tsv"),
    ),
    (
        "demo-sentiment/test-en.tsv",
        include_str!("../demo/demo-sentiment/test-en.tsv"),
    ),
    (
        "demo-sentiment/train-en.tsv",
        include_str!("../demo/demo-sentiment/train-en.tsv"),
    ),
];

/// The embedded demo file at `path` (relative to `demo/`, e.g. `demo-nli/train-en.tsv`).
pub fn file(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}

/// Paths of every embedded demo file.
pub fn files() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(p, _)| *p)
}
