//! Aligned vs not aligned: does an intermediate task of the target's own domain help more?
//!
//! # Seeds are the unit of replication
//!
//! One seed of one (model, intermediate) is one set of training runs: the intermediate checkpoint
//! (shared by every target) and one target fine-tuning per target (shared by every language of
//! that target). A training run moves all its languages together, so the languages of one seed
//! are not independent replicates; the seeds are. Every interval here is therefore computed from
//! **one number per seed**, paired by seed with the `none` baseline of the same seed:
//!
//! * per cell (intermediate *i*, target *t*, scope): Δ(s) = task score_i(t, s) − task
//!   score_none(t, s), the matrix entry (see `matrix.rs`);
//! * the interval is the Student t-interval mean ± t_{(1+c)/2, n−1} · sd / √n over the n
//!   per-seed values (c = [`IntervalOptions::confidence`]). With training-run noise roughly
//!   normal it has exact coverage for any n ≥ 2, which a bootstrap over 3 seeds (10 distinct
//!   resamples) cannot have. Below 3 seeds no interval is given ("n = 2, no interval"): with
//!   one degree of freedom t = 12.7 and the sd rests on a single difference.
//!
//! `coverage_tests.rs` checks the coverage by simulation.
//!
//! # The contrast, within each target
//!
//! Per model and scope, every non-baseline cell whose Δ entry is complete and whose two domains
//! are known is **aligned** when domain(*i*) == domain(*t*), else **not aligned**; the rest are
//! listed in [`AlignmentSummary::excluded`]. Different targets differ in difficulty and in how
//! much any intermediate task moves them, so groups are never pooled across targets:
//!
//! 1. per target *t* and seed *s*: A_t(s) = mean Δ(s) of its aligned cells, N_t(s) = mean Δ(s)
//!    of its not-aligned cells, and the contrast C_t(s) = A_t(s) − N_t(s) (paired by seed);
//! 2. the targets with both groups are combined with **equal weight**, per seed:
//!    C(s) = mean_t C_t(s), over the seeds every such target has;
//! 3. [`AlignmentSummary::difference`] is the t-interval summary of C(s) over those seeds; the
//!    group summaries do the same with mean_t A_t(s) and mean_t N_t(s) over the targets having
//!    that group.
//!
//! A group of one cell in a target is flagged: that target's contrast is then one intermediate
//! task against the others, so alignment is confounded with that task.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::entry::{Scope, Summary};

/// Settings of every interval in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalOptions {
    /// Confidence level of the t-intervals (default 0.95).
    pub confidence: f64,
}

impl Default for IntervalOptions {
    fn default() -> Self {
        IntervalOptions { confidence: 0.95 }
    }
}

/// A complete, domain-labelled matrix cell with its per-seed Δ in one scope.
pub(crate) struct AlignCell {
    pub intermediate: String,
    pub target: String,
    pub aligned: bool,
    /// (seed, Δ of the task score in the scope), one per seed of the target.
    pub per_seed: Vec<(u64, f64)>,
}

/// A (intermediate, target) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellRef {
    pub intermediate: String,
    pub target: String,
}

/// A cell left out of both groups, and why (`incomplete`, `unknown domain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Excluded {
    pub intermediate: String,
    pub target: String,
    pub reason: String,
}

/// One group's cells and its mean Δ over targets (equal weight), summarised over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStat {
    pub cells: Vec<CellRef>,
    /// Number of targets with a cell in this group.
    pub targets: usize,
    /// `None` without cells.
    pub summary: Option<Summary>,
}

/// Aligned vs not aligned within one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetContrast {
    pub target: String,
    pub aligned: Vec<String>,
    pub not_aligned: Vec<String>,
    /// Per seed: mean aligned Δ − mean not-aligned Δ; `None` unless both groups have cells.
    pub difference: Option<Summary>,
    /// `one aligned cell`, `one not-aligned cell`, `no aligned cell`, `no not-aligned cell`.
    pub flags: Vec<String>,
}

/// Aligned vs not aligned for one model and scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignmentSummary {
    pub scope: Scope,
    pub aligned: GroupStat,
    pub not_aligned: GroupStat,
    /// Equal-weight mean over the contrasted targets of the within-target contrast, per seed,
    /// summarised over [`AlignmentSummary::seeds`]; `None` unless some target has both groups.
    pub difference: Option<Summary>,
    /// The seeds the difference pairs (those every contrasted target has).
    pub seeds: Vec<u64>,
    pub targets: Vec<TargetContrast>,
    pub excluded: Vec<Excluded>,
}

fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut n, mut sum) = (0usize, 0.0);
    for v in values {
        n += 1;
        sum += v;
    }
    (n > 0).then(|| sum / n as f64)
}

/// Per seed, the mean Δ of `cells` (which share their target's seeds).
fn per_seed_mean(cells: &[&AlignCell]) -> BTreeMap<u64, f64> {
    let mut sums: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for c in cells {
        for (s, d) in &c.per_seed {
            let e = sums.entry(*s).or_default();
            e.0 += d;
            e.1 += 1;
        }
    }
    sums.into_iter()
        .filter(|(_, (_, k))| *k == cells.len())
        .map(|(s, (sum, k))| (s, sum / k as f64))
        .collect()
}

/// Equal-weight mean over targets per seed, on the seeds every target has.
fn combine(per_target: &[BTreeMap<u64, f64>], confidence: f64) -> (Option<Summary>, Vec<u64>) {
    let Some(first) = per_target.first() else {
        return (None, vec![]);
    };
    let seeds: Vec<u64> = first
        .keys()
        .copied()
        .filter(|s| per_target.iter().all(|t| t.contains_key(s)))
        .collect();
    let values: Vec<f64> = seeds
        .iter()
        .filter_map(|s| mean(per_target.iter().map(|t| t[s])))
        .collect();
    (Summary::of(&values, confidence), seeds)
}

pub(crate) fn summarize(
    scope: Scope,
    cells: &[AlignCell],
    excluded: Vec<(String, String, String)>,
    options: &IntervalOptions,
) -> AlignmentSummary {
    let confidence = options.confidence;
    let targets: BTreeSet<&str> = cells.iter().map(|c| c.target.as_str()).collect();
    let mut contrasts = Vec::new();
    let (mut a_series, mut n_series, mut d_series) = (vec![], vec![], vec![]);
    for t in targets {
        let group = |flag: bool| -> Vec<&AlignCell> {
            cells
                .iter()
                .filter(|c| c.target == t && c.aligned == flag)
                .collect()
        };
        let (a, n) = (group(true), group(false));
        let names = |g: &[&AlignCell]| g.iter().map(|c| c.intermediate.clone()).collect();
        let mut flags = Vec::new();
        for (g, label) in [(&a, "aligned"), (&n, "not-aligned")] {
            match g.len() {
                0 => flags.push(format!("no {label} cell")),
                1 => flags.push(format!("one {label} cell")),
                _ => {}
            }
        }
        let (am, nm) = (per_seed_mean(&a), per_seed_mean(&n));
        let diff: BTreeMap<u64, f64> = am
            .iter()
            .filter_map(|(s, x)| nm.get(s).map(|y| (*s, x - y)))
            .collect();
        let both = !a.is_empty() && !n.is_empty();
        let difference = if both {
            Summary::of(&diff.values().copied().collect::<Vec<_>>(), confidence)
        } else {
            None
        };
        if !a.is_empty() {
            a_series.push(am);
        }
        if !n.is_empty() {
            n_series.push(nm);
        }
        if both {
            d_series.push(diff);
        }
        contrasts.push(TargetContrast {
            target: t.to_string(),
            aligned: names(&a),
            not_aligned: names(&n),
            difference,
            flags,
        });
    }
    let refs = |flag: bool| -> Vec<CellRef> {
        cells
            .iter()
            .filter(|c| c.aligned == flag)
            .map(|c| CellRef {
                intermediate: c.intermediate.clone(),
                target: c.target.clone(),
            })
            .collect()
    };
    let (difference, seeds) = combine(&d_series, confidence);
    AlignmentSummary {
        scope,
        aligned: GroupStat {
            cells: refs(true),
            targets: a_series.len(),
            summary: combine(&a_series, confidence).0,
        },
        not_aligned: GroupStat {
            cells: refs(false),
            targets: n_series.len(),
            summary: combine(&n_series, confidence).0,
        },
        difference,
        seeds,
        targets: contrasts,
        excluded: excluded
            .into_iter()
            .map(|(intermediate, target, reason)| Excluded {
                intermediate,
                target,
                reason,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(i: &str, t: &str, aligned: bool, per_seed: &[f64]) -> AlignCell {
        AlignCell {
            intermediate: i.into(),
            target: t.into(),
            aligned,
            per_seed: (1..).zip(per_seed.iter().copied()).collect(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn contrast_is_within_target_then_equal_weight() {
        // xnli: aligned mnli (2, 4, 3), not aligned squad (0, 1, −1) and sst2 (1, 1, 1):
        //   C = (2 − 0.5, 4 − 1, 3 − 0) = (1.5, 3, 3).
        // xquad: aligned squad (5, 5, 8), not aligned mnli (1, 2, 3): C = (4, 3, 5).
        // Combined per seed: (2.75, 3, 4) → mean 3.25, sd √(0.4375) = 0.6614.
        let cells = [
            cell("mnli", "xnli", true, &[2.0, 4.0, 3.0]),
            cell("squad", "xnli", false, &[0.0, 1.0, -1.0]),
            cell("sst2", "xnli", false, &[1.0, 1.0, 1.0]),
            cell("squad", "xquad", true, &[5.0, 5.0, 8.0]),
            cell("mnli", "xquad", false, &[1.0, 2.0, 3.0]),
        ];
        let s = summarize(
            Scope::NonEnglish,
            &cells,
            vec![],
            &IntervalOptions::default(),
        );
        let d = s.difference.unwrap();
        assert!(close(d.mean, 3.25) && d.n == 3);
        assert!(close(d.sd.unwrap(), 0.4375f64.sqrt()));
        // t_{0.975, 2} = 4.302653: half-width 4.302653 · 0.6614 / √3.
        let half = 4.302_653 * 0.4375f64.sqrt() / 3f64.sqrt();
        let [lo, hi] = d.ci.unwrap();
        assert!((lo - (3.25 - half)).abs() < 1e-5 && (hi - (3.25 + half)).abs() < 1e-5);
        assert_eq!(s.seeds, [1, 2, 3]);
        // Aligned: per seed mean of (mnli→xnli, squad→xquad) = (3.5, 4.5, 5.5) → 4.5.
        assert!(close(s.aligned.summary.unwrap().mean, 4.5));
        assert_eq!(s.aligned.targets, 2);
        // Not aligned: xnli (0.5, 1, 0), xquad (1, 2, 3) → (0.75, 1.5, 1.5) → 1.25.
        assert!(close(s.not_aligned.summary.unwrap().mean, 1.25));
        let xnli = &s.targets[0];
        assert_eq!(xnli.target, "xnli");
        assert_eq!(xnli.flags, ["one aligned cell"]);
        assert!(close(xnli.difference.unwrap().mean, 2.5));
        assert_eq!(
            s.targets[1].flags,
            ["one aligned cell", "one not-aligned cell"]
        );
    }

    #[test]
    fn pooling_across_targets_would_differ() {
        // One target is easy to move (every Δ large), the other hard; the aligned cells are
        // mostly on the easy one. Pooling cells would report (10 + 10 + 0) / 3 − (10 + 0) / 2
        // = +1.67; within each target there is no effect.
        let cells = [
            cell("mnli", "xnli", true, &[10.0, 11.0, 9.0]),
            cell("anli", "xnli", true, &[10.0, 9.0, 11.0]),
            cell("squad", "xnli", false, &[10.0, 10.0, 10.0]),
            cell("sst2", "xquad", false, &[0.0, 0.0, 0.0]),
            cell("squad", "xquad", true, &[0.0, 0.0, 0.0]),
        ];
        let s = summarize(Scope::All, &cells, vec![], &IntervalOptions::default());
        let d = s.difference.unwrap();
        assert!(close(d.mean, 0.0), "{d:?}");
    }

    #[test]
    fn two_seeds_have_no_interval_and_one_group_no_difference() {
        let cells = [
            cell("mnli", "xnli", true, &[2.0, 3.0]),
            cell("squad", "xnli", false, &[0.0, 1.0]),
        ];
        let s = summarize(Scope::All, &cells, vec![], &IntervalOptions::default());
        let d = s.difference.unwrap();
        assert_eq!((d.n, d.ci), (2, None));
        assert!(close(d.mean, 2.0));

        let only = [cell("mnli", "xnli", true, &[2.0, 3.0, 4.0])];
        let s = summarize(Scope::All, &only, vec![], &IntervalOptions::default());
        assert_eq!(s.difference, None);
        assert!(s.aligned.summary.unwrap().ci.is_some());
        assert_eq!(
            s.targets[0].flags,
            ["one aligned cell", "no not-aligned cell"]
        );
    }

    #[test]
    fn seeds_are_those_every_contrasted_target_has() {
        let cells = [
            cell("mnli", "xnli", true, &[2.0, 3.0, 4.0]),
            cell("squad", "xnli", false, &[0.0, 0.0, 0.0]),
            cell("squad", "xquad", true, &[1.0, 1.0]),
            cell("mnli", "xquad", false, &[0.0, 0.0]),
        ];
        let s = summarize(Scope::All, &cells, vec![], &IntervalOptions::default());
        assert_eq!(s.seeds, [1, 2]);
        // Seeds 1, 2: ((2 + 1) / 2, (3 + 1) / 2) = (1.5, 2).
        assert!(close(s.difference.unwrap().mean, 1.75));
    }
}
