//! Markdown rendering: targets, then per model the Δ matrix (non-English first: the zero-shot
//! headline; then all languages and English), the absolute matrix, the transfer gap, QA's F1 and
//! EM, aligned vs not aligned (per target and combined) with t-intervals over seeds, and
//! per-language tables.

use std::fmt::Write;

use super::alignment::{AlignmentSummary, GroupStat};
use super::matrix::{Entry, ModelMatrix, Scope, Summary};
use super::{BASELINE, Report};

/// `+1.23 [+0.40, +2.06] (n=3)` with an interval, `+1.23 (n = 2, no interval)` without;
/// unsigned with `signed` false. The form of every Δ and contrast.
pub fn estimate(s: &Summary, signed: bool) -> String {
    let num = |v: f64| {
        if signed {
            format!("{v:+.2}")
        } else {
            format!("{v:.2}")
        }
    };
    match s.ci {
        Some([lo, hi]) => format!("{} [{}, {}] (n={})", num(s.mean), num(lo), num(hi), s.n),
        None => format!("{} (n = {}, no interval)", num(s.mean), s.n),
    }
}

/// `71.42 ± 0.35 (n=2)`; signed for Δ. The form of absolute scores.
pub fn summary(s: &Summary, signed: bool) -> String {
    let mean = if signed {
        format!("{:+.2}", s.mean)
    } else {
        format!("{:.2}", s.mean)
    };
    match s.sd {
        Some(sd) => format!("{mean} ± {sd:.2} (n={})", s.n),
        None => format!("{mean} (n={})", s.n),
    }
}

/// A matrix entry: its summary (Δ as an estimate with its interval), or its gap label.
pub fn entry(e: &Entry, signed: bool) -> String {
    match e {
        Entry::Value(s) if signed => estimate(s, true),
        Entry::Value(s) => summary(s, false),
        Entry::Incomplete { .. } => e.gap_label().unwrap_or_default(),
    }
}

/// A short per-language entry: mean (± sd) without n.
fn short(e: &Entry, signed: bool) -> String {
    match e {
        Entry::Value(s) => {
            let mean = if signed {
                format!("{:+.2}", s.mean)
            } else {
                format!("{:.2}", s.mean)
            };
            match s.sd {
                Some(sd) => format!("{mean} ± {sd:.2}"),
                None => mean,
            }
        }
        Entry::Incomplete { .. } => e.gap_label().unwrap_or_default(),
    }
}

fn header(out: &mut String, first: &[&str], rest: &[String]) {
    let cols: Vec<String> = first
        .iter()
        .map(|s| s.to_string())
        .chain(rest.iter().cloned())
        .collect();
    let _ = writeln!(out, "| {} |", cols.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(cols.len()));
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let title = if report.sweep.is_empty() {
        "Transfer report".to_string()
    } else {
        format!("Transfer report: {}", report.sweep)
    };
    let _ = writeln!(out, "# {title}\n");
    let _ = writeln!(
        out,
        "Language score: the target's metric as reported (×100); QA = (EM + F1) / 2, with F1 and EM \
         also shown alone. Task score: the mean over the target's non-English languages (the \
         headline: zero-shot transfer), all languages, or English. Δ = intermediate − `{BASELINE}`, \
         paired by seed: mean [{:.0}% t-interval over seeds] (n seeds); seeds are the unit of \
         replication (every language of a seed comes from the same training runs), and below 3 \
         seeds no interval is given. Bold = aligned (same domain). `failed (k)`: k (seed, \
         language) units of the row failed; `metric missing (k)`: k succeeded units lack the \
         score metric; `missing (k)`: k units not scored yet (pending, cancelled or absent); \
         `baseline …`: the row is complete but its paired `{BASELINE}` units are not. A cell \
         missing any language is missing in every scope, so the scopes cover the same cells.\n",
        report.interval.confidence * 100.0
    );
    let _ = writeln!(out, "## Targets\n");
    header(&mut out, &["target", "domain", "score", "languages"], &[]);
    for t in &report.targets {
        let score = t
            .score
            .as_ref()
            .map_or("none found".to_string(), |s| s.label());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({}) |",
            t.name,
            t.domain,
            score,
            t.languages.join(" "),
            t.languages.len()
        );
    }
    let _ = writeln!(out);
    for m in &report.models {
        model(&mut out, m);
    }
    if let Some(c) = &report.compute {
        out.push_str(&c.markdown());
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "## Warnings\n");
        for w in &report.warnings {
            let _ = writeln!(out, "- {w}");
        }
        let _ = writeln!(out);
    }
    out
}

/// One row per intermediate, one column per target, `text` for each existing cell.
fn table(
    out: &mut String,
    m: &ModelMatrix,
    baseline_row: bool,
    text: &dyn Fn(&super::matrix::MatrixCell) -> String,
) {
    let cols: Vec<String> = m.targets.clone();
    header(out, &["intermediate", "domain"], &cols);
    for row in m.rows.iter().filter(|r| baseline_row || !r.baseline) {
        let mut line = format!("| {} | {} |", row.intermediate, row.domain);
        for t in &m.targets {
            let cell = m.cell(&row.intermediate, t).map_or("—".to_string(), text);
            let _ = write!(line, " {cell} |");
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
}

fn scope_title(scope: Scope) -> String {
    match scope {
        Scope::NonEnglish => "non-English (zero-shot transfer, the headline)".to_string(),
        other => other.label().to_string(),
    }
}

fn model(out: &mut String, m: &ModelMatrix) {
    let _ = writeln!(out, "## Model `{}`\n", m.model);
    for scope in Scope::ORDER {
        let _ = writeln!(out, "### Δ vs `{BASELINE}`, {}\n", scope_title(scope));
        table(
            out,
            m,
            false,
            &|c| match c.delta.as_ref().and_then(|d| d.get(scope)) {
                None => "n/a".to_string(),
                Some(e) if c.aligned == Some(true) && e.value().is_some() => {
                    format!("**{}**", entry(e, true))
                }
                Some(e) => entry(e, true),
            },
        );
    }
    for scope in Scope::ORDER {
        let _ = writeln!(out, "### Absolute scores, {}\n", scope.label());
        table(out, m, true, &|c| {
            c.absolute
                .get(scope)
                .map_or("n/a".to_string(), |e| entry(e, false))
        });
    }
    let _ = writeln!(
        out,
        "### Cross-lingual transfer gap (English − mean of the other languages)\n"
    );
    table(out, m, true, &|c| {
        c.transfer_gap
            .as_ref()
            .map_or("n/a".to_string(), |e| entry(e, true))
    });
    qa_tables(out, m);
    alignment(out, m);
    for table in &m.languages {
        let _ = writeln!(
            out,
            "### Per language: {} (`{BASELINE}`: score; others: Δ)\n",
            table.target
        );
        header(out, &["intermediate"], &table.languages);
        for row in &table.rows {
            let mut line = format!("| {} |", row.intermediate);
            let cells: Vec<String> = match &row.delta {
                Some(d) => d.iter().map(|e| short(e, true)).collect(),
                None => row.absolute.iter().map(|e| short(e, false)).collect(),
            };
            for c in cells {
                let _ = write!(line, " {c} |");
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
}

/// F1 and EM alone for the targets scored by (EM + F1) / 2, as XTREME(-R) tables give them.
fn qa_tables(out: &mut String, m: &ModelMatrix) {
    let qa: Vec<&String> = m
        .targets
        .iter()
        .filter(|t| {
            m.cells
                .iter()
                .any(|c| &c.target == *t && !c.metrics.is_empty())
        })
        .collect();
    if qa.is_empty() {
        return;
    }
    for scope in Scope::ORDER {
        let _ = writeln!(out, "### QA: F1 / EM, {}\n", scope.label());
        let cols: Vec<String> = qa.iter().map(|t| t.to_string()).collect();
        header(out, &["intermediate", "domain"], &cols);
        for row in &m.rows {
            let mut line = format!("| {} | {} |", row.intermediate, row.domain);
            for t in &qa {
                let text = match m.cell(&row.intermediate, t) {
                    None => "—".to_string(),
                    Some(c) => {
                        let part = |name: &str| {
                            c.metrics
                                .iter()
                                .find(|p| p.metric == name)
                                .and_then(|p| p.absolute.get(scope))
                                .map_or("n/a".to_string(), |e| match e {
                                    Entry::Value(s) => format!("{:.2}", s.mean),
                                    gap => gap.gap_label().unwrap_or_default(),
                                })
                        };
                        format!("{} / {}", part("f1"), part("exact_match"))
                    }
                };
                let _ = write!(line, " {text} |");
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
}

fn group(g: &GroupStat) -> String {
    match &g.summary {
        None => "no complete cell".to_string(),
        Some(s) => format!(
            "{} ({} cell(s), {} target(s))",
            estimate(s, true),
            g.cells.len(),
            g.targets
        ),
    }
}

fn alignment(out: &mut String, m: &ModelMatrix) {
    let _ = writeln!(out, "### Aligned vs not aligned (mean Δ)\n");
    let _ = writeln!(
        out,
        "Within each target, mean Δ of its aligned cells − mean Δ of its not-aligned cells, per \
         seed; targets with both groups combined with equal weight; the interval is a t-interval \
         over seeds.\n"
    );
    header(
        out,
        &[
            "scope",
            "aligned",
            "not aligned",
            "aligned − not aligned",
            "seeds",
        ],
        &[],
    );
    for a in &m.alignment {
        alignment_row(out, a);
    }
    let _ = writeln!(out);
    if let Some(headline) = m.alignment.first() {
        let _ = writeln!(out, "Per target ({}):\n", headline.scope.label());
        header(
            out,
            &[
                "target",
                "aligned",
                "not aligned",
                "aligned − not aligned",
                "flags",
            ],
            &[],
        );
        for t in &headline.targets {
            let diff = t
                .difference
                .as_ref()
                .map_or("—".to_string(), |s| estimate(s, true));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {diff} | {} |",
                t.target,
                list(&t.aligned),
                list(&t.not_aligned),
                t.flags.join("; ")
            );
        }
        let _ = writeln!(out);
    }
    // Every scope is computed on the same cells, so the headline's exclusions are everyone's.
    let excluded: Vec<String> = m
        .alignment
        .first()
        .map(|a| {
            a.excluded
                .iter()
                .map(|e| format!("{} → {} ({})", e.intermediate, e.target, e.reason))
                .collect()
        })
        .unwrap_or_default();
    if !excluded.is_empty() {
        let _ = writeln!(out, "Left out (every scope): {}.\n", excluded.join("; "));
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "—".to_string()
    } else {
        names.join(", ")
    }
}

fn alignment_row(out: &mut String, a: &AlignmentSummary) {
    let diff = a
        .difference
        .as_ref()
        .map_or("—".to_string(), |s| estimate(s, true));
    let seeds: Vec<String> = a.seeds.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |",
        a.scope.label(),
        group(&a.aligned),
        group(&a.not_aligned),
        diff,
        seeds.join(" ")
    );
}
