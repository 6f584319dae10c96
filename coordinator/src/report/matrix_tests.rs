//! Hand-computed checks of the matrix (see the numbers in each comment).

use stilts_tasks::Catalog;

use super::super::{
    CellOutcome, CellState, ReportInput, ReportOptions, ResultValue, build_with, catalog_tasks,
};
use super::*;

pub(crate) struct Fixture {
    pub input: ReportInput,
}

impl Fixture {
    pub fn new() -> Self {
        Fixture {
            input: ReportInput {
                sweep: "test".into(),
                ..Default::default()
            },
        }
    }
    pub fn failed(&mut self, i: &str, t: &str, l: &str, seed: u64) {
        self.cell(i, t, l, seed, CellState::Failed);
    }
    fn cell(&mut self, i: &str, t: &str, l: &str, seed: u64, state: CellState) {
        self.input.cells.push(CellOutcome {
            model: "m".into(),
            intermediate: i.into(),
            target: t.into(),
            language: l.into(),
            seed,
            state,
            reason: (state == CellState::Failed).then(|| "target: exit status 1".to_string()),
        });
    }
    /// A succeeded cell with its metrics.
    pub fn done(&mut self, i: &str, t: &str, l: &str, seed: u64, metrics: &[(&str, f64)]) {
        self.cell(i, t, l, seed, CellState::Succeeded);
        for (metric, value) in metrics {
            self.input.results.push(ResultValue {
                model: "m".into(),
                intermediate: i.into(),
                target: t.into(),
                language: l.into(),
                seed,
                metric: metric.to_string(),
                value: *value,
                job_key: format!("eval-{i}-{t}-{seed}"),
            });
        }
    }
    pub fn acc(&mut self, i: &str, t: &str, l: &str, seed: u64, v: f64) {
        self.done(i, t, l, seed, &[("accuracy", v)]);
    }
    pub fn qa(&mut self, i: &str, t: &str, l: &str, seed: u64, em: f64, f1: f64) {
        self.done(i, t, l, seed, &[("exact_match", em), ("f1", f1)]);
    }
}

/// xnli (accuracy, en+de) and xquad (QA, en+de), seeds 1 and 2; intermediates none, mnli (nli),
/// squad (qa), sst2 (sentiment, xquad only).
pub(crate) fn fixture() -> Fixture {
    let mut f = Fixture::new();
    // xnli. none: seed 1 → (80+70)/2 = 75, seed 2 → 77.
    f.acc("none", "xnli", "en", 1, 80.0);
    f.acc("none", "xnli", "de", 1, 70.0);
    f.acc("none", "xnli", "en", 2, 82.0);
    f.acc("none", "xnli", "de", 2, 72.0);
    // mnli: 78.5 (Δ 3.5; non-en 74−70 = 4), 79.5 (Δ 2.5; non-en 3).
    f.acc("mnli", "xnli", "en", 1, 83.0);
    f.acc("mnli", "xnli", "de", 1, 74.0);
    f.acc("mnli", "xnli", "en", 2, 84.0);
    f.acc("mnli", "xnli", "de", 2, 75.0);
    // squad: seed 1 fine, seed 2 de failed.
    f.acc("squad", "xnli", "en", 1, 80.0);
    f.acc("squad", "xnli", "de", 1, 71.0);
    f.acc("squad", "xnli", "en", 2, 81.0);
    f.cell("squad", "xnli", "de", 2, CellState::Failed);
    // xquad. none: seed 1 → en 70, de 50 → 60; seed 2 → en 71, de 52 → 61.5.
    f.qa("none", "xquad", "en", 1, 60.0, 80.0);
    f.qa("none", "xquad", "de", 1, 40.0, 60.0);
    f.qa("none", "xquad", "en", 2, 62.0, 80.0);
    f.qa("none", "xquad", "de", 2, 42.0, 62.0);
    // squad: seed 1 → 75, 55 → 65 (Δ 5; non-en 5); seed 2 → 74, 57 → 65.5 (Δ 4; non-en 5).
    f.qa("squad", "xquad", "en", 1, 66.0, 84.0);
    f.qa("squad", "xquad", "de", 1, 46.0, 64.0);
    f.qa("squad", "xquad", "en", 2, 64.0, 84.0);
    f.qa("squad", "xquad", "de", 2, 48.0, 66.0);
    // mnli: seed 1 → 70, 51 → 60.5 (Δ 0.5; non-en 1); seed 2 → 72, 52 → 62 (Δ 0.5; non-en 0).
    f.qa("mnli", "xquad", "en", 1, 60.0, 80.0);
    f.qa("mnli", "xquad", "de", 1, 42.0, 60.0);
    f.qa("mnli", "xquad", "en", 2, 62.0, 82.0);
    f.qa("mnli", "xquad", "de", 2, 42.0, 62.0);
    // sst2: seed 1 only; seed 2 has neither cells nor results (a missing seed).
    f.qa("sst2", "xquad", "en", 1, 60.0, 80.0);
    f.qa("sst2", "xquad", "de", 1, 40.0, 60.0);
    f
}

pub(crate) fn small_options() -> ReportOptions {
    ReportOptions::default()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn value(e: Option<&Entry>) -> Summary {
    *e.and_then(Entry::value).expect("a value")
}

#[test]
fn matrix_numbers() {
    let catalog = Catalog::builtin();
    let report = build_with(&fixture().input, &catalog_tasks(&catalog), &small_options());
    assert_eq!(report.models.len(), 1);
    let m = &report.models[0];
    let rows: Vec<&str> = m.rows.iter().map(|r| r.intermediate.as_str()).collect();
    // none first, then by domain: nli (mnli), qa (squad), sentiment (sst2).
    assert_eq!(rows, ["none", "mnli", "squad", "sst2"]);
    assert_eq!(m.targets, ["xnli", "xquad"]);

    let base = m.cell("none", "xnli").unwrap();
    let s = value(base.absolute.get(Scope::All));
    assert!(close(s.mean, 76.0) && close(s.sd.unwrap(), 2f64.sqrt()) && s.n == 2);
    assert!(base.delta.is_none());

    let c = m.cell("mnli", "xnli").unwrap();
    assert_eq!(c.aligned, Some(true));
    let d = value(c.delta.as_ref().unwrap().get(Scope::All));
    // Δ per seed 3.5 and 2.5: mean 3, sd √0.5.
    assert!(close(d.mean, 3.0) && close(d.sd.unwrap(), 0.5f64.sqrt()) && d.n == 2);
    let d = value(c.delta.as_ref().unwrap().get(Scope::NonEnglish));
    assert!(close(d.mean, 3.5) && close(d.sd.unwrap(), 0.5f64.sqrt()));
    let a = value(c.absolute.get(Scope::All));
    assert!(close(a.mean, 79.0));

    // QA: (EM+F1)/2 per language; Δ 5 and 4.
    let c = m.cell("squad", "xquad").unwrap();
    let d = value(c.delta.as_ref().unwrap().get(Scope::All));
    assert!(close(d.mean, 4.5) && close(d.sd.unwrap(), 0.5f64.sqrt()));
    let d = value(c.delta.as_ref().unwrap().get(Scope::NonEnglish));
    assert!(close(d.mean, 5.0) && close(d.sd.unwrap(), 0.0));

    // A failed language: never a number, the failure counted; the other seed stays per seed.
    let c = m.cell("squad", "xnli").unwrap();
    let e = c.delta.as_ref().unwrap().all;
    assert_eq!(e.value(), None);
    assert_eq!(e.gap_label().as_deref(), Some("failed (1)"));
    assert_eq!(c.absolute.all.gap_label().as_deref(), Some("failed (1)"));
    assert_eq!(c.per_seed[0].delta.as_ref().unwrap().all, Some(0.5));
    assert_eq!(c.per_seed[1].delta.as_ref().unwrap().all, None);

    // A missing seed: both languages of seed 2 absent.
    let c = m.cell("sst2", "xquad").unwrap();
    let e = c.delta.as_ref().unwrap().all;
    assert_eq!(e.gap_label().as_deref(), Some("missing (2)"));
    match e {
        Entry::Incomplete { own, baseline } => {
            assert_eq!(own.absent, 2);
            assert_eq!(baseline.total(), 0);
        }
        Entry::Value(_) => unreachable!(),
    }
    assert!(m.cell("sst2", "xnli").is_none(), "not in the grid");

    // Per-language table of xnli: de Δ 4 and 3.
    let table = m.languages.iter().find(|t| t.target == "xnli").unwrap();
    assert_eq!(table.languages, ["de", "en"]);
    let row = table
        .rows
        .iter()
        .find(|r| r.intermediate == "mnli")
        .unwrap();
    let de = value(row.delta.as_ref().unwrap().first());
    assert!(close(de.mean, 3.5) && close(de.sd.unwrap(), 0.5f64.sqrt()));
    let squad = table
        .rows
        .iter()
        .find(|r| r.intermediate == "squad")
        .unwrap();
    assert_eq!(
        squad.delta.as_ref().unwrap()[0].gap_label().as_deref(),
        Some("failed (1)")
    );
    assert!(
        squad.delta.as_ref().unwrap()[1].value().is_some(),
        "en is complete"
    );
}

#[test]
fn alignment_groups() {
    let catalog = Catalog::builtin();
    let report = build_with(&fixture().input, &catalog_tasks(&catalog), &small_options());
    let m = &report.models[0];
    let non_en = &m.alignment[0];
    assert_eq!(non_en.scope, Scope::NonEnglish, "the headline comes first");
    // squad→xnli and sst2→xquad are incomplete. xnli has only an aligned cell (mnli: 4, 3), so
    // only xquad is contrasted: squad (5, 5) − mnli (1, 0) = (4, 5) per seed.
    let d = non_en.difference.unwrap();
    assert!(close(d.mean, 4.5) && d.n == 2 && d.ci.is_none());
    assert_eq!(non_en.seeds, [1, 2]);
    // Aligned: per seed mean over xnli (4, 3) and xquad (5, 5) = (4.5, 4) → 4.25.
    assert!(close(non_en.aligned.summary.unwrap().mean, 4.25));
    assert_eq!((non_en.aligned.cells.len(), non_en.aligned.targets), (2, 2));
    assert!(close(non_en.not_aligned.summary.unwrap().mean, 0.5));
    assert_eq!(non_en.excluded.len(), 2);
    assert!(non_en.excluded.iter().all(|e| e.reason == "incomplete"));
    let xnli = non_en.targets.iter().find(|t| t.target == "xnli").unwrap();
    assert_eq!(xnli.flags, ["one aligned cell", "no not-aligned cell"]);
    assert_eq!(xnli.difference, None);

    let all = &m.alignment[1];
    assert_eq!(all.scope, Scope::All);
    // xquad: squad (5, 4) − mnli (0.5, 0.5) = (4.5, 3.5).
    assert!(close(all.difference.unwrap().mean, 4.0));
    // Same cells in both scopes.
    assert_eq!(all.excluded, non_en.excluded);
    assert_eq!(all.aligned.cells, non_en.aligned.cells);
    let md = report.markdown();
    assert!(
        md.contains(
            "Left out (every scope): squad → xnli (incomplete); sst2 → xquad (incomplete)."
        ),
        "{md}"
    );
    assert!(md.contains("| xnli | mnli | — | — | one aligned cell; no not-aligned cell |"));
}

#[test]
fn scopes_share_cells_english_beside_and_transfer_gap() {
    let mut f = fixture();
    // xnli gets a third language whose English unit fails for mnli on seed 1.
    f.input.cells.retain(|c| {
        !(c.intermediate == "mnli" && c.target == "xnli" && c.language == "en" && c.seed == 1)
    });
    f.input.results.retain(|r| {
        !(r.intermediate == "mnli" && r.target == "xnli" && r.language == "en" && r.seed == 1)
    });
    f.failed("mnli", "xnli", "en", 1);
    let catalog = Catalog::builtin();
    let report = build_with(&f.input, &catalog_tasks(&catalog), &small_options());
    let m = &report.models[0];
    let c = m.cell("mnli", "xnli").unwrap();
    let d = c.delta.as_ref().unwrap();
    // A failed English unit drops the cell from every scope, not only from "all languages".
    for scope in Scope::ORDER {
        assert_eq!(
            d.get(scope).unwrap().gap_label().as_deref(),
            Some("failed (1)"),
            "{scope:?}"
        );
    }
    assert!(m.alignment.iter().all(|a| {
        a.excluded
            .iter()
            .any(|e| e.intermediate == "mnli" && e.target == "xnli")
    }));

    // The untouched fixture: English beside, and the transfer gap en − non-English.
    let report = build_with(&fixture().input, &catalog_tasks(&catalog), &small_options());
    let m = &report.models[0];
    let base = m.cell("none", "xnli").unwrap();
    // en 80, 82 → 81; gap (80 − 70, 82 − 72) = 10.
    assert!(close(value(base.absolute.get(Scope::English)).mean, 81.0));
    let gap = value(base.transfer_gap.as_ref());
    assert!(close(gap.mean, 10.0) && close(gap.sd.unwrap(), 0.0));
    // mnli: (83 − 74, 84 − 75) = 9.
    let gap = value(m.cell("mnli", "xnli").unwrap().transfer_gap.as_ref());
    assert!(close(gap.mean, 9.0));
    // English Δ of mnli→xnli: (83 − 80, 84 − 82) = 3, 2.
    let d = value(
        m.cell("mnli", "xnli")
            .unwrap()
            .delta
            .as_ref()
            .unwrap()
            .get(Scope::English),
    );
    assert!(close(d.mean, 2.5));
}

#[test]
fn qa_cells_carry_f1_and_em_alone() {
    let catalog = Catalog::builtin();
    let report = build_with(&fixture().input, &catalog_tasks(&catalog), &small_options());
    let m = &report.models[0];
    let c = m.cell("squad", "xquad").unwrap();
    let names: Vec<&str> = c.metrics.iter().map(|p| p.metric.as_str()).collect();
    assert_eq!(names, ["exact_match", "f1"]);
    let f1 = &c.metrics[1];
    // de F1 64, 66 → 65; EM 46, 48 → 47; Δ F1 against none (60, 62): 4, 4.
    assert!(close(value(f1.absolute.get(Scope::NonEnglish)).mean, 65.0));
    let em = &c.metrics[0];
    assert!(close(value(em.absolute.get(Scope::NonEnglish)).mean, 47.0));
    let d = value(f1.delta.as_ref().unwrap().get(Scope::NonEnglish));
    assert!(close(d.mean, 4.0));
    // (EM + F1) / 2 stays the score: (47 + 65) / 2 = 56.
    assert!(close(value(c.absolute.get(Scope::NonEnglish)).mean, 56.0));
    assert!(m.cell("mnli", "xnli").unwrap().metrics.is_empty());
    let md = report.markdown();
    assert!(md.contains("### QA: F1 / EM, non-English"), "{md}");
    assert!(md.contains("| squad | qa | 65.00 / 47.00 |"), "{md}");
}

#[test]
fn three_seeds_give_a_t_interval_two_do_not() {
    let mut f = Fixture::new();
    for (seed, d) in [(1, 1.0), (2, 2.0), (3, 6.0)] {
        f.acc("none", "xnli", "de", seed, 70.0);
        f.acc("mnli", "xnli", "de", seed, 70.0 + d);
    }
    let catalog = Catalog::builtin();
    let report = build_with(&f.input, &catalog_tasks(&catalog), &small_options());
    let d = value(
        report.models[0]
            .cell("mnli", "xnli")
            .unwrap()
            .delta
            .as_ref()
            .unwrap()
            .get(Scope::NonEnglish),
    );
    // mean 3, sd √7; half-width t_{0.975,2} · √7 / √3 = 4.302653 · 1.527525 = 6.572411.
    let [lo, hi] = d.ci.unwrap();
    assert!(
        (lo - (3.0 - 6.572_411)).abs() < 1e-5 && (hi - (3.0 + 6.572_411)).abs() < 1e-5,
        "{d:?}"
    );
    assert!(report.markdown().contains("**+3.00 [-3.57, +9.57] (n=3)**"));

    let two = fixture();
    let report = build_with(&two.input, &catalog_tasks(&catalog), &small_options());
    assert!(report.markdown().contains("**+3.50 (n = 2, no interval)**"));
}

#[test]
fn baseline_gaps_are_named_as_such() {
    let mut f = Fixture::new();
    f.acc("none", "xnli", "de", 1, 70.0);
    f.failed("none", "xnli", "de", 2);
    f.acc("mnli", "xnli", "de", 1, 72.0);
    f.acc("mnli", "xnli", "de", 2, 73.0);
    f.failed("squad", "xnli", "de", 1);
    f.acc("squad", "xnli", "de", 2, 73.0);
    let catalog = Catalog::builtin();
    let report = build_with(&f.input, &catalog_tasks(&catalog), &small_options());
    let m = &report.models[0];
    let label = |i: &str| {
        m.cell(i, "xnli")
            .unwrap()
            .delta
            .as_ref()
            .unwrap()
            .all
            .gap_label()
    };
    assert_eq!(label("mnli").as_deref(), Some("baseline failed (1)"));
    assert_eq!(label("squad").as_deref(), Some("failed (1)"));
    // The row's own scores are complete: its absolute entry has a value.
    assert!(
        m.cell("mnli", "xnli")
            .unwrap()
            .absolute
            .all
            .value()
            .is_some()
    );
}

#[test]
fn pending_and_fallback_tasks() {
    let mut f = Fixture::new();
    // A command-executor task: unknown to the catalog, one metric `bleu`.
    f.done("none", "mt", "de", 1, &[("bleu", 30.0)]);
    f.done("pre", "mt", "de", 1, &[("bleu", 33.0)]);
    f.done("none", "mt", "fr", 1, &[("bleu", 20.0)]);
    f.cell("pre", "mt", "fr", 1, CellState::Running);
    f.cell("other", "mt", "de", 1, CellState::Cancelled);
    f.done("other", "mt", "fr", 1, &[("bleu", 26.0)]);
    let catalog = Catalog::builtin();
    let report = build_with(&f.input, &catalog_tasks(&catalog), &small_options());
    assert_eq!(
        report.targets[0].score,
        Some(ScoreRule::Metric("bleu".into()))
    );
    assert_eq!(report.targets[0].domain, UNKNOWN_DOMAIN);
    let m = &report.models[0];
    let pre = m.cell("pre", "mt").unwrap();
    assert_eq!(pre.aligned, None);
    assert_eq!(
        pre.delta.as_ref().unwrap().all.gap_label().as_deref(),
        Some("missing (1)")
    );
    // No English: the non-English scope equals the whole.
    let other = m.cell("other", "mt").unwrap();
    match other.delta.as_ref().unwrap().all {
        Entry::Incomplete { own, .. } => assert_eq!(own.cancelled, 1),
        Entry::Value(_) => unreachable!(),
    }
    assert!(
        m.alignment[0]
            .excluded
            .iter()
            .all(|e| e.reason == "unknown domain")
    );
    assert_eq!(m.alignment[0].difference, None);
}

#[test]
fn no_score_metric_is_missing_with_a_warning() {
    let mut f = Fixture::new();
    f.done("none", "mt", "de", 1, &[("bleu", 30.0), ("chrf", 50.0)]);
    let report = build_with(&f.input, &|_: &str| TaskInfo::unknown(), &small_options());
    assert_eq!(report.targets[0].score, None);
    // One for the unresolved rule, one "metric missing" for the succeeded unit.
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    assert!(report.warnings[1].starts_with("metric missing: 1 succeeded"));
    let c = report.models[0].cell("none", "mt").unwrap();
    assert_eq!(
        c.absolute.all.gap_label().as_deref(),
        Some("metric missing (1)")
    );
}
