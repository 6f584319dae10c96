//! Matrix entries: scopes, mean ± sd summaries, gap counts, and the unit states they count.

use serde::Serialize;

/// Which languages an average covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every expected language, English included (the official XTREME-R average).
    All,
    /// Every expected language but English (the purer zero-shot number).
    NonEnglish,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::All => "all languages",
            Scope::NonEnglish => "non-English",
        }
    }
    pub(crate) fn includes(self, language: &str) -> bool {
        self == Scope::All || language != "en"
    }
}

/// A value per scope; `non_english` is `None` when the target lists no language but English.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopePair<T> {
    pub all: T,
    pub non_english: Option<T>,
}

impl<T> ScopePair<T> {
    pub fn get(&self, scope: Scope) -> Option<&T> {
        match scope {
            Scope::All => Some(&self.all),
            Scope::NonEnglish => self.non_english.as_ref(),
        }
    }
}

/// Mean ± sample sd over `n` seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for a single seed.
    pub sd: Option<f64>,
    pub n: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        });
        Some(Summary { mean, sd, n })
    }
}

/// Counts of (seed, language) units without a score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Gaps {
    pub failed: usize,
    pub cancelled: usize,
    /// Blocked, ready or running.
    pub pending: usize,
    /// No cell and no result, or succeeded without the score metric(s).
    pub absent: usize,
}

impl Gaps {
    /// Units that are not failed but have no score either.
    pub fn missing(&self) -> usize {
        self.cancelled + self.pending + self.absent
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
        }
    }
    pub(crate) fn plus(self, other: Gaps) -> Gaps {
        Gaps {
            failed: self.failed + other.failed,
            cancelled: self.cancelled + other.cancelled,
            pending: self.pending + other.pending,
            absent: self.absent + other.absent,
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
    /// `failed (k)` when any unit failed (k = failed units, row and baseline), else
    /// `missing (k)` (k = units without a score); `None` for a value.
    pub fn gap_label(&self) -> Option<String> {
        match self {
            Entry::Value(_) => None,
            Entry::Incomplete { own, baseline } => {
                let g = own.plus(*baseline);
                Some(if g.failed > 0 {
                    format!("failed ({})", g.failed)
                } else {
                    format!("missing ({})", g.missing())
                })
            }
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
}

impl Unit {
    pub(crate) fn ok(&self) -> Option<f64> {
        match self {
            Unit::Ok(v) => Some(*v),
            _ => None,
        }
    }
}
