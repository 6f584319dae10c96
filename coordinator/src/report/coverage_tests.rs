//! Coverage of the report's 95% intervals in simulated replicate worlds.
//!
//! Each world is one model trained on a grid of 2 targets (xnli: nli, xquad: qa) × 4 chains
//! (`none`, mnli: nli, squad: qa, sst2: sentiment) × 5 languages × 3 seeds. A language score is
//!
//!   base(target) + offset(language) + effect(intermediate, target)
//!     + u(intermediate, seed)          the intermediate training run, shared by every target
//!     + v(intermediate, target, seed)  the target training run, shared by every language
//!     + e(intermediate, target, language, seed)
//!
//! with true Δ = +2 for aligned cells (mnli→xnli, squad→xquad) and 0 for the others, so the true
//! aligned − not aligned contrast is +2 in every target. Seed-level noise (u, v) dominates the
//! per-language noise e, as it does for real fine-tuning runs. Worlds are independent and the RNG
//! is seeded, so the counts below are deterministic.
//!
//! The same worlds also score a naive interval that treats every (seed, language) pair as an
//! independent replicate: its coverage must fall below the bar, which shows that the check has
//! the power to fail a method that ignores the shared training run.

use stilts_common::rng::SplitMix64;
use stilts_tasks::Catalog;

use super::matrix::tests::Fixture;
use super::{ReportInput, Scope, build_with, catalog_tasks};

/// The common SplitMix64 with Box–Muller normals; only for generating the worlds.
struct Rng(SplitMix64);

impl Rng {
    fn normal(&mut self, sd: f64) -> f64 {
        let (a, b) = (self.0.unit(), self.0.unit());
        sd * (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }
}

const TARGETS: [(&str, f64); 2] = [("xnli", 75.0), ("xquad", 60.0)];
const CHAINS: [&str; 4] = ["none", "mnli", "squad", "sst2"];
const LANGUAGES: [(&str, f64); 5] = [
    ("en", 8.0),
    ("de", 2.0),
    ("fr", 2.5),
    ("es", 3.0),
    ("sw", -6.0),
];
const SEEDS: [u64; 3] = [1, 2, 3];
const SD_INTERMEDIATE_RUN: f64 = 1.2;
const SD_TARGET_RUN: f64 = 1.5;
const SD_LANGUAGE: f64 = 0.4;

fn true_effect(intermediate: &str, target: &str) -> f64 {
    match (intermediate, target) {
        ("mnli", "xnli") | ("squad", "xquad") => 2.0,
        _ => 0.0,
    }
}

/// One world: the report input and, for the naive control, the per-(seed, language)
/// aligned − not aligned differences of the non-English scope, per target then averaged.
fn world(rng: &mut Rng) -> (ReportInput, Vec<f64>) {
    let mut f = Fixture::new();
    // scores[chain][target][seed][language]
    let mut scores = vec![vec![vec![vec![0.0; LANGUAGES.len()]; SEEDS.len()]; 2]; CHAINS.len()];
    for (ci, chain) in CHAINS.iter().enumerate() {
        for (si, seed) in SEEDS.iter().enumerate() {
            let u = if *chain == "none" {
                0.0
            } else {
                rng.normal(SD_INTERMEDIATE_RUN)
            };
            for (ti, (target, base)) in TARGETS.iter().enumerate() {
                let v = rng.normal(SD_TARGET_RUN);
                for (li, (lang, offset)) in LANGUAGES.iter().enumerate() {
                    let x = base
                        + offset
                        + true_effect(chain, target)
                        + u
                        + v
                        + rng.normal(SD_LANGUAGE);
                    scores[ci][ti][si][li] = x;
                    if *target == "xquad" {
                        f.qa(chain, target, lang, *seed, x - 8.0, x + 8.0);
                    } else {
                        f.acc(chain, target, lang, *seed, x);
                    }
                }
            }
        }
    }
    // Naive units: (seed, non-English language); per target aligned Δ − mean not-aligned Δ.
    naive_units(&scores, f.input)
}

/// scores[chain][target][seed][language] → one aligned − not aligned value per (seed, language).
#[allow(clippy::needless_range_loop)] // the four indices address one score each
fn naive_units(scores: &[Vec<Vec<Vec<f64>>>], input: ReportInput) -> (ReportInput, Vec<f64>) {
    let mut units = Vec::new();
    for si in 0..SEEDS.len() {
        for li in 1..LANGUAGES.len() {
            let mut per_target = Vec::new();
            for (ti, (target, _)) in TARGETS.iter().enumerate() {
                let delta = |ci: usize| scores[ci][ti][si][li] - scores[0][ti][si][li];
                let (mut a, mut n) = (vec![], vec![]);
                for (ci, chain) in CHAINS.iter().enumerate().skip(1) {
                    if true_effect(chain, target) > 0.0 {
                        a.push(delta(ci));
                    } else {
                        n.push(delta(ci));
                    }
                }
                per_target.push(mean(&a) - mean(&n));
            }
            units.push(mean(&per_target));
        }
    }
    (input, units)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Naive t-interval over (seed, language) units, as if they were independent.
fn naive_interval(units: &[f64]) -> [f64; 2] {
    let n = units.len() as f64;
    let m = mean(units);
    let var = units.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    // t_{0.975, 11} = 2.200985 (11 = 3 seeds × 4 languages − 1).
    let half = 2.200_985 * (var / n).sqrt();
    [m - half, m + half]
}

struct Coverage {
    contrast: usize,
    contrast_total: usize,
    cells: usize,
    cells_total: usize,
    naive: usize,
}

fn simulate(worlds: usize) -> Coverage {
    let catalog = Catalog::builtin();
    let lookup = catalog_tasks(&catalog);
    let options = super::matrix::tests::small_options();
    let mut rng = Rng(SplitMix64::new(0x005E_ED0F_C0FE));
    let mut cov = Coverage {
        contrast: 0,
        contrast_total: 0,
        cells: 0,
        cells_total: 0,
        naive: 0,
    };
    for _ in 0..worlds {
        let (input, units) = world(&mut rng);
        let [lo, hi] = naive_interval(&units);
        cov.naive += usize::from(lo <= 2.0 && 2.0 <= hi);
        let report = build_with(&input, &lookup, &options);
        let m = &report.models[0];
        for a in m.alignment.iter().filter(|a| a.scope == Scope::NonEnglish) {
            let [lo, hi] = a
                .difference
                .and_then(|d| d.ci)
                .expect("an interval with 3 seeds");
            cov.contrast_total += 1;
            cov.contrast += usize::from(lo <= 2.0 && 2.0 <= hi);
        }
        for c in m.cells.iter().filter(|c| c.intermediate != "none") {
            let truth = true_effect(&c.intermediate, &c.target);
            if let Some(ci) = c
                .delta
                .as_ref()
                .and_then(|d| d.get(Scope::NonEnglish))
                .and_then(|e| e.value())
                .and_then(|s| s.ci)
            {
                cov.cells_total += 1;
                cov.cells += usize::from(ci[0] <= truth && truth <= ci[1]);
            }
        }
    }
    cov
}

#[test]
fn intervals_cover_the_truth_in_replicate_worlds() {
    let worlds = 400;
    let c = simulate(worlds);
    let rate = |k: usize, n: usize| k as f64 / n as f64;
    eprintln!(
        "coverage of nominal 95% over {worlds} worlds: aligned − not aligned {}/{} ({:.3}); \
         per-cell Δ {}/{} ({:.3}); naive (seed, language) control {}/{worlds} ({:.3})",
        c.contrast,
        c.contrast_total,
        rate(c.contrast, c.contrast_total),
        c.cells,
        c.cells_total,
        rate(c.cells, c.cells_total),
        c.naive,
        rate(c.naive, worlds),
    );
    assert_eq!(c.contrast_total, worlds);
    assert!(rate(c.contrast, c.contrast_total) >= 0.9);
    assert_eq!(c.cells_total, worlds * 6, "every Δ cell has an interval");
    assert!(rate(c.cells, c.cells_total) >= 0.9);
    // The check can fail: ignoring the shared training run gives intervals that are too short.
    assert!(rate(c.naive, worlds) < 0.9);
}
