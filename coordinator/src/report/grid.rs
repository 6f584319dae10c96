//! The (seed, language) units of each (model, target): what every report number is computed from.
//!
//! A unit's state: `Ok(score)` when its results hold the score metric(s) (whatever its cell
//! state says: results are recorded exactly once), else failed, cancelled, pending (blocked,
//! ready, running), no metric (succeeded without the score metric: a rerun will not fix it) or
//! absent (no cell and no result).

use std::collections::{BTreeMap, BTreeSet};

use super::CellState;
use super::entry::{Gaps, Scope, Unit};
use super::tasks::ScoreRule;

/// model, intermediate, target, language, seed.
pub(crate) type Key = (String, String, String, String, u64);

/// The grids of a report, by (model, target).
pub(crate) type Grids = BTreeMap<(String, String), Grid>;

/// The units of one (model, target): intermediate → seed → language → unit.
pub(crate) struct Grid {
    pub seeds: Vec<u64>,
    pub languages: Vec<String>,
    pub units: BTreeMap<String, BTreeMap<u64, BTreeMap<String, Unit>>>,
}

impl Grid {
    pub fn unit(&self, intermediate: &str, seed: u64, language: &str) -> Unit {
        self.units
            .get(intermediate)
            .and_then(|s| s.get(&seed))
            .and_then(|l| l.get(language))
            .copied()
            .unwrap_or(Unit::Absent)
    }

    pub fn scope_languages(&self, scope: Scope) -> Vec<&str> {
        self.languages
            .iter()
            .map(String::as_str)
            .filter(|l| scope.includes(l))
            .collect()
    }

    /// Task score of one seed over `languages`, or the gaps. The gaps are counted over **all**
    /// the target's languages, so a seed is complete in every scope or in none: the scopes are
    /// always computed on the same cells.
    pub fn score(&self, intermediate: &str, seed: u64, languages: &[&str]) -> Result<f64, Gaps> {
        let mut gaps = Gaps::default();
        for l in &self.languages {
            gaps.add(&self.unit(intermediate, seed, l));
        }
        if gaps.total() > 0 {
            return Err(gaps);
        }
        let sum: f64 = languages
            .iter()
            .filter_map(|l| self.unit(intermediate, seed, l).ok())
            .sum();
        Ok(sum / languages.len() as f64)
    }
}

/// The score of one language from its metrics; `None` if a needed metric is absent.
pub(crate) fn language_score(
    rule: &ScoreRule,
    metrics: Option<&BTreeMap<&str, f64>>,
) -> Option<f64> {
    let metrics = metrics?;
    let names = rule.metrics();
    if names.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for n in &names {
        sum += metrics.get(n)?;
    }
    Some(sum / names.len() as f64)
}

/// Builds the grid of every (model, target) seen in `states` or `metrics`, scoring each unit by
/// `rule(target)`.
pub(crate) fn build(
    states: &BTreeMap<Key, CellState>,
    metrics: &BTreeMap<Key, BTreeMap<&str, f64>>,
    rule: &dyn Fn(&str) -> Option<ScoreRule>,
) -> Grids {
    let mut grids: Grids = BTreeMap::new();
    let keys: BTreeSet<&Key> = states.keys().chain(metrics.keys()).collect();
    for key in keys {
        let (m, i, t, l, s) = key;
        let grid = grids.entry((m.clone(), t.clone())).or_insert_with(|| Grid {
            seeds: vec![],
            languages: vec![],
            units: BTreeMap::new(),
        });
        let score = rule(t).and_then(|rule| language_score(&rule, metrics.get(key)));
        let unit = match (score, states.get(key)) {
            (Some(v), _) => Unit::Ok(v),
            (None, Some(CellState::Failed)) => Unit::Failed,
            (None, Some(CellState::Cancelled)) => Unit::Cancelled,
            (None, Some(CellState::Blocked | CellState::Ready | CellState::Running)) => {
                Unit::Pending
            }
            (None, Some(CellState::Succeeded)) => Unit::NoMetric,
            // Results without a cell: the job finished, its metrics lack the score.
            (None, None) if metrics.contains_key(key) => Unit::NoMetric,
            (None, None) => Unit::Absent,
        };
        grid.units
            .entry(i.clone())
            .or_default()
            .entry(*s)
            .or_default()
            .insert(l.clone(), unit);
        if !grid.seeds.contains(s) {
            grid.seeds.push(*s);
        }
        if !grid.languages.contains(l) {
            grid.languages.push(l.clone());
        }
    }
    for g in grids.values_mut() {
        g.seeds.sort_unstable();
        g.languages.sort();
    }
    grids
}
