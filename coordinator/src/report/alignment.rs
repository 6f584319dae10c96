//! Aligned vs not aligned: does an intermediate task of the target's own domain help more?
//!
//! # Groups
//!
//! Per model and per scope (all languages; non-English), every non-baseline matrix cell
//! (intermediate *i*, target *t*) whose Δ entry is complete and whose two domains are known is
//! **aligned** when domain(*i*) == domain(*t*), else **not aligned**. Incomplete cells and cells
//! with an `unknown` domain are listed in [`AlignmentSummary::excluded`].
//!
//! # Point estimates
//!
//! For a cell *c* with seeds *S* and scope languages *L*, the unit Δ is
//! d_c(s, l) = score_i(t, l, s) − score_none(t, l, s) (the language score, paired by seed and
//! language). The cell mean m_c is the mean of d_c over S × L, which equals the mean over seeds of
//! the task-score Δ shown in the matrix. A group mean is the unweighted mean of m_c over the
//! group's cells; the **difference** is mean(aligned) − mean(not aligned).
//!
//! # Paired bootstrap
//!
//! 1. The units are the distinct (seed, language) pairs U of all included cells of the model
//!    and scope, sorted by seed then language; N = |U|. A language shared by two targets is one
//!    unit: it stands for the same language, and a seed shares one intermediate checkpoint across
//!    targets, so their correlation is kept.
//! 2. A [SplitMix64] generator is seeded with [`BootstrapOptions::seed`] afresh for every (model,
//!    scope). Each of [`BootstrapOptions::resamples`] resamples draws N indices uniformly with
//!    replacement (index = ⌊x · N / 2⁶⁴⌋ for a 64-bit output x) and counts the multiplicity w_u of
//!    each unit.
//! 3. In a resample, each cell's mean is the w-weighted mean of its unit Δs,
//!    Σ w_u d_c(u) / Σ w_u over the cell's units; a cell with Σ w_u = 0 sits that resample out.
//!    The same weights apply to every cell of both groups and to the baseline inside each Δ:
//!    that is the pairing. Group means and their difference are formed as for the point estimate.
//! 4. A resample in which a group that has cells is left with none is skipped (counted in
//!    [`AlignmentSummary::resamples_skipped`]).
//! 5. The CI bounds are the (1 − confidence)/2 and (1 + confidence)/2 quantiles of the kept
//!    statistics, with linear interpolation between order statistics (position q · (R − 1) in the
//!    sorted list of R values).
//!
//! [SplitMix64]: https://doi.org/10.1145/2714064.2660195

use std::collections::BTreeMap;

use serde::Serialize;

use super::matrix::Scope;

/// Settings of the paired bootstrap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapOptions {
    /// Number of resamples (default 10,000).
    pub resamples: usize,
    /// RNG seed (default [`BootstrapOptions::DEFAULT_SEED`]).
    pub seed: u64,
    /// Confidence level of the interval (default 0.95).
    pub confidence: f64,
}

impl BootstrapOptions {
    pub const DEFAULT_SEED: u64 = 20_210_414;
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: 10_000,
            seed: Self::DEFAULT_SEED,
            confidence: 0.95,
        }
    }
}

/// A complete, domain-labelled matrix cell with its unit Δs.
pub(crate) struct AlignCell {
    pub intermediate: String,
    pub target: String,
    pub aligned: bool,
    /// ((seed, language), Δ) for every unit of the scope.
    pub units: Vec<((u64, String), f64)>,
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

/// One group's cells, mean Δ and bootstrap CI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStat {
    pub cells: Vec<CellRef>,
    /// `None` without cells.
    pub mean: Option<f64>,
    pub ci: Option<[f64; 2]>,
}

/// Aligned vs not aligned for one model and scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlignmentSummary {
    pub scope: Scope,
    pub aligned: GroupStat,
    pub not_aligned: GroupStat,
    /// mean(aligned) − mean(not aligned); `None` unless both groups have cells.
    pub difference: Option<f64>,
    pub difference_ci: Option<[f64; 2]>,
    /// Number of distinct (seed, language) units resampled.
    pub units: usize,
    pub resamples_used: usize,
    pub resamples_skipped: usize,
    pub excluded: Vec<Excluded>,
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and stable across dependency versions.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` by multiply-shift (bias below n / 2⁶⁴).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// Quantile `q` of sorted `values` with linear interpolation (position q · (R − 1)).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub(crate) fn summarize(
    scope: Scope,
    cells: &[AlignCell],
    excluded: Vec<(String, String, String)>,
    options: &BootstrapOptions,
) -> AlignmentSummary {
    let mut index: BTreeMap<&(u64, String), usize> = BTreeMap::new();
    for c in cells {
        for (u, _) in &c.units {
            index.insert(u, 0);
        }
    }
    for (k, v) in index.values_mut().enumerate() {
        *v = k;
    }
    let n_units = index.len();
    // Per cell: group flag and (unit index, Δ) pairs.
    let indexed: Vec<(bool, Vec<(usize, f64)>)> = cells
        .iter()
        .map(|c| {
            let units = c.units.iter().map(|(u, d)| (index[u], *d)).collect();
            (c.aligned, units)
        })
        .collect();
    let cell_means: Vec<(bool, f64)> = indexed
        .iter()
        .filter_map(|(a, u)| mean(&u.iter().map(|(_, d)| *d).collect::<Vec<_>>()).map(|m| (*a, m)))
        .collect();
    let group_mean = |flag: bool, means: &[(bool, f64)]| {
        mean(
            &means
                .iter()
                .filter(|(a, _)| *a == flag)
                .map(|(_, m)| *m)
                .collect::<Vec<_>>(),
        )
    };
    let point_a = group_mean(true, &cell_means);
    let point_n = group_mean(false, &cell_means);

    let mut boot_a = Vec::new();
    let mut boot_n = Vec::new();
    let mut boot_d = Vec::new();
    let mut skipped = 0;
    let mut used = 0;
    if n_units > 0 && options.resamples > 0 {
        let mut rng = SplitMix64::new(options.seed);
        let mut weights = vec![0u32; n_units];
        for _ in 0..options.resamples {
            weights.iter_mut().for_each(|w| *w = 0);
            for _ in 0..n_units {
                weights[rng.below(n_units)] += 1;
            }
            let means: Vec<(bool, f64)> = indexed
                .iter()
                .filter_map(|(a, units)| {
                    let (mut sw, mut sx) = (0.0, 0.0);
                    for (u, d) in units {
                        let w = weights[*u] as f64;
                        sw += w;
                        sx += w * d;
                    }
                    (sw > 0.0).then(|| (*a, sx / sw))
                })
                .collect();
            let (a, n) = (group_mean(true, &means), group_mean(false, &means));
            if (point_a.is_some() && a.is_none()) || (point_n.is_some() && n.is_none()) {
                skipped += 1;
                continue;
            }
            used += 1;
            if let Some(a) = a {
                boot_a.push(a);
            }
            if let Some(n) = n {
                boot_n.push(n);
            }
            if let (Some(a), Some(n)) = (a, n) {
                boot_d.push(a - n);
            }
        }
    }
    let lo = (1.0 - options.confidence) / 2.0;
    let hi = 1.0 - lo;
    let ci = |mut v: Vec<f64>| -> Option<[f64; 2]> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some([quantile(&v, lo), quantile(&v, hi)])
    };
    let refs = |flag: bool| {
        cells
            .iter()
            .filter(|c| c.aligned == flag)
            .map(|c| CellRef {
                intermediate: c.intermediate.clone(),
                target: c.target.clone(),
            })
            .collect()
    };
    AlignmentSummary {
        scope,
        aligned: GroupStat {
            cells: refs(true),
            mean: point_a,
            ci: ci(boot_a),
        },
        not_aligned: GroupStat {
            cells: refs(false),
            mean: point_n,
            ci: ci(boot_n),
        },
        difference: point_a.zip(point_n).map(|(a, n)| a - n),
        difference_ci: ci(boot_d),
        units: n_units,
        resamples_used: used,
        resamples_skipped: skipped,
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

    fn cell(i: &str, t: &str, aligned: bool, units: &[(u64, &str, f64)]) -> AlignCell {
        AlignCell {
            intermediate: i.into(),
            target: t.into(),
            aligned,
            units: units
                .iter()
                .map(|(s, l, d)| ((*s, l.to_string()), *d))
                .collect(),
        }
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 (the published test vector of SplitMix64).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut r = SplitMix64::new(7);
        for _ in 0..1000 {
            assert!(r.below(3) < 3);
        }
    }

    #[test]
    fn quantile_interpolates() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.125), 1.5);
        assert_eq!(quantile(&v, 1.0), 5.0);
    }

    #[test]
    fn constant_deltas_give_a_point_interval() {
        let cells = [
            cell("mnli", "xnli", true, &[(1, "de", 2.0), (1, "fr", 2.0)]),
            cell("squad", "xnli", false, &[(1, "de", 0.5), (1, "fr", 0.5)]),
        ];
        let s = summarize(Scope::All, &cells, vec![], &BootstrapOptions::default());
        assert_eq!(s.aligned.mean, Some(2.0));
        assert_eq!(s.not_aligned.mean, Some(0.5));
        assert_eq!(s.difference, Some(1.5));
        assert_eq!(s.difference_ci, Some([1.5, 1.5]));
        assert_eq!(s.units, 2);
        assert_eq!(s.resamples_used, 10_000);
    }

    #[test]
    fn interval_brackets_the_estimate_and_is_deterministic() {
        let a: Vec<(u64, &str, f64)> = vec![
            (1, "de", 3.0),
            (1, "fr", 1.0),
            (2, "de", 2.0),
            (2, "fr", 4.0),
        ];
        let n: Vec<(u64, &str, f64)> = vec![
            (1, "de", 0.0),
            (1, "fr", -1.0),
            (2, "de", 1.0),
            (2, "fr", 0.5),
        ];
        let cells = [
            cell("mnli", "xnli", true, &a),
            cell("squad", "xnli", false, &n),
        ];
        let opts = BootstrapOptions {
            resamples: 2000,
            ..Default::default()
        };
        let s = summarize(Scope::All, &cells, vec![], &opts);
        // Hand-computed: aligned mean 10/4 = 2.5, not aligned 0.5/4 = 0.125.
        assert_eq!(s.aligned.mean, Some(2.5));
        assert_eq!(s.not_aligned.mean, Some(0.125));
        assert_eq!(s.difference, Some(2.375));
        let [lo, hi] = s.difference_ci.unwrap();
        assert!(lo < 2.375 && 2.375 < hi, "{lo} {hi}");
        // Per-unit differences are 3, 2, 1, 3.5: a resampled mean stays within [1, 3.5].
        assert!(lo >= 1.0 && hi <= 3.5);
        assert_eq!(summarize(Scope::All, &cells, vec![], &opts), s);
    }

    #[test]
    fn one_group_only() {
        let cells = [cell("mnli", "xnli", true, &[(1, "de", 2.0)])];
        let s = summarize(
            Scope::NonEnglish,
            &cells,
            vec![],
            &BootstrapOptions::default(),
        );
        assert_eq!(s.aligned.mean, Some(2.0));
        assert_eq!(s.not_aligned.mean, None);
        assert_eq!(s.difference, None);
        assert_eq!(s.difference_ci, None);
        assert_eq!(s.aligned.ci, Some([2.0, 2.0]));
    }
}
