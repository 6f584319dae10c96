//! The transfer matrix.
//!
//! For each model: rows are intermediate tasks (`none` first, then grouped by domain label, then
//! by name), columns are target tasks (sorted by domain, then name). For each (model,
//! intermediate, target, seed):
//!
//! * a **language score** per language: the target's [`ScoreRule`] applied to that language's
//!   metrics (one metric, or (EM + F1) / 2 for QA);
//! * the **task score**: the mean of the language scores over all expected languages (English
//!   included), and separately over the non-English ones. Because the QA rule is linear, this
//!   equals XTREME-R's (avg EM + avg F1) / 2;
//! * **Δ** = task score − the `none` baseline's task score *of the same seed* (paired by seed).
//!
//! A matrix entry is mean ± sample sd (n − 1 denominator; none for n = 1) over the expected seeds.
//! If any (seed, language) unit of the scope is failed, cancelled, unfinished or absent, in the
//! row itself or (for Δ) in the paired baseline, the entry is [`Entry::Incomplete`] with counts,
//! never a number; the per-seed scores that could be computed stay in [`MatrixCell::per_seed`].
//!
//! Expected units: for each (model, target), every intermediate × seed × language seen in the
//! cells or results of that (model, target). A unit with results holding the score metric(s)
//! counts as done whatever its state says (results are recorded exactly once).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::alignment::{self, AlignCell, AlignmentSummary, BootstrapOptions};
use super::entry::Unit;
pub use super::entry::{Entry, Gaps, Scope, ScopePair, Summary};
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
    pub per_seed: Vec<SeedScore>,
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
    /// Aligned vs not aligned, for [`Scope::All`] then [`Scope::NonEnglish`].
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

type Key = (String, String, String, String, u64); // model, intermediate, target, language, seed

/// The units of one (model, target): intermediate → seed → language → unit.
struct Grid {
    seeds: Vec<u64>,
    languages: Vec<String>,
    units: BTreeMap<String, BTreeMap<u64, BTreeMap<String, Unit>>>,
}

impl Grid {
    fn unit(&self, intermediate: &str, seed: u64, language: &str) -> Unit {
        self.units
            .get(intermediate)
            .and_then(|s| s.get(&seed))
            .and_then(|l| l.get(language))
            .copied()
            .unwrap_or(Unit::Absent)
    }
    fn scope_languages(&self, scope: Scope) -> Vec<&str> {
        self.languages
            .iter()
            .map(String::as_str)
            .filter(|l| scope.includes(l))
            .collect()
    }
    /// Task score of one seed over `languages`, or the gaps.
    fn score(&self, intermediate: &str, seed: u64, languages: &[&str]) -> Result<f64, Gaps> {
        let mut gaps = Gaps::default();
        let mut sum = 0.0;
        for l in languages {
            let u = self.unit(intermediate, seed, l);
            gaps.add(&u);
            sum += u.ok().unwrap_or(0.0);
        }
        if gaps.total() == 0 {
            Ok(sum / languages.len() as f64)
        } else {
            Err(gaps)
        }
    }
}

/// Computes the per-target summaries, the per-model matrices and warnings.
pub(crate) fn compute(
    input: &ReportInput,
    tasks: &dyn Fn(&str) -> TaskInfo,
    bootstrap: &BootstrapOptions,
) -> (Vec<TargetSummary>, Vec<ModelMatrix>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut metrics: BTreeMap<Key, BTreeMap<&str, f64>> = BTreeMap::new();
    let mut seen_metrics: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in &input.results {
        let key = (
            r.model.clone(),
            r.intermediate.clone(),
            r.target.clone(),
            r.language.clone(),
            r.seed,
        );
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
    let mut states: BTreeMap<Key, CellState> = BTreeMap::new();
    for c in &input.cells {
        let key = (
            c.model.clone(),
            c.intermediate.clone(),
            c.target.clone(),
            c.language.clone(),
            c.seed,
        );
        states.insert(key, c.state);
    }

    // Task information, resolved score rules.
    let all_targets: BTreeSet<&str> = states
        .keys()
        .chain(metrics.keys())
        .map(|k| k.2.as_str())
        .collect();
    let mut infos: BTreeMap<String, TaskInfo> = BTreeMap::new();
    let mut rules: BTreeMap<&str, Option<ScoreRule>> = BTreeMap::new();
    for t in &all_targets {
        let info = tasks(t);
        let seen = seen_metrics.get(t).cloned().unwrap_or_default();
        let rule = info.score.resolve(&seen);
        if rule.is_none() && !seen.is_empty() {
            warnings.push(format!(
                "target {t}: no score metric among {:?}; its cells count as missing",
                seen
            ));
        }
        rules.insert(*t, rule);
        infos.insert(t.to_string(), info);
    }
    let info_of = |name: &str, infos: &mut BTreeMap<String, TaskInfo>| -> TaskInfo {
        if name == BASELINE {
            return TaskInfo {
                domain: BASELINE.to_string(),
                score: ScoreRule::Auto,
            };
        }
        infos
            .entry(name.to_string())
            .or_insert_with(|| tasks(name))
            .clone()
    };

    // Units per (model, target).
    let mut grids: BTreeMap<(String, String), Grid> = BTreeMap::new();
    let keys: BTreeSet<&Key> = states.keys().chain(metrics.keys()).collect();
    for (m, i, t, l, s) in &keys {
        let grid = grids.entry((m.clone(), t.clone())).or_insert_with(|| Grid {
            seeds: vec![],
            languages: vec![],
            units: BTreeMap::new(),
        });
        let key = (m.clone(), i.clone(), t.clone(), l.clone(), *s);
        let score = rules
            .get(t.as_str())
            .cloned()
            .flatten()
            .and_then(|rule| language_score(&rule, metrics.get(&key)));
        let unit = match (score, states.get(&key)) {
            (Some(v), _) => Unit::Ok(v),
            (None, Some(CellState::Failed)) => Unit::Failed,
            (None, Some(CellState::Cancelled)) => Unit::Cancelled,
            (None, Some(CellState::Blocked | CellState::Ready | CellState::Running)) => {
                Unit::Pending
            }
            (None, Some(CellState::Succeeded) | None) => Unit::Absent,
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

    let models: BTreeSet<&String> = grids.keys().map(|(m, _)| m).collect();
    let mut out = Vec::new();
    for model in models {
        let mut targets: Vec<&str> = grids
            .keys()
            .filter(|(m, _)| m == model)
            .map(|(_, t)| t.as_str())
            .collect();
        targets.sort_by_key(|t| (info_of(t, &mut infos).domain, t.to_string()));
        let mut inters: BTreeSet<&str> = BTreeSet::new();
        for t in &targets {
            inters.extend(
                grids[&(model.clone(), t.to_string())]
                    .units
                    .keys()
                    .map(String::as_str),
            );
        }
        let mut rows: Vec<RowInfo> = inters
            .iter()
            .map(|i| RowInfo {
                intermediate: i.to_string(),
                domain: info_of(i, &mut infos).domain,
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
        for t in &targets {
            if !grids[&(model.clone(), t.to_string())]
                .units
                .contains_key(BASELINE)
            {
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
                let grid = &grids[&(model.clone(), t.to_string())];
                if !grid.units.contains_key(&row.intermediate) {
                    continue;
                }
                let target_domain = info_of(t, &mut infos).domain;
                let aligned = (!row.baseline
                    && row.domain != UNKNOWN_DOMAIN
                    && target_domain != UNKNOWN_DOMAIN)
                    .then(|| row.domain == target_domain);
                let cell = matrix_cell(grid, &row.intermediate, t, aligned);
                for (k, scope) in [Scope::All, Scope::NonEnglish].into_iter().enumerate() {
                    if row.baseline {
                        continue;
                    }
                    let langs = grid.scope_languages(scope);
                    if langs.is_empty() {
                        continue;
                    }
                    let complete = cell
                        .delta
                        .as_ref()
                        .and_then(|d| d.get(scope))
                        .is_some_and(|e| e.value().is_some());
                    match aligned {
                        Some(aligned) if complete => align_cells[k].push(AlignCell {
                            intermediate: row.intermediate.clone(),
                            target: t.to_string(),
                            aligned,
                            units: unit_deltas(grid, &row.intermediate, &langs),
                        }),
                        Some(_) => excluded[k].push((
                            row.intermediate.clone(),
                            t.to_string(),
                            "incomplete".to_string(),
                        )),
                        None => excluded[k].push((
                            row.intermediate.clone(),
                            t.to_string(),
                            "unknown domain".to_string(),
                        )),
                    }
                }
                cells.push(cell);
            }
        }
        let [all_cells, non_en_cells] = align_cells;
        let [all_excluded, non_en_excluded] = excluded;
        let alignment = vec![
            alignment::summarize(Scope::All, &all_cells, all_excluded, bootstrap),
            alignment::summarize(Scope::NonEnglish, &non_en_cells, non_en_excluded, bootstrap),
        ];
        let languages = targets
            .iter()
            .map(|t| language_table(&grids[&(model.clone(), t.to_string())], t, &rows))
            .collect();
        out.push(ModelMatrix {
            model: model.clone(),
            rows,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            cells,
            alignment,
            languages,
        });
    }

    let target_summaries = all_targets
        .iter()
        .map(|t| {
            let mut languages: BTreeSet<String> = BTreeSet::new();
            for ((_, gt), g) in &grids {
                if gt == t {
                    languages.extend(g.languages.iter().cloned());
                }
            }
            TargetSummary {
                name: t.to_string(),
                domain: infos[*t].domain.clone(),
                score: rules[t].clone(),
                languages: languages.into_iter().collect(),
            }
        })
        .collect();
    (target_summaries, out, warnings)
}

/// The score of one language from its metrics; `None` if a needed metric is absent.
fn language_score(rule: &ScoreRule, metrics: Option<&BTreeMap<&str, f64>>) -> Option<f64> {
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

/// Per-(seed, language) Δ of a complete cell against the baseline.
fn unit_deltas(grid: &Grid, intermediate: &str, languages: &[&str]) -> Vec<((u64, String), f64)> {
    let mut out = Vec::new();
    for &s in &grid.seeds {
        for l in languages {
            if let (Some(a), Some(b)) = (
                grid.unit(intermediate, s, l).ok(),
                grid.unit(BASELINE, s, l).ok(),
            ) {
                out.push(((s, l.to_string()), a - b));
            }
        }
    }
    out
}

/// Summary over seeds of `per_seed`, or the gaps of row and baseline.
fn entry(values: Vec<SeedOutcome>) -> Entry {
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
    match Summary::of(&ok) {
        Some(s) if own.total() + baseline.total() == 0 => Entry::Value(s),
        _ => Entry::Incomplete { own, baseline },
    }
}

fn matrix_cell(grid: &Grid, intermediate: &str, target: &str, aligned: Option<bool>) -> MatrixCell {
    let is_baseline = intermediate == BASELINE;
    let scopes: Vec<(Scope, Vec<&str>)> = [Scope::All, Scope::NonEnglish]
        .into_iter()
        .map(|s| (s, grid.scope_languages(s)))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let mut abs: BTreeMap<usize, Vec<SeedOutcome>> = BTreeMap::new();
    let mut del: BTreeMap<usize, Vec<SeedOutcome>> = BTreeMap::new();
    let mut per_seed = Vec::new();
    for &seed in &grid.seeds {
        let mut score = [None, None];
        let mut delta = [None, None];
        for (scope, langs) in &scopes {
            let idx = if *scope == Scope::All { 0 } else { 1 };
            let own = grid.score(intermediate, seed, langs);
            abs.entry(idx)
                .or_default()
                .push(own.map_err(|g| (g, Gaps::default())));
            score[idx] = own.ok();
            if !is_baseline {
                let base = grid.score(BASELINE, seed, langs);
                let d = match (own, base) {
                    (Ok(a), Ok(b)) => Ok(a - b),
                    (a, b) => Err((a.err().unwrap_or_default(), b.err().unwrap_or_default())),
                };
                delta[idx] = d.ok();
                del.entry(idx).or_default().push(d);
            }
        }
        let has_non_en = scopes.len() == 2;
        per_seed.push(SeedScore {
            seed,
            score: ScopePair {
                all: score[0],
                non_english: has_non_en.then_some(score[1]),
            },
            delta: (!is_baseline).then(|| ScopePair {
                all: delta[0],
                non_english: has_non_en.then_some(delta[1]),
            }),
        });
    }
    let pair = |mut m: BTreeMap<usize, Vec<SeedOutcome>>| ScopePair {
        all: entry(m.remove(&0).unwrap_or_default()),
        non_english: m.remove(&1).map(entry),
    };
    MatrixCell {
        intermediate: intermediate.to_string(),
        target: target.to_string(),
        aligned,
        absolute: pair(abs),
        delta: (!is_baseline).then(|| pair(del)),
        per_seed,
    }
}

fn language_table(grid: &Grid, target: &str, rows: &[RowInfo]) -> LanguageTable {
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
            absolute.push(entry(abs));
            delta.push(entry(del));
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
