//! The transfer matrix.
//!
//! For each model: rows are intermediate tasks (`none` first, then grouped by domain label, then
//! by name), columns are target tasks (sorted by domain, then name). For each (model,
//! intermediate, target, seed):
//!
//! * a **language score** per language: the target's [`ScoreRule`] applied to that language's
//!   metrics (one metric, or (EM + F1) / 2 for QA; QA cells also carry EM and F1 alone in
//!   [`MatrixCell::metrics`]);
//! * the **task score** per scope: the mean of the language scores over the non-English
//!   languages (the headline: zero-shot transfer), over all languages (English included, the
//!   official XTREME-R average) and over English alone. Because the QA rule is linear, this
//!   equals XTREME-R's (avg EM + avg F1) / 2;
//! * **Δ** = task score − the `none` baseline's task score *of the same seed* (paired by seed);
//! * the **transfer gap** = English score − non-English score (XTREME's cross-lingual transfer
//!   gap), per seed.
//!
//! A matrix entry is mean ± sample sd (n − 1 denominator; none for n = 1) over the expected seeds,
//! with a t-interval from 3 seeds on (`alignment.rs` says why). If any (seed, language) unit of
//! the cell is failed, cancelled, unfinished, absent or without its metric, in the row itself or
//! (for Δ) in the paired baseline, the entry is [`Entry::Incomplete`] with counts, never a number,
//! **in every scope**: all scopes are computed on the same cells. The per-seed scores that could
//! be computed stay in [`MatrixCell::per_seed`].
//!
//! Expected units: for each (model, target), every intermediate × seed × language seen in the
//! cells or results of that (model, target) (`grid.rs`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::alignment::{self, AlignCell, AlignmentSummary, IntervalOptions};
pub use super::entry::{Entry, Gaps, Scope, ScopePair, Summary};
use super::grid::{self, Grid, Grids, Key};
use super::tasks::{ScoreRule, TaskInfo, UNKNOWN_DOMAIN};
use super::{BASELINE, CellState, ReportInput};

/// One seed's task scores of a matrix cell (`None` where a unit is missing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedScore {
    pub seed: u64,
    pub score: ScopePair<Option<f64>>,
    /// Against the same seed's baseline; `None` in the baseline row.
    pub delta: Option<ScopePair<Option<f64>>>,
}

/// One (intermediate, target) entry of a model's matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixCell {
    pub intermediate: String,
    pub target: String,
    /// domain(intermediate) == domain(target); `None` for the baseline and unknown domains.
    pub aligned: Option<bool>,
    pub absolute: ScopePair<Entry>,
    /// Δ against `none`, paired by seed; `None` in the baseline row.
    pub delta: Option<ScopePair<Entry>>,
    /// English − non-English task score per seed; `None` unless the target has both.
    pub transfer_gap: Option<Entry>,
    /// The metrics behind a combined score, alone (QA: `exact_match`, `f1`); else empty.
    pub metrics: Vec<MetricEntry>,
    pub per_seed: Vec<SeedScore>,
}

/// One metric of a cell whose score combines several (QA: EM and F1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricEntry {
    pub metric: String,
    pub absolute: ScopePair<Entry>,
    /// Δ against `none`, paired by seed; `None` in the baseline row.
    pub delta: Option<ScopePair<Entry>>,
}

/// A row of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowInfo {
    pub intermediate: String,
    pub domain: String,
    pub baseline: bool,
}

/// A row of a per-language table: one entry per language of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguageRow {
    pub intermediate: String,
    pub absolute: Vec<Entry>,
    /// Δ per language, paired by seed; `None` in the baseline row.
    pub delta: Option<Vec<Entry>>,
}

/// Per-language breakdown of one target for one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguageTable {
    pub target: String,
    pub languages: Vec<String>,
    pub rows: Vec<LanguageRow>,
}

/// The transfer matrix of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelMatrix {
    pub model: String,
    pub rows: Vec<RowInfo>,
    pub targets: Vec<String>,
    /// Entries for the (intermediate, target) pairs of the grid, row-major.
    pub cells: Vec<MatrixCell>,
    /// Aligned vs not aligned, for [`Scope::NonEnglish`] (the headline) then [`Scope::All`].
    pub alignment: Vec<AlignmentSummary>,
    /// Per-language tables, one per target.
    pub languages: Vec<LanguageTable>,
}

impl ModelMatrix {
    /// The entry of (intermediate, target), if the pair is in the grid.
    pub fn cell(&self, intermediate: &str, target: &str) -> Option<&MatrixCell> {
        self.cells
            .iter()
            .find(|c| c.intermediate == intermediate && c.target == target)
    }
}

/// A target task as the report scored it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetSummary {
    pub name: String,
    pub domain: String,
    /// The score rule used; `None` when [`ScoreRule::Auto`] found no suitable metric.
    pub score: Option<ScoreRule>,
    pub languages: Vec<String>,
}

/// One seed's value, or the gaps of (row, baseline) that prevent it.
type SeedOutcome = Result<f64, (Gaps, Gaps)>;

/// The scopes a matrix cell and the alignment are computed for.
const ALIGN_SCOPES: [Scope; 2] = [Scope::NonEnglish, Scope::All];

/// Computes the per-target summaries, the per-model matrices and warnings.
pub(crate) fn compute(
    input: &ReportInput,
    tasks: &dyn Fn(&str) -> TaskInfo,
    options: &IntervalOptions,
) -> (Vec<TargetSummary>, Vec<ModelMatrix>, Vec<String>) {
    let mut warnings = Vec::new();
    let observed = Observed::index(input, &mut warnings);
    let all_targets = observed.targets();
    let (mut infos, rules) = resolve_targets(&all_targets, &observed, tasks, &mut warnings);
    let rule_of = |t: &str| rules.get(t).cloned().flatten();

    let grids = grid::build(&observed.states, &observed.metrics, &rule_of);
    // Separate grids for the metrics a combined (QA) score is made of.
    let part_grids: Vec<(&str, Grids)> = ["exact_match", "f1"]
        .into_iter()
        .map(|name| {
            let g = grid::build(&observed.states, &observed.metrics, &|t| {
                (rule_of(t) == Some(ScoreRule::Qa)).then(|| ScoreRule::Metric(name.to_string()))
            });
            (name, g)
        })
        .collect();
    metric_missing_warnings(&grids, &rules, &mut warnings);
    // Domains of every intermediate too (rows are grouped by them).
    for g in grids.values() {
        for i in g.units.keys() {
            if i != BASELINE && !infos.contains_key(i) {
                infos.insert(i.clone(), tasks(i));
            }
        }
    }

    let ctx = MatrixContext {
        grids: &grids,
        part_grids: &part_grids,
        rules: &rules,
        infos: &infos,
        options,
    };
    let models: BTreeSet<&String> = grids.keys().map(|(m, _)| m).collect();
    let matrices = models
        .into_iter()
        .map(|model| ctx.model_matrix(model, &mut warnings))
        .collect();
    let summaries = target_summaries(&all_targets, &grids, &infos, &rules);
    (summaries, matrices, warnings)
}

/// The (model, intermediate, target, language, seed) unit of a cell or result.
fn unit_key(model: &str, intermediate: &str, target: &str, language: &str, seed: u64) -> Key {
    (
        model.to_string(),
        intermediate.to_string(),
        target.to_string(),
        language.to_string(),
        seed,
    )
}

/// The results and cell states of the input, indexed by unit.
struct Observed<'a> {
    metrics: BTreeMap<Key, BTreeMap<&'a str, f64>>,
    /// Metric names seen per target.
    seen_metrics: BTreeMap<&'a str, BTreeSet<String>>,
    states: BTreeMap<Key, CellState>,
}

impl<'a> Observed<'a> {
    /// Indexes results and cells; a unit with two different values of a metric is a warning
    /// (the last is used).
    fn index(input: &'a ReportInput, warnings: &mut Vec<String>) -> Self {
        let mut metrics: BTreeMap<Key, BTreeMap<&str, f64>> = BTreeMap::new();
        let mut seen_metrics: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for r in &input.results {
            let key = unit_key(&r.model, &r.intermediate, &r.target, &r.language, r.seed);
            let slot = metrics.entry(key).or_default();
            if let Some(old) = slot.insert(&r.metric, r.value)
                && old != r.value
            {
                warnings.push(format!(
                    "two values for {} of {}/{}/{}/{}/seed {}: {old} and {} (the last is used)",
                    r.metric, r.model, r.intermediate, r.target, r.language, r.seed, r.value
                ));
            }
            seen_metrics
                .entry(&r.target)
                .or_default()
                .insert(r.metric.clone());
        }
        let states = input
            .cells
            .iter()
            .map(|c| {
                let key = unit_key(&c.model, &c.intermediate, &c.target, &c.language, c.seed);
                (key, c.state)
            })
            .collect();
        Self {
            metrics,
            seen_metrics,
            states,
        }
    }

    /// Every target named by a cell or a result.
    fn targets(&self) -> BTreeSet<&str> {
        self.states
            .keys()
            .chain(self.metrics.keys())
            .map(|k| k.2.as_str())
            .collect()
    }
}

/// Each target's task information and resolved score rule; a target whose results carry no
/// usable score metric is a warning.
fn resolve_targets(
    targets: &BTreeSet<&str>,
    observed: &Observed,
    tasks: &dyn Fn(&str) -> TaskInfo,
    warnings: &mut Vec<String>,
) -> (
    BTreeMap<String, TaskInfo>,
    BTreeMap<String, Option<ScoreRule>>,
) {
    let mut infos = BTreeMap::new();
    let mut rules = BTreeMap::new();
    for t in targets {
        let info = tasks(t);
        let seen = observed.seen_metrics.get(t).cloned().unwrap_or_default();
        let rule = info.score.resolve(&seen);
        if rule.is_none() && !seen.is_empty() {
            warnings.push(format!(
                "target {t}: no score metric among {:?}; its cells count as `metric missing`",
                seen
            ));
        }
        rules.insert(t.to_string(), rule);
        infos.insert(t.to_string(), info);
    }
    (infos, rules)
}

/// What every model's matrix is computed from.
struct MatrixContext<'a> {
    grids: &'a Grids,
    part_grids: &'a [(&'a str, Grids)],
    rules: &'a BTreeMap<String, Option<ScoreRule>>,
    /// Task information of every target and intermediate.
    infos: &'a BTreeMap<String, TaskInfo>,
    options: &'a IntervalOptions,
}

impl MatrixContext<'_> {
    fn domain(&self, name: &str) -> String {
        if name == BASELINE {
            return BASELINE.to_string();
        }
        self.infos
            .get(name)
            .map_or_else(|| UNKNOWN_DOMAIN.to_string(), |i| i.domain.clone())
    }

    fn grid(&self, model: &str, target: &str) -> &Grid {
        &self.grids[&(model.to_string(), target.to_string())]
    }

    /// The matrix of one model: its targets and rows in report order, an entry per pair in the
    /// grid, the alignment contrast per scope and the per-language tables.
    fn model_matrix(&self, model: &str, warnings: &mut Vec<String>) -> ModelMatrix {
        let targets = self.model_targets(model);
        let rows = self.model_rows(model, &targets);
        for t in &targets {
            if !self.grid(model, t).units.contains_key(BASELINE) {
                warnings.push(format!(
                    "model {model}, target {t}: no `{BASELINE}` baseline in the grid; Δ is missing"
                ));
            }
        }
        let mut cells = Vec::new();
        let mut align_cells: [Vec<AlignCell>; 2] = [vec![], vec![]];
        let mut excluded: [Vec<(String, String, String)>; 2] = [vec![], vec![]];
        for row in &rows {
            for t in &targets {
                if !self.grid(model, t).units.contains_key(&row.intermediate) {
                    continue;
                }
                let (cell, aligned) = self.entry(model, row, t);
                for (k, scope) in ALIGN_SCOPES.into_iter().enumerate() {
                    if row.baseline || self.grid(model, t).scope_languages(scope).is_empty() {
                        continue;
                    }
                    match align_cell(&cell, scope, aligned) {
                        Ok(c) => align_cells[k].push(c),
                        Err(why) => excluded[k].push((
                            row.intermediate.clone(),
                            t.to_string(),
                            why.to_string(),
                        )),
                    }
                }
                cells.push(cell);
            }
        }
        let alignment = ALIGN_SCOPES
            .into_iter()
            .zip(align_cells.into_iter().zip(excluded))
            .map(|(scope, (cells, excluded))| {
                alignment::summarize(scope, &cells, excluded, self.options)
            })
            .collect();
        let languages = targets
            .iter()
            .map(|t| language_table(self.grid(model, t), t, &rows, self.options.confidence))
            .collect();
        ModelMatrix {
            model: model.to_string(),
            rows,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            cells,
            alignment,
            languages,
        }
    }

    /// The model's targets, sorted by domain, then name.
    fn model_targets(&self, model: &str) -> Vec<&str> {
        let mut targets: Vec<&str> = self
            .grids
            .keys()
            .filter(|(m, _)| m == model)
            .map(|(_, t)| t.as_str())
            .collect();
        targets.sort_by_key(|t| (self.domain(t), t.to_string()));
        targets
    }

    /// The intermediates of any of the model's targets: the baseline first, then by domain and
    /// name.
    fn model_rows(&self, model: &str, targets: &[&str]) -> Vec<RowInfo> {
        let inters: BTreeSet<&str> = targets
            .iter()
            .flat_map(|t| self.grid(model, t).units.keys().map(String::as_str))
            .collect();
        let mut rows: Vec<RowInfo> = inters
            .iter()
            .map(|i| RowInfo {
                intermediate: i.to_string(),
                domain: self.domain(i),
                baseline: *i == BASELINE,
            })
            .collect();
        rows.sort_by(|a, b| {
            (!a.baseline, &a.domain, &a.intermediate).cmp(&(
                !b.baseline,
                &b.domain,
                &b.intermediate,
            ))
        });
        rows
    }

    /// The entry of (row, target), with QA's EM and F1 alone, and whether the pair is aligned
    /// (`None`: the baseline, or a domain is unknown).
    fn entry(&self, model: &str, row: &RowInfo, target: &str) -> (MatrixCell, Option<bool>) {
        let key = (model.to_string(), target.to_string());
        let target_domain = self.domain(target);
        let aligned =
            (!row.baseline && row.domain != UNKNOWN_DOMAIN && target_domain != UNKNOWN_DOMAIN)
                .then(|| row.domain == target_domain);
        let confidence = self.options.confidence;
        let grid = &self.grids[&key];
        let mut cell = matrix_cell(grid, &row.intermediate, target, aligned, confidence);
        if self.rules.get(target).cloned().flatten() == Some(ScoreRule::Qa) {
            for (name, g) in self.part_grids {
                let part = matrix_cell(&g[&key], &row.intermediate, target, None, confidence);
                cell.metrics.push(MetricEntry {
                    metric: name.to_string(),
                    absolute: part.absolute,
                    delta: part.delta,
                });
            }
        }
        (cell, aligned)
    }
}

/// The cell's per-seed Δ in `scope` for the alignment contrast, or why it is left out.
fn align_cell(
    cell: &MatrixCell,
    scope: Scope,
    aligned: Option<bool>,
) -> Result<AlignCell, &'static str> {
    let per_seed: Option<Vec<(u64, f64)>> = cell
        .per_seed
        .iter()
        .map(|s| Some((s.seed, *s.delta.as_ref()?.get(scope)?.as_ref()?)))
        .collect();
    match (aligned, per_seed) {
        (Some(aligned), Some(per_seed)) if !per_seed.is_empty() => Ok(AlignCell {
            intermediate: cell.intermediate.clone(),
            target: cell.target.clone(),
            aligned,
            per_seed,
        }),
        (Some(_), _) => Err("incomplete"),
        (None, _) => Err("unknown domain"),
    }
}

/// Each target's domain, score rule and languages.
fn target_summaries(
    targets: &BTreeSet<&str>,
    grids: &Grids,
    infos: &BTreeMap<String, TaskInfo>,
    rules: &BTreeMap<String, Option<ScoreRule>>,
) -> Vec<TargetSummary> {
    targets
        .iter()
        .map(|t| {
            let mut languages: BTreeSet<String> = BTreeSet::new();
            for ((_, gt), g) in grids {
                if gt == t {
                    languages.extend(g.languages.iter().cloned());
                }
            }
            TargetSummary {
                name: t.to_string(),
                domain: infos[*t].domain.clone(),
                score: rules[*t].clone(),
                languages: languages.into_iter().collect(),
            }
        })
        .collect()
}

/// One warning per target whose succeeded units lack the score metric: a rerun will not fix
/// them, so they are not "not scored yet".
fn metric_missing_warnings(
    grids: &Grids,
    rules: &BTreeMap<String, Option<ScoreRule>>,
    warnings: &mut Vec<String>,
) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for ((_, t), g) in grids {
        let k = g
            .units
            .values()
            .flat_map(|s| s.values())
            .flat_map(|l| l.values())
            .filter(|u| matches!(u, super::entry::Unit::NoMetric))
            .count();
        if k > 0 {
            *counts.entry(t.as_str()).or_default() += k;
        }
    }
    for (t, k) in counts {
        let wanted = rules
            .get(t)
            .cloned()
            .flatten()
            .map_or("a score metric".to_string(), |r| {
                r.metrics()
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            });
        warnings.push(format!(
            "metric missing: {k} succeeded (seed, language) units of target {t} have no {wanted} \
             in their results; rerunning will not add it (check the evaluate command's metrics)"
        ));
    }
}

/// Summary over seeds of `per_seed`, or the gaps of row and baseline.
fn entry(values: Vec<SeedOutcome>, confidence: f64) -> Entry {
    let mut own = Gaps::default();
    let mut baseline = Gaps::default();
    let mut ok = Vec::new();
    for v in values {
        match v {
            Ok(x) => ok.push(x),
            Err((o, b)) => {
                own = own.plus(o);
                baseline = baseline.plus(b);
            }
        }
    }
    match Summary::of(&ok, confidence) {
        Some(s) if own.total() + baseline.total() == 0 => Entry::Value(s),
        _ => Entry::Incomplete { own, baseline },
    }
}

fn pair_of<T>(mut m: BTreeMap<Scope, T>) -> Option<ScopePair<T>> {
    Some(ScopePair {
        all: m.remove(&Scope::All)?,
        non_english: m.remove(&Scope::NonEnglish),
        english: m.remove(&Scope::English),
    })
}

fn matrix_cell(
    grid: &Grid,
    intermediate: &str,
    target: &str,
    aligned: Option<bool>,
    confidence: f64,
) -> MatrixCell {
    let is_baseline = intermediate == BASELINE;
    let scopes: Vec<(Scope, Vec<&str>)> = [Scope::All, Scope::NonEnglish, Scope::English]
        .into_iter()
        .map(|s| (s, grid.scope_languages(s)))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let mut abs: BTreeMap<Scope, Vec<SeedOutcome>> = BTreeMap::new();
    let mut del: BTreeMap<Scope, Vec<SeedOutcome>> = BTreeMap::new();
    let mut gap: Vec<SeedOutcome> = Vec::new();
    let mut per_seed = Vec::new();
    for &seed in &grid.seeds {
        let mut score = BTreeMap::new();
        let mut delta = BTreeMap::new();
        let mut own_scores = BTreeMap::new();
        for (scope, langs) in &scopes {
            let own = grid.score(intermediate, seed, langs);
            own_scores.insert(*scope, own);
            abs.entry(*scope)
                .or_default()
                .push(own.map_err(|g| (g, Gaps::default())));
            score.insert(*scope, own.ok());
            if !is_baseline {
                let base = grid.score(BASELINE, seed, langs);
                let d = match (own, base) {
                    (Ok(a), Ok(b)) => Ok(a - b),
                    (a, b) => Err((a.err().unwrap_or_default(), b.err().unwrap_or_default())),
                };
                delta.insert(*scope, d.ok());
                del.entry(*scope).or_default().push(d);
            }
        }
        if let (Some(en), Some(rest)) = (
            own_scores.get(&Scope::English),
            own_scores.get(&Scope::NonEnglish),
        ) {
            gap.push(match (en, rest) {
                (Ok(a), Ok(b)) => Ok(a - b),
                (Err(g), _) | (_, Err(g)) => Err((*g, Gaps::default())),
            });
        }
        per_seed.push(SeedScore {
            seed,
            score: pair_of(score).unwrap_or(ScopePair {
                all: None,
                non_english: None,
                english: None,
            }),
            delta: (!is_baseline).then(|| pair_of(delta)).flatten(),
        });
    }
    let entries = |m: BTreeMap<Scope, Vec<SeedOutcome>>| {
        let m: BTreeMap<Scope, Entry> = m
            .into_iter()
            .map(|(s, v)| (s, entry(v, confidence)))
            .collect();
        pair_of(m).unwrap_or(ScopePair {
            all: entry(vec![], confidence),
            non_english: None,
            english: None,
        })
    };
    MatrixCell {
        intermediate: intermediate.to_string(),
        target: target.to_string(),
        aligned,
        absolute: entries(abs),
        delta: (!is_baseline).then(|| entries(del)),
        transfer_gap: (!gap.is_empty()).then(|| entry(gap, confidence)),
        metrics: vec![],
        per_seed,
    }
}

fn language_table(grid: &Grid, target: &str, rows: &[RowInfo], confidence: f64) -> LanguageTable {
    let mut out_rows = Vec::new();
    for row in rows {
        let i = row.intermediate.as_str();
        if !grid.units.contains_key(i) {
            continue;
        }
        let mut absolute = Vec::new();
        let mut delta = Vec::new();
        for l in &grid.languages {
            let mut abs = Vec::new();
            let mut del = Vec::new();
            for &s in &grid.seeds {
                let (u, b) = (grid.unit(i, s, l), grid.unit(BASELINE, s, l));
                let mut own = Gaps::default();
                own.add(&u);
                let mut base = Gaps::default();
                base.add(&b);
                abs.push(u.ok().ok_or((own, Gaps::default())));
                del.push(match (u.ok(), b.ok()) {
                    (Some(a), Some(b)) => Ok(a - b),
                    _ => Err((own, base)),
                });
            }
            absolute.push(entry(abs, confidence));
            delta.push(entry(del, confidence));
        }
        out_rows.push(LanguageRow {
            intermediate: i.to_string(),
            absolute,
            delta: (!row.baseline).then_some(delta),
        });
    }
    LanguageTable {
        target: target.to_string(),
        languages: grid.languages.clone(),
        rows: out_rows,
    }
}

#[cfg(test)]
#[path = "matrix_tests.rs"]
pub(crate) mod tests;
