//! Matrix entries: scopes, mean ± sd summaries with their t-interval over seeds, gap counts, and
//! the unit states they count.

use serde::Serialize;

use super::student_t;

/// Below this many seeds a summary carries no interval (two seeds give t_{0.975,1} = 12.7 and a
/// variance estimate from one difference: an interval that says nothing).
pub const MIN_SEEDS_FOR_INTERVAL: usize = 3;

/// Which languages an average covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every expected language, English included (the official XTREME-R average).
    All,
    /// Every expected language but English (the purer zero-shot number, the headline).
    NonEnglish,
    /// English alone: the training language, shown beside the zero-shot number.
    English,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::All => "all languages",
            Scope::NonEnglish => "non-English",
            Scope::English => "English",
        }
    }
    /// The machine name used in CSV and file names: `all`, `non_english`, `english`.
    pub fn key(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::NonEnglish => "non_english",
            Scope::English => "english",
        }
    }
    pub(crate) fn includes(self, language: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::NonEnglish => language != "en",
            Scope::English => language == "en",
        }
    }
    /// Headline first: non-English, then all languages, then English.
    pub const ORDER: [Scope; 3] = [Scope::NonEnglish, Scope::All, Scope::English];
}

/// A value per scope; `non_english` is `None` when the target lists no language but English,
/// `english` when it does not list English. Every scope is computed on the same cells: a unit
/// missing in any language makes the entry incomplete in every scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopePair<T> {
    pub all: T,
    pub non_english: Option<T>,
    pub english: Option<T>,
}

impl<T> ScopePair<T> {
    pub fn get(&self, scope: Scope) -> Option<&T> {
        match scope {
            Scope::All => Some(&self.all),
            Scope::NonEnglish => self.non_english.as_ref(),
            Scope::English => self.english.as_ref(),
        }
    }
}

/// Mean ± sample sd over `n` seeds, with a t-interval for the mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for a single seed.
    pub sd: Option<f64>,
    pub n: usize,
    /// mean ± t_{(1+c)/2, n−1} · sd / √n at the report's confidence c; `None` below
    /// [`MIN_SEEDS_FOR_INTERVAL`] seeds.
    pub ci: Option<[f64; 2]>,
}

impl Summary {
    /// The summary of one value per seed, with a `confidence` t-interval from 3 seeds on.
    pub fn of(values: &[f64], confidence: f64) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        let ci = sd.filter(|_| n >= MIN_SEEDS_FOR_INTERVAL).map(|sd| {
            let half = student_t::critical(confidence, (n - 1) as u64) * sd / (n as f64).sqrt();
            [mean - half, mean + half]
        });
        Some(Summary { mean, sd, n, ci })
    }
}

/// Counts of (seed, language) units without a score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Gaps {
    pub failed: usize,
    pub cancelled: usize,
    /// Blocked, ready or running.
    pub pending: usize,
    /// No cell and no result.
    pub absent: usize,
    /// Succeeded, but the results lack the target's score metric(s): a rerun will not fix it.
    pub no_metric: usize,
}

impl Gaps {
    /// Units that are not failed but have no score either.
    pub fn missing(&self) -> usize {
        self.cancelled + self.pending + self.absent + self.no_metric
    }
    pub fn total(&self) -> usize {
        self.failed + self.missing()
    }
    pub(crate) fn add(&mut self, unit: &Unit) {
        match unit {
            Unit::Ok(_) => {}
            Unit::Failed => self.failed += 1,
            Unit::Cancelled => self.cancelled += 1,
            Unit::Pending => self.pending += 1,
            Unit::Absent => self.absent += 1,
            Unit::NoMetric => self.no_metric += 1,
        }
    }
    pub(crate) fn plus(self, other: Gaps) -> Gaps {
        Gaps {
            failed: self.failed + other.failed,
            cancelled: self.cancelled + other.cancelled,
            pending: self.pending + other.pending,
            absent: self.absent + other.absent,
            no_metric: self.no_metric + other.no_metric,
        }
    }
    /// `failed (k)`, else `metric missing (k)`, else `missing (k)`.
    fn label(&self) -> String {
        if self.failed > 0 {
            format!("failed ({})", self.failed)
        } else if self.no_metric > 0 {
            format!("metric missing ({})", self.no_metric)
        } else {
            format!("missing ({})", self.missing())
        }
    }
}

/// One matrix entry: a summary, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Entry {
    Value(Summary),
    /// Some unit has no score: `own` counts the row's units, `baseline` the paired `none` units.
    Incomplete {
        own: Gaps,
        baseline: Gaps,
    },
}

impl Entry {
    pub fn value(&self) -> Option<&Summary> {
        match self {
            Entry::Value(s) => Some(s),
            Entry::Incomplete { .. } => None,
        }
    }
    /// Why there is no value: the row's own gaps — `failed (k)` when any unit failed, else
    /// `metric missing (k)` when succeeded units lack the score metric, else `missing (k)`
    /// (not scored yet, cancelled or absent) — or, when the row is complete and only its
    /// paired `none` units are not, the same words after `baseline ` (`baseline failed (k)`).
    /// `None` for a value.
    pub fn gap_label(&self) -> Option<String> {
        match self {
            Entry::Value(_) => None,
            Entry::Incomplete { own, baseline } if own.total() == 0 => {
                Some(format!("baseline {}", baseline.label()))
            }
            Entry::Incomplete { own, .. } => Some(own.label()),
        }
    }
}

/// The state of one (seed, language) unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Unit {
    Ok(f64),
    Failed,
    Cancelled,
    Pending,
    Absent,
    NoMetric,
}

impl Unit {
    pub(crate) fn ok(&self) -> Option<f64> {
        match self {
            Unit::Ok(v) => Some(*v),
            _ => None,
        }
    }
}
