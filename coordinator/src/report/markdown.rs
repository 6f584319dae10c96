//! Markdown rendering: targets, then per model the Δ matrix (mean ± sd, n), the absolute matrix,
//! aligned vs not aligned with bootstrap CIs, and per-language tables.

use std::fmt::Write;

use super::alignment::{AlignmentSummary, GroupStat};
use super::matrix::{Entry, ModelMatrix, Scope, Summary};
use super::{BASELINE, Report};

/// `+1.23 ± 0.40 (n=3)`; signed for Δ.
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

/// A matrix entry: its summary, or `failed (k)` / `missing (k)`.
pub fn entry(e: &Entry, signed: bool) -> String {
    match e {
        Entry::Value(s) => summary(s, signed),
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
        "Language score: the target's metric as reported (×100), QA = (EM + F1) / 2. Task score: \
         the mean over the target's languages (all, and non-English). Δ = intermediate − `{BASELINE}`, \
         paired by seed; entries are mean ± sample sd over seeds (n seeds). Bold = aligned \
         (same domain). `failed (k)`: k (seed, language) units failed, in the row or its baseline; \
         `missing (k)`: k units not scored yet (pending, cancelled or absent). CIs: paired \
         bootstrap over (seed, language) units, {} resamples, seed {}.\n",
        report.bootstrap.resamples, report.bootstrap.seed
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
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "## Warnings\n");
        for w in &report.warnings {
            let _ = writeln!(out, "- {w}");
        }
        let _ = writeln!(out);
    }
    out
}

fn model(out: &mut String, m: &ModelMatrix) {
    let _ = writeln!(out, "## Model `{}`\n", m.model);
    let cols: Vec<String> = m.targets.iter().map(|t| t.to_string()).collect();
    for scope in [Scope::All, Scope::NonEnglish] {
        let _ = writeln!(out, "### Δ vs `{BASELINE}`, {}\n", scope.label());
        header(out, &["intermediate", "domain"], &cols);
        for row in m.rows.iter().filter(|r| !r.baseline) {
            let mut line = format!("| {} | {} |", row.intermediate, row.domain);
            for t in &m.targets {
                let text = match m.cell(&row.intermediate, t) {
                    None => "—".to_string(),
                    Some(c) => match c.delta.as_ref().and_then(|d| d.get(scope)) {
                        None => "n/a".to_string(),
                        Some(e) if c.aligned == Some(true) && e.value().is_some() => {
                            format!("**{}**", entry(e, true))
                        }
                        Some(e) => entry(e, true),
                    },
                };
                let _ = write!(line, " {text} |");
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
    for scope in [Scope::All, Scope::NonEnglish] {
        let _ = writeln!(out, "### Absolute scores, {}\n", scope.label());
        header(out, &["intermediate", "domain"], &cols);
        for row in &m.rows {
            let mut line = format!("| {} | {} |", row.intermediate, row.domain);
            for t in &m.targets {
                let text = match m.cell(&row.intermediate, t) {
                    None => "—".to_string(),
                    Some(c) => c
                        .absolute
                        .get(scope)
                        .map_or("n/a".to_string(), |e| entry(e, false)),
                };
                let _ = write!(line, " {text} |");
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "### Aligned vs not aligned (mean Δ)\n");
    header(
        out,
        &[
            "scope",
            "aligned",
            "not aligned",
            "aligned − not aligned",
            "units",
        ],
        &[],
    );
    for a in &m.alignment {
        alignment_row(out, a);
    }
    let _ = writeln!(out);
    let excluded: Vec<String> = m
        .alignment
        .iter()
        .flat_map(|a| {
            a.excluded.iter().map(move |e| {
                format!(
                    "{} → {} ({}, {})",
                    e.intermediate,
                    e.target,
                    e.reason,
                    a.scope.label()
                )
            })
        })
        .collect();
    if !excluded.is_empty() {
        let _ = writeln!(out, "Left out: {}.\n", excluded.join("; "));
    }
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

fn ci(ci: Option<[f64; 2]>) -> String {
    ci.map_or(String::new(), |[lo, hi]| format!(" [{lo:+.2}, {hi:+.2}]"))
}

fn group(g: &GroupStat) -> String {
    match g.mean {
        None => "no complete cell".to_string(),
        Some(m) => format!("{m:+.2}{} ({} cells)", ci(g.ci), g.cells.len()),
    }
}

fn alignment_row(out: &mut String, a: &AlignmentSummary) {
    let diff = a.difference.map_or("—".to_string(), |d| {
        format!("{d:+.2}{}", ci(a.difference_ci))
    });
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |",
        a.scope.label(),
        group(&a.aligned),
        group(&a.not_aligned),
        diff,
        a.units
    );
}
